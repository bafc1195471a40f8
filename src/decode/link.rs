//! Link layers down to the network layer: Ethernet with VLAN stacks, MPLS, PPPoE, FabricPath,
//! PBB, VN-Tag, E-Tag, MACsec and LLC/SNAP, Linux cooked captures (SLL, SLL2), BSD loopback,
//! PPP, Cisco HDLC, IP over InfiniBand, Linux NFLOG, ERF; 802.11 and its radio headers in
//! `wlan`. Walked here because etherparse stops at three VLAN tags and knows neither MPLS nor
//! PPP.

use super::field::{be16, Field};
use super::wlan;
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
pub(super) const LINK_IEEE802_11: u32 = 105;
pub(super) const LINK_LOOP: u32 = 108;
pub(super) const LINK_LINUX_SLL: u32 = 113;
pub(super) const LINK_PRISM: u32 = 119;
pub(super) const LINK_RADIOTAP: u32 = 127;
pub(super) const LINK_AVS: u32 = 163;
pub(super) const LINK_PPI: u32 = 192;
pub(super) const LINK_ERF: u32 = 197;
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
pub(super) const ETH_PBB: u16 = 0x88e7;
pub(super) const ETH_VNTAG: u16 = 0x8926;
pub(super) const ETH_ETAG: u16 = 0x893f;
pub(super) const ETH_MACSEC: u16 = 0x88e5;
/// Below this, the field where an ethertype would be is an 802.3 length: an LLC header follows.
const ETH_MIN_TYPE: u16 = 0x0600;

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

/// Cisco FabricPath: after the outer header's ethertype, the FTag and TTL, then the inner
/// frame's addresses and ethertype.
mod fabricpath {
    use super::Field;
    pub const ETHERTYPE: Field = 14..16;
    pub const PAYLOAD: usize = 16;
}

/// IEEE 802.1ah (PBB): the I-Tag, then the customer's frame from its addresses.
mod pbb {
    use super::Field;
    pub const ETHERTYPE: Field = 16..18;
    pub const PAYLOAD: usize = 18;
}

/// Cisco VN-Tag: 4 bytes of tag, then an ethertype.
mod vntag {
    use super::Field;
    pub const ETHERTYPE: Field = 4..6;
    pub const PAYLOAD: usize = 6;
}

/// IEEE 802.1BR E-Tag: 6 bytes of tag, then an ethertype.
mod etag {
    use super::Field;
    pub const ETHERTYPE: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// IEEE 802.1AE MACsec SecTAG: TCI and association number, short length, packet number, then
/// the secure channel identifier when the TCI says so.
mod macsec {
    pub const TCI: usize = 0;
    pub const TCI_SC: u8 = 0x20;
    /// Encrypted, or changed text: either way the user data cannot be read.
    pub const TCI_E_OR_C: u8 = 0x0c;
    pub const SECTAG: usize = 6;
    pub const SCI: usize = 8;
    pub const ETHERTYPE_LEN: usize = 2;
}

/// IEEE 802.2 LLC: DSAP, SSAP, control; with SNAP, an OUI and an ethertype follow.
mod llc {
    use super::Field;
    pub const HEADER: Field = 0..3;
    pub const SNAP: [u8; 3] = [0xaa, 0xaa, 0x03];
    /// The IP SAP (RFC 948) in an unnumbered information frame.
    pub const IP: [u8; 3] = [0x06, 0x06, 0x03];
    pub const OUI: Field = 3..6;
    /// Ethertypes under the encapsulated-Ethernet OUI (RFC 1042) and the 802.1H bridge tunnel.
    pub const OUI_ETHERNET: [u8; 3] = [0x00, 0x00, 0x00];
    pub const OUI_BRIDGE_TUNNEL: [u8; 3] = [0x00, 0x00, 0xf8];
    pub const ETHERTYPE: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// ERF, the Endace record format of DAG cards, as libpcap presents it (LINKTYPE_ERF): a 16-byte
/// record header (timestamp, type, flags, record and wire lengths, loss counter), extension
/// headers, then the frame.
mod erf {
    pub const TYPE: usize = 8;
    pub const HEADER: usize = 16;
    /// In the type and in each extension header's first byte: another extension header follows.
    pub const MORE: u8 = 0x80;
    pub const EXTENSION: usize = 8;
    /// Ethernet records put an offset and a pad byte before the frame.
    pub const ETH_PAD: usize = 2;
    /// Record types (Endace's erftypes.h): Ethernet, HDLC on Packet over SONET (PPP or Cisco
    /// HDLC), IP, each HDLC and Ethernet also with colour or hash in the loss counter.
    pub const HDLC_POS: u8 = 1;
    pub const ETH: u8 = 2;
    pub const COLOR_HDLC_POS: u8 = 10;
    pub const COLOR_ETH: u8 = 11;
    pub const DSM_COLOR_HDLC_POS: u8 = 15;
    pub const DSM_COLOR_ETH: u8 = 16;
    pub const COLOR_HASH_POS: u8 = 19;
    pub const COLOR_HASH_ETH: u8 = 20;
    pub const IPV4: u8 = 22;
    pub const IPV6: u8 = 23;
}

/// The network layer found under the link layer.
pub(super) enum Net<'a> {
    Ip(&'a [u8]),
    Other(Other),
}

pub(super) fn link(link_type: u32, data: &[u8]) -> Result<Net<'_>, Skip> {
    match link_type {
        LINK_ETHERNET => ethernet(data),
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
        LINK_IEEE802_11 => wlan::ieee80211(data, false),
        LINK_RADIOTAP => wlan::radiotap(data),
        LINK_PPI => wlan::ppi(data),
        LINK_PRISM => wlan::prism(data),
        LINK_AVS => wlan::avs(data),
        LINK_ERF => erf(data),
        n => Err(Skip::UnsupportedLinkType(n)),
    }
}

/// An Ethernet frame.
pub(super) fn ethernet(data: &[u8]) -> Result<Net<'_>, Skip> {
    typed(data, ethernet::ETHERTYPE, ethernet::PAYLOAD)
}

/// What follows an 802.3 length field: an LLC header (an 802.11 data frame's payload too).
pub(super) fn llc(data: &[u8]) -> Result<Net<'_>, Skip> {
    ether_type(0, data, 0)
}

/// The ethertype at `field` of a header and what follows the header, from `payload`.
fn next_type(data: &[u8], field: Field, payload: usize) -> Result<(u16, &[u8]), Skip> {
    let ty = be16(data, field).ok_or(Skip::TruncatedLinkHeader)?;
    Ok((ty, data.get(payload..).ok_or(Skip::TruncatedLinkHeader)?))
}

/// Follows an ethertype through tags (VLAN, VN-Tag, E-Tag, clear MACsec), frames inside frames
/// (PBB, FabricPath, Ethernet over MPLS), LLC/SNAP and PPPoE down to IP. A loop rather than
/// recursion, so that a frame of nested headers cannot exhaust the stack: each round consumes
/// bytes, so it ends.
fn ether_type(mut ty: u16, mut rest: &[u8], mut tags: usize) -> Result<Net<'_>, Skip> {
    loop {
        match ty {
            ETH_IPV4 | ETH_IPV6 => return Ok(Net::Ip(rest)),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD | ETH_VNTAG | ETH_ETAG => {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(Skip::TooManyVlanTags);
                }
                (ty, rest) = match ty {
                    ETH_VNTAG => next_type(rest, vntag::ETHERTYPE, vntag::PAYLOAD)?,
                    ETH_ETAG => next_type(rest, etag::ETHERTYPE, etag::PAYLOAD)?,
                    _ => next_type(rest, vlan::ETHERTYPE, vlan::PAYLOAD)?,
                };
            }
            ETH_MPLS | ETH_MPLS_MULTI => {
                let payload = mpls(rest)?;
                // MPLS does not say what it carries; IP announces itself in its version nibble.
                match payload.first().map(|b| b >> 4) {
                    Some(4) | Some(6) => return Ok(Net::Ip(payload)),
                    Some(0) => {
                        let frame = payload.get(mpls::CONTROL_WORD..).ok_or(Skip::TruncatedLinkHeader)?;
                        (ty, rest) = next_type(frame, ethernet::ETHERTYPE, ethernet::PAYLOAD)?;
                        tags = 0;
                    }
                    _ => return Ok(Net::Other(Other::EtherType(ETH_MPLS))),
                }
            }
            ETH_PPPOE_SESS => {
                let body = rest.get(pppoe::PAYLOAD..).ok_or(Skip::TruncatedLinkHeader)?;
                return ppp(body);
            }
            ETH_PPPOE_DISC => return Ok(Net::Other(Other::PppControl)),
            ETH_FABRICPATH => (ty, rest) = next_type(rest, fabricpath::ETHERTYPE, fabricpath::PAYLOAD)?,
            ETH_PBB => (ty, rest) = next_type(rest, pbb::ETHERTYPE, pbb::PAYLOAD)?,
            ETH_MACSEC => {
                let tci = *rest.get(macsec::TCI).ok_or(Skip::TruncatedLinkHeader)?;
                if tci & macsec::TCI_E_OR_C != 0 {
                    return Ok(Net::Other(Other::Macsec));
                }
                let sectag =
                    if tci & macsec::TCI_SC != 0 { macsec::SECTAG + macsec::SCI } else { macsec::SECTAG };
                (ty, rest) =
                    next_type(rest, sectag..sectag + macsec::ETHERTYPE_LEN, sectag + macsec::ETHERTYPE_LEN)?;
            }
            ETH_ARP => return Ok(Net::Other(Other::Arp)),
            t if t < ETH_MIN_TYPE => {
                let header = rest.get(llc::HEADER).ok_or(Skip::TruncatedLinkHeader)?;
                if header == llc::IP {
                    return Ok(Net::Ip(&rest[llc::HEADER.end..]));
                }
                if header != llc::SNAP {
                    return Ok(Net::Other(Other::Llc));
                }
                let oui = rest.get(llc::OUI).ok_or(Skip::TruncatedLinkHeader)?;
                if oui != llc::OUI_ETHERNET && oui != llc::OUI_BRIDGE_TUNNEL {
                    return Ok(Net::Other(Other::Llc));
                }
                (ty, rest) = next_type(rest, llc::ETHERTYPE, llc::PAYLOAD)?;
            }
            t => return Ok(Net::Other(Other::EtherType(t))),
        }
    }
}

/// The payload under an MPLS label stack.
fn mpls(mut rest: &[u8]) -> Result<&[u8], Skip> {
    for _ in 0..MAX_MPLS_LABELS {
        let label = rest.get(..mpls::LEN).ok_or(Skip::TruncatedLinkHeader)?;
        let bottom = label[mpls::BOTTOM] & 0x01 != 0;
        rest = &rest[mpls::LEN..];
        if bottom {
            return Ok(rest);
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
    let (ty, rest) = next_type(data, field, payload)?;
    // The usual frame goes no further: the walk's loop keeps state it would not use.
    if ty == ETH_IPV4 || ty == ETH_IPV6 {
        return Ok(Net::Ip(rest));
    }
    ether_type(ty, rest, 0)
}

/// An ERF record: past its header and extension headers, a frame of the kind its type names.
fn erf(data: &[u8]) -> Result<Net<'_>, Skip> {
    let ty = *data.get(erf::TYPE).ok_or(Skip::TruncatedLinkHeader)?;
    let mut at = erf::HEADER;
    let mut more = ty & erf::MORE != 0;
    while more {
        more = data.get(at).ok_or(Skip::TruncatedLinkHeader)? & erf::MORE != 0;
        at += erf::EXTENSION;
    }
    let body = data.get(at..).ok_or(Skip::TruncatedLinkHeader)?;
    match ty & !erf::MORE {
        erf::ETH | erf::COLOR_ETH | erf::DSM_COLOR_ETH | erf::COLOR_HASH_ETH => {
            ethernet(body.get(erf::ETH_PAD..).ok_or(Skip::TruncatedLinkHeader)?)
        }
        // PPP in HDLC framing starts with its all-stations address; Cisco HDLC does not.
        erf::HDLC_POS | erf::COLOR_HDLC_POS | erf::DSM_COLOR_HDLC_POS | erf::COLOR_HASH_POS => {
            if body.first() == Some(&0xff) {
                ppp(body)
            } else {
                typed(body, chdlc::PROTOCOL, chdlc::PAYLOAD)
            }
        }
        erf::IPV4 | erf::IPV6 => Ok(Net::Ip(body)),
        t => Ok(Net::Other(Other::ErfType(t))),
    }
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
