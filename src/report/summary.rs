//! The summary: packet accounting, connections by protocol and state, phases.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::clock::Clock;
use super::record::ConnRecord;
use super::AccountingRecord;
use crate::flow::inventory::{SocketStats, TopSockets};
use crate::pipeline::Analysis;
use crate::tcp::phases::{HandshakeState, Initiator, TeardownKind, TeardownState};
use crate::tcp::verdict::ConnState;
use crate::types::{Addr, Proto};

/// The busiest sockets, under a title.
fn top(
    out: &mut dyn Write,
    title: &str,
    ranked: &[SocketStats],
    describe: impl Fn(&SocketStats) -> String,
) -> io::Result<()> {
    if ranked.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}:")?;
    for s in ranked {
        // Long IPv6 sockets are shortened in the middle, so a line fits 80 columns.
        let socket =
            super::table::cell(&format!("{}/{}", Addr { ip: s.ip, port: s.port }, s.proto), 38, false);
        writeln!(out, "  {socket} {:<6}  {}", s.role, describe(s))?;
    }
    Ok(())
}

/// The counts in alphabetical order of their labels, the order the summary lists them in.
fn alphabetical<K: Copy, L: Ord>(counts: &BTreeMap<K, u64>, label: impl Fn(K) -> L) -> Vec<(L, u64)> {
    let mut rows: Vec<(L, u64)> = counts.iter().map(|(&k, &n)| (label(k), n)).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Totals over connections, gathered as they end.
#[derive(Default)]
pub struct Summary {
    conns: u64,
    tcp: u64,
    by_state: BTreeMap<(Proto, ConnState), u64>,
    handshakes: BTreeMap<HandshakeState, u64>,
    /// By state, and by kind and initiator where both are known.
    teardowns: BTreeMap<(TeardownState, Option<(TeardownKind, Initiator)>), u64>,
    rtts: Vec<f64>,
    rexmit_pkts: u64,
    tcp_pkts: u64,
    resets: u64,
    unanswered: u64,
    refused: u64,
    missed_bytes: u64,
}

impl Summary {
    /// Counts one connection's record.
    pub fn add(&mut self, c: &ConnRecord) {
        self.conns += 1;
        if c.proto == Proto::Tcp {
            self.tcp += 1;
            self.tcp_pkts += c.orig_pkts + c.resp_pkts;
        }
        if let Some(d) = &c.data {
            self.rexmit_pkts += d.orig_rexmit_pkts + d.resp_rexmit_pkts;
            self.missed_bytes += d.orig_missed_bytes + d.resp_missed_bytes;
        }
        *self.by_state.entry((c.proto, c.conn_state)).or_default() += 1;
        if let Some(h) = &c.handshake {
            self.unanswered += u64::from(h.state == HandshakeState::SynOnly);
            self.refused += u64::from(h.state == HandshakeState::Rejected);
            *self.handshakes.entry(h.state).or_default() += 1;
            self.rtts.extend(h.rtt);
        }
        if let Some(t) = &c.teardown {
            self.resets += u64::from(t.state == TeardownState::Reset);
            let how = t.kind.zip(t.initiator);
            *self.teardowns.entry((t.state, how)).or_default() += 1;
        }
    }

    /// Handshake RTTs in seconds: min, median, 95th percentile, max.
    fn rtt_quantiles(&mut self) -> Option<[f64; 4]> {
        self.rtts.sort_by(f64::total_cmp);
        let rtts = &self.rtts;
        let last = rtts.len().checked_sub(1)?;
        let q = |f: f64| rtts[(last as f64 * f).round() as usize];
        Some([q(0.0), q(0.5), q(0.95), q(1.0)])
    }

    /// Teardowns by state, kind and initiator, as labels (`closed four_way by orig`).
    fn teardown_rows(&self) -> Vec<(String, u64)> {
        alphabetical(&self.teardowns, |(state, how)| match how {
            Some((kind, by)) => format!("{state} {kind} by {by}"),
            None => state.to_string(),
        })
    }

    /// The summary as one JSON document; `busiest` are the busiest sockets of the same
    /// connections.
    pub fn write_json(
        mut self,
        out: &mut dyn Write,
        analysis: &Analysis,
        busiest: &TopSockets,
    ) -> io::Result<()> {
        let mut by_state: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for ((proto, state), n) in &self.by_state {
            by_state.entry(proto.as_str()).or_default().insert(state.code(), *n);
        }
        let rtt = self.rtt_quantiles().map(|[min, median, p95, max]| {
            serde_json::json!({ "min": min, "median": median, "p95": p95, "max": max })
        });
        let doc = serde_json::json!({
            "files": analysis.files,
            "first_ts": analysis.first_ts.map(|t| t.as_secs_f64()),
            "last_ts": analysis.last_ts.map(|t| t.as_secs_f64()),
            "packets": AccountingRecord::new(&analysis.accounting),
            "evicted": analysis.evicted,
            "connections": { "total": self.conns, "tcp": self.tcp, "udp": self.conns - self.tcp, "by_state": by_state },
            "handshakes": alphabetical(&self.handshakes, |h| h.as_str()).into_iter().collect::<BTreeMap<_, _>>(),
            "rtt": rtt,
            "teardowns": self.teardown_rows().into_iter().collect::<BTreeMap<_, _>>(),
            "top_sockets_by_connections": busiest.by_connections,
            "top_sockets_by_bytes": busiest.by_bytes,
            "problems": {
                "retransmitted_packets": self.rexmit_pkts,
                "tcp_packets": self.tcp_pkts,
                "missed_bytes": self.missed_bytes,
                "resets": self.resets,
                "unanswered": self.unanswered,
                "refused": self.refused,
            },
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)
    }

    /// Writes the summary, times in `clock`'s zone; `busiest` are the busiest sockets of the
    /// same connections.
    pub fn write(
        mut self,
        out: &mut dyn Write,
        analysis: &Analysis,
        busiest: &TopSockets,
        clock: &Clock,
    ) -> io::Result<()> {
        for f in &analysis.files {
            let kind =
                f.format
                    .map_or("-".to_string(), |k| if f.gzip { format!("{k}+gzip") } else { k.to_string() });
            writeln!(out, "file {}: {kind}, {} packets", f.path.display(), f.packets)?;
        }
        if let (Some(a), Some(b)) = (analysis.first_ts, analysis.last_ts) {
            writeln!(out, "first packet: {}", clock.stamp(a.as_secs_f64()))?;
            let span = b.since(a).as_secs_f64();
            writeln!(out, "last packet:  {} ({span:.3} s later)", clock.stamp(b.as_secs_f64()))?;
        }
        let p = AccountingRecord::new(&analysis.accounting);
        writeln!(
            out,
            "\npackets: {} total = {} tcp + {} udp + {} other + {} skipped",
            p.total, p.tcp, p.udp, p.other, p.skipped
        )?;
        for (k, v) in &p.other_by_kind {
            writeln!(out, "  other   {v:>10}  {k}")?;
        }
        for (k, v) in &p.skipped_by_reason {
            writeln!(out, "  skipped {v:>10}  {k}")?;
        }
        if p.time_went_backwards > 0 {
            writeln!(out, "  {} packet(s) stamped earlier than the packet before", p.time_went_backwards)?;
        }
        if p.overlapping_fragments > 0 {
            writeln!(
                out,
                "  {} overlapping IP fragment(s): the first arrival's bytes were kept",
                p.overlapping_fragments
            )?;
        }
        if analysis.evicted > 0 {
            writeln!(out, "  {} connection(s) ended early by --max-connections", analysis.evicted)?;
        }

        writeln!(out, "\nconnections: {} ({} tcp, {} udp)", self.conns, self.tcp, self.conns - self.tcp)?;
        for ((proto, state), n) in alphabetical(&self.by_state, |(p, s)| (p.as_str(), s.code())) {
            writeln!(out, "  {proto} {state:<7} {n:>8}")?;
        }
        if !self.handshakes.is_empty() {
            writeln!(out, "\nhandshakes:")?;
            for (k, n) in alphabetical(&self.handshakes, |h| h.as_str()) {
                writeln!(out, "  {k:<12} {n:>8}")?;
            }
        }
        if let Some([min, median, p95, max]) = self.rtt_quantiles() {
            let ms = |s: f64| s * 1e3;
            writeln!(
                out,
                "  rtt ms: min {:.3}  median {:.3}  p95 {:.3}  max {:.3}",
                ms(min),
                ms(median),
                ms(p95),
                ms(max)
            )?;
        }
        if !self.teardowns.is_empty() {
            writeln!(out, "\nteardowns:")?;
            for (k, n) in self.teardown_rows() {
                writeln!(out, "  {k:<32} {n:>8}")?;
            }
        }
        top(out, "top sockets by connections", &busiest.by_connections, |s| {
            format!("{}, {} at once", super::count(s.conns, "connection"), s.max_concurrent)
        })?;
        top(out, "top sockets by bytes", &busiest.by_bytes, |s| {
            format!("{} bytes out, {} in", s.bytes_sent, s.bytes_received)
        })?;

        writeln!(out, "\nproblems:")?;
        let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 };
        writeln!(
            out,
            "  retransmitted packets {:>10}  ({:.2}% of TCP packets)",
            self.rexmit_pkts,
            share(self.rexmit_pkts, self.tcp_pkts)
        )?;
        writeln!(out, "  bytes never captured  {:>10}  (acknowledged content gaps)", self.missed_bytes)?;
        writeln!(out, "  reset connections     {:>10}", self.resets)?;
        writeln!(out, "  unanswered SYNs       {:>10}", self.unanswered)?;
        writeln!(out, "  refused connections   {:>10}", self.refused)?;
        writeln!(out, "  snap-length cut pkts  {:>10}", p.snaplen_cut)?;
        writeln!(out, "  skipped packets       {:>10}  (reasons above)", p.skipped)?;
        Ok(())
    }
}
