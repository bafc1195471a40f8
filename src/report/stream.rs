//! Connections written as they end, in order of first packet (or in end order on request).
//!
//! The table hands out a connection when it ends. For first-seen order, a connection that ends
//! before an older one waits here, already formatted (instead of its full TCP state), until every
//! older one has been written. Waiting records beyond 32 MiB move to an unnamed temporary file, so
//! memory stays bounded even when one long-lived connection holds back millions of others (each
//! then costs an index entry). `--order end` writes each at once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use super::record::ConnRecord;
use super::{csv, json, jsonl, table, zeek, AccountingRecord, Format};
use crate::analyze::Analysis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// By id: the order of each connection's first packet (the contract's order).
    FirstSeen,
    /// As connections end: nothing is held back, for unbounded inputs.
    End,
}

pub struct ConnWriter<'a> {
    out: &'a mut dyn Write,
    format: Format,
    order: Order,
    next_id: u64,
    waiting: Waiting,
    scratch: Vec<u8>,
    /// The table format needs every row to size its columns.
    rows: Vec<ConnRecord>,
    color: bool,
    written: u64,
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
            out,
            format,
            order,
            next_id: 1,
            waiting: Waiting::default(),
            scratch: Vec::new(),
            rows: Vec::new(),
            color,
            written: 0,
            #[cfg(feature = "parquet")]
            parquet: if format == Format::Parquet { Some(super::parquet::ParquetRows::new()?) } else { None },
        })
    }

    /// Takes one ended connection.
    pub fn conn(&mut self, record: ConnRecord) -> io::Result<()> {
        let id = record.id;
        if self.format == Format::Table {
            self.rows.push(record);
            return Ok(());
        }
        // Formatted into one reused buffer; only a record that has to wait gets its own copy.
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        match self.format {
            // Parquet rows are kept as JSON until their turn, then become columns.
            Format::Jsonl | Format::Json | Format::Parquet => jsonl::conn_line(&mut bytes, &record),
            Format::Csv => csv::conn_row(&mut bytes, &record),
            Format::Zeek => zeek::row(&mut bytes, &record),
            Format::Table => unreachable!("kept above"),
        }
        let done = if self.order == Order::End || id == self.next_id {
            self.emit(&bytes)?;
            self.next_id = self.next_id.max(id + 1);
            self.flush_waiting()
        } else {
            self.waiting.put(id, bytes.clone())
        };
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
            self.waiting.put(id, Vec::new())
        }
    }

    /// Ends the output: the table, or the JSON document's closing with files and accounting.
    pub fn finish(mut self, analysis: &Analysis) -> io::Result<()> {
        // Every id has ended by now, so nothing waits; this only guards against a gap.
        for bytes in self.waiting.drain()? {
            self.emit(&bytes)?;
        }
        match self.format {
            Format::Table => {
                self.rows.sort_unstable_by_key(|r| r.id);
                table::write_conns(self.out, &self.rows, self.color)
            }
            Format::Json => {
                json::close(self.out, &analysis.files, &AccountingRecord::new(&analysis.accounting))
            }
            #[cfg(feature = "parquet")]
            Format::Parquet => self.parquet.take().expect("parquet rows").finish(self.out),
            _ => Ok(()),
        }
    }

    /// Writes the waiting records whose turn has come.
    fn flush_waiting(&mut self) -> io::Result<()> {
        while let Some(next) = self.waiting.take(self.next_id)? {
            self.emit(&next)?;
            self.next_id += 1;
        }
        Ok(())
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(()); // a skipped connection's place
        }
        #[cfg(feature = "parquet")]
        if let Some(rows) = &mut self.parquet {
            let record: serde_json::Value = serde_json::from_slice(bytes).map_err(io::Error::other)?;
            self.written += 1;
            return rows.push(&record, self.out);
        }
        if self.format == Format::Json {
            if self.written > 0 {
                json::separator(self.out)?;
            }
            self.out.write_all(bytes.strip_suffix(b"\n").unwrap_or(bytes))?;
        } else {
            self.out.write_all(bytes)?;
        }
        self.written += 1;
        Ok(())
    }
}

/// Formatted records waiting for their turn: in memory up to a limit, then in a temporary file.
#[derive(Default)]
struct Waiting {
    memory: BTreeMap<u64, Vec<u8>>,
    memory_bytes: usize,
    spilled: Option<Spill>,
}

/// An unnamed temporary file (gone when closed) and where each record sits in it.
struct Spill {
    file: File,
    at: BTreeMap<u64, (u64, u32)>,
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
    fn put(&mut self, id: u64, bytes: Vec<u8>) -> io::Result<()> {
        self.memory_bytes += bytes.len();
        self.memory.insert(id, bytes);
        if self.memory_bytes > MEMORY_LIMIT {
            let spill = match &mut self.spilled {
                Some(s) => s,
                None => self.spilled.insert(Spill {
                    file: tempfile::tempfile()?,
                    at: BTreeMap::new(),
                    end: 0,
                    runs: Vec::new(),
                }),
            };
            spill.runs.push(ReadRun { start: spill.end, buffer_at: 0, buffer: Vec::new() });
            let mut w = BufWriter::new(&spill.file);
            w.seek(SeekFrom::Start(spill.end))?;
            for (id, bytes) in std::mem::take(&mut self.memory) {
                w.write_all(&bytes)?;
                spill.at.insert(id, (spill.end, bytes.len() as u32));
                spill.end += bytes.len() as u64;
            }
            w.flush()?;
            self.memory_bytes = 0;
        }
        Ok(())
    }

    fn take(&mut self, id: u64) -> io::Result<Option<Vec<u8>>> {
        if let Some(bytes) = self.memory.remove(&id) {
            self.memory_bytes -= bytes.len();
            return Ok(Some(bytes));
        }
        let Some(spill) = &mut self.spilled else { return Ok(None) };
        let Some((offset, len)) = spill.at.remove(&id) else { return Ok(None) };
        let r = spill.runs.partition_point(|run| run.start <= offset) - 1;
        let run_end = spill.runs.get(r + 1).map_or(spill.end, |next| next.start);
        let run = &mut spill.runs[r];
        let (len, buffered_end) = (len as usize, run.buffer_at + run.buffer.len() as u64);
        if offset < run.buffer_at || offset + len as u64 > buffered_end {
            let want = ((run_end - offset) as usize).min(READ_AHEAD).max(len);
            run.buffer.resize(want, 0);
            spill.file.seek(SeekFrom::Start(offset))?;
            spill.file.read_exact(&mut run.buffer)?;
            run.buffer_at = offset;
        }
        let at = (offset - run.buffer_at) as usize;
        Ok(Some(run.buffer[at..at + len].to_vec()))
    }

    /// Everything still waiting, in id order.
    fn drain(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let mut ids: Vec<u64> = self.memory.keys().copied().collect();
        if let Some(s) = &self.spilled {
            ids.extend(s.at.keys());
        }
        ids.sort_unstable();
        ids.into_iter().filter_map(|id| self.take(id).transpose()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_small_records_come_back_in_id_order_across_runs() {
        let mut w = Waiting::default();
        let record = |id: u64| format!("{id:>1000}").into_bytes();
        // Put in an order that spreads neighbouring ids over several spilled runs.
        let n = 100_000u64;
        for id in (1..=n).map(|i| (i * 7919) % n + 1) {
            w.put(id, record(id)).unwrap();
        }
        assert!(
            w.spilled.as_ref().is_some_and(|s| s.runs.len() >= 2),
            "two runs of 32 MiB and the rest in memory"
        );
        for id in 1..=n {
            assert_eq!(w.take(id).unwrap(), Some(record(id)), "id {id}");
        }
        assert!(w.drain().unwrap().is_empty());
    }

    #[test]
    fn waiting_records_come_back_in_order_from_memory_and_file() {
        let mut w = Waiting::default();
        let record = |id: u64| format!("record {id} {}", "x".repeat(1 << 20)).into_bytes();
        for id in (2..60).rev() {
            w.put(id, record(id)).unwrap();
        }
        assert!(w.spilled.is_some(), "58 MiB spill past the 32 MiB limit");
        assert!(w.memory_bytes <= MEMORY_LIMIT);
        assert_eq!(w.take(1).unwrap(), None);
        assert_eq!(w.take(59).unwrap(), Some(record(59)));
        let rest = w.drain().unwrap();
        assert_eq!(rest.len(), 57);
        assert_eq!(rest[0], record(2));
        assert_eq!(rest[56], record(58));
    }
}
