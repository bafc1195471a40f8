//! Classic libpcap files: a 24-byte header, then 16-byte record headers. Also the "modified"
//! format of old Linux tcpdump builds (magic 0xa1b2cd34): each record header is 8 bytes longer
//! (interface index, protocol, packet type, padding), timestamps in microseconds.

use pcap_file::pcap::{PcapParseError, PcapParser, PcapTsResolution};
use pcap_file::Endianness;

use super::buffer::StreamBuffer;
use super::{CaptureError, FrameMeta, Step, Timestamp, Truncation};

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// The modified format's magic, little- and big-endian.
pub(crate) const MODIFIED_MAGICS: [[u8; 4]; 2] = [[0x34, 0xcd, 0xb2, 0xa1], [0xa1, 0xb2, 0xcd, 0x34]];
/// Its record header: the classic one, then interface index, protocol, packet type, padding.
const MODIFIED_RECORD_HEADER_LEN: usize = 24;

/// The file header's link-type field: the LINKTYPE in its low 16 bits; above, as libpcap reads
/// it (pcap/pcap.h, LT_FCS_LENGTH), a flag saying the FCS length is known and that length in
/// its top 4 bits, in 16-bit units. The bits between are reserved.
const LINK_TYPE_MASK: u32 = 0xffff;
const FCS_LEN_KNOWN: u32 = 0x0400_0000;
const FCS_LEN_SHIFT: u32 = 28;

pub(crate) struct PcapFormat {
    parser: PcapParser,
    /// The file is in the modified format.
    modified: bool,
    /// The LINKTYPE of every record.
    link_type: u32,
    /// Bytes of FCS at the end of every frame.
    fcs: u32,
}

impl PcapFormat {
    pub fn start(buf: &mut StreamBuffer) -> Result<Self, CaptureError> {
        buf.fill_at_least(FILE_HEADER_LEN)?;
        let mut header = buf.data().get(..FILE_HEADER_LEN).unwrap_or(buf.data()).to_vec();
        let modified = MODIFIED_MAGICS.iter().any(|m| header.starts_with(m));
        if modified {
            // The file header is the classic one: read it as microsecond pcap in the same order.
            let classic: [u8; 4] =
                if header[0] == 0x34 { [0xd4, 0xc3, 0xb2, 0xa1] } else { [0xa1, 0xb2, 0xc3, 0xd4] };
            header[..4].copy_from_slice(&classic);
        }
        match PcapParser::new(&header) {
            Ok((_, parser)) => {
                buf.consume(FILE_HEADER_LEN);
                let field: u32 = parser.header().datalink.into();
                let fcs = if field & FCS_LEN_KNOWN != 0 { (field >> FCS_LEN_SHIFT) * 2 } else { 0 };
                Ok(PcapFormat { parser, modified, link_type: field & LINK_TYPE_MASK, fcs })
            }
            Err(PcapParseError::IncompleteBuffer(..)) => {
                Err(CaptureError::at(0, "pcap file header cut short"))
            }
            Err(e) => Err(CaptureError::at(0, format!("bad pcap file header: {e}"))),
        }
    }

    pub fn next(&mut self, buf: &mut StreamBuffer) -> Result<Step, CaptureError> {
        if self.modified {
            return self.next_modified(buf);
        }
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
                        link_type: self.link_type,
                        data_start: buf.pos() + RECORD_HEADER_LEN,
                        data_len: raw.incl_len as usize,
                        orig_len: raw.orig_len.max(raw.incl_len),
                    };
                    buf.consume(consumed);
                    return Ok(Step::Frame(meta.without_fcs(self.fcs)));
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

    /// The next record of a modified-format file, whose records pcap-file cannot read.
    fn next_modified(&mut self, buf: &mut StreamBuffer) -> Result<Step, CaptureError> {
        let header = self.parser.header();
        let word = |h: &[u8], at: usize| {
            let b: [u8; 4] = h[at..at + 4].try_into().expect("4 bytes");
            match header.endianness {
                Endianness::Big => u32::from_be_bytes(b),
                Endianness::Little => u32::from_le_bytes(b),
            }
        };
        loop {
            let avail = buf.data();
            let needed = match avail.get(..MODIFIED_RECORD_HEADER_LEN) {
                Some(h) => {
                    let (sec, usec, incl_len, orig_len) = (word(h, 0), word(h, 4), word(h, 8), word(h, 12));
                    let needed = MODIFIED_RECORD_HEADER_LEN + incl_len as usize;
                    if avail.len() >= needed {
                        let meta = FrameMeta {
                            ts: Timestamp::from_nanos(
                                (u64::from(sec) * 1_000_000_000).saturating_add(u64::from(usec) * 1000),
                            ),
                            link_type: self.link_type,
                            data_start: buf.pos() + MODIFIED_RECORD_HEADER_LEN,
                            data_len: incl_len as usize,
                            orig_len: orig_len.max(incl_len),
                        };
                        buf.consume(needed);
                        return Ok(Step::Frame(meta.without_fcs(self.fcs)));
                    }
                    needed
                }
                None => MODIFIED_RECORD_HEADER_LEN,
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
