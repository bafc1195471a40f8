//! One JSON document: `{"<items>": [...], "files": [...], "packets": {...}}`, written as it goes
//! so that connections need not be held until the end.

use std::io::{self, Write};

use super::record::ConnRecord;
use super::{jsonl, AccountingRecord, Exporter};
use crate::flow::inventory::SocketStats;
use crate::pipeline::{Analysis, FileReport};

/// Connections as one JSON document, with the files read and the packet accounting.
#[derive(Default)]
pub struct Json {
    written: u64,
}

impl Exporter for Json {
    fn begin(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        open(out, "connections")
    }

    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        if self.written > 0 {
            separator(out)?;
        }
        jsonl::conn_line(out, record);
        out.pop(); // array items are separated by `separator` instead of the line's end
        self.written += 1;
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>, analysis: &Analysis) -> io::Result<()> {
        close(out, &analysis.files, &AccountingRecord::new(&analysis.accounting))
    }
}

/// The socket inventory as one JSON document, with the files read and the packet accounting.
pub fn write_sockets(out: &mut dyn Write, sockets: &[SocketStats], analysis: &Analysis) -> io::Result<()> {
    open(out, "sockets")?;
    for (i, s) in sockets.iter().enumerate() {
        if i > 0 {
            separator(out)?;
        }
        serde_json::to_writer(&mut *out, s)?;
    }
    close(out, &analysis.files, &AccountingRecord::new(&analysis.accounting))
}

/// Starts the document and its item array.
pub fn open(out: &mut dyn Write, key: &str) -> io::Result<()> {
    writeln!(out, "{{\"{key}\": [")
}

/// Separates array items: call before each item but the first.
pub fn separator(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b",\n")
}

/// Ends the item array and the document.
pub fn close(out: &mut dyn Write, files: &[FileReport], packets: &AccountingRecord) -> io::Result<()> {
    out.write_all(b"\n],\n\"files\": ")?;
    serde_json::to_writer(&mut *out, files)?;
    out.write_all(b",\n\"packets\": ")?;
    serde_json::to_writer(&mut *out, packets)?;
    out.write_all(b"\n}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Accounting;

    #[test]
    fn the_document_parses() {
        let mut out = Vec::new();
        open(&mut out, "things").unwrap();
        out.extend_from_slice(b"{\"a\":1}");
        separator(&mut out).unwrap();
        out.extend_from_slice(b"{\"a\":2}");
        close(&mut out, &[], &AccountingRecord::new(&Accounting::default())).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["things"][1]["a"], 2);
        assert_eq!(doc["packets"]["total"], 0);
    }
}
