//! Link layers to TCP/UDP views. Every frame ends in exactly one bucket: a TCP segment, a UDP
//! datagram, another protocol, or a skip with a named reason.
//!
//! Decoding goes layer by layer: `link` (Ethernet and the other link types down to IP), `ip`
//! (IPv4, IPv6, fragments), `transport` (TCP and UDP headers), `tunnel` (what a tunnel header
//! carries, decoded again from its own layer) and `frag` (reassembly). Each header's fields are
//! named byte ranges (`field`).

use std::fmt;
use std::net::IpAddr;

mod field;
pub mod frag;
mod ip;
mod link;
pub mod payload;
mod transport;
pub mod tunnel;
mod wlan;

use etherparse::IpNumber;

use frag::Fragment;
pub use link::LINK_RAW;
use link::{ethernet, link, ppp, Net};
use transport::{tcp, udp, udp_payload};
pub use transport::{TcpFlags, TcpOptions, TcpSegment, UdpDatagram};
use tunnel::{Encap, TunnelKind};

/// A decoded frame: the tunnels it came through, outermost first, and what was inside.
#[derive(Debug)]
pub struct Packet {
    /// Empty (and not allocated) for the usual packet outside any tunnel.
    pub tunnels: Vec<Hop>,
    /// What the innermost layer decoded to.
    pub inner: Decoded,
}

/// At most this many tunnel layers are looked through (a tunnel in a tunnel in a tunnel ...).
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// At most this many tunnel layers in one packet in all: the frame's, and those of datagrams its
/// fragments complete (each decoded with up to `MAX_TUNNEL_DEPTH` of its own), so a crafted
/// chain of fragments inside tunnels inside fragments ends.
pub const MAX_LAYERS: usize = 4 * MAX_TUNNEL_DEPTH;

/// One tunnel layer: its kind, the outer IP header, and the outer UDP datagram for UDP tunnels.
#[derive(Clone, Copy, Debug)]
pub struct Hop {
    /// Which encapsulation.
    pub kind: TunnelKind,
    /// The IP header the tunnel header travelled in.
    pub ip: Ip,
    /// The UDP header the tunnel header travelled in; `None` for IP-in-IP and GRE directly in IP.
    pub udp: Option<UdpDatagram>,
}

/// What one frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    /// A TCP segment and the IP header it came in.
    Tcp(Ip, TcpSegment),
    /// A UDP datagram (not a tunnel looked through) and the IP header it came in.
    Udp(Ip, UdpDatagram),
    /// A packet of another protocol, counted by kind.
    Other(Other),
    /// A frame that could not be decoded, and why.
    Skipped(Skip),
    /// A piece of a fragmented IP datagram, to be reassembled.
    Fragment(Box<Fragment>),
}

/// The IP layer facts the flow table needs.
#[derive(Clone, Copy, Debug)]
pub struct Ip {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Length of the IP packet on the wire (from the IP header).
    pub wire_len: u32,
}

/// Not TCP or UDP, but a packet we understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Other {
    /// ICMP over IPv4.
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// ARP.
    Arp,
    /// Another IP protocol number; also a tunnel protocol (IP-in-IP, GRE) not looked through.
    IpProto(u8),
    /// Another ethertype. Also, under PPP, another PPP protocol number; an MPLS payload that is
    /// neither IP nor Ethernet (0x8847); a BSD loopback family that is not IP (0).
    EtherType(u16),
    /// 802.3 frames with a length field (LLC, STP, CDP ...).
    Llc,
    /// PPP control protocols (LCP, IPCP ...), PPPoE discovery.
    PppControl,
    /// An NFLOG record of an address family other than IPv4 and IPv6 (bridge, ARP ...).
    NflogFamily(u8),
    /// An NFLOG record that holds no packet (logged with no payload copied).
    NflogWithoutPacket,
    /// An 802.11 management frame (beacon, probe, association ...).
    WlanManagement,
    /// An 802.11 control frame (ACK, RTS, CTS, block ACK ...).
    WlanControl,
    /// An 802.11 frame of the extension type (DMG beacon ...).
    WlanExtension,
    /// An 802.11 data frame of a subtype without payload (null data, CF-Ack, CF-Poll).
    WlanNoData,
    /// An 802.11 data frame with the Protected flag: its payload is encrypted (WEP, TKIP, CCMP).
    WlanProtected,
    /// An 802.11 data frame carrying an A-MSDU (several packets in one frame).
    WlanAmsdu,
    /// An ERF record of a type that carries neither Ethernet, PPP/HDLC nor IP (ATM, AAL5 ...).
    ErfType(u8),
    /// A MACsec frame whose user data is encrypted (or otherwise changed).
    Macsec,
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
            Other::NflogFamily(n) => write!(f, "nflog family {n}"),
            Other::NflogWithoutPacket => write!(f, "nflog record without packet"),
            Other::WlanManagement => write!(f, "802.11 management"),
            Other::WlanControl => write!(f, "802.11 control"),
            Other::WlanExtension => write!(f, "802.11 extension"),
            Other::WlanNoData => write!(f, "802.11 data without payload"),
            Other::WlanProtected => write!(f, "802.11 protected"),
            Other::WlanAmsdu => write!(f, "802.11 a-msdu"),
            Other::ErfType(t) => write!(f, "erf type {t}"),
            Other::Macsec => write!(f, "macsec (encrypted)"),
        }
    }
}

/// Why a frame was not attributed to any protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A LINKTYPE_* value the decoder does not read.
    UnsupportedLinkType(u32),
    /// A link-layer header (Ethernet, VLAN tag, MPLS label, PPPoE, SLL, loopback, PPP, 802.11,
    /// LLC/SNAP, a radio header, ERF ...) cut short.
    TruncatedLinkHeader,
    /// More than 8 stacked VLAN tags (VN-Tags and E-Tags counted with them).
    TooManyVlanTags,
    /// An NFLOG record whose length is below its own header's.
    BadNflogRecord,
    /// An 802.11 frame of a protocol version other than 0.
    Bad80211Header,
    /// A radiotap header of another version, shorter than its fixed part, or whose present
    /// bitmaps or Flags field run past its length.
    BadRadiotapHeader,
    /// A PPI header of another version, shorter than its fixed part, with a field running past
    /// its length, or wrapping another PPI header.
    BadPpiHeader,
    /// A Prism header with an unknown message code or a length below its own fields', or an
    /// AVS header with a bad magic number or length.
    BadPrismHeader,
    /// An 802.11 frame that its radio header (radiotap, PPI) says failed its FCS check.
    BadFcs,
    /// An MPLS label stack with no bottom-of-stack label in its first 16 labels.
    TooManyMplsLabels,
    /// Fewer bytes than an IP header needs.
    TruncatedIpHeader,
    /// An IP header with invalid contents (version, header length).
    BadIpHeader,
    /// An IPv6 extension header chain that is cut short or malformed.
    BadIpv6Extension,
    /// A fragment cut short by the snap length: it cannot be reassembled.
    IpFragment,
    /// Fragments of a datagram that never completed (timeout or end of input).
    FragmentIncomplete,
    /// Fragments of a datagram larger than 64 KiB or with too many pieces.
    FragmentTooBig,
    /// Fewer than the 20 bytes of a TCP header.
    TruncatedTcpHeader,
    /// A TCP data offset below 5 (a header shorter than 20 bytes).
    BadTcpHeader,
    /// Fewer than the 8 bytes of a UDP header.
    TruncatedUdpHeader,
    /// Tunnels nested deeper than `MAX_LAYERS` through datagrams reassembled from fragments
    /// carried in tunnels.
    TooManyTunnelLayers,
    /// A record the capture reader could not attribute (e.g. a pcapng block for no interface).
    BadRecord(&'static str),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::UnsupportedLinkType(n) => write!(f, "unsupported link type {n}"),
            Skip::TruncatedLinkHeader => write!(f, "truncated link-layer header"),
            Skip::TooManyVlanTags => write!(f, "too many VLAN tags"),
            Skip::BadNflogRecord => write!(f, "bad nflog record"),
            Skip::Bad80211Header => write!(f, "bad 802.11 header"),
            Skip::BadRadiotapHeader => write!(f, "bad radiotap header"),
            Skip::BadPpiHeader => write!(f, "bad PPI header"),
            Skip::BadPrismHeader => write!(f, "bad Prism/AVS header"),
            Skip::BadFcs => write!(f, "802.11 frame with a bad FCS"),
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
            Skip::TooManyTunnelLayers => write!(f, "tunnels nested too deep through reassembled fragments"),
            Skip::BadRecord(why) => f.write_str(why),
        }
    }
}

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
            Encap::Ethernet(b) => self.net(ethernet(b)),
            Encap::Ppp(b) => self.net(ppp(b)),
        };
        if matches!(inner, Decoded::Skipped(_)) {
            self.tunnels.pop();
            return None;
        }
        Some(inner)
    }
}

impl Walk {
    /// What an IP packet (`meta`) carries in `body`, of which the capture cut `missing` bytes.
    fn transport(&mut self, meta: Ip, body: &[u8], proto: IpNumber, missing: u32) -> Decoded {
        match proto {
            IpNumber::TCP => match tcp(body, missing) {
                Ok(seg) => Decoded::Tcp(meta, seg),
                Err(skip) => Decoded::Skipped(skip),
            },
            IpNumber::UDP => match udp(body) {
                Some(d) => {
                    let inner = tunnel::udp(d.src_port, d.dst_port, udp_payload(body))
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

#[cfg(test)]
mod tests {
    use super::link::*;
    use super::*;
    use crate::types::SeqNum;
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

    /// An NFLOG frame of `family` holding `tlvs`: (type, value), lengths in `order`.
    fn nflog(family: u8, tlvs: &[(u16, &[u8])], big_endian: bool) -> Vec<u8> {
        let mut out = vec![family, 0, 0, 20];
        for (ty, value) in tlvs {
            let len = u16::try_from(4 + value.len()).unwrap();
            let (len, ty) = if big_endian {
                (len.to_be_bytes(), ty.to_be_bytes())
            } else {
                (len.to_le_bytes(), ty.to_le_bytes())
            };
            out.extend_from_slice(&len);
            out.extend_from_slice(&ty);
            out.extend_from_slice(value);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out
    }

    #[test]
    fn nflog_in_either_byte_order_after_padded_records() {
        let ip = ipv4_tcp(3);
        // A packet header record (type 1), a prefix of 7 bytes padded to 8, then the packet.
        let tlvs: [(u16, &[u8]); 3] = [(1, &[8, 0, 3, 0]), (10, b"prefix\0"), (9, &ip)];
        for big_endian in [false, true] {
            let frame = nflog(2, &tlvs, big_endian);
            match dec(LINK_NFLOG, &frame) {
                Decoded::Tcp(_, seg) => assert_eq!(seg.payload_len, 3),
                other => panic!("{big_endian}: {other:?}"),
            }
            // Cut by a snap length inside the packet: what was captured is decoded.
            let cut = dec(LINK_NFLOG, &frame[..frame.len() - 3]);
            assert!(matches!(cut, Decoded::Tcp(..)), "{big_endian}: {cut:?}");
        }
    }

    #[test]
    fn nflog_without_an_ip_packet_is_other_and_damage_is_named() {
        let ip = ipv4_tcp(0);
        let bridge = nflog(7, &[(9, &ip)], false);
        assert!(matches!(dec(LINK_NFLOG, &bridge), Decoded::Other(Other::NflogFamily(7))));
        let no_payload = nflog(2, &[(1, &[8, 0, 3, 0])], false);
        assert!(matches!(dec(LINK_NFLOG, &no_payload), Decoded::Other(Other::NflogWithoutPacket)));
        let zero_length = [2, 0, 0, 20, 0, 0, 9, 0];
        assert!(matches!(dec(LINK_NFLOG, &zero_length), Decoded::Skipped(Skip::BadNflogRecord)));
        let cut_header = [2, 0, 0, 20, 8, 0];
        assert!(matches!(dec(LINK_NFLOG, &cut_header), Decoded::Skipped(Skip::TruncatedLinkHeader)));
        let cut_record = nflog(2, &[(1, &[8, 0, 3, 0, 1, 2, 3, 4])], false);
        assert!(matches!(dec(LINK_NFLOG, &cut_record[..10]), Decoded::Skipped(Skip::TruncatedLinkHeader)));
        assert!(matches!(dec(LINK_NFLOG, &[2, 0]), Decoded::Skipped(Skip::TruncatedLinkHeader)));
    }

    #[test]
    fn cisco_hdlc_and_ip_over_infiniband_name_an_ethertype() {
        let ip = ipv4_tcp(0);
        let chdlc = [&[0x0f, 0x00, 0x08, 0x00][..], &ip].concat();
        assert!(matches!(dec(LINK_C_HDLC, &chdlc), Decoded::Tcp(..)));
        let slarp = [0x8f, 0x00, 0x80, 0x35, 0, 0, 0, 2];
        assert!(matches!(dec(LINK_C_HDLC, &slarp), Decoded::Other(Other::EtherType(0x8035))));
        let mut ipoib = vec![0u8; 40];
        ipoib.extend_from_slice(&[0x08, 0x00, 0, 0]);
        ipoib.extend_from_slice(&ip);
        assert!(matches!(dec(LINK_IPOIB, &ipoib), Decoded::Tcp(..)));
        for (link, cut) in [(LINK_C_HDLC, &chdlc[..3]), (LINK_IPOIB, &ipoib[..43])] {
            assert!(matches!(dec(link, cut), Decoded::Skipped(Skip::TruncatedLinkHeader)));
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

    /// An 802.11 data frame: frame control `fc` and `flags`, zero addresses and sequence,
    /// `extra` (QoS control, HT control ...), then an LLC/SNAP header naming IPv4, then `ip`.
    fn wlan_data(fc: u8, flags: u8, extra: &[u8], ip: &[u8]) -> Vec<u8> {
        let mut f = vec![fc, flags];
        f.extend_from_slice(&[0u8; 22]);
        f.extend_from_slice(extra);
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn ieee80211_data_frames_through_llc_snap() {
        let ip = ipv4_tcp(4);
        // Data, QoS data, QoS data with HT control (Order), four addresses (ToDS and FromDS).
        let frames = [
            wlan_data(0x08, 0x01, &[], &ip),
            wlan_data(0x88, 0x02, &[0x06, 0x00], &ip),
            wlan_data(0x88, 0x81, &[0x06, 0x00, 1, 2, 3, 4], &ip),
            wlan_data(0x88, 0x03, &[0u8; 8], &ip),
            wlan_data(0x08, 0x03, &[0u8; 6], &ip),
        ];
        for f in &frames {
            assert_eq!(tcp_of(dec(LINK_IEEE802_11, f)).payload_len, 4, "{f:02x?}");
        }
        // The Order flag adds HT control to QoS frames only.
        assert_eq!(tcp_of(dec(LINK_IEEE802_11, &wlan_data(0x08, 0x80, &[], &ip))).payload_len, 4);
        // The 802.1H bridge-tunnel OUI names an ethertype as well; another OUI is LLC.
        let mut tunnel = wlan_data(0x08, 0x01, &[], &ip);
        tunnel[24 + 5] = 0xf8;
        assert!(matches!(dec(LINK_IEEE802_11, &tunnel), Decoded::Tcp(..)));
        tunnel[24 + 5] = 0x0c;
        assert!(matches!(dec(LINK_IEEE802_11, &tunnel), Decoded::Other(Other::Llc)));
    }

    #[test]
    fn ieee80211_frames_without_readable_payload_are_other() {
        let ip = ipv4_tcp(0);
        let kinds = [
            (wlan_data(0x80, 0x00, &[], &ip), Other::WlanManagement), // beacon
            (vec![0xd4, 0x00, 0, 0, 1, 2, 3, 4, 5, 6], Other::WlanControl), // ACK
            (vec![0x0c, 0x00], Other::WlanExtension),
            (vec![0x48, 0x01], Other::WlanNoData), // null data
            (vec![0xc8, 0x01], Other::WlanNoData), // QoS null
            (wlan_data(0x88, 0x42, &[0, 0], &ip), Other::WlanProtected),
            (wlan_data(0x88, 0x01, &[0x80, 0], &ip), Other::WlanAmsdu),
        ];
        for (frame, kind) in kinds {
            match dec(LINK_IEEE802_11, &frame) {
                Decoded::Other(o) => assert_eq!(o, kind),
                d => panic!("{kind}: {d:?}"),
            }
        }
    }

    #[test]
    fn ieee80211_damage_is_named() {
        let frame = wlan_data(0x88, 0x01, &[0, 0], &ipv4_tcp(0));
        for cut in [0, 1, 20, 25, 27, 30] {
            assert!(
                matches!(dec(LINK_IEEE802_11, &frame[..cut]), Decoded::Skipped(Skip::TruncatedLinkHeader)),
                "cut at {cut}"
            );
        }
        let mut version = frame.clone();
        version[0] |= 0x01;
        assert!(matches!(dec(LINK_IEEE802_11, &version), Decoded::Skipped(Skip::Bad80211Header)));
    }

    /// A radiotap header: `present` words, then `fields`, the header length counted.
    fn radiotap(present: &[u32], fields: &[u8], frame: &[u8]) -> Vec<u8> {
        let len = 4 + 4 * present.len() + fields.len();
        let mut h = vec![0, 0];
        h.extend_from_slice(&(len as u16).to_le_bytes());
        for p in present {
            h.extend_from_slice(&p.to_le_bytes());
        }
        h.extend_from_slice(fields);
        h.extend_from_slice(frame);
        h
    }

    #[test]
    fn radiotap_flags_found_past_extended_bitmaps_and_the_timestamp() {
        let frame = wlan_data(0x08, 0x01, &[], &ipv4_tcp(2));
        let with_fcs = [&frame[..], &[0xde, 0xad, 0xbe, 0xef]].concat();
        // No Flags field: the frame as it is.
        let plain = radiotap(&[0x0000_0004], &[0x02, 0], &frame);
        assert_eq!(tcp_of(dec(LINK_RADIOTAP, &plain)).payload_len, 2);
        // TSFT and Flags after one present word: TSFT at 8, Flags at 16 (FCS at the end).
        let tsft = [&[0u8; 8][..], &[0x10]].concat();
        let fcs = radiotap(&[0x0000_0003], &tsft, &with_fcs);
        assert!(matches!(dec(LINK_RADIOTAP, &fcs), Decoded::Tcp(..)));
        // Two extended bitmaps: TSFT aligned from 16 to 16, Flags at 24.
        let ext = radiotap(&[0x8000_0003, 0x8000_0000, 0x0000_0001], &tsft, &with_fcs);
        assert!(matches!(dec(LINK_RADIOTAP, &ext), Decoded::Tcp(..)));
        // One extended bitmap: TSFT aligned from 12 to 16.
        let aligned = [&[0u8; 4][..], &tsft].concat();
        let ext = radiotap(&[0x8000_0003, 0x0000_0001], &aligned, &with_fcs);
        assert!(matches!(dec(LINK_RADIOTAP, &ext), Decoded::Tcp(..)));
        // Flags alone, the FCS and padding flags: a 24-byte MAC header needs no padding; a QoS
        // one of 26 bytes is padded to 28.
        let pad = radiotap(&[0x0000_0002], &[0x30, 0], &with_fcs);
        assert!(matches!(dec(LINK_RADIOTAP, &pad), Decoded::Tcp(..)));
        let qos = wlan_data(0x88, 0x01, &[0, 0, 0, 0], &ipv4_tcp(2)); // 26 + 2 bytes of padding
        let pad = radiotap(&[0x0000_0002], &[0x20, 0], &qos);
        assert!(matches!(dec(LINK_RADIOTAP, &pad), Decoded::Tcp(..)));
    }

    #[test]
    fn radiotap_damage_and_bad_fcs_are_named() {
        let frame = wlan_data(0x08, 0x01, &[], &ipv4_tcp(2));
        let bad_fcs = radiotap(&[0x0000_0002], &[0x50, 0], &frame);
        assert!(matches!(dec(LINK_RADIOTAP, &bad_fcs), Decoded::Skipped(Skip::BadFcs)));
        let mut version = radiotap(&[0], &[], &frame);
        version[0] = 1;
        assert!(matches!(dec(LINK_RADIOTAP, &version), Decoded::Skipped(Skip::BadRadiotapHeader)));
        // Bitmaps announcing more bitmaps than the header holds; Flags past the header's end.
        let runaway = radiotap(&[0x8000_0000], &[], &frame);
        assert!(matches!(dec(LINK_RADIOTAP, &runaway), Decoded::Skipped(Skip::BadRadiotapHeader)));
        let no_flags = radiotap(&[0x0000_0003], &[0u8; 8], &frame);
        assert!(matches!(dec(LINK_RADIOTAP, &no_flags), Decoded::Skipped(Skip::BadRadiotapHeader)));
        let short = [0u8, 0, 4, 0, 0, 0, 0, 0];
        assert!(matches!(dec(LINK_RADIOTAP, &short), Decoded::Skipped(Skip::BadRadiotapHeader)));
        let long = [0u8, 0, 40, 0, 0, 0, 0, 0];
        assert!(matches!(dec(LINK_RADIOTAP, &long), Decoded::Skipped(Skip::TruncatedLinkHeader)));
        let fcs_only = radiotap(&[0x0000_0002], &[0x10, 0], &[1, 2]);
        assert!(matches!(dec(LINK_RADIOTAP, &fcs_only), Decoded::Skipped(Skip::TruncatedLinkHeader)));
    }

    /// A PPI header of link type `dlt` with `fields` (type, value), then `frame`.
    fn ppi(dlt: u32, fields: &[(u16, &[u8])], frame: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (ty, value) in fields {
            body.extend_from_slice(&ty.to_le_bytes());
            body.extend_from_slice(&(value.len() as u16).to_le_bytes());
            body.extend_from_slice(value);
        }
        let mut h = vec![0, 0];
        h.extend_from_slice(&((8 + body.len()) as u16).to_le_bytes());
        h.extend_from_slice(&dlt.to_le_bytes());
        h.extend_from_slice(&body);
        h.extend_from_slice(frame);
        h
    }

    #[test]
    fn ppi_names_the_link_type_and_the_fcs() {
        let frame = wlan_data(0x08, 0x01, &[], &ipv4_tcp(2));
        let mut common = [0u8; 20];
        assert!(matches!(dec(LINK_PPI, &ppi(105, &[(2, &common)], &frame)), Decoded::Tcp(..)));
        common[8] = 0x01; // FCS at the end
        let with_fcs = [&frame[..], &[1, 2, 3, 4]].concat();
        assert!(matches!(dec(LINK_PPI, &ppi(105, &[(7, &[1]), (2, &common)], &with_fcs)), Decoded::Tcp(..)));
        common[8] = 0x05;
        assert!(matches!(dec(LINK_PPI, &ppi(105, &[(2, &common)], &frame)), Decoded::Skipped(Skip::BadFcs)));
        // Another link type inside: Ethernet.
        let eth = ethernet(ETH_IPV4, &ipv4_tcp(2));
        assert!(matches!(dec(LINK_PPI, &ppi(1, &[], &eth)), Decoded::Tcp(..)));
        // Damage: a field past the header, PPI in PPI, another version, a cut header.
        let mut runaway = ppi(105, &[(2, &common)], &frame);
        runaway[10] = 0xff;
        assert!(matches!(dec(LINK_PPI, &runaway), Decoded::Skipped(Skip::BadPpiHeader)));
        let nested = ppi(192, &[], &ppi(1, &[], &eth));
        assert!(matches!(dec(LINK_PPI, &nested), Decoded::Skipped(Skip::BadPpiHeader)));
        let mut version = ppi(1, &[], &eth);
        version[0] = 2;
        assert!(matches!(dec(LINK_PPI, &version), Decoded::Skipped(Skip::BadPpiHeader)));
        let cut = ppi(1, &[], &eth);
        assert!(matches!(dec(LINK_PPI, &cut[..6]), Decoded::Skipped(Skip::TruncatedLinkHeader)));
    }

    #[test]
    fn prism_and_avs_headers_then_80211() {
        let frame = wlan_data(0x08, 0x02, &[], &ipv4_tcp(2));
        for big_endian in [false, true] {
            let mut prism = [0u8; 144];
            let (code, len) = if big_endian {
                (0x44u32.to_be_bytes(), 144u32.to_be_bytes())
            } else {
                (0x44u32.to_le_bytes(), 144u32.to_le_bytes())
            };
            prism[..4].copy_from_slice(&code);
            prism[4..8].copy_from_slice(&len);
            let framed = [&prism[..], &frame].concat();
            assert!(matches!(dec(LINK_PRISM, &framed), Decoded::Tcp(..)), "{big_endian}");
        }
        let mut avs = [0u8; 64];
        avs[..4].copy_from_slice(&0x8021_1001u32.to_be_bytes());
        avs[4..8].copy_from_slice(&64u32.to_be_bytes());
        let framed = [&avs[..], &frame].concat();
        assert!(matches!(dec(LINK_AVS, &framed), Decoded::Tcp(..)));
        // AVS labelled as Prism, as some captures do.
        assert!(matches!(dec(LINK_PRISM, &framed), Decoded::Tcp(..)));
        let mut bad = framed.clone();
        bad[3] = 0x21;
        assert!(matches!(dec(LINK_AVS, &bad), Decoded::Skipped(Skip::BadPrismHeader)));
        assert!(matches!(dec(LINK_PRISM, &bad), Decoded::Skipped(Skip::BadPrismHeader)));
        assert!(matches!(dec(LINK_AVS, &framed[..40]), Decoded::Skipped(Skip::TruncatedLinkHeader)));
    }

    /// An ERF record header of `ty` (with `extensions` extension headers), then `body`.
    fn erf(ty: u8, extensions: usize, body: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; 16];
        r[8] = if extensions > 0 { ty | 0x80 } else { ty };
        let rlen = (16 + 8 * extensions + body.len()) as u16;
        r[10..12].copy_from_slice(&rlen.to_be_bytes());
        for i in 0..extensions {
            let mut ext = [0u8; 8];
            ext[0] = if i + 1 < extensions { 0x80 | 3 } else { 3 };
            r.extend_from_slice(&ext);
        }
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn erf_records_by_type() {
        let ip = ipv4_tcp(3);
        let eth = [&[0u8, 0][..], &ethernet(ETH_IPV4, &ip)].concat();
        for ty in [2, 11, 16, 20] {
            for extensions in [0, 1, 3] {
                let record = erf(ty, extensions, &eth);
                assert_eq!(tcp_of(dec(LINK_ERF, &record)).payload_len, 3, "type {ty}, {extensions} ext");
            }
        }
        for ty in [22, 23] {
            assert!(matches!(dec(LINK_ERF, &erf(ty, 1, &ip)), Decoded::Tcp(..)));
        }
        let ppp = [&[0xff, 0x03, 0x00, 0x21][..], &ip].concat();
        let chdlc = [&[0x0f, 0x00, 0x08, 0x00][..], &ip].concat();
        for ty in [1, 10, 15, 19] {
            assert!(matches!(dec(LINK_ERF, &erf(ty, 0, &ppp)), Decoded::Tcp(..)), "type {ty}");
            assert!(matches!(dec(LINK_ERF, &erf(ty, 0, &chdlc)), Decoded::Tcp(..)), "type {ty}");
        }
        assert!(matches!(dec(LINK_ERF, &erf(3, 0, &[0; 52])), Decoded::Other(Other::ErfType(3))));
        // Cut in the header, in an extension header, in the pad.
        let record = erf(2, 2, &eth);
        for cut in [8, 20, 33] {
            assert!(
                matches!(dec(LINK_ERF, &record[..cut]), Decoded::Skipped(Skip::TruncatedLinkHeader)),
                "{cut}"
            );
        }
    }

    #[test]
    fn bridge_tags_and_frames_in_frames() {
        let ip = ipv4_tcp(1);
        let inner = ethernet(ETH_IPV4, &ip);
        // PBB: the I-Tag, then the customer's frame.
        let pbb = ethernet(ETH_PBB, &[&[0x00, 0x01, 0x02, 0x03][..], &inner].concat());
        assert!(matches!(dec(LINK_ETHERNET, &pbb), Decoded::Tcp(..)));
        // VN-Tag and E-Tag, then an ethertype (here a VLAN tag first).
        let vlan = [&[0x00, 0x05][..], &ETH_IPV4.to_be_bytes(), &ip].concat();
        let vntag = ethernet(ETH_VNTAG, &[&[0x80, 0, 0, 0x0b][..], &ETH_VLAN.to_be_bytes(), &vlan].concat());
        assert!(matches!(dec(LINK_ETHERNET, &vntag), Decoded::Tcp(..)));
        let etag = ethernet(ETH_ETAG, &[&[0u8; 6][..], &ETH_IPV4.to_be_bytes(), &ip].concat());
        assert!(matches!(dec(LINK_ETHERNET, &etag), Decoded::Tcp(..)));
        // VN-Tags and E-Tags count with VLAN tags.
        let mut deep = Vec::new();
        for i in 0..=MAX_VLAN_TAGS {
            let next = if i == MAX_VLAN_TAGS { ETH_IPV4 } else { ETH_ETAG };
            deep.extend_from_slice(&[0u8; 6]);
            deep.extend_from_slice(&next.to_be_bytes());
        }
        deep.extend_from_slice(&ip);
        assert!(matches!(
            dec(LINK_ETHERNET, &ethernet(ETH_ETAG, &deep)),
            Decoded::Skipped(Skip::TooManyVlanTags)
        ));
        for cut in [16, 19] {
            assert!(matches!(dec(LINK_ETHERNET, &etag[..cut]), Decoded::Skipped(Skip::TruncatedLinkHeader)));
        }
        assert!(matches!(dec(LINK_ETHERNET, &pbb[..30]), Decoded::Skipped(Skip::TruncatedLinkHeader)));
    }

    /// Frames nested in frames are walked in a loop: a frame made of thousands of PBB headers
    /// (each one a frame of its own) ends without exhausting the stack.
    #[test]
    fn nested_frames_do_not_recurse() {
        let mut frame = ethernet(ETH_IPV4, &ipv4_tcp(1));
        let mut pbb = Vec::with_capacity(20 * 100_000);
        for _ in 0..100_000 {
            pbb.extend_from_slice(&[0u8; 12]);
            pbb.extend_from_slice(&ETH_PBB.to_be_bytes());
            pbb.extend_from_slice(&[0u8; 4]);
        }
        pbb.append(&mut frame);
        assert!(matches!(dec(LINK_ETHERNET, &pbb), Decoded::Tcp(..)));
    }

    #[test]
    fn macsec_in_the_clear_is_read_and_encrypted_is_other() {
        let ip = ipv4_tcp(1);
        // Integrity only (E and C clear), with and without an SCI; an ICV trails the data.
        for (tci, sci) in [(0x00u8, 0usize), (0x20, 8)] {
            let mut sectag = vec![tci, 0, 0, 0, 0, 1];
            sectag.extend(std::iter::repeat_n(0u8, sci));
            let body = [&sectag[..], &ETH_IPV4.to_be_bytes(), &ip, &[0xcc; 16]].concat();
            assert!(
                matches!(dec(LINK_ETHERNET, &ethernet(ETH_MACSEC, &body)), Decoded::Tcp(..)),
                "tci {tci:02x}"
            );
        }
        for tci in [0x2c, 0x0c, 0x08, 0x04] {
            let body = [&[tci, 0, 0, 0, 0, 1][..], &[0u8; 8], &[0x5a; 40]].concat();
            assert!(matches!(
                dec(LINK_ETHERNET, &ethernet(ETH_MACSEC, &body)),
                Decoded::Other(Other::Macsec)
            ));
        }
        let cut = ethernet(ETH_MACSEC, &[0x20, 0, 0, 0, 0, 1, 0, 0]);
        assert!(matches!(dec(LINK_ETHERNET, &cut), Decoded::Skipped(Skip::TruncatedLinkHeader)));
    }

    #[test]
    fn ieee8023_frames_with_llc_snap_or_the_ip_sap() {
        let ip = ipv4_tcp(1);
        let len = |n: usize| n as u16;
        let snap = [&[0xaa, 0xaa, 0x03, 0, 0, 0][..], &ETH_IPV4.to_be_bytes(), &ip].concat();
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(len(snap.len()), &snap)), Decoded::Tcp(..)));
        let sap = [&[0x06, 0x06, 0x03][..], &ip].concat();
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(len(sap.len()), &sap)), Decoded::Tcp(..)));
        let arp = [&[0xaa, 0xaa, 0x03, 0, 0, 0][..], &ETH_ARP.to_be_bytes(), &[0; 28]].concat();
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(len(arp.len()), &arp)), Decoded::Other(Other::Arp)));
        let stp = [0x42, 0x42, 0x03, 0, 0, 0, 0];
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(7, &stp)), Decoded::Other(Other::Llc)));
        let cdp = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00];
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(8, &cdp)), Decoded::Other(Other::Llc)));
        for cut in [&[0xaa, 0xaa][..], &[0xaa, 0xaa, 0x03, 0], &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08]] {
            assert!(matches!(
                dec(LINK_ETHERNET, &ethernet(8, cut)),
                Decoded::Skipped(Skip::TruncatedLinkHeader)
            ));
        }
    }

    #[test]
    fn non_ip_is_other() {
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(ETH_ARP, &[0; 28])), Decoded::Other(Other::Arp)));
        assert!(matches!(dec(LINK_ETHERNET, &ethernet(0x0026, &[0; 28])), Decoded::Other(Other::Llc)));
    }
}
