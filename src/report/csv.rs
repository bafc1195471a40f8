//! CSV with a header row: the flat row's columns (`row`).

use std::io::{self, Write};

use super::record::ConnRecord;
use super::row::{FlatRow, NAMES};
use super::Exporter;
use crate::flow::inventory::SocketStats;

/// Connections as CSV rows under a header.
pub struct Csv;

impl Exporter for Csv {
    fn begin(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        writeln!(out, "{}", NAMES.join(","))
    }

    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(out);
        w.serialize(FlatRow::new(record)).map_err(to_io)?;
        w.flush()
    }

    fn fork(&self) -> Option<Box<dyn Exporter + Send>> {
        Some(Box::new(Csv))
    }
}

/// The socket inventory as CSV under a header row, one socket per row.
pub fn write_sockets(out: &mut dyn Write, sockets: &[SocketStats]) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    for s in sockets {
        w.serialize(s).map_err(to_io)?;
    }
    w.flush()
}

fn to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header names what each row holds, column for column (csv's own header from the
    /// row's fields agrees with `NAMES`).
    #[test]
    fn header_names_every_column() {
        let record = &super::super::record::of_sample("teardowns.pcap")[0];
        let mut with_header = csv::Writer::from_writer(Vec::new());
        with_header.serialize(FlatRow::new(record)).unwrap();
        let text = String::from_utf8(with_header.into_inner().unwrap()).unwrap();
        let mut ours = Vec::new();
        Csv.begin(&mut ours).unwrap();
        Csv.record(&mut ours, record).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), text);
    }
}
