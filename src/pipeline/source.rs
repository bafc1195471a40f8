//! The input files as one timeline of decoded records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::FileReport;
use crate::capture::{CaptureReader, FileKind, Record};
use crate::decode::{self, Packet};
use crate::types::Timestamp;

/// One capture record, decoded: what reading hands to the intake.
pub(super) enum DecodedRecord {
    /// A record the capture file itself marks as damaged.
    Damaged(&'static str),
    /// The packet, its time, and whether the snap length cut it.
    Packet(Timestamp, Packet, bool),
}

/// One input file being read: its reader and what it reports.
struct SourceFile {
    index: usize,
    reader: CaptureReader,
    report: FileReport,
    /// Bytes already added to the progress count.
    reported: u64,
    /// Time of its last frame, given to damaged records (which carry none).
    last_ts: Timestamp,
}

impl SourceFile {
    /// Opens a file; a file that cannot be read comes back as its report.
    fn open(index: usize, path: &Path) -> Result<SourceFile, FileReport> {
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
                Ok(SourceFile { index, reader, report, reported: 0, last_ts: Timestamp::default() })
            }
            Err(e) => {
                report.error = Some(e.to_string());
                Err(report)
            }
        }
    }

    /// The next record, decoded, with the time it sorts by; `None` at the end of the file.
    fn next(&mut self, decap: bool, progress: Option<&AtomicU64>) -> Option<(Timestamp, DecodedRecord)> {
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
                let packet = decode::decode(f.link_type, f.data, decap);
                Some((f.ts, DecodedRecord::Packet(f.ts, packet, cut)))
            }
            Ok(Some(Record::Bad(why))) => {
                self.report.packets += 1;
                Some((self.last_ts, DecodedRecord::Damaged(why)))
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

/// A file opened but not yet merged into the timeline, with its first record.
type Staged = (SourceFile, Timestamp, DecodedRecord);

/// Reads the files as one timeline, handing every decoded record to `each` in time order.
/// `paths` come in order of first packet (`inputs::timeline`); a file is opened only when the
/// timeline reaches its first packet, so rotated pieces are read one after another while files
/// whose times overlap (say, two interfaces captured apart) are merged packet by packet. Reports
/// come back in the order of `paths`.
pub(super) fn read_timeline(
    paths: &[PathBuf],
    decap: bool,
    progress: Option<&AtomicU64>,
    each: &mut dyn FnMut(DecodedRecord) -> io::Result<()>,
) -> io::Result<Vec<FileReport>> {
    let mut reports: Vec<Option<FileReport>> = vec![None; paths.len()];
    // Open files with their next record; the heap orders them by (time, file).
    let mut open: Vec<Option<(SourceFile, DecodedRecord)>> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(Timestamp, usize, usize)>> = BinaryHeap::new();
    let mut staged: Option<Staged> = None;
    let mut next_path = 0;
    loop {
        while staged.is_none() && next_path < paths.len() {
            staged = open_next(next_path, &paths[next_path], decap, progress, &mut reports);
            next_path += 1;
        }
        let earliest = heap.peek().map(|Reverse((ts, ..))| *ts);
        if let Some((source, ts, record)) = staged.take_if(|(_, ts, _)| earliest.is_none_or(|e| *ts <= e)) {
            heap.push(Reverse((ts, source.index, open.len())));
            open.push(Some((source, record)));
            continue;
        }
        let Some(Reverse((_, _, slot))) = heap.pop() else { break };
        let (mut source, record) = open[slot].take().expect("a slot in the heap is open");
        each(record)?;
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

/// Opens the file at `index` with its first record; a file that cannot be read or holds no
/// record is reported at once.
fn open_next(
    index: usize,
    path: &Path,
    decap: bool,
    progress: Option<&AtomicU64>,
    reports: &mut [Option<FileReport>],
) -> Option<Staged> {
    match SourceFile::open(index, path) {
        Ok(mut source) => match source.next(decap, progress) {
            Some((ts, record)) => Some((source, ts, record)),
            None => {
                reports[index] = Some(source.finish());
                None
            }
        },
        Err(report) => {
            reports[index] = Some(report);
            None
        }
    }
}
