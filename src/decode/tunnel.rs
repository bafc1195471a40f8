//! Encapsulations: where a tunnel header ends and what it carries.
//!
//! Each parser reads one tunnel header (RFC or vendor layout named on it) and returns the inner
//! payload with its type, or `None` when the bytes are not that tunnel.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of tunnel sockscope looks through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    /// IPv4 or IPv6 directly in IPv4 or IPv6 (4in4, 6in4, 4in6, 6in6).
    #[serde(rename = "ip-in-ip")]
    IpInIp,
    Gre,
    Vxlan,
    Geneve,
    Teredo,
    Ayiya,
    Gtpu,
}

impl TunnelKind {
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
    Ip(&'a [u8]),
    Ethernet(&'a [u8]),
    Ppp(&'a [u8]),
}

pub const PORT_VXLAN: u16 = 4789;
pub const PORT_GENEVE: u16 = 6081;
pub const PORT_TEREDO: u16 = 3544;
pub const PORT_AYIYA: u16 = 5072;
pub const PORT_GTPU: u16 = 2152;
/// GRE in UDP (RFC 8086).
pub const PORT_GRE_UDP: u16 = 4754;
/// The ports that make a UDP datagram a tunnel candidate (Teredo is also found on any port).
pub const TUNNEL_PORTS: [u16; 6] =
    [PORT_VXLAN, PORT_GENEVE, PORT_TEREDO, PORT_AYIYA, PORT_GTPU, PORT_GRE_UDP];

/// A UDP payload that is a tunnel: by well-known port, and Teredo also by content (its relays use
/// any port).
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

/// GRE (RFC 2784, key and sequence from RFC 2890, PPTP's enhanced GRE from RFC 2637), ERSPAN.
pub fn gre(b: &[u8]) -> Option<Encap<'_>> {
    let flags = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let proto = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    let (checksum, routing, key, seq) =
        (flags & 0x8000 != 0, flags & 0x4000 != 0, flags & 0x2000 != 0, flags & 0x1000 != 0);
    let mut off = 4;
    match flags & 0x7 {
        0 => {
            if routing {
                return None; // source routing entries: obsolete, not followed
            }
            off += 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
        }
        1 => {
            let ack = flags & 0x0080 != 0;
            off += 4 + 4 * (usize::from(seq) + usize::from(ack));
        }
        _ => return None,
    }
    let body = b.get(off..)?;
    match proto {
        0x0800 | 0x86dd => Some(Encap::Ip(body)),
        0x6558 => Some(Encap::Ethernet(body)),
        0x880b => Some(Encap::Ppp(body)),
        // ERSPAN type II has an 8-byte header when GRE carries a sequence number; type I none.
        0x88be => Some(Encap::Ethernet(if seq { body.get(8..)? } else { body })),
        // ERSPAN type III: 12 bytes, plus an 8-byte platform subheader when its O bit is set.
        0x22eb => {
            let optional = body.get(11)? & 0x01 != 0;
            Some(Encap::Ethernet(body.get(12 + if optional { 8 } else { 0 }..)?))
        }
        _ => None,
    }
}

/// VXLAN (RFC 7348): 8 bytes with the I flag, then an Ethernet frame.
fn vxlan(b: &[u8]) -> Option<Encap<'_>> {
    if b.first()? & 0x08 == 0 {
        return None;
    }
    Some(Encap::Ethernet(b.get(8..)?))
}

/// Geneve (RFC 8926): version 0, options, then the frame its protocol type names.
fn geneve(b: &[u8]) -> Option<Encap<'_>> {
    let first = *b.first()?;
    if first >> 6 != 0 {
        return None;
    }
    let opts = usize::from(first & 0x3f) * 4;
    let proto = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    let body = b.get(8 + opts..)?;
    match proto {
        0x6558 => Some(Encap::Ethernet(body)),
        0x0800 | 0x86dd => Some(Encap::Ip(body)),
        _ => None,
    }
}

/// GTPv1-U (3GPP TS 29.281): a G-PDU carries a user IP packet after the header and its
/// extension headers.
fn gtpu(b: &[u8]) -> Option<Encap<'_>> {
    let flags = *b.first()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || *b.get(1)? != 0xff {
        return None;
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        off = 12;
        let mut next = *b.get(11)?;
        if flags & 0x04 != 0 {
            // Extension headers: length in 4-byte units, the last byte names the next one.
            for _ in 0..16 {
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

/// AYIYA ("Anything In Anything", draft-massar-v6ops-ayiya): identity and signature, then IP.
fn ayiya(b: &[u8]) -> Option<Encap<'_>> {
    let id_len = 1usize << (b.first()? >> 4);
    let sig_len = usize::from(b.get(1)? >> 4) * 4;
    let opcode = b.get(2)? & 0x0f;
    let next = *b.get(3)?;
    if opcode != 1 || !(next == 4 || next == 41) {
        return None;
    }
    Some(Encap::Ip(b.get(8 + id_len + sig_len..)?))
}

/// Teredo (RFC 4380): optional authentication and origin indicators, then an IPv6 packet whose
/// length must account for exactly the rest of the datagram.
fn teredo(mut b: &[u8]) -> Option<Encap<'_>> {
    if b.len() >= 2 && b[..2] == [0, 1] {
        let id_len = usize::from(*b.get(2)?);
        let auth_len = usize::from(*b.get(3)?);
        b = b.get(4 + id_len + auth_len + 9..)?; // nonce (8) and confirmation (1)
    }
    if b.len() >= 2 && b[..2] == [0, 0] {
        b = b.get(8..)?;
    }
    let header = b.get(..40)?;
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    (header[0] >> 4 == 6 && 40 + payload_len == b.len()).then_some(Encap::Ip(b))
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
