//! `diff`: what changed between two runs of the same traffic.
//!
//! Client ports differ from run to run, so connections are not matched one to one: they are
//! grouped by server socket and client host (`<proto, server IP, server port, client IP>`), and
//! each group is compared by its counts (connections, conn_states, teardown kinds), its handshake
//! RTTs (median and 95th percentile) and its payload bytes. A group seen in one run only has
//! appeared or vanished.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::report::record::ConnRecord;
use crate::tcp::verdict::ConnState;
use crate::types::{Addr, Proto};

/// The connections of one run, grouped.
#[derive(Clone, Debug, Default)]
pub struct Side {
    groups: BTreeMap<GroupKey, Group>,
    conns: u64,
}

/// A server socket and the client host that connected to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// The transport.
    pub proto: Proto,
    /// The responder's socket.
    pub server: Addr,
    /// The originator's address.
    pub client: IpAddr,
}

/// What one group did in one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Group {
    /// Connections.
    pub conns: u64,
    /// Connections by conn_state.
    pub states: BTreeMap<ConnState, u64>,
    /// TCP connections by how they ended (`closed four_way`, `reset rst`, `open` ...).
    pub teardowns: BTreeMap<String, u64>,
    /// Payload bytes, both directions.
    pub bytes: u64,
    /// Handshake RTTs in seconds, sorted once the run is read.
    #[serde(skip)]
    rtts: Vec<f64>,
}

impl Side {
    /// Adds one connection.
    pub fn add(&mut self, c: &ConnRecord) {
        self.conns += 1;
        let key = GroupKey { proto: c.proto, server: c.resp, client: c.orig.ip };
        let g = self.groups.entry(key).or_default();
        g.conns += 1;
        *g.states.entry(c.conn_state).or_default() += 1;
        if let Some(t) = &c.teardown {
            let mut how = t.state.to_string();
            if let Some(kind) = t.kind {
                how = format!("{how} {kind}");
            }
            *g.teardowns.entry(how).or_default() += 1;
        }
        g.bytes += c.orig_bytes + c.resp_bytes;
        g.rtts.extend(c.handshake.as_ref().and_then(|h| h.rtt));
    }

    /// Connections added.
    pub fn conns(&self) -> u64 {
        self.conns
    }
}

impl Group {
    /// The RTT at quantile `q` (0 to 1, nearest rank), if any handshake was timed.
    pub fn rtt(&self, q: f64) -> Option<f64> {
        let mut sorted = self.rtts.clone();
        sorted.sort_by(f64::total_cmp);
        let last = sorted.len().checked_sub(1)?;
        Some(sorted[((last as f64) * q).round() as usize])
    }
}

/// How much a group may change before `diff` calls it changed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// Connections, more or fewer (a count).
    pub conns: u64,
    /// Share of connections whose state or teardown differs (percentage points).
    pub states: f64,
    /// Median and 95th percentile RTT (percent of the old value).
    pub rtt: f64,
    /// Payload bytes (percent of the old value).
    pub bytes: f64,
}

impl Default for Tolerances {
    /// The same traffic captured twice: the same connections and ends; RTTs and sizes that move
    /// a little (timing, timestamps and dates in payloads).
    fn default() -> Self {
        Tolerances { conns: 0, states: 0.0, rtt: 50.0, bytes: 5.0 }
    }
}

/// One difference between the runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A group only the new run has.
    Appeared {
        /// Which group.
        group: GroupKey,
        /// What it did.
        new: Group,
    },
    /// A group only the old run has.
    Vanished {
        /// Which group.
        group: GroupKey,
        /// What it did.
        old: Group,
    },
    /// A group both runs have, changed beyond the tolerances.
    Changed {
        /// Which group.
        group: GroupKey,
        /// Each way it changed, in words (`connections 12 -> 14`).
        what: Vec<String>,
    },
}

/// Every change from `old` to `new` beyond `tol`, group by group.
pub fn compare(old: &Side, new: &Side, tol: &Tolerances) -> Vec<Change> {
    let mut changes = Vec::new();
    for (key, o) in &old.groups {
        match new.groups.get(key) {
            None => changes.push(Change::Vanished { group: *key, old: o.clone() }),
            Some(n) => {
                let what = differences(o, n, tol);
                if !what.is_empty() {
                    changes.push(Change::Changed { group: *key, what });
                }
            }
        }
    }
    for (key, n) in new.groups.iter().filter(|(k, _)| !old.groups.contains_key(k)) {
        changes.push(Change::Appeared { group: *key, new: n.clone() });
    }
    changes.sort_by_key(|c| match c {
        Change::Appeared { group, .. } | Change::Vanished { group, .. } | Change::Changed { group, .. } => {
            *group
        }
    });
    changes
}

/// How `n` differs from `o` beyond `tol`, in words.
fn differences(o: &Group, n: &Group, tol: &Tolerances) -> Vec<String> {
    let mut what = Vec::new();
    if o.conns.abs_diff(n.conns) > tol.conns {
        what.push(format!("connections {} -> {}", o.conns, n.conns));
    }
    for state in o.states.keys().chain(n.states.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (a, b) = (share(&o.states, state, o.conns), share(&n.states, state, n.conns));
        if (a - b).abs() > tol.states {
            let count = |g: &Group| g.states.get(state).copied().unwrap_or(0);
            what.push(format!("{state} {} -> {} ({a:.0}% -> {b:.0}%)", count(o), count(n)));
        }
    }
    for how in o.teardowns.keys().chain(n.teardowns.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (a, b) = (share(&o.teardowns, how, o.conns), share(&n.teardowns, how, n.conns));
        if (a - b).abs() > tol.states {
            let count = |g: &Group| g.teardowns.get(how).copied().unwrap_or(0);
            what.push(format!("{how} {} -> {}", count(o), count(n)));
        }
    }
    for (name, q) in [("median", 0.5), ("p95", 0.95)] {
        if let (Some(a), Some(b)) = (o.rtt(q), n.rtt(q)) {
            if beyond(a, b, tol.rtt) {
                what.push(format!("rtt {name} {:.3} -> {:.3} ms", a * 1e3, b * 1e3));
            }
        }
    }
    if beyond(o.bytes as f64, n.bytes as f64, tol.bytes) {
        what.push(format!("bytes {} -> {}", o.bytes, n.bytes));
    }
    what
}

/// The share of `total` that `counts` holds for `key`, in percent.
fn share<K: Ord>(counts: &BTreeMap<K, u64>, key: &K, total: u64) -> f64 {
    counts.get(key).copied().unwrap_or(0) as f64 * 100.0 / total.max(1) as f64
}

/// Whether `b` is more than `percent` away from `a`.
fn beyond(a: f64, b: f64, percent: f64) -> bool {
    (b - a).abs() > a.abs() * percent / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::of_sample;

    fn side(records: &[ConnRecord]) -> Side {
        let mut s = Side::default();
        records.iter().for_each(|r| s.add(r));
        s
    }

    #[test]
    fn the_same_run_has_no_changes() {
        let records = of_sample("teardowns.pcap");
        assert!(compare(&side(&records), &side(&records), &Tolerances::default()).is_empty());
    }

    #[test]
    fn client_ports_do_not_matter_but_servers_states_and_counts_do() {
        let old = of_sample("teardowns.pcap");
        let mut new = old.clone();
        for r in &mut new {
            r.orig.port += 1000; // another run: other client ports
        }
        assert!(compare(&side(&old), &side(&new), &Tolerances::default()).is_empty());
        new.sort_by_key(|r| r.id);
        new[0].resp.port = 9999; // a server moved
        new[1].conn_state = ConnState::REJ; // refused this time
        let changes = compare(&side(&old), &side(&new), &Tolerances::default());
        assert!(changes
            .iter()
            .any(|c| matches!(c, Change::Appeared { group, .. } if group.server.port == 9999)));
        assert!(changes
            .iter()
            .any(|c| matches!(c, Change::Vanished { group, .. } if group.server.port == 9001)));
        let changed: Vec<_> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Changed { group, what } => Some((group.server.port, what.join("; "))),
                _ => None,
            })
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(changed[0].1.contains("SF 1 -> 0") && changed[0].1.contains("REJ 0 -> 1"), "{changed:?}");
    }

    #[test]
    fn rtts_and_bytes_change_only_beyond_their_tolerance() {
        let old = of_sample("teardowns.pcap");
        let mut new = old.clone();
        for r in &mut new {
            if let Some(h) = r.handshake.as_mut() {
                h.rtt = h.rtt.map(|t| t * 1.2);
            }
            r.orig_bytes += r.orig_bytes / 50;
        }
        assert!(compare(&side(&old), &side(&new), &Tolerances::default()).is_empty(), "20% RTT, 2% bytes");
        let strict = Tolerances { rtt: 10.0, bytes: 1.0, ..Tolerances::default() };
        let changes = compare(&side(&old), &side(&new), &strict);
        assert!(changes.iter().any(
            |c| matches!(c, Change::Changed { what, .. } if what.iter().any(|w| w.starts_with("rtt median")))
        ));
    }
}
