//! `show`: a ladder diagram of one connection, client on the left, server on the right.

use std::io::{self, Write};

use super::clock::Clock;
use super::record::ConnRecord;
use crate::pipeline::{ObservedPacket, Transport};
use crate::tcp::phases::TeardownKind;
use crate::types::SeqNum;

const ARROW: usize = 12;

/// The ladder's width, about: narrower terminals get the list.
const LADDER_WIDTH: usize = 140;

/// Where a list line's label starts, after the packet number, times and direction.
const LIST_INDENT: usize = 37;

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

/// What the ladder remembers of one side, to annotate its packets.
#[derive(Default)]
struct Side {
    /// Its first sequence number: the ISN when its SYN was seen.
    base: Option<SeqNum>,
    /// It sent a SYN, so its data starts right after `base`.
    syn: bool,
    /// The end of its highest payload seen.
    highest: Option<SeqNum>,
    /// The end of everything it sent (SYN and FIN count one each).
    next: Option<SeqNum>,
    /// Its last pure ACK: acknowledgement and window.
    last_ack: Option<(SeqNum, u16)>,
    /// Duplicate ACKs it sent in a row.
    dup_acks: u32,
    /// Ranges of its payload skipped so far (start, end): a later segment there arrived out of
    /// order, or was lost before the capture point and sent again.
    holes: Vec<(SeqNum, SeqNum)>,
}

/// Enough holes to follow reordering; older ones are forgotten.
const MAX_HOLES: usize = 32;

impl Side {
    /// Remembers that payload `start..end` was skipped; the note saying so.
    fn skipped(&mut self, start: SeqNum, end: SeqNum) -> String {
        if self.holes.len() == MAX_HOLES {
            self.holes.remove(0);
        }
        self.holes.push((start, end));
        format!("{} bytes before it not captured (or out of order)", end.diff(start))
    }

    /// Whether payload `start..end` falls in a hole, which it then fills (in part or whole).
    fn fill(&mut self, start: SeqNum, end: SeqNum) -> bool {
        let before = self.holes.len();
        let mut left = Vec::new();
        self.holes.retain(|&(s, e)| {
            let overlaps = start < e && s < end;
            if overlaps {
                left.extend([(s, start), (end, e)].into_iter().filter(|(a, b)| a < b));
            }
            !overlaps
        });
        let filled = self.holes.len() < before;
        self.holes.extend(left);
        filled
    }
}

/// The events a segment from `side` shows: retransmissions (fast ones after three duplicate
/// ACKs; one that fills a hole is said to), payload after a hole (also before the first payload
/// or a FIN: out of order, or never captured), bytes the peer acknowledges but never captured, duplicate ACKs, window updates,
/// zero windows, FIN, RST.
fn events(sides: &mut [Side; 2], side: usize, seg: &crate::decode::TcpSegment) -> Vec<String> {
    let mut notes = Vec::new();
    let (low, high) = sides.split_at_mut(1);
    let (me, peer) = if side == 0 { (&mut low[0], &mut high[0]) } else { (&mut high[0], &mut low[0]) };
    let f = seg.flags;
    me.syn |= f.syn();
    let data = seg.seq.advance(u32::from(f.syn()));
    if seg.payload_len > 0 {
        let end = data.advance(seg.payload_len);
        let fills = me.fill(data, end);
        match (me.highest, me.base) {
            (Some(h), _) if end <= h && peer.dup_acks >= 3 => {
                // The duplicate ACKs asked for this one; a later copy is an ordinary retransmission.
                peer.dup_acks = 0;
                notes.push("fast retransmission".to_string());
            }
            (Some(h), _) if end <= h && fills => notes.push("retransmission, fills a gap".to_string()),
            (Some(h), _) if end <= h => notes.push("retransmission".to_string()),
            (Some(h), _) if data > h => notes.push(me.skipped(h, data)),
            (None, Some(base)) if me.syn && data > base.advance(1) => {
                notes.push(me.skipped(base.advance(1), data))
            }
            _ => {}
        }
        me.highest = Some(me.highest.map_or(end, |h| h.max(end)));
    } else if f.fin() {
        // A FIN's sequence number is where the data ended: bytes before it never seen are a gap.
        let sent = me.highest.or(me.base.filter(|_| me.syn).map(|b| b.advance(1)));
        if let Some(h) = sent.filter(|h| data > *h) {
            notes.push(me.skipped(h, data));
        }
    }
    let end_all = data.advance(seg.payload_len).advance(u32::from(f.fin()));
    me.next = Some(me.next.map_or(end_all, |n| n.max(end_all)));
    if f.ack() && !f.rst() {
        if let Some(n) = peer.next.filter(|n| seg.ack > *n) {
            notes.push(format!("acks {} bytes never captured", seg.ack.diff(n)));
        }
    }
    let pure_ack = f.ack() && seg.payload_len == 0 && !f.syn() && !f.fin() && !f.rst();
    match me.last_ack.filter(|_| pure_ack) {
        Some((ack, win)) if ack == seg.ack && win == seg.window => {
            me.dup_acks += 1;
            notes.push(format!("dup ack #{}", me.dup_acks));
        }
        Some((ack, win)) if ack == seg.ack && win != seg.window && seg.window != 0 => {
            me.dup_acks = 0;
            notes.push("window update".to_string());
        }
        _ => me.dup_acks = 0,
    }
    me.last_ack = pure_ack.then_some((seg.ack, seg.window)).or(me.last_ack.filter(|_| seg.payload_len == 0));
    if seg.window == 0 && !f.rst() {
        notes.push("zero window".into());
    }
    if f.fin() {
        notes.push("FIN".into());
    }
    if f.rst() {
        notes.push("RST".into());
    }
    notes
}

/// Prints one line per packet of the connection `c`; sequence numbers relative to each side's
/// first (its ISN, as Wireshark shows them) unless `absolute`; the first packet's time in
/// `clock`'s zone; as a list of lines that wrap when the terminal is narrower than the ladder.
pub fn write(
    out: &mut dyn Write,
    c: &ConnRecord,
    packets: &[ObservedPacket],
    absolute: bool,
    clock: &Clock,
    width: Option<usize>,
) -> io::Result<()> {
    let narrow = width.filter(|w| *w < LADDER_WIDTH);
    // A line too long for a narrow terminal wraps under `indent`, so nothing is lost.
    let fit = |line: String, indent: usize| match narrow {
        Some(w) => {
            let indent = " ".repeat(indent);
            textwrap::wrap(&line, textwrap::Options::new(w).subsequent_indent(&indent)).join("\n")
        }
        None => line,
    };
    let service = c.service.map_or(String::new(), |s| format!("  service {s}"));
    let heading = format!(
        "connection {}: {} {} -> {}  {}  history {}{service}  {} packets, {:.6} s",
        c.id,
        c.proto,
        c.orig,
        c.resp,
        c.conn_state,
        if c.history.is_empty() { "-" } else { &c.history },
        packets.len(),
        c.duration
    );
    writeln!(out, "{}", fit(heading, 2))?;
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
    writeln!(out, "first packet: {}", clock.stamp(c.ts))?;
    // Never wrapped: it is for pasting into Wireshark whole.
    writeln!(out, "wireshark: {}", display_filter(c))?;
    // For finding the connection in Zeek, Suricata or other logs that carry the ID.
    writeln!(out, "community id: {}", c.community_id)?;
    let columns = format!("{:>7}  {:>10}  {:>9}  ", "pkt", "time", "delta");
    let header = match narrow {
        Some(_) => format!("{columns}dir  client {} / server {}", c.orig, c.resp),
        None => format!("{columns}{:<45} {:>13} server {}", format!("client {}", c.orig), "", c.resp),
    };
    writeln!(out, "{}", fit(header, LIST_INDENT))?;
    let Some(first) = packets.first() else {
        return Ok(());
    };
    let shifts = window_shifts(c);
    let mut previous = first.ts;
    // Relative sequence numbers: from each side's first sequence number seen.
    let mut sides = [Side::default(), Side::default()];
    for p in packets {
        let from_client = p.sockets().0 == c.orig;
        let side = usize::from(!from_client);
        let t = p.ts.since(first.ts).as_secs_f64();
        let delta = p.ts.since(previous).as_secs_f64();
        previous = p.ts;
        let (label, notes) = match p.transport {
            Transport::Tcp(seg) => {
                let b = *sides[side].base.get_or_insert(seg.seq);
                let peer = sides[1 - side].base;
                let mut notes = events(&mut sides, side, &seg);
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
        let notes = if notes.is_empty() { String::new() } else { format!("  [{}]", notes.join(", ")) };
        let line = match narrow {
            Some(_) => {
                let dir = if from_client { "C>S" } else { "S>C" };
                fit(format!("{:>7}  {t:>10.6}  {delta:>9.6}  {dir}  {label}{notes}", p.number), LIST_INDENT)
            }
            None => {
                let arrow = if from_client {
                    format!("{label:<45} {}>", "-".repeat(ARROW))
                } else {
                    format!("{:<45} <{} {label}", "", "-".repeat(ARROW))
                };
                format!("{:>7}  {t:>10.6}  {delta:>9.6}  {arrow}{notes}", p.number)
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}
