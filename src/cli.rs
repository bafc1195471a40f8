//! Command-line arguments, validated once into a configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::capture::Duration;
use crate::check::{Limit, Rules, SocketSpec};
use crate::filter::{split_socket, Filter};
use crate::flow::socket::Addr;
use crate::flow::table::Timeouts;
use crate::report::stream::Order;
use crate::report::Format;
use crate::tcp::verdict::ConnState;

/// Connections, handshakes and teardowns in saved packet captures (pcap, pcapng, gzip, stdin).
///
/// A socket is <protocol, IP, port>: TCP 10.0.0.1:8081 and UDP 10.0.0.1:8081 are two sockets.
/// A connection is one socket pair <client socket, server socket> from its start to its end;
/// the same pair used again later (port reuse) is a new connection. UDP "connections" are flows
/// ended by inactivity.
///
/// Exit codes: 0 success (warnings go to stderr), 1 a `check` rule failed,
/// 2 usage error or an input that cannot be read as a capture.
#[derive(Parser, Debug)]
#[command(name = "sockscope", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One row per connection: sockets, Zeek conn_state and history, packets, bytes, phases.
    ///
    /// Connections are listed in order of first packet; ids count from 1 over the whole run.
    Conns {
        #[command(flatten)]
        input: Input,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// first-seen: by id, the order of first packets (held back while an older connection
        /// is open); end: each connection as it ends, nothing held back (for unbounded inputs; one
        /// connection table even with --jobs, since only one table knows the order of ends).
        #[arg(long, value_enum, default_value_t = Order::FirstSeen)]
        order: Order,
        /// Write to this file instead of stdout; with --per-file, a directory.
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// The socket inventory: each <protocol, IP, port>, its role and its connections.
    ///
    /// Shows how many connections a socket took part in and the most it had open at once: one
    /// server socket typically serves many connections concurrently.
    Sockets {
        #[command(flatten)]
        input: Input,
        #[arg(long, short, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Write to this file instead of stdout; with --per-file, a directory.
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Totals: packet accounting, connections by state, handshake and teardown kinds.
    Summary {
        #[command(flatten)]
        input: Input,
    },
    /// A ladder diagram of one connection: one line per packet, client left, server right.
    Show {
        #[command(flatten)]
        input: Input,
        /// The connection id, as printed by `conns`.
        #[arg(long = "conn", value_name = "ID", required_unless_present = "socket_pair")]
        conn: Option<u64>,
        /// Every connection of this socket pair (each use of a reused pair in turn), either
        /// direction: 10.0.0.1:40000-10.0.0.2:80 or [::1]:40000-[::1]:80.
        #[arg(long = "socket-pair", value_name = "A:P-B:P", value_parser = parse_pair, conflicts_with = "conn")]
        socket_pair: Option<(Addr, Addr)>,
    },
    /// Exit 1 when a connection breaks a rule, 0 when none does (for CI gates).
    ///
    /// Each broken rule is printed with the connections that broke it.
    Check {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        rules: RuleArgs,
        /// Also write a JUnit XML report here (one test case per rule).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
    },
}

/// The rules of `check`, from flags and from a TOML file.
#[derive(Args, Debug)]
pub struct RuleArgs {
    /// Fail when any connection has this conn_state (repeatable), e.g. REJ, S0, RSTO.
    #[arg(long = "fail-on-state", value_name = "STATE", value_parser = parse_state)]
    pub fail_on_state: Vec<ConnState>,
    /// Fail when more connections than this have the state: STATE=N or STATE=P% (repeatable).
    #[arg(long = "max-state", value_name = "STATE=LIMIT", value_parser = parse_max_state)]
    pub max_state: Vec<(ConnState, Limit)>,
    /// Fail when a TCP connection seen from its SYN never completed its handshake
    /// (unanswered, refused, or SYN+ACK without the final ACK).
    #[arg(long)]
    pub handshakes_complete: bool,
    /// Fail when a handshake took longer than this (SYN to ACK), in seconds.
    #[arg(long, value_name = "SECS")]
    pub max_rtt: Option<f64>,
    /// Fail when retransmissions exceed this share (P%) or count (N) of TCP packets.
    #[arg(long, value_name = "LIMIT", value_parser = Limit::parse)]
    pub max_retransmissions: Option<Limit>,
    /// Fail unless this socket takes part in a connection: tcp/10.0.0.1:80 (repeatable).
    #[arg(long = "expect-socket", value_name = "SOCKET", value_parser = SocketSpec::parse)]
    pub expect_socket: Vec<SocketSpec>,
    /// Fail if this socket takes part in a connection (repeatable).
    #[arg(long = "forbid-socket", value_name = "SOCKET", value_parser = SocketSpec::parse)]
    pub forbid_socket: Vec<SocketSpec>,
    /// More rules from a TOML file (the same names, with underscores; see the README).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

impl RuleArgs {
    /// The rules of the flags and of the file; the error names the file and the problem.
    pub fn rules(&self) -> Result<Rules, String> {
        let mut rules = Rules {
            fail_on_state: self.fail_on_state.clone(),
            max_state: self.max_state.clone(),
            handshakes_complete: self.handshakes_complete,
            max_rtt: self.max_rtt,
            max_retransmissions: self.max_retransmissions,
            expect_sockets: self.expect_socket.clone(),
            forbid_sockets: self.forbid_socket.clone(),
        };
        if let Some(path) = &self.rules {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            rules.add_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(rules)
    }
}

fn parse_pair(s: &str) -> Result<(Addr, Addr), String> {
    // The separator is the '-' after the first socket's port.
    let split = s.match_indices('-').map(|(i, _)| i).find(|&i| split_socket(&s[..i]).is_ok());
    let i = split.ok_or_else(|| format!("'{s}' is not a socket pair like 10.0.0.1:40000-10.0.0.2:80"))?;
    let (a, b) = (
        split_socket(&s[..i]).map_err(|e| e.to_string())?,
        split_socket(&s[i + 1..]).map_err(|e| e.to_string())?,
    );
    Ok((Addr { ip: a.0, port: a.1 }, Addr { ip: b.0, port: b.1 }))
}

fn parse_max_state(s: &str) -> Result<(ConnState, Limit), String> {
    let (state, limit) = s.split_once('=').ok_or_else(|| format!("'{s}' is not STATE=LIMIT"))?;
    Ok((parse_state(state)?, Limit::parse(limit)?))
}

#[derive(Args, Clone, Debug)]
pub struct Input {
    /// Capture files (pcap or pcapng, optionally gzip) or directories of them; `-` reads stdin.
    /// Several files are one timeline, merged by timestamp (the rotated pieces of one capture,
    /// or captures of one link taken side by side) unless --per-file.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Analyze each file on its own (in parallel with --jobs), output named after each input.
    #[arg(long)]
    pub per_file: bool,
    /// Seconds without packets after which a TCP connection ends.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub tcp_timeout: f64,
    /// Seconds without packets after which a UDP flow ends.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub udp_timeout: f64,
    /// Most connections held open at once; past it the least recently active are ended early
    /// (their `end` is "evicted"), so a SYN flood cannot exhaust memory.
    #[arg(long, value_name = "N", default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Do not look inside tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, AYIYA, GTP-U): report the
    /// outer flows only.
    #[arg(long)]
    pub no_decap: bool,
    /// Only connections matching this expression (repeatable: all must match), e.g.
    /// 'tcp and port 443 and state=REJ', 'udp or host 10.0.0.1', 'duration>1.5 and not state in S0,REJ'.
    #[arg(long, value_name = "EXPR", value_parser = Filter::parse)]
    pub filter: Vec<Filter>,
    /// Threads to use; 0 picks by the machine (its cores, up to 8). With 2 or more the
    /// connections are split by socket pair over that many tables, each on a thread, next to
    /// a thread reading and decoding and one writing the output.
    #[arg(long, short, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
}

impl Input {
    pub fn jobs(&self) -> usize {
        match self.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            n => n,
        }
    }

    pub fn timeouts(&self) -> Timeouts {
        let d = |s: f64| Duration((s.max(0.0) * 1e9) as u64);
        Timeouts { tcp: d(self.tcp_timeout), udp: d(self.udp_timeout) }
    }
}

fn parse_state(s: &str) -> Result<ConnState, String> {
    ConnState::parse(s).ok_or_else(|| {
        let all: Vec<&str> = ConnState::ALL.iter().map(|c| c.code()).collect();
        format!("unknown conn_state '{s}' (one of {})", all.join(" "))
    })
}
