//! The IP layer: the usual IPv4 and IPv6 headers read directly, anything else (options,
//! extension headers, fragments, lengths that disagree) through etherparse's lax slices.

use std::net::IpAddr;

use etherparse::{IpNumber, Ipv6ExtensionSlice, LaxIpSlice};

use super::field::{be16, Field};
use super::frag::{self, FragKey, Fragment};
use super::{Decoded, Ip, Skip, Walk};

/// IPv4 header fields (RFC 791).
mod ipv4 {
    use super::Field;
    /// Version and header length: 0x45 for a header without options.
    pub const VER_IHL: usize = 0;
    pub const LENGTH: Field = 2..4;
    /// Flags and fragment offset.
    pub const FLG_OFF: Field = 6..8;
    pub const PROTOCOL: usize = 9;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
    pub const HEADER_LEN: usize = 20;
}

/// IPv6 header fields (RFC 8200).
mod ipv6 {
    use super::Field;
    /// Version, traffic class and flow label: the version in the high nibble.
    pub const VER_TC_FLOW: usize = 0;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
    pub const HEADER_LEN: usize = 40;
}

impl Walk {
    pub(super) fn ip(&mut self, data: &[u8]) -> Decoded {
        match plain_ipv4(data).or_else(|| plain_ipv6(data)) {
            Some((meta, body, proto, missing)) => self.transport(meta, body, proto, missing),
            None => self.any_ip(data),
        }
    }

    /// Any IP packet, through etherparse's lax slices: IPv6 and its extension headers,
    /// fragments, IPv4 options and authentication headers, lengths that disagree.
    pub(super) fn any_ip(&mut self, data: &[u8]) -> Decoded {
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
                return Decoded::Fragment(Box::new(Fragment { key, offset, more, header, data, frames: 1 }));
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
}

/// The usual IPv4 packet, read directly: no options, not a fragment, no authentication header,
/// a total length that covers the header. Its packet, payload, protocol and the payload bytes
/// the snap length cut, exactly as `Walk::any_ip` reads them (a property test holds the two
/// together); anything else is left to it. Most packets are plain IPv4, and reading them
/// directly is about half a packet's decoding (docs/performance.md).
fn plain_ipv4(data: &[u8]) -> Option<(Ip, &[u8], IpNumber, u32)> {
    let h: &[u8; ipv4::HEADER_LEN] = data.get(..ipv4::HEADER_LEN)?.try_into().ok()?;
    let total = usize::from(be16(h, ipv4::LENGTH)?);
    let fragment = be16(h, ipv4::FLG_OFF)? & 0x3fff != 0;
    let proto = IpNumber(h[ipv4::PROTOCOL]);
    if h[ipv4::VER_IHL] != 0x45
        || fragment
        || total < ipv4::HEADER_LEN
        || proto == IpNumber::AUTHENTICATION_HEADER
    {
        return None;
    }
    let address = |f: Field| IpAddr::from(<[u8; 4]>::try_from(&h[f]).expect("4 bytes"));
    let meta = Ip { src: address(ipv4::SRC_ADDR), dst: address(ipv4::DST_ADDR), wire_len: total as u32 };
    let (body, missing) = payload(data, ipv4::HEADER_LEN, total);
    Some((meta, body, proto, missing))
}

/// The usual IPv6 packet, read directly as `plain_ipv4` is: TCP or UDP right after the fixed
/// header (no extension headers), a payload length that is not zero (jumbograms).
fn plain_ipv6(data: &[u8]) -> Option<(Ip, &[u8], IpNumber, u32)> {
    let h: &[u8; ipv6::HEADER_LEN] = data.get(..ipv6::HEADER_LEN)?.try_into().ok()?;
    let payload_len = usize::from(be16(h, ipv6::LENGTH)?);
    let proto = IpNumber(h[ipv6::NXT_HDR]);
    if h[ipv6::VER_TC_FLOW] >> 4 != 6 || payload_len == 0 || !matches!(proto, IpNumber::TCP | IpNumber::UDP) {
        return None;
    }
    let address = |f: Field| IpAddr::from(<[u8; 16]>::try_from(&h[f]).expect("16 bytes"));
    let total = ipv6::HEADER_LEN + payload_len;
    let meta = Ip { src: address(ipv6::SRC_ADDR), dst: address(ipv6::DST_ADDR), wire_len: total as u32 };
    let (body, missing) = payload(data, ipv6::HEADER_LEN, total);
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
