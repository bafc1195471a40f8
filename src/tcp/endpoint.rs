//! One side of a TCP connection, as Zeek's TCP analyzer models it: a state, where its sequence
//! space starts, the highest sequence it sent and the highest acknowledgement it received.

use crate::tcp::reasm::Coverage;
use crate::types::SeqNum;

/// Zeek's TCP endpoint states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing seen from this side yet.
    Inactive,
    /// Sent a SYN (without ACK).
    SynSent,
    /// Sent a SYN+ACK as its first segment, as the originator (a responder's SYN+ACK goes
    /// straight to `Established`).
    SynAckSent,
    /// Seen sending without a SYN (mid-stream).
    Partial,
    /// Past the handshake, or taken as such.
    Established,
    /// Sent a FIN.
    Closed,
    /// Sent a RST.
    Reset,
}

impl State {
    /// Not past the handshake: inactive, SYN sent or SYN+ACK sent.
    pub fn is_handshake(self) -> bool {
        matches!(self, State::Inactive | State::SynSent | State::SynAckSent)
    }

    /// Zeek's "inactive" for conn_state: never seen, or only seen mid-stream.
    pub fn inactive_like(self) -> bool {
        matches!(self, State::Inactive | State::Partial)
    }
}

/// Sequence bookkeeping is 64-bit so that sizes stay right across 32-bit wraps.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The current state.
    pub state: State,
    /// The state before the last change.
    pub prev_state: State,
    /// Sequence number just before the first byte (the ISN, or first seq - 1 without a SYN).
    pub start: SeqNum,
    /// Highest sequence number sent: the end of the furthest segment (SYN and FIN count one).
    pub last_seq: SeqNum,
    /// How often `last_seq` wrapped past 2^32 since `start`.
    pub seq_wraps: u32,
    /// Highest acknowledgement the peer sent for this side's data.
    pub ack_seq: SeqNum,
    /// How often `ack_seq` wrapped past 2^32 since `start`.
    pub ack_wraps: u32,
    /// Sent a FIN (Zeek's `FIN_cnt > 0`).
    pub sent_fin: bool,
    /// Closed by its own FIN or RST (Zeek's `did_close`), which starts the close timers.
    pub did_close: bool,
    /// Relative sequence of the last SYN / FIN / RST, for Zeek's repeated history letters.
    pub hist_last_syn: i64,
    /// Relative sequence just past the last FIN's payload.
    pub hist_last_fin: i64,
    /// Relative sequence of the last RST.
    pub hist_last_rst: i64,
    /// Which of this side's bytes the capture showed.
    pub coverage: Coverage,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            state: State::Inactive,
            prev_state: State::Inactive,
            start: SeqNum(0),
            last_seq: SeqNum(0),
            seq_wraps: 0,
            ack_seq: SeqNum(0),
            ack_wraps: 0,
            sent_fin: false,
            did_close: false,
            hist_last_syn: 0,
            hist_last_fin: 0,
            hist_last_rst: 0,
            coverage: Coverage::default(),
        }
    }
}

/// The largest sequence jump a SYN or RST may make before it is treated as bogus (Zeek's 1 MiB).
pub const MAX_JUMP: i32 = 1 << 20;

impl Endpoint {
    fn start_i64(&self) -> i64 {
        self.start.full(0)
    }

    /// Re-bases the sequence space at `base` (a SYN, or the first packet seen).
    pub fn init_seq(&mut self, start: SeqNum, last: SeqNum) {
        self.start = start;
        self.ack_seq = start;
        self.last_seq = last;
        self.seq_wraps = 0;
        self.ack_wraps = 0;
        self.coverage.start(start.advance(1));
    }

    /// Without a SYN the sequence space starts just before the first byte seen.
    pub fn init_seq_midstream(&mut self, base: SeqNum) {
        // As in Zeek, "one before" is taken in 32-bit sequence space.
        let before = SeqNum(base.0.wrapping_sub(1));
        self.start = before;
        self.ack_seq = before;
        self.last_seq = base;
        self.seq_wraps = 0;
        self.ack_wraps = 0;
        self.coverage.start(base);
    }

    /// Moves `last_seq` to `s`, counting a wrap when `s` is numerically lower.
    pub fn update_last_seq(&mut self, s: SeqNum) {
        if s.0 < self.last_seq.0 {
            self.seq_wraps += 1;
        }
        self.last_seq = s;
    }

    /// Moves `ack_seq` to `s`, counting a wrap when `s` is numerically lower.
    pub fn update_ack_seq(&mut self, s: SeqNum) {
        if s.0 < self.ack_seq.0 {
            self.ack_wraps += 1;
        }
        self.ack_seq = s;
    }

    /// Position of `cur` relative to the start, counting wraps seen since `last`.
    /// Returns the position and whether it lies before the start.
    pub fn relative(&self, cur: SeqNum, last: SeqNum, mut wraps: u32) -> (i64, bool) {
        let d = cur.diff(last);
        if d < 0 && wraps > 0 && cur.0 > last.0 {
            wraps -= 1;
        } else if d > 0 && cur.0 < last.0 {
            wraps += 1;
        }
        if wraps == 0 {
            let r = cur.diff(self.start);
            (r as i64, r < 0)
        } else {
            (cur.full(wraps) - self.start_i64(), false)
        }
    }

    /// Changes the state, keeping the one it leaves in `prev_state` (no change when equal).
    pub fn set_state(&mut self, s: State) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    /// Payload bytes this side sent, from sequence numbers (Zeek's `TCP_Endpoint::Size`).
    pub fn size(&self, peer: &Endpoint) -> u64 {
        if self.prev_state == State::SynSent
            && self.state == State::Reset
            && peer.state == State::Inactive
            && !self.no_data_acked()
        {
            return 0;
        }
        let last = self.last_seq.full(self.seq_wraps);
        let ack = self.ack_seq.full(self.ack_wraps);
        let mut size = last.max(ack) - self.start_i64();
        if size > 0 {
            size -= 1; // the SYN's sequence octet (or the one before the first byte seen)
        }
        if self.sent_fin && size > 0 {
            size -= 1; // the FIN's
        }
        size.max(0) as u64
    }

    fn no_data_acked(&self) -> bool {
        let ack = self.ack_seq.full(self.ack_wraps);
        ack == self.start_i64() || ack == self.start_i64() + 1
    }
}
