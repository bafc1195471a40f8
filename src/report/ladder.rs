//! `show`: a ladder diagram of one connection, client on the left, server on the right.

use std::io::{self, Write};

use super::record::ConnRecord;
use crate::pipeline::{ObservedPacket, Transport};
use crate::tcp::phases::TeardownKind;
use crate::types::SeqNum;

const ARROW: usize = 12;

/// A Wireshark display filter that shows the connection's socket pair.
fn display_filter(c: &ConnRecord) -> String {
    let ip = |a: std::net::IpAddr| if a.is_ipv4() { "ip.addr" } else { "ipv6.addr" };
    let port = c.proto.as_str();
    format!(
        "{}=={} && {}=={} && {port}.port=={} && {port}.port=={}",
        ip(c.orig.ip),
        c.orig.ip,
        ip(c.resp.ip),
        c.resp.ip,
        c.orig.port,
        c.resp.port
    )
}

/// The window scale shift of each side, when both offered one (RFC 7323: else neither applies).
fn window_shifts(c: &ConnRecord) -> [u32; 2] {
    let offered = |o: Option<&crate::tcp::phases::Offered>| o.and_then(|o| o.window_scale);
    match c.handshake.as_ref().map(|h| (offered(h.orig_options.as_ref()), offered(h.resp_options.as_ref()))) {
        Some((Some(a), Some(b))) => [u32::from(a.min(14)), u32::from(b.min(14))],
        _ => [0, 0],
    }
}

/// A SYN's options: `mss=1460 ws=7 sack ts`.
fn options(o: &crate::decode::TcpOptions) -> String {
    let mut parts = Vec::new();
    parts.extend(o.mss.map(|m| format!("mss={m}")));
    parts.extend(o.window_scale.map(|w| format!("ws={w}")));
    if o.sack_permitted {
        parts.push("sack".into());
    }
    if o.timestamps {
        parts.push("ts".into());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" <{}>", parts.join(" "))
    }
}

/// Prints one line per packet of the connection `c`; sequence numbers relative to each side's
/// first (its ISN, as Wireshark shows them) unless `absolute`.
pub fn write(
    out: &mut dyn Write,
    c: &ConnRecord,
    packets: &[ObservedPacket],
    absolute: bool,
) -> io::Result<()> {
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
    writeln!(out, "first packet: {} UTC", super::table::utc(c.ts))?;
    writeln!(out, "wireshark: {}", display_filter(c))?;
    let client = format!("client {}", c.orig);
    writeln!(out, "{:>7}  {:>10}  {:>9}  {client:<45} {:>13} server {}", "pkt", "time", "delta", "", c.resp)?;
    let Some(first) = packets.first() else {
        return Ok(());
    };
    let shifts = window_shifts(c);
    let mut previous = first.ts;
    // Relative sequence numbers: from each side's first sequence number seen.
    let mut base: [Option<SeqNum>; 2] = [None, None];
    let mut highest: [Option<SeqNum>; 2] = [None, None];
    for p in packets {
        let from_client = p.sockets().0 == c.orig;
        let side = usize::from(!from_client);
        let t = p.ts.since(first.ts).as_secs_f64();
        let delta = p.ts.since(previous).as_secs_f64();
        previous = p.ts;
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
                    (true, Some(pb)) if !absolute => format!(" ack={}", seg.ack.diff(pb)),
                    (true, _) => format!(" ack={}", seg.ack),
                    _ => String::new(),
                };
                let seq = if absolute { i64::from(seg.seq.0) } else { i64::from(seg.seq.diff(b)) };
                // A SYN's window is never scaled; later ones are, by the sender's shift.
                let win = if seg.flags.syn() {
                    u64::from(seg.window)
                } else {
                    u64::from(seg.window) << shifts[side]
                };
                let opts = if seg.flags.syn() { options(&seg.options) } else { String::new() };
                let label = format!("{} seq={seq}{ack} len={} win={win}{opts}", seg.flags, seg.payload_len);
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
        writeln!(out, "{:>7}  {t:>10.6}  {delta:>9.6}  {arrow}{notes}", p.number)?;
    }
    Ok(())
}
