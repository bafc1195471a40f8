//! The execution layer: capture files become one timeline of decoded records (`source`), the
//! intake accounts for each and reassembles fragments (`intake`), and the connection table (or
//! several, `sharded`) turns packets into connections, handed to a sink as they end.
//!
//! Which threads do the work is chosen once per run (`Strategy`); every strategy gives the same
//! connections, ids and accounting.

mod batch;
mod deliver;
mod intake;
mod sharded;
mod single;
mod source;
mod staged;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use serde::Serialize;

use crate::decode::{Ip, Other, Skip, TcpSegment, UdpDatagram};
use crate::flow::table::Timeouts;
use crate::flow::Conn;
use crate::types::{Addr, Proto, Timestamp};

/// Where every packet went: `tcp + udp + other + skipped == total`.
#[derive(Clone, Debug, Default)]
pub struct Accounting {
    /// Packet records read over all files, damaged ones included.
    pub total: u64,
    /// Packets that carried a TCP segment (innermost, through tunnels; a reassembled datagram
    /// counts as the fragments it was made of).
    pub tcp: u64,
    /// Packets that carried a UDP datagram, counted as `tcp` is.
    pub udp: u64,
    /// Packets of other protocols, by kind.
    pub other: BTreeMap<Other, u64>,
    /// Packets not attributed to any protocol, by reason.
    pub skipped: BTreeMap<Skip, u64>,
    /// Packets whose timestamp is earlier than the one before (counted, still analyzed).
    pub time_went_backwards: u64,
    /// Fragments that overlapped bytes already held (the first arrival's bytes were kept).
    pub overlapping_fragments: u64,
    /// Packets the capture kept only part of (snap length); still analyzed from their headers.
    pub snaplen_cut: u64,
}

impl Accounting {
    /// Packets of other protocols, all kinds together.
    pub fn other_total(&self) -> u64 {
        self.other.values().sum()
    }

    /// Skipped packets, all reasons together.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Whether every packet is in exactly one bucket: `tcp + udp + other + skipped == total`.
    pub fn balances(&self) -> bool {
        self.tcp + self.udp + self.other_total() + self.skipped_total() == self.total
    }

    /// Adds another run's counts to these.
    pub fn add(&mut self, other: &Accounting) {
        self.total += other.total;
        self.tcp += other.tcp;
        self.udp += other.udp;
        for (k, n) in &other.other {
            *self.other.entry(*k).or_default() += n;
        }
        for (k, n) in &other.skipped {
            *self.skipped.entry(*k).or_default() += n;
        }
        self.time_went_backwards += other.time_went_backwards;
        self.overlapping_fragments += other.overlapping_fragments;
        self.snaplen_cut += other.snaplen_cut;
    }
}

/// What happened to one input file.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// The file's path (`-` for stdin).
    pub path: PathBuf,
    /// `pcap` or `pcapng`; `None` when the file could not be opened as a capture.
    pub format: Option<&'static str>,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// Packet records read from it, damaged ones included.
    pub packets: u64,
    /// A problem after which the file's earlier packets still count (a cut-short file).
    pub warning: Option<String>,
    /// A problem that stopped the file from being read (not a capture, unreadable ...).
    pub error: Option<String>,
}

impl FileReport {
    /// A file found in a directory and passed over: it holds no capture.
    pub fn skipped(path: PathBuf) -> Self {
        FileReport {
            path,
            format: None,
            gzip: true,
            packets: 0,
            warning: Some(crate::inputs::SKIPPED.into()),
            error: None,
        }
    }
}

/// What a run found besides the connections, which go to the sink as they end.
#[derive(Default)]
pub struct Analysis {
    /// Where every packet went.
    pub accounting: Accounting,
    /// One report per input file, in the order of the paths given.
    pub files: Vec<FileReport>,
    /// The earliest packet time; `None` without packets.
    pub first_ts: Option<Timestamp>,
    /// The latest packet time; `None` without packets.
    pub last_ts: Option<Timestamp>,
    /// Connections ended early because `max_connections` were live.
    pub evicted: u64,
}

impl Analysis {
    /// Whether any file could not be read (to the end).
    pub fn had_errors(&self) -> bool {
        self.files.iter().any(|f| f.error.is_some())
    }

    /// The run's warnings, one line each as the command line prints them after `warning: `:
    /// connections ended early, then each file's problem after which its earlier packets still
    /// count.
    pub fn warnings(&self) -> Vec<String> {
        let evicted = (self.evicted > 0)
            .then(|| format!("{} connection(s) ended early to stay within --max-connections", self.evicted));
        let files =
            self.files.iter().filter_map(|f| Some(format!("{}: {}", f.path.display(), f.warning.as_ref()?)));
        evicted.into_iter().chain(files).collect()
    }

    /// Two runs as one: their files, their packets, the time both span.
    pub fn merge(mut self, other: Analysis) -> Analysis {
        self.accounting.add(&other.accounting);
        self.files.extend(other.files);
        self.first_ts = self.first_ts.min(other.first_ts).or(self.first_ts).or(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        self.evicted += other.evicted;
        self
    }
}

/// The default bound on live connections: far above real traffic, low enough that a flood of
/// new connections cannot exhaust memory.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000_000;

/// How a run analyzes its input.
#[derive(Clone, Debug)]
pub struct Options {
    /// Inactivity timeouts for TCP and UDP.
    pub timeouts: Timeouts,
    /// Most live connections held at once; beyond it the least recently active end early.
    pub max_connections: usize,
    /// Look through tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, AYIYA, GTP-U).
    pub decap: bool,
    /// Threads: 1 does everything on one; more are used as `Strategy::choose` says.
    pub jobs: usize,
    /// The sink takes connections in the order they end, which only one table can tell.
    pub end_order: bool,
    /// Bytes read so far over all files, for a progress display (updated every few thousand
    /// records).
    pub progress: Option<Arc<AtomicU64>>,
    /// The seed of the records' Community IDs (0, the spec's default, unless the sites whose
    /// IDs are compared agreed on another); `None` leaves the IDs empty, for runs that print
    /// none (the terminal table, `summary`, `sockets`, `check`), which then do not hash.
    pub community_id_seed: Option<u16>,
    /// Number the connections 1, 2, 3 ... in order of first packet. Runs that print no ids
    /// (`summary`, `sockets`) turn it off: with several tables the ids then keep that order but
    /// have gaps, and the numbers of the open connections are not held (16 bytes each).
    pub numbered: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeouts: Timeouts::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            decap: true,
            jobs: 1,
            end_order: false,
            progress: None,
            community_id_seed: Some(0),
            numbered: true,
        }
    }
}

/// A transport packet and the connection it was attributed to (for `show`).
#[derive(Clone, Copy, Debug)]
pub struct ObservedPacket {
    /// 1-based packet number over the whole run.
    pub number: u64,
    /// Its capture time.
    pub ts: Timestamp,
    /// Id of the connection it was attributed to.
    pub conn_id: u64,
    /// Its (innermost) IP header.
    pub ip: Ip,
    /// Its TCP segment or UDP datagram.
    pub transport: Transport,
}

impl ObservedPacket {
    /// (source, destination) sockets of the packet.
    pub fn sockets(&self) -> (Addr, Addr) {
        self.transport.sockets(&self.ip)
    }
}

/// A packet's transport header.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// A TCP segment.
    Tcp(TcpSegment),
    /// A UDP datagram.
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

/// Told of every TCP and UDP packet, in capture order, with the connection it joined.
pub type Observer<'o> = dyn FnMut(&ObservedPacket) + 'o;

/// Where ended connections go, as they end (not in id order: see `report::order`).
/// An error (a closed output pipe) stops the run.
pub type Sink<'s> = dyn FnMut(Conn) -> io::Result<()> + 's;

/// Which threads do the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// Everything on this thread, or with the reader on a second thread (`pipelined`).
    Single { pipelined: bool },
    /// Reading, one table, and the sink each on a thread of their own: for end order, which
    /// only one table can tell.
    Staged,
    /// Connections split over this many tables, each on a thread, next to the intake's.
    Sharded(usize),
}

impl Strategy {
    /// An observer sees packets in capture order, so it keeps one table on this thread. A
    /// bound on live connections below the default is expected to be reached: which connections
    /// it ends early is decided over all of them, which only one table sees.
    fn choose(opts: &Options, observed: bool) -> Strategy {
        match opts.jobs {
            0 | 1 => Strategy::Single { pipelined: false },
            _ if observed => Strategy::Single { pipelined: true },
            _ if opts.end_order || opts.max_connections < DEFAULT_MAX_CONNECTIONS => Strategy::Staged,
            jobs => Strategy::Sharded(jobs),
        }
    }
}

/// Reads the files in order as one timeline (the pieces of one rotated capture), telling
/// `observer` about every TCP and UDP packet and handing each connection to `sink` when it ends.
pub fn analyze(
    paths: &[PathBuf],
    opts: &Options,
    observer: Option<&mut Observer<'_>>,
    sink: &mut Sink<'_>,
) -> io::Result<Analysis> {
    match Strategy::choose(opts, observer.is_some()) {
        Strategy::Single { pipelined } => single::analyze(paths, opts, pipelined, observer, sink),
        Strategy::Staged => staged::analyze(paths, opts, sink),
        Strategy::Sharded(tables) => sharded::analyze(paths, opts, tables, sink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strategy_follows_threads_order_and_observer() {
        let opts = |jobs, end_order| Options { jobs, end_order, ..Options::default() };
        assert_eq!(Strategy::choose(&opts(1, false), false), Strategy::Single { pipelined: false });
        assert_eq!(Strategy::choose(&opts(1, true), true), Strategy::Single { pipelined: false });
        assert_eq!(Strategy::choose(&opts(2, false), true), Strategy::Single { pipelined: true });
        assert_eq!(Strategy::choose(&opts(3, true), false), Strategy::Staged);
        assert_eq!(Strategy::choose(&opts(3, false), false), Strategy::Sharded(3));
        let bounded = Options { max_connections: 1000, ..opts(3, false) };
        assert_eq!(Strategy::choose(&bounded, false), Strategy::Staged);
    }
}
