use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use sockscope::analyze::{self, Analysis, Options};
use sockscope::cli::{Cli, Command, Input};
use sockscope::flow::inventory::inventory;
use sockscope::report::record::ConnRecord;
use sockscope::report::{self, csv, json, jsonl, ladder, summary, table, zeek, AccountingRecord, Format};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = run(cli.command, &mut out).and_then(|code| out.flush().map(|_| code));
    match result {
        Ok(code) => code,
        // `sockscope ... | head` closing the pipe is a normal end.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockscope: cannot write output: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command, out: &mut dyn Write) -> io::Result<ExitCode> {
    match command {
        Command::Conns { input, format } => {
            let analysis = load(&input);
            let conns: Vec<ConnRecord> = analysis.conns.iter().map(ConnRecord::new).collect();
            match format {
                Format::Jsonl => jsonl::write(out, &conns)?,
                Format::Json => {
                    json::write(out, &analysis.files, accounting(&analysis), "connections", &conns)?
                }
                Format::Csv => csv::write_conns(out, &conns)?,
                Format::Table => table::write_conns(out, &conns)?,
                Format::Zeek => zeek::write_conns(out, &conns)?,
            }
            Ok(finish(&analysis))
        }
        Command::Sockets { input, format } => {
            if format == Format::Zeek {
                eprintln!("sockscope: --format zeek is for connections (conns), not sockets");
                return Ok(ExitCode::from(2));
            }
            let analysis = load(&input);
            let sockets = inventory(&analysis.conns);
            match format {
                Format::Jsonl => jsonl::write(out, &sockets)?,
                Format::Json => {
                    json::write(out, &analysis.files, accounting(&analysis), "sockets", &sockets)?
                }
                Format::Csv => csv::write_sockets(out, &sockets)?,
                Format::Table => table::write_sockets(out, &sockets)?,
                Format::Zeek => unreachable!("rejected above"),
            }
            Ok(finish(&analysis))
        }
        Command::Summary { input } => {
            let analysis = load(&input);
            let conns: Vec<ConnRecord> = analysis.conns.iter().map(ConnRecord::new).collect();
            summary::write(out, &analysis, &conns)?;
            Ok(finish(&analysis))
        }
        Command::Show { input, conn } => {
            let mut packets = Vec::new();
            let analysis = analyze::analyze_with(&input.files, &options(&input), &mut |seen| {
                if seen.conn_id == conn {
                    packets.push(*seen);
                }
            });
            let code = finish(&analysis);
            match analysis.conns.iter().find(|c| c.id == conn) {
                Some(c) => ladder::write(out, &ConnRecord::new(c), &packets)?,
                None if code == ExitCode::SUCCESS => {
                    eprintln!(
                        "sockscope: no connection with id {conn} ({} connections)",
                        analysis.conns.len()
                    );
                    return Ok(ExitCode::from(2));
                }
                None => {}
            }
            Ok(code)
        }
        Command::Check { input, fail_on_state } => {
            let analysis = load(&input);
            let mut failed = false;
            for state in &fail_on_state {
                let bad: Vec<ConnRecord> = analysis
                    .conns
                    .iter()
                    .filter(|c| c.conn_state() == state.code())
                    .map(ConnRecord::new)
                    .collect();
                if !bad.is_empty() {
                    failed = true;
                    writeln!(out, "FAIL --fail-on-state {}: {} connection(s)", state.code(), bad.len())?;
                    table::write_conns(out, &bad)?;
                }
            }
            if !failed {
                writeln!(out, "ok: {} connection(s), all rules hold", analysis.conns.len())?;
            }
            let code = finish(&analysis);
            Ok(if code != ExitCode::SUCCESS {
                code
            } else if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn load(input: &Input) -> Analysis {
    analyze::analyze(&input.files, &options(input))
}

fn options(input: &Input) -> Options {
    Options {
        timeouts: input.timeouts(),
        max_connections: input.max_connections as usize,
        decap: !input.no_decap,
    }
}

fn accounting(a: &Analysis) -> AccountingRecord {
    report::AccountingRecord::new(&a.accounting)
}

/// Reports file problems on stderr; exit 2 when a file could not be read.
fn finish(analysis: &Analysis) -> ExitCode {
    if analysis.evicted > 0 {
        eprintln!(
            "sockscope: warning: {} connection(s) ended early to stay within --max-connections",
            analysis.evicted
        );
    }
    for f in &analysis.files {
        if let Some(w) = &f.warning {
            eprintln!("sockscope: warning: {}: {w}", f.path.display());
        }
        if let Some(e) = &f.error {
            eprintln!("sockscope: {}: {e}", f.path.display());
        }
    }
    if analysis.had_errors() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
