//! Wireless LAN captures: IEEE 802.11 frames, alone (LINKTYPE_IEEE802_11) or after the radio
//! header a monitor-mode capture puts before each one: radiotap, PPI, Prism or AVS. A data
//! frame's payload goes on through its LLC/SNAP header into the ethertype walk.

use super::field::{be32, le16, le32, Field};
use super::link::{link, llc, Net, LINK_IEEE802_11, LINK_PPI};
use super::{Other, Skip};

/// The IEEE 802.11 MAC header (IEEE 802.11-2020 section 9.2).
mod dot11 {
    /// Frame control's first byte: protocol version (2 bits), type (2 bits), subtype (4 bits).
    pub const FC: usize = 0;
    /// Frame control's second byte: the flags.
    pub const FLAGS: usize = 1;
    /// Frame control, duration, three addresses, sequence control.
    pub const HEADER: usize = 24;
    /// The fourth address, of a frame from one distribution system to another.
    pub const ADDR4: usize = 6;
    /// QoS control, in QoS data frames.
    pub const QOS: usize = 2;
    /// HT control, in QoS data frames with the Order flag.
    pub const HT_CONTROL: usize = 4;

    pub const TYPE_MANAGEMENT: u8 = 0;
    pub const TYPE_CONTROL: u8 = 1;
    pub const TYPE_DATA: u8 = 2;
    /// Subtype bits of a data frame: QoS, and no payload (null data, CF-Ack or CF-Poll alone).
    pub const SUBTYPE_QOS: u8 = 0x08;
    pub const SUBTYPE_NO_DATA: u8 = 0x04;
    /// Flags: to and from the distribution system (both: four addresses), protected, order.
    pub const TO_FROM_DS: u8 = 0x03;
    pub const PROTECTED: u8 = 0x40;
    pub const ORDER: u8 = 0x80;
    /// QoS control's first byte: the payload is an aggregate of several MSDUs.
    pub const QOS_AMSDU: u8 = 0x80;
}

/// Radiotap (<https://www.radiotap.org>): version, pad, length (little-endian), then present
/// bitmaps, each saying by bit 31 that another follows, then the fields they announce, each
/// aligned to its size from the header's start.
mod radiotap {
    use super::Field;
    pub const VERSION: usize = 0;
    pub const LEN: Field = 2..4;
    pub const PRESENT: usize = 4;
    pub const PRESENT_LEN: usize = 4;
    pub const MIN: usize = 8;
    pub const EXT: u32 = 1 << 31;
    /// The fields before Flags: TSFT, a 64-bit timestamp.
    pub const TSFT: u32 = 1 << 0;
    pub const TSFT_LEN: usize = 8;
    pub const FLAGS: u32 = 1 << 1;
    /// Flags: the frame ends in its FCS; padding after the 802.11 header; the FCS failed.
    pub const FLAG_FCS: u8 = 0x10;
    pub const FLAG_DATAPAD: u8 = 0x20;
    pub const FLAG_BAD_FCS: u8 = 0x40;
}

/// The 802.11 frame check sequence.
const FCS_LEN: usize = 4;

/// CACE's Per-Packet Information header: version, flags, length and the link type of what
/// follows (little-endian), then fields, each a type and length and its bytes.
mod ppi {
    use super::Field;
    pub const VERSION: usize = 0;
    pub const FLAGS: usize = 1;
    pub const LEN: Field = 2..4;
    pub const DLT: Field = 4..8;
    pub const FIELDS: usize = 8;
    /// Flags: each field starts at a multiple of 4 bytes.
    pub const FLAG_ALIGNED: u8 = 0x01;
    pub const FIELD_TYPE: Field = 0..2;
    pub const FIELD_LEN: Field = 2..4;
    pub const FIELD_HEADER: usize = 4;
    /// The 802.11-Common field: a timestamp, then flags.
    pub const COMMON: u16 = 2;
    pub const COMMON_FLAGS: Field = 8..10;
    pub const FLAG_FCS: u16 = 0x0001;
    pub const FLAG_BAD_FCS: u16 = 0x0004;
}

/// The Prism monitoring header (LINKTYPE_IEEE802_11_PRISM): a message code and the header's
/// length, in the capturing host's byte order, then fixed items.
mod prism {
    use super::Field;
    pub const MSGCODE: Field = 0..4;
    pub const LEN: Field = 4..8;
    /// The two message codes of captured frames (DIDmsg_lnxind_wlansniffrm and its older form).
    pub const CODES: [u32; 2] = [0x44, 0x41];
}

/// The AVS capture header (LINKTYPE_IEEE802_11_AVS), big-endian: a magic number with the
/// version in its last 4 bits, then the header's length.
mod avs {
    use super::Field;
    pub const MAGIC: Field = 0..4;
    pub const MAGIC_MASK: u32 = 0xffff_fff0;
    pub const MAGIC_VALUE: u32 = 0x8021_1000;
    pub const LEN: Field = 4..8;
    pub const MIN: usize = 8;
}

/// An 802.11 frame; `pad` when the capture put padding after the MAC header to a multiple of
/// 4 bytes (radiotap's DATAPAD flag). Only unprotected data frames carry anything readable.
pub(super) fn ieee80211(data: &[u8], pad: bool) -> Result<Net<'_>, Skip> {
    let fc = *data.get(dot11::FC).ok_or(Skip::TruncatedLinkHeader)?;
    if fc & 0x03 != 0 {
        return Err(Skip::Bad80211Header);
    }
    match (fc >> 2) & 0x03 {
        dot11::TYPE_DATA => {}
        dot11::TYPE_MANAGEMENT => return Ok(Net::Other(Other::WlanManagement)),
        dot11::TYPE_CONTROL => return Ok(Net::Other(Other::WlanControl)),
        _ => return Ok(Net::Other(Other::WlanExtension)),
    }
    let subtype = fc >> 4;
    if subtype & dot11::SUBTYPE_NO_DATA != 0 {
        return Ok(Net::Other(Other::WlanNoData));
    }
    let flags = *data.get(dot11::FLAGS).ok_or(Skip::TruncatedLinkHeader)?;
    if flags & dot11::PROTECTED != 0 {
        return Ok(Net::Other(Other::WlanProtected));
    }
    let mut len = dot11::HEADER;
    if flags & dot11::TO_FROM_DS == dot11::TO_FROM_DS {
        len += dot11::ADDR4;
    }
    if subtype & dot11::SUBTYPE_QOS != 0 {
        // Several packets in one frame would be several packets in one bucket.
        if data.get(len).ok_or(Skip::TruncatedLinkHeader)? & dot11::QOS_AMSDU != 0 {
            return Ok(Net::Other(Other::WlanAmsdu));
        }
        len += dot11::QOS;
        if flags & dot11::ORDER != 0 {
            len += dot11::HT_CONTROL;
        }
    }
    if pad {
        len = len.next_multiple_of(4);
    }
    llc(data.get(len..).ok_or(Skip::TruncatedLinkHeader)?)
}

/// The frame without its last `FCS_LEN` bytes when `fcs` says it ends in its FCS.
fn without_fcs(frame: &[u8], fcs: bool) -> Result<&[u8], Skip> {
    if !fcs {
        return Ok(frame);
    }
    let len = frame.len().checked_sub(FCS_LEN).ok_or(Skip::TruncatedLinkHeader)?;
    Ok(&frame[..len])
}

/// A radiotap header, then an 802.11 frame. Its Flags field says whether the frame ends in
/// its FCS, whether the FCS failed and whether the MAC header is padded; finding Flags means
/// walking past the present bitmaps and the timestamp that may come first.
pub(super) fn radiotap(data: &[u8]) -> Result<Net<'_>, Skip> {
    if *data.get(radiotap::VERSION).ok_or(Skip::TruncatedLinkHeader)? != 0 {
        return Err(Skip::BadRadiotapHeader);
    }
    let len = usize::from(le16(data, radiotap::LEN).ok_or(Skip::TruncatedLinkHeader)?);
    let header = data.get(..len).ok_or(Skip::TruncatedLinkHeader)?;
    if len < radiotap::MIN {
        return Err(Skip::BadRadiotapHeader);
    }
    let present = le32(header, radiotap::PRESENT..radiotap::PRESENT + radiotap::PRESENT_LEN)
        .ok_or(Skip::BadRadiotapHeader)?;
    let mut at = radiotap::PRESENT;
    let mut word = present;
    while word & radiotap::EXT != 0 {
        at += radiotap::PRESENT_LEN;
        word = le32(header, at..at + radiotap::PRESENT_LEN).ok_or(Skip::BadRadiotapHeader)?;
    }
    at += radiotap::PRESENT_LEN;
    let flags = if present & radiotap::FLAGS != 0 {
        if present & radiotap::TSFT != 0 {
            at = at.next_multiple_of(radiotap::TSFT_LEN) + radiotap::TSFT_LEN;
        }
        *header.get(at).ok_or(Skip::BadRadiotapHeader)?
    } else {
        0
    };
    if flags & radiotap::FLAG_BAD_FCS != 0 {
        return Err(Skip::BadFcs);
    }
    let frame = without_fcs(&data[len..], flags & radiotap::FLAG_FCS != 0)?;
    ieee80211(frame, flags & radiotap::FLAG_DATAPAD != 0)
}

/// A PPI header, then a frame of the link type it names. Its 802.11-Common field, when there,
/// says whether an 802.11 frame ends in its FCS and whether that failed.
pub(super) fn ppi(data: &[u8]) -> Result<Net<'_>, Skip> {
    if *data.get(ppi::VERSION).ok_or(Skip::TruncatedLinkHeader)? != 0 {
        return Err(Skip::BadPpiHeader);
    }
    let len = usize::from(le16(data, ppi::LEN).ok_or(Skip::TruncatedLinkHeader)?);
    let dlt = le32(data, ppi::DLT).ok_or(Skip::TruncatedLinkHeader)?;
    let header = data.get(..len).ok_or(Skip::TruncatedLinkHeader)?;
    if len < ppi::FIELDS {
        return Err(Skip::BadPpiHeader);
    }
    let aligned = header[ppi::FLAGS] & ppi::FLAG_ALIGNED != 0;
    let mut at = ppi::FIELDS;
    let mut fcs = false;
    while at < len {
        let field = &header[at..];
        let ty = le16(field, ppi::FIELD_TYPE).ok_or(Skip::BadPpiHeader)?;
        let end = ppi::FIELD_HEADER + usize::from(le16(field, ppi::FIELD_LEN).ok_or(Skip::BadPpiHeader)?);
        let value = field.get(ppi::FIELD_HEADER..end).ok_or(Skip::BadPpiHeader)?;
        if ty == ppi::COMMON {
            if let Some(flags) = le16(value, ppi::COMMON_FLAGS) {
                if flags & ppi::FLAG_BAD_FCS != 0 {
                    return Err(Skip::BadFcs);
                }
                fcs = flags & ppi::FLAG_FCS != 0;
            }
        }
        at += end;
        if aligned {
            at = at.next_multiple_of(4);
        }
    }
    let frame = without_fcs(&data[len..], fcs)?;
    match dlt {
        LINK_IEEE802_11 => ieee80211(frame, false),
        // A PPI header inside one would only be another way to nest without end.
        LINK_PPI => Err(Skip::BadPpiHeader),
        n => link(n, frame),
    }
}

/// A Prism header, then an 802.11 frame. Some captures label AVS headers as Prism: those are
/// told apart by the AVS magic number, as Wireshark does.
pub(super) fn prism(data: &[u8]) -> Result<Net<'_>, Skip> {
    if be32(data, avs::MAGIC).is_some_and(|m| m & avs::MAGIC_MASK == avs::MAGIC_VALUE) {
        return avs(data);
    }
    let code: [u8; 4] =
        data.get(prism::MSGCODE).ok_or(Skip::TruncatedLinkHeader)?.try_into().expect("4 bytes");
    let le = prism::CODES.contains(&u32::from_le_bytes(code));
    if !le && !prism::CODES.contains(&u32::from_be_bytes(code)) {
        return Err(Skip::BadPrismHeader);
    }
    let len = if le { le32(data, prism::LEN) } else { be32(data, prism::LEN) };
    let len = len.ok_or(Skip::TruncatedLinkHeader)? as usize;
    if len < prism::LEN.end {
        return Err(Skip::BadPrismHeader);
    }
    ieee80211(data.get(len..).ok_or(Skip::TruncatedLinkHeader)?, false)
}

/// An AVS header, then an 802.11 frame.
pub(super) fn avs(data: &[u8]) -> Result<Net<'_>, Skip> {
    let magic = be32(data, avs::MAGIC).ok_or(Skip::TruncatedLinkHeader)?;
    let len = be32(data, avs::LEN).ok_or(Skip::TruncatedLinkHeader)? as usize;
    if magic & avs::MAGIC_MASK != avs::MAGIC_VALUE || len < avs::MIN {
        return Err(Skip::BadPrismHeader);
    }
    ieee80211(data.get(len..).ok_or(Skip::TruncatedLinkHeader)?, false)
}
