//! Link layers to TCP/UDP views. Every frame ends in exactly one bucket: a TCP segment, a UDP
//! datagram, another protocol, or a skip with a named reason.
//!
//! Link-layer walking (Ethernet, VLAN stacks, MPLS, PPPoE, SLL, SLL2, BSD loopback, PPP) is done
//! here because etherparse stops at three VLAN tags and knows neither MPLS nor PPP; IP and its
//! extension headers are etherparse's lax slices, but for the usual plain IPv4 and IPv6 headers,
//! read directly because that is much cheaper (`plain_ipv4`, `plain_ipv6`). TCP and UDP headers
//! are read by small views that, unlike strict slicing, still yield a segment when the snap length
//! cut the TCP options.

use std::fmt;
use std::net::IpAddr;

pub mod frag;
pub mod tunnel;

use etherparse::{IpNumber, Ipv6ExtensionSlice, LaxIpSlice};

use crate::tcp::seq::SeqNum;
use frag::{FragKey, Fragment};
use tunnel::{Encap, TunnelKind};

/// A decoded frame: the tunnels it came through, outermost first, and what was inside.
#[derive(Debug)]
pub struct Packet {
    /// Empty (and not allocated) for the usual packet outside any tunnel.
    pub tunnels: Vec<Hop>,
    pub inner: Decoded,
}

/// At most this many tunnel layers are looked through (a tunnel in a tunnel in a tunnel ...).
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// One tunnel layer: its kind, the outer IP header, and the outer UDP datagram for UDP tunnels.
#[derive(Clone, Copy, Debug)]
pub struct Hop {
    pub kind: TunnelKind,
    pub ip: Ip,
    pub udp: Option<UdpDatagram>,
}

/// What one frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Tcp(Ip, TcpSegment),
    Udp(Ip, UdpDatagram),
    Other(Other),
    Skipped(Skip),
    /// A piece of a fragmented IP datagram, to be reassembled.
    Fragment(Box<Fragment>),
}

/// The IP layer facts the flow table needs.
#[derive(Clone, Copy, Debug)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Length of the IP packet on the wire (from the IP header).
    pub wire_len: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
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
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct TcpSegment {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    /// Payload length from the IP length, even when the snap length cut the bytes.
    pub payload_len: u32,
    pub options: TcpOptions,
}

#[derive(Clone, Copy, Debug)]
pub struct UdpDatagram {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: u32,
}

/// Not TCP or UDP, but a packet we understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Other {
    Icmp,
    Icmpv6,
    Arp,
    IpProto(u8),
    EtherType(u16),
    /// 802.3 frames with a length field (LLC, STP, CDP ...).
    Llc,
    /// PPP control protocols (LCP, IPCP ...), PPPoE discovery.
    PppControl,
}

impl fmt::Display for Other {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Other::Icmp => write!(f, "icmp"),
            Other::Icmpv6 => write!(f, "icmpv6"),
            Other::Arp => write!(f, "arp"),
            Other::IpProto(p) => write!(f, "ip protocol {p}"),
            Other::EtherType(t) => write!(f, "ethertype 0x{t:04x}"),
            Other::Llc => write!(f, "802.3/llc"),
            Other::PppControl => write!(f, "ppp control"),
        }
    }
}

/// Why a frame was not attributed to any protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    UnsupportedLinkType(u32),
    TruncatedLinkHeader,
    TooManyVlanTags,
    TooManyMplsLabels,
    TruncatedIpHeader,
    BadIpHeader,
    /// An IPv6 extension header chain that is cut short or malformed.
    BadIpv6Extension,
    /// A fragment cut short by the snap length: it cannot be reassembled.
    IpFragment,
    /// Fragments of a datagram that never completed (timeout or end of input).
    FragmentIncomplete,
    /// Fragments of a datagram larger than 64 KiB or with too many pieces.
    FragmentTooBig,
    TruncatedTcpHeader,
    BadTcpHeader,
    TruncatedUdpHeader,
    /// A record the capture reader could not attribute (e.g. a pcapng block for no interface).
    BadRecord(&'static str),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::UnsupportedLinkType(n) => write!(f, "unsupported link type {n}"),
            Skip::TruncatedLinkHeader => write!(f, "truncated link-layer header"),
            Skip::TooManyVlanTags => write!(f, "too many VLAN tags"),
            Skip::TooManyMplsLabels => write!(f, "too many MPLS labels"),
            Skip::TruncatedIpHeader => write!(f, "truncated IP header"),
            Skip::BadIpHeader => write!(f, "bad IP header"),
            Skip::BadIpv6Extension => write!(f, "bad IPv6 extension header"),
            Skip::IpFragment => write!(f, "IP fragment cut short by the snap length"),
            Skip::FragmentIncomplete => write!(f, "IP fragment of a datagram that never completed"),
            Skip::FragmentTooBig => write!(f, "IP fragment of an oversized datagram"),
            Skip::TruncatedTcpHeader => write!(f, "truncated TCP header"),
            Skip::BadTcpHeader => write!(f, "bad TCP header"),
            Skip::TruncatedUdpHeader => write!(f, "truncated UDP header"),
            Skip::BadRecord(why) => f.write_str(why),
        }
    }
}

// LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).
const LINK_NULL: u32 = 0;
const LINK_ETHERNET: u32 = 1;
const LINK_PPP: u32 = 9;
const LINK_RAW_12: u32 = 12;
const LINK_RAW_14: u32 = 14;
const LINK_PPP_HDLC: u32 = 50;
pub const LINK_RAW: u32 = 101;
const LINK_LOOP: u32 = 108;
const LINK_LINUX_SLL: u32 = 113;
const LINK_IPV4: u32 = 228;
const LINK_IPV6: u32 = 229;
const LINK_LINUX_SLL2: u32 = 276;

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_IPV6: u16 = 0x86dd;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MULTI: u16 = 0x8848;
const ETH_PPPOE_DISC: u16 = 0x8863;
const ETH_PPPOE_SESS: u16 = 0x8864;
const ETH_FABRICPATH: u16 = 0x8903;

const MAX_VLAN_TAGS: usize = 8;
const MAX_MPLS_LABELS: usize = 16;

/// Decodes one frame of the given link type, looking through tunnels when `decap` is set.
pub fn decode(link_type: u32, data: &[u8], decap: bool) -> Packet {
    let mut walk = Walk { decap, tunnels: Vec::new() };
    let inner = walk.net(link(link_type, data));
    Packet { tunnels: walk.tunnels, inner }
}

/// The descent through one frame's layers, collecting tunnel layers on the way.
struct Walk {
    decap: bool,
    tunnels: Vec<Hop>,
}

impl Walk {
    fn net(&mut self, net: Result<Net<'_>, Skip>) -> Decoded {
        match net {
            Ok(Net::Ip(ip)) => self.ip(ip),
            Ok(Net::Other(o)) => Decoded::Other(o),
            Err(skip) => Decoded::Skipped(skip),
        }
    }

    /// Decodes what a tunnel carries. `None` (and the layer forgotten) when the payload does not
    /// decode: then the tunnel was not one, and the outer packet stands for itself.
    fn enter(&mut self, hop: Hop, encap: Encap<'_>) -> Option<Decoded> {
        if !self.decap || self.tunnels.len() == MAX_TUNNEL_DEPTH {
            return None;
        }
        self.tunnels.push(hop);
        let inner = match encap {
            Encap::Ip(b) => self.ip(b),
            Encap::Ethernet(b) => self.net(ethernet(b, 0)),
            Encap::Ppp(b) => self.net(ppp(b)),
        };
        if matches!(inner, Decoded::Skipped(_)) {
            self.tunnels.pop();
            return None;
        }
        Some(inner)
    }
}

/// The network layer found under the link layer.
enum Net<'a> {
    Ip(&'a [u8]),
    Other(Other),
}

fn link(link_type: u32, data: &[u8]) -> Result<Net<'_>, Skip> {
    match link_type {
        LINK_ETHERNET => ethernet(data, 0),
        LINK_RAW | LINK_RAW_12 | LINK_RAW_14 | LINK_IPV4 | LINK_IPV6 => Ok(Net::Ip(data)),
        LINK_NULL | LINK_LOOP => {
            let family = data.get(..4).ok_or(Skip::TruncatedLinkHeader)?;
            // LINKTYPE_NULL is in the writer's byte order, LOOP in network order: accept either.
            let family = match u32::from_le_bytes(family.try_into().expect("4 bytes")) {
                f if f > 0xffff => u32::from_be_bytes(family.try_into().expect("4 bytes")),
                f => f,
            };
            match family {
                // AF_INET; AF_INET6 differs per BSD (24, 28, 30) and Linux (10).
                2 | 10 | 24 | 28 | 30 => Ok(Net::Ip(&data[4..])),
                _ => Ok(Net::Other(Other::EtherType(0))),
            }
        }
        LINK_LINUX_SLL => {
            let proto = be16(data, 14).ok_or(Skip::TruncatedLinkHeader)?;
            ether_type(proto, &data[16..], 0)
        }
        LINK_LINUX_SLL2 => {
            let proto = be16(data, 0).ok_or(Skip::TruncatedLinkHeader)?;
            data.get(20..).ok_or(Skip::TruncatedLinkHeader).and_then(|rest| ether_type(proto, rest, 0))
        }
        LINK_PPP | LINK_PPP_HDLC => ppp(data),
        n => Err(Skip::UnsupportedLinkType(n)),
    }
}

fn ethernet(data: &[u8], depth: usize) -> Result<Net<'_>, Skip> {
    let ty = be16(data, 12).ok_or(Skip::TruncatedLinkHeader)?;
    ether_type(ty, &data[14..], depth)
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
                ty = be16(rest, 2).ok_or(Skip::TruncatedLinkHeader)?;
                rest = &rest[4..];
            }
            ETH_MPLS | ETH_MPLS_MULTI => return mpls(rest),
            ETH_PPPOE_SESS => {
                // 6-byte PPPoE header, then a PPP protocol field.
                let body = rest.get(6..).ok_or(Skip::TruncatedLinkHeader)?;
                return ppp(body);
            }
            ETH_PPPOE_DISC => return Ok(Net::Other(Other::PppControl)),
            // Cisco FabricPath: a 16-byte outer header (MACs, FP tag) precedes an Ethernet frame.
            ETH_FABRICPATH => {
                let inner = rest.get(2..).ok_or(Skip::TruncatedLinkHeader)?;
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
        let label = rest.get(..4).ok_or(Skip::TruncatedLinkHeader)?;
        let bottom = label[2] & 0x01 != 0;
        rest = &rest[4..];
        if bottom {
            // MPLS does not say what it carries; IP announces itself in its version nibble.
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(Net::Ip(rest)),
                Some(0) => ethernet(rest.get(4..).ok_or(Skip::TruncatedLinkHeader)?, 0),
                _ => Ok(Net::Other(Other::EtherType(ETH_MPLS))),
            };
        }
    }
    Err(Skip::TooManyMplsLabels)
}

fn ppp(data: &[u8]) -> Result<Net<'_>, Skip> {
    // Optional HDLC address/control bytes, then a 1- or 2-byte protocol (RFC 1661 section 2).
    let data = data.strip_prefix(&[0xff, 0x03]).unwrap_or(data);
    let first = *data.first().ok_or(Skip::TruncatedLinkHeader)?;
    let (proto, rest) = if first & 1 == 1 {
        (first as u16, &data[1..])
    } else {
        (be16(data, 0).ok_or(Skip::TruncatedLinkHeader)?, &data[2..])
    };
    match proto {
        0x0021 | 0x0057 => Ok(Net::Ip(rest)),
        p if p >= 0x8000 => Ok(Net::Other(Other::PppControl)),
        p => Ok(Net::Other(Other::EtherType(p))),
    }
}

/// The IPv6 extension headers a lax parse validated. etherparse's own iterator does not stop
/// where a lax parse stopped (a header cut short, a hop-by-hop header not first): it goes on to
/// read a header from the bytes after the last one, past the end of the slice (undefined
/// behaviour in its unchecked code). Counting the bytes walked stops it at the end.
fn extensions<'a>(
    exts: &etherparse::Ipv6ExtensionsSlice<'a>,
) -> impl Iterator<Item = Ipv6ExtensionSlice<'a>> {
    let mut left = exts.slice().len();
    let mut iter = exts.clone().into_iter();
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let e = iter.next()?;
        let len = match &e {
            Ipv6ExtensionSlice::HopByHop(h)
            | Ipv6ExtensionSlice::Routing(h)
            | Ipv6ExtensionSlice::DestinationOptions(h) => h.slice().len(),
            Ipv6ExtensionSlice::Fragment(f) => f.slice().len(),
            Ipv6ExtensionSlice::Authentication(a) => a.slice().len(),
        };
        left = left.saturating_sub(len);
        Some(e)
    })
}

impl Walk {
    fn ip(&mut self, data: &[u8]) -> Decoded {
        match plain_ipv4(data).or_else(|| plain_ipv6(data)) {
            Some((meta, body, proto, missing)) => self.transport(meta, body, proto, missing),
            None => self.any_ip(data),
        }
    }

    /// Any IP packet, through etherparse's lax slices: IPv6 and its extension headers,
    /// fragments, IPv4 options and authentication headers, lengths that disagree.
    fn any_ip(&mut self, data: &[u8]) -> Decoded {
        let (ip, ext_err) = match LaxIpSlice::from_slice(data) {
            Ok(v) => v,
            Err(etherparse::err::ip::LaxHeaderSliceError::Len(_)) => {
                return Decoded::Skipped(Skip::TruncatedIpHeader)
            }
            Err(etherparse::err::ip::LaxHeaderSliceError::Content(_)) => {
                return Decoded::Skipped(Skip::BadIpHeader)
            }
        };
        let payload = ip.payload();
        // (length on the wire, fragment: identification, byte offset, more fragments follow)
        let (wire_len, fragment) = match &ip {
            LaxIpSlice::Ipv4(v4) => {
                let h = v4.header();
                let offset = h.fragments_offset().value() as u32 * 8;
                let frag = (h.more_fragments() || offset != 0)
                    .then(|| (h.identification() as u32, offset, h.more_fragments()));
                (h.total_len() as u32, frag)
            }
            LaxIpSlice::Ipv6(v6) => {
                let frag = extensions(v6.extensions()).find_map(|e| match e {
                    Ipv6ExtensionSlice::Fragment(f) if f.is_fragmenting_payload() => {
                        Some((f.identification(), f.fragment_offset().value() as u32 * 8, f.more_fragments()))
                    }
                    _ => None,
                });
                (40 + v6.header().payload_length() as u32, frag)
            }
        };
        if let Some((id, offset, more)) = fragment {
            if payload.incomplete {
                // A first fragment cut by the snap length still shows its transport header.
                if offset != 0 {
                    return Decoded::Skipped(Skip::IpFragment);
                }
            } else {
                let header = (offset == 0).then(|| match &ip {
                    LaxIpSlice::Ipv4(v4) => v4.header().slice().to_vec(),
                    LaxIpSlice::Ipv6(v6) => frag::ipv6_header(
                        v6.header().source_addr(),
                        v6.header().destination_addr(),
                        payload.ip_number.0,
                    ),
                });
                let key = FragKey {
                    src: ip.source_addr(),
                    dst: ip.destination_addr(),
                    id,
                    proto: payload.ip_number.0,
                    outer: self.tunnels.last().map(|h| (h.ip.src, h.ip.dst)),
                };
                let data = payload.payload.to_vec();
                return Decoded::Fragment(Box::new(Fragment { key, offset, more, header, data }));
            }
        }
        if ext_err.is_some() {
            return Decoded::Skipped(Skip::BadIpv6Extension);
        }
        // Bytes of IP payload the snap length cut off: the header still tells their length.
        let missing = if payload.incomplete { wire_len.saturating_sub(data.len() as u32) } else { 0 };
        let meta = Ip { src: ip.source_addr(), dst: ip.destination_addr(), wire_len };
        self.transport(meta, payload.payload, payload.ip_number, missing)
    }

    /// What an IP packet (`meta`) carries in `body`, of which the capture cut `missing` bytes.
    fn transport(&mut self, meta: Ip, body: &[u8], proto: IpNumber, missing: u32) -> Decoded {
        match proto {
            IpNumber::TCP => match tcp(body, missing) {
                Ok(seg) => Decoded::Tcp(meta, seg),
                Err(skip) => Decoded::Skipped(skip),
            },
            IpNumber::UDP => match udp(body) {
                Some(d) => {
                    let inner = tunnel::udp(d.src_port, d.dst_port, &body[8..])
                        .and_then(|(kind, encap)| self.enter(Hop { kind, ip: meta, udp: Some(d) }, encap));
                    inner.unwrap_or(Decoded::Udp(meta, d))
                }
                None => Decoded::Skipped(Skip::TruncatedUdpHeader),
            },
            IpNumber::IPV4 | IpNumber::IPV6 => self
                .enter(Hop { kind: TunnelKind::IpInIp, ip: meta, udp: None }, Encap::Ip(body))
                .unwrap_or(Decoded::Other(Other::IpProto(proto.0))),
            IpNumber::GRE => tunnel::gre(body)
                .and_then(|encap| self.enter(Hop { kind: TunnelKind::Gre, ip: meta, udp: None }, encap))
                .unwrap_or(Decoded::Other(Other::IpProto(proto.0))),
            IpNumber::ICMP => Decoded::Other(Other::Icmp),
            IpNumber::IPV6_ICMP => Decoded::Other(Other::Icmpv6),
            n => Decoded::Other(Other::IpProto(n.0)),
        }
    }
}

/// The usual IPv4 packet, read directly: no options, not a fragment, no authentication header,
/// a total length that covers the header. Its packet, payload, protocol and the payload bytes
/// the snap length cut, exactly as `Walk::any_ip` reads them (a property test holds the two
/// together); anything else is left to it. Most packets are plain IPv4, and this skips the
/// general parse's work (docs/performance.md, "Decoding fast paths").
fn plain_ipv4(data: &[u8]) -> Option<(Ip, &[u8], IpNumber, u32)> {
    let h: &[u8; 20] = data.get(..20)?.try_into().ok()?;
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
    let proto = IpNumber(h[9]);
    if h[0] != 0x45 || fragment || total < 20 || proto == IpNumber::AUTHENTICATION_HEADER {
        return None;
    }
    let octets = |at: usize| IpAddr::from([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let meta = Ip { src: octets(12), dst: octets(16), wire_len: total as u32 };
    let (body, missing) = payload(data, 20, total);
    Some((meta, body, proto, missing))
}

/// The usual IPv6 packet, read directly as `plain_ipv4` is: TCP or UDP right after the fixed
/// header (no extension headers), a payload length that is not zero (jumbograms).
fn plain_ipv6(data: &[u8]) -> Option<(Ip, &[u8], IpNumber, u32)> {
    let h: &[u8; 40] = data.get(..40)?.try_into().ok()?;
    let payload_len = u16::from_be_bytes([h[4], h[5]]) as usize;
    let proto = IpNumber(h[6]);
    if h[0] >> 4 != 6 || payload_len == 0 || !matches!(proto, IpNumber::TCP | IpNumber::UDP) {
        return None;
    }
    let address = |at: usize| IpAddr::from(<[u8; 16]>::try_from(&h[at..at + 16]).expect("16 bytes"));
    let total = 40 + payload_len;
    let meta = Ip { src: address(8), dst: address(24), wire_len: total as u32 };
    let (body, missing) = payload(data, 40, total);
    Some((meta, body, proto, missing))
}

/// The payload of an IP packet of `total` bytes with a `header`-byte header, and how many of its
/// bytes the snap length cut (`header` is at most both `total` and `data.len()`).
fn payload(data: &[u8], header: usize, total: usize) -> (&[u8], u32) {
    match data.get(header..total) {
        Some(body) => (body, 0),
        None => (&data[header..], (total - data.len()) as u32),
    }
}

/// Reads a TCP header. `missing` is how many payload bytes the capture did not keep.
fn tcp(b: &[u8], missing: u32) -> Result<TcpSegment, Skip> {
    if b.len() < 20 {
        return Err(Skip::TruncatedTcpHeader);
    }
    let header_len = ((b[12] >> 4) as usize) * 4;
    if header_len < 20 {
        return Err(Skip::BadTcpHeader);
    }
    let flags = TcpFlags(u16::from_be_bytes([b[12] & 0x01, b[13]]));
    // Options the snap length cut are simply not seen; the payload length stays right.
    let options = b.get(20..header_len.min(b.len())).map(tcp_options).unwrap_or_default();
    let payload_len = (b.len() as u32 + missing).saturating_sub(header_len as u32);
    Ok(TcpSegment {
        src_port: u16::from_be_bytes([b[0], b[1]]),
        dst_port: u16::from_be_bytes([b[2], b[3]]),
        seq: SeqNum(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
        ack: SeqNum(u32::from_be_bytes([b[8], b[9], b[10], b[11]])),
        flags,
        window: u16::from_be_bytes([b[14], b[15]]),
        payload_len,
        options,
    })
}

fn tcp_options(mut o: &[u8]) -> TcpOptions {
    let mut opts = TcpOptions::default();
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => {
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
            (2, 4) => opts.mss = Some(u16::from_be_bytes([o[2], o[3]])),
            (3, 3) => opts.window_scale = Some(o[2]),
            (4, 2) => opts.sack_permitted = true,
            (8, 10) => opts.timestamps = true,
            _ => {}
        }
        o = &o[len..];
    }
    opts
}

fn udp(b: &[u8]) -> Option<UdpDatagram> {
    let h = b.get(..8)?;
    let len = u16::from_be_bytes([h[4], h[5]]) as u32;
    // A zero length (jumbograms, TSO captures) falls back to what was captured.
    let payload_len = if len >= 8 { len - 8 } else { b.len() as u32 - 8 };
    Some(UdpDatagram {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        payload_len,
    })
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The direct IPv4 read decodes every packet it takes exactly as etherparse's path does,
        /// tunnels inside included: headers near and far from the plain case, lengths that cover,
        /// cut or undercut the header, every flag and fragment offset.
        #[test]
        fn plain_ipv4_reads_as_etherparse_does(
            first in proptest::sample::select(vec![0x45u8, 0x45, 0x45, 0x45, 0x46, 0x44, 0x4f, 0x55, 0x60, 0x00]),
            total in 0u16..120,
            flags in proptest::sample::select(vec![0u16, 0, 0, 0x4000, 0x4000, 0x2000, 0x0001, 0x8000, 0x1fff]),
            proto in proptest::sample::select(vec![6u8, 6, 6, 17, 17, 17, 1, 4, 41, 47, 51, 58, 132, 255]),
            rest in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..100),
            tunnel_port in proptest::bool::ANY,
        ) {
            let mut data = vec![first, 0];
            data.extend_from_slice(&total.to_be_bytes());
            data.extend_from_slice(&[0, 1]);
            data.extend_from_slice(&flags.to_be_bytes());
            data.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            data.extend_from_slice(&rest);
            if tunnel_port && data.len() >= 24 {
                data[22..24].copy_from_slice(&4789u16.to_be_bytes()); // VXLAN inside a UDP one
            }
            same_as_etherparse(&data)?;
        }

        /// The same for the direct IPv6 read: versions, next headers (extension headers among
        /// them), payload lengths that cover, cut or are zero.
        #[test]
        fn plain_ipv6_reads_as_etherparse_does(
            first in proptest::sample::select(vec![0x60u8, 0x60, 0x60, 0x6f, 0x45, 0x70, 0x00]),
            payload in proptest::sample::select(vec![0u16, 1, 8, 20, 21, 40, 60, 100, 1000]),
            next in proptest::sample::select(vec![6u8, 6, 6, 17, 17, 17, 0, 43, 44, 58, 59, 60, 4, 41]),
            rest in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..100),
            tunnel_port in proptest::bool::ANY,
        ) {
            let mut data = vec![first, 0, 0, 0];
            data.extend_from_slice(&payload.to_be_bytes());
            data.extend_from_slice(&[next, 64]);
            data.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            data.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            data.extend_from_slice(&rest);
            if tunnel_port && data.len() >= 44 {
                data[42..44].copy_from_slice(&4789u16.to_be_bytes());
            }
            same_as_etherparse(&data)?;
        }
    }

    /// `Walk::ip` (direct reads first) and etherparse's path decode `data` alike.
    fn same_as_etherparse(data: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut fast = Walk { decap: true, tunnels: Vec::new() };
        let mut general = Walk { decap: true, tunnels: Vec::new() };
        let (a, b) = (fast.ip(data), general.any_ip(data));
        proptest::prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        proptest::prop_assert_eq!(format!("{:?}", fast.tunnels), format!("{:?}", general.tunnels));
        Ok(())
    }

    fn dec(link_type: u32, data: &[u8]) -> Decoded {
        decode(link_type, data, true).inner
    }

    /// An IPv4 TCP packet (no link layer) with `payload` bytes of payload.
    fn ipv4_tcp(payload: usize) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 80, 1000, 512).syn();
        let mut out = Vec::new();
        b.write(&mut out, &vec![7u8; payload]).unwrap();
        out
    }

    /// An Ethernet frame: zero MAC addresses, the ethertype, the body.
    fn ethernet(ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn tcp_of(d: Decoded) -> TcpSegment {
        match d {
            Decoded::Tcp(_, seg) => seg,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    #[test]
    fn raw_ip_and_ethernet() {
        let ip = ipv4_tcp(10);
        let seg = tcp_of(dec(LINK_RAW, &ip));
        assert_eq!((seg.src_port, seg.dst_port, seg.payload_len), (40000, 80, 10));
        assert!(seg.flags.syn());
        let seg = tcp_of(dec(LINK_ETHERNET, &ethernet(ETH_IPV4, &ip)));
        assert_eq!(seg.seq, SeqNum(1000));
    }

    #[test]
    fn vlan_stacks_up_to_the_limit() {
        let ip = ipv4_tcp(0);
        let mut frame = vec![0u8; 12];
        for _ in 0..3 {
            frame.extend_from_slice(&ETH_VLAN.to_be_bytes());
            frame.extend_from_slice(&[0, 5]);
        }
        frame.extend_from_slice(&ETH_IPV4.to_be_bytes());
        frame.extend_from_slice(&ip);
        assert!(matches!(dec(LINK_ETHERNET, &frame), Decoded::Tcp(..)));

        let mut deep = vec![0u8; 12];
        for _ in 0..=MAX_VLAN_TAGS {
            deep.extend_from_slice(&ETH_QINQ.to_be_bytes());
            deep.extend_from_slice(&[0, 5]);
        }
        deep.extend_from_slice(&ETH_IPV4.to_be_bytes());
        deep.extend_from_slice(&ip);
        assert!(matches!(dec(LINK_ETHERNET, &deep), Decoded::Skipped(Skip::TooManyVlanTags)));
    }

    #[test]
    fn mpls_then_ip() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&ETH_MPLS.to_be_bytes());
        frame.extend_from_slice(&[0x00, 0x01, 0x00, 0x40]); // label, not bottom
        frame.extend_from_slice(&[0x00, 0x02, 0x01, 0x40]); // bottom of stack
        frame.extend_from_slice(&ipv4_tcp(3));
        assert_eq!(tcp_of(dec(LINK_ETHERNET, &frame)).payload_len, 3);
    }

    #[test]
    fn bsd_loopback_in_either_byte_order() {
        let ip = ipv4_tcp(0);
        for family in [[2, 0, 0, 0], [0, 0, 0, 2]] {
            let frame = [&family[..], &ip].concat();
            assert!(matches!(dec(LINK_NULL, &frame), Decoded::Tcp(..)));
            assert!(matches!(dec(LINK_LOOP, &frame), Decoded::Tcp(..)));
        }
    }

    #[test]
    fn linux_cooked_and_ppp() {
        let ip = ipv4_tcp(0);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&ETH_IPV4.to_be_bytes());
        sll.extend_from_slice(&ip);
        assert!(matches!(dec(LINK_LINUX_SLL, &sll), Decoded::Tcp(..)));
        let mut sll2 = ETH_IPV4.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        assert!(matches!(dec(LINK_LINUX_SLL2, &sll2), Decoded::Tcp(..)));
        let ppp = [&[0xff, 0x03, 0x00, 0x21][..], &ip].concat();
        assert!(matches!(dec(LINK_PPP_HDLC, &ppp), Decoded::Tcp(..)));
        let lcp = [0xff, 0x03, 0xc0, 0x21, 1, 2, 3];
        assert!(matches!(dec(LINK_PPP, &lcp), Decoded::Other(Other::PppControl)));
    }

    #[test]
    fn snaplen_cut_payload_keeps_its_length() {
        let ip = ipv4_tcp(500);
        let cut = &ip[..20 + 20 + 10]; // IP header, TCP header, 10 of 500 payload bytes
        assert_eq!(tcp_of(dec(LINK_RAW, cut)).payload_len, 500);
    }

    #[test]
    fn truncated_headers_are_named_skips() {
        let ip = ipv4_tcp(0);
        assert!(matches!(dec(LINK_RAW, &ip[..30]), Decoded::Skipped(Skip::TruncatedTcpHeader)));
        assert!(matches!(dec(LINK_RAW, &ip[..10]), Decoded::Skipped(Skip::TruncatedIpHeader)));
        assert!(matches!(dec(LINK_ETHERNET, &[0u8; 8]), Decoded::Skipped(Skip::TruncatedLinkHeader)));
        assert!(matches!(dec(147, &ip), Decoded::Skipped(Skip::UnsupportedLinkType(147))));
    }

    #[test]
    fn ipv6_extension_chain_running_off_the_end() {
        let mut ip = vec![0x60, 0, 0, 0, 0, 16, 0 /* hop-by-hop */, 64];
        ip.extend_from_slice(&[0u8; 32]);
        ip.extend_from_slice(&[
            6, /* next: TCP */
            9, /* 80 bytes, but only 8 follow */
            0, 0, 0, 0, 0, 0,
        ]);
        assert!(matches!(dec(LINK_RAW, &ip), Decoded::Skipped(Skip::BadIpv6Extension)));
    }

    /// Extension chains whose lax parse stops after a valid header: a second hop-by-hop header,
    /// a destination options header cut short. Walking the chain must stop where the parse
    /// did (etherparse's iterator alone reads past the end: a debug build aborts).
    #[test]
    fn ipv6_extension_chain_stopped_after_a_valid_header() {
        for (second, bytes) in [(0u8 /* hop-by-hop again */, 0usize), (60 /* destination options */, 4)] {
            let mut ip = vec![0x60, 0, 0, 0, 0, (8 + bytes) as u8, 0 /* hop-by-hop */, 64];
            ip.extend_from_slice(&[0u8; 32]);
            ip.extend_from_slice(&[second, 0, 1, 4, 0, 0, 0, 0]);
            ip.extend(std::iter::repeat_n(0u8, bytes));
            assert!(matches!(dec(LINK_RAW, &ip), Decoded::Skipped(Skip::BadIpv6Extension)), "next {second}");
        }
    }

    /// An IPv4 header around `payload` with the given protocol number.
    fn ipv4_around(proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn udp_around(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&src.to_be_bytes());
        u.extend_from_slice(&dst.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    #[test]
    fn tunnel_in_a_tunnel() {
        // TCP in IPv4 in Ethernet in VXLAN in UDP in IPv4 in GRE in IPv4.
        let inner = ethernet(ETH_IPV4, &ipv4_tcp(5));
        let vxlan = [&[0x08, 0, 0, 0, 0, 0, 1, 0][..], &inner].concat();
        let outer_udp = ipv4_around(17, &udp_around(40000, tunnel::PORT_VXLAN, &vxlan));
        let gre = [&[0, 0, 0x08, 0x00][..], &outer_udp].concat();
        let packet = decode(LINK_RAW, &ipv4_around(47, &gre), true);
        let kinds: Vec<TunnelKind> = packet.tunnels.iter().map(|h| h.kind).collect();
        assert_eq!(kinds, [TunnelKind::Gre, TunnelKind::Vxlan]);
        assert!(packet.tunnels[0].udp.is_none());
        assert_eq!(packet.tunnels[1].udp.map(|d| d.dst_port), Some(tunnel::PORT_VXLAN));
        assert_eq!(tcp_of(packet.inner).payload_len, 5);

        let flat = decode(LINK_RAW, &ipv4_around(47, &gre), false);
        assert!(flat.tunnels.is_empty());
        assert!(matches!(flat.inner, Decoded::Other(Other::IpProto(47))));
    }

    #[test]
    fn truncated_inner_header_leaves_the_outer_flow() {
        let vxlan = [&[0x08, 0, 0, 0, 0, 0, 1, 0][..], &[0u8; 6]].concat(); // Ethernet cut short
        let packet = decode(LINK_RAW, &ipv4_around(17, &udp_around(1, tunnel::PORT_VXLAN, &vxlan)), true);
        assert!(packet.tunnels.is_empty());
        assert!(matches!(packet.inner, Decoded::Udp(_, d) if d.dst_port == tunnel::PORT_VXLAN));
    }

    #[test]
    fn gre_with_unknown_protocol_is_other() {
        let packet = decode(LINK_RAW, &ipv4_around(47, &[0, 0, 0x12, 0x34, 1, 2, 3, 4]), true);
        assert!(packet.tunnels.is_empty());
        assert!(matches!(packet.inner, Decoded::Other(Other::IpProto(47))));
    }

    #[test]
    fn depth_is_bounded() {
        let mut p = ipv4_tcp(1);
        for _ in 0..10 {
            p = ipv4_around(4, &p);
        }
        let packet = decode(LINK_RAW, &p, true);
        assert_eq!(packet.tunnels.len(), MAX_TUNNEL_DEPTH);
        assert!(matches!(packet.inner, Decoded::Other(Other::IpProto(4))), "past the limit: other");
        let mut p = ipv4_tcp(1);
        for _ in 0..MAX_TUNNEL_DEPTH {
            p = ipv4_around(4, &p);
        }
        let packet = decode(LINK_RAW, &p, true);
        assert_eq!(packet.tunnels.len(), MAX_TUNNEL_DEPTH);
        assert!(matches!(packet.inner, Decoded::Tcp(..)));
    }

    #[test]
    fn non_ip_is_other() {
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(ETH_ARP, &[0; 28])), Decoded::Other(Other::Arp)));
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(0x0026, &[0; 28])), Decoded::Other(Other::Llc)));
    }
}
