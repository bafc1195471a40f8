//! `show`: a ladder diagram of one connection, client on the left, server on the right.

use std::io::{self, Write};

use super::record::ConnRecord;
use crate::pipeline::{ObservedPacket, Transport};
use crate::tcp::phases::TeardownKind;
use crate::types::SeqNum;

const ARROW: usize = 12;

/// Prints one line per packet of the connection `c`.
pub fn write(out: &mut dyn Write, c: &ConnRecord, packets: &[ObservedPacket]) -> io::Result<()> {
    writeln!(
        out,
        "connection {}: {} {} -> {}  {}  history {}  {} packets, {:.6} s",
        c.id,
        c.proto,
        c.orig,
        c.resp,
        c.conn_state,
        if c.history.is_empty() { "-" } else { &c.history },
        packets.len(),
        c.duration
    )?;
    if let Some(h) = &c.handshake {
        let rtt = h.rtt.map_or(String::new(), |r| format!(", rtt {:.3} ms", r * 1e3));
        writeln!(out, "handshake: {}{rtt}", h.state)?;
    }
    if let Some(t) = &c.teardown {
        writeln!(
            out,
            "teardown: {}{}{}",
            t.state,
            t.kind.map_or(String::new(), |k| format!(" {k}")),
            t.initiator.map_or(String::new(), |i| format!(" by {i}"))
        )?;
    }
    let client = format!("client {}", c.orig);
    writeln!(out, "{:>7}  {:>10}  {client:<45} {:>13} server {}", "pkt", "time", "", c.resp)?;
    let Some(first) = packets.first() else {
        return Ok(());
    };
    // Relative sequence numbers: from each side's first sequence number seen.
    let mut base: [Option<SeqNum>; 2] = [None, None];
    let mut highest: [Option<SeqNum>; 2] = [None, None];
    for p in packets {
        let from_client = p.sockets().0 == c.orig;
        let side = usize::from(!from_client);
        let t = p.ts.since(first.ts).as_secs_f64();
        let (label, notes) = match p.transport {
            Transport::Tcp(seg) => {
                let b = *base[side].get_or_insert(seg.seq);
                let peer = base[1 - side];
                let mut notes: Vec<String> = Vec::new();
                let end = seg.seq.advance(seg.payload_len);
                if seg.payload_len > 0 {
                    if highest[side].is_some_and(|h| end <= h) {
                        notes.push("retransmission".into());
                    } else if highest[side].is_some_and(|h| seg.seq > h) {
                        notes.push("after a gap or out of order".into());
                    }
                    highest[side] = Some(highest[side].map_or(end, |h| h.max(end)));
                }
                if seg.window == 0 && !seg.flags.rst() {
                    notes.push("zero window".into());
                }
                if seg.flags.fin() {
                    notes.push("FIN".into());
                }
                if seg.flags.rst() {
                    notes.push("RST".into());
                }
                let at = p.ts.as_secs_f64();
                if let Some(h) = c.handshake.as_ref().filter(|h| h.ack_ts == Some(at)) {
                    notes.push(match h.rtt {
                        Some(rtt) => format!("handshake complete, rtt {:.3} ms", rtt * 1e3),
                        None => "handshake complete".into(),
                    });
                }
                if let Some(t) =
                    c.teardown.as_ref().filter(|t| t.final_ack_ts == Some(at) || t.rst_ts == Some(at))
                {
                    let by = t.initiator.map_or(String::new(), |i| format!(" by {i}"));
                    notes.push(format!("{} {}{by}", t.state, t.kind.map_or("", TeardownKind::as_str)));
                }
                let ack = match (seg.flags.ack(), peer) {
                    (true, Some(pb)) => format!(" ack={}", seg.ack.diff(pb)),
                    (true, None) => format!(" ack={}", seg.ack),
                    _ => String::new(),
                };
                let label = format!(
                    "{} seq={}{ack} len={} win={}",
                    seg.flags,
                    seg.seq.diff(b),
                    seg.payload_len,
                    seg.window
                );
                (label, notes)
            }
            Transport::Udp(d) => (format!("len={}", d.payload_len), Vec::new()),
        };
        let arrow = if from_client {
            format!("{label:<45} {}>", "-".repeat(ARROW))
        } else {
            format!("{:<45} <{} {label}", "", "-".repeat(ARROW))
        };
        let notes = if notes.is_empty() { String::new() } else { format!("  [{}]", notes.join(", ")) };
        writeln!(out, "{:>7}  {t:>10.6}  {arrow}{notes}", p.number)?;
    }
    Ok(())
}
