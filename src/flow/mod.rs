//! Sockets, socket pairs and the connection table.

pub mod app;
pub mod history;
pub mod inventory;
pub mod key;
mod opening;
pub mod ports;
pub mod table;

use std::net::IpAddr;

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::decode::tunnel::TunnelKind;
use crate::tcp::verdict::ConnState;
use crate::tcp::TcpConn;
use crate::types::{Addr, Duration, Proto, Timestamp};
use history::History;
use key::PairKey;

/// Per-direction counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirStats {
    /// Packets sent in this direction.
    pub pkts: u64,
    /// Payload bytes as carried by the packets (retransmissions included).
    pub payload_bytes: u64,
    /// IP-level bytes (from the IP length fields).
    pub ip_bytes: u64,
}

/// Why a connection's record was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Still in the table when the input ended.
    CaptureEnd,
    /// No packet for longer than the inactivity timeout.
    Inactivity,
    /// The socket pair started a new connection.
    Reused,
    /// Ended early to keep the table within `--max-connections`.
    Evicted,
}

impl EndReason {
    /// Its name as printed and serialized, e.g. `capture_end`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CaptureEnd => "capture_end",
            EndReason::Inactivity => "inactivity",
            EndReason::Reused => "reused",
            EndReason::Evicted => "evicted",
        }
    }
}

/// One connection: the packets of one socket pair between its start and its end. In this
/// order (`repr(C)`): what a sweep for ended connections reads (protocol, times, then the TCP
/// timers at the start of `tcp`) fills the first cache line, so a sweep over hundreds of
/// thousands of connections loads one line of each TCP connection instead of five
/// (docs/performance.md, "Table layout").
#[derive(Debug)]
#[repr(C)]
pub struct Conn {
    /// TCP or UDP.
    pub proto: Proto,
    /// The originator is the lower side of the pair's key (tells a packet's direction cheaply).
    pub orig_is_lo: bool,
    /// Why the connection ended; `CaptureEnd` until it does.
    pub end: EndReason,
    /// What the payload showed: services, and the state of the role rules (in the padding
    /// before `first`).
    pub app: app::AppState,
    /// Time of its first packet.
    pub first: Timestamp,
    /// Time of its latest packet; as in Zeek, TCP segments after both sides closed do not move it.
    pub last: Timestamp,
    /// TCP state (see `tcp()`): inline rather than boxed, as the first touch of a boxed state
    /// is a second cache miss on every packet, and not an `Option`, so that its cache lines can be
    /// prefetched without waiting for the line that says whether it is there. UDP flows carry it
    /// unused; they are the minority of live connections.
    tcp: TcpConn,
    /// What the originator sent.
    pub orig_stats: DirStats,
    /// What the responder sent.
    pub resp_stats: DirStats,
    /// Zeek's history string.
    pub history: History,
    /// The socket pair: the table's key, and the only copy of the sockets (see `orig`, `resp`).
    /// Private, as the table hashes connections by it.
    key: PairKey,
    /// 1, 2, 3 ... in order of first packet (see `Options::numbered`).
    pub id: u64,
    /// Set for connections seen inside a tunnel.
    pub tunnel: Option<Box<TunnelInfo>>,
}

/// The tunnel a connection was seen in.
#[derive(Clone, Debug)]
pub struct TunnelInfo {
    /// The layers outside it on its first packet, outermost first: kind, outer source, outer destination.
    pub path: Vec<(TunnelKind, IpAddr, IpAddr)>,
    /// Ids of the outer UDP connections that carried it (Zeek's tunnel_parents).
    pub parents: Vec<u64>,
}

impl Conn {
    /// The TCP state, for TCP connections.
    pub fn tcp(&self) -> Option<&TcpConn> {
        (self.proto == Proto::Tcp).then_some(&self.tcp)
    }

    /// The originator's socket address.
    pub fn orig(&self) -> Addr {
        if self.orig_is_lo {
            self.key.lo()
        } else {
            self.key.hi()
        }
    }

    /// The responder's socket address.
    pub fn resp(&self) -> Addr {
        if self.orig_is_lo {
            self.key.hi()
        } else {
            self.key.lo()
        }
    }

    /// Starts loading the cache lines a packet of this connection touches (see `prefetch`).
    pub fn prefetch(&self) {
        prefetch(self);
        prefetch(&self.key);
        prefetch(&self.orig_stats);
        prefetch(&self.resp_stats);
        prefetch(&self.history);
        prefetch(&self.last);
        self.tcp.prefetch();
    }

    /// Starts loading what a sweep reads (see the field order above): the first line, and the
    /// next when the entry straddles two.
    pub fn prefetch_head(&self) {
        prefetch(self);
        prefetch(&self.tcp);
    }

    /// From the first packet to the last (Zeek's duration).
    pub fn duration(&self) -> Duration {
        self.last.since(self.first)
    }

    /// Zeek's conn_state code.
    pub fn conn_state(&self) -> ConnState {
        match self.tcp() {
            Some(tcp) => tcp.conn_state(&self.history),
            None => udp_conn_state(self.orig_stats.pkts > 0, self.resp_stats.pkts > 0),
        }
    }
}

/// Asks the CPU to start loading the cache line holding `at`, without waiting for it. A table
/// entry is ten cache lines; naming one field per line or so is enough (a line missed here
/// is only loaded later, on demand; naming only every other line was slower). Through
/// safe_arch: std's prefetch hint is unstable, and calling the intrinsic needs `unsafe`, which
/// this crate forbids. Elsewhere a no-op.
#[cfg(target_arch = "x86_64")]
pub fn prefetch<T>(at: &T) {
    safe_arch::prefetch_t0(at);
}

/// A no-op off x86_64: see the x86_64 version.
#[cfg(not(target_arch = "x86_64"))]
pub fn prefetch<T>(_: &T) {}

/// Zeek's UDP rule: each side is "active" once it sent anything.
pub fn udp_conn_state(orig_active: bool, resp_active: bool) -> ConnState {
    match (orig_active, resp_active) {
        (true, true) => ConnState::SF,
        (true, false) => ConnState::S0,
        (false, true) => ConnState::SHR,
        (false, false) => ConnState::OTH,
    }
}

/// Files every entry of `entries` again, by its place, in `index`, with room for `capacity`:
/// an index of places into a vector of entries, which holds no hashes. Growing such an index in
/// place would make each hash again in the index's order, from entries all over memory; this
/// reads them in order.
fn refile<T>(index: &mut HashTable<u32>, entries: &[T], capacity: usize, hash: impl Fn(&T) -> u64) {
    if index.capacity() < capacity {
        // The old index goes first: nothing in it is needed.
        *index = HashTable::new();
        *index = HashTable::with_capacity(capacity);
    } else {
        index.clear();
    }
    for (at, entry) in entries.iter().enumerate() {
        index.insert_unique(hash(entry), at as u32, |&at| hash(&entries[at as usize]));
    }
}

/// Files `entry`, known to be absent, under `hash` in `index`, at its place at the end of
/// `entries`; a full index first grows by filing every entry again (see `refile`). `hash` makes an
/// entry's hash again.
fn file<T>(
    index: &mut HashTable<u32>,
    entries: &mut Vec<T>,
    key_hash: u64,
    entry: T,
    hash: impl Fn(&T) -> u64,
) {
    if index.len() == index.capacity() {
        refile(index, entries, 2 * index.capacity().max(8), &hash);
    }
    index.insert_unique(key_hash, entries.len() as u32, |&at| hash(&entries[at as usize]));
    entries.push(entry);
}

/// Of two lists, each with its least `key` last, whether the first holds the least of both:
/// `None` when both are empty. For handing out two kinds of entries as one ordered list.
fn least_in_first<A, B>(
    a: &[A],
    b: &[B],
    key_a: impl Fn(&A) -> u64,
    key_b: impl Fn(&B) -> u64,
) -> Option<bool> {
    match (a.last(), b.last()) {
        (Some(x), Some(y)) => Some(key_a(x) < key_b(y)),
        (x, y) => x.map(|_| true).or(y.map(|_| false)),
    }
}

/// The last of `v`, which is shrunk each time a 32nd of it has gone: a large vector lives in
/// pages of its own, which shrinking gives back without copying. For millions of entries handed
/// out one by one while what they become is built.
fn pop_shrinking<T>(v: &mut Vec<T>) -> Option<T> {
    let last = v.pop()?;
    if v.len() + v.len() / 32 < v.capacity() {
        v.shrink_to_fit();
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-connection memory is a benchmark target (issue: about 300 bytes held per connection);
    /// this keeps an eye on the live state's size so growth is a conscious choice. A live
    /// connection is one table entry: its hash and its `Conn`, key and TCP state inline.
    #[test]
    fn live_state_stays_compact() {
        let key = std::mem::size_of::<key::PairKey>();
        let conn = std::mem::size_of::<Conn>();
        let tcp = std::mem::size_of::<TcpConn>();
        assert!(key <= 40, "PairKey is {key} bytes");
        assert!(conn <= 496, "Conn is {conn} bytes");
        assert!(tcp <= 320, "TcpConn is {tcp} bytes");
    }
}
