//! Connections written as they end, in order of first packet (or in end order on request).
//!
//! The table hands out a connection when it ends. For first-seen order, a connection that ends
//! before an older one waits here as its record in a compact binary form (instead of its full
//! TCP state, or its formatted line, ~8 times the size), until every older one has been
//! written. Waiting records beyond 32 MiB move to an unnamed temporary file, so memory stays
//! bounded even when one long-lived connection holds back millions of others (each
//! then costs an index entry). `--order end` writes each at once.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use super::record::ConnRecord;
use super::{csv, json, jsonl, table, zeek, AccountingRecord, Format};
use crate::pipeline::Analysis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// By id: the order of each connection's first packet (the contract's order).
    FirstSeen,
    /// As connections end: nothing is held back, for unbounded inputs.
    End,
}

pub struct ConnWriter<'a> {
    emitter: Emitter<'a>,
    order: Order,
    next_id: u64,
    waiting: Waiting,
    scratch: Vec<u8>,
    /// The table format needs every row to size its columns.
    rows: Vec<ConnRecord<'static>>,
    color: bool,
}

/// Where formatted records go, apart from the waiting ones so that a waiting record can be
/// written straight from where it waits.
struct Emitter<'a> {
    out: &'a mut dyn Write,
    format: Format,
    written: u64,
    /// Records whose turn has come are formatted straight into this buffer, written out in
    /// pieces of `OUT_CHUNK` (a line formatted elsewhere and then copied here cost a copy of
    /// the whole output).
    pending: Vec<u8>,
    #[cfg(feature = "parquet")]
    parquet: Option<super::parquet::ParquetRows>,
}

impl<'a> ConnWriter<'a> {
    /// Starts the output (headers, the JSON document's opening).
    pub fn new(out: &'a mut dyn Write, format: Format, order: Order, color: bool) -> io::Result<Self> {
        match format {
            Format::Csv => out.write_all(csv::CONN_HEADER.as_bytes())?,
            Format::Zeek => zeek::header(out)?,
            Format::Json => json::open(out, "connections")?,
            Format::Jsonl | Format::Table => {}
            #[cfg(feature = "parquet")]
            Format::Parquet => {}
            #[cfg(not(feature = "parquet"))]
            Format::Parquet => {
                return Err(io::Error::other("this sockscope was built without the parquet feature"))
            }
        }
        Ok(ConnWriter {
            emitter: Emitter {
                out,
                format,
                written: 0,
                pending: Vec::with_capacity(OUT_CHUNK + (4 << 10)),
                #[cfg(feature = "parquet")]
                parquet: if format == Format::Parquet {
                    Some(super::parquet::ParquetRows::new()?)
                } else {
                    None
                },
            },
            order,
            next_id: 1,
            waiting: Waiting::default(),
            scratch: Vec::new(),
            rows: Vec::new(),
            color,
        })
    }

    /// Takes one ended connection.
    pub fn conn(&mut self, record: ConnRecord<'static>) -> io::Result<()> {
        let id = record.id;
        if self.emitter.format == Format::Table {
            self.rows.push(record);
            return Ok(());
        }
        if self.order == Order::End || id == self.next_id {
            self.emitter.record(&record)?;
            self.next_id = self.next_id.max(id + 1);
            return self.flush_waiting();
        }
        // A record that has to wait does so in serde's compact binary form (postcard), formatted
        // only when its turn comes: a JSON line is ~1 KB and its binary form ~130 bytes, so
        // less waits in memory and far less moves to the temporary file.
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        bytes = postcard::to_extend(&record, bytes).map_err(io::Error::other)?;
        let done = self.waiting.put(id, &bytes);
        self.scratch = bytes;
        done
    }

    /// Passes over a connection that is not to be printed (filtered out), so that later ones
    /// need not wait for it.
    pub fn skip(&mut self, id: u64) -> io::Result<()> {
        if self.order == Order::End {
            return Ok(());
        }
        if id == self.next_id {
            self.next_id += 1;
            self.flush_waiting()
        } else {
            self.waiting.put(id, &[])
        }
    }

    /// Ends the output: the table, or the JSON document's closing with files and accounting.
    pub fn finish(mut self, analysis: &Analysis) -> io::Result<()> {
        // Every id has ended by now, so nothing waits; this only guards against a gap.
        for id in self.waiting.ids() {
            if let Some(bytes) = self.waiting.take(id)? {
                self.emitter.emit(bytes)?;
            }
        }
        let mut e = self.emitter;
        e.flush()?;
        match e.format {
            Format::Table => {
                self.rows.sort_unstable_by_key(|r| r.id);
                table::write_conns(e.out, &self.rows, self.color)
            }
            Format::Json => json::close(e.out, &analysis.files, &AccountingRecord::new(&analysis.accounting)),
            #[cfg(feature = "parquet")]
            Format::Parquet => e.parquet.take().expect("parquet rows").finish(e.out),
            _ => Ok(()),
        }
    }

    /// Writes the waiting records whose turn has come.
    fn flush_waiting(&mut self) -> io::Result<()> {
        while let Some(next) = self.waiting.take(self.next_id)? {
            self.emitter.emit(next)?;
            self.next_id += 1;
        }
        Ok(())
    }
}

/// Output is written in pieces of about this size.
const OUT_CHUNK: usize = 64 << 10;

impl Emitter<'_> {
    /// Formats one record straight into the output buffer.
    fn record(&mut self, record: &ConnRecord) -> io::Result<()> {
        #[cfg(feature = "parquet")]
        if let Some(rows) = &mut self.parquet {
            // Parquet rows go through their JSON form, then become columns.
            let mut bytes = Vec::new();
            jsonl::conn_line(&mut bytes, record);
            let record: serde_json::Value = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
            self.written += 1;
            return rows.push(&record, self.out);
        }
        if self.format == Format::Json && self.written > 0 {
            json::separator(&mut self.pending)?;
        }
        match self.format {
            Format::Jsonl | Format::Json | Format::Parquet => jsonl::conn_line(&mut self.pending, record),
            Format::Csv => csv::conn_row(&mut self.pending, record),
            Format::Zeek => zeek::row(&mut self.pending, record),
            Format::Table => unreachable!("the table's rows are kept, not emitted"),
        }
        if self.format == Format::Json && self.pending.last() == Some(&b'\n') {
            self.pending.pop(); // array items are separated by `json::separator` instead
        }
        self.written += 1;
        if self.pending.len() >= OUT_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends a record that waited for its turn, in its binary form.
    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(()); // a skipped connection's place
        }
        let record: ConnRecord = postcard::from_bytes(bytes).map_err(io::Error::other)?;
        self.record(&record)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }
}

/// What was formatted goes out even when the run stops early, as with a `BufWriter`.
impl Drop for Emitter<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Records waiting for their turn: in memory up to a limit, then in a temporary file.
#[derive(Default)]
struct Waiting {
    /// Records in memory, back to back (no allocation per record).
    arena: Vec<u8>,
    /// Where each record waits, by id: `slots[i]` is id `first + i`. Ids are dense, so a queue
    /// indexed by id finds a record without a search tree's cost, in 16 bytes per id instead of
    /// about 40; ids not ended yet are `None`.
    slots: VecDeque<Option<Place>>,
    first: u64,
    /// Records in the arena, and their bytes (taken records leave holes until it is reset).
    in_memory: usize,
    /// No record in the arena has an id below this: a spill or compaction looks from here
    /// rather than over every earlier id, most of them spilled already.
    memory_from: u64,
    memory_bytes: usize,
    spilled: Option<Spill>,
}

/// Where a waiting record is: in the arena or in the temporary file.
#[derive(Clone, Copy, Debug)]
struct Place {
    at: u64,
    len: u32,
    in_file: bool,
}

/// An unnamed temporary file (gone when closed).
struct Spill {
    file: File,
    end: u64,
    /// Each move to the file writes a run sorted by id; records come back in id order, so
    /// each run is read forward through a buffer of its own instead of a seek per record.
    runs: Vec<ReadRun>,
}

struct ReadRun {
    start: u64,
    buffer_at: u64,
    buffer: Vec<u8>,
}

/// Bytes read ahead from a run at a time.
const READ_AHEAD: usize = 256 << 10;

const MEMORY_LIMIT: usize = 32 << 20;

impl Waiting {
    fn put(&mut self, id: u64, bytes: &[u8]) -> io::Result<()> {
        if self.in_memory == 0 {
            self.arena.clear();
        }
        if self.arena.len() + bytes.len() > MEMORY_LIMIT && self.memory_bytes < MEMORY_LIMIT / 2 {
            self.compact();
        }
        let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
        *self.slot(id) = Some(Place { at: self.arena.len() as u64, len, in_file: false });
        self.arena.extend_from_slice(bytes);
        self.memory_from = if self.in_memory == 0 { id } else { self.memory_from.min(id) };
        self.in_memory += 1;
        self.memory_bytes += bytes.len();
        if self.memory_bytes > MEMORY_LIMIT {
            self.spill()?;
        }
        Ok(())
    }

    /// The slot of `id`, made if need be.
    fn slot(&mut self, id: u64) -> &mut Option<Place> {
        if self.slots.is_empty() {
            self.first = id;
        }
        while id < self.first {
            self.slots.push_front(None);
            self.first -= 1;
        }
        let at = (id - self.first) as usize;
        if at >= self.slots.len() {
            self.slots.resize(at + 1, None);
        }
        &mut self.slots[at]
    }

    /// Drops the holes taken records left, keeping the waiting ones in id order.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.memory_bytes.max(MEMORY_LIMIT / 2));
        for place in in_memory(&mut self.slots, self.first, self.memory_from) {
            let at = arena.len();
            arena.extend_from_slice(&self.arena[place.at as usize..][..place.len as usize]);
            place.at = at as u64;
        }
        self.arena = arena;
    }

    /// Moves every record in memory to the file, as one run sorted by id.
    fn spill(&mut self) -> io::Result<()> {
        let spill = match &mut self.spilled {
            Some(s) => s,
            None => self.spilled.insert(Spill { file: tempfile::tempfile()?, end: 0, runs: Vec::new() }),
        };
        spill.runs.push(ReadRun { start: spill.end, buffer_at: 0, buffer: Vec::new() });
        // A run is tens of MiB: large writes, not one call per 8 KiB.
        let mut w = BufWriter::with_capacity(1 << 20, &spill.file);
        w.seek(SeekFrom::Start(spill.end))?;
        for place in in_memory(&mut self.slots, self.first, self.memory_from) {
            w.write_all(&self.arena[place.at as usize..][..place.len as usize])?;
            *place = Place { at: spill.end, len: place.len, in_file: true };
            spill.end += u64::from(place.len);
        }
        w.flush()?;
        self.arena.clear();
        self.in_memory = 0;
        self.memory_bytes = 0;
        Ok(())
    }

    /// The record `id`, if it waits; valid until the next call.
    fn take(&mut self, id: u64) -> io::Result<Option<&[u8]>> {
        let at = id.checked_sub(self.first).map(|at| at as usize);
        let Some(place) = at.and_then(|at| self.slots.get_mut(at)).and_then(Option::take) else {
            return Ok(None);
        };
        // Records are taken in id order: empty slots up to this id are done with. Not those past
        // it, connections still open, whose slots would only be made again when they end.
        while self.first <= id && matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first += 1;
        }
        let len = place.len as usize;
        if !place.in_file {
            self.in_memory -= 1;
            self.memory_bytes -= len;
            return Ok(Some(&self.arena[place.at as usize..][..len]));
        }
        let spill = self.spilled.as_mut().expect("a record in the file");
        let offset = place.at;
        let r = spill.runs.partition_point(|run| run.start <= offset) - 1;
        let run_end = spill.runs.get(r + 1).map_or(spill.end, |next| next.start);
        let run = &mut spill.runs[r];
        let buffered_end = run.buffer_at + run.buffer.len() as u64;
        if offset < run.buffer_at || offset + len as u64 > buffered_end {
            let want = ((run_end - offset) as usize).min(READ_AHEAD).max(len);
            run.buffer.resize(want, 0);
            spill.file.seek(SeekFrom::Start(offset))?;
            spill.file.read_exact(&mut run.buffer)?;
            run.buffer_at = offset;
        }
        let at = (offset - run.buffer_at) as usize;
        Ok(Some(&run.buffer[at..at + len]))
    }

    /// The ids of everything still waiting, in order.
    fn ids(&self) -> Vec<u64> {
        (self.first..).zip(&self.slots).filter(|(_, slot)| slot.is_some()).map(|(id, _)| id).collect()
    }
}

/// The places of the records in memory, in id order (`slots` start at id `first`; none in
/// memory is below `from`).
fn in_memory(slots: &mut VecDeque<Option<Place>>, first: u64, from: u64) -> impl Iterator<Item = &mut Place> {
    slots.range_mut(from.saturating_sub(first) as usize..).flatten().filter(|p| !p.in_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tunnel::TunnelKind;

    fn take(w: &mut Waiting, id: u64) -> Option<Vec<u8>> {
        w.take(id).unwrap().map(<[u8]>::to_vec)
    }

    /// The samples' connections (TCP with and without handshakes and teardowns, UDP, IPv6) plus
    /// one inside a tunnel (the last: one that waits when they come in reverse), numbered 1, 2, 3 ...
    fn sample_records() -> Vec<ConnRecord<'static>> {
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

    fn written(format: Format, records: impl Iterator<Item = ConnRecord<'static>>) -> String {
        let analysis = Analysis {
            accounting: Default::default(),
            files: Vec::new(),
            first_ts: None,
            last_ts: None,
            evicted: 0,
        };
        let mut out = Vec::new();
        let mut w = ConnWriter::new(&mut out, format, Order::FirstSeen, false).unwrap();
        for r in records {
            w.conn(r).unwrap();
        }
        w.finish(&analysis).unwrap();
        String::from_utf8(out).unwrap()
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
    fn only_the_ids_between_the_next_to_write_and_the_last_ended_have_slots() {
        let mut out = Vec::new();
        let mut w = ConnWriter::new(&mut out, Format::Jsonl, Order::FirstSeen, false).unwrap();
        // Connections end a little out of order: ids 1..=100_000 in shuffled blocks of 8.
        let mut most = 0;
        for block in (0..100_000u64).step_by(8) {
            for i in [5, 2, 7, 0, 3, 6, 1, 4] {
                w.skip(block + i + 1).unwrap();
                most = most.max(w.waiting.slots.len());
            }
        }
        assert!(w.waiting.slots.is_empty() && w.waiting.ids().is_empty());
        assert!(most <= 8, "{most} slots for a window of 8 ids");
    }

    #[test]
    fn many_small_records_come_back_in_id_order_across_runs() {
        let mut w = Waiting::default();
        let record = |id: u64| format!("{id:>1000}").into_bytes();
        // Put in an order that spreads neighbouring ids over several spilled runs.
        let n = 100_000u64;
        for id in (1..=n).map(|i| (i * 7919) % n + 1) {
            w.put(id, &record(id)).unwrap();
        }
        assert!(
            w.spilled.as_ref().is_some_and(|s| s.runs.len() >= 2),
            "two runs of 32 MiB and the rest in memory"
        );
        for id in 1..=n {
            assert_eq!(take(&mut w, id), Some(record(id)), "id {id}");
        }
        assert!(w.ids().is_empty());
    }

    #[test]
    fn waiting_records_come_back_in_order_from_memory_and_file() {
        let mut w = Waiting::default();
        let record = |id: u64| format!("record {id} {}", "x".repeat(1 << 20)).into_bytes();
        for id in (2..60).rev() {
            w.put(id, &record(id)).unwrap();
        }
        assert!(w.spilled.is_some(), "58 MiB spill past the 32 MiB limit");
        assert!(w.memory_bytes <= MEMORY_LIMIT);
        assert_eq!(take(&mut w, 1), None);
        assert_eq!(take(&mut w, 59), Some(record(59)));
        let rest = w.ids();
        assert_eq!(rest, (2..59).collect::<Vec<_>>());
        assert_eq!(take(&mut w, 2), Some(record(2)));
        assert_eq!(take(&mut w, 58), Some(record(58)));
    }

    #[test]
    fn records_taken_from_memory_leave_holes_that_are_compacted_not_spilled() {
        let mut w = Waiting::default();
        let record = |id: u64| format!("{id:>1000}").into_bytes();
        w.put(1, &record(1)).unwrap();
        // 100 MB pass through while record 1 waits: each is taken right after it is put.
        for id in 2..100_000 {
            w.put(id, &record(id)).unwrap();
            assert_eq!(take(&mut w, id), Some(record(id)));
        }
        assert!(w.spilled.is_none(), "never more than two records waited");
        assert!(w.arena.len() <= MEMORY_LIMIT);
        assert_eq!(take(&mut w, 1), Some(record(1)));
    }
}
