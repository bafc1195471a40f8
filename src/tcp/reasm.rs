//! Which bytes of one direction the capture showed: the contiguous prefix plus a few
//! out-of-order ranges. Enough to tell retransmissions, reordering and content gaps (bytes
//! the receiver acknowledged that the capture never carried) without buffering payload.

use thin_vec::ThinVec;

use crate::types::SeqNum;

/// More out-of-order ranges than this are merged into the last one (bounded memory).
const MAX_RANGES: usize = 8;

/// Which bytes of one direction's sequence space the capture showed.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    /// Everything before this was seen (or given up as a gap). None until the first segment.
    next: Option<SeqNum>,
    /// Seen ranges past `next`, sorted, not touching each other or `next`. Usually empty; a
    /// thin vector keeps the empty case to one word in every live connection's state.
    ranges: ThinVec<(SeqNum, SeqNum)>,
}

impl Coverage {
    /// Starts the sequence space: the first byte expected is `first`.
    pub fn start(&mut self, first: SeqNum) {
        self.next = Some(first);
        self.ranges.clear();
    }

    /// Records the sequence range [s, e) as seen. Returns true when it arrived ahead of a hole
    /// (out of order, or after lost data).
    pub fn seen(&mut self, s: SeqNum, e: SeqNum) -> bool {
        let Some(next) = self.next else {
            self.next = Some(e);
            return false;
        };
        if e <= s || e <= next {
            return false;
        }
        if s <= next {
            self.next = Some(e);
            self.absorb();
            return false;
        }
        let at = self.ranges.partition_point(|r| r.0 < s);
        self.ranges.insert(at, (s, e));
        self.merge();
        true
    }

    /// The peer acknowledged everything before `ack`: returns how many of those bytes were never
    /// seen, and moves past them so each missing byte is reported once.
    pub fn acked(&mut self, ack: SeqNum) -> u64 {
        let Some(next) = self.next else { return 0 };
        if ack <= next {
            return 0;
        }
        let mut missing = ack.diff(next) as i64;
        for &(s, e) in &self.ranges {
            if s >= ack {
                break;
            }
            let end = if e <= ack { e } else { ack };
            missing -= end.diff(s) as i64;
        }
        self.next = Some(ack);
        self.absorb();
        missing.max(0) as u64
    }

    /// Folds ranges that now touch the contiguous prefix into it.
    fn absorb(&mut self) {
        let Some(mut next) = self.next else { return };
        let mut used = 0;
        for &(s, e) in &self.ranges {
            if s > next {
                break;
            }
            next = next.max(e);
            used += 1;
        }
        self.ranges.drain(..used);
        self.next = Some(next);
    }

    fn merge(&mut self) {
        let mut merged: ThinVec<(SeqNum, SeqNum)> = ThinVec::with_capacity(self.ranges.len());
        for &(s, e) in &self.ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        while merged.len() > MAX_RANGES {
            let (_, e) = merged.pop().expect("non-empty");
            let last = merged.last_mut().expect("non-empty");
            last.1 = last.1.max(e);
        }
        self.ranges = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(first: u32) -> Coverage {
        let mut c = Coverage::default();
        c.start(SeqNum(first));
        c
    }

    #[test]
    fn in_order_data_leaves_no_gap() {
        let mut c = cov(100);
        assert!(!c.seen(SeqNum(100), SeqNum(200)));
        assert!(!c.seen(SeqNum(200), SeqNum(300)));
        assert_eq!(c.acked(SeqNum(300)), 0);
    }

    #[test]
    fn acked_hole_is_a_gap_once() {
        let mut c = cov(100);
        c.seen(SeqNum(100), SeqNum(200));
        assert!(c.seen(SeqNum(300), SeqNum(400)), "ahead of the hole");
        assert_eq!(c.acked(SeqNum(400)), 100);
        assert_eq!(c.acked(SeqNum(400)), 0);
    }

    #[test]
    fn reordered_data_that_arrives_is_no_gap() {
        let mut c = cov(100);
        assert!(c.seen(SeqNum(200), SeqNum(300)));
        assert!(!c.seen(SeqNum(100), SeqNum(200)));
        assert_eq!(c.acked(SeqNum(300)), 0);
    }

    #[test]
    fn ack_past_everything_seen() {
        let mut c = cov(100);
        c.seen(SeqNum(100), SeqNum(150));
        assert_eq!(c.acked(SeqNum(250)), 100);
    }

    #[test]
    fn ranges_stay_bounded() {
        let mut c = cov(0);
        for i in 1..100u32 {
            c.seen(SeqNum(i * 100), SeqNum(i * 100 + 10));
        }
        assert!(c.ranges.len() <= MAX_RANGES);
    }

    #[test]
    fn works_across_the_wrap() {
        let mut c = cov(u32::MAX - 50);
        c.seen(SeqNum(u32::MAX - 50), SeqNum(u32::MAX - 10));
        assert_eq!(c.acked(SeqNum(40)), 51);
    }
}
