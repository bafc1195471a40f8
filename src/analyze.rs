//! The data path: capture files -> frames -> decoded segments -> connection table.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::collections::BinaryHeap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::capture::{CaptureReader, FileKind, Record, Timestamp};
use crate::decode::frag::{Added, Defragmenter, GiveUp};
use crate::decode::{self, Decoded, Hop, Ip, Other, Packet, Skip, TcpSegment, UdpDatagram};
use crate::flow::socket::{Addr, Proto, TunnelKey};
use crate::flow::table::{ConnTable, Context, Hint, Timeouts};
use crate::flow::Conn;

mod sharded;

/// Where every packet went: `tcp + udp + other + skipped == total`.
#[derive(Clone, Debug, Default)]
pub struct Accounting {
    pub total: u64,
    pub tcp: u64,
    pub udp: u64,
    pub other: BTreeMap<Other, u64>,
    pub skipped: BTreeMap<Skip, u64>,
    /// Packets whose timestamp is earlier than the one before (counted, still analyzed).
    pub time_went_backwards: u64,
    /// Fragments that overlapped bytes already held (the first arrival's bytes were kept).
    pub overlapping_fragments: u64,
    /// Packets the capture kept only part of (snap length); still analyzed from their headers.
    pub snaplen_cut: u64,
}

impl Accounting {
    pub fn other_total(&self) -> u64 {
        self.other.values().sum()
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn balances(&self) -> bool {
        self.tcp + self.udp + self.other_total() + self.skipped_total() == self.total
    }
}

/// What happened to one input file.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: Option<&'static str>,
    pub gzip: bool,
    pub packets: u64,
    /// A problem after which the file's earlier packets still count (a cut-short file).
    pub warning: Option<String>,
    /// A problem that stopped the file from being read (not a capture, unreadable ...).
    pub error: Option<String>,
}

/// What a run found besides the connections, which go to the sink as they end.
pub struct Analysis {
    pub accounting: Accounting,
    pub files: Vec<FileReport>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Connections ended early because `max_connections` were live.
    pub evicted: u64,
}

impl Analysis {
    pub fn had_errors(&self) -> bool {
        self.files.iter().any(|f| f.error.is_some())
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub timeouts: Timeouts,
    /// Most live connections held at once; beyond it the least recently active end early.
    pub max_connections: usize,
    /// Look through tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, AYIYA, GTP-U).
    pub decap: bool,
    /// Threads: 1 does everything on one. Without an observer, 2 or more split the connections
    /// over that many tables by socket pair, each on a thread, next to a reading and a
    /// writing thread (`max_connections` is then shared out among the tables).
    pub jobs: usize,
    /// The sink takes connections in the order they end, which only one table can tell: with
    /// `jobs` > 1, reading, the table and the sink then run as three stages instead.
    pub end_order: bool,
    /// Bytes read so far over all files, for a progress display (updated every few thousand
    /// records).
    pub progress: Option<Arc<AtomicU64>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeouts: Timeouts::default(),
            max_connections: 10_000_000,
            decap: true,
            jobs: 1,
            end_order: false,
            progress: None,
        }
    }
}

/// A transport packet and the connection it was attributed to (for `show`).
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// 1-based packet number over the whole run.
    pub number: u64,
    pub ts: Timestamp,
    pub conn_id: u64,
    pub ip: Ip,
    pub transport: Transport,
}

impl Seen {
    /// (source, destination) sockets of the packet.
    pub fn sockets(&self) -> (Addr, Addr) {
        self.transport.sockets(&self.ip)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Tcp(TcpSegment),
    Udp(UdpDatagram),
}

impl Transport {
    fn proto(&self) -> Proto {
        match self {
            Transport::Tcp(_) => Proto::Tcp,
            Transport::Udp(_) => Proto::Udp,
        }
    }

    /// (source, destination) sockets of the packet carried in `ip`.
    fn sockets(&self, ip: &Ip) -> (Addr, Addr) {
        let (sp, dp) = match self {
            Transport::Tcp(s) => (s.src_port, s.dst_port),
            Transport::Udp(d) => (d.src_port, d.dst_port),
        };
        (Addr { ip: ip.src, port: sp }, Addr { ip: ip.dst, port: dp })
    }
}

/// Where ended connections go, as they end (not in id order: see `report::stream`).
/// An error (a closed output pipe) stops the run.
pub type Sink<'s> = dyn FnMut(Conn) -> io::Result<()> + 's;

/// Reads the files in order as one timeline (the pieces of one rotated capture), telling
/// `observer` about every TCP and UDP packet and handing each connection to `sink` when it ends.
///
/// With `opts.jobs` of 2 or more, reading and decoding run on a thread of their own, ahead of
/// the connection table(s): without an observer the connections are split over `jobs` tables
/// (`sharded`), or, for end order, one table and the sink get a thread each; with an observer
/// (which sees packets in order) the one table and the sink stay on this thread.
pub fn analyze(
    paths: &[PathBuf],
    opts: &Options,
    observer: Option<&mut dyn FnMut(&Seen)>,
    sink: &mut Sink<'_>,
) -> io::Result<Analysis> {
    match observer {
        None if opts.jobs > 1 && !opts.end_order => sharded::analyze(paths, opts, sink),
        None if opts.jobs > 1 => analyze_apart(paths, opts, sink),
        observer => analyze_here(paths, opts, observer, sink),
    }
}

/// Ended connections per message from the table thread to the output.
const CONN_BATCH: usize = 256;

/// Three stages: reading and decoding, the connection table, and the sink (building and
/// writing records) each on a thread of their own. A sink error (a closed output) stops the
/// table thread, which stops the reader.
fn analyze_apart(paths: &[PathBuf], opts: &Options, sink: &mut Sink<'_>) -> io::Result<Analysis> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Conn>>(IN_FLIGHT);
    std::thread::scope(|scope| {
        let table = scope.spawn(move || {
            let gone = || io::Error::from(io::ErrorKind::BrokenPipe);
            let mut batch = Vec::with_capacity(CONN_BATCH);
            let analysis = analyze_here(paths, opts, None, &mut |conn| {
                batch.push(conn);
                if batch.len() == CONN_BATCH {
                    tx.send(std::mem::replace(&mut batch, Vec::with_capacity(CONN_BATCH)))
                        .map_err(|_| gone())?;
                }
                Ok(())
            })?;
            tx.send(batch).map_err(|_| gone())?;
            Ok(analysis)
        });
        let mut written = Ok(());
        for conns in rx.iter() {
            written = conns.into_iter().try_for_each(&mut *sink);
            if written.is_err() {
                break;
            }
        }
        drop(rx);
        let analysis = table.join().expect("the table thread does not panic");
        written.and(analysis)
    })
}

/// Reading (on a second thread with `opts.jobs` > 1) and the table on this thread, which also
/// calls `observer` and `sink`.
fn analyze_here(
    paths: &[PathBuf],
    opts: &Options,
    observer: Option<&mut dyn FnMut(&Seen)>,
    sink: &mut Sink<'_>,
) -> io::Result<Analysis> {
    let mut run = Run {
        // Shortens the trait object's lifetime to the run's, which an `Option` does not do by itself.
        observer: observer.map(|o| o as &mut dyn FnMut(&Seen)),
        sink,
        table: ConnTable::new(opts.timeouts, opts.max_connections),
        front: Front::new(opts.decap),
        group: Vec::with_capacity(GROUP),
    };
    let progress = opts.progress.as_deref();
    let files =
        if opts.jobs > 1 { run.pipelined(paths, progress)? } else { run.sequential(paths, progress)? };
    run.deliver_group()?;
    let evicted = run.table.evicted;
    for conn in run.table.finish(run.front.last_ts) {
        (run.sink)(conn)?;
    }
    Ok(run.front.finish(files, evicted))
}

/// One capture record, decoded: what the reader side hands to the table side.
enum Item {
    Bad(&'static str),
    /// The packet, its time, and whether the snap length cut it.
    Packet(Timestamp, Packet, bool),
}

/// From the reader thread: decoded records, then what each file reported.
enum Msg {
    Items(Vec<Item>),
    Done(Vec<FileReport>),
}

/// Records per message between the threads, and messages in flight (bounding memory).
const BATCH: usize = 1024;
const IN_FLIGHT: usize = 8;

/// One input file being read: its reader and what it reports.
struct Source {
    index: usize,
    reader: CaptureReader,
    report: FileReport,
    /// Bytes already added to the progress count.
    reported: u64,
    /// Time of its last frame, given to damaged records (which carry none).
    last_ts: Timestamp,
}

impl Source {
    /// Opens a file; a file that cannot be read comes back as its report.
    fn open(index: usize, path: &Path) -> Result<Source, FileReport> {
        let mut report = FileReport {
            path: path.to_path_buf(),
            format: None,
            gzip: false,
            packets: 0,
            warning: None,
            error: None,
        };
        match CaptureReader::open(path) {
            Ok(reader) => {
                report.format = Some(match reader.kind() {
                    FileKind::Pcap => "pcap",
                    FileKind::PcapNg => "pcapng",
                });
                report.gzip = reader.gzip;
                Ok(Source { index, reader, report, reported: 0, last_ts: Timestamp::default() })
            }
            Err(e) => {
                report.error = Some(e.to_string());
                Err(report)
            }
        }
    }

    /// The next record, decoded, with the time it sorts by; `None` at the end of the file.
    fn next(&mut self, decap: bool, progress: Option<&AtomicU64>) -> Option<(Timestamp, Item)> {
        if let Some(p) = progress.filter(|_| self.report.packets.is_multiple_of(4096)) {
            let at = self.reader.offset();
            p.fetch_add(at - self.reported, Ordering::Relaxed);
            self.reported = at;
        }
        match self.reader.next_record() {
            Ok(Some(Record::Frame(f))) => {
                self.report.packets += 1;
                self.last_ts = f.ts;
                let cut = (f.data.len() as u64) < u64::from(f.orig_len);
                Some((f.ts, Item::Packet(f.ts, decode::decode(f.link_type, f.data, decap), cut)))
            }
            Ok(Some(Record::Bad(why))) => {
                self.report.packets += 1;
                Some((self.last_ts, Item::Bad(why)))
            }
            Ok(None) => None,
            Err(e) => {
                self.report.error = Some(e.to_string());
                None
            }
        }
    }

    fn finish(self) -> FileReport {
        let mut report = self.report;
        if let Some(t) = self.reader.truncation() {
            report.warning = Some(t.to_string());
        }
        report
    }
}

/// Reads the files as one timeline, handing every decoded record to `each` in time order.
/// `paths` come in order of first packet (`inputs::timeline`); a file is opened only when the
/// timeline reaches its first packet, so rotated pieces are read one after another while files
/// whose times overlap (say, two interfaces captured apart) are merged packet by packet. Reports
/// come back in the order of `paths`.
fn read_timeline(
    paths: &[PathBuf],
    decap: bool,
    progress: Option<&AtomicU64>,
    each: &mut dyn FnMut(Item) -> io::Result<()>,
) -> io::Result<Vec<FileReport>> {
    let mut reports: Vec<Option<FileReport>> = vec![None; paths.len()];
    // Open sources with their next record; the heap orders them by (time, file).
    let mut open: Vec<Option<(Source, Item)>> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(Timestamp, usize, usize)>> = BinaryHeap::new();
    let mut staged: Option<(Source, Timestamp, Item)> = None;
    let mut next_path = 0;
    loop {
        while staged.is_none() && next_path < paths.len() {
            match Source::open(next_path, &paths[next_path]) {
                Ok(mut source) => match source.next(decap, progress) {
                    Some((ts, item)) => staged = Some((source, ts, item)),
                    None => reports[next_path] = Some(source.finish()),
                },
                Err(report) => reports[next_path] = Some(report),
            }
            next_path += 1;
        }
        let earliest = heap.peek().map(|Reverse((ts, ..))| *ts);
        if let Some((source, ts, item)) = staged.take_if(|(_, ts, _)| earliest.is_none_or(|e| *ts <= e)) {
            heap.push(Reverse((ts, source.index, open.len())));
            open.push(Some((source, item)));
            continue;
        }
        let Some(Reverse((_, _, slot))) = heap.pop() else { break };
        let (mut source, item) = open[slot].take().expect("a slot in the heap is open");
        each(item)?;
        // Stay with this file while it is still the earliest: with one file at a time (the
        // usual case) the heap is not touched per packet.
        let others = heap.peek().map(|Reverse((ts, ..))| *ts);
        let next_file = staged.as_ref().map(|(_, ts, _)| *ts);
        loop {
            match source.next(decap, progress) {
                Some((ts, next)) if others.is_none_or(|o| ts <= o) && next_file.is_none_or(|f| ts < f) => {
                    each(next)?
                }
                Some((ts, next)) => {
                    heap.push(Reverse((ts, source.index, slot)));
                    open[slot] = Some((source, next));
                    break;
                }
                None => {
                    let index = source.index;
                    reports[index] = Some(source.finish());
                    break;
                }
            }
        }
    }
    Ok(reports.into_iter().map(|r| r.expect("every file reported")).collect())
}

/// What happens to a record before the connection table: accounting, the run's time range,
/// and fragment reassembly. Its output, a `Work`, goes to the table (or to one of several).
struct Front {
    defrag: Defragmenter,
    decap: bool,
    prev_ts: Option<Timestamp>,
    accounting: Accounting,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
}

/// One captured packet as the connection table sees it: every tunnel layer (those of the frame,
/// then those of a datagram one of its fragments completed), then the segment or datagram
/// inside, if any.
struct Work {
    ts: Timestamp,
    /// 1-based packet number over the whole run.
    number: u64,
    hops: Vec<Hop>,
    inner: Option<(Ip, Transport)>,
    /// Where the table expects the inner packet's connection (set by `prefetch`).
    hint: Option<Hint>,
}

impl Front {
    fn new(decap: bool) -> Self {
        Front {
            defrag: Defragmenter::default(),
            decap,
            prev_ts: None,
            accounting: Accounting::default(),
            first_ts: None,
            last_ts: None,
        }
    }

    /// Accounts for one record; adds what the table has to do with it, if anything, to `out`
    /// (made in place rather than returned and moved: bench, `check` tiny 0.41 -> 0.39 s).
    fn take(&mut self, item: Item, out: &mut Vec<Work>) {
        self.accounting.total += 1;
        let (ts, packet, cut) = match item {
            Item::Bad(why) => {
                *self.accounting.skipped.entry(Skip::BadRecord(why)).or_default() += 1;
                return;
            }
            Item::Packet(ts, packet, cut) => (ts, packet, cut),
        };
        self.accounting.snaplen_cut += u64::from(cut);
        if self.prev_ts.is_some_and(|p| ts < p) {
            self.accounting.time_went_backwards += 1;
        }
        self.prev_ts = Some(ts);
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
        let number = self.accounting.total;
        let (mut hops, mut inner, mut frames) = (packet.tunnels, packet.inner, 1);
        let work = loop {
            match inner {
                Decoded::Tcp(ip, seg) => {
                    self.accounting.tcp += frames;
                    break Some((ip, Transport::Tcp(seg)));
                }
                Decoded::Udp(ip, d) => {
                    self.accounting.udp += frames;
                    break Some((ip, Transport::Udp(d)));
                }
                Decoded::Other(o) => *self.accounting.other.entry(o).or_default() += frames,
                Decoded::Skipped(s) => *self.accounting.skipped.entry(s).or_default() += frames,
                // Accounted for when its datagram completes or is given up.
                Decoded::Fragment(f) => {
                    if let Added::Complete { packet, frames: n, overlaps } = self.defrag.add(ts, *f) {
                        self.accounting.overlapping_fragments += overlaps;
                        let whole = decode::decode(decode::LINK_RAW, &packet, self.decap);
                        hops.extend(whole.tunnels);
                        (inner, frames) = (whole.inner, n);
                        continue;
                    }
                }
            }
            break None;
        };
        for g in self.defrag.take_given_up() {
            *self.accounting.skipped.entry(give_up_reason(g.why)).or_default() += g.frames;
        }
        // Without a segment or datagram inside, tunnel layers still carry outer flows.
        if work.is_some() || !hops.is_empty() {
            out.push(Work { ts, number, hops, inner: work, hint: None });
        }
    }

    fn finish(mut self, files: Vec<FileReport>, evicted: u64) -> Analysis {
        for g in self.defrag.finish() {
            *self.accounting.skipped.entry(give_up_reason(g.why)).or_default() += g.frames;
        }
        Analysis {
            evicted,
            accounting: self.accounting,
            files,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
        }
    }
}

/// Runs a packet through the table: the outer UDP flows of its tunnel layers (connections too,
/// as in Zeek), then its segment or datagram, which `observer` (if any) is told of. Returns the
/// ids of those outer flows.
fn deliver(table: &mut ConnTable, work: &Work, observer: &mut Option<&mut dyn FnMut(&Seen)>) -> Vec<u64> {
    let mut tunnel = None;
    let mut parents = Vec::new();
    for (i, hop) in work.hops.iter().enumerate() {
        if let Some(d) = &hop.udp {
            let ctx = Context { tunnel, hops: &work.hops[..i], parents: &parents };
            parents.push(table.udp(work.ts, &hop.ip, d, &ctx, None));
        }
        tunnel = Some(TunnelKey::new(hop.kind, hop.ip.src, hop.ip.dst));
    }
    let ctx = Context { tunnel, hops: &work.hops, parents: &parents };
    if let Some((ip, transport)) = work.inner {
        let conn_id = match &transport {
            Transport::Tcp(seg) => table.tcp(work.ts, &ip, seg, &ctx, work.hint),
            Transport::Udp(d) => table.udp(work.ts, &ip, d, &ctx, work.hint),
        };
        if let Some(observer) = observer {
            observer(&Seen { number: work.number, ts: work.ts, conn_id, ip, transport });
        }
    }
    parents
}

/// Packets delivered as one group: their table entries are all requested first, so the cache
/// misses of a group overlap instead of stalling one packet after another (bench/run.sh,
/// `check` on manyconn: 1.6 -> 1.25 s, conns 2.19 -> 1.80 s; groups of 8, 16 and 32 measured
/// alike).
const GROUP: usize = 16;

/// Starts loading the table entries `works` will touch, and notes where they are (untunnelled
/// packets only: the rest are few, and their keys need the table's tunnel ids).
fn prefetch(table: &ConnTable, works: &mut [Work]) {
    for work in works {
        if let (true, Some((ip, transport))) = (work.hops.is_empty(), &work.inner) {
            let (src, dst) = transport.sockets(ip);
            work.hint = Some(table.prefetch(transport.proto(), src, dst));
        }
    }
}

/// The single-table run: the front and the table on this thread (the reader on another with
/// `jobs` > 1).
struct Run<'o, 's> {
    observer: Option<&'o mut dyn FnMut(&Seen)>,
    sink: &'o mut Sink<'s>,
    table: ConnTable,
    front: Front,
    /// Packets waiting to be delivered as a group (`GROUP`).
    group: Vec<Work>,
}

impl Run<'_, '_> {
    fn sequential(&mut self, paths: &[PathBuf], progress: Option<&AtomicU64>) -> io::Result<Vec<FileReport>> {
        let decap = self.front.decap;
        read_timeline(paths, decap, progress, &mut |item| self.apply(item))
    }

    /// The reader thread decodes ahead; this thread keeps the table. A closed output stops
    /// both: the reader notices when its channel is gone.
    fn pipelined(&mut self, paths: &[PathBuf], progress: Option<&AtomicU64>) -> io::Result<Vec<FileReport>> {
        let decap = self.front.decap;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(IN_FLIGHT);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                let gone = || io::Error::from(io::ErrorKind::BrokenPipe);
                let reports = read_timeline(paths, decap, progress, &mut |item| {
                    batch.push(item);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        tx.send(Msg::Items(full)).map_err(|_| gone())?;
                    }
                    Ok(())
                });
                if let Ok(reports) = reports {
                    // The receiver may be gone (closed output): then nobody needs these.
                    let _ = tx.send(Msg::Items(batch)).and_then(|_| tx.send(Msg::Done(reports)));
                }
            });
            let mut files = Vec::new();
            for msg in rx {
                match msg {
                    Msg::Items(items) => {
                        for item in items {
                            self.apply(item)?;
                        }
                    }
                    Msg::Done(reports) => files = reports,
                }
            }
            Ok(files)
        })
    }

    /// Runs one record through the front; the table takes it with the group it completes.
    fn apply(&mut self, item: Item) -> io::Result<()> {
        self.front.take(item, &mut self.group);
        if self.group.len() == GROUP {
            self.deliver_group()?;
        }
        Ok(())
    }

    /// Runs the waiting packets through the table; ended connections go to the sink.
    fn deliver_group(&mut self) -> io::Result<()> {
        prefetch(&self.table, &mut self.group);
        // By reference, not drained: moving each packet out again was measurable.
        for work in &self.group {
            deliver(&mut self.table, work, &mut self.observer);
            for conn in self.table.drain_ended() {
                (self.sink)(conn)?;
            }
        }
        self.group.clear();
        Ok(())
    }
}

fn give_up_reason(why: GiveUp) -> Skip {
    match why {
        GiveUp::Incomplete => Skip::FragmentIncomplete,
        GiveUp::TooBig => Skip::FragmentTooBig,
    }
}
