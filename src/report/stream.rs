//! Connections written as they end, in order of first packet (or in end order on request).
//!
//! The table hands out a connection when it ends. For first-seen order, a connection that ends
//! before an older one is kept here, already formatted (a few hundred bytes instead of its full
//! TCP state), until every older one has been written; so memory follows the connections still
//! open plus those waiting behind the oldest open one. `--order end` writes each at once.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::record::ConnRecord;
use super::{csv, json, jsonl, table, zeek, AccountingRecord, Format};
use crate::analyze::Analysis;
use crate::flow::Conn;

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
    waiting: BTreeMap<u64, Vec<u8>>,
    /// The table format needs every row to size its columns.
    rows: Vec<ConnRecord>,
    written: u64,
}

impl<'a> ConnWriter<'a> {
    /// Starts the output (headers, the JSON document's opening).
    pub fn new(out: &'a mut dyn Write, format: Format, order: Order) -> io::Result<Self> {
        match format {
            Format::Csv => out.write_all(csv::CONN_HEADER.as_bytes())?,
            Format::Zeek => zeek::header(out)?,
            Format::Json => json::open(out, "connections")?,
            Format::Jsonl | Format::Table => {}
        }
        Ok(ConnWriter {
            out,
            format,
            order,
            next_id: 1,
            waiting: BTreeMap::new(),
            rows: Vec::new(),
            written: 0,
        })
    }

    /// Takes one ended connection.
    pub fn conn(&mut self, c: &Conn) -> io::Result<()> {
        let record = ConnRecord::new(c);
        if self.format == Format::Table {
            self.rows.push(record);
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(512);
        match self.format {
            Format::Jsonl | Format::Json => jsonl::line(&mut bytes, &record),
            Format::Csv => csv::conn_row(&mut bytes, &record),
            Format::Zeek => zeek::row(&mut bytes, &record),
            Format::Table => unreachable!("kept above"),
        }
        if self.order == Order::End || c.id == self.next_id {
            self.emit(&bytes)?;
            self.next_id = self.next_id.max(c.id + 1);
            while let Some(next) = self.waiting.remove(&self.next_id) {
                self.emit(&next)?;
                self.next_id += 1;
            }
        } else {
            self.waiting.insert(c.id, bytes);
        }
        Ok(())
    }

    /// Ends the output: the table, or the JSON document's closing with files and accounting.
    pub fn finish(mut self, analysis: &Analysis) -> io::Result<()> {
        // Every id has ended by now, so nothing waits; this only guards against a gap.
        for bytes in std::mem::take(&mut self.waiting).into_values() {
            self.emit(&bytes)?;
        }
        match self.format {
            Format::Table => {
                self.rows.sort_unstable_by_key(|r| r.id);
                table::write_conns(self.out, &self.rows)
            }
            Format::Json => {
                json::close(self.out, &analysis.files, &AccountingRecord::new(&analysis.accounting))
            }
            _ => Ok(()),
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
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
