//! TCP analysis: sequence numbers, per-endpoint state, and the verdicts derived from both.
//!
//! The state machine follows Zeek's TCP analyzer (TCPSessionAdapter: Process, UpdateStateMachine,
//! IsReuse, ConnectionClosed and its timers) so that conn_state and history agree with Zeek's
//! conn.log; the phases module adds what Zeek does not report (handshake and teardown detail).

pub mod endpoint;
pub mod phases;
pub mod reasm;
pub mod verdict;

use crate::decode::{TcpFlags, TcpSegment};
use crate::flow::history::History;
use crate::flow::ports;
use crate::types::{Duration, SeqNum, Timestamp};
use endpoint::{Endpoint, State, MAX_JUMP};
use phases::Phases;
use verdict::{ConnState, Side};

// Zeek's defaults (init-bare.zeek).
const ATTEMPT_DELAY: Duration = Duration::from_secs(5);
const SYN_TIMEOUT: Duration = Duration::from_secs(5);
const SESSION_TIMER: Duration = Duration::from_secs(6);
const CONNECTION_LINGER: Duration = Duration::from_secs(5);
const CLOSE_DELAY: Duration = Duration::from_secs(5);
const RESET_DELAY: Duration = Duration::from_secs(5);
/// While still in the handshake, a connection is idle-expired like UDP.
const HANDSHAKE_INACTIVITY: Duration = Duration::from_secs(60);

/// Who is the originator of a new connection, decided from its first segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Orientation {
    /// The first segment's sender is the originator.
    pub sender_is_orig: bool,
    /// Decided by the port heuristic rather than by a SYN (Zeek's `^`).
    pub flipped: bool,
}

/// Zeek's `WantConnection`: a pure SYN's sender is the originator; anything else is flipped
/// when it comes from a likely server port.
pub fn orient(seg: &TcpSegment) -> Orientation {
    let f = seg.flags;
    let mut flipped = false;
    if (!f.syn() || f.ack()) && ports::likely_server(ports::TCP, seg.src_port) {
        flipped = if ports::likely_server(ports::TCP, seg.dst_port) {
            !f.syn() && seg.src_port < seg.dst_port
        } else {
            true
        };
    }
    Orientation { sender_is_orig: !flipped, flipped }
}

/// What a segment did to the connection record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// The connection's last-activity time moves to this segment.
    pub touch: bool,
    /// Originator and responder swapped: a SYN seen after its SYN+ACK, or a SYN+ACK that opened
    /// the connection answered by an ACK or data.
    pub flipped: bool,
}

/// Both endpoints of a TCP connection, the timers Zeek would run, and the phase record. In
/// this order (`repr(C)`): the timers first, so that with the connection's times in front of
/// them (see `flow::Conn`) a sweep reads one cache line per connection.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct TcpConn {
    timers: Timers,
    /// The originator's side.
    pub orig: Endpoint,
    /// The responder's side.
    pub resp: Endpoint,
    /// Handshake, teardown and trouble detail beyond Zeek's.
    pub phases: Phases,
}

/// Zeek's `is_partial` and `first_packet_seen`: whether the connection's start was seen, which
/// its application analyzers require.
#[derive(Clone, Copy, Debug, Default)]
struct Start {
    /// The start was not seen.
    partial: bool,
    /// A segment of each role was seen: [originator, responder].
    seen: [bool; 2],
}

/// Zeek's connection timers, evaluated lazily when the next packet of the pair arrives.
#[derive(Clone, Debug)]
struct Timers {
    /// Removal after a completed close or a reset.
    remove_at: Option<Timestamp>,
    /// Check for an unanswered attempt.
    attempt_at: Option<Timestamp>,
    /// Periodic expiry checks from the first close, then every SESSION_TIMER (the ones Zeek
    /// starts with the connection run from its first packet: see `expired`).
    expire_from: Option<Timestamp>,
    /// The connection left the handshake: the long inactivity timeout applies.
    left_handshake: bool,
    /// Time of the previous packet, to know which timer instants passed since.
    prev_packet: Timestamp,
    /// Zeek's expiry timer can end the connection: one side closed and the other closed, reset
    /// or was never seen, or neither side was seen. Kept after each segment from the endpoints'
    /// states so that `expired` need not read them.
    expirable: bool,
    /// Not a timer: kept here, where the timers' fields leave room for it.
    start: Start,
}

impl TcpConn {
    /// Starts loading this state's cache lines (see `flow::prefetch`).
    pub fn prefetch(&self) {
        use crate::flow::prefetch;
        prefetch(&self.orig);
        prefetch(&self.orig.coverage);
        prefetch(&self.resp);
        prefetch(&self.resp.coverage);
        prefetch(&self.phases.orig);
        prefetch(&self.phases.resp);
        prefetch(&self.phases.handshake_ack);
        prefetch(&self.timers);
    }

    /// A connection whose first packet is at `first`, no segment processed yet.
    pub fn new(first: Timestamp) -> Self {
        TcpConn {
            orig: Endpoint::default(),
            resp: Endpoint::default(),
            phases: Phases::default(),
            timers: Timers {
                remove_at: None,
                attempt_at: None,
                expire_from: None,
                left_handshake: false,
                prev_packet: first,
                expirable: true,
                start: Start::default(),
            },
        }
    }

    /// Zeek's `IsReuse`: does this SYN (or SYN+ACK) start a new connection on the same pair?
    pub fn starts_new_connection(&self, seg: &TcpSegment) -> bool {
        let f = seg.flags;
        if !f.syn() {
            return false;
        }
        let mut co = &self.orig;
        if f.ack() {
            if self.orig.state != State::Inactive {
                return false;
            }
            co = &self.resp;
        }
        if self.orig.did_close || self.resp.did_close {
            return true;
        }
        if seg.seq == co.start {
            return false; // a retransmitted SYN or SYN+ACK
        }
        let reversed = !f.ack()
            && co.state == State::SynAckSent
            && self.resp.state == State::Inactive
            && seg.seq == self.resp.start;
        !reversed
    }

    /// Would Zeek have removed the connection before a packet at `now`? `first` and `last` are
    /// the connection's first packet and last-activity time; `inactivity` is the inactivity
    /// timeout of a connection past its handshake (Zeek's `tcp_inactivity_timeout`, `--tcp-timeout`).
    pub fn expired(
        &mut self,
        now: Timestamp,
        first: Timestamp,
        last: Timestamp,
        inactivity: Duration,
    ) -> bool {
        let t = &mut self.timers;
        // Fast path: every timer is at least 5 s past some event no later than `last`, so a
        // busy connection cannot have expired unless a removal or attempt time has come (or
        // an inactivity timeout shorter than that has passed).
        if now < last.plus(CONNECTION_LINGER.min(inactivity))
            && t.remove_at.is_none_or(|at| now < at)
            && t.attempt_at.is_none_or(|at| now < at)
        {
            return false;
        }
        if t.remove_at.is_some_and(|at| now >= at) {
            return true;
        }
        if t.attempt_at.is_some_and(|at| now >= at) {
            t.attempt_at = None;
            if matches!(self.orig.state, State::SynSent | State::SynAckSent)
                && self.resp.state == State::Inactive
            {
                return true;
            }
        }
        // A shorter `inactivity` also shortens the handshake's.
        let idle = if t.left_handshake { inactivity } else { HANDSHAKE_INACTIVITY.min(inactivity) };
        if now.since(last) >= idle {
            return true;
        }
        // The expiry timer fires at start, start + 6 s, ...; of the instants since the previous
        // packet only the latest matters (nothing else changed in between).
        let prev = t.prev_packet;
        if t.expirable {
            for start in [Some(first.plus(SYN_TIMEOUT)), t.expire_from].iter().flatten() {
                if now < *start {
                    continue;
                }
                let k = now.since(*start).0 / SESSION_TIMER.0;
                let fire = start.plus(Duration(k * SESSION_TIMER.0));
                if fire > prev && last.plus(CONNECTION_LINGER) < fire {
                    return true;
                }
            }
        }
        false
    }

    /// Zeek's `Process` for one segment from the originator (`is_orig`) or the responder.
    pub fn segment(&mut self, ts: Timestamp, is_orig: bool, seg: &TcpSegment, hist: &mut History) -> Outcome {
        let f = seg.flags;
        let len = seg.payload_len;
        let base = seg.seq;
        // Sequence space this segment covers; RST payload is not part of it.
        let seg_len = if f.rst() { 0 } else { len } + u32::from(f.syn()) + u32::from(f.fin());
        self.timers.prev_packet = ts;
        self.phases.segment(ts, is_orig, seg);
        // Zeek's `SetPartialStatus`: a connection is partial unless the originator's first
        // segment is a pure SYN and the responder's first has SYN set.
        let start = &mut self.timers.start;
        if !start.seen[usize::from(!is_orig)] {
            if is_orig {
                start.partial = !f.syn() || f.ack();
            } else if !start.partial {
                start.partial = !f.syn();
            }
        }

        let both_closed = self.orig.did_close && self.resp.did_close;
        let orig_state = self.orig.state;
        let (ep, peer) =
            if is_orig { (&mut self.orig, &mut self.resp) } else { (&mut self.resp, &mut self.orig) };

        init_endpoint(ep, f.syn(), base, base.advance(seg_len));
        let (rel_seq, _) = ep.relative(base, ep.last_seq, ep.seq_wraps);
        // A connection that opened with a SYN+ACK and now carries an ACK or data, from either
        // side, was no stealth scan: the SYN+ACK's sender is the responder (Zeek's
        // `TCP_Endpoint::CheckHistory`). This segment's letter is then written for its new role;
        // the state machine below still sees it as sent by its old one, as Zeek's does.
        let synack_first = hist.is_only(b'H') && !f.syn() && !f.fin() && !f.rst() && (len > 0 || f.ack());
        if synack_first {
            hist.replace_with_flipped_synack();
        }
        let hist_is_orig = is_orig != synack_first;
        update_history(hist, ep, hist_is_orig, seg, rel_seq);
        if seg.window == 0 && !f.rst() && peer.state != State::Closed && ep.state != State::Reset {
            hist.counted('W', hist_is_orig);
            let t = self.phases.side_mut(is_orig).trouble_mut();
            t.zero_windows = t.zero_windows.saturating_add(1);
        }
        let outcome_touch = !both_closed;
        if f.fin() {
            ep.sent_fin = true;
        }
        if f.ack() {
            if peer.state == State::Inactive {
                let a = SeqNum(seg.ack.0.wrapping_sub(1));
                peer.start = a;
                peer.ack_seq = a;
                peer.last_seq = a;
            } else {
                let (_, underflow) = peer.relative(seg.ack, peer.ack_seq, peer.ack_wraps);
                if !underflow && !f.rst() {
                    update_ack_seq(peer, seg.ack);
                }
            }
        }
        if update_last_seq(ep, base.advance(seg_len), seg) {
            hist.counted('T', hist_is_orig);
            let t = self.phases.side_mut(is_orig).trouble_mut();
            t.rexmit_pkts = t.rexmit_pkts.saturating_add(1);
            t.rexmit_bytes += len as u64;
        }

        let was_inactive = ep.state == State::Inactive;
        let peer_was_active = peer.state != State::Inactive;
        // After a flip above, Zeek reads the new originator's state: the old responder's.
        let orig_state = if !synack_first {
            orig_state
        } else if is_orig {
            peer.state
        } else {
            ep.state
        };
        let t = state_machine(ep, peer, is_orig, orig_state, seg);
        if t.late_start {
            self.timers.start.partial = false;
            self.timers.start.seen[usize::from(!is_orig)] = true;
        }
        let (do_close, reversed) = (t.close, t.reversed);
        let flipped = synack_first || reversed;
        if !f.rst() && seg_len > u32::from(f.syn()) {
            let first = base.advance(u32::from(f.syn()));
            if ep.coverage.seen(first, base.advance(seg_len)) && len > 0 {
                let t = self.phases.side_mut(is_orig).trouble_mut();
                t.out_of_order = t.out_of_order.saturating_add(1);
            }
        }
        if f.ack() && peer_was_active {
            let missed = peer.coverage.acked(seg.ack);
            if missed > 0 && clean(ep) && clean(peer) {
                // The peer's data that this ACK covers but the capture never showed.
                hist.counted('G', !hist_is_orig);
                self.phases.side_mut(!is_orig).trouble_mut().missed_bytes += missed;
            }
        }
        if !ep.state.is_handshake() || !peer.state.is_handshake() {
            self.timers.left_handshake = true;
        }
        if was_inactive && is_orig && f.syn() {
            self.timers.attempt_at = Some(ts.plus(ATTEMPT_DELAY));
        }
        if do_close {
            self.connection_closed(is_orig, ts);
        }
        if reversed {
            hist.flip();
        }
        if flipped {
            // Zeek's flips start the connection afresh: no longer partial, and the new
            // originator counts as seen.
            std::mem::swap(&mut self.orig, &mut self.resp);
            self.phases.flip();
            let start = &mut self.timers.start;
            start.seen.swap(0, 1);
            start.partial = false;
            start.seen[0] = true;
        }
        // Zeek's `CheckPIA_FirstPacket`, by the direction the segment came in as.
        self.timers.start.seen[usize::from(!is_orig)] = true;
        self.timers.expirable = expirable(&self.orig, &self.resp);
        Outcome { touch: outcome_touch, flipped }
    }

    /// Zeek's `ConnectionClosed` for the endpoint that just sent FIN or RST.
    fn connection_closed(&mut self, is_orig: bool, now: Timestamp) {
        let (ep, peer) = if is_orig { (&mut self.orig, &self.resp) } else { (&mut self.resp, &self.orig) };
        if ep.did_close {
            if ep.state == State::Reset && peer.state != State::Closed {
                // A RST after this side's own FIN: the reset timer removes the connection.
                let at = now.plus(RESET_DELAY);
                self.timers.remove_at = Some(self.timers.remove_at.map_or(at, |r| r.min(at)));
            }
            return;
        }
        ep.did_close = true;
        let complete = ep.state == State::Reset || peer.did_close || peer.state == State::Inactive;
        if complete {
            self.timers.attempt_at = None;
            self.timers.remove_at = Some(now.plus(CLOSE_DELAY));
        } else if ep.prev_state != State::Inactive {
            self.timers.expire_from = Some(now.plus(SESSION_TIMER));
        }
    }

    /// Whether the connection's start was not seen (Zeek's `IsPartial`).
    pub fn partial(&self) -> bool {
        self.timers.start.partial
    }

    /// Zeek's conn_state from both endpoints' states and sizes and the history `hist`.
    pub fn conn_state(&self, hist: &History) -> ConnState {
        verdict::conn_state(
            Side { state: self.orig.state, size: self.orig.size(&self.resp) },
            Side { state: self.resp.state, size: self.resp.size(&self.orig) },
            hist.as_str(),
        )
    }

    /// Payload bytes per side from sequence numbers: (orig, resp).
    pub fn seq_bytes(&self) -> (u64, u64) {
        (self.orig.size(&self.resp), self.resp.size(&self.orig))
    }
}

/// Zeek reports content gaps only while both sides are established (or closed from there).
/// See `Timers::expirable`.
fn expirable(o: &Endpoint, r: &Endpoint) -> bool {
    let closable = (o.did_close || r.did_close)
        && ((o.did_close && r.did_close)
            || o.state == State::Reset
            || r.state == State::Reset
            || o.state == State::Inactive
            || r.state == State::Inactive);
    let both_inactive = o.state == State::Inactive && r.state == State::Inactive;
    closable || both_inactive
}

fn clean(ep: &Endpoint) -> bool {
    ep.state == State::Established || (ep.state == State::Closed && ep.prev_state == State::Established)
}

/// Sets up an endpoint's sequence space on its first segment or on a new SYN.
fn init_endpoint(ep: &mut Endpoint, syn: bool, base: SeqNum, last: SeqNum) {
    match ep.state {
        State::Inactive => {
            if syn {
                ep.init_seq(base, last);
            } else {
                ep.init_seq_midstream(base);
            }
        }
        State::SynSent | State::SynAckSent => {
            if syn && base != ep.start {
                ep.init_seq(base, last);
            }
        }
        State::Established | State::Partial => {
            if syn {
                ep.init_seq(base, last);
            }
        }
        State::Reset => {
            if syn && ep.prev_state == State::Inactive {
                ep.init_seq(base, last);
            }
        }
        State::Closed => {}
    }
}

fn update_history(hist: &mut History, ep: &mut Endpoint, is_orig: bool, seg: &TcpSegment, rel_seq: i64) {
    let f = seg.flags;
    let bits = u8::from(f.syn()) + u8::from(f.fin()) + u8::from(f.rst());
    if bits > 1 {
        if f.fin() && f.rst() {
            hist.once('I', is_orig);
        } else {
            hist.once('Q', is_orig);
        }
    } else if f.syn() {
        let c = if f.ack() { 'H' } else { 'S' };
        // S and H share one "seen" slot in Zeek.
        if !hist.once_slot('S', c, is_orig) && rel_seq != ep.hist_last_syn {
            hist.always(c, is_orig);
        }
        ep.hist_last_syn = rel_seq;
    } else if f.fin() {
        let end = rel_seq + seg.payload_len as i64;
        if !hist.once('F', is_orig) && end != ep.hist_last_fin {
            hist.always('F', is_orig);
        }
        ep.hist_last_fin = end;
    } else if f.rst() {
        if !hist.once('R', is_orig) && rel_seq != ep.hist_last_rst {
            hist.always('R', is_orig);
        }
        ep.hist_last_rst = rel_seq;
    } else if seg.payload_len > 0 {
        hist.once('D', is_orig);
    } else if f.ack() {
        hist.once('A', is_orig);
    }
}

fn update_ack_seq(ep: &mut Endpoint, ack: SeqNum) {
    let da = ack.diff(ep.ack_seq);
    if ack.0 == 0 && da > MAX_JUMP {
        return; // a zero ACK field on a packet that does not really acknowledge
    }
    if da > 0 {
        ep.update_ack_seq(ack);
    }
}

/// Advances the highest sequence sent; true when the segment retransmits payload.
fn update_last_seq(ep: &mut Endpoint, last: SeqNum, seg: &TcpSegment) -> bool {
    let f = seg.flags;
    let d = last.diff(ep.last_seq);
    if (f.syn() || f.rst()) && !(-MAX_JUMP..=MAX_JUMP).contains(&d) {
        return false;
    }
    if f.fin() && ep.last_seq.diff(ep.start) == 1 {
        ep.update_last_seq(last);
        return false;
    }
    if ep.state == State::Reset {
        return false;
    }
    if d > 0 {
        ep.update_last_seq(last);
        false
    } else {
        seg.payload_len > 0
    }
}

/// A FIN closes the sender, a RST resets it (FIN+RST: closed, then reset). True if either.
fn close_or_reset(ep: &mut Endpoint, f: TcpFlags) -> bool {
    if f.fin() {
        ep.set_state(State::Closed);
    }
    if f.rst() {
        ep.set_state(State::Reset);
    }
    f.fin() || f.rst()
}

/// What a segment did in `state_machine`, besides the endpoints' states.
#[derive(Default)]
struct Transition {
    /// The sender closed or reset.
    close: bool,
    /// The SYN arrived after its SYN+ACK: the roles swap.
    reversed: bool,
    /// An ACK after a SYN+ACK whose SYN was missed establishes the connection (Zeek then no
    /// longer treats it as partial).
    late_start: bool,
}

/// Zeek's `UpdateStateMachine`, by the sender's state before this segment.
fn state_machine(
    ep: &mut Endpoint,
    peer: &mut Endpoint,
    is_orig: bool,
    orig_state: State,
    seg: &TcpSegment,
) -> Transition {
    let f = seg.flags;
    let mut t = Transition::default();
    match ep.state {
        State::Inactive => {
            if f.syn() {
                if is_orig {
                    ep.set_state(if f.ack() { State::SynAckSent } else { State::SynSent });
                } else {
                    if !f.ack() && peer.state == State::SynAckSent && seg.seq == ep.start {
                        // The SYN arrived after its SYN+ACK: the roles were guessed wrong.
                        t.reversed = true;
                        peer.set_state(State::Established);
                    }
                    if peer.state == State::SynSent {
                        peer.set_state(State::Established);
                    }
                    ep.set_state(State::Established);
                }
            }
            t.close = close_or_reset(ep, f);
            if ep.state == State::Inactive {
                if !is_orig && seg.payload_len == 0 && orig_state == State::SynSent {
                    // An ACK before the SYN+ACK (some stacks): stay inactive.
                } else if f.ack() && peer.state == State::Established {
                    ep.set_state(State::Established);
                    t.late_start = true;
                } else {
                    ep.set_state(State::Partial);
                }
            }
        }
        State::SynSent | State::SynAckSent => t.close = close_or_reset(ep, f),
        State::Established | State::Partial => {
            if f.syn() && ep.state == State::Partial && peer.state == State::Inactive && !f.ack() {
                ep.set_state(State::SynSent);
            }
            if f.fin() && !f.rst() {
                ep.set_state(State::Closed);
                if peer.state == State::Reset && peer.prev_state == State::Closed {
                    peer.set_state(State::Closed); // FIN then RST then FIN: a normal close
                }
                t.close = true;
            }
            if f.rst() {
                ep.set_state(State::Reset);
                t.close = true;
            }
        }
        State::Closed => {
            if f.rst() && peer.state != State::Closed {
                ep.set_state(State::Reset);
                t.close = true;
            }
        }
        State::Reset => {}
    }
    t
}

#[cfg(test)]
mod tests;
