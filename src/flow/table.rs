//! The connection table: live connections by socket pair, ended ones in a list.
//!
//! A socket pair maps to at most one live connection. It ends when its pair is reused for a
//! new connection (decided by the TCP analysis), when it stays idle past the inactivity
//! timeout, or when the input ends. Ids are handed out in order of first packet.

use std::hash::BuildHasher;

use indexmap::map::raw_entry_v1::RawEntryMut;
use indexmap::map::{MutableKeys, RawEntryApiV1};
use indexmap::{IndexMap, IndexSet};

use super::app::AppState;
use super::history::History;
use super::key::{PairKey, TunnelId, TunnelKey, MAX_TUNNEL_ID};
use super::opening::{Opening, Openings, Sorted, Thrift};
use super::{Conn, DirStats, EndReason, TunnelInfo};
use crate::decode::payload::RoleView;
use crate::decode::tunnel::TunnelKind;
use crate::decode::{Hop, Ip, TcpSegment, UdpDatagram};
use crate::tcp::{self, TcpConn};
use crate::types::{Addr, Duration, Proto, Timestamp};

/// Inactivity timeouts (Zeek's defaults: `tcp_inactivity_timeout`, `udp_inactivity_timeout`).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// After this long without a packet a TCP connection ends (default 300 s).
    pub tcp: Duration,
    /// After this long without a packet a UDP flow ends (default 60 s).
    pub udp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { tcp: Duration::from_secs(300), udp: Duration::from_secs(60) }
    }
}

/// Idle connections are swept out at most this often (in capture time), keeping memory bound
/// to the live ones without scanning the table on every packet.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How many entries ahead a sweep requests the next entries' first lines, so that they have
/// arrived by the time the sweep reads them.
const SWEEP_AHEAD: usize = 8;

/// The connection table: live connections keyed by socket pair (and tunnel), and those that
/// ended but were not yet taken out.
pub struct ConnTable {
    /// Live connections, each its own key (see `Live`). foldhash: fast on these small keys,
    /// and randomly seeded per run so crafted socket pairs cannot be aimed at one bucket.
    live: IndexMap<Live, (), foldhash::fast::RandomState>,
    /// TCP connections that have seen only a SYN, or a SYN and a RST (see `opening`): most of a
    /// scan's or a flood's. Apart from `live` so that their entries stay small; filed under the
    /// same hashes, so a packet hashes its pair once.
    openings: Openings,
    /// Openings made full since the last sweep, left in place vacant (see `Opening::vacate`).
    vacated: usize,
    /// Whether new connections start as openings.
    thrift: Thrift,
    /// Connections that ended and were not yet handed out.
    ended: Vec<Conn>,
    /// Tunnels seen so far; a key names its tunnel by position here plus one. Grows with
    /// distinct tunnels, which are few next to the connections inside them.
    tunnels: IndexSet<TunnelKey, foldhash::fast::RandomState>,
    next_id: u64,
    timeouts: Timeouts,
    last_sweep: Timestamp,
    since_sweep: usize,
    max_live: usize,
    /// Whether new connections may start as openings; the tests compare against tables that
    /// hold every connection in full.
    compact: bool,
    /// Connections ended early because the table was full.
    pub evicted: u64,
}

/// Where `prefetch` expects a packet's live entry: the hash of its socket pair, and the index
/// of an entry with a matching hash tag, if any (only a guess until its key is compared).
#[derive(Clone, Copy, Debug)]
pub struct Hint {
    hash: u64,
    at: Option<usize>,
}

/// Where `ConnTable::tcp_elsewhere` put a segment.
enum Entry {
    /// The live connection at this index, which the segment is to run through.
    Live(usize),
    /// The opening of this id, which took the segment in.
    Opening(u64),
}

/// A table's connections at the end of the input, handed out in order of first packet: those
/// that ended, those still live, and the openings, each list sorted and merged by the id at its
/// head, read in place. An opening is made in full only when its turn comes.
pub struct Rest {
    ended: std::vec::IntoIter<Conn>,
    live: indexmap::map::IntoIter<Live, ()>,
    openings: Sorted,
    /// The run's last timestamp, by which an opening's timers may have run out.
    end: Option<Timestamp>,
    inactivity: Duration,
}

impl Rest {
    /// The id of the next connection out, without making it.
    pub fn next_id(&self) -> Option<u64> {
        let e = self.ended.as_slice().first().map(|c| c.id);
        let l = self.live.as_slice().first().map(|(live, ())| live.0.id);
        [e, l, self.openings.next_id()].into_iter().flatten().min()
    }
}

impl Iterator for Rest {
    type Item = Conn;

    fn next(&mut self) -> Option<Conn> {
        let next = self.next_id()?;
        if self.ended.as_slice().first().is_some_and(|c| c.id == next) {
            self.ended.next()
        } else if self.live.as_slice().first().is_some_and(|(live, ())| live.0.id == next) {
            self.live.next().map(|(live, ())| live.0)
        } else {
            let (key, opening) = self.openings.pop()?;
            let mut conn = materialize(key, &opening);
            if self.end.is_some_and(|end| conn.tcp.expired(end, conn.first, conn.last, self.inactivity)) {
                conn.end = EndReason::Inactivity;
            }
            Some(conn)
        }
    }
}

/// A live connection as the table's key: filed under the hash of its socket pair, which it
/// holds, so the pair (40 bytes) is stored once per connection rather than a second time beside
/// it. The table hashes pairs and compares them itself, through
/// indexmap's raw entries (see `slot`), so `Live` needs no `Hash` or `Eq`. Mutated in place
/// through `MutableKeys`, which is sound here as nothing changes a connection's pair.
struct Live(Conn);

impl ConnTable {
    /// `max_live` bounds the live connections, openings included (a SYN flood must not exhaust
    /// memory).
    pub fn new(timeouts: Timeouts, max_live: usize) -> Self {
        let hasher = foldhash::fast::RandomState::default();
        ConnTable {
            live: IndexMap::with_hasher(hasher.clone()),
            openings: Openings::new(hasher),
            vacated: 0,
            thrift: Thrift::default(),
            ended: Vec::new(),
            tunnels: IndexSet::default(),
            next_id: 1,
            timeouts,
            last_sweep: Timestamp::default(),
            since_sweep: 0,
            max_live: max_live.max(1),
            compact: true,
            evicted: 0,
        }
    }

    /// A table that holds every connection in full from its first segment, as the reference
    /// that openings are held to.
    #[cfg(test)]
    fn without_openings(self) -> Self {
        ConnTable { compact: false, ..self }
    }

    /// Adds a segment; returns the id of the connection it belongs to. `hint` is what
    /// `prefetch` said of this packet, if it was asked.
    pub fn tcp(
        &mut self,
        ts: Timestamp,
        ip: &Ip,
        seg: &TcpSegment,
        ctx: &Context<'_>,
        hint: Option<Hint>,
    ) -> u64 {
        let src = Addr { ip: ip.src, port: seg.src_port };
        let dst = Addr { ip: ip.dst, port: seg.dst_port };
        let (key, src_is_lo) = PairKey::ordered(Proto::Tcp, src, dst, self.tunnel_id(ctx.tunnel));
        self.maybe_sweep(ts);
        let hash = self.hash(key, hint);
        let tcp_timeout = self.timeouts.tcp;
        let mut found = self.find_live(key, hash, hint);
        if let Some(at) = found {
            if let Some(why) = tcp_ends(self.conn_mut(at), ts, seg, tcp_timeout) {
                self.end_at(at, why);
                found = None;
            }
        }
        let at = match found {
            Some(at) => at,
            None => match self.tcp_elsewhere(ts, ip, seg, ctx, hash, key, src_is_lo) {
                Entry::Live(at) => at,
                Entry::Opening(id) => return id,
            },
        };
        let conn = self.conn_mut(at);
        ctx.note(conn);
        tcp_segment(conn, ts, src_is_lo, ip.wire_len, seg)
    }

    /// Where a segment goes that no live connection takes: the live connection made full from
    /// its pair's opening, or a new one; or an opening, which took the segment in. Kept out of
    /// `tcp`, whose common path (a live connection) stays small.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn tcp_elsewhere(
        &mut self,
        ts: Timestamp,
        ip: &Ip,
        seg: &TcpSegment,
        ctx: &Context<'_>,
        hash: u64,
        key: PairKey,
        src_is_lo: bool,
    ) -> Entry {
        let opening = if self.openings.is_empty() { None } else { self.openings.find_mut(hash, key) };
        if let Some(opening) = opening {
            if opening.absorb(ts, src_is_lo, ip.wire_len, seg, self.timeouts.tcp) {
                return Entry::Opening(opening.id);
            }
            // Left vacant rather than removed, which would move another entry and look up its
            // index: the next sweep clears it.
            let opening = opening.vacate();
            self.vacated += 1;
            self.thrift.answered();
            // Made in full in its place in the table, not moved there.
            let at = self.insert_live(hash, fresh(key, &opening));
            replay(key, &opening, self.conn_mut(at));
            let tcp_timeout = self.timeouts.tcp;
            match tcp_ends(self.conn_mut(at), ts, seg, tcp_timeout) {
                Some(why) => self.end_at(at, why),
                None => return Entry::Live(at),
            }
        }
        let id = self.new_id();
        // Outside tunnels only: a tunnelled connection's record carries its tunnel.
        let may_open = self.compact && ctx.tunnel.is_none() && ctx.hops.is_empty();
        let opening = Opening::new(id, ts, src_is_lo, ip.wire_len, seg).filter(|_| may_open);
        if let Some(opening) = opening.filter(|_| self.openings.has_room() && self.thrift.opens()) {
            self.openings.insert(hash, key, opening);
            return Entry::Opening(id);
        }
        Entry::Live(self.insert_live(hash, new_tcp_conn(id, key, ts, src_is_lo, seg)))
    }

    /// Adds a datagram; returns the id of the flow it belongs to. `hint` as for `tcp`.
    pub fn udp(
        &mut self,
        ts: Timestamp,
        ip: &Ip,
        d: &UdpDatagram,
        ctx: &Context<'_>,
        hint: Option<Hint>,
    ) -> u64 {
        let src = Addr { ip: ip.src, port: d.src_port };
        let dst = Addr { ip: ip.dst, port: d.dst_port };
        let (key, src_is_lo) = PairKey::ordered(Proto::Udp, src, dst, self.tunnel_id(ctx.tunnel));
        self.maybe_sweep(ts);
        let timeout = udp_timeout(self.timeouts.udp, src.port, dst.port);
        let hash = self.hash(key, hint);
        let mut found = self.find_live(key, hash, hint);
        if let Some(at) = found.filter(|&at| ts.since(self.conn_mut(at).last) > timeout) {
            self.end_at(at, EndReason::Inactivity);
            found = None;
        }
        let at = found.unwrap_or_else(|| {
            let id = self.new_id();
            let flip = super::ports::udp_should_flip(src.port, dst.port) && !is_broadcast(dst.ip);
            let mut conn = new_conn(id, Proto::Udp, key, ts, src_is_lo != flip);
            if flip {
                conn.history.flip();
            }
            self.insert_live(hash, conn)
        });
        let conn = self.conn_mut(at);
        ctx.note(conn);
        let is_orig = src_is_lo == conn.orig_is_lo;
        let sent = [conn.orig_stats.payload_bytes, conn.resp_stats.payload_bytes];
        count(conn, is_orig, ip.wire_len, d.payload_len);
        conn.last = conn.last.max(ts);
        // Zeek marks every datagram as data, even an empty one.
        conn.history.once('D', is_orig);
        match ctx.carries {
            Some(kind) => conn.app.carried(kind, is_orig),
            None => {
                if d.payload_len > 0 {
                    conn.app.payload(Proto::Udp, is_orig, sent, d.shape);
                }
                // Only a datagram on a DNS or NTP port carries something for the role rules.
                if d.roles != RoleView::None {
                    let resp = conn.resp();
                    if conn.app.udp_flip(is_orig, resp.port, resp.ip.is_multicast(), d.roles) {
                        flip_udp(conn, is_orig, ip.wire_len);
                    }
                }
            }
        }
        conn.id
    }

    /// Starts loading the live entry of the untunnelled packet `src` -> `dst`, if there is one,
    /// so that it is in cache when the packet comes to it a few packets later. The entry is
    /// found by its hash alone (any entry whose hash tag matches): comparing the key would wait
    /// for the very entry being prefetched, and a wrong guess only loads a line for nothing.
    /// The hash and the guess come back as a `Hint` for the packet's turn.
    #[inline]
    pub fn prefetch(&self, proto: Proto, src: Addr, dst: Addr) -> Hint {
        let key = PairKey::new(proto, src, dst, 0);
        let hash = self.live.hasher().hash_one(key);
        let at = self.live.raw_entry_v1().index_from_hash(hash, |_| true);
        if let Some(at) = at {
            let (live, _) = self.live.get_index(at).expect("index from the table");
            live.0.prefetch();
        } else if !self.openings.is_empty() && self.thrift.opening() {
            self.prefetch_opening(hash, key);
        }
        Hint { hash, at }
    }

    /// Starts loading the opening filed under `hash`, if any: a packet no live connection takes
    /// is most likely the answer to one.
    #[inline(never)]
    fn prefetch_opening(&self, hash: u64, key: PairKey) {
        self.openings.prefetch(hash, key);
    }

    /// The connections that ended since the last call, in the order they ended.
    pub fn drain_ended(&mut self) -> std::vec::Drain<'_, Conn> {
        self.ended.drain(..)
    }

    /// Ends every connection (the input is over) and hands them out, in order of first packet.
    /// Those whose timers had run out by `end` (the run's last timestamp) ended by inactivity,
    /// the rest at the capture's end. Sorted in place and moved out one by one: a second copy of
    /// every live connection would double the peak memory at the end of a run. Sorted by ids
    /// set aside (16 bytes per connection), so each entry moves once rather than at every step
    /// of a quicksort.
    pub fn finish(mut self, end: Option<Timestamp>) -> Rest {
        if let Some(end) = end {
            self.sweep_live(end);
        }
        self.live.sort_by_cached_key(|live, _| live.0.id);
        self.ended.sort_unstable_by_key(|c| c.id);
        // Sorted without an index made again for them, vacant ones dropped; their timers are
        // looked at as each is made.
        Rest {
            ended: self.ended.into_iter(),
            live: self.live.into_iter(),
            openings: self.openings.into_sorted(),
            end,
            inactivity: self.timeouts.tcp,
        }
    }

    fn conn_mut(&mut self, at: usize) -> &mut Conn {
        &mut self.live.get_index_mut2(at).expect("index in the table").0 .0
    }

    /// Removes the live connection at `at` (the last one takes its place) and ends it.
    fn end_at(&mut self, at: usize, why: EndReason) {
        let (Live(conn), ()) = self.live.swap_remove_index(at).expect("index in the table");
        self.end(conn, why);
    }

    fn end(&mut self, mut conn: Conn, why: EndReason) {
        conn.end = why;
        self.evicted += u64::from(why == EndReason::Evicted);
        self.ended.push(conn);
    }

    /// The id the next new connection gets.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Numbers new connections from `id` on (never backwards). A table that sees only part of
    /// the packets numbers them by packet instead of one by one, so ids from several tables
    /// still sort in order of first packet.
    pub fn number_from(&mut self, id: u64) {
        self.next_id = self.next_id.max(id);
    }

    fn tunnel_id(&mut self, tunnel: Option<TunnelKey>) -> TunnelId {
        let Some(t) = tunnel else { return 0 };
        let at = self.tunnels.insert_full(t).0;
        TunnelId::try_from(at + 1).unwrap_or(MAX_TUNNEL_ID).min(MAX_TUNNEL_ID)
    }

    /// The hash of `key`: the one `prefetch` computed, if it was asked.
    #[inline]
    fn hash(&self, key: PairKey, hint: Option<Hint>) -> u64 {
        hint.map_or_else(|| self.live.hasher().hash_one(key), |h| h.hash)
    }

    /// Index of the live connection for `key` (of hash `hash`): with a `hint` whose guess still
    /// holds this key, no lookup.
    #[inline]
    fn find_live(&self, key: PairKey, hash: u64, hint: Option<Hint>) -> Option<usize> {
        let holds = |live: &Live| live.0.key == key;
        // The guess was made some packets ago: entries may have moved since (see `end_at`).
        let guess =
            hint.and_then(|h| h.at).filter(|&at| self.live.get_index(at).is_some_and(|(l, _)| holds(l)));
        guess.or_else(|| self.live.raw_entry_v1().index_from_hash(hash, holds))
    }

    /// Files `conn`, known to be absent, under `hash`; returns its index.
    fn insert_live(&mut self, hash: u64, conn: Conn) -> usize {
        insert_hashed(&mut self.live, hash, Live(conn))
    }

    /// The id of a new connection, after making room for it.
    fn new_id(&mut self) -> u64 {
        self.make_room();
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Before a new connection would overfill the table, ends the least recently active
    /// hundredth of it (at least one): amortized, no per-packet scan.
    fn make_room(&mut self) {
        if self.held() < self.max_live {
            return;
        }
        let batch = (self.max_live / 100).max(1);
        let lives = self.live.keys().map(|live| live.0.last);
        let openings = self.openings.iter().filter(|o| !o.is_vacant()).map(Opening::last);
        let mut last: Vec<Timestamp> = lives.chain(openings).collect();
        let (_, cutoff, _) = last.select_nth_unstable(batch - 1);
        let cutoff = *cutoff;
        let mut left = batch;
        let mut take = |last: Timestamp| {
            let take = left > 0 && last <= cutoff;
            left -= usize::from(take);
            take
        };
        self.end_where(EndReason::Evicted, |c| take(c.last));
        let mut evicted = Vec::new();
        self.openings.retain(|key, opening| {
            let take = !opening.is_vacant() && take(opening.last());
            if take {
                evicted.push(materialize(key, opening));
            }
            !take && !opening.is_vacant()
        });
        self.vacated = 0;
        for conn in evicted {
            self.end(conn, EndReason::Evicted);
        }
    }

    /// Connections in the table, openings included.
    fn held(&self) -> usize {
        self.live.len() + self.openings.len() - self.vacated
    }

    /// Ends every live connection for which `ends` holds. The live table's order does not
    /// matter (ids carry the order), so each removal swaps in the last entry: no shifting.
    fn end_where(&mut self, why: EndReason, mut ends: impl FnMut(&mut Conn) -> bool) {
        // Backwards, so the entry swapped into a freed slot has already been looked at (and
        // the entries below `at` stay where they are: those a few ahead are requested early).
        for at in (0..self.live.len()).rev() {
            if let Some((ahead, _)) = at.checked_sub(SWEEP_AHEAD).and_then(|a| self.live.get_index(a)) {
                ahead.0.prefetch_head();
            }
            if ends(self.conn_mut(at)) {
                self.end_at(at, why);
            }
        }
    }

    /// Ends the connections that are over by `now` (idle, or past Zeek's close timers), so the
    /// table holds live connections only. Runs at most once per second of capture time and only
    /// after as many packets as half the table holds, so its cost per packet stays constant: a
    /// scan looks at two entries per packet. Ended connections may linger a little longer, at a
    /// small cost in memory. The check runs for every packet, inline; the sweep is rare and
    /// kept out of line.
    #[inline(always)]
    fn maybe_sweep(&mut self, now: Timestamp) {
        self.since_sweep += 1;
        if now.since(self.last_sweep) < SWEEP_EVERY || self.since_sweep < self.held() / 2 {
            return;
        }
        self.last_sweep = now;
        self.since_sweep = 0;
        self.sweep(now);
    }

    /// Ends every connection that is over by `now`. Whether one is over depends only on `now`
    /// and its own packets, not on when this runs (timers only ever come due), so where sweeps
    /// happen cannot change a connection's end.
    #[inline(never)]
    fn sweep(&mut self, now: Timestamp) {
        self.sweep_live(now);
        // Openings old enough for a timer to have run are decided from their full state, and
        // stay in it if they live on. Vacant ones go once they are an eighth of the openings:
        // until then a sweep that decides nothing leaves the openings where they are.
        let timeouts = self.timeouts;
        let drop_vacant = self.vacated > self.openings.len() / 8;
        let (live, ended) = (&mut self.live, &mut self.ended);
        self.openings.retain(|key, opening| {
            if opening.is_vacant() {
                return !drop_vacant;
            }
            if now < opening.due_from(timeouts.tcp) {
                return true;
            }
            let mut conn = materialize(key, opening);
            if conn.tcp.expired(now, conn.first, conn.last, timeouts.tcp) {
                conn.end = EndReason::Inactivity;
                ended.push(conn);
            } else {
                insert_hashed(live, live.hasher().hash_one(conn.key), Live(conn));
            }
            false
        });
        if drop_vacant {
            self.vacated = 0;
        }
    }

    /// Ends the full connections that are over by `now`.
    fn sweep_live(&mut self, now: Timestamp) {
        let timeouts = self.timeouts;
        self.end_where(EndReason::Inactivity, |conn| match conn.proto {
            Proto::Tcp => conn.tcp.expired(now, conn.first, conn.last, timeouts.tcp),
            Proto::Udp => {
                let (a, b) = conn.key.ports();
                now.since(conn.last) > udp_timeout(timeouts.udp, a, b)
            }
        });
    }
}

/// Zeek's DNS analyzer shortens a UDP flow's inactivity timeout (`dns_session_timeout`, 10 s),
/// so DNS exchanges minutes apart on one socket pair are separate flows.
fn udp_timeout(default: Duration, a: u16, b: u16) -> Duration {
    const DNS_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
    let dns = |p: u16| matches!(p, 53 | 137 | 5353 | 5355);
    if dns(a) || dns(b) {
        default.min(DNS_SESSION_TIMEOUT)
    } else {
        default
    }
}

/// Where a packet was seen: outside any tunnel, or inside the tunnel layers named here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// The innermost tunnel, part of the connection's key.
    pub tunnel: Option<TunnelKey>,
    /// The tunnel layers outside the packet, outermost first.
    pub hops: &'a [Hop],
    /// Ids of the outer (UDP) connections that carried it.
    pub parents: &'a [u64],
    /// For a tunnel's outer datagram, the tunnel it carries.
    pub carries: Option<TunnelKind>,
}

impl Context<'_> {
    /// Records the tunnel a connection was seen in, and each outer connection that carried it.
    fn note(&self, conn: &mut Conn) {
        if self.hops.is_empty() {
            return;
        }
        let info = conn.tunnel.get_or_insert_with(|| {
            Box::new(TunnelInfo {
                path: self.hops.iter().map(|h| (h.kind, h.ip.src, h.ip.dst)).collect(),
                parents: Vec::new(),
            })
        });
        for p in self.parents {
            if !info.parents.contains(p) {
                info.parents.push(*p);
            }
        }
    }
}

/// Swaps a UDP flow's roles after its datagram from `was_orig` turned out to be the server's
/// (the DNS and NTP rules of `app`). As in Zeek, the letters written stay; the packet and IP
/// bytes of this datagram stay with the role it was sent in, since Zeek's ConnSize counts it
/// after the swap by the old direction, while its payload bytes (the UDP analyzer's own count,
/// taken before) go with the sender.
fn flip_udp(conn: &mut Conn, was_orig: bool, ip_len: u32) {
    conn.orig_is_lo = !conn.orig_is_lo;
    std::mem::swap(&mut conn.orig_stats, &mut conn.resp_stats);
    let (sender, other) = if was_orig {
        (&mut conn.resp_stats, &mut conn.orig_stats)
    } else {
        (&mut conn.orig_stats, &mut conn.resp_stats)
    };
    sender.pkts -= 1;
    sender.ip_bytes -= u64::from(ip_len);
    other.pkts += 1;
    other.ip_bytes += u64::from(ip_len);
    conn.history.flip();
    conn.app.flipped();
}

/// Zeek never flips a flow sent to the broadcast address: the sender is the one asking.
fn is_broadcast(ip: std::net::IpAddr) -> bool {
    ip == std::net::IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
}

/// Files `entry`, known to be absent, under `hash`, with neither hashing nor comparing again;
/// returns its index.
fn insert_hashed<K>(map: &mut IndexMap<K, (), foldhash::fast::RandomState>, hash: u64, entry: K) -> usize {
    let RawEntryMut::Vacant(place) = map.raw_entry_mut_v1().from_hash(hash, |_| false) else {
        unreachable!("nothing matches")
    };
    let at = place.index();
    place.insert_hashed_nocheck(hash, entry, ());
    at
}

/// The full state of the opening of `key`: its segments run through the analysis as they arrived.
fn materialize(key: PairKey, opening: &Opening) -> Conn {
    let mut conn = fresh(key, opening);
    replay(key, opening, &mut conn);
    conn
}

/// The connection the opening of `key` started with its SYN, before any segment ran through it.
fn fresh(key: PairKey, opening: &Opening) -> Conn {
    let (ts, from_lo, _, syn) = opening.segments(key).next().expect("an opening holds its SYN");
    new_tcp_conn(opening.id, key, ts, from_lo, &syn)
}

/// Runs the segments of the opening of `key` through `conn`, its `fresh` connection.
fn replay(key: PairKey, opening: &Opening, conn: &mut Conn) {
    for (ts, from_lo, ip_len, seg) in opening.segments(key) {
        tcp_segment(conn, ts, from_lo, ip_len, &seg);
    }
}

/// Why a TCP connection ends before `seg`, a segment of its pair at `ts`, if it does: its timers
/// ran out, or `seg` starts a new connection on the pair.
#[inline(always)]
fn tcp_ends(conn: &mut Conn, ts: Timestamp, seg: &TcpSegment, inactivity: Duration) -> Option<EndReason> {
    if conn.tcp.expired(ts, conn.first, conn.last, inactivity) {
        Some(EndReason::Inactivity)
    } else if conn.tcp.starts_new_connection(seg) {
        Some(EndReason::Reused)
    } else {
        None
    }
}

/// A new TCP connection whose first segment is `seg`, from the lower side of `key` or not.
fn new_tcp_conn(id: u64, key: PairKey, ts: Timestamp, from_lo: bool, seg: &TcpSegment) -> Conn {
    let o = tcp::orient(seg);
    let mut conn = new_conn(id, Proto::Tcp, key, ts, from_lo == o.sender_is_orig);
    if o.flipped {
        conn.history.flip();
    }
    conn
}

/// Runs a segment from the lower side of the key (`from_lo`) or not through `conn`; returns its id.
#[inline(never)]
fn tcp_segment(conn: &mut Conn, ts: Timestamp, from_lo: bool, ip_len: u32, seg: &TcpSegment) -> u64 {
    let is_orig = from_lo == conn.orig_is_lo;
    let tcp = &mut conn.tcp;
    let outcome = tcp.segment(ts, is_orig, seg, &mut conn.history);
    if outcome.flipped {
        conn.orig_is_lo = !conn.orig_is_lo;
        std::mem::swap(&mut conn.orig_stats, &mut conn.resp_stats);
        conn.app.flipped();
    }
    // Counted for the sender's role after any flip, as Zeek hands its children the
    // corrected direction (`TCPAnalyzer::DeliverPacket`).
    let is_orig = is_orig != outcome.flipped;
    if seg.payload_len > 0 {
        let sent = [conn.orig_stats.payload_bytes, conn.resp_stats.payload_bytes];
        if conn.tcp.partial() {
            conn.app.partial_payload(is_orig, sent, seg.shape);
        } else {
            conn.app.payload(Proto::Tcp, is_orig, sent, seg.shape);
        }
    }
    count(conn, is_orig, ip_len, seg.payload_len);
    if outcome.touch {
        conn.last = conn.last.max(ts);
    }
    conn.id
}

fn new_conn(id: u64, proto: Proto, key: PairKey, ts: Timestamp, orig_is_lo: bool) -> Conn {
    Conn {
        orig_is_lo,
        id,
        proto,
        key,
        first: ts,
        last: ts,
        orig_stats: DirStats::default(),
        resp_stats: DirStats::default(),
        history: History::default(),
        tcp: TcpConn::new(ts),
        tunnel: None,
        app: AppState::default(),
        end: EndReason::CaptureEnd,
    }
}

fn count(conn: &mut Conn, is_orig: bool, ip_len: u32, payload: u32) {
    let s = if is_orig { &mut conn.orig_stats } else { &mut conn.resp_stats };
    s.pkts += 1;
    s.payload_bytes += payload as u64;
    s.ip_bytes += ip_len as u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{TcpFlags, TcpOptions};
    use crate::types::SeqNum;
    use proptest::prelude::*;

    /// One segment of a generated script: which client port, sent by the server or not, flags,
    /// sequence and acknowledgment numbers, payload length, IP length and the gap before it.
    type Step = (u16, bool, u16, u32, u32, u32, u32, i64);

    fn step() -> impl Strategy<Value = Step> {
        use TcpFlags as F;
        let flags = prop_oneof![
            4 => Just(F::SYN),
            3 => Just(F::RST),
            2 => Just(F::RST | F::ACK),
            2 => Just(F::SYN | F::ACK),
            2 => Just(F::ACK),
            1 => Just(F::FIN | F::ACK),
            1 => Just(F::PSH | F::ACK),
            1 => any::<u16>().prop_map(|f| f & 0x1ff),
        ];
        let seq = prop_oneof![Just(1000u32), Just(1001), Just(5000), Just(5001), any::<u32>()];
        let ack = prop_oneof![Just(0u32), Just(1001), Just(5001), any::<u32>()];
        let payload = prop_oneof![3 => Just(0u32), 1 => Just(10)];
        let ip_len = prop_oneof![Just(40u32), Just(60), Just(70_000)];
        // Nanoseconds: none, a millisecond, around the 5 s timers, past the handshake timeout,
        // and now and then backwards.
        let gap = prop_oneof![
            Just(0i64),
            Just(1_000_000),
            Just(1_000_000_000),
            Just(4_999_999_999),
            Just(5_000_000_000),
            Just(6_000_000_001),
            Just(61_000_000_000),
            Just(-2_000_000_000),
        ];
        (0u16..3, any::<bool>(), flags, seq, ack, payload, ip_len, gap)
    }

    /// Runs `script` through `table` (its SYNs offering `mss`), handing `out` each connection
    /// as it ends; returns each segment's connection id, and the time of the last.
    fn feed(
        table: &mut ConnTable,
        script: &[Step],
        mss: Option<u16>,
        mut out: impl FnMut(Conn),
    ) -> (Vec<u64>, Timestamp) {
        let v4 = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let v6 = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let mut now = 100_000_000_000i64;
        let mut ids = Vec::new();
        for &(port, from_server, flags, seq, ack, payload_len, wire_len, gap) in script {
            now += gap;
            // Odd client ports over IPv6, so that openings filed both ways meet in one table.
            let (client, server) = if port % 2 == 1 { v6 } else { v4 };
            let (mut src, mut dst) = (Addr { ip: client, port: 40000 + port }, Addr { ip: server, port: 80 });
            if from_server {
                std::mem::swap(&mut src, &mut dst);
            }
            let ip = Ip { src: src.ip, dst: dst.ip, wire_len };
            let seg = TcpSegment {
                src_port: src.port,
                dst_port: dst.port,
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                flags: TcpFlags(flags),
                window: (seq % 7) as u16,
                payload_len,
                options: TcpOptions {
                    mss,
                    window_scale: (seq % 3 > 0).then_some((ack % 15) as u8),
                    sack_permitted: seq % 2 == 0,
                    timestamps: ack % 2 == 0,
                },
                shape: Default::default(),
            };
            ids.push(table.tcp(Timestamp::from_nanos(now as u64), &ip, &seg, &Context::default(), None));
            table.drain_ended().for_each(&mut out);
        }
        (ids, Timestamp::from_nanos(now as u64))
    }

    /// Runs `script` through `table`: each segment's connection id, and every connection
    /// handed out (as it ended or at the end), in full detail.
    fn run(mut table: ConnTable, script: &[Step], mss: Option<u16>) -> (Vec<u64>, Vec<String>) {
        let mut out = Vec::new();
        let (ids, end) = feed(&mut table, script, mss, |c| out.push(format!("{c:?}")));
        let rest: Vec<Conn> = table.finish(Some(end)).collect();
        assert!(rest.windows(2).all(|w| w[0].id < w[1].id), "the rest comes out in id order");
        out.extend(rest.iter().map(|c| format!("{c:?}")));
        // The order within one sweep is the table's own, which the two kinds of table differ in.
        out.sort();
        (ids, out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever segments come, in whatever order and at whatever times, a table that keeps
        /// openings compact gives exactly what one holding every connection in full gives.
        #[test]
        fn openings_change_nothing(
            script in prop::collection::vec(step(), 1..24),
            tcp_timeout in prop_oneof![Just(1u64), Just(3), Just(300)],
            mss in prop::option::of(any::<u16>()),
        ) {
            let timeouts = Timeouts { tcp: Duration::from_secs(tcp_timeout), ..Timeouts::default() };
            let compact = run(ConnTable::new(timeouts, 1000), &script, mss);
            let full = run(ConnTable::new(timeouts, 1000).without_openings(), &script, mss);
            prop_assert_eq!(compact, full);
        }
    }

    proptest! {
        /// A table too small for the script ends connections early, openings as well as full
        /// ones: each once, and each counted.
        #[test]
        fn eviction_ends_each_connection_once(
            script in prop::collection::vec(step(), 1..40),
            max_live in 1usize..4,
        ) {
            let (ids, out, counted) = run_counted(ConnTable::new(Timeouts::default(), max_live), &script);
            let mut seen: Vec<u64> = out.iter().map(|c| c.0).collect();
            seen.sort_unstable();
            let mut made = ids.clone();
            made.sort_unstable();
            made.dedup();
            prop_assert_eq!(&seen, &made, "every connection handed out once");
            let evicted = out.iter().filter(|c| c.1 == EndReason::Evicted).count() as u64;
            prop_assert_eq!(evicted, counted);
        }
    }

    /// As `run`: each segment's connection id, (id, end) of every connection handed out, and
    /// how many the table counted as evicted.
    fn run_counted(mut table: ConnTable, script: &[Step]) -> (Vec<u64>, Vec<(u64, EndReason)>, u64) {
        let mut out = Vec::new();
        let (ids, _) = feed(&mut table, script, None, |c| out.push((c.id, c.end)));
        let evicted = table.evicted;
        out.extend(table.finish(None).map(|c| (c.id, c.end)));
        (ids, out, evicted)
    }

    #[test]
    fn a_scan_is_held_in_openings_and_printed_in_full() {
        let mut table = ConnTable::new(Timeouts::default(), 1000);
        let syn = |port: u16| TcpSegment {
            src_port: port,
            dst_port: 80,
            seq: SeqNum(7),
            ack: SeqNum(0),
            flags: TcpFlags(TcpFlags::SYN),
            window: 1024,
            payload_len: 0,
            options: TcpOptions::default(),
            shape: Default::default(),
        };
        let ip = Ip { src: "10.0.0.1".parse().unwrap(), dst: "10.0.0.2".parse().unwrap(), wire_len: 40 };
        for port in 1..=50 {
            table.tcp(Timestamp::from_nanos(u64::from(port)), &ip, &syn(port), &Context::default(), None);
        }
        assert_eq!((table.openings.len(), table.live.len()), (50, 0));
        let conns: Vec<_> = table.finish(None).collect();
        assert_eq!(conns.len(), 50);
        assert!(conns.iter().all(|c| c.history.as_str() == "S" && c.orig_stats.pkts == 1));
    }

    fn datagram(table: &mut ConnTable, src_port: u16, hint: Option<Hint>) -> u64 {
        let ip = Ip { src: "10.0.0.1".parse().unwrap(), dst: "10.0.0.2".parse().unwrap(), wire_len: 28 };
        let d = UdpDatagram {
            src_port,
            dst_port: 9999,
            payload_len: 0,
            shape: Default::default(),
            roles: Default::default(),
        };
        table.udp(Timestamp::from_nanos(1), &ip, &d, &Context::default(), hint)
    }

    fn hint_for(table: &ConnTable, src_port: u16) -> Hint {
        let ip = |s: &str| s.parse().unwrap();
        let src = Addr { ip: ip("10.0.0.1"), port: src_port };
        table.prefetch(Proto::Udp, src, Addr { ip: ip("10.0.0.2"), port: 9999 })
    }

    #[test]
    fn a_hint_finds_its_connection_even_when_its_guess_is_stale() {
        let mut table = ConnTable::new(Timeouts::default(), 100);
        let (a, b) = (datagram(&mut table, 1000, None), datagram(&mut table, 2000, None));
        let right = hint_for(&table, 2000);
        assert_eq!(right.at, Some(1));
        assert_eq!(datagram(&mut table, 2000, Some(right)), b);
        // Entries move as others end: a guess naming another entry, or none, is only a guess.
        for at in [Some(0), Some(7), None] {
            assert_eq!(datagram(&mut table, 2000, Some(Hint { at, ..right })), b);
        }
        // A pair not in the table gets a new connection whatever the guess says.
        let new = Hint { at: Some(0), ..hint_for(&table, 3000) };
        let c = datagram(&mut table, 3000, Some(new));
        assert!(c != a && c != b);
        let pkts: Vec<_> = table.finish(None).map(|conn| (conn.id, conn.orig_stats.pkts)).collect();
        assert_eq!(pkts, [(a, 1), (b, 5), (c, 1)]);
    }
}
