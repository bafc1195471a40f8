//! Writing frames back out: the packets of some connections as a pcap file of their own.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapTsResolution, PcapWriter};
use pcap_file::{DataLink, Endianness};

use super::{CaptureReader, Record};

/// Copies the records numbered in `wanted` (1-based, as the analysis numbers a file's records)
/// from the capture at `input` to a pcap file written to `out` (nanosecond timestamps, the link
/// type of the first one). Returns how many were written; a record of another link type is
/// left out (a pcap file has one), and so counted as not written.
pub fn write_frames(input: &Path, wanted: &BTreeSet<u64>, out: impl Write) -> io::Result<u64> {
    let mut reader =
        CaptureReader::open(input).map_err(|e| io::Error::other(format!("{}: {e}", input.display())))?;
    let mut writer: Option<(PcapWriter<_>, u32)> = None;
    let mut out = Some(out);
    let (mut number, mut written) = (0u64, 0u64);
    let last = wanted.last().copied().unwrap_or(0);
    while number < last {
        let record =
            reader.next_record().map_err(|e| io::Error::other(format!("{}: {e}", input.display())))?;
        let Some(record) = record else { break };
        number += 1;
        let Record::Frame(f) = record else { continue };
        if !wanted.contains(&number) {
            continue;
        }
        if writer.is_none() {
            let header = PcapHeader {
                datalink: DataLink::from(f.link_type),
                ts_resolution: PcapTsResolution::NanoSecond,
                endianness: Endianness::Little,
                ..PcapHeader::default()
            };
            let w =
                PcapWriter::with_header(out.take().expect("one writer"), header).map_err(io::Error::other)?;
            writer = Some((w, f.link_type));
        }
        let (w, link_type) = writer.as_mut().expect("made above");
        if f.link_type != *link_type {
            continue;
        }
        let ts = std::time::Duration::from_nanos(f.ts.nanos());
        let packet = PcapPacket::new(ts, f.orig_len, f.data).map_err(io::Error::other)?;
        w.write_packet(&packet).map_err(io::Error::other)?;
        written += 1;
    }
    Ok(written)
}
