//! The socket inventory: every `<protocol, IP, port>` seen, its role and how busy it was.

use indexmap::IndexMap;
use serde::Serialize;

use super::Conn;
use crate::types::{Addr, Proto, Socket, Timestamp};

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

/// One socket's counters, the first connection it appeared in (id, as responder), and the start
/// and end of each of its connections.
type Entry = (SocketStats, (u64, bool), Spans);

/// The start and end of a socket's connections, for the most it had open at once. Most sockets
/// of a scan or a busy client take part in one connection: its span is held in place, and a
/// list is made only for a second.
#[derive(Debug)]
enum Spans {
    One(Timestamp, Timestamp),
    /// Opens (+1) and closes (-1), in the order the connections ended.
    Many(Vec<(Timestamp, i8)>),
}

impl Spans {
    fn add(&mut self, first: Timestamp, last: Timestamp) {
        match self {
            Spans::One(f, l) => *self = Spans::Many(vec![(*f, 1), (*l, -1), (first, 1), (last, -1)]),
            Spans::Many(v) => v.extend([(first, 1), (last, -1)]),
        }
    }

    /// The most connections open at the same time.
    fn max_open(self) -> u64 {
        let mut spans = match self {
            Spans::One(..) => return 1,
            Spans::Many(v) => v,
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
            let socket = Socket { proto: c.proto, addr };
            let (s, first_id, _) = match self.sockets.entry(socket) {
                indexmap::map::Entry::Vacant(v) => {
                    v.insert((empty(c.proto, addr), (c.id, !is_orig), Spans::One(c.first, c.last)))
                }
                indexmap::map::Entry::Occupied(o) => {
                    let entry = o.into_mut();
                    entry.2.add(c.first, c.last);
                    entry
                }
            };
            // The originator of a connection is listed before its responder.
            *first_id = (*first_id).min((c.id, !is_orig));
            s.conns += 1;
            if is_orig {
                s.as_client += 1;
            } else {
                s.as_server += 1;
            }
            s.pkts_sent += sent.pkts;
            s.pkts_received += recv.pkts;
            s.bytes_sent += sent.payload_bytes;
            s.bytes_received += recv.payload_bytes;
        }
    }

    /// The sockets in order of first appearance (the id of their first connection).
    pub fn finish(self) -> Vec<SocketStats> {
        let mut sockets: Vec<((u64, bool), SocketStats)> = self
            .sockets
            .into_values()
            .map(|(mut s, first_id, spans)| {
                s.role = match (s.as_server > 0, s.as_client > 0) {
                    (true, true) => Role::Both,
                    (true, false) => Role::Server,
                    _ => Role::Client,
                };
                s.max_concurrent = spans.max_open();
                (first_id, s)
            })
            .collect();
        sockets.sort_by_key(|(first, _)| *first);
        sockets.into_iter().map(|(_, s)| s).collect()
    }
}

fn empty(proto: Proto, addr: Addr) -> SocketStats {
    SocketStats {
        proto,
        ip: addr.ip,
        port: addr.port,
        role: Role::Client,
        conns: 0,
        as_server: 0,
        as_client: 0,
        max_concurrent: 0,
        pkts_sent: 0,
        pkts_received: 0,
        bytes_sent: 0,
        bytes_received: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_nanos(s * 1_000_000_000)
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
