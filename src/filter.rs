//! Connection filters: a small readable expression, parsed once.
//!
//! ```text
//! tcp and port 443 and state=REJ
//! udp or (host 10.0.0.1 and not port 53)
//! state in S0,REJ and duration>=1.5
//! handshake=complete and teardown=reset and bytes>10000
//! ```
//! Words: `tcp`, `udp`, `tunneled`; `port N`, `host IP`, `net CIDR`, `socket IP:PORT` (either
//! side); `orig`/`resp` forms (`orig.port=N`, `resp.host=IP`, `resp.net=10.0.0.0/8`); `state=CODE[,CODE...]` (also `!=`, `in`);
//! `handshake=`, `teardown=` (state), `kind=` (teardown kind), `initiator=`, `service=` (one of the
//! connection's services, or `null` for none); and comparisons
//! with `= != < <= > >=` on `duration` (seconds), `bytes`, `pkts` (both directions), `rtt`
//! (seconds). `and` binds tighter than `or`; `not` and parentheses work as usual.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::flow::app::Service;
use crate::report::record::ConnRecord;
use crate::tcp::phases::{HandshakeState, Initiator, TeardownKind, TeardownState};
use crate::tcp::verdict::ConnState;
use crate::types::Proto;

/// A parsed filter expression: which connection records it keeps (see the module docs for the
/// syntax).
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Both match (`and`).
    And(Box<Filter>, Box<Filter>),
    /// Either matches (`or`).
    Or(Box<Filter>, Box<Filter>),
    /// It does not match (`not`, and `!=` on words).
    Not(Box<Filter>),
    /// The connection's protocol (`tcp`, `udp`, `proto=`).
    Proto(Proto),
    /// Seen inside a tunnel (`tunneled`).
    Tunneled,
    /// A port on the given side (`port`, `orig.port`, `resp.port`).
    Port(Side, u16),
    /// An IP address on the given side (`host`, `orig.host`, `resp.host`).
    Host(Side, IpAddr),
    /// An address in a network (`net 10.0.0.0/8`).
    Net(Side, IpNet),
    /// The conn_state is one of these (`state=CODE[,CODE...]`, `state in ...`).
    States(Vec<ConnState>),
    /// `None` (`handshake=null` and so on) matches a connection without one: UDP, for instance.
    Handshake(Option<HandshakeState>),
    /// The teardown state (`teardown=`); `None` as for `Handshake`.
    Teardown(Option<TeardownState>),
    /// The teardown kind (`kind=`); `None` matches a connection without one.
    Kind(Option<TeardownKind>),
    /// Who began the teardown (`initiator=`); `None` matches a connection without one.
    Initiator(Option<Initiator>),
    /// One of the connection's services (`service=`); `None` matches a connection with none.
    Service(Option<Service>),
    /// A comparison of a quantity with a number; a connection without the quantity (no RTT)
    /// does not match.
    Number(Quantity, Cmp, f64),
}

/// Which side of a connection a port or host test looks at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    /// Originator or responder (`port`, `host`, `socket`).
    Either,
    /// The originator (`orig.`).
    Orig,
    /// The responder (`resp.`).
    Resp,
}

/// A number a filter can compare.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quantity {
    /// The connection's duration, in seconds.
    Duration,
    /// Payload bytes, both directions (`orig_bytes + resp_bytes`).
    Bytes,
    /// Packets, both directions.
    Pkts,
    /// The handshake's RTT (SYN to completing ACK), in seconds.
    Rtt,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    /// `=` (or `==`, `in`).
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// Why a filter expression does not parse, in one line.
#[derive(Debug, PartialEq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

impl Filter {
    /// Parses a filter expression; the error names the problem.
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        let tokens = tokenize(text);
        let mut p = Parser { tokens, at: 0 };
        let f = p.or()?;
        match p.peek() {
            None => Ok(f),
            Some(t) => err(format!("unexpected '{t}' in filter '{text}'")),
        }
    }

    /// All of them (repeated `--filter`s).
    pub fn all(filters: Vec<Filter>) -> Option<Filter> {
        filters.into_iter().reduce(|a, b| Filter::And(Box::new(a), Box::new(b)))
    }

    /// Whether the connection record matches.
    pub fn matches(&self, c: &ConnRecord) -> bool {
        match self {
            Filter::And(a, b) => a.matches(c) && b.matches(c),
            Filter::Or(a, b) => a.matches(c) || b.matches(c),
            Filter::Not(a) => !a.matches(c),
            Filter::Proto(p) => c.proto == *p,
            Filter::Tunneled => c.tunnel.is_some(),
            Filter::Port(side, port) => {
                side.either(|orig| if orig { c.orig.port } else { c.resp.port } == *port)
            }
            Filter::Host(side, ip) => side.either(|orig| if orig { c.orig.ip } else { c.resp.ip } == *ip),
            Filter::Net(side, net) => {
                side.either(|orig| net.contains(&if orig { c.orig.ip } else { c.resp.ip }))
            }
            Filter::States(states) => states.contains(&c.conn_state),
            Filter::Handshake(want) => c.handshake.as_ref().map(|h| h.state) == *want,
            Filter::Teardown(want) => c.teardown.as_ref().map(|t| t.state) == *want,
            Filter::Kind(want) => c.teardown.as_ref().and_then(|t| t.kind) == *want,
            Filter::Initiator(want) => c.teardown.as_ref().and_then(|t| t.initiator) == *want,
            Filter::Service(want) => match (want, c.service) {
                (Some(s), Some(have)) => have.contains(*s),
                (Some(_), None) => false,
                (None, have) => have.is_none(),
            },
            Filter::Number(q, cmp, want) => {
                let have = match q {
                    Quantity::Duration => Some(c.duration),
                    Quantity::Bytes => Some((c.orig_bytes + c.resp_bytes) as f64),
                    Quantity::Pkts => Some((c.orig_pkts + c.resp_pkts) as f64),
                    Quantity::Rtt => c.handshake.as_ref().and_then(|h| h.rtt),
                };
                have.is_some_and(|h| cmp.holds(h, *want))
            }
        }
    }
}

impl Side {
    fn either(self, test: impl Fn(bool) -> bool) -> bool {
        match self {
            Side::Either => test(true) || test(false),
            Side::Orig => test(true),
            Side::Resp => test(false),
        }
    }
}

impl Cmp {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// Words, parentheses and operators; `state=REJ` and `state = REJ` give the same tokens.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    let flush = |word: &mut String, tokens: &mut Vec<String>| {
        if !word.is_empty() {
            tokens.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => flush(&mut word, &mut tokens),
            '(' | ')' => {
                flush(&mut word, &mut tokens);
                tokens.push(c.to_string());
            }
            '=' | '!' | '<' | '>' => {
                flush(&mut word, &mut tokens);
                let mut op = c.to_string();
                if chars.peek() == Some(&'=') {
                    op.push(chars.next().expect("peeked"));
                }
                tokens.push(op);
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut tokens);
    tokens
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Result<String, ParseError> {
        let t =
            self.tokens.get(self.at).cloned().ok_or_else(|| ParseError("filter ends too early".into()))?;
        self.at += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        let mut f = self.and()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.at += 1;
            f = Filter::Or(Box::new(f), Box::new(self.and()?));
        }
        Ok(f)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut f = self.not()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("and")) {
            self.at += 1;
            f = Filter::And(Box::new(f), Box::new(self.not()?));
        }
        Ok(f)
    }

    fn not(&mut self) -> Result<Filter, ParseError> {
        if self.peek().is_some_and(|t| t.eq_ignore_ascii_case("not")) {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some("(") {
            self.at += 1;
            let f = self.or()?;
            return match self.next()?.as_str() {
                ")" => Ok(f),
                t => err(format!("expected ')', found '{t}'")),
            };
        }
        self.atom()
    }

    /// An optional `=` (or `in`) after a word that takes a value.
    fn value(&mut self) -> Result<(Cmp, String), ParseError> {
        let cmp = match self.peek() {
            Some("=") | Some("==") => Cmp::Eq,
            Some("!=") => Cmp::Ne,
            Some("<") => Cmp::Lt,
            Some("<=") => Cmp::Le,
            Some(">") => Cmp::Gt,
            Some(">=") => Cmp::Ge,
            Some(t) if t.eq_ignore_ascii_case("in") => Cmp::Eq,
            _ => return Ok((Cmp::Eq, self.next()?)),
        };
        self.at += 1;
        Ok((cmp, self.next()?))
    }

    fn atom(&mut self) -> Result<Filter, ParseError> {
        let word = self.next()?.to_ascii_lowercase();
        let (side, name) = match word.split_once('.') {
            Some(("orig", n)) => (Side::Orig, n.to_string()),
            Some(("resp", n)) => (Side::Resp, n.to_string()),
            _ => (Side::Either, word.clone()),
        };
        let negate = |cmp: Cmp, f: Filter| match cmp {
            Cmp::Eq => Ok(f),
            Cmp::Ne => Ok(Filter::Not(Box::new(f))),
            _ => err(format!("'{word}' takes = or !=")),
        };
        match name.as_str() {
            "tcp" => Ok(Filter::Proto(Proto::Tcp)),
            "udp" => Ok(Filter::Proto(Proto::Udp)),
            "tunneled" => Ok(Filter::Tunneled),
            "proto" => {
                let (cmp, v) = self.value()?;
                match Proto::parse(&v.to_ascii_lowercase()) {
                    Some(p) => negate(cmp, Filter::Proto(p)),
                    None => err(format!("proto is tcp or udp, not '{v}'")),
                }
            }
            "port" => {
                let (cmp, v) = self.value()?;
                let port = v.parse().or_else(|_| err(format!("'{v}' is not a port number")))?;
                negate(cmp, Filter::Port(side, port))
            }
            "host" => {
                let (cmp, v) = self.value()?;
                let ip = v
                    .trim_matches(['[', ']'])
                    .parse()
                    .or_else(|_| err(format!("'{v}' is not an IP address")))?;
                negate(cmp, Filter::Host(side, ip))
            }
            "net" => {
                let (cmp, v) = self.value()?;
                let net: IpNet = v
                    .trim_matches(['[', ']'])
                    .parse()
                    .or_else(|_| err(format!("'{v}' is not a network like 10.0.0.0/8")))?;
                negate(cmp, Filter::Net(side, net.trunc()))
            }
            "socket" => {
                let (cmp, v) = self.value()?;
                let (ip, port) = split_socket(&v)?;
                // Host and port must be on the same side.
                let on =
                    |side| Filter::And(Box::new(Filter::Host(side, ip)), Box::new(Filter::Port(side, port)));
                let f = match side {
                    Side::Either => Filter::Or(Box::new(on(Side::Orig)), Box::new(on(Side::Resp))),
                    side => on(side),
                };
                negate(cmp, f)
            }
            "state" | "conn_state" => {
                let (cmp, v) = self.value()?;
                let states = v
                    .split(',')
                    .map(|s| {
                        let s = s.trim().to_ascii_uppercase();
                        ConnState::parse(&s).map_err(ParseError)
                    })
                    .collect::<Result<_, _>>()?;
                negate(cmp, Filter::States(states))
            }
            "handshake" | "teardown" | "kind" | "initiator" | "service" => {
                let (cmp, v) = self.value()?;
                let f = match name.as_str() {
                    "handshake" => Filter::Handshake(word_or_null(&name, &v, &HandshakeState::ALL)?),
                    "teardown" => Filter::Teardown(word_or_null(&name, &v, &TeardownState::ALL)?),
                    "kind" => Filter::Kind(word_or_null(&name, &v, &TeardownKind::ALL)?),
                    "service" => Filter::Service(word_or_null(&name, &v, &Service::ALL)?),
                    _ => Filter::Initiator(word_or_null(&name, &v, &Initiator::ALL)?),
                };
                negate(cmp, f)
            }
            "duration" | "bytes" | "pkts" | "rtt" => {
                let (cmp, v) = self.value()?;
                let n: f64 = v.parse().or_else(|_| err(format!("'{v}' is not a number")))?;
                let q = match name.as_str() {
                    "duration" => Quantity::Duration,
                    "bytes" => Quantity::Bytes,
                    "pkts" => Quantity::Pkts,
                    _ => Quantity::Rtt,
                };
                Ok(Filter::Number(q, cmp, n))
            }
            _ => err(format!("unknown filter word '{word}'")),
        }
    }
}

/// `v` as one of `words` (as they print, in any case), or `None` for `null`; `field` names
/// them in the error.
fn word_or_null<T: Copy + fmt::Display>(field: &str, v: &str, words: &[T]) -> Result<Option<T>, ParseError> {
    if v.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    match words.iter().find(|w| w.to_string().eq_ignore_ascii_case(v)) {
        Some(&w) => Ok(Some(w)),
        None => {
            let all: Vec<String> = words.iter().map(T::to_string).chain(["null".into()]).collect();
            err(format!("unknown {field} '{v}' (one of {})", all.join(" ")))
        }
    }
}

/// `10.0.0.1:80` or `[::1]:80`.
pub fn split_socket(s: &str) -> Result<(IpAddr, u16), ParseError> {
    let (ip, port) = s.rsplit_once(':').ok_or_else(|| ParseError(format!("'{s}' is not IP:PORT")))?;
    let ip = ip.trim_matches(['[', ']']).parse().or_else(|_| err(format!("'{ip}' is not an IP address")))?;
    let port = port.parse().or_else(|_| err(format!("'{port}' is not a port number")))?;
    Ok((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::EndReason;
    use crate::types::Addr;

    fn conn(proto: Proto, orig: &str, resp: &str, state: ConnState) -> ConnRecord {
        let addr = |s: &str| {
            let (ip, port) = split_socket(s).unwrap();
            Addr { ip, port }
        };
        ConnRecord {
            id: 1,
            proto,
            orig: addr(orig),
            resp: addr(resp),
            conn_state: state,
            history: "".into(),
            service: None,
            ts: 0.0,
            duration: 2.0,
            orig_pkts: 3,
            resp_pkts: 2,
            orig_bytes: 100,
            resp_bytes: 5000,
            orig_ip_bytes: 0,
            resp_ip_bytes: 0,
            handshake: None,
            teardown: None,
            data: None,
            tunnel: None,
            end: EndReason::CaptureEnd,
            community_id: Default::default(),
            file: None,
        }
    }

    fn m(expr: &str, c: &ConnRecord) -> bool {
        Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).matches(c)
    }

    #[test]
    fn words_and_precedence() {
        let c = conn(Proto::Tcp, "10.0.0.1:40000", "10.0.0.2:443", ConnState::REJ);
        assert!(m("tcp and port 443 and state=REJ", &c));
        assert!(m("udp or tcp and port 443", &c), "and binds tighter than or");
        assert!(!m("(udp or tcp) and port 80", &c));
        assert!(m("not udp", &c));
        assert!(m("state in S0,REJ", &c));
        assert!(m("state != SF", &c));
        assert!(m("host 10.0.0.2 and resp.port=443 and orig.host=10.0.0.1", &c));
        assert!(!m("orig.port=443", &c));
        assert!(m("socket 10.0.0.2:443", &c));
        assert!(!m("socket 10.0.0.2:40000", &c), "host and port on the same side");
        assert!(m("duration>=2 and bytes>5000 and pkts=5", &c));
        assert!(!m("rtt<1", &c), "no handshake, no rtt");
        assert!(m("teardown=null", &c));
        assert!(m("proto=tcp", &c));
    }

    #[test]
    fn phase_words_in_any_case_and_null() {
        // teardowns.pcap: 12 TCP connections, one per teardown scenario (samples/README.md).
        let records = crate::report::record::of_sample("teardowns.pcap");
        let count = |expr: &str| records.iter().filter(|c| m(expr, c)).count();
        assert_eq!(count("handshake=complete"), 10);
        assert_eq!(count("handshake=Rejected or handshake=syn_only"), 2);
        assert_eq!(count("teardown=reset"), 4);
        assert_eq!(count("teardown=RESET and kind=rst and initiator=resp"), 2);
        assert_eq!(count("kind=four_way and initiator!=orig"), 3);
        assert_eq!(count("initiator=orig"), 4);
        assert_eq!(count("kind=null"), 2, "the open ones");
        assert_eq!(count("teardown=null or handshake=NULL"), 0);
        let udp = conn(Proto::Udp, "10.0.0.1:5000", "10.0.0.2:53", ConnState::SF);
        assert!(m("handshake=null and teardown=null and kind=null and initiator=null", &udp));
    }

    #[test]
    fn services_from_the_sample() {
        // services.pcap: http, ssl, ssh, smtp, one TCP connection of no protocol, dns, ntp.
        let records = crate::report::record::of_sample("services.pcap");
        let count = |expr: &str| records.iter().filter(|c| m(expr, c)).count();
        assert_eq!(count("service=http"), 1);
        assert_eq!(count("service=SSL or service=ssh"), 2);
        assert_eq!(count("service=null"), 1);
        assert_eq!(count("service!=null"), 6);
        assert_eq!(count("udp and service=dns"), 1);
        assert!(Filter::parse("service=gopher").is_err());
    }

    #[test]
    fn ipv6_sockets() {
        let c = conn(Proto::Udp, "[2001:db8::1]:5000", "[2001:db8::2]:53", ConnState::SF);
        assert!(m("socket [2001:db8::2]:53", &c));
        assert!(m("host 2001:db8::1", &c));
    }

    #[test]
    fn networks_match_the_addresses_in_them() {
        let c = conn(Proto::Tcp, "10.1.2.3:40000", "192.0.2.80:443", ConnState::SF);
        assert!(m("net 10.0.0.0/8", &c) && m("resp.net=192.0.2.0/24", &c) && m("orig.net 10.1.2.3/32", &c));
        assert!(!m("orig.net=192.0.2.0/24", &c) && !m("net 172.16.0.0/12", &c));
        assert!(m("not net 172.16.0.0/12", &c) && m("net != 172.16.0.0/12", &c));
        assert!(m("net 10.1.2.99/8", &c), "host bits past the prefix are ignored");
        let v6 = conn(Proto::Udp, "[2001:db8::1]:5000", "[2001:db8:1::2]:53", ConnState::SF);
        assert!(m("resp.net=[2001:db8:1::/48]", &v6) && !m("orig.net=2001:db8:1::/48", &v6));
        assert_eq!(
            Filter::parse("net 10.0.0.0/33").unwrap_err().to_string(),
            "'10.0.0.0/33' is not a network like 10.0.0.0/8"
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(Filter::parse("port http").unwrap_err().to_string(), "'http' is not a port number");
        assert!(Filter::parse("state=NOPE")
            .unwrap_err()
            .to_string()
            .starts_with("unknown conn_state 'NOPE' (one of S0 S1 SF"));
        assert_eq!(Filter::parse("tcp and").unwrap_err().to_string(), "filter ends too early");
        assert_eq!(Filter::parse("colour=red").unwrap_err().to_string(), "unknown filter word 'colour'");
        assert_eq!(
            Filter::parse("handshake=done").unwrap_err().to_string(),
            "unknown handshake 'done' (one of complete syn_only syn_synack rejected not_seen null)"
        );
        assert_eq!(
            Filter::parse("teardown=closing").unwrap_err().to_string(),
            "unknown teardown 'closing' (one of closed half_closed reset open null)"
        );
        assert_eq!(
            Filter::parse("kind=fin").unwrap_err().to_string(),
            "unknown kind 'fin' (one of four_way combined simultaneous half_close rst fin_then_rst null)"
        );
        assert_eq!(
            Filter::parse("initiator!=client").unwrap_err().to_string(),
            "unknown initiator 'client' (one of orig resp both null)"
        );
        assert!(Filter::parse("(tcp").is_err());
        assert!(Filter::parse("tcp udp").is_err());
    }
}
