//! Header fields as byte ranges of their header (as smoltcp names them), read big-endian, or
//! little-endian for the capture headers defined so.

/// The bytes of one header field.
pub(super) type Field = std::ops::Range<usize>;

/// The big-endian 16-bit field of `data`, if `data` holds it.
pub(super) fn be16(data: &[u8], field: Field) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(field)?.try_into().ok()?))
}

/// The big-endian 32-bit field of `data`, if `data` holds it.
pub(super) fn be32(data: &[u8], field: Field) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(field)?.try_into().ok()?))
}

/// The little-endian 16-bit field of `data`, if `data` holds it (radiotap and PPI define
/// theirs so).
pub(super) fn le16(data: &[u8], field: Field) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(field)?.try_into().ok()?))
}

/// The little-endian 32-bit field of `data`, if `data` holds it.
pub(super) fn le32(data: &[u8], field: Field) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(field)?.try_into().ok()?))
}
