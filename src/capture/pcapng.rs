//! pcapng: blocks of any type; packets come from Enhanced, Simple and (obsolete) Packet blocks.
//! pcap-file frames the blocks and keeps the section/interface state (link types, if_tsresol,
//! if_tsoffset, if_fcslen); packet block bodies are read here, laxly, so one odd block is one
//! skipped packet.

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{PcapNgParseError, PcapNgParser};
use pcap_file::Endianness;

use super::buffer::StreamBuffer;
use super::pcap::end_or_cut;
use super::{CaptureError, FrameMeta, Step, Timestamp};

const PACKET_BLOCK: u32 = 0x2;
const SIMPLE_PACKET_BLOCK: u32 = 0x3;
const ENHANCED_PACKET_BLOCK: u32 = 0x6;
const INTERFACE_DESCRIPTION_BLOCK: u32 = 0x1;
const SECTION_HEADER_BLOCK: u32 = 0x0a0d_0d0a;
const BLOCK_HEADER_LEN: usize = 8;

pub(crate) struct PcapNgFormat {
    parser: PcapNgParser,
    /// Simple packet blocks carry no timestamp: they get the previous packet's.
    last_ts: Timestamp,
    /// Bytes of FCS at the end of each interface's frames (if_fcslen), by interface index.
    fcs: Vec<u32>,
}

/// A packet block that cannot be attributed: counted, not fatal.
pub(crate) const BAD_INTERFACE: &str = "pcapng packet for an undeclared interface";
pub(crate) const BAD_PACKET_BLOCK: &str = "pcapng packet block too short";
pub(crate) const BAD_TIMESTAMP: &str = "pcapng timestamp out of range";

impl PcapNgFormat {
    pub fn start(buf: &mut StreamBuffer) -> Result<Self, CaptureError> {
        loop {
            let avail = buf.data();
            let needed = match PcapNgParser::new(avail) {
                Ok((rest, parser)) => {
                    let consumed = avail.len() - rest.len();
                    buf.consume(consumed);
                    let mut format = PcapNgFormat { parser, last_ts: Timestamp::default(), fcs: Vec::new() };
                    format.interfaces_changed();
                    return Ok(format);
                }
                Err(PcapNgParseError::IncompleteBuffer(..)) => block_len_hint(avail, Endianness::Big),
                Err(e) => {
                    return Err(CaptureError::at(0, format!("bad pcapng section header: {}", describe(&e))))
                }
            };
            if buf.at_eof() {
                return Err(CaptureError::at(0, "pcapng section header cut short"));
            }
            buf.fill_at_least(needed)?;
        }
    }

    pub fn next(&mut self, buf: &mut StreamBuffer) -> Result<Step, CaptureError> {
        loop {
            let endianness = self.parser.section().endianness;
            let avail = buf.data();
            let needed = match self.parser.next_raw_block(avail) {
                Ok((rest, block)) => {
                    let consumed = avail.len() - rest.len();
                    let body_start = buf.pos() + (block.body.as_ptr() as usize - avail.as_ptr() as usize);
                    let step = self.packet(block.type_, &block.body, body_start, endianness);
                    buf.consume(consumed);
                    match step {
                        Some(step) => return Ok(step),
                        None => continue,
                    }
                }
                Err(PcapNgParseError::IncompleteBuffer(..)) => block_len_hint(avail, endianness),
                Err(e) => {
                    return Err(CaptureError::at(buf.offset(), format!("bad pcapng block: {}", describe(&e))))
                }
            };
            if buf.at_eof() {
                return Ok(end_or_cut(buf, needed));
            }
            buf.fill_at_least(needed)?;
        }
    }

    /// Reads again what the interfaces say of their frames, after a block that declared or
    /// forgot interfaces.
    fn interfaces_changed(&mut self) {
        let fcs_len = |options: &[InterfaceDescriptionOption<'_>]| {
            options.iter().find_map(|o| match o {
                // In bits (the pcapng draft; Wireshark reads it so), but a writer that meant
                // bytes wrote 2 or 4, which are no number of whole bytes in bits.
                InterfaceDescriptionOption::IfFcsLen(n) if n % 8 == 0 => Some(u32::from(*n / 8)),
                InterfaceDescriptionOption::IfFcsLen(n) => Some(u32::from(*n)),
                _ => None,
            })
        };
        self.fcs = self.parser.interfaces().iter().map(|idb| fcs_len(&idb.options).unwrap_or(0)).collect();
    }

    /// A frame for packet blocks, a bad-record step for broken ones, `None` for other blocks.
    fn packet(&mut self, type_: u32, body: &[u8], body_start: usize, e: Endianness) -> Option<Step> {
        let u32_at = |i: usize| -> Option<u32> {
            let b: [u8; 4] = body.get(i..i + 4)?.try_into().ok()?;
            Some(match e {
                Endianness::Big => u32::from_be_bytes(b),
                Endianness::Little => u32::from_le_bytes(b),
            })
        };
        let u16_at = |i: usize| -> Option<u16> {
            let b: [u8; 2] = body.get(i..i + 2)?.try_into().ok()?;
            Some(match e {
                Endianness::Big => u16::from_be_bytes(b),
                Endianness::Little => u16::from_le_bytes(b),
            })
        };
        // (interface, timestamp high/low, captured length, original length, data offset)
        let fields = match type_ {
            ENHANCED_PACKET_BLOCK => {
                (|| Some((u32_at(0)?, Some((u32_at(4)?, u32_at(8)?)), u32_at(12)?, u32_at(16)?, 20)))()
            }
            PACKET_BLOCK => {
                (|| Some((u16_at(0)? as u32, Some((u32_at(4)?, u32_at(8)?)), u32_at(12)?, u32_at(16)?, 20)))()
            }
            SIMPLE_PACKET_BLOCK => (|| {
                let orig = u32_at(0)?;
                Some((0, None, orig, orig, 4))
            })(),
            INTERFACE_DESCRIPTION_BLOCK | SECTION_HEADER_BLOCK => {
                self.interfaces_changed();
                return None;
            }
            _ => return None,
        };
        let Some((iface, ts_raw, cap_len, orig_len, data_off)) = fields else {
            return Some(Step::Bad(BAD_PACKET_BLOCK));
        };
        let Some(idb) = self.parser.interfaces().get(iface as usize) else {
            return Some(Step::Bad(BAD_INTERFACE));
        };
        let link_type: u32 = idb.linktype.into();
        let ts = match ts_raw {
            Some((hi, lo)) => match self.parser.state().decode_timestamp(iface, hi, lo) {
                Ok(d) => Timestamp::from_duration(d),
                Err(_) => return Some(Step::Bad(BAD_TIMESTAMP)),
            },
            None => self.last_ts,
        };
        self.last_ts = ts;
        // A captured length past the block is cut to the block (a partial packet, not an error).
        let data_len = (cap_len as usize).min(body.len().saturating_sub(data_off));
        let meta = FrameMeta {
            ts,
            link_type,
            data_start: body_start + data_off,
            data_len,
            orig_len: orig_len.max(data_len as u32),
        };
        Some(Step::Frame(meta.without_fcs(self.fcs.get(iface as usize).copied().unwrap_or(0))))
    }
}

/// How many bytes the block at the front needs in total (its length field), or enough for a header.
fn block_len_hint(avail: &[u8], e: Endianness) -> usize {
    let Some(b) = avail.get(4..8) else {
        return BLOCK_HEADER_LEN + 4;
    };
    let b: [u8; 4] = b.try_into().expect("4 bytes");
    // A section header's length is in the byte order its magic announces, which may differ.
    let is_shb = avail[..4] == [0x0a, 0x0d, 0x0d, 0x0a];
    let len = match (is_shb, avail.get(8..12)) {
        (true, Some([0x4d, 0x3c, 0x2b, 0x1a])) => u32::from_le_bytes(b),
        (true, _) => u32::from_be_bytes(b),
        (false, _) => match e {
            Endianness::Big => u32::from_be_bytes(b),
            Endianness::Little => u32::from_le_bytes(b),
        },
    };
    (len as usize).max(avail.len() + 1)
}

fn describe(e: &PcapNgParseError) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
