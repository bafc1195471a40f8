//! Encapsulations: where a tunnel header ends and what it carries.
//!
//! Each parser reads one tunnel header (RFC or vendor layout named on it) and returns the inner
//! payload with its type, or `None` when the bytes are not that tunnel.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::field::{be16, Field};

/// The kinds of tunnel sockscope looks through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    /// IPv4 or IPv6 directly in IPv4 or IPv6 (4in4, 6in4, 4in6, 6in6).
    #[serde(rename = "ip-in-ip")]
    IpInIp,
    /// GRE (RFC 2784, PPTP's enhanced GRE, ERSPAN inside it), over IP or in UDP (RFC 8086).
    Gre,
    /// VXLAN (RFC 7348): Ethernet in UDP.
    Vxlan,
    /// Geneve (RFC 8926): Ethernet or IP in UDP.
    Geneve,
    /// Teredo (RFC 4380): IPv6 in UDP.
    Teredo,
    /// AYIYA ("Anything In Anything"): IPv4 or IPv6 in UDP.
    Ayiya,
    /// GTPv1-U (3GPP TS 29.281): user IP packets in UDP.
    Gtpu,
}

impl TunnelKind {
    /// Its name as printed and serialized, e.g. `ip-in-ip`, `vxlan`.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::IpInIp => "ip-in-ip",
            TunnelKind::Gre => "gre",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Teredo => "teredo",
            TunnelKind::Ayiya => "ayiya",
            TunnelKind::Gtpu => "gtpu",
        }
    }
}

impl fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tunnel header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
    /// A PPP frame.
    Ppp(&'a [u8]),
}

/// VXLAN's UDP port (IANA).
pub(super) const PORT_VXLAN: u16 = 4789;
/// Geneve's UDP port (IANA).
const PORT_GENEVE: u16 = 6081;
/// AYIYA's UDP port (IANA).
const PORT_AYIYA: u16 = 5072;
/// GTP-U's UDP port (3GPP).
const PORT_GTPU: u16 = 2152;
/// GRE in UDP (RFC 8086).
const PORT_GRE_UDP: u16 = 4754;

/// A UDP payload that is a tunnel: by well-known port, and Teredo by content on any other port
/// (its relays use any port, its own 3544 among them).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Option<(TunnelKind, Encap<'_>)> {
    let on = |port: u16| src_port == port || dst_port == port;
    if on(PORT_VXLAN) {
        vxlan(payload).map(|e| (TunnelKind::Vxlan, e))
    } else if on(PORT_GENEVE) {
        geneve(payload).map(|e| (TunnelKind::Geneve, e))
    } else if on(PORT_GTPU) {
        gtpu(payload).map(|e| (TunnelKind::Gtpu, e))
    } else if on(PORT_AYIYA) {
        ayiya(payload).map(|e| (TunnelKind::Ayiya, e))
    } else if on(PORT_GRE_UDP) {
        gre(payload).map(|e| (TunnelKind::Gre, e))
    } else {
        teredo(payload).map(|e| (TunnelKind::Teredo, e))
    }
}

/// GRE header fields (RFC 2784, RFC 2890; PPTP's enhanced GRE, RFC 2637).
mod gre {
    use super::Field;
    pub const FLAGS: Field = 0..2;
    pub const PROTOCOL: Field = 2..4;
    /// Checksum, key and sequence number follow, 4 bytes each when their flag is set.
    pub const OPTIONAL: usize = 4;
    pub const CHECKSUM: u16 = 0x8000;
    pub const ROUTING: u16 = 0x4000;
    pub const KEY: u16 = 0x2000;
    pub const SEQUENCE: u16 = 0x1000;
    /// Enhanced GRE (version 1) acknowledgement number present.
    pub const ACK: u16 = 0x0080;
    pub const VERSION: u16 = 0x0007;
    /// Enhanced GRE's payload length and call id, before its sequence number.
    pub const ENHANCED: usize = 4;
    /// ERSPAN type II: 8 bytes when GRE carries a sequence number.
    pub const ERSPAN_II: usize = 8;
    /// ERSPAN type III: 12 bytes, then an 8-byte platform subheader when the O bit (the last
    /// byte's lowest) is set.
    pub const ERSPAN_III: usize = 12;
    pub const ERSPAN_III_O_BYTE: usize = 11;
    pub const ERSPAN_III_PLATFORM: usize = 8;
}

/// GRE, ERSPAN inside it.
pub fn gre(b: &[u8]) -> Option<Encap<'_>> {
    let flags = be16(b, gre::FLAGS)?;
    let proto = be16(b, gre::PROTOCOL)?;
    let has = |bit: u16| flags & bit != 0;
    let words = |bits: &[u16]| 4 * bits.iter().filter(|&&bit| has(bit)).count();
    let off = match flags & gre::VERSION {
        0 if has(gre::ROUTING) => return None, // source routing entries: obsolete, not followed
        0 => gre::OPTIONAL + words(&[gre::CHECKSUM, gre::KEY, gre::SEQUENCE]),
        1 => gre::OPTIONAL + gre::ENHANCED + words(&[gre::SEQUENCE, gre::ACK]),
        _ => return None,
    };
    let body = b.get(off..)?;
    match proto {
        0x0800 | 0x86dd => Some(Encap::Ip(body)),
        0x6558 => Some(Encap::Ethernet(body)),
        0x880b => Some(Encap::Ppp(body)),
        0x88be => Some(Encap::Ethernet(if has(gre::SEQUENCE) { body.get(gre::ERSPAN_II..)? } else { body })),
        0x22eb => {
            let platform = body.get(gre::ERSPAN_III_O_BYTE)? & 0x01 != 0;
            let len = gre::ERSPAN_III + if platform { gre::ERSPAN_III_PLATFORM } else { 0 };
            Some(Encap::Ethernet(body.get(len..)?))
        }
        _ => None,
    }
}

/// VXLAN header fields (RFC 7348).
mod vxlan {
    pub const FLAGS: usize = 0;
    /// The I flag: the VNI is valid.
    pub const VNI_VALID: u8 = 0x08;
    pub const PAYLOAD: usize = 8;
}

/// VXLAN: an Ethernet frame after the header with the I flag.
fn vxlan(b: &[u8]) -> Option<Encap<'_>> {
    if b.get(vxlan::FLAGS)? & vxlan::VNI_VALID == 0 {
        return None;
    }
    Some(Encap::Ethernet(b.get(vxlan::PAYLOAD..)?))
}

/// Geneve header fields (RFC 8926).
mod geneve {
    use super::Field;
    /// Version (two high bits) and options length (six low bits, in 4-byte units).
    pub const VER_OPT_LEN: usize = 0;
    pub const PROTOCOL: Field = 2..4;
    pub const OPTIONS: usize = 8;
}

/// Geneve: version 0, options, then the frame its protocol type names.
fn geneve(b: &[u8]) -> Option<Encap<'_>> {
    let first = *b.get(geneve::VER_OPT_LEN)?;
    if first >> 6 != 0 {
        return None;
    }
    let options = usize::from(first & 0x3f) * 4;
    let proto = be16(b, geneve::PROTOCOL)?;
    let body = b.get(geneve::OPTIONS + options..)?;
    match proto {
        0x6558 => Some(Encap::Ethernet(body)),
        0x0800 | 0x86dd => Some(Encap::Ip(body)),
        _ => None,
    }
}

/// GTPv1-U header fields (3GPP TS 29.281).
mod gtpu {
    /// Version (three high bits), protocol type, and the E, S and PN flags (three low bits).
    pub const FLAGS: usize = 0;
    pub const PROTOCOL_TYPE: u8 = 0x10;
    pub const EXTENSION: u8 = 0x04;
    pub const OPTIONAL: u8 = 0x07;
    pub const MESSAGE_TYPE: usize = 1;
    /// A G-PDU: it carries a user packet.
    pub const G_PDU: u8 = 0xff;
    pub const HEADER: usize = 8;
    /// With any optional field: sequence number, N-PDU number, next extension header type.
    pub const WITH_OPTIONAL: usize = 12;
    pub const NEXT_EXTENSION: usize = 11;
    /// Extension headers after the first are chained at most this deep.
    pub const MAX_EXTENSIONS: usize = 16;
}

/// GTPv1-U: a G-PDU carries a user IP packet after the header and its extension headers.
fn gtpu(b: &[u8]) -> Option<Encap<'_>> {
    let flags = *b.get(gtpu::FLAGS)?;
    if flags >> 5 != 1 || flags & gtpu::PROTOCOL_TYPE == 0 || *b.get(gtpu::MESSAGE_TYPE)? != gtpu::G_PDU {
        return None;
    }
    let mut off = gtpu::HEADER;
    if flags & gtpu::OPTIONAL != 0 {
        off = gtpu::WITH_OPTIONAL;
        let mut next = *b.get(gtpu::NEXT_EXTENSION)?;
        if flags & gtpu::EXTENSION != 0 {
            // Each extension header: its length in 4-byte units first, the next one's type last.
            for _ in 0..gtpu::MAX_EXTENSIONS {
                if next == 0 {
                    break;
                }
                let len = usize::from(*b.get(off)?) * 4;
                if len == 0 {
                    return None;
                }
                next = *b.get(off + len - 1)?;
                off += len;
            }
        }
    }
    let body = b.get(off..)?;
    matches!(body.first()? >> 4, 4 | 6).then_some(Encap::Ip(body))
}

/// AYIYA header fields (draft-massar-v6ops-ayiya).
mod ayiya {
    /// Identity length (high nibble, as a power of two) and identity type.
    pub const ID_LEN: usize = 0;
    /// Signature length (high nibble, in 4-byte units) and hash method.
    pub const SIG_LEN: usize = 1;
    /// Authentication method and operation code (low nibble).
    pub const OPCODE: usize = 2;
    pub const NEXT_HEADER: usize = 3;
    pub const FORWARD: u8 = 1;
    /// Epoch time, then identity and signature.
    pub const IDENTITY: usize = 8;
}

/// AYIYA ("Anything In Anything"): identity and signature, then IP.
fn ayiya(b: &[u8]) -> Option<Encap<'_>> {
    let id_len = 1usize << (b.get(ayiya::ID_LEN)? >> 4);
    let sig_len = usize::from(b.get(ayiya::SIG_LEN)? >> 4) * 4;
    let opcode = b.get(ayiya::OPCODE)? & 0x0f;
    let next = *b.get(ayiya::NEXT_HEADER)?;
    if opcode != ayiya::FORWARD || !(next == 4 || next == 41) {
        return None;
    }
    Some(Encap::Ip(b.get(ayiya::IDENTITY + id_len + sig_len..)?))
}

/// Teredo's optional indicators (RFC 4380 section 5.1.1) and the IPv6 header after them.
mod teredo {
    use super::Field;
    pub const AUTH_MARK: [u8; 2] = [0, 1];
    pub const AUTH_ID_LEN: usize = 2;
    pub const AUTH_LEN: usize = 3;
    /// The authentication indicator's fixed part before the client identifier.
    pub const AUTH_HEADER: usize = 4;
    /// Nonce (8 bytes) and confirmation (1) after identifier and authentication value.
    pub const AUTH_TRAILER: usize = 9;
    pub const ORIGIN_MARK: [u8; 2] = [0, 0];
    pub const ORIGIN_LEN: usize = 8;
    pub const IPV6_HEADER: usize = 40;
    pub const IPV6_PAYLOAD_LEN: Field = 4..6;
}

/// Teredo: optional authentication and origin indicators, then an IPv6 packet whose length
/// must account for exactly the rest of the datagram.
fn teredo(mut b: &[u8]) -> Option<Encap<'_>> {
    if b.starts_with(&teredo::AUTH_MARK) {
        let id_len = usize::from(*b.get(teredo::AUTH_ID_LEN)?);
        let auth_len = usize::from(*b.get(teredo::AUTH_LEN)?);
        b = b.get(teredo::AUTH_HEADER + id_len + auth_len + teredo::AUTH_TRAILER..)?;
    }
    if b.starts_with(&teredo::ORIGIN_MARK) {
        b = b.get(teredo::ORIGIN_LEN..)?;
    }
    let header = b.get(..teredo::IPV6_HEADER)?;
    let payload_len = usize::from(be16(header, teredo::IPV6_PAYLOAD_LEN)?);
    (header[0] >> 4 == 6 && teredo::IPV6_HEADER + payload_len == b.len()).then_some(Encap::Ip(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6(payload_len: u16) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&payload_len.to_be_bytes());
        h.extend_from_slice(&[59, 64]); // no next header
        h.extend_from_slice(&[0u8; 32]);
        h.extend(std::iter::repeat_n(0u8, payload_len as usize));
        h
    }

    #[test]
    fn gre_with_key_and_sequence() {
        let mut b = vec![0x30, 0x00, 0x08, 0x00, 0, 0, 0, 7, 0, 0, 0, 1];
        b.extend_from_slice(&[0x45, 0]);
        assert_eq!(gre(&b), Some(Encap::Ip(&[0x45, 0][..])));
    }

    #[test]
    fn gre_unknown_protocol_is_not_decapsulated() {
        assert_eq!(gre(&[0, 0, 0x12, 0x34, 1, 2, 3]), None);
        assert_eq!(gre(&[0x30, 0x00]), None, "cut short");
    }

    #[test]
    fn pptp_gre_carries_ppp() {
        let b = [0x30, 0x01, 0x88, 0x0b, 0, 4, 0, 1, 0, 0, 0, 9, 0xff, 0x03, 0x00, 0x21];
        assert_eq!(gre(&b), Some(Encap::Ppp(&[0xff, 0x03, 0x00, 0x21][..])));
    }

    #[test]
    fn vxlan_needs_the_i_flag() {
        let mut b = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        b.extend_from_slice(&[0xaa; 14]);
        assert!(
            matches!(udp(40000, PORT_VXLAN, &b), Some((TunnelKind::Vxlan, Encap::Ethernet(e))) if e.len() == 14)
        );
        b[0] = 0;
        assert_eq!(udp(40000, PORT_VXLAN, &b), None);
    }

    #[test]
    fn geneve_skips_options() {
        let mut b = vec![0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 9, 9, 9, 9];
        b.extend_from_slice(&[0xbb; 14]);
        assert!(
            matches!(udp(PORT_GENEVE, 1, &b), Some((TunnelKind::Geneve, Encap::Ethernet(e))) if e[0] == 0xbb)
        );
    }

    #[test]
    fn gtpu_with_sequence_number() {
        let mut b = vec![0x32, 0xff, 0, 40, 0, 0, 0, 1, 0, 5, 0, 0];
        b.extend_from_slice(&[0x45; 20]);
        assert!(
            matches!(udp(PORT_GTPU, PORT_GTPU, &b), Some((TunnelKind::Gtpu, Encap::Ip(i))) if i.len() == 20)
        );
        b[1] = 1; // echo request, not user data
        assert_eq!(udp(PORT_GTPU, PORT_GTPU, &b), None);
    }

    #[test]
    fn teredo_by_content_with_origin_indication() {
        let mut b = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
        b.extend_from_slice(&ipv6(4));
        assert!(matches!(udp(3797, 32900, &b), Some((TunnelKind::Teredo, Encap::Ip(_)))));
        b.push(0); // one byte too many: not an IPv6 packet
        assert_eq!(udp(3797, 32900, &b), None);
    }

    #[test]
    fn ayiya_forward() {
        let mut b = vec![0x41, 0x52, 0x11, 41, 0, 0, 0, 0];
        b.extend_from_slice(&[0u8; 16 + 20]);
        b.extend_from_slice(&ipv6(0));
        assert!(matches!(udp(1, PORT_AYIYA, &b), Some((TunnelKind::Ayiya, Encap::Ip(i))) if i[0] == 0x60));
    }
}
