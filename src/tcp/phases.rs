//! Handshake and teardown: when each step happened, and the summaries derived from them.

use std::fmt;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use crate::decode::{TcpOptions, TcpSegment};
use crate::types::{SeqNum, Timestamp};

/// What one side did, in the order of the connection's phases.
#[derive(Clone, Debug, Default)]
pub struct SideEvents {
    /// First SYN (originator) or SYN+ACK (responder).
    pub syn: Option<Timestamp>,
    /// The sequence number (ISN) of that first SYN or SYN+ACK.
    pub syn_isn: SeqNum,
    /// SYNs (or SYN+ACKs) sent with that ISN: the first and its retransmissions.
    pub syns: u32,
    /// The TCP options of that first SYN or SYN+ACK.
    pub options: Option<TcpOptions>,
    /// This side's first FIN.
    pub first_fin: Option<Timestamp>,
    /// The acknowledgement number that covers this side's FIN (once `first_fin` is set).
    fin_end: SeqNum,
    /// This side's FIN segment itself acknowledged the peer's FIN.
    fin_acked_peer_fin: bool,
    /// First segment from this side acknowledging the peer's FIN.
    pub acked_peer_fin: Option<Timestamp>,
    /// This side's first RST.
    pub first_rst: Option<Timestamp>,
    /// Payload sent after the peer had closed its direction.
    pub data_after_peer_fin: bool,
    /// The previous acknowledgement and window, as `ack_window` packs them.
    last_ack: Option<NonZeroU64>,
    /// Allocated on the first trouble (see `trouble`).
    trouble: Option<Box<Trouble>>,
}

/// One side's data-phase troubles. Zero for most connections, so kept out of line and
/// allocated on the first one: every live connection holds a pointer instead of these.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trouble {
    /// Segments that resent payload already sent (Zeek's T history letter counts these).
    pub rexmit_pkts: u32,
    /// Payload bytes of those segments.
    pub rexmit_bytes: u64,
    /// Segments advertising a zero window (Zeek's W history letter counts these).
    pub zero_windows: u32,
    /// Pure ACKs repeating this side's previous acknowledgement and window (duplicate ACKs).
    pub dup_acks: u32,
    /// Payload segments that arrived ahead of a hole (reordered, or after lost data).
    pub out_of_order: u32,
    /// Bytes acknowledged by the peer but never seen (Zeek's missed_bytes).
    pub missed_bytes: u64,
}

const NO_TROUBLE: Trouble = Trouble {
    rexmit_pkts: 0,
    rexmit_bytes: 0,
    zero_windows: 0,
    dup_acks: 0,
    out_of_order: 0,
    missed_bytes: 0,
};

impl SideEvents {
    /// The side's troubles, all zero when it had none.
    pub fn trouble(&self) -> &Trouble {
        self.trouble.as_deref().unwrap_or(&NO_TROUBLE)
    }

    /// The side's troubles to count one, allocated on first use.
    pub fn trouble_mut(&mut self) -> &mut Trouble {
        self.trouble.get_or_insert_default()
    }
}

/// Both sides' handshake and teardown events, from which [`Handshake`] and [`Teardown`] are
/// summarized.
#[derive(Clone, Debug, Default)]
pub struct Phases {
    /// The originator's events.
    pub orig: SideEvents,
    /// The responder's events.
    pub resp: SideEvents,
    /// The originator's ACK that completed the three-way handshake.
    pub handshake_ack: Option<Timestamp>,
}

impl Phases {
    /// The originator's events (`is_orig`) or the responder's.
    pub fn side_mut(&mut self, is_orig: bool) -> &mut SideEvents {
        if is_orig {
            &mut self.orig
        } else {
            &mut self.resp
        }
    }

    /// Swaps the sides, when originator and responder turn out the other way round.
    pub fn flip(&mut self) {
        std::mem::swap(&mut self.orig, &mut self.resp);
    }

    /// Records a segment from the originator (`is_orig`) or the responder.
    pub fn segment(&mut self, ts: Timestamp, is_orig: bool, seg: &TcpSegment) {
        let f = seg.flags;
        let (me, other) =
            if is_orig { (&mut self.orig, &mut self.resp) } else { (&mut self.resp, &mut self.orig) };
        if f.syn() && !f.rst() && !f.fin() && f.ack() != is_orig {
            // A pure SYN from the originator, a SYN+ACK from the responder.
            if me.syn.is_none() {
                me.syn = Some(ts);
                me.syn_isn = seg.seq;
                me.options = Some(seg.options);
            }
            if seg.seq == me.syn_isn {
                me.syns += 1;
            }
        }
        if is_orig
            && f.ack()
            && !f.syn()
            && self.handshake_ack.is_none()
            && other.syn.is_some()
            && me.syn.is_some()
        {
            self.handshake_ack = Some(ts);
        }
        let acks_peer_fin = f.ack() && other.first_fin.is_some() && seg.ack >= other.fin_end;
        if acks_peer_fin && me.acked_peer_fin.is_none() {
            me.acked_peer_fin = Some(ts);
        }
        if seg.payload_len > 0 && other.first_fin.is_some() && me.first_fin.is_none() && !f.fin() {
            me.data_after_peer_fin = true;
        }
        if f.fin() && me.first_fin.is_none() {
            me.first_fin = Some(ts);
            me.fin_end = seg.seq.advance(seg.payload_len + u32::from(f.syn()) + 1);
            me.fin_acked_peer_fin = acks_peer_fin;
        }
        if f.rst() && me.first_rst.is_none() {
            me.first_rst = Some(ts);
        }
        if f.ack() && !f.rst() {
            let pure = seg.payload_len == 0 && !f.syn() && !f.fin();
            let this = ack_window(seg.ack, seg.window);
            if pure && me.last_ack == Some(this) {
                let t = me.trouble_mut();
                t.dup_acks = t.dup_acks.saturating_add(1);
            }
            me.last_ack = Some(this);
        }
    }

    /// The handshake's summary; `rejected` says the connection's state is REJ.
    pub fn handshake(&self, rejected: bool) -> Handshake {
        let (o, r) = (&self.orig, &self.resp);
        let state = match (o.syn, r.syn, self.handshake_ack) {
            (None, _, _) => HandshakeState::NotSeen,
            (Some(_), Some(_), Some(_)) => HandshakeState::Complete,
            (Some(_), Some(_), None) => HandshakeState::SynSynack,
            (Some(_), None, _) if rejected => HandshakeState::Rejected,
            (Some(_), None, _) => HandshakeState::SynOnly,
        };
        let secs = |a: Option<Timestamp>, b: Option<Timestamp>| Some(b?.since(a?).as_secs_f64());
        Handshake {
            state,
            syn_ts: o.syn.map(Timestamp::as_secs_f64),
            synack_ts: r.syn.map(Timestamp::as_secs_f64),
            ack_ts: self.handshake_ack.map(Timestamp::as_secs_f64),
            rtt: if state == HandshakeState::Complete { secs(o.syn, self.handshake_ack) } else { None },
            rtt_server: secs(o.syn, r.syn),
            rtt_client: secs(r.syn, self.handshake_ack),
            syn_retransmissions: o.syns.saturating_sub(1),
            orig_options: o.options.map(Offered::from),
            resp_options: r.options.map(Offered::from),
        }
    }

    /// The teardown's summary.
    pub fn teardown(&self) -> Teardown {
        let (o, r) = (&self.orig, &self.resp);
        let first_rst = earliest(o.first_rst, r.first_rst);
        let first_fin = earliest(o.first_fin, r.first_fin);
        let who = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
            (Some(x), Some(y)) if x == y => Some(Initiator::Both),
            (Some(x), Some(y)) => Some(if x < y { Initiator::Orig } else { Initiator::Resp }),
            (Some(_), None) => Some(Initiator::Orig),
            (None, Some(_)) => Some(Initiator::Resp),
            (None, None) => None,
        };
        let half_close = o.data_after_peer_fin || r.data_after_peer_fin;
        let (state, initiator, kind) = if let Some(rst) = first_rst {
            let fin_first = first_fin.is_some_and(|f| f <= rst);
            if fin_first {
                (TeardownState::Reset, who(o.first_fin, r.first_fin), Some(TeardownKind::FinThenRst))
            } else {
                (TeardownState::Reset, who(o.first_rst, r.first_rst), Some(TeardownKind::Rst))
            }
        } else if let (Some(of), Some(rf)) = (o.first_fin, r.first_fin) {
            // The side that closed second: did it acknowledge the first FIN before its own?
            let second = if of <= rf { r } else { o };
            let initiator = if of == rf {
                Initiator::Both
            } else if of < rf {
                Initiator::Orig
            } else {
                Initiator::Resp
            };
            let kind = if half_close {
                TeardownKind::HalfClose
            } else if of == rf || !second.fin_acked_peer_fin {
                TeardownKind::Simultaneous // the FINs crossed
            } else if second.acked_peer_fin == second.first_fin {
                TeardownKind::Combined
            } else {
                TeardownKind::FourWay
            };
            let initiator = if kind == TeardownKind::Simultaneous { Initiator::Both } else { initiator };
            (TeardownState::Closed, Some(initiator), Some(kind))
        } else if first_fin.is_some() {
            (TeardownState::HalfClosed, who(o.first_fin, r.first_fin), Some(TeardownKind::HalfClose))
        } else {
            (TeardownState::Open, None, None)
        };
        // The last step: the ACK of the later FIN, or the first RST.
        let last_fin = match (o.first_fin, r.first_fin) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        let final_ack = match (o.first_fin, r.first_fin) {
            (Some(a), Some(b)) if a <= b => o.acked_peer_fin.filter(|&t| t >= b),
            (Some(_), Some(_)) => r.acked_peer_fin,
            _ => None,
        };
        Teardown {
            state,
            initiator,
            kind,
            first_fin_ts: first_fin.map(Timestamp::as_secs_f64),
            last_fin_ts: last_fin.map(Timestamp::as_secs_f64),
            final_ack_ts: final_ack.map(Timestamp::as_secs_f64),
            rst_ts: first_rst.map(Timestamp::as_secs_f64),
        }
    }
}

/// An acknowledgement and a window in one word that is never zero: with the `Option` around it,
/// 8 bytes per side instead of 12.
fn ack_window(ack: SeqNum, window: u16) -> NonZeroU64 {
    NonZeroU64::new(1 << 48 | u64::from(window) << 32 | u64::from(ack.0)).expect("bit 48 is set")
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// The TCP options a side offered on its SYN.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Offered {
    /// Maximum segment size, in bytes.
    pub mss: Option<u16>,
    /// Window scale shift count.
    pub window_scale: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// Timestamps option present.
    pub timestamps: bool,
}

impl From<TcpOptions> for Offered {
    fn from(o: TcpOptions) -> Self {
        Offered {
            mss: o.mss,
            window_scale: o.window_scale,
            sack_permitted: o.sack_permitted,
            timestamps: o.timestamps,
        }
    }
}

/// The handshake's summary.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Handshake {
    /// How far it got.
    pub state: HandshakeState,
    /// SYN to the ACK that completed the handshake, in seconds; only for a complete handshake.
    pub rtt: Option<f64>,
    /// SYN to SYN+ACK: the path to the server and back, seen from the capture point.
    pub rtt_server: Option<f64>,
    /// SYN+ACK to ACK: the path to the client and back.
    pub rtt_client: Option<f64>,
    /// Time of the originator's first SYN, in seconds since the Unix epoch.
    pub syn_ts: Option<f64>,
    /// Time of the responder's first SYN+ACK, in seconds since the Unix epoch.
    pub synack_ts: Option<f64>,
    /// Time of the originator's ACK that completed the handshake, in seconds since the Unix epoch.
    pub ack_ts: Option<f64>,
    /// Repeats of the originator's first SYN (same ISN).
    pub syn_retransmissions: u32,
    /// The options of the originator's SYN.
    pub orig_options: Option<Offered>,
    /// The options of the responder's SYN+ACK.
    pub resp_options: Option<Offered>,
}

/// How far the three-way handshake got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeState {
    /// SYN, SYN+ACK and the ACK of the SYN+ACK.
    Complete,
    /// A SYN, no SYN+ACK.
    SynOnly,
    /// SYN and SYN+ACK, no ACK (yet).
    SynSynack,
    /// A SYN refused (the connection is REJ).
    Rejected,
    /// The originator's SYN was not in the capture.
    NotSeen,
}

impl HandshakeState {
    /// Every state, in the order reports list them.
    pub const ALL: [HandshakeState; 5] = [
        HandshakeState::Complete,
        HandshakeState::SynOnly,
        HandshakeState::SynSynack,
        HandshakeState::Rejected,
        HandshakeState::NotSeen,
    ];

    /// Its name as printed and serialized, e.g. `syn_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeState::Complete => "complete",
            HandshakeState::SynOnly => "syn_only",
            HandshakeState::SynSynack => "syn_synack",
            HandshakeState::Rejected => "rejected",
            HandshakeState::NotSeen => "not_seen",
        }
    }
}

impl fmt::Display for HandshakeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The teardown's summary.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Teardown {
    /// Where it got to.
    pub state: TeardownState,
    /// Who began it; `None` while open.
    pub initiator: Option<Initiator>,
    /// How it went; `None` while open.
    pub kind: Option<TeardownKind>,
    /// Time of the first FIN from either side, in seconds since the Unix epoch.
    pub first_fin_ts: Option<f64>,
    /// Time of the later side's first FIN, once both sides sent one, in seconds since the Unix epoch.
    pub last_fin_ts: Option<f64>,
    /// Time of the ACK of that later FIN, in seconds since the Unix epoch.
    pub final_ack_ts: Option<f64>,
    /// Time of the first RST from either side, in seconds since the Unix epoch.
    pub rst_ts: Option<f64>,
}

/// Where the teardown got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeardownState {
    /// Both sides sent a FIN.
    Closed,
    /// One side sent a FIN.
    HalfClosed,
    /// A RST ended it.
    Reset,
    /// Neither FIN nor RST.
    Open,
}

impl TeardownState {
    /// Every state, in the order reports list them.
    pub const ALL: [TeardownState; 4] =
        [TeardownState::Closed, TeardownState::HalfClosed, TeardownState::Reset, TeardownState::Open];

    /// Its name as printed and serialized, e.g. `half_closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TeardownState::Closed => "closed",
            TeardownState::HalfClosed => "half_closed",
            TeardownState::Reset => "reset",
            TeardownState::Open => "open",
        }
    }
}

impl fmt::Display for TeardownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How the connection was torn down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeardownKind {
    /// FIN, ACK, FIN, ACK.
    FourWay,
    /// The second FIN carried the ACK of the first.
    Combined,
    /// The FINs crossed.
    Simultaneous,
    /// A side sent data after the other's FIN (or only one side closed).
    HalfClose,
    /// A RST, no FIN before it.
    Rst,
    /// FINs first, then a RST.
    FinThenRst,
}

impl TeardownKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [TeardownKind; 6] = [
        TeardownKind::FourWay,
        TeardownKind::Combined,
        TeardownKind::Simultaneous,
        TeardownKind::HalfClose,
        TeardownKind::Rst,
        TeardownKind::FinThenRst,
    ];

    /// Its name as printed and serialized, e.g. `four_way`.
    pub fn as_str(self) -> &'static str {
        match self {
            TeardownKind::FourWay => "four_way",
            TeardownKind::Combined => "combined",
            TeardownKind::Simultaneous => "simultaneous",
            TeardownKind::HalfClose => "half_close",
            TeardownKind::Rst => "rst",
            TeardownKind::FinThenRst => "fin_then_rst",
        }
    }
}

impl fmt::Display for TeardownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who began the teardown: the side with the first FIN (or RST), or both at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    /// The originator.
    Orig,
    /// The responder.
    Resp,
    /// Both sides at the same instant (or FINs that crossed).
    Both,
}

impl Initiator {
    /// Every value, in the order reports list them.
    pub const ALL: [Initiator; 3] = [Initiator::Orig, Initiator::Resp, Initiator::Both];

    /// Its name as printed and serialized: `orig`, `resp` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Initiator::Orig => "orig",
            Initiator::Resp => "resp",
            Initiator::Both => "both",
        }
    }
}

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
