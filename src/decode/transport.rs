//! TCP and UDP headers: small views that, unlike strict slicing, still yield a segment when the
//! snap length cut the TCP options.

use std::fmt;

use super::field::{be16, be32, Field};
use super::payload::{self, RoleView, Shape};
use super::Skip;
use crate::types::SeqNum;

/// TCP header fields (RFC 9293 section 3.1).
mod tcp {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble of the first byte), reserved bits, then the flags.
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const OPTIONS: usize = 20;

    /// Option kinds (IANA's TCP option kind numbers).
    pub const OPT_END: u8 = 0;
    pub const OPT_NOP: u8 = 1;
    pub const OPT_MSS: u8 = 2;
    pub const OPT_WS: u8 = 3;
    pub const OPT_SACKPERM: u8 = 4;
    pub const OPT_TSTAMP: u8 = 8;
}

/// UDP header fields (RFC 768).
mod udp {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const PAYLOAD: usize = 8;
}

/// The TCP header's flag bits: the 9 low bits of its 13th and 14th bytes (NS to FIN), as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN: the sender has no more data.
    pub const FIN: u16 = 0x001;
    /// SYN: synchronize sequence numbers (opens a connection).
    pub const SYN: u16 = 0x002;
    /// RST: reset the connection.
    pub const RST: u16 = 0x004;
    /// PSH: push the data to the application.
    pub const PSH: u16 = 0x008;
    /// ACK: the acknowledgment number is valid.
    pub const ACK: u16 = 0x010;
    /// URG: the urgent pointer is valid.
    pub const URG: u16 = 0x020;
    /// ECE: ECN echo (RFC 3168).
    pub const ECE: u16 = 0x040;
    /// CWR: congestion window reduced (RFC 3168).
    pub const CWR: u16 = 0x080;

    /// Whether any of the bits in `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    /// Whether SYN is set.
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// Whether ACK is set.
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// Whether FIN is set.
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// Whether RST is set.
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump-like flag letters: S F R P . (ACK) U E W.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(u16, char); 8] = [
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::ACK, '.'),
        ];
        for (bit, c) in LETTERS {
            if self.has(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Options a SYN or SYN+ACK offered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (option 2), in bytes.
    pub mss: Option<u16>,
    /// Window scale shift count (option 3, RFC 7323).
    pub window_scale: Option<u8>,
    /// SACK permitted (option 4, RFC 2018).
    pub sack_permitted: bool,
    /// Timestamps (option 8, RFC 7323).
    pub timestamps: bool,
}

/// The TCP header fields the connection tracking uses, and the payload length.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: SeqNum,
    /// Flag bits.
    pub flags: TcpFlags,
    /// Window field as sent, not scaled.
    pub window: u16,
    /// Payload length from the IP length, even when the snap length cut the bytes.
    pub payload_len: u32,
    /// The options read from the header; those the snap length cut are missing.
    pub options: TcpOptions,
    /// What the payload's first bytes look like.
    pub shape: Shape,
}

/// A UDP header's ports and payload length.
#[derive(Clone, Copy, Debug)]
pub struct UdpDatagram {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes per the UDP length field (less its 8-byte header), even when the snap length
    /// cut them; what was captured when the field is below 8 (0 for jumbograms and offloaded
    /// captures).
    pub payload_len: u32,
    /// What the payload's first bytes look like.
    pub shape: Shape,
    /// What Zeek's DNS or NTP analyzer reads of it, on their ports.
    pub roles: RoleView,
}

/// Reads a TCP header. `missing` is how many payload bytes the capture did not keep.
pub(super) fn tcp(b: &[u8], missing: u32) -> Result<TcpSegment, Skip> {
    let h = b.get(..tcp::OPTIONS).ok_or(Skip::TruncatedTcpHeader)?;
    let offset_and_flags = be16(h, tcp::FLAGS).expect("in the header");
    let header_len = usize::from(offset_and_flags >> 12) * 4;
    if header_len < tcp::OPTIONS {
        return Err(Skip::BadTcpHeader);
    }
    // Options the snap length cut are simply not seen; the payload length stays right.
    let options = b.get(tcp::OPTIONS..header_len.min(b.len())).map(tcp_options).unwrap_or_default();
    let payload_len = (b.len() as u32 + missing).saturating_sub(header_len as u32);
    Ok(TcpSegment {
        src_port: be16(h, tcp::SRC_PORT).expect("in the header"),
        dst_port: be16(h, tcp::DST_PORT).expect("in the header"),
        seq: SeqNum(be32(h, tcp::SEQ_NUM).expect("in the header")),
        ack: SeqNum(be32(h, tcp::ACK_NUM).expect("in the header")),
        flags: TcpFlags(offset_and_flags & 0x01ff),
        window: be16(h, tcp::WIN_SIZE).expect("in the header"),
        payload_len,
        options,
        shape: match payload_len {
            0 => Shape::None,
            len => payload::tcp(b.get(header_len..).unwrap_or_default(), len),
        },
    })
}

fn tcp_options(mut o: &[u8]) -> TcpOptions {
    let mut opts = TcpOptions::default();
    while let Some(&kind) = o.first() {
        match kind {
            tcp::OPT_END => break,
            tcp::OPT_NOP => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else { break };
        let len = len as usize;
        if len < 2 || len > o.len() {
            break;
        }
        match (kind, len) {
            (tcp::OPT_MSS, 4) => opts.mss = be16(o, 2..4),
            (tcp::OPT_WS, 3) => opts.window_scale = Some(o[2]),
            (tcp::OPT_SACKPERM, 2) => opts.sack_permitted = true,
            (tcp::OPT_TSTAMP, 10) => opts.timestamps = true,
            _ => {}
        }
        o = &o[len..];
    }
    opts
}

/// Reads a UDP header; `None` when it is cut short.
pub(super) fn udp(b: &[u8]) -> Option<UdpDatagram> {
    let h = b.get(..udp::PAYLOAD)?;
    let len = u32::from(be16(h, udp::LENGTH)?);
    // A zero length (jumbograms, TSO captures) falls back to what was captured.
    let payload_len = if len >= 8 { len - 8 } else { b.len() as u32 - 8 };
    let (src_port, dst_port) = (be16(h, udp::SRC_PORT)?, be16(h, udp::DST_PORT)?);
    // Not the bytes after the UDP length (Ethernet padding).
    let payload = udp_payload(b).get(..payload_len as usize).unwrap_or(udp_payload(b));
    let (shape, roles) = match payload_len {
        0 => (Shape::None, RoleView::None),
        len => (payload::udp(payload, len), payload::udp_roles(src_port, dst_port, payload, len)),
    };
    Some(UdpDatagram { src_port, dst_port, payload_len, shape, roles })
}

/// The payload of a UDP datagram whose header `udp` read.
pub(super) fn udp_payload(b: &[u8]) -> &[u8] {
    &b[udp::PAYLOAD..]
}
