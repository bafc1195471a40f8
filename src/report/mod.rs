//! Printers: one module per output format. They only format what the analysis produced.

#[cfg(feature = "parquet")]
pub mod arrow;
pub mod clock;
pub mod csv;
pub mod diff;
pub mod json;
pub mod jsonl;
pub mod ladder;
pub mod order;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod record;
pub mod row;
pub mod summary;
pub mod table;
pub mod verdicts;
pub mod writer;
pub mod zeek;

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::flow::inventory::SocketStats;
use crate::pipeline::{Accounting, Analysis};
use record::ConnRecord;

/// Output formats of `sockets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SocketFormat {
    /// An aligned text table, one socket per row.
    Table,
    /// One JSON document: the sockets, the files read and the packet accounting.
    Json,
    /// One JSON object per socket per line.
    Jsonl,
    /// CSV with a header row, one socket per row.
    Csv,
}

/// Output formats of `conns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table, in id order.
    Table,
    /// One JSON document: the connections, the files read and the packet accounting.
    Json,
    /// One JSON object per connection per line.
    Jsonl,
    /// CSV with a header row, nested fields flattened to columns.
    Csv,
    /// Zeek's conn.log TSV layout (connections only).
    Zeek,
    /// Apache Parquet, the CSV's columns (connections only; binary: use -o FILE).
    Parquet,
}

/// The ending of `output`'s name, lower case; none for a directory (`--per-file`).
fn ending(output: Option<&std::path::Path>, per_file: bool) -> Option<String> {
    let name = output.filter(|_| !per_file)?.file_name()?.to_str()?;
    Some(name.rsplit_once('.')?.1.to_ascii_lowercase())
}

impl Format {
    /// The format an output file's name asks for (`-o out.parquet`), else the table.
    pub fn of_file(output: Option<&std::path::Path>, per_file: bool) -> Format {
        match ending(output, per_file).as_deref() {
            Some("jsonl" | "ndjson") => Format::Jsonl,
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some("log") => Format::Zeek,
            Some("parquet") => Format::Parquet,
            _ => Format::Table,
        }
    }

    /// The file name ending of an output in this format (`--per-file -o DIR`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Zeek => "conn.log",
            Format::Parquet => "parquet",
        }
    }
}

impl SocketFormat {
    /// The format an output file's name asks for (`-o sockets.csv`), else the table.
    pub fn of_file(output: Option<&std::path::Path>, per_file: bool) -> SocketFormat {
        match ending(output, per_file).as_deref() {
            Some("jsonl" | "ndjson") => SocketFormat::Jsonl,
            Some("json") => SocketFormat::Json,
            Some("csv") => SocketFormat::Csv,
            _ => SocketFormat::Table,
        }
    }

    /// The file name ending of an output in this format (`--per-file -o DIR`).
    pub fn extension(self) -> &'static str {
        match self {
            SocketFormat::Table => "sockets.txt",
            SocketFormat::Json => "sockets.json",
            SocketFormat::Jsonl => "sockets.jsonl",
            SocketFormat::Csv => "sockets.csv",
        }
    }
}

/// The packet accounting as printed: totals per bucket and the breakdown of other and skipped.
#[derive(Debug, Serialize)]
pub struct AccountingRecord {
    /// Packet records read, damaged ones included.
    pub total: u64,
    /// Packets that carried a TCP segment.
    pub tcp: u64,
    /// Packets that carried a UDP datagram.
    pub udp: u64,
    /// Packets of other protocols.
    pub other: u64,
    /// Packets not attributed to any protocol.
    pub skipped: u64,
    /// `other` by kind, as printed (e.g. `icmp`, `ethertype 0x88cc`).
    pub other_by_kind: BTreeMap<String, u64>,
    /// `skipped` by reason, as printed (e.g. `truncated TCP header`).
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Packets stamped earlier than the packet before them (still analyzed).
    pub time_went_backwards: u64,
    /// Fragments that overlapped bytes already held (the first arrival's bytes were kept).
    pub overlapping_fragments: u64,
    /// Packets cut by the snap length (analyzed from their headers).
    pub snaplen_cut: u64,
}

impl AccountingRecord {
    /// The record of a run's accounting.
    pub fn new(a: &Accounting) -> Self {
        AccountingRecord {
            total: a.total,
            tcp: a.tcp,
            udp: a.udp,
            other: a.other_total(),
            skipped: a.skipped_total(),
            other_by_kind: a.other.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            skipped_by_reason: a.skipped.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            time_went_backwards: a.time_went_backwards,
            overlapping_fragments: a.overlapping_fragments,
            snaplen_cut: a.snaplen_cut,
        }
    }
}

/// Zeek's history letters and what each means (upper case: the originator did it; lower case:
/// the responder).
pub const HISTORY_LETTERS: [(char, &str); 12] = [
    ('S', "a SYN without the ACK bit"),
    ('H', "a SYN+ACK (the handshake's second packet)"),
    ('A', "a pure ACK"),
    ('D', "a packet with payload (data)"),
    ('F', "a packet with the FIN bit"),
    ('R', "a packet with the RST bit"),
    ('T', "a retransmitted packet"),
    ('W', "a packet advertising a zero window"),
    ('G', "a content gap: bytes acknowledged but never captured"),
    ('I', "an inconsistent packet (FIN and RST together)"),
    ('Q', "a multi-flag packet (SYN and FIN, or SYN and RST)"),
    ('^', "the direction was flipped: the first packet's sender was the responder"),
];

/// The legend `conns --help` ends with: every conn_state code and history letter in a line.
pub fn legend() -> String {
    let mut text = String::from("conn_state (Zeek's codes):\n");
    for state in crate::tcp::verdict::ConnState::ALL {
        text.push_str(&format!("  {:<7} {}\n", state.code(), state.meaning()));
    }
    text.push_str("\nhistory (upper case: by the originator, lower case: by the responder):\n");
    for (letter, meaning) in HISTORY_LETTERS {
        text.push_str(&format!("  {letter}  {meaning}\n"));
    }
    text
}

/// `1 connection`, `2 connections`: a count and its noun.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The socket inventory in `format`; `analysis` for the JSON document's files and packets.
pub fn write_sockets(
    out: &mut dyn Write,
    format: SocketFormat,
    sockets: &[SocketStats],
    analysis: &Analysis,
    color: bool,
) -> io::Result<()> {
    match format {
        SocketFormat::Table => table::write_sockets(out, sockets, color),
        SocketFormat::Json => json::write_sockets(out, sockets, analysis),
        SocketFormat::Jsonl => jsonl::write_sockets(out, sockets),
        SocketFormat::Csv => csv::write_sockets(out, sockets),
    }
}

/// One output format of `conns`: records are formatted one at a time, in the order they are
/// given, into the output buffer.
pub trait Exporter {
    /// Before the first record: a header, a document's opening.
    fn begin(&mut self, _out: &mut Vec<u8>) -> io::Result<()> {
        Ok(())
    }

    /// One record.
    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()>;

    /// After the last record: a closing, a footer; `analysis` has the run's files and packets.
    fn end(&mut self, _out: &mut Vec<u8>, _analysis: &Analysis) -> io::Result<()> {
        Ok(())
    }

    /// For a format whose records do not depend on each other (a line each, nothing between
    /// them): a copy that formats records exactly as this one, on another thread.
    fn fork(&self) -> Option<Box<dyn Exporter + Send>> {
        None
    }
}

/// The exporter of `format`; the table's `layout`, `color` and `clock`, `uid_seed` for Zeek's
/// uids.
pub fn exporter(
    format: Format,
    layout: table::Layout,
    color: bool,
    clock: &clock::Clock,
    uid_seed: u64,
) -> io::Result<Box<dyn Exporter>> {
    Ok(match format {
        Format::Table => Box::new(table::TableExporter::new(layout, color, clock.clone())),
        Format::Json => Box::<json::Json>::default(),
        Format::Jsonl => Box::new(jsonl::Jsonl),
        Format::Csv => Box::new(csv::Csv),
        Format::Zeek => Box::new(zeek::Zeek::new(uid_seed)),
        #[cfg(feature = "parquet")]
        Format::Parquet => Box::new(parquet::Parquet::new()?),
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => {
            return Err(io::Error::other("this sockscope was built without the parquet feature"))
        }
    })
}
