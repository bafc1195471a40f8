//! Records handed out in id order (the order of first packets) while connections end in any
//! order.
//!
//! A connection that ends before an older one waits here as its record in a compact binary
//! form (postcard; instead of its full TCP state, or its formatted line, ~8 times the size),
//! until every older one has been handed out. Waiting records beyond 32 MiB move to an unnamed
//! temporary file, so memory stays bounded even when one long-lived connection holds back
//! millions of others (each then costs an index entry).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use super::record::ConnRecord;

/// Takes records as their connections end, hands them on in id order.
#[derive(Default)]
pub struct InOrder {
    /// The id whose record goes out next (ids count from 1).
    next_id: u64,
    waiting: Waiting,
    /// The buffer a waiting record is encoded in, kept between records.
    scratch: Vec<u8>,
}

/// Where records whose turn has come go.
pub type Ready<'r> = dyn FnMut(ConnRecord) -> io::Result<()> + 'r;

impl InOrder {
    /// Nothing waiting yet; connection 1's record goes out first.
    pub fn new() -> Self {
        InOrder { next_id: 1, ..InOrder::default() }
    }

    /// Connection `id` ended, with `record` to hand on (`None`: nothing to hand on, e.g. it was
    /// filtered out, but later ones need not wait for it). `ready` gets it and every record
    /// that waited for it, in id order.
    pub fn put(&mut self, id: u64, record: Option<ConnRecord>, ready: &mut Ready<'_>) -> io::Result<()> {
        if self.is_next(id) {
            if let Some(record) = record {
                ready(record)?;
            }
            return self.passed(ready);
        }
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        if let Some(record) = &record {
            bytes = postcard::to_extend(record, bytes).map_err(io::Error::other)?;
        }
        let done = self.waiting.put(id, &bytes);
        self.scratch = bytes;
        done
    }

    /// Whether connection `id` is the one whose turn it is: its record can go out as it comes.
    pub fn is_next(&self, id: u64) -> bool {
        id == self.next_id
    }

    /// The connection whose turn it was has gone out: `ready` gets the records that waited
    /// for it.
    pub fn passed(&mut self, ready: &mut Ready<'_>) -> io::Result<()> {
        self.next_id += 1;
        self.release(ready)
    }

    /// Hands on whatever still waits, in id order (nothing, once every id has ended).
    pub fn finish(&mut self, ready: &mut Ready<'_>) -> io::Result<()> {
        for id in self.waiting.ids() {
            if let Some(bytes) = self.waiting.take(id)? {
                hand_on(bytes, ready)?;
            }
        }
        Ok(())
    }

    /// Hands on the waiting records whose turn has come.
    fn release(&mut self, ready: &mut Ready<'_>) -> io::Result<()> {
        while let Some(bytes) = self.waiting.take(self.next_id)? {
            hand_on(bytes, ready)?;
            self.next_id += 1;
        }
        Ok(())
    }
}

/// Decodes a record that waited and hands it on; empty bytes hold a place without a record.
fn hand_on(bytes: &[u8], ready: &mut Ready<'_>) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    ready(postcard::from_bytes(bytes).map_err(io::Error::other)?)
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

    fn take(w: &mut Waiting, id: u64) -> Option<Vec<u8>> {
        w.take(id).unwrap().map(<[u8]>::to_vec)
    }

    #[test]
    fn only_the_ids_between_the_next_to_hand_on_and_the_last_ended_have_slots() {
        let mut in_order = InOrder::new();
        // Connections end a little out of order: ids 1..=100_000 in shuffled blocks of 8.
        let mut most = 0;
        for block in (0..100_000u64).step_by(8) {
            for i in [5, 2, 7, 0, 3, 6, 1, 4] {
                in_order.put(block + i + 1, None, &mut |_| Ok(())).unwrap();
                most = most.max(in_order.waiting.slots.len());
            }
        }
        assert!(in_order.waiting.slots.is_empty() && in_order.waiting.ids().is_empty());
        assert!(most <= 8, "{most} slots for a window of 8 ids");
    }

    #[test]
    fn records_come_out_in_id_order_whatever_order_they_end_in() {
        let records = super::super::record::of_sample("teardowns.pcap");
        let mut in_order = InOrder::new();
        let mut ids = Vec::new();
        let mut ready = |r: ConnRecord| {
            ids.push(r.id);
            Ok(())
        };
        for r in records.iter().rev() {
            in_order.put(r.id, Some(r.clone()), &mut ready).unwrap();
        }
        in_order.finish(&mut ready).unwrap();
        assert_eq!(ids, (1..=records.len() as u64).collect::<Vec<_>>());
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
