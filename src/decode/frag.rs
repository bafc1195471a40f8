//! IPv4 and IPv6 fragment reassembly, bounded in memory and time.
//!
//! Fragments are held per datagram (addresses, protocol, identification, and the tunnel they came
//! through) until they cover the whole datagram; the result is a rebuilt IP packet that is decoded
//! like any other. Overlaps are resolved deterministically: lower offsets first, and among equal
//! offsets the fragment that arrived first. Datagrams that never complete are given up after a
//! timeout, when too many fragments or bytes are held, or at the end of the input.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::types::{Duration, Timestamp};

/// A fragment as the decoder found it.
#[derive(Clone, Debug)]
pub struct Fragment {
    /// The datagram it belongs to.
    pub key: FragKey,
    /// Byte offset of `data` in the datagram's payload.
    pub offset: u32,
    /// The more-fragments flag: another fragment follows this one.
    pub more: bool,
    /// For the first fragment, the IP header to rebuild the datagram with (IPv4: the original
    /// header; IPv6: none, a fixed header is built).
    pub header: Option<Vec<u8>>,
    /// The fragment's bytes of the datagram's payload.
    pub data: Vec<u8>,
    /// The captured frames it stands for: one, or, for a fragment found in a datagram that was
    /// itself reassembled, that datagram's.
    pub frames: u64,
}

/// Which datagram a fragment belongs to (RFC 791 / RFC 8200 reassembly keys, plus the tunnel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Identification: IPv4's 16-bit field, or the 32-bit one of IPv6's fragment header.
    pub id: u32,
    /// The protocol of the datagram's payload (IPv4 protocol, or IPv6 next header after the
    /// fragment header).
    pub proto: u8,
    /// Outer addresses of the innermost tunnel the fragment came through, if any.
    pub outer: Option<(IpAddr, IpAddr)>,
}

/// What adding a fragment did.
#[derive(Debug)]
pub enum Added {
    /// Held until the rest arrives.
    Held,
    /// The datagram is whole: a rebuilt IP packet, made of `frames` captured fragments.
    Complete {
        /// The rebuilt, unfragmented IP packet.
        packet: Vec<u8>,
        /// The captured frames its fragments stand for.
        frames: u64,
        /// Fragments that overlapped bytes already covered by earlier pieces.
        overlaps: u64,
    },
}

/// A datagram given up, and how many captured fragments it had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GivenUp {
    /// The captured frames its fragments stand for.
    pub frames: u64,
    /// Why it was given up.
    pub why: GiveUp,
}

/// Why a datagram's fragments were given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GiveUp {
    /// Still incomplete after the timeout or at the end of the input.
    Incomplete,
    /// More fragments, or more bytes, than any real datagram has.
    TooBig,
}

const MAX_FRAGMENTS: usize = 128;
const MAX_DATAGRAM: u32 = 65_535;
/// All pending datagrams together hold at most this much payload.
const MAX_HELD_BYTES: usize = 32 << 20;
/// Linux's default ipfrag_time.
const TIMEOUT: Duration = Duration::from_secs(30);

struct Pending {
    first_seen: Timestamp,
    header: Option<Vec<u8>>,
    /// (offset, arrival order, bytes)
    pieces: Vec<(u32, usize, Vec<u8>)>,
    total: Option<u32>,
    bytes: usize,
    /// The captured frames its pieces stand for.
    frames: u64,
}

/// Reassembles one packet stream's IP datagrams: holds the pending ones (at most 128 fragments
/// and 65,535 bytes each, 32 MiB in all, for 30 s from the first fragment) and keeps those given
/// up until [`Self::take_given_up`] or [`Self::finish`] collects them.
#[derive(Default)]
pub struct Defragmenter {
    pending: HashMap<FragKey, Pending>,
    held: usize,
    last_expiry: Timestamp,
    given_up: Vec<GivenUp>,
}

impl Defragmenter {
    /// Adds a fragment seen at `now`.
    pub fn add(&mut self, now: Timestamp, f: Fragment) -> Added {
        self.expire(now);
        let end = f.offset.saturating_add(f.data.len() as u32);
        let key = f.key;
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            first_seen: now,
            header: None,
            pieces: Vec::new(),
            total: None,
            bytes: 0,
            frames: 0,
        });
        if end > MAX_DATAGRAM || p.pieces.len() >= MAX_FRAGMENTS {
            let frames = p.frames + f.frames;
            self.drop_pending(&key);
            self.given_up.push(GivenUp { frames, why: GiveUp::TooBig });
            return Added::Held;
        }
        if f.header.is_some() && p.header.is_none() {
            p.header = f.header;
        }
        if !f.more {
            p.total = Some(p.total.map_or(end, |t| t.min(end)));
        }
        p.bytes += f.data.len();
        p.frames += f.frames;
        self.held += f.data.len();
        let order = p.pieces.len();
        p.pieces.push((f.offset, order, f.data));
        if let Some((packet, frames, overlaps)) = assemble(p) {
            self.drop_pending(&key);
            return Added::Complete { packet, frames, overlaps };
        }
        while self.held > MAX_HELD_BYTES {
            let Some(oldest) = self.pending.iter().min_by_key(|(_, p)| p.first_seen).map(|(k, _)| *k) else {
                break;
            };
            let frames = self.pending[&oldest].frames;
            self.drop_pending(&oldest);
            self.given_up.push(GivenUp { frames, why: GiveUp::TooBig });
        }
        Added::Held
    }

    /// Datagrams given up since the last call.
    pub fn take_given_up(&mut self) -> Vec<GivenUp> {
        std::mem::take(&mut self.given_up)
    }

    /// Gives up every pending datagram (end of input).
    pub fn finish(&mut self) -> Vec<GivenUp> {
        let keys: Vec<FragKey> = self.pending.keys().copied().collect();
        for k in keys {
            let frames = self.pending[&k].frames;
            self.drop_pending(&k);
            self.given_up.push(GivenUp { frames, why: GiveUp::Incomplete });
        }
        self.take_given_up()
    }

    fn expire(&mut self, now: Timestamp) {
        if self.pending.is_empty() || now.since(self.last_expiry) < Duration::from_secs(1) {
            return;
        }
        self.last_expiry = now;
        let old: Vec<FragKey> =
            self.pending.iter().filter(|(_, p)| now.since(p.first_seen) > TIMEOUT).map(|(k, _)| *k).collect();
        for k in old {
            let frames = self.pending[&k].frames;
            self.drop_pending(&k);
            self.given_up.push(GivenUp { frames, why: GiveUp::Incomplete });
        }
    }

    fn drop_pending(&mut self, key: &FragKey) {
        if let Some(p) = self.pending.remove(key) {
            self.held -= p.bytes;
        }
    }
}

/// The rebuilt packet when the pieces cover the datagram: (packet, frames, overlapping pieces).
fn assemble(p: &mut Pending) -> Option<(Vec<u8>, u64, u64)> {
    let total = p.total?;
    let header = p.header.as_ref()?;
    p.pieces.sort_by_key(|&(off, order, _)| (off, order));
    let mut covered = 0u32;
    for (off, _, data) in &p.pieces {
        if *off > covered {
            return None; // a hole
        }
        covered = covered.max(off + data.len() as u32);
    }
    if covered < total {
        return None;
    }
    let mut payload = Vec::with_capacity(total as usize);
    let mut overlaps = 0;
    for (off, _, data) in &p.pieces {
        let start = *off as usize;
        let have = payload.len();
        if start < have {
            overlaps += 1;
        }
        if start + data.len() > have {
            payload.extend_from_slice(&data[have - start..]);
        }
    }
    payload.truncate(total as usize);
    Some((rebuild(header, &payload), p.frames, overlaps))
}

/// An unfragmented IP packet: the first fragment's header with lengths and fragment fields fixed.
fn rebuild(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut packet = header.to_vec();
    if header[0] >> 4 == 4 {
        let total = (header.len() + payload.len()).min(65_535) as u16;
        packet[2..4].copy_from_slice(&total.to_be_bytes());
        packet[6] = 0; // flags and fragment offset
        packet[7] = 0;
    } else {
        packet[4..6].copy_from_slice(&(payload.len().min(65_535) as u16).to_be_bytes());
    }
    packet.extend_from_slice(payload);
    packet
}

/// The fixed IPv6 header a reassembled IPv6 datagram is rebuilt with.
pub fn ipv6_header(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, next: u8) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 0, next, 64];
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FragKey {
        FragKey { src: [10, 0, 0, 1].into(), dst: [10, 0, 0, 2].into(), id: 7, proto: 17, outer: None }
    }

    fn v4_header() -> Vec<u8> {
        vec![0x45, 0, 0, 0, 0, 7, 0x20, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
    }

    fn frag(offset: u32, more: bool, data: &[u8]) -> Fragment {
        Fragment {
            key: key(),
            offset,
            more,
            header: (offset == 0).then(v4_header),
            data: data.to_vec(),
            frames: 1,
        }
    }

    #[test]
    fn in_order_and_out_of_order() {
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let pieces = [frag(0, true, &[1; 8]), frag(8, true, &[2; 8]), frag(16, false, &[3; 4])];
            let mut d = Defragmenter::default();
            let mut done = None;
            for i in order {
                if let Added::Complete { packet, frames, .. } = d.add(Timestamp::default(), pieces[i].clone())
                {
                    done = Some((packet, frames));
                }
            }
            let (packet, frames) = done.expect("complete");
            assert_eq!(frames, 3);
            assert_eq!(packet.len(), 20 + 20);
            assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), 40);
            assert_eq!(packet[6] & 0x3f, 0, "no longer a fragment");
            assert_eq!(&packet[20..], [[1u8; 8].as_slice(), &[2; 8], &[3; 4]].concat());
        }
    }

    #[test]
    fn overlaps_keep_the_first_arrival() {
        let mut d = Defragmenter::default();
        d.add(Timestamp::default(), frag(0, true, &[1; 8]));
        d.add(Timestamp::default(), frag(8, true, &[2; 8]));
        d.add(Timestamp::default(), frag(8, true, &[9; 8]));
        let Added::Complete { packet, frames, overlaps } =
            d.add(Timestamp::default(), frag(16, false, &[3; 4]))
        else {
            panic!("complete")
        };
        assert_eq!(&packet[28..36], &[2; 8]);
        assert_eq!((frames, overlaps), (4, 1));
    }

    #[test]
    fn incomplete_datagrams_time_out() {
        let mut d = Defragmenter::default();
        d.add(Timestamp::default(), frag(0, true, &[1; 8]));
        d.add(Timestamp::default(), frag(8, true, &[1; 8]));
        let later = Timestamp::default().plus(Duration::from_secs(31));
        let other = Fragment { key: FragKey { id: 8, ..key() }, ..frag(0, true, &[1; 8]) };
        d.add(later, other);
        assert_eq!(d.take_given_up(), [GivenUp { frames: 2, why: GiveUp::Incomplete }]);
        assert_eq!(d.finish(), [GivenUp { frames: 1, why: GiveUp::Incomplete }]);
    }

    #[test]
    fn oversized_datagram_is_given_up() {
        let mut d = Defragmenter::default();
        d.add(Timestamp::default(), frag(0, true, &[1; 8]));
        d.add(Timestamp::default(), frag(65_530, false, &[1; 8]));
        assert_eq!(d.take_given_up(), [GivenUp { frames: 2, why: GiveUp::TooBig }]);
        assert!(d.pending.is_empty());
        assert_eq!(d.held, 0);
    }
}
