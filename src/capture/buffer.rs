//! One growable read buffer over the input stream.

use std::io::{ErrorKind, Read};

use super::{CaptureError, Frame, FrameMeta, MAX_RECORD_LEN};

/// Small enough to stay in the core's L2 cache next to the connection table; a read call per
/// 128 KiB costs nothing measurable (docs/performance.md, "Reading").
const CHUNK: usize = 1 << 17;

pub(crate) struct StreamBuffer {
    source: Box<dyn Read>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// The stream itself ended early (a gzip member without its trailer).
    pub stream_cut: bool,
}

impl StreamBuffer {
    pub fn new(source: Box<dyn Read>) -> Self {
        StreamBuffer { source, buf: vec![0; CHUNK], pos: 0, len: 0, base: 0, eof: false, stream_cut: false }
    }

    /// Unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Index in the buffer of the first unconsumed byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Stream offset of the first unconsumed byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn at_eof(&self) -> bool {
        self.eof
    }

    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }

    /// Reads until at least `n` unconsumed bytes are buffered or the stream ends.
    pub fn fill_at_least(&mut self, n: usize) -> Result<(), CaptureError> {
        if n > MAX_RECORD_LEN {
            return Err(CaptureError::at(
                self.offset(),
                format!("record claims {n} bytes, more than the {} MiB limit", MAX_RECORD_LEN >> 20),
            ));
        }
        while self.len - self.pos < n && !self.eof {
            if self.pos + n > self.buf.len() {
                // Slide the unconsumed tail to the front; grow only for records bigger than a chunk.
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.base += self.pos as u64;
                self.pos = 0;
                if n > self.buf.len() {
                    self.buf.resize(n.next_power_of_two().min(MAX_RECORD_LEN), 0);
                }
            }
            match self.source.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.len += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    self.stream_cut = true;
                }
                Err(e) => return Err(CaptureError::io(self.base + self.len as u64, &e)),
            }
        }
        Ok(())
    }

    /// The frame a format parser located in the buffer; valid until the next fill.
    pub fn frame(&self, meta: FrameMeta) -> Frame<'_> {
        Frame {
            ts: meta.ts,
            link_type: meta.link_type,
            data: &self.buf[meta.data_start..meta.data_start + meta.data_len],
            orig_len: meta.orig_len,
        }
    }
}
