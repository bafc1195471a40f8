//! `check`: rules over the connections of a capture, for CI gates.
//!
//! Rules come from flags and from a TOML file (`--rules FILE`, same names as the flags with `_`):
//! ```toml
//! fail_on_state = ["REJ", "RSTOS0"]
//! max_state = { S0 = "10%", REJ = 5 }   # a count, or a share of all connections
//! handshakes_complete = true           # every TCP handshake seen from its SYN completed
//! max_rtt = 0.5                        # seconds, handshake SYN to ACK
//! max_retransmissions = "2%"           # share of TCP packets that were retransmissions
//! expect_sockets = ["tcp/10.0.0.1:80"] # must take part in some connection
//! min_connections = 10                 # fewer fail: an empty capture proves nothing
//! forbid_sockets = ["udp/*:53", "tcp/10.0.0.0/8:23"]  # must not (any address, a network)
//!
//! [[scope]]                            # rules over the connections a filter keeps only
//! filter = "resp.port=443"
//! max_state = { REJ = "1%" }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use crate::diff::{self, Side, Tolerances};
use crate::filter::Filter;
use crate::report::record::ConnRecord;
use crate::tcp::phases::HandshakeState;
use crate::tcp::verdict::ConnState;
use crate::types::Proto;

/// A limit given as a count or as a share of a total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// At most this many (`N`).
    Count(u64),
    /// At most this percentage of the total (`P%`).
    Percent(f64),
}

impl Limit {
    /// Parses `N` or `P%`.
    pub fn parse(s: &str) -> Result<Limit, String> {
        let s = s.trim();
        match s.strip_suffix('%') {
            Some(p) => p.trim().parse().map(Limit::Percent).map_err(|_| format!("'{s}' is not a percentage")),
            None => s.parse().map(Limit::Count).map_err(|_| format!("'{s}' is not a count or a percentage")),
        }
    }

    fn exceeded(self, n: u64, of: u64) -> bool {
        match self {
            Limit::Count(max) => n > max,
            Limit::Percent(max) => of > 0 && n as f64 * 100.0 / of as f64 > max,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The connections a rule applies to: a filter expression (`... if resp.port=443`).
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// The expression as written.
    pub text: String,
    /// The expression, parsed.
    pub filter: Filter,
}

impl Scope {
    /// The scope of `text`; the error says what is wrong with the expression.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let filter = Filter::parse(text).map_err(|e| format!("'{text}': {e}"))?;
        Ok(Scope { text: text.trim().to_string(), filter })
    }
}

/// A rule's value and, after ` if `, the connections it applies to (`REJ=1% if resp.port=443`).
#[derive(Clone, Debug, PartialEq)]
pub struct Scoped<T> {
    /// The rule's value.
    pub rule: T,
    /// `None`: every connection.
    pub scope: Option<Scope>,
}

impl<T> Scoped<T> {
    /// Reads `VALUE [if EXPR]`, the value with `parse`.
    pub fn parse(s: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Scoped<T>, String> {
        match s.split_once(" if ") {
            Some((value, expr)) => {
                Ok(Scoped { rule: parse(value.trim())?, scope: Some(Scope::parse(expr)?) })
            }
            None => Ok(Scoped { rule: parse(s.trim())?, scope: None }),
        }
    }
}

/// A socket or a set of sockets: `tcp/10.0.0.1:80` or `10.0.0.1:80/tcp` (as `sockets` prints
/// them); the address may be a network (`udp/10.0.0.0/8:53`, `tcp/[2001:db8::/32]:443`) or any
/// (`*`, or a bind-all address `0.0.0.0` or `::`, for any of that family), the port any (`*`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketSpec {
    /// TCP or UDP.
    pub proto: Proto,
    /// `None`: any address.
    pub net: Option<IpNet>,
    /// `None`: any port.
    pub port: Option<u16>,
}

impl SocketSpec {
    /// Parses either form; IPv6 addresses in brackets (`tcp/[::1]:80`).
    pub fn parse(s: &str) -> Result<SocketSpec, String> {
        let shape = || format!("'{s}' is not a socket like tcp/10.0.0.1:80, tcp/*:23 or udp/10.0.0.0/8:53");
        let prefixed = s.split_once('/').and_then(|(p, rest)| Some((Proto::parse(p)?, rest)));
        let suffixed = s.rsplit_once('/').and_then(|(rest, p)| Some((Proto::parse(p)?, rest)));
        let (proto, addr) = prefixed.or(suffixed).ok_or_else(shape)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(shape)?;
        let port = match port {
            "*" => None,
            p => Some(p.parse().map_err(|_| format!("'{p}' is not a port number (or *)"))?),
        };
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let net = match host {
            "*" => None,
            h => Some(match h.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => {
                    let ip: IpAddr =
                        h.parse().map_err(|_| format!("'{h}' is not an IP address or network"))?;
                    // A bind-all address stands for every address of its family.
                    let bits = if ip.is_unspecified() {
                        0
                    } else if ip.is_ipv4() {
                        32
                    } else {
                        128
                    };
                    IpNet::new(ip, bits).expect("a valid prefix length")
                }
            }),
        };
        Ok(SocketSpec { proto, net, port })
    }

    /// Whether the socket `<proto, ip, port>` is one of these.
    pub fn matches(&self, proto: Proto, ip: IpAddr, port: u16) -> bool {
        self.proto == proto && self.net.is_none_or(|n| n.contains(&ip)) && self.port.is_none_or(|p| p == port)
    }
}

impl fmt::Display for SocketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.net {
            None => "*".to_string(),
            Some(IpNet::V4(n)) if n.prefix_len() == 32 => n.addr().to_string(),
            Some(IpNet::V6(n)) if n.prefix_len() == 128 => format!("[{}]", n.addr()),
            Some(n @ IpNet::V4(_)) => n.to_string(),
            Some(n @ IpNet::V6(_)) => format!("[{n}]"),
        };
        let port = self.port.map_or("*".to_string(), |p| p.to_string());
        write!(f, "{}/{host}:{port}", self.proto)
    }
}

/// The rules, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules {
    /// Fail when any connection has one of these states (`--fail-on-state`).
    pub fail_on_state: Vec<ConnState>,
    /// Fail when more connections than the limit have the state (`--max-state`).
    pub max_state: Vec<(ConnState, Limit)>,
    /// Fail when a TCP handshake seen from its SYN did not complete (`--handshakes-complete`).
    pub handshakes_complete: bool,
    /// Fail when a handshake's RTT (SYN to ACK) exceeds this many seconds (`--max-rtt`).
    pub max_rtt: Option<f64>,
    /// Fail when retransmitted TCP packets exceed this count or share of TCP packets
    /// (`--max-retransmissions`).
    pub max_retransmissions: Option<Limit>,
    /// Fail unless each of these sockets takes part in a connection (`--expect-socket`).
    pub expect_sockets: Vec<SocketSpec>,
    /// Fail if any of these sockets takes part in a connection (`--forbid-socket`).
    pub forbid_sockets: Vec<SocketSpec>,
    /// Fewer connections than this fail (an empty or nearly empty capture proves nothing).
    pub min_connections: Option<u64>,
    /// A run to compare with (`diff`'s comparison as a rule), and how much may change.
    pub baseline: Option<(PathBuf, Tolerances)>,
    /// Rules over some of the connections only, each set with its scope.
    pub scoped: Vec<(Scope, Rules)>,
}

impl Rules {
    /// No rule at all: a check that could not fail.
    pub fn is_empty(&self) -> bool {
        *self == Rules::default()
    }

    /// The rules of `scope`: these for none, else the set of that scope (made if need be).
    pub fn scope_mut(&mut self, scope: &Option<Scope>) -> &mut Rules {
        let Some(scope) = scope else { return self };
        let at = match self.scoped.iter().position(|(s, _)| s.text == scope.text) {
            Some(at) => at,
            None => {
                self.scoped.push((scope.clone(), Rules::default()));
                self.scoped.len() - 1
            }
        };
        &mut self.scoped[at].1
    }
}

/// The TOML file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    fail_on_state: Vec<String>,
    #[serde(default)]
    max_state: BTreeMap<String, toml::Value>,
    #[serde(default)]
    handshakes_complete: bool,
    max_rtt: Option<f64>,
    max_retransmissions: Option<toml::Value>,
    #[serde(default)]
    expect_sockets: Vec<String>,
    #[serde(default)]
    forbid_sockets: Vec<String>,
    min_connections: Option<u64>,
    baseline: Option<PathBuf>,
    /// In a `[[scope]]` table: the connections its rules apply to.
    filter: Option<String>,
    #[serde(default)]
    scope: Vec<RulesFile>,
}

fn limit(v: &toml::Value) -> Result<Limit, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(Limit::Count(*n as u64)),
        toml::Value::String(s) => Limit::parse(s),
        other => Err(format!("{other} is not a count or a \"N%\" share")),
    }
}

impl Rules {
    /// Adds the rules of a TOML file: its top-level rules, and those of each `[[scope]]` table
    /// over the connections its `filter` matches.
    pub fn add_toml(&mut self, text: &str) -> Result<(), String> {
        let f: RulesFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        if f.filter.is_some() {
            return Err("filter belongs in a [[scope]] table".into());
        }
        self.add_file(f)
    }

    fn add_file(&mut self, mut f: RulesFile) -> Result<(), String> {
        for table in std::mem::take(&mut f.scope) {
            let expr = table.filter.as_deref().ok_or("a [[scope]] table needs a filter")?;
            if !table.scope.is_empty() || table.baseline.is_some() {
                return Err(format!("[[scope]] '{expr}': no scope or baseline inside a scope"));
            }
            self.scope_mut(&Some(Scope::parse(expr)?)).add_file(table)?;
        }
        for s in f.fail_on_state {
            self.fail_on_state.push(ConnState::parse(&s)?);
        }
        for (s, v) in f.max_state {
            self.max_state.push((ConnState::parse(&s)?, limit(&v)?));
        }
        self.handshakes_complete |= f.handshakes_complete;
        self.max_rtt = f.max_rtt.or(self.max_rtt);
        if let Some(v) = f.max_retransmissions {
            self.max_retransmissions = Some(limit(&v)?);
        }
        for s in f.expect_sockets {
            self.expect_sockets.push(SocketSpec::parse(&s)?);
        }
        for s in f.forbid_sockets {
            self.forbid_sockets.push(SocketSpec::parse(&s)?);
        }
        self.min_connections = f.min_connections.or(self.min_connections);
        if let Some(path) = f.baseline {
            let tolerances = self.baseline.as_ref().map_or_else(Tolerances::default, |(_, t)| *t);
            self.baseline = Some((path, tolerances));
        }
        Ok(())
    }
}

/// At most this many offending connections are kept per rule (the count is always exact).
const KEEP: usize = 50;

/// One rule's result.
#[derive(Debug)]
pub struct Verdict {
    /// The rule as a user would write it, e.g. `--max-state S0=10%`.
    pub rule: String,
    /// Whether the rule held.
    pub passed: bool,
    /// What was measured, e.g. "12 of 340 connections (3.5%)".
    pub detail: String,
    /// Connections that broke it (the first few), in id order.
    pub offenders: Vec<ConnRecord>,
    /// Other evidence, a line each (`--baseline`: what changed).
    pub notes: Vec<String>,
    /// The exact count behind the verdict: offending connections, connections in the state
    /// (`--max-state`), retransmitted packets (`--max-retransmissions`), 0 or 1 for a socket rule.
    pub offender_count: u64,
}

/// Evaluates the rules over connections as they end.
pub struct Checker {
    rules: Rules,
    conns: u64,
    by_state: BTreeMap<ConnState, u64>,
    tcp_pkts: u64,
    rexmit_pkts: u64,
    /// Per rule index: offending connections kept and counted.
    offenders: Vec<(Vec<ConnRecord>, u64)>,
    seen: Vec<bool>,
    forbidden_seen: Vec<bool>,
    /// With `--baseline`: the baseline run, and this run grouped as `diff` groups it.
    baseline: Option<(Side, Side)>,
    /// The scoped rules, each set over the connections its scope matches.
    scoped: Vec<(Scope, Checker)>,
}

/// Slots of the per-connection rules in `offenders`; `--fail-on-state` rules follow them.
const HANDSHAKES: usize = 0;
const RTT: usize = 1;
const FAIL_ON_STATE: usize = 2;

impl Checker {
    /// A checker for these rules, no connection seen yet.
    /// A checker of `rules`; `baseline` is the run `--baseline` names, read (see `diff`).
    pub fn new(mut rules: Rules, baseline: Option<Side>) -> Self {
        let scoped =
            std::mem::take(&mut rules.scoped).into_iter().map(|(s, r)| (s, Checker::new(r, None))).collect();
        let rules_len = FAIL_ON_STATE + rules.fail_on_state.len();
        let seen = vec![false; rules.expect_sockets.len()];
        let forbidden_seen = vec![false; rules.forbid_sockets.len()];
        let offenders = (0..rules_len).map(|_| (Vec::new(), 0)).collect();
        Checker {
            rules,
            conns: 0,
            by_state: BTreeMap::new(),
            tcp_pkts: 0,
            rexmit_pkts: 0,
            offenders,
            seen,
            forbidden_seen,
            baseline: baseline.map(|old| (old, Side::default())),
            scoped,
        }
    }

    /// Takes one connection's record into every rule.
    pub fn add(&mut self, c: &ConnRecord) {
        self.conns += 1;
        if let Some((_, now)) = &mut self.baseline {
            now.add(c);
        }
        for (scope, checker) in &mut self.scoped {
            if scope.filter.matches(c) {
                checker.add(c);
            }
        }
        *self.by_state.entry(c.conn_state).or_default() += 1;
        if c.proto == Proto::Tcp {
            self.tcp_pkts += c.orig_pkts + c.resp_pkts;
            if let Some(d) = &c.data {
                self.rexmit_pkts += d.orig_rexmit_pkts + d.resp_rexmit_pkts;
            }
        }
        for (i, s) in self.rules.fail_on_state.iter().enumerate() {
            if *s == c.conn_state {
                offend(&mut self.offenders[FAIL_ON_STATE + i], c);
            }
        }
        if let Some(h) = &c.handshake {
            let incomplete = matches!(
                h.state,
                HandshakeState::SynOnly | HandshakeState::SynSynack | HandshakeState::Rejected
            );
            if self.rules.handshakes_complete && incomplete {
                offend(&mut self.offenders[HANDSHAKES], c);
            }
            if let (Some(max), Some(rtt)) = (self.rules.max_rtt, h.rtt) {
                if rtt > max {
                    offend(&mut self.offenders[RTT], c);
                }
            }
        }
        let matches = |spec: &SocketSpec| {
            spec.matches(c.proto, c.orig.ip, c.orig.port) || spec.matches(c.proto, c.resp.ip, c.resp.port)
        };
        for (seen, spec) in self.seen.iter_mut().zip(&self.rules.expect_sockets) {
            *seen |= matches(spec);
        }
        for (seen, spec) in self.forbidden_seen.iter_mut().zip(&self.rules.forbid_sockets) {
            *seen |= matches(spec);
        }
    }

    /// One verdict per rule: `--fail-on-state`, `--handshakes-complete`, `--max-rtt`,
    /// `--max-state`, `--max-retransmissions`, then the socket rules.
    pub fn finish(mut self) -> Vec<Verdict> {
        let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 };
        let conns = self.conns;
        let mut verdicts = Vec::new();
        let mut per_conn = |rule: String, (mut list, count): (Vec<ConnRecord>, u64), what: &str| {
            list.sort_unstable_by_key(|r| r.id);
            verdicts.push(Verdict {
                rule,
                passed: count == 0,
                detail: format!("{count} of {conns} connections {what}"),
                offenders: list,
                notes: Vec::new(),
                offender_count: count,
            });
        };
        let mut offenders = std::mem::take(&mut self.offenders).into_iter();
        let handshakes = offenders.next().expect("slot");
        let rtt = offenders.next().expect("slot");
        for (s, o) in self.rules.fail_on_state.iter().zip(offenders) {
            per_conn(format!("--fail-on-state {}", s.code()), o, &format!("are {}", s.code()));
        }
        if self.rules.handshakes_complete {
            per_conn("--handshakes-complete".into(), handshakes, "opened with a SYN that never completed");
        }
        if let Some(max) = self.rules.max_rtt {
            per_conn(format!("--max-rtt {max}"), rtt, &format!("had a handshake RTT over {max} s"));
        }
        for (s, lim) in &self.rules.max_state {
            let n = self.by_state.get(s).copied().unwrap_or(0);
            verdicts.push(Verdict {
                rule: format!("--max-state {}={lim}", s.code()),
                passed: !lim.exceeded(n, conns),
                detail: format!("{n} of {conns} connections ({:.1}%) are {}", share(n, conns), s.code()),
                offenders: Vec::new(),
                notes: Vec::new(),
                offender_count: n,
            });
        }
        if let Some(lim) = self.rules.max_retransmissions {
            let (n, of) = (self.rexmit_pkts, self.tcp_pkts);
            verdicts.push(Verdict {
                rule: format!("--max-retransmissions {lim}"),
                passed: !lim.exceeded(n, of),
                detail: format!("{n} of {of} TCP packets ({:.2}%) were retransmissions", share(n, of)),
                offenders: Vec::new(),
                notes: Vec::new(),
                offender_count: n,
            });
        }
        if let Some(min) = self.rules.min_connections {
            verdicts.push(Verdict {
                rule: format!("--min-connections {min}"),
                passed: conns >= min,
                detail: format!("{conns} connections, at least {min} expected"),
                offenders: Vec::new(),
                notes: Vec::new(),
                offender_count: u64::from(conns < min),
            });
        }
        if let (Some((path, tolerances)), Some((old, now))) = (&self.rules.baseline, &self.baseline) {
            let changes = diff::compare(old, now, tolerances);
            verdicts.push(Verdict {
                rule: format!("--baseline {}", path.display()),
                passed: changes.is_empty(),
                detail: format!(
                    "{} change(s) from {} connections before to {} now",
                    changes.len(),
                    old.conns(),
                    now.conns()
                ),
                offenders: Vec::new(),
                notes: changes.iter().map(crate::report::diff::line).collect(),
                offender_count: changes.len() as u64,
            });
        }
        for (spec, seen) in self.rules.expect_sockets.iter().zip(&self.seen) {
            verdicts.push(Verdict {
                rule: format!("--expect-socket {spec}"),
                passed: *seen,
                detail: if *seen { format!("{spec} is present") } else { format!("{spec} never appears") },
                offenders: Vec::new(),
                notes: Vec::new(),
                offender_count: u64::from(!seen),
            });
        }
        for (spec, seen) in self.rules.forbid_sockets.iter().zip(&self.forbidden_seen) {
            verdicts.push(Verdict {
                rule: format!("--forbid-socket {spec}"),
                passed: !seen,
                detail: if *seen {
                    format!("{spec} takes part in a connection")
                } else {
                    format!("{spec} is absent")
                },
                offenders: Vec::new(),
                notes: Vec::new(),
                offender_count: u64::from(*seen),
            });
        }
        for (scope, checker) in std::mem::take(&mut self.scoped) {
            for mut v in checker.finish() {
                v.rule = format!("{} if {}", v.rule, scope.text);
                verdicts.push(v);
            }
        }
        verdicts
    }
}

fn offend(slot: &mut (Vec<ConnRecord>, u64), c: &ConnRecord) {
    slot.1 += 1;
    if slot.0.len() < KEEP {
        slot.0.push(c.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_specs_name_their_protocol_first_or_last() {
        let spec = SocketSpec::parse("tcp/10.0.0.1:80").unwrap();
        assert!(spec.matches(Proto::Tcp, "10.0.0.1".parse().unwrap(), 80));
        assert!(!spec.matches(Proto::Udp, "10.0.0.1".parse().unwrap(), 80));
        assert_eq!(spec.to_string(), "tcp/10.0.0.1:80");
        let spec = SocketSpec::parse("[::1]:53/udp").unwrap();
        assert_eq!((spec.proto, spec.to_string()), (Proto::Udp, "udp/[::1]:53".to_string()));
        for wrong in ["sctp/10.0.0.1:80", "TCP/10.0.0.1:80", "10.0.0.1:80"] {
            assert_eq!(
                SocketSpec::parse(wrong),
                Err(format!("'{wrong}' is not a socket like tcp/10.0.0.1:80, tcp/*:23 or udp/10.0.0.0/8:53"))
            );
        }
    }

    #[test]
    fn socket_specs_take_networks_and_wildcards() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let telnet = SocketSpec::parse("tcp/*:23").unwrap();
        assert!(telnet.matches(Proto::Tcp, ip("192.0.2.7"), 23) && telnet.matches(Proto::Tcp, ip("::1"), 23));
        assert!(!telnet.matches(Proto::Tcp, ip("192.0.2.7"), 22));
        let dns = SocketSpec::parse("udp/10.0.0.0/8:53").unwrap();
        assert!(dns.matches(Proto::Udp, ip("10.1.2.3"), 53) && !dns.matches(Proto::Udp, ip("11.1.2.3"), 53));
        assert_eq!(dns.to_string(), "udp/10.0.0.0/8:53");
        let bind_all = SocketSpec::parse("udp/0.0.0.0:53").unwrap();
        assert!(
            bind_all.matches(Proto::Udp, ip("192.0.2.1"), 53) && !bind_all.matches(Proto::Udp, ip("::1"), 53)
        );
        let v6 = SocketSpec::parse("tcp/[2001:db8::/32]:*").unwrap();
        assert!(
            v6.matches(Proto::Tcp, ip("2001:db8::9"), 4444) && !v6.matches(Proto::Tcp, ip("2001:db9::9"), 1)
        );
        assert_eq!(v6.to_string(), "tcp/[2001:db8::/32]:*");
        assert!(SocketSpec::parse("tcp/10.0.0.0/33:1").unwrap_err().contains("not an IP address or network"));
    }
}
