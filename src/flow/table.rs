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

/// A live connection as the table's key: filed under the hash of its socket pair, which it
/// holds, so the pair (40 bytes) is stored once per connection rather than a second time beside
/// it. The table hashes pairs and compares them itself, through
/// indexmap's raw entries (see `slot`), so `Live` needs no `Hash` or `Eq`. Mutated in place
/// through `MutableKeys`, which is sound here as nothing changes a connection's pair.
struct Live(Conn);

impl ConnTable {
    /// `max_live` bounds the live connections (a SYN flood must not exhaust memory).
    pub fn new(timeouts: Timeouts, max_live: usize) -> Self {
        ConnTable {
            live: IndexMap::default(),
            ended: Vec::new(),
            tunnels: IndexSet::default(),
            next_id: 1,
            timeouts,
            last_sweep: Timestamp::default(),
            since_sweep: 0,
            max_live: max_live.max(1),
            evicted: 0,
        }
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
        let tcp_timeout = self.timeouts.tcp;
        let at = self.slot(
            key,
            hint,
            |conn| {
                let tcp = &mut conn.tcp;
                if tcp.expired(ts, conn.first, conn.last, tcp_timeout) {
                    Some(EndReason::Inactivity)
                } else if tcp.starts_new_connection(seg) {
                    Some(EndReason::Reused)
                } else {
                    None
                }
            },
            |id| {
                let o = tcp::orient(seg);
                let mut conn = new_conn(id, Proto::Tcp, key, ts, src_is_lo == o.sender_is_orig);
                if o.flipped {
                    conn.history.flip();
                }
                conn
            },
        );
        let conn = self.conn_mut(at);
        ctx.note(conn);
        let is_orig = src_is_lo == conn.orig_is_lo;
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
        count(conn, is_orig, ip.wire_len, seg.payload_len);
        if outcome.touch {
            conn.last = conn.last.max(ts);
        }
        conn.id
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
        let at = self.slot(
            key,
            hint,
            |conn| (ts.since(conn.last) > timeout).then_some(EndReason::Inactivity),
            |id| {
                let flip = super::ports::udp_should_flip(src.port, dst.port) && !is_broadcast(dst.ip);
                let mut conn = new_conn(id, Proto::Udp, key, ts, src_is_lo != flip);
                if flip {
                    conn.history.flip();
                }
                conn
            },
        );
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
    pub fn prefetch(&self, proto: Proto, src: Addr, dst: Addr) -> Hint {
        let hash = self.live.hasher().hash_one(PairKey::new(proto, src, dst, 0));
        let at = self.live.raw_entry_v1().index_from_hash(hash, |_| true);
        if let Some(at) = at {
            let (live, _) = self.live.get_index(at).expect("index from the table");
            live.0.prefetch();
        }
        Hint { hash, at }
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
    pub fn finish(mut self, end: Option<Timestamp>) -> impl Iterator<Item = Conn> {
        if let Some(end) = end {
            self.sweep(end);
        }
        self.live.sort_by_cached_key(|live, _| live.0.id);
        self.ended.sort_unstable_by_key(|c| c.id);
        let mut ended = self.ended.into_iter().peekable();
        let mut live = self.live.into_keys().map(|live| live.0).peekable();
        std::iter::from_fn(move || match (ended.peek(), live.peek()) {
            (Some(e), Some(l)) if e.id < l.id => ended.next(),
            (Some(_), None) => ended.next(),
            _ => live.next(),
        })
    }

    fn conn_mut(&mut self, at: usize) -> &mut Conn {
        &mut self.live.get_index_mut2(at).expect("index in the table").0 .0
    }

    /// Removes the live connection at `at` (the last one takes its place) and ends it.
    fn end_at(&mut self, at: usize, why: EndReason) {
        let (Live(mut conn), ()) = self.live.swap_remove_index(at).expect("index in the table");
        conn.end = why;
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

    /// Index of the live connection for `key`: with a `hint`, no hashing and, when its guess
    /// still holds this key, no lookup either. An existing connection for which `ends` gives a
    /// reason is ended first; a new one is made by `create` from its id.
    fn slot(
        &mut self,
        key: PairKey,
        hint: Option<Hint>,
        ends: impl FnOnce(&mut Conn) -> Option<EndReason>,
        create: impl FnOnce(u64) -> Conn,
    ) -> usize {
        let hash = hint.map_or_else(|| self.live.hasher().hash_one(key), |h| h.hash);
        let holds = |live: &Live| live.0.key == key;
        // The guess was made some packets ago: entries may have moved since (see `end_at`).
        let guess =
            hint.and_then(|h| h.at).filter(|&at| self.live.get_index(at).is_some_and(|(l, _)| holds(l)));
        if let Some(at) = guess.or_else(|| self.live.raw_entry_v1().index_from_hash(hash, holds)) {
            let Some(why) = ends(self.conn_mut(at)) else { return at };
            self.end_at(at, why);
        }
        self.make_room();
        let id = self.next_id;
        self.next_id += 1;
        // Known to be absent: inserted without hashing or comparing again.
        let RawEntryMut::Vacant(place) = self.live.raw_entry_mut_v1().from_hash(hash, |_| false) else {
            unreachable!("nothing matches")
        };
        let at = place.index();
        place.insert_hashed_nocheck(hash, Live(create(id)), ());
        at
    }

    /// Before a new connection would overfill the table, ends the least recently active
    /// hundredth of it (at least one): amortized, no per-packet scan.
    fn make_room(&mut self) {
        if self.live.len() < self.max_live {
            return;
        }
        let batch = (self.max_live / 100).max(1);
        let mut last: Vec<Timestamp> = self.live.keys().map(|live| live.0.last).collect();
        let (_, cutoff, _) = last.select_nth_unstable(batch - 1);
        let cutoff = *cutoff;
        let mut left = batch;
        self.end_where(EndReason::Evicted, |c| {
            let take = left > 0 && c.last <= cutoff;
            left -= usize::from(take);
            take
        });
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
                if why == EndReason::Evicted {
                    self.evicted += 1;
                }
            }
        }
    }

    /// Ends the connections that are over by `now` (idle, or past Zeek's close timers), so the
    /// table holds live connections only. Runs at most once per second of capture time and only
    /// after as many packets as half the table holds, so its cost per packet stays constant: a
    /// scan looks at two entries per packet. Ended connections may linger a little longer, at a
    /// small cost in memory.
    fn maybe_sweep(&mut self, now: Timestamp) {
        self.since_sweep += 1;
        if now.since(self.last_sweep) < SWEEP_EVERY || self.since_sweep < self.live.len() / 2 {
            return;
        }
        self.last_sweep = now;
        self.since_sweep = 0;
        self.sweep(now);
    }

    /// Ends every connection that is over by `now`. Whether one is over depends only on `now`
    /// and its own packets, not on when this runs (timers only ever come due), so where sweeps
    /// happen cannot change a connection's end.
    fn sweep(&mut self, now: Timestamp) {
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
