//! Classic libpcap files: a 24-byte header, then 16-byte record headers.

use pcap_file::pcap::{PcapParseError, PcapParser, PcapTsResolution};

use super::buffer::StreamBuffer;
use super::{CaptureError, FrameMeta, Step, Timestamp, Truncation};

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

pub(crate) struct PcapFormat {
    parser: PcapParser,
}

impl PcapFormat {
    pub fn start(buf: &mut StreamBuffer) -> Result<Self, CaptureError> {
        buf.fill_at_least(FILE_HEADER_LEN)?;
        match PcapParser::new(buf.data()) {
            Ok((_, parser)) => {
                buf.consume(FILE_HEADER_LEN);
                Ok(PcapFormat { parser })
            }
            Err(PcapParseError::IncompleteBuffer(..)) => {
                Err(CaptureError::at(0, "pcap file header cut short"))
            }
            Err(e) => Err(CaptureError::at(0, format!("bad pcap file header: {e}"))),
        }
    }

    pub fn next(&mut self, buf: &mut StreamBuffer) -> Result<Step, CaptureError> {
        loop {
            let avail = buf.data();
            let header = self.parser.header();
            let needed = match self.parser.next_raw_packet(avail) {
                Ok((rest, raw)) => {
                    let consumed = avail.len() - rest.len();
                    let ts_nanos = match header.ts_resolution {
                        PcapTsResolution::MicroSecond => raw.ts_frac.saturating_mul(1000),
                        PcapTsResolution::NanoSecond => raw.ts_frac,
                    };
                    let meta = FrameMeta {
                        // Fractions past one second are kept as they are (Wireshark does too).
                        ts: Timestamp::from_nanos(
                            (raw.ts_sec as u64 * 1_000_000_000).saturating_add(ts_nanos as u64),
                        ),
                        link_type: header.datalink.into(),
                        data_start: buf.pos() + RECORD_HEADER_LEN,
                        data_len: raw.incl_len as usize,
                        orig_len: raw.orig_len.max(raw.incl_len),
                    };
                    buf.consume(consumed);
                    return Ok(Step::Frame(meta));
                }
                // The record body length excludes its header.
                Err(PcapParseError::IncompleteBuffer(n, _)) if avail.len() >= RECORD_HEADER_LEN => {
                    RECORD_HEADER_LEN + n
                }
                Err(PcapParseError::IncompleteBuffer(n, _)) => n,
                Err(e) => return Err(CaptureError::at(buf.offset(), format!("bad pcap record: {e}"))),
            };
            if buf.at_eof() {
                return Ok(end_or_cut(buf, needed));
            }
            buf.fill_at_least(needed)?;
        }
    }
}

/// At end of input: a clean end, or a record cut short.
pub(crate) fn end_or_cut(buf: &StreamBuffer, needed: usize) -> Step {
    if buf.data().is_empty() && !buf.stream_cut {
        Step::End
    } else {
        Step::Truncated(Truncation { offset: buf.offset(), needed, available: buf.data().len() })
    }
}
