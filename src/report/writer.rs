//! Connections written as they end: in order of first packet (`order`), or in end order on
//! request, through the exporter of the chosen format, in pieces of `OUT_CHUNK`.

use std::io::{self, Write};

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
    out: &'a mut dyn Write,
    exporter: Box<dyn Exporter>,
    /// `None` in end order.
    in_order: Option<InOrder>,
    /// Records are formatted straight into this buffer, written out in pieces of `OUT_CHUNK`.
    pending: Vec<u8>,
}

impl<'a> ConnWriter<'a> {
    /// Starts the output (headers, the JSON document's opening) through `exporter`.
    pub fn new(out: &'a mut dyn Write, mut exporter: Box<dyn Exporter>, order: Order) -> io::Result<Self> {
        let mut pending = Vec::with_capacity(OUT_CHUNK + (4 << 10));
        exporter.begin(&mut pending)?;
        let in_order = (order == Order::FirstSeen).then(InOrder::new);
        Ok(ConnWriter { out, exporter, in_order, pending })
    }

    /// Takes one ended connection.
    pub fn conn(&mut self, record: ConnRecord) -> io::Result<()> {
        self.put(record.id, Some(record))
    }

    /// Passes over a connection that is not to be printed (filtered out), so that later ones
    /// need not wait for it.
    pub fn skip(&mut self, id: u64) -> io::Result<()> {
        self.put(id, None)
    }

    /// Hands out what still waits and starts numbering again: the next input (`--per-file`)
    /// counts its connections from 1.
    pub fn next_input(&mut self) -> io::Result<()> {
        if let Some(mut in_order) = self.in_order.take() {
            in_order.finish(&mut |r| self.write(&r))?;
            self.in_order = Some(InOrder::new());
        }
        Ok(())
    }

    /// Ends the output: the table, or the JSON document's closing with files and accounting.
    pub fn finish(mut self, analysis: &Analysis) -> io::Result<()> {
        // Every id has ended by now, so nothing waits; this only guards against a gap.
        if let Some(mut in_order) = self.in_order.take() {
            in_order.finish(&mut |r| self.write(&r))?;
        }
        self.exporter.end(&mut self.pending, analysis)?;
        self.flush()
    }

    fn put(&mut self, id: u64, record: Option<ConnRecord>) -> io::Result<()> {
        match self.in_order.take() {
            Some(mut in_order) => {
                let done = in_order.put(id, record, &mut |r| self.write(&r));
                self.in_order = Some(in_order);
                done
            }
            None => record.map_or(Ok(()), |r| self.write(&r)),
        }
    }

    /// Formats one record into the output buffer.
    fn write(&mut self, record: &ConnRecord) -> io::Result<()> {
        self.exporter.record(&mut self.pending, record)?;
        if self.pending.len() >= OUT_CHUNK {
            self.flush()?;
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
impl Drop for ConnWriter<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
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
}
