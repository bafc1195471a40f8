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
    /// Formats some of the records on another thread (`with_helper`).
    helper: Option<Helper>,
}

impl<'a> ConnWriter<'a> {
    /// Starts the output (headers, the JSON document's opening) through `exporter`.
    pub fn new(out: &'a mut dyn Write, mut exporter: Box<dyn Exporter>, order: Order) -> io::Result<Self> {
        let mut pending = Vec::with_capacity(OUT_CHUNK + (4 << 10));
        exporter.begin(&mut pending)?;
        let in_order = (order == Order::FirstSeen).then(InOrder::new);
        Ok(ConnWriter { in_order, output: Output { out, exporter, pending, helper: None } })
    }

    /// Formats records on a second thread too, when the format's records do not depend on each
    /// other: once the analysis is done, formatting the connections still open at the end is
    /// most of the work left (all of it on a scan). Not in end order, which is for live inputs:
    /// there records go out as they come rather than a batch at a time.
    pub fn with_helper(mut self) -> Self {
        if self.in_order.is_some() {
            self.output.helper = self.output.exporter.fork().map(Helper::spawn);
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
        output.drain_helper()?;
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
    /// Formats one record into the output buffer (or has the helper do it).
    fn write(&mut self, record: ConnRecord) -> io::Result<()> {
        let Some(helper) = &mut self.helper else {
            self.exporter.record(&mut self.pending, &record)?;
            if self.pending.len() >= OUT_CHUNK {
                self.flush()?;
            }
            return Ok(());
        };
        if helper.take(record, &mut *self.exporter)? {
            self.write_helped()?;
        }
        Ok(())
    }

    /// Writes what the helper and this thread formatted, after what waits in the buffer.
    fn write_helped(&mut self) -> io::Result<()> {
        let Some(helper) = &mut self.helper else { return Ok(()) };
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        for bytes in helper.formatted() {
            self.out.write_all(bytes)?;
        }
        helper.written();
        Ok(())
    }

    /// Writes every record the helper has, and those gathering for it.
    fn drain_helper(&mut self) -> io::Result<()> {
        if let Some(helper) = &mut self.helper {
            helper.drain(&mut *self.exporter)?;
            self.write_helped()?;
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
        let _ = self.drain_helper();
        let _ = self.flush();
    }
}

/// Records per batch the helper formats.
const HELPER_BATCH: usize = 1024;

/// A thread formatting batches of records with a fork of the exporter. While it has a batch,
/// the writer formats the records after it itself, until the helper is done or it has formatted
/// as many; then both go out, the helper's first, and the records after gather into the next
/// batch. So whichever thread is faster formats more, and the order is kept.
struct Helper {
    to: Option<SyncSender<(Vec<ConnRecord>, Vec<u8>)>>,
    from: Receiver<(io::Result<()>, Vec<u8>)>,
    thread: Option<JoinHandle<()>>,
    /// Records gathering for the next batch.
    batch: Vec<ConnRecord>,
    /// The helper has a batch.
    sent: bool,
    /// Its bytes, once they came back (the buffer goes back and forth).
    theirs: Option<Vec<u8>>,
    /// Records formatted here since the batch was sent, and how many.
    ours: Vec<u8>,
    ours_count: usize,
}

impl Helper {
    fn spawn(mut fork: Box<dyn Exporter + Send>) -> Helper {
        let (to, batches) = sync_channel::<(Vec<ConnRecord>, Vec<u8>)>(1);
        let (done, from) = sync_channel(1);
        let thread = std::thread::spawn(move || {
            for (mut batch, mut bytes) in batches {
                bytes.clear();
                let formatted = batch.iter().try_for_each(|r| fork.record(&mut bytes, r));
                // The records are dropped here, on this thread.
                batch.clear();
                if done.send((formatted, bytes)).is_err() {
                    return;
                }
            }
        });
        Helper {
            to: Some(to),
            from,
            thread: Some(thread),
            batch: Vec::with_capacity(HELPER_BATCH),
            sent: false,
            theirs: Some(Vec::with_capacity(OUT_CHUNK)),
            ours: Vec::with_capacity(OUT_CHUNK),
            ours_count: 0,
        }
    }

    /// Takes the next record; true when a batch and the records after it are formatted, to be
    /// written (`written` then empties them).
    fn take(&mut self, record: ConnRecord, local: &mut dyn Exporter) -> io::Result<bool> {
        if !self.sent {
            self.batch.push(record);
            if self.batch.len() == HELPER_BATCH {
                self.send()?;
            }
            return Ok(false);
        }
        local.record(&mut self.ours, &record)?;
        self.ours_count += 1;
        if self.theirs.is_none() && self.ours_count < HELPER_BATCH {
            match self.from.try_recv() {
                Ok(returned) => self.returned(returned)?,
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => return Err(gone()),
            }
        }
        self.wait().map(|()| true)
    }

    fn send(&mut self) -> io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(HELPER_BATCH));
        let bytes = self.theirs.take().unwrap_or_default();
        self.to.as_ref().expect("open until dropped").send((batch, bytes)).map_err(|_| gone())?;
        self.sent = true;
        Ok(())
    }

    fn returned(&mut self, (formatted, bytes): (io::Result<()>, Vec<u8>)) -> io::Result<()> {
        self.theirs = Some(bytes);
        formatted
    }

    /// Waits for the helper's bytes.
    fn wait(&mut self) -> io::Result<()> {
        if self.theirs.is_none() {
            let returned = self.from.recv().map_err(|_| gone())?;
            self.returned(returned)?;
        }
        Ok(())
    }

    /// The bytes to write, in order: the helper's batch, then the records after it.
    fn formatted(&self) -> [&[u8]; 2] {
        [self.theirs.as_deref().unwrap_or_default(), &self.ours]
    }

    /// They were written: the records after the batch gather into the next one.
    fn written(&mut self) {
        if let Some(theirs) = &mut self.theirs {
            theirs.clear();
        }
        self.ours.clear();
        self.ours_count = 0;
        self.sent = false;
    }

    /// Every record taken, formatted, in order: waits for the helper's batch, and formats the
    /// records gathering here.
    fn drain(&mut self, local: &mut dyn Exporter) -> io::Result<()> {
        if self.sent {
            self.wait()?;
        }
        self.batch.drain(..).try_for_each(|r| local.record(&mut self.ours, &r))
    }
}

/// The helper's thread ends once nothing more can be sent to it.
impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.to.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The helper's thread stopped: only after a panic, which it reports itself.
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
        written_by(format, records, false)
    }

    fn written_by(format: Format, records: impl Iterator<Item = ConnRecord>, helped: bool) -> String {
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
        if helped {
            w = w.with_helper();
            assert!(w.output.helper.is_some() == (format != Format::Json), "{format:?}");
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
    fn records_formatted_on_two_threads_print_as_on_one() {
        // Enough records for several batches each way, in an order that makes some wait.
        let samples = sample_records();
        let mut records: Vec<_> = (0..300).flat_map(|_| samples.iter().cloned()).collect();
        for (i, r) in records.iter_mut().enumerate() {
            r.id = i as u64 + 1;
        }
        assert!(records.len() > 4 * HELPER_BATCH);
        records.chunks_mut(7).for_each(<[ConnRecord]>::reverse);
        for format in [Format::Jsonl, Format::Csv, Format::Zeek, Format::Json] {
            let one = written_by(format, records.clone().into_iter(), false);
            let two = written_by(format, records.clone().into_iter(), true);
            assert_eq!(one.lines().count(), two.lines().count());
            assert!(one == two, "{format:?}");
        }
    }

    #[test]
    fn records_the_helper_formatted_go_out_when_the_run_stops_early() {
        let records = sample_records();
        let mut out = Vec::new();
        {
            let exporter =
                exporter(Format::Jsonl, super::super::table::Layout::Wide, false, &Default::default(), 0);
            let mut w = ConnWriter::new(&mut out, exporter.unwrap(), Order::FirstSeen).unwrap().with_helper();
            for r in records.iter().cycle().take(HELPER_BATCH + 10).cloned().enumerate() {
                w.conn(ConnRecord { id: r.0 as u64 + 1, ..r.1 }).unwrap();
            }
            // Dropped without `finish`, as when a later step fails.
        }
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), HELPER_BATCH + 10);
    }
}
