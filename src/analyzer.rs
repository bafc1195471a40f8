//! The library's entry point: analyze captures into typed connection records, the socket
//! inventory and the summary, as the command line does.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use crate::filter::Filter;
use crate::flow::inventory::{Inventory, SocketStats, TopSockets};
use crate::flow::Conn;
use crate::inputs;
use crate::pipeline::{self, Analysis, FileReport, Observer, Options};
use crate::report::clock::Clock;
use crate::report::order::InOrder;
use crate::report::record::ConnRecord;
use crate::report::summary::Summary;

/// Records per message from the analysis thread to a `Connections` iterator.
const BATCH: usize = 256;
/// Batches in flight: bounds the memory between the analysis and a slow consumer.
const IN_FLIGHT: usize = 8;

/// Why an analysis could not read its input.
#[derive(Debug)]
pub enum Error {
    /// An input that is not a capture, cannot be opened or stopped being readable; the message
    /// is the one the command line prints after the path.
    Input {
        /// The file that could not be read (`-` for stdin).
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// Reading or writing failed outside any one input (a temporary file, a closed channel).
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    /// The first input of `analysis` that could not be read, as an error.
    fn of(analysis: &Analysis) -> Option<Error> {
        let file = analysis.files.iter().find(|f| f.error.is_some())?;
        Some(Error::Input { path: file.path.clone(), reason: file.error.clone().unwrap_or_default() })
    }
}

/// Analyzes captures with one set of options.
///
/// Inputs are files (pcap, pcapng, optionally gzip) or directories of them, read as one
/// timeline as the command line reads them; the records are those `sockscope conns --format
/// jsonl` prints, as typed values.
///
/// ```
/// use sockscope::{Analyzer, Options};
/// use sockscope::tcp::verdict::ConnState;
///
/// let analyzer = Analyzer::new(Options::default());
/// let mut refused = 0;
/// for conn in analyzer.connections(&["samples/teardowns.pcap"]) {
///     let conn = conn?;
///     if conn.conn_state == ConnState::REJ {
///         refused += 1;
///     }
/// }
/// assert_eq!(refused, 1);
/// # Ok::<(), sockscope::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Analyzer {
    /// How the inputs are analyzed.
    pub options: Options,
    /// Only the connections it matches are handed out (`None`: every one).
    pub filter: Option<Filter>,
}

impl Analyzer {
    /// An analyzer with these options (`Options::default()` is the command line's defaults,
    /// one thread).
    pub fn new(options: Options) -> Analyzer {
        Analyzer { options, filter: None }
    }

    /// Keeps only the connections `filter` matches, as `--filter` does.
    ///
    /// ```
    /// use sockscope::{Analyzer, Filter, Options};
    ///
    /// let udp = Analyzer::new(Options::default()).with_filter(Filter::parse("udp")?);
    /// let conns: Vec<_> = udp.connections(&["samples/udp_and_reuse.pcapng"]).collect::<Result<_, _>>()?;
    /// assert!(!conns.is_empty() && conns.iter().all(|c| c.proto == sockscope::types::Proto::Udp));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_filter(mut self, filter: Filter) -> Analyzer {
        self.filter = Some(filter);
        self
    }

    /// Every connection of the inputs, in order of first packet (or as they end, with
    /// `Options::end_order`), analyzed on a thread of its own while the iterator is read; memory
    /// stays bounded however large the inputs. An input that cannot be read ends the iteration
    /// with its error, after the connections of the inputs that could.
    ///
    /// ```
    /// use sockscope::{Analyzer, Options};
    ///
    /// let conns = Analyzer::new(Options::default()).connections(&["samples/teardowns.pcap"]);
    /// let ids: Vec<u64> = conns.map(|c| c.map(|c| c.id)).collect::<Result<_, _>>()?;
    /// assert_eq!(ids, (1..=12).collect::<Vec<_>>());
    /// # Ok::<(), sockscope::Error>(())
    /// ```
    pub fn connections<P: AsRef<Path>>(&self, inputs: &[P]) -> Connections {
        let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let analyzer = self.clone();
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let worker = std::thread::spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut send = |record: ConnRecord| -> io::Result<()> {
                batch.push(record);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    tx.send(full).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
                }
                Ok(())
            };
            let mut in_order = (!analyzer.options.end_order).then(InOrder::new);
            let analysis = analyzer.run(&inputs, None, &mut |_, record, kept| match &mut in_order {
                Some(in_order) => in_order.put(record.id, kept.then_some(record), &mut send),
                None if kept => send(record),
                None => Ok(()),
            })?;
            if let Some(in_order) = &mut in_order {
                in_order.finish(&mut send)?;
            }
            // The receiver may be gone: then nobody needs the rest.
            let _ = tx.send(batch);
            Ok(analysis)
        });
        Connections { rx: Some(rx), batch: Vec::new().into_iter(), worker: Some(worker), analysis: None }
    }

    /// Runs the analysis, telling `observer` (if any) of every TCP and UDP packet, in capture
    /// order, and handing `each` every connection as it ends with its record and whether the
    /// filter keeps it. Inputs that cannot be read are in the returned `Analysis.files`, with
    /// their errors; the run goes on with the others.
    pub fn run<P: AsRef<Path>>(
        &self,
        inputs: &[P],
        observer: Option<&mut Observer<'_>>,
        each: &mut dyn FnMut(&Conn, ConnRecord, bool) -> io::Result<()>,
    ) -> io::Result<Analysis> {
        let paths: Vec<PathBuf> = inputs.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let inputs = inputs::expand(&paths);
        let mut analysis =
            pipeline::analyze(&inputs::timeline(inputs.files), &self.options, observer, &mut |conn| {
                let record = ConnRecord::new(&conn, self.options.community_id_seed);
                let kept = self.keeps(&record);
                each(&conn, record, kept)
            })?;
        analysis.files.extend(inputs.skipped.into_iter().map(FileReport::skipped));
        Ok(analysis)
    }

    /// The socket inventory of the inputs' connections (those the filter keeps), and the run.
    ///
    /// ```
    /// use sockscope::flow::inventory::Role;
    /// use sockscope::{Analyzer, Options};
    ///
    /// let (sockets, _) = Analyzer::new(Options::default()).sockets(&["samples/teardowns.pcap"])?;
    /// let servers = sockets.iter().filter(|s| s.role == Role::Server).count();
    /// assert_eq!(servers, 11);
    /// # Ok::<(), sockscope::Error>(())
    /// ```
    pub fn sockets<P: AsRef<Path>>(&self, inputs: &[P]) -> Result<(Vec<SocketStats>, Analysis), Error> {
        let mut inventory = Inventory::default();
        let analysis = self.unnumbered().run(inputs, None, &mut |conn, _, kept| {
            if kept {
                inventory.add(conn);
            }
            Ok(())
        })?;
        match Error::of(&analysis) {
            Some(e) => Err(e),
            None => Ok((inventory.finish(), analysis)),
        }
    }

    /// Totals over the inputs' connections (those the filter keeps): by state, handshake and
    /// teardown; with the run's packet accounting and the busiest sockets.
    ///
    /// ```
    /// use sockscope::{Analyzer, Options};
    ///
    /// let report = Analyzer::new(Options::default()).summary(&["samples/teardowns.pcap"])?;
    /// assert!(report.analysis.accounting.balances());
    /// assert_eq!(report.analysis.accounting.tcp, report.analysis.accounting.total);
    /// # Ok::<(), sockscope::Error>(())
    /// ```
    pub fn summary<P: AsRef<Path>>(&self, inputs: &[P]) -> Result<SummaryReport, Error> {
        let (mut summary, mut inventory) = (Summary::default(), Inventory::default());
        let analysis = self.unnumbered().run(inputs, None, &mut |conn, record, kept| {
            if kept {
                summary.add(&record);
                inventory.add(conn);
            }
            Ok(())
        })?;
        match Error::of(&analysis) {
            Some(e) => Err(e),
            None => Ok(SummaryReport { summary, top_sockets: inventory.top(), analysis }),
        }
    }

    /// For the reports that show no connection ids: see `Options::numbered`.
    fn unnumbered(&self) -> Analyzer {
        let mut analyzer = self.clone();
        analyzer.options.numbered = false;
        analyzer
    }

    fn keeps(&self, record: &ConnRecord) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(record))
    }
}

/// What `Analyzer::summary` found.
pub struct SummaryReport {
    /// Totals over the connections the filter kept: by state, handshake and teardown,
    /// retransmissions, RTTs.
    pub summary: Summary,
    /// The busiest sockets of those connections (`Analyzer::sockets` lists them all).
    pub top_sockets: TopSockets,
    /// Packet accounting, the files' reports and the time range, over all packets.
    pub analysis: Analysis,
}

impl SummaryReport {
    /// The summary as `sockscope summary` prints it, times in `clock`'s zone.
    pub fn write(self, out: &mut dyn io::Write, clock: &Clock) -> io::Result<()> {
        self.summary.write(out, &self.analysis, &self.top_sockets, clock)
    }
}

/// The connections of `Analyzer::connections`, as they come from the analysis thread.
pub struct Connections {
    rx: Option<Receiver<Vec<ConnRecord>>>,
    batch: std::vec::IntoIter<ConnRecord>,
    worker: Option<JoinHandle<io::Result<Analysis>>>,
    analysis: Option<Analysis>,
}

impl Connections {
    /// The run's packet accounting, files and time range, once every connection was read.
    pub fn analysis(&self) -> Option<&Analysis> {
        self.analysis.as_ref()
    }

    /// After the last batch: the analysis thread's outcome, as the iteration's last item.
    fn finish(&mut self) -> Option<Result<ConnRecord, Error>> {
        let worker = self.worker.take()?;
        match worker.join().expect("the analysis thread does not panic") {
            Ok(analysis) => {
                let error = Error::of(&analysis);
                self.analysis = Some(analysis);
                error.map(Err)
            }
            Err(e) => Some(Err(Error::Io(e))),
        }
    }
}

impl Iterator for Connections {
    type Item = Result<ConnRecord, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.batch.next() {
                return Some(Ok(record));
            }
            match self.rx.as_ref().map(Receiver::recv) {
                Some(Ok(batch)) => self.batch = batch.into_iter(),
                Some(Err(_)) => {
                    self.rx = None;
                    return self.finish();
                }
                None => return None,
            }
        }
    }
}

impl Drop for Connections {
    /// Stops the analysis: its next hand-over fails once nobody receives.
    fn drop(&mut self) {
        self.rx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
