//! What each subcommand does: run the analysis into the right consumer, then report.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::analyze::{self, Analysis, Options};
use crate::check::Checker;
use crate::cli::{Command, Input};
use crate::filter::Filter;
use crate::flow::inventory::Inventory;
use crate::flow::Conn;
use crate::report::record::ConnRecord;
use crate::report::stream::ConnWriter;
use crate::report::summary::Summary;
use crate::report::{csv, json, jsonl, ladder, table, verdicts, AccountingRecord, Format};

pub fn run(command: Command, out: &mut dyn Write) -> io::Result<ExitCode> {
    match command {
        Command::Conns { input, format, order } => {
            let mut writer = ConnWriter::new(out, format, order)?;
            let analysis = analyze(&input, &mut |_| {}, &mut |_, record, kept| match kept {
                true => writer.conn(record),
                false => writer.skip(record.id),
            })?;
            writer.finish(&analysis)?;
            Ok(finish(&analysis))
        }
        Command::Sockets { input, format } => {
            if format == Format::Zeek {
                eprintln!("sockscope: --format zeek is for connections (conns), not sockets");
                return Ok(ExitCode::from(2));
            }
            let mut inventory = Inventory::default();
            let analysis = analyze(&input, &mut |_| {}, &mut |c, _, kept| {
                if kept {
                    inventory.add(c);
                }
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
            let analysis = analyze(&input, &mut |_| {}, &mut |_, record, kept| {
                if kept {
                    summary.add(&record);
                }
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
                &mut |_, record, _| {
                    total += 1;
                    if record.id == conn {
                        found = Some(record);
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
        Command::Check { input, rules, junit, markdown } => {
            let rules = match rules.rules() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("sockscope: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let mut checker = Checker::new(rules);
            let mut conns = 0;
            let analysis = analyze(&input, &mut |_| {}, &mut |_, record, kept| {
                if kept {
                    conns += 1;
                    checker.add(&record);
                }
                Ok(())
            })?;
            let verdicts = checker.finish();
            verdicts::text(out, &verdicts, conns)?;
            let name = input.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" ");
            if let Some(path) = junit {
                write_file(&path, |w| verdicts::junit(w, &verdicts, &name))?;
            }
            if let Some(path) = markdown {
                write_file(&path, |w| verdicts::markdown(w, &verdicts, &name))?;
            }
            let code = finish(&analysis);
            let failed = verdicts.iter().any(|v| !v.passed);
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

/// Writes a side report (JUnit, Markdown); failing to is an error of the run.
fn write_file(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let file = std::fs::File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut w = io::BufWriter::new(file);
    write(&mut w)?;
    w.flush()
}

/// Runs the analysis; each ended connection goes to `each` with its record and whether it
/// passes the filters (`show` looks at every connection; output in id order must skip ids).
fn analyze(
    input: &Input,
    observer: &mut dyn FnMut(&analyze::Seen),
    each: &mut dyn FnMut(&Conn, ConnRecord, bool) -> io::Result<()>,
) -> io::Result<Analysis> {
    let filter = Filter::all(input.filter.clone());
    let options = Options {
        timeouts: input.timeouts(),
        max_connections: input.max_connections as usize,
        decap: !input.no_decap,
        jobs: input.jobs(),
    };
    analyze::analyze(&input.files, &options, observer, &mut |c| {
        let record = ConnRecord::new(&c);
        let kept = filter.as_ref().is_none_or(|f| f.matches(&record));
        each(&c, record, kept)
    })
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
