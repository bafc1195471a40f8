//! A compact table entry for TCP connections that have seen only a SYN, or a SYN and then a
//! RST: most connections of a scan or a flood go no further. Such an entry holds the segments
//! themselves, a quarter of a full connection's size, and the full state is made from them
//! (by running them through the same analysis) when the connection goes further, ends, or is
//! printed, so no output depends on which form a connection spent its time in.

use super::key::PairKey;
use crate::decode::payload::Shape;
use crate::decode::{TcpFlags, TcpOptions, TcpSegment};
use crate::types::{Duration, SeqNum, Timestamp};

/// A connection whose only segments are a pure SYN without payload from its originator and at
/// most one RST without payload, from either side, all outside any tunnel.
#[derive(Clone, Debug)]
pub(super) struct Opening {
    /// The socket pair, as in `Conn`.
    pub key: PairKey,
    /// The connection's id, given when its SYN arrived; 0 once vacated (ids count from 1).
    pub id: u64,
    /// The opening SYN.
    pub syn: Quiet,
    /// The options the SYN offered.
    pub options: TcpOptions,
    /// A RST after it.
    pub rst: Option<Quiet>,
}

/// A segment without payload, as much of it as the analysis reads.
#[derive(Clone, Copy, Debug)]
pub(super) struct Quiet {
    pub ts: Timestamp,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    /// Its IP length; a segment whose length does not fit makes a full entry instead.
    pub ip_len: u16,
    /// Sent by the lower side of the key.
    pub from_lo: bool,
}

impl Opening {
    /// A compact entry for a new connection whose first segment is `seg`, when it qualifies.
    pub fn new(
        id: u64,
        key: PairKey,
        ts: Timestamp,
        from_lo: bool,
        ip_len: u32,
        seg: &TcpSegment,
    ) -> Option<Self> {
        let f = seg.flags;
        let pure_syn = f.syn() && !f.ack() && !f.fin() && !f.rst();
        if !pure_syn || seg.payload_len > 0 {
            return None;
        }
        let syn = Quiet::new(ts, from_lo, ip_len, seg)?;
        Some(Opening { key, id, syn, options: seg.options, rst: None })
    }

    /// Takes `seg` into this entry if the connection stays one that a compact entry holds:
    /// a first RST without payload while the SYN is still too recent to have timed out (see
    /// `due_from`). `inactivity` is the table's TCP timeout.
    pub fn absorb(
        &mut self,
        ts: Timestamp,
        from_lo: bool,
        ip_len: u32,
        seg: &TcpSegment,
        inactivity: Duration,
    ) -> bool {
        let f = seg.flags;
        let quiet_rst = f.rst() && !f.syn() && !f.fin() && seg.payload_len == 0;
        if !quiet_rst || self.rst.is_some() || ts >= self.due_from(inactivity) {
            return false;
        }
        self.rst = Quiet::new(ts, from_lo, ip_len, seg);
        self.rst.is_some()
    }

    /// The segments, in the order they arrived, each with its time, sender (lower side of the
    /// key or not) and IP length.
    pub fn segments(&self) -> impl Iterator<Item = (Timestamp, bool, u32, TcpSegment)> + '_ {
        let syn = Some((self.syn, self.options));
        let rst = self.rst.map(|r| (r, TcpOptions::default()));
        [syn, rst]
            .into_iter()
            .flatten()
            .map(|(q, options)| (q.ts, q.from_lo, u32::from(q.ip_len), q.segment(&self.key, options)))
    }

    /// Hands the connection over to be made full, leaving this entry vacant: it then matches
    /// no packet and the table drops it at its next sweep.
    pub fn vacate(&mut self) -> Opening {
        let taken = self.clone();
        self.id = 0;
        taken
    }

    /// Whether the connection was handed over (see `vacate`).
    pub fn is_vacant(&self) -> bool {
        self.id == 0
    }

    /// The time of the latest segment, which the full connection would keep as its last activity.
    pub fn last(&self) -> Timestamp {
        self.rst.map_or(self.syn.ts, |r| r.ts.max(self.syn.ts))
    }

    /// No timer can have ended the connection before this time: every one of Zeek's timers
    /// (attempt, close, reset, expiry, inactivity) runs at least 5 seconds, or the inactivity
    /// timeout if shorter, from one of its segments (see `TcpConn::expired`). Only from then on
    /// does a sweep need the full state to decide.
    pub fn due_from(&self, inactivity: Duration) -> Timestamp {
        let first = self.rst.map_or(self.syn.ts, |r| r.ts.min(self.syn.ts));
        first.plus(Duration::from_secs(5).min(inactivity))
    }
}

impl Quiet {
    fn new(ts: Timestamp, from_lo: bool, ip_len: u32, seg: &TcpSegment) -> Option<Self> {
        Some(Quiet {
            ts,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            ip_len: u16::try_from(ip_len).ok()?,
            from_lo,
        })
    }

    /// The segment again, as the decoder gave it.
    fn segment(&self, key: &PairKey, options: TcpOptions) -> TcpSegment {
        let (src, dst) = if self.from_lo { (key.lo(), key.hi()) } else { (key.hi(), key.lo()) };
        TcpSegment {
            src_port: src.port,
            dst_port: dst.port,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            payload_len: 0,
            options,
            shape: Shape::None,
        }
    }
}

/// Whether new connections start as openings. Openings pay where most connections never get
/// past their SYN (scans, floods) and cost a little where nearly all are answered, as each
/// answer makes its connection full in the other table. So a table counts, over windows of
/// openings, how many were answered; after a window in which more than a quarter were, it makes
/// full entries for a while, then tries openings again. Only memory and speed depend on it, not
/// any output.
#[derive(Debug, Default)]
pub(super) struct Thrift {
    opened: u32,
    answered: u32,
    /// New connections still to be made full before openings are tried again.
    pause: u32,
}

/// Openings per window.
const WINDOW: u32 = 4096;
/// Full entries made after a window in which too many openings were answered.
const PAUSE: u32 = 16 * WINDOW;

impl Thrift {
    /// Whether a new connection that qualifies as an opening is to be held as one.
    pub fn opens(&mut self) -> bool {
        if self.pause > 0 {
            self.pause -= 1;
            if self.pause == 0 {
                (self.opened, self.answered) = (0, 0);
            }
            return false;
        }
        self.opened += 1;
        if self.opened == WINDOW {
            if self.answered > WINDOW / 4 {
                self.pause = PAUSE;
            }
            (self.opened, self.answered) = (0, 0);
        }
        true
    }

    /// An opening went further than its SYN (or its SYN and RST).
    pub fn answered(&mut self) {
        self.answered += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The point of the compact entry (issue: at most about 100 bytes for a half-open connection).
    #[test]
    fn an_opening_stays_compact() {
        let size = std::mem::size_of::<Opening>();
        assert!(size <= 104, "Opening is {size} bytes");
    }

    #[test]
    fn openings_pause_where_many_are_answered_and_resume() {
        let mut thrift = Thrift::default();
        for n in 0..WINDOW {
            assert!(thrift.opens());
            if n % 3 == 0 {
                thrift.answered();
            }
        }
        assert!((0..PAUSE).all(|_| !thrift.opens()), "full entries for a while");
        // A scan: hardly any answered, so openings stay.
        for n in 0..10 * WINDOW {
            assert!(thrift.opens());
            if n % 100 == 0 {
                thrift.answered();
            }
        }
    }
}
