//! State-machine tests from compact segment scripts, grouped by how connections end.
//!
//! A script is `;`-separated steps `C>S FLAGS seq=N ack=N len=N win=N` (C = client/originator,
//! S = server); flags are letters S A F R P. Steps are 1 ms apart unless `t=MS` is given.

use super::phases::{HandshakeState, Initiator, TeardownKind, TeardownState};
use super::*;
use crate::decode::{TcpFlags, TcpOptions};

struct Run {
    tcp: TcpConn,
    hist: History,
}

/// Runs a script whose roles stay as they start.
fn run(script: &str) -> Run {
    let (r, flips) = run_flipping(script);
    assert_eq!(flips, 0, "these scripts keep the roles they start with");
    r
}

/// Runs a script in which the roles may swap: `C` and `S` stay the same hosts, whichever is the
/// originator. Returns the run and how many times the roles swapped.
fn run_flipping(script: &str) -> (Run, u32) {
    let mut tcp = TcpConn::new(Timestamp::default());
    let mut hist = History::default();
    let mut now = 0u64;
    let mut client_is_orig = true;
    let mut flips = 0;
    for (i, step) in script.split(';').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
        let mut words = step.split_whitespace();
        let is_orig = match words.next() {
            Some("C>S") => client_is_orig,
            Some("S>C") => !client_is_orig,
            other => panic!("step {i}: direction C>S or S>C, got {other:?}"),
        };
        let mut seg = TcpSegment {
            src_port: 0,
            dst_port: 0,
            seq: SeqNum(0),
            ack: SeqNum(0),
            flags: TcpFlags(0),
            window: 1000,
            payload_len: 0,
            options: TcpOptions::default(),
            shape: Default::default(),
        };
        now += 1_000_000;
        for w in words {
            match w.split_once('=') {
                Some(("seq", v)) => seg.seq = SeqNum(v.parse().unwrap()),
                Some(("ack", v)) => seg.ack = SeqNum(v.parse().unwrap()),
                Some(("len", v)) => seg.payload_len = v.parse().unwrap(),
                Some(("win", v)) => seg.window = v.parse().unwrap(),
                Some(("t", v)) => now = v.parse::<u64>().unwrap() * 1_000_000,
                Some(_) => panic!("step {i}: unknown field {w}"),
                None => {
                    for c in w.chars() {
                        seg.flags.0 |= match c {
                            'S' => TcpFlags::SYN,
                            'A' => TcpFlags::ACK,
                            'F' => TcpFlags::FIN,
                            'R' => TcpFlags::RST,
                            'P' => TcpFlags::PSH,
                            _ => panic!("step {i}: unknown flag {c}"),
                        }
                    }
                }
            }
        }
        if tcp.segment(Timestamp::from_nanos(now), is_orig, &seg, &mut hist).flipped {
            client_is_orig = !client_is_orig;
            flips += 1;
        }
    }
    (Run { tcp, hist }, flips)
}

impl Run {
    fn state(&self) -> ConnState {
        self.tcp.conn_state(&self.hist)
    }
    fn history(&self) -> &str {
        self.hist.as_str()
    }
    fn handshake(&self) -> HandshakeState {
        self.tcp.phases.handshake(self.state() == ConnState::REJ).state
    }
    fn teardown(&self) -> (TeardownState, Option<Initiator>, Option<TeardownKind>) {
        let t = self.tcp.phases.teardown();
        (t.state, t.initiator, t.kind)
    }
}

const HANDSHAKE: &str = "C>S S seq=100; S>C SA seq=500 ack=101; C>S A seq=101 ack=501;";
const DATA: &str = "C>S PA seq=101 ack=501 len=10; S>C PA seq=501 ack=111 len=20; C>S A seq=111 ack=521;";

mod opening {
    use super::*;

    #[test]
    fn unanswered_syn_is_s0() {
        let r = run("C>S S seq=100; C>S S seq=100 t=1000");
        assert_eq!(r.state(), ConnState::S0);
        assert_eq!(r.history(), "S");
        assert_eq!(r.handshake(), HandshakeState::SynOnly);
        assert_eq!(r.tcp.phases.handshake(false).syn_retransmissions, 1);
    }

    #[test]
    fn refused_is_rej() {
        let r = run("C>S S seq=100; S>C RA seq=0 ack=101");
        assert_eq!(r.state(), ConnState::REJ);
        assert_eq!(r.history(), "Sr");
        assert_eq!(r.handshake(), HandshakeState::Rejected);
        assert_eq!(r.teardown(), (TeardownState::Reset, Some(Initiator::Resp), Some(TeardownKind::Rst)));
        assert_eq!(r.tcp.seq_bytes(), (0, 0), "a RST with seq 0 must not count 2^32 - 1 bytes");
    }

    #[test]
    fn handshake_only_is_s1() {
        let r = run(HANDSHAKE);
        assert_eq!(r.state(), ConnState::S1);
        assert_eq!(r.history(), "ShA");
        assert_eq!(r.handshake(), HandshakeState::Complete);
        let h = r.tcp.phases.handshake(false);
        assert_eq!(h.rtt, Some(0.002));
        assert_eq!(h.rtt_server, Some(0.001));
        assert_eq!(h.rtt_client, Some(0.001));
        assert_eq!(r.teardown(), (TeardownState::Open, None, None));
    }

    #[test]
    fn syn_synack_without_ack() {
        let r = run("C>S S seq=100; S>C SA seq=500 ack=101");
        assert_eq!(r.handshake(), HandshakeState::SynSynack);
        assert_eq!(r.history(), "Sh");
    }

    #[test]
    fn midstream_is_oth_and_not_seen() {
        let r = run("C>S PA seq=1000 ack=2000 len=10; S>C A seq=2000 ack=1010");
        assert_eq!(r.state(), ConnState::OTH);
        assert_eq!(r.history(), "Da");
        assert_eq!(r.handshake(), HandshakeState::NotSeen);
    }

    /// Scripts start from the first packet's sender: `C` here is whoever sent the SYN+ACK.
    #[test]
    fn synack_first_then_ack_flips_to_the_synack_receiver() {
        let (r, flips) =
            run_flipping("C>S SA seq=500 ack=101; S>C A seq=101 ack=501; S>C PA seq=101 ack=501 len=10; C>S A seq=501 ack=111");
        assert_eq!(flips, 1);
        assert_eq!(r.history(), "^hADa");
        assert_eq!(
            r.tcp.phases.handshake(false).state,
            HandshakeState::NotSeen,
            "the SYN came before the capture"
        );
    }

    #[test]
    fn synack_first_then_data_from_its_sender_flips_too() {
        let (r, flips) = run_flipping("C>S SA seq=500 ack=101; C>S PA seq=501 ack=101 len=5");
        assert_eq!(flips, 1);
        assert_eq!(r.history(), "^hd");
    }

    #[test]
    fn synack_first_then_rst_stays_a_scan() {
        let (r, flips) = run_flipping("C>S SA seq=500 ack=101; S>C R seq=101");
        assert_eq!(flips, 0);
        assert_eq!(r.history(), "Hr");
    }

    #[test]
    fn syn_after_its_synack_swaps_and_marks() {
        let (r, flips) = run_flipping("C>S SA seq=500 ack=101; S>C S seq=100; S>C A seq=101 ack=501");
        assert_eq!(flips, 1);
        assert_eq!(r.state(), ConnState::S1);
        assert_eq!(r.history(), "Hs^A");
    }

    #[test]
    fn a_connection_is_partial_unless_its_start_was_seen() {
        assert!(!run(HANDSHAKE).tcp.partial());
        assert!(run("C>S PA seq=101 ack=501 len=10; S>C A seq=501 ack=111").tcp.partial());
        assert!(run("C>S S seq=100; S>C A seq=500 ack=101").tcp.partial(), "the answer carries no SYN");
        let (r, _) = run_flipping("C>S SA seq=500 ack=101; S>C A seq=101 ack=501");
        assert!(!r.tcp.partial(), "the SYN+ACK's answer starts it, as in Zeek");
    }

    #[test]
    fn retransmitted_syn_is_not_reuse_but_new_isn_is() {
        let r = run("C>S S seq=100");
        let syn = |seq| TcpSegment {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum(seq),
            ack: SeqNum(0),
            flags: TcpFlags(TcpFlags::SYN),
            window: 1,
            payload_len: 0,
            options: TcpOptions::default(),
            shape: Default::default(),
        };
        assert!(!r.tcp.starts_new_connection(&syn(100)));
        assert!(r.tcp.starts_new_connection(&syn(9999)));
    }
}

mod closing {
    use super::*;

    #[test]
    fn client_closes_four_way() {
        let r = run(&format!(
            "{HANDSHAKE}{DATA} C>S FA seq=111 ack=521; S>C A seq=521 ack=112; S>C FA seq=521 ack=112; C>S A seq=112 ack=522"
        ));
        assert_eq!(r.state(), ConnState::SF);
        assert_eq!(r.history(), "ShADdFaf");
        assert_eq!(r.teardown(), (TeardownState::Closed, Some(Initiator::Orig), Some(TeardownKind::FourWay)));
        assert_eq!(r.tcp.seq_bytes(), (10, 20));
    }

    #[test]
    fn server_closes_combined() {
        let r = run(&format!(
            "{HANDSHAKE}{DATA} S>C FA seq=521 ack=111; C>S FA seq=111 ack=522; S>C A seq=522 ack=112"
        ));
        assert_eq!(r.state(), ConnState::SF);
        assert_eq!(
            r.teardown(),
            (TeardownState::Closed, Some(Initiator::Resp), Some(TeardownKind::Combined))
        );
        let t = r.tcp.phases.teardown();
        assert_eq!(t.final_ack_ts, Some(0.009));
    }

    #[test]
    fn simultaneous_close() {
        let r = run(&format!(
            "{HANDSHAKE}{DATA} C>S FA seq=111 ack=521; S>C FA seq=521 ack=111; C>S A seq=112 ack=522"
        ));
        assert_eq!(r.state(), ConnState::SF);
        assert_eq!(
            r.teardown(),
            (TeardownState::Closed, Some(Initiator::Both), Some(TeardownKind::Simultaneous))
        );
    }

    #[test]
    fn half_close_with_data_after_fin() {
        let r = run(&format!(
            "{HANDSHAKE} C>S PA seq=101 ack=501 len=10; C>S FA seq=111 ack=501; S>C PA seq=501 ack=112 len=100; S>C FA seq=601 ack=112; C>S A seq=112 ack=602"
        ));
        assert_eq!(r.state(), ConnState::SF);
        assert_eq!(
            r.teardown(),
            (TeardownState::Closed, Some(Initiator::Orig), Some(TeardownKind::HalfClose))
        );
    }

    #[test]
    fn only_client_closed_is_s2() {
        let r = run(&format!("{HANDSHAKE}{DATA} C>S FA seq=111 ack=521; S>C A seq=521 ack=112"));
        assert_eq!(r.state(), ConnState::S2);
        assert_eq!(
            r.teardown(),
            (TeardownState::HalfClosed, Some(Initiator::Orig), Some(TeardownKind::HalfClose))
        );
    }

    #[test]
    fn only_server_closed_is_s3() {
        let r = run(&format!("{HANDSHAKE}{DATA} S>C FA seq=521 ack=111"));
        assert_eq!(r.state(), ConnState::S3);
        assert_eq!(
            r.teardown(),
            (TeardownState::HalfClosed, Some(Initiator::Resp), Some(TeardownKind::HalfClose))
        );
    }

    #[test]
    fn syn_then_fin_is_sh() {
        let r = run("C>S S seq=100; C>S F seq=101");
        assert_eq!(r.state(), ConnState::SH);
        assert_eq!(r.history(), "SF");
    }
}

mod resetting {
    use super::*;

    #[test]
    fn client_aborts_rsto() {
        let r = run(&format!("{HANDSHAKE}{DATA} C>S RA seq=111 ack=521"));
        assert_eq!(r.state(), ConnState::RSTO);
        assert_eq!(r.history(), "ShADdR");
        assert_eq!(r.teardown(), (TeardownState::Reset, Some(Initiator::Orig), Some(TeardownKind::Rst)));
    }

    #[test]
    fn server_aborts_rstr() {
        let r = run(&format!("{HANDSHAKE}{DATA} S>C R seq=521"));
        assert_eq!(r.state(), ConnState::RSTR);
        assert_eq!(r.teardown(), (TeardownState::Reset, Some(Initiator::Resp), Some(TeardownKind::Rst)));
    }

    #[test]
    fn fin_then_rst() {
        let r =
            run(&format!("{HANDSHAKE}{DATA} S>C FA seq=521 ack=111; C>S FA seq=111 ack=522; S>C R seq=522"));
        assert_eq!(
            r.teardown(),
            (TeardownState::Reset, Some(Initiator::Resp), Some(TeardownKind::FinThenRst))
        );
    }

    #[test]
    fn syn_then_rst_without_answer_is_rstos0() {
        let r = run("C>S S seq=100; C>S R seq=101");
        assert_eq!(r.state(), ConnState::RSTOS0);
        assert_eq!(r.history(), "SR");
    }

    #[test]
    fn lone_rst_is_oth() {
        let r = run("C>S R seq=5");
        assert_eq!(r.state(), ConnState::OTH);
        assert_eq!(r.history(), "R");
    }

    #[test]
    fn responder_reset_midstream_is_rstrh() {
        let r = run("S>C SA seq=500 ack=101; S>C R seq=501");
        assert_eq!(r.state(), ConnState::RSTRH);
    }
}

mod data {
    use super::*;

    #[test]
    fn retransmission_marks_t_and_counts() {
        let r = run(&format!("{HANDSHAKE} C>S PA seq=101 ack=501 len=10; C>S PA seq=101 ack=501 len=10"));
        assert_eq!(r.history(), "ShADT");
        assert_eq!(r.tcp.phases.orig.trouble().rexmit_pkts, 1);
        assert_eq!(r.tcp.phases.orig.trouble().rexmit_bytes, 10);
    }

    #[test]
    fn duplicate_acks_are_counted() {
        let r = run(&format!(
            "{HANDSHAKE} S>C PA seq=501 ack=101 len=10; C>S A seq=101 ack=511; C>S A seq=101 ack=511; C>S A seq=101 ack=511"
        ));
        assert_eq!(r.tcp.phases.orig.trouble().dup_acks, 2);
        assert_eq!(r.tcp.phases.resp.trouble().dup_acks, 0);
    }

    #[test]
    fn lost_segment_then_ack_is_a_gap() {
        let r = run(&format!(
            "{HANDSHAKE} C>S PA seq=101 ack=501 len=10; C>S PA seq=121 ack=501 len=10; S>C A seq=501 ack=131"
        ));
        assert_eq!(r.history(), "ShADaG");
        assert_eq!(r.tcp.phases.orig.trouble().missed_bytes, 10);
        assert_eq!(r.tcp.phases.orig.trouble().out_of_order, 1);
    }

    #[test]
    fn zero_window_marks_w() {
        let r = run(&format!("{HANDSHAKE} S>C A seq=501 ack=101 win=0"));
        assert_eq!(r.history(), "ShAaw");
        assert_eq!(r.tcp.phases.resp.trouble().zero_windows, 1);
    }

    #[test]
    fn bytes_survive_sequence_wrap() {
        let r = run("C>S S seq=4294967290; S>C SA seq=7 ack=4294967291; C>S A seq=4294967291 ack=8; \
             C>S PA seq=4294967291 ack=8 len=100; S>C A seq=8 ack=95");
        assert_eq!(r.tcp.seq_bytes().0, 100);
        assert_eq!(r.state(), ConnState::S1);
    }
}

/// Zeek's timers: when a connection that saw no further packet is over.
mod timers {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    /// Is the connection over at `now_ms`, its last activity at `last_ms`, with Zeek's default
    /// inactivity timeout?
    fn over(r: &mut Run, last_ms: u64, now_ms: u64) -> bool {
        over_after(r, last_ms, now_ms, 300)
    }

    /// The same with an inactivity timeout of `timeout_s` seconds (`--tcp-timeout`).
    fn over_after(r: &mut Run, last_ms: u64, now_ms: u64, timeout_s: u64) -> bool {
        r.tcp.expired(at(now_ms), Timestamp::default(), at(last_ms), Duration::from_secs(timeout_s))
    }

    #[test]
    fn an_unanswered_syn_ends_at_the_attempt_check() {
        let mut r = run("C>S S seq=100 t=1000");
        assert!(!over(&mut r, 1000, 5999));
        assert!(over(&mut r, 1000, 6000));
    }

    #[test]
    fn a_closed_connection_ends_five_seconds_after_its_second_fin() {
        let mut r = run(&format!(
            "{HANDSHAKE} C>S FA seq=101 ack=501 t=1000; S>C FA seq=501 ack=102 t=2000; C>S A seq=102 ack=502 t=3000"
        ));
        assert!(!over(&mut r, 3000, 6999));
        assert!(over(&mut r, 3000, 7000));
    }

    #[test]
    fn an_idle_established_connection_lasts_five_minutes() {
        let mut r = run(&format!("{HANDSHAKE} {DATA}"));
        assert!(!over(&mut r, 6, 6 + 299_999));
        assert!(over(&mut r, 6, 6 + 300_000));
    }

    #[test]
    fn an_idle_established_connection_lasts_as_long_as_the_timeout_says() {
        let mut r = run(&format!("{HANDSHAKE} {DATA}"));
        assert!(!over_after(&mut r, 6, 6 + 400_000, 600), "idle 400 s of 600");
        assert!(over_after(&mut r, 6, 6 + 600_000, 600));
        assert!(!over_after(&mut r, 6, 6 + 1_999, 2));
        assert!(over_after(&mut r, 6, 6 + 2_000, 2), "a timeout shorter than Zeek's 5 s timers");
    }

    #[test]
    fn a_handshake_never_outlasts_a_shorter_timeout() {
        let mut r = run("C>S S seq=100 t=1000; S>C SA seq=500 ack=101 t=1001");
        assert!(!over_after(&mut r, 1001, 1001 + 29_999, 30));
        assert!(over_after(&mut r, 1001, 1001 + 30_000, 30));
    }

    #[test]
    fn a_half_closed_connection_waits_for_the_other_side_as_an_idle_one() {
        let mut r = run(&format!("{HANDSHAKE} C>S FA seq=101 ack=501 t=1000; S>C A seq=501 ack=102 t=1001"));
        assert!(!over(&mut r, 1001, 200_000));
        assert!(over(&mut r, 1001, 301_001));
    }
}
