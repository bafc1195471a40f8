//! What each subcommand does: run the analysis into the right consumer, then report.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::analyze::{self, Analysis, Options};
use crate::cli::{Command, Input};
use crate::flow::inventory::Inventory;
use crate::report::record::ConnRecord;
use crate::report::stream::ConnWriter;
use crate::report::summary::Summary;
use crate::report::{csv, json, jsonl, ladder, table, AccountingRecord, Format};

pub fn run(command: Command, out: &mut dyn Write) -> io::Result<ExitCode> {
    match command {
        Command::Conns { input, format, order } => {
            let mut writer = ConnWriter::new(out, format, order)?;
            let analysis = analyze(&input, &mut |_| {}, &mut |c| writer.conn(&c))?;
            writer.finish(&analysis)?;
            Ok(finish(&analysis))
        }
        Command::Sockets { input, format } => {
            if format == Format::Zeek {
                eprintln!("sockscope: --format zeek is for connections (conns), not sockets");
                return Ok(ExitCode::from(2));
            }
            let mut inventory = Inventory::default();
            let analysis = analyze(&input, &mut |_| {}, &mut |c| {
                inventory.add(&c);
                Ok(())
            })?;
            let sockets = inventory.finish();
            match format {
                Format::Jsonl => {
                    let mut buf = Vec::new();
                    for s in &sockets {
                        jsonl::line(&mut buf, s);
                    }
                    out.write_all(&buf)?;
                }
                Format::Json => {
                    json::open(out, "sockets")?;
                    for (i, s) in sockets.iter().enumerate() {
                        if i > 0 {
                            json::separator(out)?;
                        }
                        serde_json::to_writer(&mut *out, s)?;
                    }
                    json::close(out, &analysis.files, &AccountingRecord::new(&analysis.accounting))?;
                }
                Format::Csv => csv::write_sockets(out, &sockets)?,
                Format::Table => table::write_sockets(out, &sockets)?,
                Format::Zeek => unreachable!("rejected above"),
            }
            Ok(finish(&analysis))
        }
        Command::Summary { input } => {
            let mut summary = Summary::default();
            let analysis = analyze(&input, &mut |_| {}, &mut |c| {
                summary.add(&ConnRecord::new(&c));
                Ok(())
            })?;
            summary.write(out, &analysis)?;
            Ok(finish(&analysis))
        }
        Command::Show { input, conn } => {
            let mut packets = Vec::new();
            let mut found = None;
            let mut total = 0;
            let analysis = analyze(
                &input,
                &mut |seen| {
                    if seen.conn_id == conn {
                        packets.push(*seen);
                    }
                },
                &mut |c| {
                    total += 1;
                    if c.id == conn {
                        found = Some(ConnRecord::new(&c));
                    }
                    Ok(())
                },
            )?;
            let code = finish(&analysis);
            match found {
                Some(c) => ladder::write(out, &c, &packets)?,
                None if code == ExitCode::SUCCESS => {
                    eprintln!("sockscope: no connection with id {conn} ({total} connections)");
                    return Ok(ExitCode::from(2));
                }
                None => {}
            }
            Ok(code)
        }
        Command::Check { input, fail_on_state } => {
            let mut bad: Vec<Vec<ConnRecord>> = fail_on_state.iter().map(|_| Vec::new()).collect();
            let mut total = 0;
            let analysis = analyze(&input, &mut |_| {}, &mut |c| {
                total += 1;
                let state = c.conn_state();
                for (rule, list) in fail_on_state.iter().zip(&mut bad) {
                    if rule.code() == state {
                        list.push(ConnRecord::new(&c));
                    }
                }
                Ok(())
            })?;
            let mut failed = false;
            for (rule, mut list) in fail_on_state.iter().zip(bad) {
                if !list.is_empty() {
                    failed = true;
                    list.sort_unstable_by_key(|r| r.id);
                    writeln!(out, "FAIL --fail-on-state {}: {} connection(s)", rule.code(), list.len())?;
                    table::write_conns(out, &list)?;
                }
            }
            if !failed {
                writeln!(out, "ok: {total} connection(s), all rules hold")?;
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

fn analyze(
    input: &Input,
    observer: &mut dyn FnMut(&analyze::Seen),
    sink: &mut analyze::Sink<'_>,
) -> io::Result<Analysis> {
    let options = Options {
        timeouts: input.timeouts(),
        max_connections: input.max_connections as usize,
        decap: !input.no_decap,
        jobs: input.jobs(),
    };
    analyze::analyze(&input.files, &options, observer, sink)
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
