//! Command-line arguments, validated once into a configuration.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::analyzer::Analyzer;
use crate::check::{Limit, Rules, Scoped, SocketSpec};
use crate::diff::Tolerances;
use crate::filter::{split_socket, Filter};
use crate::flow::table::Timeouts;
use crate::pipeline::{Options, DEFAULT_MAX_CONNECTIONS};
use crate::report::clock::Clock;
use crate::report::writer::Order;
use crate::report::{Format, SocketFormat};
use crate::tcp::verdict::ConnState;
use crate::types::{Addr, Duration};

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
    /// The subcommand and its arguments.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, each with its arguments as given.
#[derive(Subcommand, Debug)]
// One value per run: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// One row per connection: sockets, Zeek conn_state and history, packets, bytes, phases.
    ///
    /// Connections are listed in order of first packet; ids count from 1 over the whole run.
    #[command(after_long_help = crate::report::legend())]
    Conns {
        /// Inputs and analysis options.
        #[command(flatten)]
        input: Input,
        /// Which connections are printed.
        #[command(flatten)]
        select: Select,
        /// Whether each input is analyzed on its own.
        #[command(flatten)]
        per_file: PerFile,
        /// Output format [default: from the -o file's ending (.jsonl, .json, .csv, .log, .parquet),
        /// else table].
        #[arg(long, short, value_enum)]
        format: Option<Format>,
        /// first-seen: by id, the order of first packets (held back while an older connection
        /// is open); end: each connection as it ends, nothing held back (for unbounded inputs; one
        /// connection table even with --jobs, since only one table knows the order of ends).
        #[arg(long, value_enum, default_value_t = Order::FirstSeen)]
        order: Order,
        /// The table with every column (start time, packets, bytes, handshake, teardown) even at
        /// a terminal, where it otherwise fits the terminal's width.
        #[arg(long)]
        wide: bool,
        /// The table's start times in the local time zone (TZ, else the system's) instead of UTC.
        #[arg(long)]
        local: bool,
        /// Write to this file instead of stdout; with --per-file, a directory.
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
        /// The Community IDs' seed.
        #[command(flatten)]
        community_id: CommunityIdArgs,
    },
    /// The socket inventory: each <protocol, IP, port>, its role and its connections.
    ///
    /// Shows how many connections a socket took part in and the most it had open at once: one
    /// server socket typically serves many connections concurrently.
    Sockets {
        /// Inputs and analysis options.
        #[command(flatten)]
        input: Input,
        /// Which connections the inventory counts.
        #[command(flatten)]
        select: Select,
        /// Whether each input is analyzed on its own.
        #[command(flatten)]
        per_file: PerFile,
        /// Output format [default: from the -o file's ending (.jsonl, .json, .csv), else table].
        #[arg(long, short, value_enum)]
        format: Option<SocketFormat>,
        /// Write to this file instead of stdout; with --per-file, a directory.
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Totals: packet accounting, connections by state, handshake and teardown kinds.
    Summary {
        /// Inputs and analysis options.
        #[command(flatten)]
        input: Input,
        /// Which connections are counted (the packet accounting covers every packet).
        #[command(flatten)]
        select: Select,
        /// Whether each input is analyzed on its own.
        #[command(flatten)]
        per_file: PerFile,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
        /// First and last packet times in the local time zone (TZ, else the system's) instead
        /// of UTC.
        #[arg(long)]
        local: bool,
    },
    /// A ladder diagram of one connection: one line per packet, client left, server right.
    Show {
        /// Inputs and analysis options.
        #[command(flatten)]
        input: Input,
        /// The connection id, as printed by `conns`.
        #[arg(long = "conn", value_name = "ID", required_unless_present_any = ["socket_pair", "filter"])]
        conn: Option<u64>,
        /// Every connection of this socket pair (each use of a reused pair in turn), either
        /// direction: `10.0.0.1:40000-10.0.0.2:80` or `[::1]:40000-[::1]:80`.
        #[arg(long = "socket-pair", value_name = "A:P-B:P", value_parser = parse_pair, conflicts_with = "conn")]
        socket_pair: Option<(Addr, Addr)>,
        /// Every connection this filter matches, one ladder after another (the input is read
        /// twice: not from standard input).
        #[arg(long, value_name = "EXPR", value_parser = Filter::parse, conflicts_with_all = ["conn", "socket_pair"])]
        filter: Vec<Filter>,
        /// Sequence and acknowledgement numbers as on the wire, instead of relative to each
        /// side's first (its ISN).
        #[arg(long)]
        absolute: bool,
        /// The first packet's time in the local time zone (TZ, else the system's) instead of UTC.
        #[arg(long)]
        local: bool,
        /// Also write the packets drawn to this pcap file (one capture file as input).
        #[arg(long, value_name = "FILE")]
        write_pcap: Option<PathBuf>,
        /// The Community IDs' seed.
        #[command(flatten)]
        community_id: CommunityIdArgs,
    },
    /// What changed between two runs of the same traffic: exit 0 when nothing did (within the
    /// tolerances), 1 when something did, 2 on trouble, as diff(1).
    ///
    /// Client ports differ between runs, so connections are compared in groups: by server socket
    /// and client host (connections, conn_states, teardowns, handshake RTT median and p95,
    /// payload bytes); groups seen in one run only have appeared or vanished.
    Diff {
        /// The earlier run: a capture (file or directory) or `conns --format jsonl` output.
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The later run, the same way.
        #[arg(value_name = "NEW")]
        new: PathBuf,
        /// How captures are analyzed.
        #[command(flatten)]
        analysis: AnalysisArgs,
        /// Which connections are compared.
        #[command(flatten)]
        select: Select,
        /// How much a group may change unreported.
        #[command(flatten)]
        tolerances: ToleranceArgs,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
    /// Exit 1 when a connection breaks a rule, 0 when none does (for CI gates).
    ///
    /// Each broken rule is printed with the connections that broke it.
    Check {
        /// Inputs and analysis options.
        #[command(flatten)]
        input: Input,
        /// Which connections the rules apply to.
        #[command(flatten)]
        select: Select,
        /// Whether each input is checked on its own (a verdict and a JUnit test suite each).
        #[command(flatten)]
        per_file: PerFile,
        /// The rules.
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

impl Command {
    /// The subcommand's configuration, with everything that can be checked before reading a
    /// packet checked and resolved (rules files, formats, thread counts); the error says why
    /// not, in one line.
    pub fn config(self) -> Result<Config, String> {
        Ok(match self {
            Command::Conns { input, select, per_file, format, order, wide, local, output, community_id } => {
                let format = format.unwrap_or_else(|| Format::of_file(output.as_deref(), per_file.per_file));
                if format != Format::Table && (wide || local) {
                    let flag = if wide { "--wide" } else { "--local" };
                    return Err(format!(
                        "{flag} shapes the table: the other formats keep every field, times in UTC"
                    ));
                }
                if format == Format::Parquet && output.is_none() && std::io::stdout().is_terminal() {
                    return Err(
                        "--format parquet is binary: write it with -o FILE (or redirect stdout)".into()
                    );
                }
                let seed = community_id.community_id_seed;
                if format == Format::Table && seed != 0 {
                    return Err(
                        "--community-id-seed seeds the machine formats' community_id: the table has no such column".into()
                    );
                }
                let mut run = input.run(select, per_file, order == Order::End);
                // The table prints no Community ID: not hashing one saves the time.
                run.analyzer.options.community_id_seed = (format != Format::Table).then_some(seed);
                Config::Conns { run, format, order, wide, clock: clock(local), output }
            }
            Command::Sockets { input, select, per_file, format, output } => {
                let format =
                    format.unwrap_or_else(|| SocketFormat::of_file(output.as_deref(), per_file.per_file));
                if per_file.per_file && output.is_none() && format != SocketFormat::Table {
                    return Err(
                        "sockets --per-file in a machine format writes one file per input: give -o DIR"
                            .into(),
                    );
                }
                Config::Sockets {
                    run: input.run(select, per_file, false).without_community_ids().without_numbers(),
                    format,
                    output,
                }
            }
            Command::Summary { input, select, per_file, format, local } => {
                let json = format == TextFormat::Json;
                if json && local {
                    return Err(
                        "summary --local shapes the text: the JSON gives times as seconds since the epoch"
                            .into(),
                    );
                }
                if per_file.per_file && json {
                    return Err(
                        "summary --per-file --format json would print one document per input: run them apart"
                            .into(),
                    );
                }
                Config::Summary {
                    run: input.run(select, per_file, false).without_community_ids().without_numbers(),
                    json,
                    clock: clock(local),
                }
            }
            Command::Show { input, conn, socket_pair, filter, absolute, local, write_pcap, community_id } => {
                let one_file = input.files.len() == 1 && input.files[0].is_file();
                if write_pcap.is_some() && !one_file {
                    return Err(
                        "show --write-pcap copies packets from one capture file: give exactly one".into()
                    );
                }
                let wanted = match (conn, socket_pair) {
                    (Some(id), _) => Wanted::Id(id),
                    (None, Some((a, b))) => Wanted::Pair(a, b),
                    (None, None) if input.files.iter().any(|f| f.as_os_str() == "-") => {
                        return Err(
                            "show --filter reads its input twice: give a file, not standard input".into()
                        )
                    }
                    (None, None) => Wanted::Matching,
                };
                let mut run = input.run(Select { filter }, PerFile::default(), false);
                run.analyzer.options.community_id_seed = Some(community_id.community_id_seed);
                Config::Show { run, wanted, absolute, clock: clock(local), write_pcap }
            }
            Command::Diff { old, new, analysis, select, tolerances, format } => {
                let (tolerances, json) = (tolerances.tolerances(), format == TextFormat::Json);
                Config::Diff { old, new, analyzer: analysis.analyzer(select, false), tolerances, json }
            }
            Command::Check { input, select, per_file, rules, junit, markdown } => {
                let rules = rules.rules()?;
                Config::Check {
                    run: input.run(select, per_file, false).without_community_ids(),
                    rules,
                    junit,
                    markdown,
                }
            }
        })
    }
}

/// Output formats of `summary` and `diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// How much a group may change before `diff` reports it.
#[derive(Args, Clone, Debug)]
pub struct ToleranceArgs {
    /// Connections a group may gain or lose.
    #[arg(long, value_name = "N", default_value_t = Tolerances::default().conns)]
    pub max_conns_change: u64,
    /// Percentage points by which the share of a conn_state or teardown kind may move.
    #[arg(long, value_name = "POINTS", default_value_t = Tolerances::default().states, value_parser = parse_non_negative)]
    pub max_state_change: f64,
    /// Percent by which the median or 95th percentile handshake RTT may move.
    #[arg(long, value_name = "PERCENT", default_value_t = Tolerances::default().rtt, value_parser = parse_non_negative)]
    pub max_rtt_change: f64,
    /// Percent by which a group's payload bytes may move.
    #[arg(long, value_name = "PERCENT", default_value_t = Tolerances::default().bytes, value_parser = parse_non_negative)]
    pub max_bytes_change: f64,
}

impl ToleranceArgs {
    /// The tolerances these arguments give.
    pub fn tolerances(&self) -> Tolerances {
        Tolerances {
            conns: self.max_conns_change,
            states: self.max_state_change,
            rtt: self.max_rtt_change,
            bytes: self.max_bytes_change,
        }
    }
}

/// A finite number, zero or more (a tolerance, a time limit).
fn parse_non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number, 0 or more")),
    }
}

/// A subcommand's work, checked and resolved (see `Command::config`).
// One value per run: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Config {
    /// `conns`: the connection records.
    Conns {
        /// What to read and how.
        run: Run,
        /// Output format.
        format: Format,
        /// First-seen or end order.
        order: Order,
        /// Every table column, even at a terminal.
        wide: bool,
        /// The table's time zone.
        clock: Clock,
        /// The output file (a directory with `--per-file`); `None`: stdout.
        output: Option<PathBuf>,
    },
    /// `sockets`: the socket inventory.
    Sockets {
        /// What to read and how.
        run: Run,
        /// Output format.
        format: SocketFormat,
        /// The output file (a directory with `--per-file`); `None`: stdout.
        output: Option<PathBuf>,
    },
    /// `summary`: the totals.
    Summary {
        /// What to read and how.
        run: Run,
        /// One JSON document instead of text.
        json: bool,
        /// The text's time zone.
        clock: Clock,
    },
    /// `show`: ladder diagrams of the connections wanted.
    Show {
        /// What to read and how.
        run: Run,
        /// Which connections to draw.
        wanted: Wanted,
        /// Raw sequence numbers.
        absolute: bool,
        /// The header's time zone.
        clock: Clock,
        /// Where to copy the packets drawn, as a pcap file.
        write_pcap: Option<PathBuf>,
    },
    /// `check`: the rules' verdicts.
    Check {
        /// What to read and how.
        run: Run,
        /// The rules of the flags and the rules file together.
        rules: Rules,
        /// Where to write a JUnit XML report, if asked.
        junit: Option<PathBuf>,
        /// Where to write a Markdown summary, if asked.
        markdown: Option<PathBuf>,
    },
    /// `diff`: what changed between two runs.
    Diff {
        /// The earlier run: a capture or JSON lines of `conns`.
        old: PathBuf,
        /// The later run.
        new: PathBuf,
        /// How captures are analyzed, and which connections count.
        analyzer: Analyzer,
        /// How much a group may change unreported.
        tolerances: Tolerances,
        /// One JSON document instead of text.
        json: bool,
    },
}

/// What every subcommand reads and how: inputs, analysis options, the connections kept.
#[derive(Clone, Debug)]
pub struct Run {
    /// Files, directories or `-`, as given.
    pub paths: Vec<PathBuf>,
    /// Threads resolved, every `--filter` in one; no progress display yet.
    pub analyzer: Analyzer,
    /// Each file on its own (`--per-file`).
    pub per_file: bool,
}

impl Run {
    /// For a command that prints no Community ID: the records leave it empty, unhashed.
    fn without_community_ids(mut self) -> Self {
        self.analyzer.options.community_id_seed = None;
        self
    }

    /// For a command that prints no connection ids: see `Options::numbered`.
    fn without_numbers(mut self) -> Self {
        self.analyzer.options.numbered = false;
        self
    }
}

/// The connections `show` draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Those the run's filter matches (found by a first pass over the input).
    Matching,
    /// These ids.
    Ids(std::collections::BTreeSet<u64>),
    /// The connection with this id (`--conn`).
    Id(u64),
    /// Either direction.
    Pair(Addr, Addr),
}

impl Wanted {
    /// Whether connection `id` is the one wanted.
    pub fn id(&self, id: u64) -> bool {
        match self {
            Wanted::Id(want) => *want == id,
            Wanted::Ids(ids) => ids.contains(&id),
            Wanted::Pair(..) | Wanted::Matching => false,
        }
    }

    /// Whether a connection between `a` and `b` (either way round) is wanted.
    pub fn pair(&self, a: Addr, b: Addr) -> bool {
        match *self {
            Wanted::Pair(x, y) => (a == x && b == y) || (a == y && b == x),
            Wanted::Id(_) | Wanted::Ids(_) | Wanted::Matching => false,
        }
    }
}

/// Connection filters, for the subcommands that select connections.
#[derive(Args, Clone, Debug, Default)]
pub struct Select {
    /// Only connections matching this expression (repeatable: all must match), e.g.
    /// 'tcp and port 443 and state=REJ', 'udp or host 10.0.0.1', 'duration>1.5 and not state in S0,REJ'.
    #[arg(long, value_name = "EXPR", value_parser = Filter::parse)]
    pub filter: Vec<Filter>,
}

/// Each input on its own, for the subcommands whose output can be split by file.
#[derive(Args, Clone, Debug, Default)]
pub struct PerFile {
    /// Analyze each file on its own (in parallel with --jobs): with --output DIR one output per
    /// input named after it, else one after another under a `== FILE ==` line.
    #[arg(long)]
    pub per_file: bool,
}

/// The rules of `check`, from flags and from a TOML file.
#[derive(Args, Debug)]
pub struct RuleArgs {
    /// Fail when any connection has this conn_state (repeatable), e.g. REJ, S0, RSTO. Every rule
    /// value may end with ` if EXPR` to apply to the connections a filter matches only:
    /// 'REJ if resp.port=443'.
    #[arg(long = "fail-on-state", value_name = "STATE", value_parser = |s: &str| Scoped::parse(s, ConnState::parse))]
    pub fail_on_state: Vec<Scoped<ConnState>>,
    /// Fail when more connections than this have the state: STATE=N or STATE=P% (repeatable),
    /// e.g. 'REJ=1% if resp.port=443'.
    #[arg(long = "max-state", value_name = "STATE=LIMIT", value_parser = |s: &str| Scoped::parse(s, parse_max_state))]
    pub max_state: Vec<Scoped<(ConnState, Limit)>>,
    /// Fail when a TCP connection seen from its SYN never completed its handshake
    /// (unanswered, refused, or SYN+ACK without the final ACK).
    #[arg(long)]
    pub handshakes_complete: bool,
    /// Fail when a handshake took longer than this (SYN to ACK), in seconds.
    #[arg(long, value_name = "SECS", value_parser = |s: &str| Scoped::parse(s, parse_non_negative))]
    pub max_rtt: Vec<Scoped<f64>>,
    /// Fail when retransmissions exceed this share (P%) or count (N) of TCP packets.
    #[arg(long, value_name = "LIMIT", value_parser = |s: &str| Scoped::parse(s, Limit::parse))]
    pub max_retransmissions: Vec<Scoped<Limit>>,
    /// Fail unless this socket takes part in a connection: tcp/10.0.0.1:80 (repeatable).
    #[arg(long = "expect-socket", value_name = "SOCKET", value_parser = |s: &str| Scoped::parse(s, SocketSpec::parse))]
    pub expect_socket: Vec<Scoped<SocketSpec>>,
    /// Fail if this socket takes part in a connection (repeatable).
    #[arg(long = "forbid-socket", value_name = "SOCKET", value_parser = |s: &str| Scoped::parse(s, SocketSpec::parse))]
    pub forbid_socket: Vec<Scoped<SocketSpec>>,
    /// Fail when fewer connections than this were seen (an empty capture proves nothing).
    #[arg(long, value_name = "N", value_parser = |s: &str| Scoped::parse(s, |n: &str| n.parse::<u64>().map_err(|_| format!("'{n}' is not a count"))))]
    pub min_connections: Vec<Scoped<u64>>,
    /// Fail when this run differs from an earlier one (a capture, or JSON lines of `conns`) as
    /// `diff` compares them, beyond the tolerances below.
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// The tolerances of --baseline.
    #[command(flatten)]
    pub tolerances: ToleranceArgs,
    /// More rules from a TOML file (the same names, with underscores; see the README).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

impl RuleArgs {
    /// The rules of the flags and of the file; the error names the file and the problem.
    pub fn rules(&self) -> Result<Rules, String> {
        let mut rules = Rules {
            handshakes_complete: self.handshakes_complete,
            baseline: self.baseline.clone().map(|path| (path, self.tolerances.tolerances())),
            ..Rules::default()
        };
        for s in &self.fail_on_state {
            rules.scope_mut(&s.scope).fail_on_state.push(s.rule);
        }
        for s in &self.max_state {
            rules.scope_mut(&s.scope).max_state.push(s.rule);
        }
        for s in &self.max_rtt {
            rules.scope_mut(&s.scope).max_rtt = Some(s.rule);
        }
        for s in &self.max_retransmissions {
            rules.scope_mut(&s.scope).max_retransmissions = Some(s.rule);
        }
        for s in &self.expect_socket {
            rules.scope_mut(&s.scope).expect_sockets.push(s.rule.clone());
        }
        for s in &self.forbid_socket {
            rules.scope_mut(&s.scope).forbid_sockets.push(s.rule.clone());
        }
        for s in &self.min_connections {
            rules.scope_mut(&s.scope).min_connections = Some(s.rule);
        }
        if let Some(path) = &self.rules {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            rules.add_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if rules.is_empty() {
            return Err("check needs at least one rule (see sockscope check --help)".into());
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
    Ok((ConnState::parse(state)?, Limit::parse(limit)?))
}

/// The inputs and analysis options every subcommand but `diff` takes.
#[derive(Args, Clone, Debug)]
pub struct Input {
    /// Capture files (pcap or pcapng, optionally gzip) or directories of them; `-` reads stdin.
    /// Several files are one timeline, merged by timestamp (the rotated pieces of one capture,
    /// or captures of one link taken side by side) unless --per-file.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// How they are analyzed.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// How captures are analyzed.
#[derive(Args, Clone, Debug)]
pub struct AnalysisArgs {
    /// Seconds without packets after which a TCP connection ends.
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_seconds)]
    pub tcp_timeout: Duration,
    /// Seconds without packets after which a UDP flow ends.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds)]
    pub udp_timeout: Duration,
    /// Most connections held open at once; past it the least recently active are ended early
    /// (their `end` is "evicted"), so a SYN flood cannot exhaust memory.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Do not look inside tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, AYIYA, GTP-U): report the
    /// outer flows only.
    #[arg(long)]
    pub no_decap: bool,
    /// Threads to use; 0 picks by the machine (its cores, up to 8). With 2 or more the
    /// connections are split by socket pair over that many tables, each on a thread, next to
    /// a thread reading and decoding and one writing the output.
    #[arg(long, short, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
}

/// The Community IDs' seed, for the subcommands that print the IDs.
#[derive(Args, Clone, Copy, Debug)]
pub struct CommunityIdArgs {
    /// Seed of the connections' Community ID flow hashes (0 to 65535), to match tools set to
    /// the same seed; 0 is the spec's default and theirs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub community_id_seed: u16,
}

impl Input {
    /// The analysis these arguments ask for, threads resolved.
    fn run(self, select: Select, per_file: PerFile, end_order: bool) -> Run {
        let analyzer = self.analysis.analyzer(select, end_order);
        Run { paths: self.files, analyzer, per_file: per_file.per_file }
    }
}

impl AnalysisArgs {
    /// The analyzer these arguments ask for, threads resolved.
    fn analyzer(self, select: Select, end_order: bool) -> Analyzer {
        let jobs = match self.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            n => n,
        };
        let options = Options {
            timeouts: Timeouts { tcp: self.tcp_timeout, udp: self.udp_timeout },
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            decap: !self.no_decap,
            jobs,
            end_order,
            progress: None,
            community_id_seed: Some(0),
            numbered: true,
        };
        Analyzer { options, filter: Filter::all(select.filter) }
    }
}

/// A timeout in seconds: a finite number, zero or more.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(Duration::from_secs_f64)
        .ok_or_else(|| format!("'{s}' is not a number of seconds (0 or more)"))
}

/// UTC, or with `--local` the system's time zone.
fn clock(local: bool) -> Clock {
    if local {
        Clock::local()
    } else {
        Clock::Utc
    }
}
