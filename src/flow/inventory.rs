//! The socket inventory: every `<protocol, IP, port>` seen, its role and how busy it was.

use indexmap::IndexMap;
use serde::Serialize;

use super::Conn;
use crate::types::{Proto, Socket, Timestamp};

/// What a socket did in its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Only responded.
    Server,
    /// Only originated.
    Client,
    /// Both.
    Both,
}

impl Role {
    /// Its name as printed: `server`, `client` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Both => "both",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One socket's line in the inventory: what it did, over all its connections.
#[derive(Clone, Debug, Serialize)]
pub struct SocketStats {
    /// TCP or UDP.
    pub proto: Proto,
    /// The socket's IP address.
    pub ip: std::net::IpAddr,
    /// The socket's port.
    pub port: u16,
    /// Whether it originated connections, responded to them, or both.
    pub role: Role,
    /// Connections it took part in.
    pub conns: u64,
    /// Connections in which it was the responder.
    pub as_server: u64,
    /// Connections in which it was the originator.
    pub as_client: u64,
    /// The most connections this socket had open at the same time.
    pub max_concurrent: u64,
    /// Packets it sent, over all its connections.
    pub pkts_sent: u64,
    /// Packets sent to it, over all its connections.
    pub pkts_received: u64,
    /// Payload bytes it sent (retransmissions included).
    pub bytes_sent: u64,
    /// Payload bytes sent to it (retransmissions included).
    pub bytes_received: u64,
}

/// One socket's running counts while the inventory is built: its line (`SocketStats`) is made
/// only at the end, so that the socket, already the entry's key, is not held twice, and role and
/// client count follow from the rest. A scan leaves millions of sockets of one connection each.
#[derive(Debug)]
struct Entry {
    conns: u64,
    as_server: u64,
    pkts_sent: u64,
    pkts_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    /// The first connection it appeared in, as `id * 2`, plus 1 as responder: the originator of
    /// a connection is listed before its responder.
    first: u64,
    spans: Spans,
}

/// The start and end of a socket's connections, for the most it had open at once. Most sockets
/// of a scan or a busy client take part in one connection: its span is held in place, and a
/// list is made only for a second (a thin vector, so that the enum is two words).
#[derive(Debug)]
enum Spans {
    One(Timestamp, Timestamp),
    /// Opens (+1) and closes (-1), in the order the connections ended.
    Many(thin_vec::ThinVec<(Timestamp, i8)>),
}

impl Spans {
    fn add(&mut self, first: Timestamp, last: Timestamp) {
        match self {
            Spans::One(f, l) => {
                *self = Spans::Many(thin_vec::thin_vec![(*f, 1), (*l, -1), (first, 1), (last, -1)])
            }
            Spans::Many(v) => v.extend([(first, 1), (last, -1)]),
        }
    }

    /// The most connections open at the same time.
    fn max_open(&self) -> u64 {
        let mut spans = match self {
            Spans::One(..) => return 1,
            Spans::Many(v) => v.clone(),
        };
        // Opens sort before closes at the same instant: touching connections overlap.
        spans.sort_unstable_by_key(|&(t, delta)| (t, -delta));
        let (mut open, mut most) = (0i64, 0i64);
        for (_, delta) in spans {
            open += i64::from(delta);
            most = most.max(open);
        }
        most as u64
    }
}

/// Builds the inventory from connections as they end.
#[derive(Default)]
pub struct Inventory {
    /// Per socket: its counters, the first connection it appeared in, and the start and
    /// end of each of its connections (for the most open at once).
    sockets: IndexMap<Socket, Entry, foldhash::fast::RandomState>,
}

impl Inventory {
    /// Counts an ended connection for both of its sockets.
    pub fn add(&mut self, c: &Conn) {
        for (addr, is_orig) in [(c.orig(), true), (c.resp(), false)] {
            let (sent, recv) =
                if is_orig { (&c.orig_stats, &c.resp_stats) } else { (&c.resp_stats, &c.orig_stats) };
            let first = c.id * 2 + u64::from(!is_orig);
            let e = match self.sockets.entry(Socket { proto: c.proto, addr }) {
                indexmap::map::Entry::Vacant(v) => v.insert(Entry {
                    conns: 0,
                    as_server: 0,
                    pkts_sent: 0,
                    pkts_received: 0,
                    bytes_sent: 0,
                    bytes_received: 0,
                    first,
                    spans: Spans::One(c.first, c.last),
                }),
                indexmap::map::Entry::Occupied(o) => {
                    let e = o.into_mut();
                    e.spans.add(c.first, c.last);
                    e.first = e.first.min(first);
                    e
                }
            };
            e.conns += 1;
            e.as_server += u64::from(!is_orig);
            e.pkts_sent += sent.pkts;
            e.pkts_received += recv.pkts;
            e.bytes_sent += sent.payload_bytes;
            e.bytes_received += recv.payload_bytes;
        }
    }

    /// The sockets in order of first appearance (the id of their first connection).
    pub fn finish(self) -> Vec<SocketStats> {
        let mut sockets: Vec<(u64, SocketStats)> =
            self.sockets.into_iter().map(|(socket, e)| (e.first, line(&socket, &e))).collect();
        sockets.sort_by_key(|(first, _)| *first);
        sockets.into_iter().map(|(_, s)| s).collect()
    }

    /// The busiest sockets, as the summary lists them, without making every socket's line: a
    /// scan's inventory holds millions, and their lines would take as much again.
    pub fn top(&self) -> TopSockets {
        let lines = |ranked: Vec<usize>| {
            ranked.into_iter().filter_map(|at| self.sockets.get_index(at)).map(|(s, e)| line(s, e)).collect()
        };
        TopSockets {
            by_connections: lines(self.ranked(|e| e.conns)),
            by_bytes: lines(self.ranked(|e| e.bytes_sent + e.bytes_received)),
        }
    }

    /// Where the `TOP` sockets with the most of `key` are (none with zero), the most first; ties
    /// in order of first appearance.
    fn ranked(&self, key: impl Fn(&Entry) -> u64) -> Vec<usize> {
        // (key, first appearance, place), best first.
        let mut best: Vec<(u64, u64, usize)> = Vec::with_capacity(TOP + 1);
        for (at, e) in self.sockets.values().enumerate() {
            let k = key(e);
            let place = best.partition_point(|&(bk, bf, _)| bk > k || bk == k && bf < e.first);
            if k > 0 && place < TOP {
                best.insert(place, (k, e.first, at));
                best.truncate(TOP);
            }
        }
        best.into_iter().map(|(_, _, at)| at).collect()
    }
}

/// How many sockets the summary lists by connections, and by bytes.
pub const TOP: usize = 5;

/// The busiest sockets of an inventory: the `TOP` with the most connections and the `TOP` with
/// the most payload bytes (none with zero), the most first, ties in order of first appearance.
#[derive(Clone, Debug, Default)]
pub struct TopSockets {
    /// By connections.
    pub by_connections: Vec<SocketStats>,
    /// By payload bytes sent and received.
    pub by_bytes: Vec<SocketStats>,
}

/// A socket's line, from its running counts.
fn line(socket: &Socket, e: &Entry) -> SocketStats {
    let as_client = e.conns - e.as_server;
    let role = match (e.as_server > 0, as_client > 0) {
        (true, true) => Role::Both,
        (true, false) => Role::Server,
        _ => Role::Client,
    };
    SocketStats {
        proto: socket.proto,
        ip: socket.addr.ip,
        port: socket.addr.port,
        role,
        conns: e.conns,
        as_server: e.as_server,
        as_client,
        max_concurrent: e.spans.max_open(),
        pkts_sent: e.pkts_sent,
        pkts_received: e.pkts_received,
        bytes_sent: e.bytes_sent,
        bytes_received: e.bytes_received,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_nanos(s * 1_000_000_000)
    }

    /// Most sockets of a scan have one connection: their entries are what the inventory of one
    /// costs.
    #[test]
    fn an_entry_stays_compact() {
        assert_eq!(std::mem::size_of::<Spans>(), 16);
        let entry = std::mem::size_of::<Entry>();
        assert!(entry <= 72, "Entry is {entry} bytes");
    }

    #[test]
    fn most_open_at_once() {
        assert_eq!(Spans::One(at(1), at(2)).max_open(), 1);
        let mut spans = Spans::One(at(1), at(5));
        spans.add(at(2), at(3));
        spans.add(at(6), at(7));
        assert_eq!(spans.max_open(), 2);
        let mut touching = Spans::One(at(1), at(2));
        touching.add(at(2), at(3));
        assert_eq!(touching.max_open(), 2, "one opening as another closes: both open");
        let mut apart = Spans::One(at(1), at(2));
        apart.add(at(3), at(4));
        assert_eq!(apart.max_open(), 1);
    }
}
