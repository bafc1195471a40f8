//! Capture files to frames: pcap and pcapng, plain or gzip, from a path or stdin.
//!
//! The file is streamed through one reusable buffer; frames borrow from it, so memory does not
//! grow with the file. pcap-file parses the formats; we own the buffering so that a cut-short
//! file yields every complete record plus a warning, and so errors can name the byte offset.

mod buffer;
mod pcap;
mod pcapng;
mod write;

pub use write::write_frames;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use crate::types::Timestamp;
use buffer::StreamBuffer;

/// One captured packet as the file stores it.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// When the frame was captured: the record's timestamp.
    pub ts: Timestamp,
    /// LINKTYPE_* value of the interface the frame was captured on.
    pub link_type: u32,
    /// Captured bytes (possibly cut by the snap length).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
}

/// What the reader yields: a frame, or a packet record too damaged to attribute (counted as skipped).
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    /// A packet record read in full.
    Frame(Frame<'a>),
    /// A damaged packet record, and why it could not be used.
    Bad(&'static str),
}

/// Why a file could not be read (further).
#[derive(Debug)]
pub struct CaptureError {
    /// Byte offset in the (decompressed) stream where the problem is, when known.
    pub offset: Option<u64>,
    /// What is wrong, in words.
    pub reason: String,
}

impl CaptureError {
    fn at(offset: u64, reason: impl Into<String>) -> Self {
        CaptureError { offset: Some(offset), reason: reason.into() }
    }

    fn io(offset: u64, e: &io::Error) -> Self {
        Self::at(offset, format!("read error: {e}"))
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(off) => write!(f, "{} (at byte {off})", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// A record that ended before its declared length: everything before it was read.
#[derive(Clone, Debug)]
pub struct Truncation {
    /// Byte offset (in the decompressed stream) where the cut record starts.
    pub offset: u64,
    /// Bytes the record needs from that offset, header included.
    pub needed: usize,
    /// Bytes the file still had from that offset.
    pub available: usize,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "file cut short: the record at byte {} needs {} bytes but only {} remain",
            self.offset, self.needed, self.available
        )
    }
}

/// Records larger than this are treated as damage rather than buffered.
/// (Wireshark's own limit for most link types is 256 KiB; pcapng blocks may carry more.)
pub const MAX_RECORD_LEN: usize = 64 << 20;

enum Format {
    Pcap(pcap::PcapFormat),
    PcapNg(pcapng::PcapNgFormat),
}

/// Which container the file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Classic libpcap format.
    Pcap,
    /// pcapng (PCAP Next Generation).
    PcapNg,
}

/// Streams the frames of one capture.
pub struct CaptureReader {
    buf: StreamBuffer,
    format: Format,
    /// Whether the input was gzip-compressed (detected by its magic bytes).
    pub gzip: bool,
    truncation: Option<Truncation>,
    done: bool,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_MAGICS: [[u8; 4]; 6] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    pcap::MODIFIED_MAGICS[0],
    pcap::MODIFIED_MAGICS[1],
];

impl CaptureReader {
    /// Opens a path, or stdin for `-`.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            if path.is_dir() {
                return Err(CaptureError {
                    offset: None,
                    reason: "a directory with no capture files in it".into(),
                });
            }
            let file =
                File::open(path).map_err(|e| CaptureError { offset: None, reason: open_reason(&e) })?;
            Box::new(file)
        };
        Self::new(input)
    }

    /// Detects gzip, then pcap or pcapng, by content.
    pub fn new(input: Box<dyn Read>) -> Result<Self, CaptureError> {
        let mut raw = BufReader::with_capacity(1 << 16, input);
        let head = raw.fill_buf().map_err(|e| CaptureError::io(0, &e))?;
        let gzip = head.starts_with(&GZIP_MAGIC);
        let source: Box<dyn Read> = if gzip { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) };
        let mut buf = StreamBuffer::new(source);
        buf.fill_at_least(4)?;
        let magic = buf.data();
        if magic.is_empty() {
            return Err(CaptureError::at(0, "empty file, not a capture"));
        }
        let format = if magic.starts_with(&PCAPNG_MAGIC) {
            Format::PcapNg(pcapng::PcapNgFormat::start(&mut buf)?)
        } else if magic.len() >= 4 && PCAP_MAGICS.iter().any(|m| magic.starts_with(m)) {
            Format::Pcap(pcap::PcapFormat::start(&mut buf)?)
        } else {
            let shown: Vec<String> = magic.iter().take(4).map(|b| format!("{b:02x}")).collect();
            return Err(CaptureError::at(
                0,
                format!("not a pcap or pcapng file (starts with {})", shown.join(" ")),
            ));
        };
        Ok(CaptureReader { buf, format, gzip, truncation: None, done: false })
    }

    /// Whether the file is pcap or pcapng.
    pub fn kind(&self) -> FileKind {
        match self.format {
            Format::Pcap(_) => FileKind::Pcap,
            Format::PcapNg(_) => FileKind::PcapNg,
        }
    }

    /// The next record, `None` at the end (check [`Self::truncation`] then).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let step = match &mut self.format {
            Format::Pcap(f) => f.next(&mut self.buf),
            Format::PcapNg(f) => f.next(&mut self.buf),
        };
        match step {
            Ok(Step::Frame(meta)) => Ok(Some(Record::Frame(self.buf.frame(meta)))),
            Ok(Step::Bad(reason)) => Ok(Some(Record::Bad(reason))),
            Ok(Step::End) => {
                self.done = true;
                Ok(None)
            }
            Ok(Step::Truncated(t)) => {
                self.done = true;
                self.truncation = Some(t);
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// The record the file was cut short in, once [`Self::next_record`] has returned `None`.
    pub fn truncation(&self) -> Option<&Truncation> {
        self.truncation.as_ref()
    }

    /// Bytes consumed so far (of the decompressed stream).
    pub fn offset(&self) -> u64 {
        self.buf.offset()
    }
}

/// Where a parsed frame sits in the buffer, so the frame can borrow it after parsing.
pub(crate) struct FrameMeta {
    ts: Timestamp,
    link_type: u32,
    data_start: usize,
    data_len: usize,
    orig_len: u32,
}

impl FrameMeta {
    /// The frame without the `fcs` bytes of frame check sequence its link layer ends in, as far
    /// as they were captured. The wire length loses them too, so that a frame cut by the snap
    /// length still reads as cut and one captured whole as whole.
    fn without_fcs(mut self, fcs: u32) -> Self {
        if fcs == 0 {
            return self;
        }
        let captured = u32::try_from(self.data_len).unwrap_or(u32::MAX);
        let missing = self.orig_len.saturating_sub(captured);
        let trimmed = fcs.saturating_sub(missing).min(captured);
        self.data_len -= trimmed as usize;
        self.orig_len = self.orig_len.saturating_sub(fcs).max(captured - trimmed);
        self
    }
}

pub(crate) enum Step {
    Frame(FrameMeta),
    Bad(&'static str),
    End,
    Truncated(Truncation),
}

fn open_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot open: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::io::Cursor;
    use std::time::Duration;

    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;

    use super::*;

    /// The (captured, original) lengths of every frame of an in-memory capture.
    fn lengths(bytes: Vec<u8>) -> Vec<(usize, u32)> {
        let mut reader = CaptureReader::new(Box::new(Cursor::new(bytes))).unwrap();
        let mut out = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            if let Record::Frame(f) = record {
                out.push((f.data.len(), f.orig_len));
            }
        }
        out
    }

    /// A pcapng file: an interface with `if_fcslen` (when given), then frames of (captured
    /// bytes, original length).
    fn pcapng(fcslen: Option<u8>, frames: &[(usize, u32)]) -> Vec<u8> {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        let options = fcslen.map(InterfaceDescriptionOption::IfFcsLen).into_iter().collect();
        let idb = InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen: 0, options };
        w.write_pcapng_block(idb).unwrap();
        for &(captured, original_len) in frames {
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_secs(1),
                original_len,
                data: Cow::Owned(vec![0; captured]),
                options: vec![],
            };
            w.write_pcapng_block(epb).unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn pcapng_if_fcslen_trims_the_captured_fcs() {
        let frames = [(64, 64), (60, 100), (62, 64), (2, 2)];
        // 32 bits, as the pcapng draft counts; 4, as a writer counting bytes would put it.
        for fcslen in [32, 4] {
            assert_eq!(lengths(pcapng(Some(fcslen), &frames)), [(60, 60), (60, 96), (60, 60), (0, 0)]);
        }
        assert_eq!(lengths(pcapng(None, &frames)), frames);
        assert_eq!(lengths(pcapng(Some(0), &frames)), frames);
    }

    /// A pcap file whose header's link-type field is `field`, with one frame of 64 bytes.
    fn pcap(field: u32) -> Vec<u8> {
        let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0];
        f.extend_from_slice(&field.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 64, 0, 0, 0]);
        f.extend_from_slice(&[0; 64]);
        f
    }

    #[test]
    fn pcap_link_type_field_upper_bits() {
        // The FCS length known (bit 26), 2 units of 16 bits: 4 bytes.
        let mut reader = CaptureReader::new(Box::new(Cursor::new(pcap(0x2400_0001)))).unwrap();
        match reader.next_record().unwrap() {
            Some(Record::Frame(f)) => assert_eq!((f.link_type, f.data.len(), f.orig_len), (1, 60, 60)),
            _ => panic!("a frame"),
        }
        // A length without the flag says nothing; reserved bits are not part of the link type.
        assert_eq!(lengths(pcap(0x2000_0001)), [(64, 64)]);
        let mut reader = CaptureReader::new(Box::new(Cursor::new(pcap(0x0300_0001)))).unwrap();
        assert!(matches!(reader.next_record().unwrap(), Some(Record::Frame(f)) if f.link_type == 1));
    }
}
