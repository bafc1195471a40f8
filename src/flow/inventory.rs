//! The socket inventory: every `<protocol, IP, port>` seen, its role and how busy it was.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};

use hashbrown::HashTable;
use integer_encoding::VarInt;
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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

/// What one connection adds to one of its sockets.
#[derive(Clone, Debug)]
struct Part {
    /// The connection's id * 2, plus 1 for its responder: the originator of a connection is
    /// listed before its responder.
    first: u64,
    start: Timestamp,
    end: Timestamp,
    pkts_sent: u64,
    pkts_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Part {
    fn as_server(&self) -> bool {
        self.first % 2 == 1
    }
}

/// One socket's running counts while the inventory is built: its line (`SocketStats`) is made
/// only at the end, so that the socket, already the entry's key, is not held twice, and role and
/// client count follow from the rest. A scan leaves millions of sockets of one connection each:
/// such a socket is held in 40 bytes, and one in several connections (or with counts beyond 32
/// bits) in a box of its own.
#[derive(Debug)]
enum Tally {
    One(One),
    Many(Box<Many>),
}

/// A socket in one connection, its counts narrow enough to be held in place.
#[derive(Debug)]
struct One {
    /// As `Part::first`.
    first: u64,
    start: Timestamp,
    end: Timestamp,
    pkts_sent: u32,
    pkts_received: u32,
    bytes_sent: u32,
    bytes_received: u32,
}

/// A socket in several connections.
#[derive(Debug)]
struct Many {
    totals: Totals,
    /// The least `Part::first` of its connections.
    first: u64,
    /// The start and end of each connection, for the most it had open at once.
    spans: Spans,
}

/// The start and end of each of a socket's connections, packed: each start as its difference
/// from the one before, each end as its difference from its start, both as zigzag varints. A
/// busy socket's connections start close together and most are short, so a span takes a few
/// bytes instead of 16; a scanner's source ports hold millions of them.
#[derive(Debug, Default)]
struct Spans {
    packed: Vec<u8>,
    last_start: u64,
}

impl Spans {
    fn push(&mut self, start: Timestamp, end: Timestamp) {
        let mut buf = [0u8; 20];
        // Wrapping differences, read back with wrapping sums: exact for any pair of u64s.
        let mut n = (start.nanos().wrapping_sub(self.last_start) as i64).encode_var(&mut buf);
        n += (end.nanos().wrapping_sub(start.nanos()) as i64).encode_var(&mut buf[n..]);
        self.packed.extend_from_slice(&buf[..n]);
        self.last_start = start.nanos();
    }

    fn iter(&self) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let (mut rest, mut start) = (&self.packed[..], 0u64);
        std::iter::from_fn(move || {
            let mut next = || {
                let (n, len) = i64::decode_var(rest)?;
                rest = &rest[len..];
                Some(n as u64)
            };
            let (from_last, length) = (next()?, next()?);
            start = start.wrapping_add(from_last);
            Some((Timestamp::from_nanos(start), Timestamp::from_nanos(start.wrapping_add(length))))
        })
    }
}

/// A socket's counts over its connections.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    conns: u64,
    as_server: u64,
    pkts_sent: u64,
    pkts_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Totals {
    fn add(&mut self, part: &Part) {
        self.conns += 1;
        self.as_server += u64::from(part.as_server());
        self.pkts_sent += part.pkts_sent;
        self.pkts_received += part.pkts_received;
        self.bytes_sent += part.bytes_sent;
        self.bytes_received += part.bytes_received;
    }
}

impl Tally {
    fn new(part: &Part) -> Tally {
        One::of(part).map_or_else(|| Tally::Many(Box::new(Many::of(part))), Tally::One)
    }

    fn add(&mut self, part: &Part) {
        match self {
            Tally::One(one) => {
                let mut many = Many::of(&one.part());
                many.add(part);
                *self = Tally::Many(Box::new(many));
            }
            Tally::Many(many) => many.add(part),
        }
    }

    fn first(&self) -> u64 {
        match self {
            Tally::One(one) => one.first,
            Tally::Many(many) => many.first,
        }
    }

    fn totals(&self) -> Totals {
        match self {
            Tally::One(one) => {
                let mut totals = Totals::default();
                totals.add(&one.part());
                totals
            }
            Tally::Many(many) => many.totals,
        }
    }

    /// The most connections open at the same time.
    fn max_open(&self) -> u64 {
        let Tally::Many(many) = self else { return 1 };
        let mut events: Vec<(Timestamp, i64)> =
            many.spans.iter().flat_map(|(start, end)| [(start, 1), (end, -1)]).collect();
        // Opens sort before closes at the same instant: touching connections overlap.
        events.sort_unstable_by_key(|&(t, delta)| (t, -delta));
        let (mut open, mut most) = (0i64, 0i64);
        for (_, delta) in events {
            open += delta;
            most = most.max(open);
        }
        most as u64
    }
}

impl One {
    /// `part` held in place, if its counts fit 32 bits.
    fn of(part: &Part) -> Option<One> {
        Some(One {
            first: part.first,
            start: part.start,
            end: part.end,
            pkts_sent: part.pkts_sent.try_into().ok()?,
            pkts_received: part.pkts_received.try_into().ok()?,
            bytes_sent: part.bytes_sent.try_into().ok()?,
            bytes_received: part.bytes_received.try_into().ok()?,
        })
    }

    /// What its connection added.
    fn part(&self) -> Part {
        Part {
            first: self.first,
            start: self.start,
            end: self.end,
            pkts_sent: self.pkts_sent.into(),
            pkts_received: self.pkts_received.into(),
            bytes_sent: self.bytes_sent.into(),
            bytes_received: self.bytes_received.into(),
        }
    }
}

impl Many {
    fn of(part: &Part) -> Many {
        let mut many = Many { totals: Totals::default(), first: part.first, spans: Spans::default() };
        many.add(part);
        many
    }

    fn add(&mut self, part: &Part) {
        self.totals.add(part);
        self.first = self.first.min(part.first);
        self.spans.push(part.start, part.end);
    }
}

/// Builds the inventory from connections as they end.
pub struct Inventory {
    /// The IPv4 sockets, each held in 8 bytes (see `V4Socket`), and the others in full.
    v4: Shelf<V4Socket>,
    other: Shelf<Socket>,
    /// Sockets per level (see `Shelf`).
    room: usize,
    hasher: foldhash::fast::RandomState,
    /// Sockets waiting to be counted, with their hashes: they are counted a group at a time,
    /// each group's places looked up first, so that their cache misses overlap rather than
    /// come one after another (a scan's inventory is far larger than the cache).
    pending: Vec<(Socket, u64, Part)>,
}

/// Sockets counted as one group.
const GROUP: usize = 16;

/// An IPv4 socket in 8 bytes rather than a `Socket`'s 24: a scan leaves millions of sockets of
/// one connection each, whose entries this makes a quarter smaller.
#[derive(Clone, Copy, PartialEq, Eq)]
struct V4Socket {
    ip: u32,
    port: u16,
    proto: Proto,
}

impl V4Socket {
    fn of(socket: &Socket) -> Option<V4Socket> {
        match socket.addr.ip {
            IpAddr::V4(ip) => {
                Some(V4Socket { ip: ip.to_bits(), port: socket.addr.port, proto: socket.proto })
            }
            IpAddr::V6(_) => None,
        }
    }
}

impl From<V4Socket> for Socket {
    fn from(s: V4Socket) -> Socket {
        Socket { proto: s.proto, addr: Addr { ip: IpAddr::V4(Ipv4Addr::from_bits(s.ip)), port: s.port } }
    }
}

/// Sockets of one kind in order of first entry, in levels of at most `room` each, so that an
/// index holds 32-bit places: a scan leaves millions of sockets. Nearly always one level.
struct Shelf<S> {
    levels: Vec<Level<S>>,
}

/// Sockets and their running counts, found through an index of their places filed under the
/// sockets' hashes (those of their `Socket`s). The hashes are not stored: they are made again
/// from the sockets, in order, when the index grows (see `flow::refile`).
struct Level<S> {
    sockets: Vec<(S, Tally)>,
    index: HashTable<u32>,
}

impl<S: Copy + Eq> Shelf<S>
where
    Socket: From<S>,
{
    fn new() -> Self {
        Shelf { levels: Vec::new() }
    }

    /// The counts of the first socket filed under `hash`'s tag, which is nearly always the
    /// socket of that hash if it is here, its entry starting to load.
    fn guess(&self, hash: u64) -> Option<&Tally> {
        self.levels.iter().find_map(|Level { sockets, index }| {
            let entry = &sockets[*index.find(hash, |_| true)? as usize];
            super::prefetch(entry);
            Some(&entry.1)
        })
    }

    /// Counts `part` for `socket`, of hash `hash`.
    fn count(
        &mut self,
        socket: S,
        hash: u64,
        part: &Part,
        room: usize,
        hasher: &foldhash::fast::RandomState,
    ) {
        for Level { sockets, index } in &mut self.levels {
            if let Some(&at) = index.find(hash, |&at| sockets[at as usize].0 == socket) {
                return sockets[at as usize].1.add(part);
            }
        }
        if self.levels.last().is_none_or(|level| level.sockets.len() >= room) {
            self.levels.push(Level { sockets: Vec::new(), index: HashTable::new() });
        }
        let Some(Level { sockets, index }) = self.levels.last_mut() else { return };
        let rehash = |&(socket, _): &(S, Tally)| hasher.hash_one(Socket::from(socket));
        super::file(index, sockets, hash, (socket, Tally::new(part)), rehash);
    }

    fn iter(&self) -> impl Iterator<Item = (Socket, &Tally)> {
        self.levels
            .iter()
            .flat_map(|level| &level.sockets)
            .map(|(socket, tally)| (Socket::from(*socket), tally))
    }

    /// Every socket, the latest first (by `Tally::first`).
    fn into_latest_first(self) -> Vec<(S, Tally)> {
        let mut levels = self.levels.into_iter().map(|level| level.sockets);
        let mut sockets = levels.next().unwrap_or_default();
        for more in levels {
            sockets.extend(more);
        }
        sockets.sort_unstable_by_key(|(_, tally)| std::cmp::Reverse(tally.first()));
        sockets
    }
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory::with_room(u32::MAX as usize)
    }
}

impl Inventory {
    /// An inventory with `room` sockets per level.
    fn with_room(room: usize) -> Self {
        Inventory {
            v4: Shelf::new(),
            other: Shelf::new(),
            room,
            hasher: Default::default(),
            pending: Vec::new(),
        }
    }

    /// Counts an ended connection for both of its sockets.
    pub fn add(&mut self, c: &Conn) {
        for (addr, is_orig) in [(c.orig(), true), (c.resp(), false)] {
            let (sent, recv) =
                if is_orig { (&c.orig_stats, &c.resp_stats) } else { (&c.resp_stats, &c.orig_stats) };
            let part = Part {
                first: c.id * 2 + u64::from(!is_orig),
                start: c.first,
                end: c.last,
                pkts_sent: sent.pkts,
                pkts_received: recv.pkts,
                bytes_sent: sent.payload_bytes,
                bytes_received: recv.payload_bytes,
            };
            self.count(Socket { proto: c.proto, addr }, part);
        }
    }

    /// Counts what one connection adds to `socket`, when its group is full (see `pending`).
    fn count(&mut self, socket: Socket, part: Part) {
        self.pending.push((socket, self.hasher.hash_one(socket), part));
        if self.pending.len() >= GROUP {
            self.count_pending();
        }
    }

    fn count_pending(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        // Each socket's entry starts loading...
        let mut tallies = [None; GROUP];
        for (tally, (socket, hash, _)) in tallies.iter_mut().zip(&pending) {
            *tally = match V4Socket::of(socket) {
                Some(_) => self.v4.guess(*hash),
                None => self.other.guess(*hash),
            };
        }
        // ...then, once the entries are in, a busy socket's counts.
        for tally in tallies.into_iter().flatten() {
            if let Tally::Many(many) = tally {
                super::prefetch(&**many);
                super::prefetch(&many.spans);
            }
        }
        let (room, hasher) = (self.room, &self.hasher);
        for (socket, hash, part) in pending.drain(..) {
            match V4Socket::of(&socket) {
                Some(v4) => self.v4.count(v4, hash, &part, room, hasher),
                None => self.other.count(socket, hash, &part, room, hasher),
            }
        }
        self.pending = pending;
    }

    /// The sockets in order of first appearance (the id of their first connection).
    pub fn finish(mut self) -> Vec<SocketStats> {
        self.count_pending();
        // Latest first: lines are made from the end, and the inventory gives its memory back as
        // they are, rather than being held whole next to them.
        let (mut v4, mut other) = (self.v4.into_latest_first(), self.other.into_latest_first());
        let mut lines = Vec::with_capacity(v4.len() + other.len());
        while let Some(v4_next) = super::least_in_first(&v4, &other, |e| e.1.first(), |e| e.1.first()) {
            let (socket, tally) = if v4_next {
                super::pop_shrinking(&mut v4).map(|(socket, tally)| (socket.into(), tally))
            } else {
                super::pop_shrinking(&mut other)
            }
            .expect("the list chosen is not empty");
            lines.push(line(&socket, &tally));
        }
        lines
    }

    /// The busiest sockets, as the summary lists them, without making every socket's line: a
    /// scan's inventory holds millions, and their lines would take as much again.
    pub fn top(&mut self) -> TopSockets {
        self.count_pending();
        let lines =
            |ranked: Vec<(Socket, &Tally)>| ranked.into_iter().map(|(s, tally)| line(&s, tally)).collect();
        TopSockets {
            by_connections: lines(self.ranked(|t| t.conns)),
            by_bytes: lines(self.ranked(|t| t.bytes_sent + t.bytes_received)),
        }
    }

    /// The `TOP` sockets with the most of `key` (none with zero), the most first; ties in order
    /// of first appearance.
    fn ranked(&self, key: impl Fn(&Totals) -> u64) -> Vec<(Socket, &Tally)> {
        // (key, first appearance, socket), best first.
        let mut best: Vec<(u64, u64, (Socket, &Tally))> = Vec::with_capacity(TOP + 1);
        for entry in self.v4.iter().chain(self.other.iter()) {
            let (k, first) = (key(&entry.1.totals()), entry.1.first());
            let place = best.partition_point(|&(bk, bf, _)| bk > k || bk == k && bf < first);
            if k > 0 && place < TOP {
                best.insert(place, (k, first, entry));
                best.truncate(TOP);
            }
        }
        best.into_iter().map(|(_, _, entry)| entry).collect()
    }
}

/// How many sockets the summary lists by connections, and by bytes.
pub const TOP: usize = 5;

/// The busiest sockets of an inventory: the `TOP` with the most connections and the `TOP` with
/// the most payload bytes (none with zero), the most first, ties in order of first appearance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopSockets {
    /// By connections.
    pub by_connections: Vec<SocketStats>,
    /// By payload bytes sent and received.
    pub by_bytes: Vec<SocketStats>,
}

/// A socket's line, from its running counts.
fn line(socket: &Socket, tally: &Tally) -> SocketStats {
    let t = tally.totals();
    let as_client = t.conns - t.as_server;
    let role = match (t.as_server > 0, as_client > 0) {
        (true, true) => Role::Both,
        (true, false) => Role::Server,
        _ => Role::Client,
    };
    SocketStats {
        proto: socket.proto,
        ip: socket.addr.ip,
        port: socket.addr.port,
        role,
        conns: t.conns,
        as_server: t.as_server,
        as_client,
        max_concurrent: tally.max_open(),
        pkts_sent: t.pkts_sent,
        pkts_received: t.pkts_received,
        bytes_sent: t.bytes_sent,
        bytes_received: t.bytes_received,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use std::net::Ipv6Addr;

    use super::*;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_nanos(s * 1_000_000_000)
    }

    /// A connection's part for a socket, from `start` to `end` seconds.
    fn part(first: u64, start: u64, end: u64) -> Part {
        Part {
            first,
            start: at(start),
            end: at(end),
            pkts_sent: 1,
            pkts_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    fn tally(parts: &[Part]) -> Tally {
        let mut tally = Tally::new(&parts[0]);
        for part in &parts[1..] {
            tally.add(part);
        }
        tally
    }

    /// Most sockets of a scan have one connection: their entries are what the inventory of one
    /// costs.
    #[test]
    fn a_socket_of_one_connection_stays_compact() {
        assert_eq!(std::mem::size_of::<Tally>(), 40);
        assert_eq!(std::mem::size_of::<(V4Socket, Tally)>(), 48);
        assert_eq!(std::mem::size_of::<(Socket, Tally)>(), 64);
        assert!(matches!(Tally::new(&part(0, 1, 2)), Tally::One(_)));
    }

    #[test]
    fn most_open_at_once() {
        assert_eq!(tally(&[part(0, 1, 2)]).max_open(), 1);
        assert_eq!(tally(&[part(0, 1, 5), part(2, 2, 3), part(4, 6, 7)]).max_open(), 2);
        let touching = tally(&[part(0, 1, 2), part(2, 2, 3)]);
        assert_eq!(touching.max_open(), 2, "one opening as another closes: both open");
        assert_eq!(tally(&[part(0, 1, 2), part(2, 3, 4)]).max_open(), 1);
    }

    /// Every socket counted is in the inventory, however many wait in a group.
    #[test]
    fn every_count_is_in_the_inventory() {
        let counted = |n| {
            let mut inventory = Inventory::default();
            for port in 0..n {
                let addr = Addr { ip: Ipv4Addr::LOCALHOST.into(), port };
                inventory.count(Socket { proto: Proto::Tcp, addr }, part(port.into(), 1, 2));
            }
            inventory
        };
        for n in 0..3 * GROUP as u16 {
            assert_eq!(counted(n).top().by_connections.len(), TOP.min(n.into()));
            assert_eq!(counted(n).finish().len(), usize::from(n));
        }
    }

    /// The levels a shelf's sockets fill, two to a level.
    fn levels_of_two<S>(shelf: &Shelf<S>) -> usize {
        shelf.levels.iter().map(|l| l.sockets.len()).sum::<usize>().div_ceil(2)
    }

    /// IPv4 and IPv6 sockets, held apart, come out together in order of first appearance.
    #[test]
    fn sockets_of_both_families_are_listed_in_order_of_first_appearance() {
        let mut inventory = Inventory::default();
        let firsts = [7u64, 2, 9, 4, 1, 12, 3];
        for (port, &first) in (1u16..).zip(&firsts) {
            let ip = if first % 3 == 0 { Ipv6Addr::LOCALHOST.into() } else { Ipv4Addr::LOCALHOST.into() };
            inventory.count(Socket { proto: Proto::Tcp, addr: Addr { ip, port } }, part(first, 1, 2));
        }
        let ports: Vec<u16> = inventory.finish().iter().map(|s| s.port).collect();
        assert_eq!(ports, [5, 2, 7, 4, 1, 3, 6]);
    }

    fn any_part() -> impl Strategy<Value = Part> {
        // Counts around 2^32, which a socket of one connection cannot hold in place.
        let count = prop_oneof![0u64..4, (u32::MAX as u64 - 2)..(u32::MAX as u64 + 2)];
        (0u64..64, 1u64..20, 0u64..5, count.clone(), count.clone(), count.clone(), count).prop_map(
            |(first, start, len, pkts_sent, pkts_received, bytes_sent, bytes_received)| Part {
                first,
                start: at(start),
                end: at(start + len),
                pkts_sent,
                pkts_received,
                bytes_sent,
                bytes_received,
            },
        )
    }

    proptest! {
        /// However a socket's connections come, its counts are the sums over them, its first
        /// the least, and the most open at once what counting every instant gives.
        #[test]
        fn tallies_are_exact(parts in prop::collection::vec(any_part(), 1..6)) {
            let t = tally(&parts);
            let totals = t.totals();
            prop_assert_eq!(totals.conns, parts.len() as u64);
            prop_assert_eq!(totals.as_server, parts.iter().filter(|p| p.as_server()).count() as u64);
            prop_assert_eq!(totals.pkts_sent, parts.iter().map(|p| p.pkts_sent).sum::<u64>());
            prop_assert_eq!(totals.pkts_received, parts.iter().map(|p| p.pkts_received).sum::<u64>());
            prop_assert_eq!(totals.bytes_sent, parts.iter().map(|p| p.bytes_sent).sum::<u64>());
            prop_assert_eq!(totals.bytes_received, parts.iter().map(|p| p.bytes_received).sum::<u64>());
            prop_assert_eq!(t.first(), parts.iter().map(|p| p.first).min().unwrap());
            let most = (1..25)
                .map(|s| parts.iter().filter(|p| p.start <= at(s) && at(s) <= p.end).count() as u64)
                .max()
                .unwrap();
            prop_assert_eq!(t.max_open(), most);
        }

        /// Sockets beyond a level's room go to the next level, and the inventory is the same.
        #[test]
        fn levels_change_nothing(
            counted in prop::collection::vec((0u16..6, any::<bool>(), any_part()), 1..24),
        ) {
            let (mut one, mut levels) = (Inventory::default(), Inventory::with_room(2));
            for (port, udp, part) in counted {
                let proto = if udp { Proto::Udp } else { Proto::Tcp };
                // Odd ports over IPv6: sockets held both ways meet in one inventory.
                let ip = if port % 2 == 1 { Ipv6Addr::LOCALHOST.into() } else { Ipv4Addr::LOCALHOST.into() };
                let addr = Addr { ip, port };
                one.count(Socket { proto, addr }, part.clone());
                levels.count(Socket { proto, addr }, part);
            }
            prop_assert_eq!(one.top(), levels.top());
            prop_assert_eq!(levels.v4.levels.len(), levels_of_two(&levels.v4));
            prop_assert_eq!(levels.other.levels.len(), levels_of_two(&levels.other));
            prop_assert_eq!(one.finish(), levels.finish());
        }

        /// Packed spans read back as they were pushed, whatever their order and size.
        #[test]
        fn spans_read_back_as_pushed(pushed in prop::collection::vec((1u64.., 1u64..), 0..8)) {
            let pushed: Vec<_> =
                pushed.into_iter().map(|(s, e)| (Timestamp::from_nanos(s), Timestamp::from_nanos(e))).collect();
            let mut spans = Spans::default();
            for &(start, end) in &pushed {
                spans.push(start, end);
            }
            prop_assert_eq!(spans.iter().collect::<Vec<_>>(), pushed);
        }
    }
}
