//! Several connection tables side by side, each owning the connections of some socket pairs.
//!
//! One thread reads, decodes, accounts and reassembles (the front), and sends each packet to
//! the table that owns it (`owner`), so that every connection, at every tunnel layer, lives in
//! exactly one table. Each table runs on a thread of its own; this thread gives the connections
//! their final numbers and hands them to the sink.
//!
//! Numbering: a table numbers a new connection by its first packet (`number << ID_SHIFT`, plus
//! one for each further connection the same packet starts), so ids from all tables sort in order
//! of first packet. Each table reports the ids it made, in order, and how far into the run it
//! has got; an id gets its final number (1, 2, 3 ...) once no table can still make a smaller one.
//! Runs that print no ids (`Options::numbered` off) keep the tables' ids, which sort the same.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use super::batch::{self, gone, Batcher, IN_FLIGHT};
use super::deliver::{deliver, prefetch, GROUP};
use super::intake::{Intake, TablePacket};
use super::source::read_timeline;
use super::staged::CONN_BATCH;
use super::{Analysis, FileReport, Options, Sink, Transport};
use crate::decode::MAX_LAYERS;
use crate::flow::key::wide;
use crate::flow::table::{ConnTable, Rest};
use crate::flow::Conn;
use crate::types::Timestamp;

/// Room in the id space for the connections one packet starts: one per tunnel layer with a
/// UDP header and one inside, so that ids from every table are unique and sort by first packet.
const ID_SHIFT: u32 = 5;
const _: () = assert!(MAX_LAYERS + 1 < 1 << ID_SHIFT);

/// Packets the intake sends out at a time (split among the tables). Large, because with more
/// threads than cores each hand-over can cost a context switch and the tables' caches.
const SHARD_BATCH: usize = 8192;

/// From the intake to one table: its packets, in order, and how far the run has been sent.
struct ToTable {
    packets: Vec<TablePacket>,
    /// Every packet numbered below this has been sent (to whichever table owns it).
    upto: u64,
    /// The run's last timestamp so far: the last message's tells the table when the run ended.
    last_ts: Option<Timestamp>,
}

/// From a table to the numbering.
struct FromTable {
    table: usize,
    /// Ids of the connections it started, ascending.
    created: Vec<u64>,
    /// Ids of outer flows that carried a tunnel: inner connections name them as parents.
    carriers: Vec<u64>,
    ended: Vec<Conn>,
    /// No id below this will be made by this table any more.
    upto: u64,
    /// With the last message: the connections still in the table, in id order.
    rest: Option<Rest>,
}

/// The table that owns a packet. Plain TCP (no tunnel layer around it) goes by its socket
/// pair, the same in either direction, so even two hosts' connections spread over the tables:
/// its connection can meet no other kind of packet, as a tunnel is part of a connection's key
/// and TCP carries no tunnel. Everything else goes to the first table: a tunnel's outer UDP
/// flow, what it carries, and plain UDP, which may be the same outer flow's datagrams that did
/// not decode (Teredo bubbles and relays run on any port, and a relay changes the outer
/// addresses within one inner connection). Without decapsulation nothing is tunnelled, and UDP
/// spreads like TCP. The mix is fixed, not seeded: crafted traffic can crowd one table, which
/// is slower, never wrong.
fn owner(packet: &TablePacket, tables: usize, decap: bool) -> usize {
    let (ip, sp, dp) = match (packet.hops.is_empty(), &packet.inner) {
        (true, Some((ip, Transport::Tcp(s)))) => (ip, s.src_port, s.dst_port),
        (true, Some((ip, Transport::Udp(d)))) if !decap => (ip, d.src_port, d.dst_port),
        _ => return 0,
    };
    // Each side mixed on its own, then XOR: the same in both directions.
    let side = |addr, port: u16| {
        let x: u128 = wide(addr);
        ((x as u64) ^ ((x >> 64) as u64) ^ u64::from(port)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    };
    let spread = (side(ip.src, sp) ^ side(ip.dst, dp)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    ((u128::from(spread) * tables as u128) >> 64) as usize
}

/// `tables` tables on threads of their own, the intake on another, the numbering and the sink
/// on this one. A sink error (a closed output) stops the tables, which stops the intake.
pub(super) fn analyze(
    paths: &[PathBuf],
    opts: &Options,
    tables: usize,
    sink: &mut Sink<'_>,
) -> io::Result<Analysis> {
    let (to_numbering, from_tables) = sync_channel::<FromTable>(IN_FLIGHT * tables);
    std::thread::scope(|scope| {
        let (to_tables, table_threads): (Vec<_>, Vec<_>) = (0..tables)
            .map(|index| {
                let (tx, rx) = sync_channel::<ToTable>(IN_FLIGHT);
                let to_numbering = to_numbering.clone();
                let max_live = (opts.max_connections / tables).max(1);
                (tx, scope.spawn(move || run_table(index, opts, max_live, rx, to_numbering)))
            })
            .unzip();
        drop(to_numbering);
        let intake = scope.spawn(move || split(paths, opts, &to_tables));
        let mut numbering = opts.numbered.then(|| Numbering::new(tables));
        let mut written = number_as_they_end(from_tables, numbering.as_mut(), sink)
            .and_then(|rests| write_rests(scope, rests, numbering, sink));
        let mut evicted = 0;
        for t in table_threads {
            match t.join().expect("a table's thread does not panic") {
                Ok(n) => evicted += n,
                Err(e) => written = written.and(Err(e)),
            }
        }
        let intake = intake.join().expect("the intake's thread does not panic");
        written?;
        let (intake, files) = intake?;
        Ok(intake.finish(files, evicted))
    })
}

/// One table's thread: its packets through the table, reports to the numbering; returns how
/// many connections it evicted.
fn run_table(
    index: usize,
    opts: &Options,
    max_live: usize,
    rx: Receiver<ToTable>,
    to_numbering: SyncSender<FromTable>,
) -> io::Result<u64> {
    let mut table = ConnTable::new(opts.timeouts, max_live);
    let mut end = None;
    for mut msg in rx {
        end = msg.last_ts;
        let mut out = FromTable {
            table: index,
            created: Vec::new(),
            carriers: Vec::new(),
            ended: Vec::new(),
            upto: msg.upto.saturating_mul(1 << ID_SHIFT),
            rest: None,
        };
        for group in msg.packets.chunks_mut(GROUP) {
            prefetch(&table, group);
            for packet in &*group {
                table.number_from(packet.number << ID_SHIFT);
                let first = table.next_id();
                for parent in deliver(&mut table, packet, &mut None) {
                    // Most packets of a tunnel repeat its carrier.
                    if out.carriers.last() != Some(&parent) {
                        out.carriers.push(parent);
                    }
                }
                if opts.numbered {
                    out.created.extend(first..table.next_id());
                }
            }
        }
        out.ended.extend(table.drain_ended());
        to_numbering.send(out).map_err(|_| gone())?;
    }
    let evicted = table.evicted;
    let last = FromTable {
        table: index,
        created: Vec::new(),
        carriers: Vec::new(),
        ended: Vec::new(),
        upto: u64::MAX,
        rest: Some(table.finish(end)),
    };
    to_numbering.send(last).map_err(|_| gone())?;
    Ok(evicted)
}

/// The intake's thread: reads, accounts, and sends each packet to the table that owns it.
fn split(
    paths: &[PathBuf],
    opts: &Options,
    to_tables: &[SyncSender<ToTable>],
) -> io::Result<(Intake, Vec<FileReport>)> {
    let mut intake = Intake::new(opts.decap);
    let fresh = || (0..to_tables.len()).map(|_| Vec::with_capacity(SHARD_BATCH)).collect::<Vec<_>>();
    let mut batches = fresh();
    let mut pending = 0;
    let send = |batches: Vec<Vec<TablePacket>>, upto: u64, last_ts| -> io::Result<()> {
        for (tx, packets) in to_tables.iter().zip(batches) {
            tx.send(ToTable { packets, upto, last_ts }).map_err(|_| gone())?;
        }
        Ok(())
    };
    // `take` adds a packet to a vector; here one at a time, as which table's batch it joins is
    // known only once it is made.
    let mut taken = Vec::with_capacity(1);
    let files = read_timeline(paths, opts.decap, opts.progress.as_deref(), &mut |record| {
        intake.take(record, &mut taken);
        if let Some(packet) = taken.pop() {
            batches[owner(&packet, to_tables.len(), opts.decap)].push(packet);
            pending += 1;
            if pending == SHARD_BATCH {
                pending = 0;
                send(std::mem::replace(&mut batches, fresh()), intake.accounting.total + 1, intake.last_ts)?;
            }
        }
        Ok(())
    })?;
    send(batches, u64::MAX, intake.last_ts)?;
    Ok((intake, files))
}

/// Numbers the tables' connections (unless the run keeps their tables' ids) and hands those
/// that ended to the sink, until every table has reported its last; returns the tables' rests
/// (their connections still open).
fn number_as_they_end(
    from_tables: Receiver<FromTable>,
    mut numbering: Option<&mut Numbering>,
    sink: &mut Sink<'_>,
) -> io::Result<Vec<Rest>> {
    let mut ready = Vec::new();
    let mut rests = Vec::new();
    for mut msg in from_tables {
        rests.extend(msg.rest.take());
        match numbering.as_deref_mut() {
            Some(numbering) => numbering.take(msg, &mut ready),
            None => ready.append(&mut msg.ended),
        }
        ready.drain(..).try_for_each(&mut *sink)?;
    }
    Ok(rests)
}

/// Every table has sent everything, so all ids are numbered: merging the tables' sorted rests
/// hands the sink the connections still open in id order, none waiting behind another. The
/// merge runs on a thread of its own, ahead of the sink on this one.
fn write_rests<'scope>(
    scope: &'scope Scope<'scope, '_>,
    rests: Vec<Rest>,
    mut numbering: Option<Numbering>,
    sink: &mut Sink<'_>,
) -> io::Result<()> {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let merging: ScopedJoinHandle<'scope, io::Result<()>> = scope.spawn(move || {
        let mut batcher = Batcher::new(tx, CONN_BATCH);
        merge(rests, |mut conn| {
            if let Some(numbering) = &mut numbering {
                numbering.renumber(&mut conn);
            }
            batcher.push(conn)
        })?;
        batcher.finish()
    });
    let written = batch::receive(rx, &mut *sink);
    // The merge's own error is only ever that the sink stopped taking connections.
    let _ = merging.join().expect("the merging thread does not panic");
    written
}

/// Hands `each` the connections of several id-ordered streams, in id order.
fn merge(mut rests: Vec<Rest>, mut each: impl FnMut(Conn) -> io::Result<()>) -> io::Result<()> {
    loop {
        let smallest = rests.iter().enumerate().filter_map(|(i, r)| Some((r.next_id()?, i))).min();
        let Some((_, i)) = smallest else { return Ok(()) };
        if let Some(conn) = rests[i].next() {
            each(conn)?;
        }
    }
}

/// The table's hasher for the numbering's maps too: fast on integer ids, and randomly seeded.
type Fast = foldhash::fast::RandomState;

/// Gives connections from several tables their final numbers, in order of first packet.
struct Numbering {
    tables: Vec<Feed>,
    next: u64,
    /// Numbered connections that have not ended yet.
    live: Live,
    /// Carriers not numbered yet.
    marked: HashSet<u64, Fast>,
    /// Carriers' final numbers, kept to the end: an inner connection can end after its carrier.
    carriers: HashMap<u64, u64, Fast>,
    /// Connections that ended before their number was final, by table id.
    waiting: BTreeMap<u64, Conn>,
}

#[derive(Default)]
struct Feed {
    created: VecDeque<u64>,
    upto: u64,
}

impl Numbering {
    fn new(tables: usize) -> Self {
        Numbering {
            tables: (0..tables).map(|_| Feed::default()).collect(),
            next: 1,
            live: Live::default(),
            marked: HashSet::default(),
            carriers: HashMap::default(),
            waiting: BTreeMap::new(),
        }
    }

    /// Takes one table's report; pushes the connections that can go out now onto `ready`.
    fn take(&mut self, msg: FromTable, ready: &mut Vec<Conn>) {
        let feed = &mut self.tables[msg.table];
        feed.created.extend(msg.created);
        feed.upto = msg.upto;
        self.number_what_is_final();
        for c in msg.carriers {
            match self.live.get(c) {
                Some(n) => _ = self.carriers.insert(c, n),
                None => _ = self.marked.insert(c),
            }
        }
        for mut conn in msg.ended {
            if self.live.get(conn.id).is_some() {
                self.renumber(&mut conn);
                ready.push(conn);
            } else {
                self.waiting.insert(conn.id, conn);
            }
        }
        // Numbers are given in id order, so waiting ones become ready from the smallest up.
        while let Some(entry) = self.waiting.first_entry() {
            if self.live.get(*entry.key()).is_none() {
                break;
            }
            let mut conn = entry.remove();
            self.renumber(&mut conn);
            ready.push(conn);
        }
    }

    /// Numbers the smallest reported id while no table can still make a smaller one.
    fn number_what_is_final(&mut self) {
        loop {
            let smallest = self
                .tables
                .iter()
                .enumerate()
                .filter_map(|(t, f)| Some((t, *f.created.front()?)))
                .min_by_key(|&(_, id)| id);
            let Some((t, id)) = smallest else { return };
            let settled =
                self.tables.iter().enumerate().all(|(u, f)| u == t || !f.created.is_empty() || f.upto > id);
            if !settled {
                return;
            }
            self.tables[t].created.pop_front();
            let n = self.next;
            self.next += 1;
            self.live.push(id, n);
            if self.marked.remove(&id) {
                self.carriers.insert(id, n);
            }
        }
    }

    /// Gives the connection its final number, and its carriers theirs.
    fn renumber(&mut self, conn: &mut Conn) {
        if let Some(n) = self.live.remove(conn.id) {
            conn.id = n;
        }
        if let Some(tunnel) = conn.tunnel.as_mut() {
            for parent in &mut tunnel.parents {
                // A carrier got its number no later than the connections inside it.
                if let Some(n) = self.carriers.get(parent).copied().or_else(|| self.live.get(*parent)) {
                    *parent = n;
                }
            }
        }
    }
}

/// Numbered connections that have not ended: their table ids in ascending order, and their
/// final numbers, which ascend with them. Connections mostly end oldest first, and those still
/// open at the end are renumbered in id order, so the one looked up is nearly always at the
/// front: cheaper than a hash map, whose lookups miss the cache once millions are open (scans).
/// Numbers are given one after another as ids come, so a number follows from its id's place and
/// only where ended ones were taken out from between open ones does a run of numbers start
/// afresh: 8 bytes per open connection rather than 16.
#[derive(Default)]
struct Live {
    /// Ended ones stay, marked `ENDED`, until they reach the front or outnumber the rest.
    ids: VecDeque<u64>,
    /// Where each run of numbers starts: (place, number), places counted from the first id ever
    /// pushed. Nearly always one.
    runs: VecDeque<(u64, u64)>,
    /// Ids taken from the front so far: the place of `ids[0]`.
    gone: u64,
    holes: usize,
}

/// Marks an ended id in `Live` (table ids count packets from bit `ID_SHIFT` up, and no capture
/// has 2^58 packets).
const ENDED: u64 = 1 << 63;

impl Live {
    fn push(&mut self, id: u64, n: u64) {
        debug_assert!(self.ids.back().is_none_or(|&last| last & !ENDED < id) && id < ENDED && n > 0);
        let place = self.gone + self.ids.len() as u64;
        if self.runs.back().is_none_or(|&(start, first)| first + (place - start) != n) {
            self.runs.push_back((place, n));
        }
        self.ids.push_back(id);
    }

    fn find(&self, id: u64) -> Option<usize> {
        match self.ids.front() {
            Some(&first) if first == id => Some(0),
            _ => self.ids.binary_search_by_key(&id, |&i| i & !ENDED).ok(),
        }
    }

    /// The number of the id at `at`.
    fn number(&self, at: usize) -> u64 {
        let place = self.gone + at as u64;
        let run = match self.runs.get(1) {
            Some(&(next, _)) if next <= place => self.runs.partition_point(|&(start, _)| start <= place) - 1,
            _ => 0,
        };
        let (start, first) = self.runs[run];
        first + (place - start)
    }

    /// The final number of `id`, if it is numbered and has not ended.
    fn get(&self, id: u64) -> Option<u64> {
        self.find(id).filter(|&at| self.ids[at] & ENDED == 0).map(|at| self.number(at))
    }

    /// The final number of `id`, which has ended.
    fn remove(&mut self, id: u64) -> Option<u64> {
        let at = self.find(id).filter(|&at| self.ids[at] & ENDED == 0)?;
        let n = self.number(at);
        self.ids[at] |= ENDED;
        self.holes += 1;
        while self.ids.front().is_some_and(|&id| id & ENDED != 0) {
            self.ids.pop_front();
            self.gone += 1;
            self.holes -= 1;
        }
        while self.runs.get(1).is_some_and(|&(start, _)| start <= self.gone) {
            self.runs.pop_front();
        }
        // Millions end at once after a scan: what they took goes back as they go.
        if self.ids.capacity() > 4 * self.ids.len() + 1024 {
            self.ids.shrink_to(2 * self.ids.len());
        }
        // Held back by an old connection still open: memory stays with the open ones.
        if self.holes > self.ids.len() / 2 {
            self.close_up();
        }
        Some(n)
    }

    /// Takes the ended ones out from between the open ones, which keep their numbers.
    fn close_up(&mut self) {
        let mut runs = VecDeque::new();
        let mut kept = 0;
        for at in 0..self.ids.len() {
            let id = self.ids[at];
            if id & ENDED != 0 {
                continue;
            }
            let (place, n) = (self.gone + kept as u64, self.number(at));
            if runs.back().is_none_or(|&(start, first): &(u64, u64)| first + (place - start) != n) {
                runs.push_back((place, n));
            }
            self.ids[kept] = id;
            kept += 1;
        }
        self.ids.truncate(kept);
        self.runs = runs;
        self.holes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Ip, UdpDatagram};
    use crate::flow::table::{Context, Timeouts};

    /// A UDP flow that a table numbered as started by packet `number`.
    fn flow(number: u64) -> Conn {
        let mut table = ConnTable::new(Timeouts::default(), 10);
        table.number_from(number << ID_SHIFT);
        let ip = Ip { src: "10.0.0.1".parse().unwrap(), dst: "10.0.0.2".parse().unwrap(), wire_len: 28 };
        let d = UdpDatagram {
            src_port: 1000,
            dst_port: 2000,
            payload_len: 0,
            shape: Default::default(),
            roles: Default::default(),
        };
        table.udp(Timestamp::from_nanos(number), &ip, &d, &Context::default(), None);
        table.finish(None).next().unwrap()
    }

    fn report(table: usize, created: &[u64], ended: Vec<Conn>, upto: u64) -> FromTable {
        let created = created.iter().map(|n| n << ID_SHIFT).collect();
        FromTable { table, created, carriers: Vec::new(), ended, upto: upto << ID_SHIFT, rest: None }
    }

    fn ids(conns: &[Conn]) -> Vec<u64> {
        conns.iter().map(|c| c.id).collect()
    }

    #[test]
    fn live_numbers_are_found_until_they_end_however_they_end() {
        let mut live = Live::default();
        for n in 1..=100 {
            live.push(n * 10, n);
        }
        // Oldest first, newest first and from the middle.
        assert_eq!(live.remove(10), Some(1));
        assert_eq!(live.remove(1000), Some(100));
        assert_eq!(live.remove(500), Some(50));
        assert_eq!((live.get(10), live.get(500), live.remove(500)), (None, None, None));
        assert_eq!((live.get(20), live.get(505), live.get(990)), (Some(2), None, Some(99)));
        // All but one old connection end: the holes behind it do not stay.
        for n in 3..=99 {
            live.remove(n * 10);
            let open = live.ids.iter().filter(|&&id| id & ENDED == 0).count();
            assert!(live.ids.len() <= 2 * open + 1, "{} entries for {open} open", live.ids.len());
        }
        assert_eq!(live.get(20), Some(2));
        live.push(2000, 101);
        assert_eq!((live.remove(20), live.remove(2000)), (Some(2), Some(101)));
        assert!(live.ids.is_empty());
    }

    proptest::proptest! {
        /// However connections come and end, each id's number is the one it was given until it
        /// ends, and none after.
        #[test]
        fn live_numbers_hold_whatever_ends(
            steps in proptest::collection::vec((0u8..3, 1u64..4, proptest::sample::select(vec![0usize, 1, 7, 100])), 1..300),
        ) {
            let (mut live, mut given) = (Live::default(), Vec::new());
            let mut open = std::collections::BTreeMap::new();
            let (mut id, mut n) = (0, 0);
            for (what, gap, pick) in steps {
                if what == 0 || given.is_empty() {
                    (id, n) = (id + gap, n + 1);
                    live.push(id, n);
                    given.push(id);
                    open.insert(id, n);
                    continue;
                }
                // Now the oldest, now the newest, now one between.
                let id = given[given.len() - 1 - pick % given.len()];
                if what == 1 {
                    proptest::prop_assert_eq!(live.remove(id), open.remove(&id));
                } else {
                    proptest::prop_assert_eq!(live.get(id), open.get(&id).copied());
                }
                proptest::prop_assert!(live.ids.len() <= 2 * open.len() + 1);
            }
            for (id, n) in open {
                proptest::prop_assert_eq!(live.remove(id), Some(n));
            }
            proptest::prop_assert!(live.ids.is_empty());
        }
    }

    #[test]
    fn a_number_waits_until_no_table_can_make_a_smaller_one() {
        let mut n = Numbering::new(2);
        let mut ready = Vec::new();
        // Table 0 has read up to packet 10 and ended the flow of packet 7; table 1 is behind.
        n.take(report(0, &[3, 7], vec![flow(7)], 11), &mut ready);
        assert!(ready.is_empty(), "table 1 may still start a flow before packet 7");
        // Table 1 started one at packet 5 and has read up to packet 10 too.
        n.take(report(1, &[5], vec![], 11), &mut ready);
        assert_eq!(ids(&ready), [3], "first packets 3, 5, 7: the flow of packet 7 is the third");
        ready.clear();
        n.take(report(1, &[], vec![flow(5)], 12), &mut ready);
        n.take(report(0, &[], vec![flow(3)], u64::MAX), &mut ready);
        assert_eq!(ids(&ready), [2, 1]);
    }

    #[test]
    fn an_empty_table_holds_nothing_back_once_it_has_read_past() {
        let mut n = Numbering::new(2);
        let mut ready = Vec::new();
        n.take(report(1, &[], vec![], 100), &mut ready);
        n.take(report(0, &[4, 9], vec![flow(9), flow(4)], 10), &mut ready);
        assert_eq!(ids(&ready), [2, 1]);
    }

    #[test]
    fn inner_connections_name_their_carriers_by_final_number() {
        let mut n = Numbering::new(2);
        let mut ready = Vec::new();
        n.take(report(1, &[2], vec![], 3), &mut ready);
        let mut inner = flow(6);
        inner.tunnel =
            Some(Box::new(crate::flow::TunnelInfo { path: Vec::new(), parents: vec![5 << ID_SHIFT] }));
        let carrier = 5 << ID_SHIFT;
        let msg = FromTable {
            table: 0,
            created: vec![carrier, 6 << ID_SHIFT],
            carriers: vec![carrier],
            ended: vec![flow(5), inner],
            upto: u64::MAX,
            rest: None,
        };
        n.take(msg, &mut ready);
        assert!(ready.is_empty(), "table 1 may still start flows from packet 3 on");
        n.take(report(1, &[], vec![], u64::MAX), &mut ready);
        assert_eq!(ids(&ready), [2, 3], "table 1's flow of packet 2 is number 1");
        assert_eq!(ready[1].tunnel.as_ref().unwrap().parents, [2]);
    }
}
