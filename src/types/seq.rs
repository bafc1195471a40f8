//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 793 section 3.3, RFC 1982).

use std::cmp::Ordering;
use std::fmt;

/// A TCP sequence or acknowledgment number. Its order ([`PartialOrd`]) is the wrapping one: `a < b`
/// when `b` is 1 to 2^31 ahead of `a` (RFC 1982 serial number arithmetic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Signed distance from `other` to `self`: positive when `self` is later.
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The number `n` bytes later, modulo 2^32.
    pub fn advance(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// The 64-bit position of this number after `wraps` wraps of the 32-bit space: what
    /// counts bytes across wraps.
    pub fn full(self, wraps: u32) -> i64 {
        (i64::from(wraps) << 32) + i64::from(self.0)
    }

    /// Later of the two, by wrapping comparison.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.diff(other) >= 0 {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_wrap() {
        let near_end = SeqNum(u32::MAX - 10);
        let wrapped = near_end.advance(20);
        assert_eq!(wrapped, SeqNum(9));
        assert!(wrapped > near_end);
        assert_eq!(wrapped.diff(near_end), 20);
        assert_eq!(near_end.diff(wrapped), -20);
        assert_eq!(near_end.max(wrapped), wrapped);
    }

    #[test]
    fn full_positions_count_wraps() {
        assert_eq!(SeqNum(5).full(0), 5);
        assert_eq!(SeqNum(5).full(2), (2 << 32) + 5);
        assert!(SeqNum(0).full(1) > SeqNum(u32::MAX).full(0));
    }

    #[test]
    fn plain_order_without_wrap() {
        assert!(SeqNum(100) < SeqNum(200));
        assert_eq!(SeqNum(200).max(SeqNum(100)), SeqNum(200));
    }
}
