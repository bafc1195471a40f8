//! Connections written as they end: in order of first packet (`order`), or in end order on
//! request, through the exporter of the chosen format, in pieces of `OUT_CHUNK`.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use super::order::InOrder;
use super::record::ConnRecord;
use super::Exporter;
use crate::pipeline::Analysis;

/// The order `conns` writes connections in (`--order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// By id: the order of each connection's first packet (the contract's order).
    FirstSeen,
    /// As connections end: nothing is held back, for unbounded inputs.
    End,
}

/// Output is written in pieces of about this size.
const OUT_CHUNK: usize = 64 << 10;

/// Writes ended connections to an output in one format and order.
pub struct ConnWriter<'a> {
    /// `None` in end order.
    in_order: Option<InOrder>,
    output: Output<'a>,
}

/// Where records go once their turn has come: formatted, then written.
struct Output<'a> {
    out: &'a mut dyn Write,
    exporter: Box<dyn Exporter>,
    /// Records are formatted straight into this buffer, written out in pieces of `OUT_CHUNK`.
    pending: Vec<u8>,
    /// Formats the records on threads of their own (`with_formatters`).
    formatters: Option<Formatters>,
}

impl<'a> ConnWriter<'a> {
    /// Starts the output (headers, the JSON document's opening) through `exporter`.
    pub fn new(out: &'a mut dyn Write, mut exporter: Box<dyn Exporter>, order: Order) -> io::Result<Self> {
        let mut pending = Vec::with_capacity(OUT_CHUNK + (4 << 10));
        exporter.begin(&mut pending)?;
        let in_order = (order == Order::FirstSeen).then(InOrder::new);
        Ok(ConnWriter { in_order, output: Output { out, exporter, pending, formatters: None } })
    }

    /// Formats records on `threads` threads of their own, when the format's records do not
    /// depend on each other: once the analysis is done, formatting the connections still open
    /// at the end is most of the work left (all of it on a scan). Not in end order, which is for
    /// live inputs: there records go out as they come rather than a batch at a time.
    pub fn with_formatters(mut self, threads: usize) -> Self {
        if self.in_order.is_some() {
            let forks: Option<Vec<_>> = (0..threads).map(|_| self.output.exporter.fork()).collect();
            self.output.formatters = forks.filter(|f| !f.is_empty()).map(Formatters::spawn);
        }
        self
    }

    /// Takes one ended connection.
    pub fn conn(&mut self, record: ConnRecord) -> io::Result<()> {
        let ConnWriter { in_order, output } = self;
        match in_order {
            // Its turn: straight out, not moved through `put` (a record is over 500 bytes).
            Some(in_order) if in_order.is_next(record.id) => {
                output.write(record)?;
                in_order.passed(&mut |r| output.write(r))
            }
            _ => self.put(record.id, Some(record)),
        }
    }

    /// Passes over a connection that is not to be printed (filtered out), so that later ones
    /// need not wait for it.
    pub fn skip(&mut self, id: u64) -> io::Result<()> {
        self.put(id, None)
    }

    /// Hands out what still waits and starts numbering again: the next input (`--per-file`)
    /// counts its connections from 1.
    pub fn next_input(&mut self) -> io::Result<()> {
        if let Some(in_order) = &mut self.in_order {
            in_order.finish(&mut |r| self.output.write(r))?;
            *in_order = InOrder::new();
        }
        Ok(())
    }

    /// Ends the output: the table, or the JSON document's closing with files and accounting.
    pub fn finish(mut self, analysis: &Analysis) -> io::Result<()> {
        // Every id has ended by now, so nothing waits; this only guards against a gap.
        if let Some(in_order) = &mut self.in_order {
            in_order.finish(&mut |r| self.output.write(r))?;
        }
        let output = &mut self.output;
        output.drain_formatters()?;
        output.exporter.end(&mut output.pending, analysis)?;
        output.flush()
    }

    fn put(&mut self, id: u64, record: Option<ConnRecord>) -> io::Result<()> {
        match &mut self.in_order {
            Some(in_order) => in_order.put(id, record, &mut |r| self.output.write(r)),
            None => record.map_or(Ok(()), |r| self.output.write(r)),
        }
    }
}

impl Output<'_> {
    /// Formats one record into the output buffer (or has the formatters do it).
    fn write(&mut self, record: ConnRecord) -> io::Result<()> {
        let Some(formatters) = &mut self.formatters else {
            self.exporter.record(&mut self.pending, &record)?;
            if self.pending.len() >= OUT_CHUNK {
                self.flush()?;
            }
            return Ok(());
        };
        // Only the exporter's opening can be waiting here: it goes first.
        if !self.pending.is_empty() {
            self.out.write_all(&self.pending)?;
            self.pending.clear();
        }
        formatters.take(record, &mut *self.out)
    }

    /// Writes every record the formatters have, and those gathering for them.
    fn drain_formatters(&mut self) -> io::Result<()> {
        if let Some(formatters) = &mut self.formatters {
            self.out.write_all(&self.pending)?;
            self.pending.clear();
            formatters.drain(&mut *self.out)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }
}

/// What was formatted goes out even when the run stops early, as with a `BufWriter`.
impl Drop for Output<'_> {
    fn drop(&mut self) {
        let _ = self.drain_formatters();
        let _ = self.flush();
    }
}

/// Records per batch a formatter takes.
const BATCH: usize = 1024;

/// Threads formatting batches of records with forks of the exporter, in turn: batch k goes to
/// thread k mod n, and is written once it comes back, after those sent before it, so the order
/// is kept. Each holds one batch at a time, so the records in flight stay a few batches. The
/// writer only gathers and writes; the formatters share the cores with the rest of the run,
/// which at its end is the merging of the tables' connections.
struct Formatters {
    threads: Vec<Formatter>,
    /// Records gathering for the next batch.
    batch: Vec<ConnRecord>,
    /// Batches sent so far, and how many of them are not yet written.
    sent: usize,
    in_flight: usize,
    /// Emptied vectors back from the formatters, used again.
    spare: Vec<(Vec<ConnRecord>, Vec<u8>)>,
}

/// A batch of records, and the buffer to format them into.
type Job = (Vec<ConnRecord>, Vec<u8>);

struct Formatter {
    to: Option<SyncSender<Job>>,
    /// The batch back, emptied, with its bytes.
    from: Receiver<(io::Result<()>, Job)>,
    thread: Option<JoinHandle<()>>,
}

impl Formatters {
    fn spawn(forks: Vec<Box<dyn Exporter + Send>>) -> Formatters {
        let threads = forks.into_iter().map(Formatter::spawn).collect();
        Formatters { threads, batch: Vec::with_capacity(BATCH), sent: 0, in_flight: 0, spare: Vec::new() }
    }

    /// Takes the next record; writes the batches already formatted.
    fn take(&mut self, record: ConnRecord, out: &mut dyn Write) -> io::Result<()> {
        self.batch.push(record);
        if self.batch.len() == BATCH {
            self.send(out)?;
        }
        Ok(())
    }

    /// Sends the batch gathered to the next formatter in turn, once that one's last batch is
    /// written; then writes those already formatted.
    fn send(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.in_flight == self.threads.len() {
            self.write_oldest(out, true)?;
        }
        let (records, bytes) = self.spare.pop().unwrap_or_else(|| (Vec::with_capacity(BATCH), Vec::new()));
        let batch = std::mem::replace(&mut self.batch, records);
        let formatter = &self.threads[self.sent % self.threads.len()];
        formatter.to.as_ref().expect("open until dropped").send((batch, bytes)).map_err(|_| gone())?;
        self.sent += 1;
        self.in_flight += 1;
        while self.in_flight > 0 && self.write_oldest(out, false)? {}
        Ok(())
    }

    /// Writes the oldest batch not yet written, waiting for it if `wait`; false when it is not
    /// formatted yet.
    fn write_oldest(&mut self, out: &mut dyn Write, wait: bool) -> io::Result<bool> {
        let from = &self.threads[(self.sent - self.in_flight) % self.threads.len()].from;
        let (formatted, (records, bytes)) = if wait {
            from.recv().map_err(|_| gone())?
        } else {
            match from.try_recv() {
                Ok(done) => done,
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => return Err(gone()),
            }
        };
        self.in_flight -= 1;
        formatted?;
        out.write_all(&bytes)?;
        self.spare.push((records, bytes));
        Ok(true)
    }

    /// Every record taken, formatted and written, in order.
    fn drain(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.batch.is_empty() {
            self.send(out)?;
        }
        while self.in_flight > 0 {
            self.write_oldest(out, true)?;
        }
        Ok(())
    }
}

impl Formatter {
    fn spawn(mut fork: Box<dyn Exporter + Send>) -> Formatter {
        let (to, jobs) = sync_channel::<Job>(1);
        let (done, from) = sync_channel(1);
        let thread = std::thread::spawn(move || {
            for (mut records, mut bytes) in jobs {
                bytes.clear();
                let formatted = records.iter().try_for_each(|r| fork.record(&mut bytes, r));
                // The records are dropped here, on this thread.
                records.clear();
                if done.send((formatted, (records, bytes))).is_err() {
                    return;
                }
            }
        });
        Formatter { to: Some(to), from, thread: Some(thread) }
    }
}

/// A formatter's thread ends once nothing more can be sent to it.
impl Drop for Formatter {
    fn drop(&mut self) {
        drop(self.to.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A formatter's thread stopped: only after a panic, which it reports itself.
fn gone() -> io::Error {
    io::Error::other("the formatting thread stopped")
}

#[cfg(test)]
mod tests {
    use super::super::{exporter, Format};
    use super::*;
    use crate::decode::tunnel::TunnelKind;

    /// The samples' connections (TCP with and without handshakes and teardowns, UDP, IPv6) plus
    /// one inside a tunnel (the last: one that waits when they come in reverse), numbered 1, 2, 3 ...
    fn sample_records() -> Vec<ConnRecord> {
        let mut records: Vec<_> = ["teardowns.pcap", "udp_and_reuse.pcapng", "ipv6.pcap"]
            .into_iter()
            .flat_map(super::super::record::of_sample)
            .collect();
        let hop = super::super::record::TunnelHop {
            kind: TunnelKind::Vxlan,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
        };
        records.last_mut().unwrap().tunnel =
            Some(super::super::record::TunnelRecord { path: vec![hop], parents: vec![7] });
        for (i, r) in records.iter_mut().enumerate() {
            r.id = i as u64 + 1;
        }
        records
    }

    fn written(format: Format, records: impl Iterator<Item = ConnRecord>) -> String {
        written_by(format, records, 0)
    }

    /// `formatters`: threads formatting the records (none: the writer itself).
    fn written_by(format: Format, records: impl Iterator<Item = ConnRecord>, formatters: usize) -> String {
        let analysis = Analysis {
            accounting: Default::default(),
            files: Vec::new(),
            first_ts: None,
            last_ts: None,
            evicted: 0,
        };
        let mut out = Vec::new();
        let mut w = ConnWriter::new(
            &mut out,
            exporter(format, super::super::table::Layout::Wide, false, &Default::default(), 0).unwrap(),
            Order::FirstSeen,
        )
        .unwrap();
        if formatters > 0 {
            w = w.with_formatters(formatters);
            let threads = w.output.formatters.as_ref().map_or(0, |f| f.threads.len());
            let expected = if format == Format::Json { 0 } else { formatters };
            assert_eq!(threads, expected, "{format:?}");
        }
        for r in records {
            w.conn(r).unwrap();
        }
        w.finish(&analysis).unwrap();
        // Zeek's #open and #close lines carry the time of writing.
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .filter(|l| !l.starts_with("#open") && !l.starts_with("#close"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn records_that_waited_in_binary_form_print_as_those_written_at_once() {
        let records = sample_records();
        assert!(records.len() > 10 && records.iter().any(|r| r.handshake.is_some()));
        for format in [Format::Jsonl, Format::Json, Format::Csv, Format::Zeek] {
            let at_once = written(format, records.clone().into_iter());
            // Reversed, every record but the first waits for the one before it.
            let waited = written(format, records.clone().into_iter().rev());
            assert_eq!(at_once.lines().count(), waited.lines().count());
            assert_eq!(at_once, waited, "{format:?}");
        }
    }

    #[test]
    fn records_formatted_on_other_threads_print_as_on_one() {
        // Enough records for several batches per formatter, in an order that makes some wait.
        let samples = sample_records();
        let mut records: Vec<_> = (0..300).flat_map(|_| samples.iter().cloned()).collect();
        for (i, r) in records.iter_mut().enumerate() {
            r.id = i as u64 + 1;
        }
        assert!(records.len() > 2 * 3 * BATCH, "two rounds of three formatters");
        records.chunks_mut(7).for_each(<[ConnRecord]>::reverse);
        for format in [Format::Jsonl, Format::Csv, Format::Zeek, Format::Json] {
            let here = written_by(format, records.clone().into_iter(), 0);
            for threads in [1, 2, 3] {
                let there = written_by(format, records.clone().into_iter(), threads);
                assert_eq!(here.lines().count(), there.lines().count());
                assert!(here == there, "{format:?} on {threads} threads");
            }
        }
    }

    #[test]
    fn records_the_formatters_have_go_out_when_the_run_stops_early() {
        let records = sample_records();
        let mut out = Vec::new();
        {
            let exporter =
                exporter(Format::Jsonl, super::super::table::Layout::Wide, false, &Default::default(), 0);
            let mut w =
                ConnWriter::new(&mut out, exporter.unwrap(), Order::FirstSeen).unwrap().with_formatters(2);
            for r in records.iter().cycle().take(3 * BATCH + 10).cloned().enumerate() {
                w.conn(ConnRecord { id: r.0 as u64 + 1, ..r.1 }).unwrap();
            }
            // Dropped without `finish`, as when a later step fails.
        }
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 3 * BATCH + 10);
    }
}
