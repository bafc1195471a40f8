//! Pure functions from the two endpoints' states to what is reported.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::endpoint::State;

/// Zeek's conn_state codes, with the meanings of Zeek's conn.log documentation. For UDP, Zeek's
/// rule: SF when both sides sent, S0 when only the originator did, SHR when only the responder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Connection established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected.
    REJ,
    /// Connection established and close attempt by originator seen (but no reply from responder).
    S2,
    /// Connection established and close attempt by responder seen (but no reply from originator).
    S3,
    /// Connection established, originator aborted (sent a RST).
    RSTO,
    /// Responder sent a RST.
    RSTR,
    /// Originator sent a SYN followed by a RST, no SYN+ACK seen from the responder.
    RSTOS0,
    /// Responder sent a SYN+ACK followed by a RST, no SYN seen from the (purported) originator.
    RSTRH,
    /// Originator sent a SYN followed by a FIN, no SYN+ACK seen from the responder (half open).
    SH,
    /// Responder sent a SYN+ACK followed by a FIN, no SYN seen from the originator.
    SHR,
    /// No SYN seen, just midstream traffic (e.g. a partial connection not later closed).
    OTH,
}

impl ConnState {
    /// Every code, in the order of Zeek's documentation.
    pub const ALL: [ConnState; 13] = [
        ConnState::S0,
        ConnState::S1,
        ConnState::SF,
        ConnState::REJ,
        ConnState::S2,
        ConnState::S3,
        ConnState::RSTO,
        ConnState::RSTR,
        ConnState::RSTOS0,
        ConnState::RSTRH,
        ConnState::SH,
        ConnState::SHR,
        ConnState::OTH,
    ];

    /// The code as Zeek prints it, e.g. `SF`.
    pub fn code(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }

    /// What the code means, as Zeek's conn.log documentation says it.
    pub fn meaning(self) -> &'static str {
        match self {
            ConnState::S0 => "connection attempt seen, no reply",
            ConnState::S1 => "connection established, not terminated",
            ConnState::SF => "normal establishment and termination",
            ConnState::REJ => "connection attempt rejected",
            ConnState::S2 => "established, close attempt by the originator seen, no reply from the responder",
            ConnState::S3 => "established, close attempt by the responder seen, no reply from the originator",
            ConnState::RSTO => "established, the originator aborted (sent a RST)",
            ConnState::RSTR => "the responder sent a RST",
            ConnState::RSTOS0 => "the originator sent a SYN then a RST, no SYN+ACK from the responder",
            ConnState::RSTRH => "the responder sent a SYN+ACK then a RST, no SYN from the originator",
            ConnState::SH => "the originator sent a SYN then a FIN, no SYN+ACK from the responder",
            ConnState::SHR => "the responder sent a SYN+ACK then a FIN (UDP: only the responder sent)",
            ConnState::OTH => "no SYN seen, just midstream traffic",
        }
    }

    /// The state a code names, in any case; the error lists the codes.
    pub fn parse(s: &str) -> Result<ConnState, String> {
        Self::ALL.into_iter().find(|c| c.code().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let all: Vec<&str> = Self::ALL.iter().map(|c| c.code()).collect();
            format!("unknown conn_state '{s}' (one of {})", all.join(" "))
        })
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

/// What the verdict needs to know about one side.
#[derive(Clone, Copy, Debug)]
pub struct Side {
    /// Its endpoint state.
    pub state: State,
    /// Payload bytes it sent, from sequence numbers.
    pub size: u64,
}

/// Zeek's decision order (base/protocols/conn/main.zeek, `conn_state`).
pub fn conn_state(orig: Side, resp: Side, history: &str) -> ConnState {
    use State::*;
    let (os, rs) = (orig.state, resp.state);
    if rs == Reset {
        if matches!(os, SynSent | SynAckSent) || (os == Reset && orig.size == 0 && resp.size == 0) {
            ConnState::REJ
        } else if os.inactive_like() {
            ConnState::RSTRH
        } else {
            ConnState::RSTR
        }
    } else if os == Reset {
        if !rs.inactive_like() {
            ConnState::RSTO
        } else if syn_then_rst(history) {
            ConnState::RSTOS0
        } else {
            ConnState::OTH
        }
    } else if os == Closed && rs == Closed {
        ConnState::SF
    } else if os == Closed {
        if rs.inactive_like() {
            ConnState::SH
        } else {
            ConnState::S2
        }
    } else if rs == Closed {
        if os.inactive_like() {
            ConnState::SHR
        } else {
            ConnState::S3
        }
    } else if os == SynSent && rs == Inactive {
        ConnState::S0
    } else if os == Established && rs == Established {
        ConnState::S1
    } else {
        ConnState::OTH
    }
}

/// Zeek's `/\^?S[^HAFGIQ]*R.*/`: an originator SYN, then a RST with no reply or handshake between.
fn syn_then_rst(history: &str) -> bool {
    let h = history.strip_prefix('^').unwrap_or(history);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    fn st(o: State, r: State) -> ConnState {
        conn_state(Side { state: o, size: 0 }, Side { state: r, size: 0 }, "")
    }

    #[test]
    fn attempts() {
        assert_eq!(st(SynSent, Inactive), ConnState::S0);
        assert_eq!(st(SynSent, Reset), ConnState::REJ);
        assert_eq!(st(SynAckSent, Reset), ConnState::REJ);
    }

    #[test]
    fn established_and_closed() {
        assert_eq!(st(Established, Established), ConnState::S1);
        assert_eq!(st(Closed, Closed), ConnState::SF);
        assert_eq!(st(Closed, Established), ConnState::S2);
        assert_eq!(st(Established, Closed), ConnState::S3);
        assert_eq!(st(Closed, Inactive), ConnState::SH);
        assert_eq!(st(Closed, Partial), ConnState::SH);
        assert_eq!(st(Partial, Closed), ConnState::SHR);
    }

    #[test]
    fn resets() {
        assert_eq!(st(Established, Reset), ConnState::RSTR);
        assert_eq!(st(Partial, Reset), ConnState::RSTRH);
        assert_eq!(st(Reset, Established), ConnState::RSTO);
        assert_eq!(st(Reset, Closed), ConnState::RSTO);
        let sized = |n| Side { state: Reset, size: n };
        assert_eq!(conn_state(sized(0), sized(0), "ShR"), ConnState::REJ);
        assert_eq!(conn_state(sized(5), sized(0), "ShADR"), ConnState::RSTR);
    }

    #[test]
    fn originator_reset_without_reply_follows_history() {
        // Zeek's conn_state-RST-behavior baseline: R -> OTH, SR -> RSTOS0, SaR -> RSTOS0, SaFR -> OTH.
        let o = Side { state: Reset, size: 0 };
        let r = Side { state: Inactive, size: 0 };
        assert_eq!(conn_state(o, r, "R"), ConnState::OTH);
        assert_eq!(conn_state(o, r, "SR"), ConnState::RSTOS0);
        assert_eq!(conn_state(o, r, "SaR"), ConnState::RSTOS0);
        assert_eq!(conn_state(o, r, "SaFR"), ConnState::OTH);
        assert_eq!(conn_state(o, r, "^SR"), ConnState::RSTOS0);
    }

    #[test]
    fn midstream_is_other() {
        assert_eq!(st(Partial, Partial), ConnState::OTH);
        assert_eq!(st(Inactive, Established), ConnState::OTH);
    }

    #[test]
    fn codes_round_trip() {
        for c in ConnState::ALL {
            assert_eq!(ConnState::parse(c.code()), Ok(c));
        }
        assert_eq!(ConnState::parse("rej"), Ok(ConnState::REJ));
        assert!(ConnState::parse("nope").unwrap_err().contains("one of S0 "));
    }
}
