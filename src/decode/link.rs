//! Link layers down to the network layer: Ethernet with VLAN stacks, MPLS, PPPoE and
//! FabricPath, Linux cooked captures (SLL, SLL2), BSD loopback, PPP, Cisco HDLC, IP over
//! InfiniBand, Linux NFLOG. Walked here because
//! etherparse stops at three VLAN tags and knows neither MPLS nor PPP.

use super::field::{be16, Field};
use super::{Other, Skip};

// LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).
pub(super) const LINK_NULL: u32 = 0;
pub(super) const LINK_ETHERNET: u32 = 1;
pub(super) const LINK_PPP: u32 = 9;
pub const LINK_RAW_12: u32 = 12;
pub const LINK_RAW_14: u32 = 14;
pub(super) const LINK_PPP_HDLC: u32 = 50;
pub(super) const LINK_C_HDLC: u32 = 104;
/// LINKTYPE_RAW: an IPv4 or IPv6 packet with no link-layer header (how reassembled datagrams
/// are decoded again).
pub const LINK_RAW: u32 = 101;
pub(super) const LINK_LOOP: u32 = 108;
pub(super) const LINK_LINUX_SLL: u32 = 113;
pub(super) const LINK_IPV4: u32 = 228;
pub(super) const LINK_IPV6: u32 = 229;
pub(super) const LINK_NFLOG: u32 = 239;
pub(super) const LINK_IPOIB: u32 = 242;
pub(super) const LINK_LINUX_SLL2: u32 = 276;

pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_ARP: u16 = 0x0806;
pub(super) const ETH_VLAN: u16 = 0x8100;
pub(super) const ETH_QINQ: u16 = 0x88a8;
pub(super) const ETH_QINQ_OLD: u16 = 0x9100;
pub(super) const ETH_IPV6: u16 = 0x86dd;
pub(super) const ETH_MPLS: u16 = 0x8847;
pub(super) const ETH_MPLS_MULTI: u16 = 0x8848;
pub(super) const ETH_PPPOE_DISC: u16 = 0x8863;
pub(super) const ETH_PPPOE_SESS: u16 = 0x8864;
pub(super) const ETH_FABRICPATH: u16 = 0x8903;

pub(super) const MAX_VLAN_TAGS: usize = 8;
const MAX_MPLS_LABELS: usize = 16;

/// Ethernet II (IEEE 802.3 with an ethertype).
mod ethernet {
    use super::Field;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// An 802.1Q or 802.1ad tag, after the ethertype that announced it.
mod vlan {
    use super::Field;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// Linux cooked capture v1 (LINKTYPE_LINUX_SLL).
mod sll {
    use super::Field;
    pub const PROTOCOL: Field = 14..16;
    pub const PAYLOAD: usize = 16;
}

/// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2).
mod sll2 {
    use super::Field;
    pub const PROTOCOL: Field = 0..2;
    pub const PAYLOAD: usize = 20;
}

/// BSD loopback (LINKTYPE_NULL, LINKTYPE_LOOP): the address family, then the packet.
mod null {
    use super::Field;
    pub const FAMILY: Field = 0..4;
    pub const PAYLOAD: usize = 4;
}

/// Cisco HDLC (LINKTYPE_C_HDLC): address, control, then an ethertype.
mod chdlc {
    use super::Field;
    pub const PROTOCOL: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// IP over InfiniBand (LINKTYPE_IPOIB, RFC 4391): link addresses, then an ethertype and two
/// reserved bytes.
mod ipoib {
    use super::Field;
    pub const ETHERTYPE: Field = 40..42;
    pub const PAYLOAD: usize = 44;
}

/// Linux NFLOG (LINKTYPE_NFLOG): a header (address family, version, resource id), then
/// type-length-value records, each padded to 4 bytes, one of them holding the packet.
mod nflog {
    pub const FAMILY: usize = 0;
    pub const TLVS: usize = 4;
    /// A record's header: its length (header included) and type, in the capturing host's
    /// byte order.
    pub const TLV_HEADER: usize = 4;
    /// NFULA_PAYLOAD: the packet, from its network-layer header.
    pub const PAYLOAD: u16 = 9;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;
}

/// One MPLS label stack entry.
mod mpls {
    pub const LEN: usize = 4;
    /// The byte holding the bottom-of-stack bit (its lowest).
    pub const BOTTOM: usize = 2;
    /// A pseudowire's control word before an Ethernet frame.
    pub const CONTROL_WORD: usize = 4;
}

/// PPPoE session header (RFC 2516): version, type, code, session id, length.
mod pppoe {
    pub const PAYLOAD: usize = 6;
}

/// Cisco FabricPath: after the outer header's ethertype, the FTag and TTL, then a frame.
mod fabricpath {
    pub const FRAME: usize = 2;
}

/// The network layer found under the link layer.
pub(super) enum Net<'a> {
    Ip(&'a [u8]),
    Other(Other),
}

pub(super) fn link(link_type: u32, data: &[u8]) -> Result<Net<'_>, Skip> {
    match link_type {
        LINK_ETHERNET => ethernet(data, 0),
        LINK_RAW | LINK_RAW_12 | LINK_RAW_14 | LINK_IPV4 | LINK_IPV6 => Ok(Net::Ip(data)),
        LINK_NULL | LINK_LOOP => {
            let family: [u8; 4] =
                data.get(null::FAMILY).ok_or(Skip::TruncatedLinkHeader)?.try_into().expect("4 bytes");
            // LINKTYPE_NULL is in the writer's byte order, LOOP in network order: accept either.
            let family = match u32::from_le_bytes(family) {
                f if f > 0xffff => u32::from_be_bytes(family),
                f => f,
            };
            match family {
                // AF_INET; AF_INET6 differs per BSD (24, 28, 30) and Linux (10).
                2 | 10 | 24 | 28 | 30 => Ok(Net::Ip(&data[null::PAYLOAD..])),
                _ => Ok(Net::Other(Other::EtherType(0))),
            }
        }
        LINK_LINUX_SLL => typed(data, sll::PROTOCOL, sll::PAYLOAD),
        LINK_LINUX_SLL2 => typed(data, sll2::PROTOCOL, sll2::PAYLOAD),
        LINK_PPP | LINK_PPP_HDLC => ppp(data),
        LINK_NFLOG => nflog(data),
        LINK_C_HDLC => typed(data, chdlc::PROTOCOL, chdlc::PAYLOAD),
        LINK_IPOIB => typed(data, ipoib::ETHERTYPE, ipoib::PAYLOAD),
        n => Err(Skip::UnsupportedLinkType(n)),
    }
}

/// An Ethernet frame; `tags` VLAN tags were already seen around it.
pub(super) fn ethernet(data: &[u8], tags: usize) -> Result<Net<'_>, Skip> {
    let ty = be16(data, ethernet::ETHERTYPE).ok_or(Skip::TruncatedLinkHeader)?;
    ether_type(ty, &data[ethernet::PAYLOAD..], tags)
}

/// Follows an ethertype through VLAN tags, MPLS labels and PPPoE down to IP.
fn ether_type(mut ty: u16, mut rest: &[u8], mut tags: usize) -> Result<Net<'_>, Skip> {
    loop {
        match ty {
            ETH_IPV4 | ETH_IPV6 => return Ok(Net::Ip(rest)),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(Skip::TooManyVlanTags);
                }
                ty = be16(rest, vlan::ETHERTYPE).ok_or(Skip::TruncatedLinkHeader)?;
                rest = &rest[vlan::PAYLOAD..];
            }
            ETH_MPLS | ETH_MPLS_MULTI => return mpls(rest),
            ETH_PPPOE_SESS => {
                let body = rest.get(pppoe::PAYLOAD..).ok_or(Skip::TruncatedLinkHeader)?;
                return ppp(body);
            }
            ETH_PPPOE_DISC => return Ok(Net::Other(Other::PppControl)),
            ETH_FABRICPATH => {
                let inner = rest.get(fabricpath::FRAME..).ok_or(Skip::TruncatedLinkHeader)?;
                return ethernet(inner, tags);
            }
            ETH_ARP => return Ok(Net::Other(Other::Arp)),
            t if t < 0x0600 => return Ok(Net::Other(Other::Llc)),
            t => return Ok(Net::Other(Other::EtherType(t))),
        }
    }
}

fn mpls(mut rest: &[u8]) -> Result<Net<'_>, Skip> {
    for _ in 0..MAX_MPLS_LABELS {
        let label = rest.get(..mpls::LEN).ok_or(Skip::TruncatedLinkHeader)?;
        let bottom = label[mpls::BOTTOM] & 0x01 != 0;
        rest = &rest[mpls::LEN..];
        if bottom {
            // MPLS does not say what it carries; IP announces itself in its version nibble.
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(Net::Ip(rest)),
                Some(0) => ethernet(rest.get(mpls::CONTROL_WORD..).ok_or(Skip::TruncatedLinkHeader)?, 0),
                _ => Ok(Net::Other(Other::EtherType(ETH_MPLS))),
            };
        }
    }
    Err(Skip::TooManyMplsLabels)
}

pub(super) fn ppp(data: &[u8]) -> Result<Net<'_>, Skip> {
    // Optional HDLC address/control bytes, then a 1- or 2-byte protocol (RFC 1661 section 2).
    let data = data.strip_prefix(&[0xff, 0x03]).unwrap_or(data);
    let first = *data.first().ok_or(Skip::TruncatedLinkHeader)?;
    let (proto, rest) = if first & 1 == 1 {
        (first as u16, &data[1..])
    } else {
        (be16(data, 0..2).ok_or(Skip::TruncatedLinkHeader)?, &data[2..])
    };
    match proto {
        0x0021 | 0x0057 => Ok(Net::Ip(rest)),
        p if p >= 0x8000 => Ok(Net::Other(Other::PppControl)),
        p => Ok(Net::Other(Other::EtherType(p))),
    }
}

/// A link header that names its payload by an ethertype at `field`, the payload from `payload`.
fn typed(data: &[u8], field: Field, payload: usize) -> Result<Net<'_>, Skip> {
    let proto = be16(data, field).ok_or(Skip::TruncatedLinkHeader)?;
    ether_type(proto, data.get(payload..).ok_or(Skip::TruncatedLinkHeader)?, 0)
}

/// The IP packet an NFLOG record carries. Its records' lengths are in the capturing host's
/// byte order, which the file does not say: little-endian (x86, ARM) unless that reads as
/// impossible and big-endian does not.
fn nflog(data: &[u8]) -> Result<Net<'_>, Skip> {
    let family = *data.get(nflog::FAMILY).ok_or(Skip::TruncatedLinkHeader)?;
    let mut rest = data.get(nflog::TLVS..).ok_or(Skip::TruncatedLinkHeader)?;
    while !rest.is_empty() {
        let header = rest.get(..nflog::TLV_HEADER).ok_or(Skip::TruncatedLinkHeader)?;
        // A record fits in what is left, but the packet's may be cut by the snap length.
        let plausible = |(len, ty): (u16, u16)| {
            let len = usize::from(len);
            len >= nflog::TLV_HEADER && (len <= rest.len() || ty == nflog::PAYLOAD)
        };
        let le = (u16::from_le_bytes([header[0], header[1]]), u16::from_le_bytes([header[2], header[3]]));
        let be = (u16::from_be_bytes([header[0], header[1]]), u16::from_be_bytes([header[2], header[3]]));
        let (len, ty) = if plausible(le) || !plausible(be) { le } else { be };
        let len = usize::from(len);
        if len < nflog::TLV_HEADER {
            return Err(Skip::BadNflogRecord);
        }
        if ty == nflog::PAYLOAD {
            // A snap length may cut the packet: what was captured goes on.
            let packet = &rest[nflog::TLV_HEADER..len.min(rest.len())];
            return Ok(match family {
                nflog::AF_INET | nflog::AF_INET6 => Net::Ip(packet),
                f => Net::Other(Other::NflogFamily(f)),
            });
        }
        rest = rest.get(len.next_multiple_of(4)..).ok_or(Skip::TruncatedLinkHeader)?;
    }
    Ok(Net::Other(Other::NflogWithoutPacket))
}
