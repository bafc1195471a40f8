//! A compact table entry for TCP connections that have seen only a SYN, or a SYN and then a
//! RST: most connections of a scan or a flood go no further. Such an entry holds the segments
//! themselves, a quarter of a full connection's size, and the full state is made from them
//! (by running them through the same analysis) when the connection goes further, ends, or is
//! printed, so no output depends on which form a connection spent its time in.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::key::{PairKey, V4TcpPair};
use crate::decode::payload::Shape;
use crate::decode::{TcpFlags, TcpOptions, TcpSegment};
use crate::types::{Duration, SeqNum, Timestamp};

/// A connection whose only segments are a pure SYN without payload from its originator and at
/// most one RST without payload after it, from either side, all outside any tunnel. Its fields
/// lie flat, with the times, sides and options packed, in 48 bytes: with its pair (see `Filed`)
/// an entry of the table is 64 bytes for IPv4 and 88 for IPv6 (and 4 in the index). On a scan of
/// millions of targets, nearly all the memory there is.
#[derive(Clone, Debug)]
pub(super) struct Opening {
    /// The connection's id, given when its SYN arrived; 0 once vacated (ids count from 1).
    pub id: u64,
    /// The SYN's time.
    ts: Timestamp,
    syn_seq: SeqNum,
    syn_flags: TcpFlags,
    syn_window: u16,
    syn_ip_len: u16,
    /// The RST's fields; `rst_flags` is 0 while there is none (a RST's never are).
    rst_seq: SeqNum,
    rst_ack: SeqNum,
    rst_flags: TcpFlags,
    rst_window: u16,
    rst_ip_len: u16,
    /// Nanoseconds from the SYN to the RST.
    rst_after: u32,
    /// The options the SYN offered, and which side sent each segment.
    offer: Offer,
}

/// `TcpOptions` in four bytes, with the senders of the SYN and the RST.
#[derive(Clone, Copy, Debug)]
struct Offer {
    mss: u16,
    window_scale: u8,
    bits: u8,
}

impl Offer {
    const MSS: u8 = 1;
    const WINDOW_SCALE: u8 = 2;
    const SACK_PERMITTED: u8 = 4;
    const TIMESTAMPS: u8 = 8;
    /// The SYN came from the lower side of the key.
    const SYN_FROM_LO: u8 = 16;
    /// The RST came from the lower side of the key.
    const RST_FROM_LO: u8 = 32;

    fn new(o: TcpOptions, syn_from_lo: bool) -> Self {
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        Offer {
            mss: o.mss.unwrap_or(0),
            window_scale: o.window_scale.unwrap_or(0),
            bits: bit(o.mss.is_some(), Self::MSS)
                | bit(o.window_scale.is_some(), Self::WINDOW_SCALE)
                | bit(o.sack_permitted, Self::SACK_PERMITTED)
                | bit(o.timestamps, Self::TIMESTAMPS)
                | bit(syn_from_lo, Self::SYN_FROM_LO),
        }
    }

    fn has(self, b: u8) -> bool {
        self.bits & b != 0
    }

    fn options(self) -> TcpOptions {
        TcpOptions {
            mss: self.has(Self::MSS).then_some(self.mss),
            window_scale: self.has(Self::WINDOW_SCALE).then_some(self.window_scale),
            sack_permitted: self.has(Self::SACK_PERMITTED),
            timestamps: self.has(Self::TIMESTAMPS),
        }
    }
}

impl Opening {
    /// A compact entry for a new connection whose first segment is `seg`, when it qualifies.
    pub fn new(id: u64, ts: Timestamp, from_lo: bool, ip_len: u32, seg: &TcpSegment) -> Option<Self> {
        let f = seg.flags;
        let pure_syn = f.syn() && !f.ack() && !f.fin() && !f.rst();
        if !pure_syn || seg.payload_len > 0 {
            return None;
        }
        Some(Opening {
            id,
            ts,
            syn_seq: seg.seq,
            syn_flags: seg.flags,
            syn_window: seg.window,
            syn_ip_len: u16::try_from(ip_len).ok()?,
            rst_seq: SeqNum(0),
            rst_ack: SeqNum(0),
            rst_flags: TcpFlags(0),
            rst_window: 0,
            rst_ip_len: 0,
            rst_after: 0,
            offer: Offer::new(seg.options, from_lo),
        })
    }

    /// Takes `seg` into this entry if the connection stays one that a compact entry holds:
    /// a first RST without payload, no earlier than the SYN and while the SYN is still too
    /// recent to have timed out (see `due_from`). `inactivity` is the table's TCP timeout.
    pub fn absorb(
        &mut self,
        ts: Timestamp,
        from_lo: bool,
        ip_len: u32,
        seg: &TcpSegment,
        inactivity: Duration,
    ) -> bool {
        let f = seg.flags;
        let quiet_rst = f.rst() && !f.syn() && !f.fin() && seg.payload_len == 0;
        if !quiet_rst || self.has_rst() || ts < self.ts || ts >= self.due_from(inactivity) {
            return false;
        }
        let (Ok(after), Ok(ip_len)) = (u32::try_from(ts.since(self.ts).0), u16::try_from(ip_len)) else {
            return false;
        };
        self.rst_seq = seg.seq;
        self.rst_ack = seg.ack;
        self.rst_flags = seg.flags;
        self.rst_window = seg.window;
        self.rst_ip_len = ip_len;
        self.rst_after = after;
        if from_lo {
            self.offer.bits |= Offer::RST_FROM_LO;
        }
        true
    }

    fn has_rst(&self) -> bool {
        self.rst_flags.0 != 0
    }

    /// The segments, in the order they arrived, each with its time, sender (lower side of the
    /// key or not) and IP length, as the decoder gave them (a pure SYN's acknowledgment field
    /// is not read, and is given as 0). `key` is the connection's pair.
    pub fn segments(&self, key: PairKey) -> impl Iterator<Item = (Timestamp, bool, u32, TcpSegment)> + '_ {
        let syn = Some((
            self.ts,
            self.offer.has(Offer::SYN_FROM_LO),
            self.syn_ip_len,
            self.syn_seq,
            SeqNum(0),
            self.syn_flags,
            self.syn_window,
            self.offer.options(),
        ));
        let rst = self.has_rst().then(|| {
            (
                self.last(),
                self.offer.has(Offer::RST_FROM_LO),
                self.rst_ip_len,
                self.rst_seq,
                self.rst_ack,
                self.rst_flags,
                self.rst_window,
                TcpOptions::default(),
            )
        });
        let (lo, hi) = key.ports();
        [syn, rst].into_iter().flatten().map(
            move |(ts, from_lo, ip_len, seq, ack, flags, window, options)| {
                let (src_port, dst_port) = if from_lo { (lo, hi) } else { (hi, lo) };
                let seg = TcpSegment {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags,
                    window,
                    payload_len: 0,
                    options,
                    shape: Shape::None,
                };
                (ts, from_lo, u32::from(ip_len), seg)
            },
        )
    }

    /// Hands the connection over to be made full, leaving this entry vacant: it then matches
    /// no packet and the table drops it at its next sweep.
    pub fn vacate(&mut self) -> Opening {
        let taken = self.clone();
        self.id = 0;
        taken
    }

    /// Whether the connection was handed over (see `vacate`).
    pub fn is_vacant(&self) -> bool {
        self.id == 0
    }

    /// The time of the latest segment, which the full connection would keep as its last activity.
    pub fn last(&self) -> Timestamp {
        if self.has_rst() {
            self.ts.plus(Duration(u64::from(self.rst_after)))
        } else {
            self.ts
        }
    }

    /// No timer can have ended the connection before this time: every one of Zeek's timers
    /// (attempt, close, reset, expiry, inactivity) runs at least 5 seconds, or the inactivity
    /// timeout if shorter, from one of its segments, none of which is earlier than the SYN (see
    /// `TcpConn::expired`). Only from then on does a sweep need the full state to decide.
    pub fn due_from(&self, inactivity: Duration) -> Timestamp {
        self.ts.plus(Duration::from_secs(5).min(inactivity))
    }
}

/// An opening filed with its pair, in 12 bytes (`V4TcpPair`) or in full.
struct Filed<K> {
    key: K,
    opening: Opening,
}

/// The table's openings: those of plain TCP over IPv4 filed with their pairs in 12 bytes, the
/// rest with theirs in full. Each kind lies in a vector, found through an index of places filed
/// under their pairs' hashes (the table's, by which it finds live connections), as an IndexMap
/// keeps them. Apart from IndexMap so that at the end the index can be dropped and the vector
/// handed out from its end, giving its memory back as it shrinks: a scan's millions of openings
/// would otherwise stay whole until the last was handed out, next to everything made of them.
/// For the same reason the index holds 32-bit places and no hashes: an opening's hash is made
/// again from its pair when the index grows.
pub(super) struct Openings {
    v4: Store<V4TcpPair>,
    other: Store<PairKey>,
    /// The table's hasher, by which openings are filed.
    hasher: foldhash::fast::RandomState,
}

/// Openings of one kind of pair: see `Openings`.
struct Store<K> {
    index: HashTable<u32>,
    entries: Vec<Filed<K>>,
}

impl Openings {
    /// No openings, filed by the hashes `hasher` makes of their pairs.
    pub fn new(hasher: foldhash::fast::RandomState) -> Self {
        Openings { v4: Store::new(), other: Store::new(), hasher }
    }

    pub fn len(&self) -> usize {
        self.v4.entries.len() + self.other.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether another opening has a place: beyond 2^32 of them in one table, new connections
    /// are held in full.
    pub fn has_room(&self) -> bool {
        self.len() < u32::MAX as usize
    }

    /// The opening, not vacant, of `key`, filed under `hash` (its hash).
    #[inline]
    pub fn find_mut(&mut self, hash: u64, key: PairKey) -> Option<&mut Opening> {
        match key.v4_tcp() {
            Some(pair) => self.v4.find_mut(hash, pair),
            None => self.other.find_mut(hash, key),
        }
    }

    /// Starts loading an opening filed under `hash`, the hash of `key`, if there is one (any
    /// with that hash: see `ConnTable::prefetch`).
    #[inline]
    pub fn prefetch(&self, hash: u64, key: PairKey) {
        match key.v4_tcp() {
            Some(_) => self.v4.prefetch(hash),
            None => self.other.prefetch(hash),
        }
    }

    /// Files `opening` of `key`, known to be absent and with room for it, under `hash` (the
    /// hash of `key`).
    pub fn insert(&mut self, hash: u64, key: PairKey, opening: Opening) {
        debug_assert!(self.has_room() && hash == self.hasher.hash_one(key));
        match key.v4_tcp() {
            Some(pair) => self.v4.insert(hash, pair, opening, &self.hasher),
            None => self.other.insert(hash, key, opening, &self.hasher),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Opening> {
        let v4 = self.v4.entries.iter().map(|f| &f.opening);
        v4.chain(self.other.entries.iter().map(|f| &f.opening))
    }

    /// Keeps the openings for which `keep` holds (given each one's pair), in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(PairKey, &Opening) -> bool) {
        self.v4.retain(&self.hasher, &mut keep);
        self.other.retain(&self.hasher, &mut keep);
    }

    /// The openings that are not vacant, to be handed out in id order.
    pub fn into_sorted(self) -> Sorted {
        Sorted { v4: self.v4.into_sorted(), other: self.other.into_sorted() }
    }
}

impl<K: Copy + Eq> Store<K>
where
    PairKey: From<K>,
{
    fn new() -> Self {
        Store { index: HashTable::new(), entries: Vec::new() }
    }

    #[inline]
    fn find_mut(&mut self, hash: u64, key: K) -> Option<&mut Opening> {
        let Store { index, entries } = self;
        let holds = |&at: &u32| entries[at as usize].key == key && !entries[at as usize].opening.is_vacant();
        let at = *index.find(hash, holds)?;
        Some(&mut entries[at as usize].opening)
    }

    #[inline]
    fn prefetch(&self, hash: u64) {
        if let Some(&at) = self.index.find(hash, |_| true) {
            super::prefetch(&self.entries[at as usize]);
        }
    }

    fn insert(&mut self, hash: u64, key: K, opening: Opening, hasher: &foldhash::fast::RandomState) {
        let rehash = |f: &Filed<K>| hasher.hash_one(PairKey::from(f.key));
        super::file(&mut self.index, &mut self.entries, hash, Filed { key, opening }, rehash);
    }

    fn retain(
        &mut self,
        hasher: &foldhash::fast::RandomState,
        keep: &mut impl FnMut(PairKey, &Opening) -> bool,
    ) {
        let before = self.entries.len();
        self.entries.retain(|f| keep(PairKey::from(f.key), &f.opening));
        // Where none went, every place in the index still holds.
        if self.entries.len() < before {
            let Store { index, entries } = self;
            super::refile(index, entries, index.capacity(), |f| hasher.hash_one(PairKey::from(f.key)));
        }
    }

    /// The openings that are not vacant, highest id first, so the next one out is the last.
    fn into_sorted(self) -> Vec<Filed<K>> {
        let mut entries = self.entries;
        drop(self.index);
        entries.retain(|f| !f.opening.is_vacant());
        // Openings are filed as their ids are given, so this finds one run in reverse and turns
        // it round.
        entries.sort_unstable_by_key(|f| std::cmp::Reverse(f.opening.id));
        entries
    }
}

/// Openings handed out in id order, their vectors shrunk as they empty.
pub(super) struct Sorted {
    v4: Vec<Filed<V4TcpPair>>,
    other: Vec<Filed<PairKey>>,
}

impl Sorted {
    /// The id of the next one out.
    pub fn next_id(&self) -> Option<u64> {
        let v4 = self.v4.last().map(|f| f.opening.id);
        let other = self.other.last().map(|f| f.opening.id);
        v4.into_iter().chain(other).min()
    }

    /// The next opening out, with its pair.
    pub fn pop(&mut self) -> Option<(PairKey, Opening)> {
        if super::least_in_first(&self.v4, &self.other, |f| f.opening.id, |f| f.opening.id)? {
            super::pop_shrinking(&mut self.v4).map(|f| (f.key.into(), f.opening))
        } else {
            super::pop_shrinking(&mut self.other).map(|f| (f.key, f.opening))
        }
    }
}

/// Whether new connections start as openings. Openings pay where most connections never get
/// past their SYN (scans, floods) and cost a little where nearly all are answered, as each
/// answer makes its connection full in the other table. So a table counts, over windows of
/// openings, how many were answered; after a window in which more than a quarter were, it makes
/// full entries for a while, then tries openings again. Only memory and speed depend on it, not
/// any output.
#[derive(Debug, Default)]
pub(super) struct Thrift {
    opened: u32,
    answered: u32,
    /// New connections still to be made full before openings are tried again.
    pause: u32,
}

/// Openings per window.
const WINDOW: u32 = 4096;
/// Full entries made after a window in which too many openings were answered.
const PAUSE: u32 = 16 * WINDOW;

impl Thrift {
    /// Whether a new connection that qualifies as an opening is to be held as one.
    pub fn opens(&mut self) -> bool {
        if self.pause > 0 {
            self.pause -= 1;
            if self.pause == 0 {
                (self.opened, self.answered) = (0, 0);
            }
            return false;
        }
        self.opened += 1;
        if self.opened == WINDOW {
            if self.answered > WINDOW / 4 {
                self.pause = PAUSE;
            }
            (self.opened, self.answered) = (0, 0);
        }
        true
    }

    /// Whether new connections are being held as openings now: only then is a packet that no
    /// live connection takes likely to be an opening's answer.
    pub fn opening(&self) -> bool {
        self.pause == 0
    }

    /// An opening went further than its SYN (or its SYN and RST).
    pub fn answered(&mut self) {
        self.answered += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The point of the compact entry (issue: at most about 100 bytes for a half-open connection;
    /// 64 here over IPv4 and 88 over IPv6, plus its place in the index).
    #[test]
    fn an_opening_stays_compact() {
        let v4 = std::mem::size_of::<Filed<V4TcpPair>>();
        let other = std::mem::size_of::<Filed<PairKey>>();
        assert!(v4 <= 64 && other <= 88, "openings are {v4} and {other} bytes");
    }

    #[test]
    fn openings_pause_where_many_are_answered_and_resume() {
        let mut thrift = Thrift::default();
        for n in 0..WINDOW {
            assert!(thrift.opens());
            if n % 3 == 0 {
                thrift.answered();
            }
        }
        assert!((0..PAUSE).all(|_| !thrift.opens()), "full entries for a while");
        // A scan: hardly any answered, so openings stay.
        for n in 0..10 * WINDOW {
            assert!(thrift.opens());
            if n % 100 == 0 {
                thrift.answered();
            }
        }
    }
}
