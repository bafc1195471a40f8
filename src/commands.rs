//! What each subcommand does: run the analysis into the right consumer, then report.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;

use std::collections::BTreeMap;

use crate::check::Checker;
use crate::cli::{Command, Input};
use crate::filter::Filter;
use crate::flow::inventory::Inventory;
use crate::flow::socket::Addr;
use crate::flow::Conn;
use crate::inputs;
use crate::pipeline::{self, Analysis, ObservedPacket, Options};
use crate::report::record::ConnRecord;
use crate::report::stream::{ConnWriter, Order};
use crate::report::summary::Summary;
use crate::report::{csv, json, jsonl, ladder, table, verdicts, AccountingRecord, Format};

pub fn run(command: Command, out: &mut dyn Write) -> io::Result<ExitCode> {
    match command {
        Command::Conns { input, format, order, output } => {
            let ext = match format {
                Format::Table => "txt",
                Format::Json => "json",
                Format::Jsonl => "jsonl",
                Format::Csv => "csv",
                Format::Zeek => "conn.log",
                Format::Parquet => "parquet",
            };
            if format == Format::Parquet && output.is_none() && io::stdout().is_terminal() {
                eprintln!(
                    "sockscope: --format parquet is binary: write it with -o FILE (or redirect stdout)"
                );
                return Ok(ExitCode::from(2));
            }
            let one = |input: &Input, out: &mut dyn Write, tty: bool| conns(input, format, order, tty, out);
            dispatch(&input, output.as_deref(), ext, out, &one)
        }
        Command::Sockets { input, format, output } => {
            if matches!(format, Format::Zeek | Format::Parquet) {
                eprintln!("sockscope: --format {format:?} is for connections (conns), not sockets");
                return Ok(ExitCode::from(2));
            }
            let ext = match format {
                Format::Json => "sockets.json",
                Format::Jsonl => "sockets.jsonl",
                Format::Csv => "sockets.csv",
                _ => "sockets.txt",
            };
            let one = |input: &Input, out: &mut dyn Write, tty: bool| sockets(input, format, tty, out);
            dispatch(&input, output.as_deref(), ext, out, &one)
        }
        Command::Summary { input } => {
            dispatch(&input, None, "summary.txt", out, &|input: &Input, out: &mut dyn Write, tty: bool| {
                summary(input, tty, out)
            })
        }
        Command::Show { input, conn, socket_pair } => {
            let wanted = |a: Addr, b: Addr| match socket_pair {
                Some((x, y)) => (a == x && b == y) || (a == y && b == x),
                None => false,
            };
            let mut packets: BTreeMap<u64, Vec<ObservedPacket>> = BTreeMap::new();
            let mut found: Vec<ConnRecord<'static>> = Vec::new();
            let mut total = 0;
            let analysis = analyze(
                &input,
                Order::FirstSeen,
                Some(&mut |seen: &ObservedPacket| {
                    let (src, dst) = seen.sockets();
                    if Some(seen.conn_id) == conn || wanted(src, dst) {
                        packets.entry(seen.conn_id).or_default().push(*seen);
                    }
                }),
                &mut |_, record, _| {
                    total += 1;
                    if Some(record.id) == conn || wanted(record.orig, record.resp) {
                        found.push(record);
                    }
                    Ok(())
                },
            )?;
            let code = finish(&analysis);
            found.sort_unstable_by_key(|r| r.id);
            for (i, c) in found.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                ladder::write(out, c, packets.get(&c.id).map_or(&[], Vec::as_slice))?;
            }
            if found.is_empty() && code == ExitCode::SUCCESS {
                match (conn, socket_pair) {
                    (Some(id), _) => eprintln!("sockscope: no connection with id {id} ({total} connections)"),
                    (None, Some((a, b))) => eprintln!("sockscope: no connection between {a} and {b}"),
                    (None, None) => {}
                }
                return Ok(ExitCode::from(2));
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
            let analysis = analyze(&input, Order::FirstSeen, None, &mut |_, record, kept| {
                if kept {
                    conns += 1;
                    checker.add(&record);
                }
                Ok(())
            })?;
            let verdicts = checker.finish();
            verdicts::text(out, &verdicts, conns, io::stdout().is_terminal() && table::color_enabled())?;
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

/// `tty`: the output is a terminal, so the table gets colors (unless NO_COLOR) and the
/// summary after it.
fn conns(
    input: &Input,
    format: Format,
    order: Order,
    tty: bool,
    out: &mut dyn Write,
) -> io::Result<ExitCode> {
    let with_summary = tty && format == Format::Table;
    let (mut summary, mut inventory) = (Summary::default(), Inventory::default());
    let mut writer = ConnWriter::new(out, format, order, tty && table::color_enabled())?;
    let analysis = analyze(input, order, None, &mut |c, record, kept| {
        if !kept {
            return writer.skip(record.id);
        }
        if with_summary {
            summary.add(&record);
            inventory.add(c);
        }
        writer.conn(record)
    })?;
    writer.finish(&analysis)?;
    if with_summary {
        writeln!(out)?;
        summary.write(out, &analysis, &inventory.finish())?;
    }
    Ok(finish(&analysis))
}

fn sockets(input: &Input, format: Format, tty: bool, out: &mut dyn Write) -> io::Result<ExitCode> {
    let mut inventory = Inventory::default();
    let analysis = analyze(input, Order::FirstSeen, None, &mut |c, _, kept| {
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
        Format::Table | Format::Zeek | Format::Parquet => {
            table::write_sockets(out, &sockets, tty && table::color_enabled())?
        }
    }
    Ok(finish(&analysis))
}

fn summary(input: &Input, _tty: bool, out: &mut dyn Write) -> io::Result<ExitCode> {
    let mut summary = Summary::default();
    let mut inventory = Inventory::default();
    let analysis = analyze(input, Order::FirstSeen, None, &mut |c, record, kept| {
        if kept {
            summary.add(&record);
            inventory.add(c);
        }
        Ok(())
    })?;
    summary.write(out, &analysis, &inventory.finish())?;
    Ok(finish(&analysis))
}

/// One file's outcome in `--per-file`: its exit code and, when printed to stdout, its output.
type FileResult = io::Result<(ExitCode, Vec<u8>)>;

/// Runs a command on the inputs as one timeline, writing to `out` or to the file `output`; or,
/// with `--per-file`, on each input file on its own, in parallel (`--jobs`), each output
/// named after its input: `DIR/NAME.EXT` with `--output DIR`, else printed one after another
/// under a `== FILE ==` line. The exit code is the worst of the files'.
fn dispatch(
    input: &Input,
    output: Option<&Path>,
    ext: &str,
    out: &mut dyn Write,
    one: &(dyn Fn(&Input, &mut dyn Write, bool) -> io::Result<ExitCode> + Sync),
) -> io::Result<ExitCode> {
    if !input.per_file {
        return match output {
            None => one(input, out, io::stdout().is_terminal()),
            Some(path) => write_file(path, |w| one(input, w, false)),
        };
    }
    let files = inputs::expand(&input.files);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, FileResult)>> = Mutex::default();
    let work = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(file) = files.get(i) else { return };
        let single = Input { files: vec![file.clone()], jobs: 1, ..input.clone() };
        let result = match output {
            Some(dir) => {
                let name = file.file_name().map_or("stdin".into(), |n| n.to_string_lossy().into_owned());
                let path = dir.join(format!("{name}.{ext}"));
                write_file(&path, |w| one(&single, w, false)).map(|code| (code, Vec::new()))
            }
            None => {
                let mut buf = Vec::new();
                one(&single, &mut buf, false).map(|code| (code, buf))
            }
        };
        results.lock().expect("no worker panics").push((i, result));
    };
    if let Some(dir) = output {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    }
    std::thread::scope(|scope| {
        for _ in 0..input.jobs().clamp(1, files.len().max(1)) {
            scope.spawn(work);
        }
    });
    let mut results = results.into_inner().expect("no worker panics");
    results.sort_by_key(|(i, _)| *i);
    let mut worst = ExitCode::SUCCESS;
    for (i, result) in results {
        let (code, text) = result?;
        if output.is_none() {
            writeln!(out, "== {} ==", files[i].display())?;
            out.write_all(&text)?;
        }
        if code != ExitCode::SUCCESS {
            worst = code;
        }
    }
    Ok(worst)
}

/// Writes a side report (JUnit, Markdown); failing to is an error of the run.
fn write_file<T>(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<T>) -> io::Result<T> {
    let file = std::fs::File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut w = io::BufWriter::new(file);
    let value = write(&mut w)?;
    w.flush()?;
    Ok(value)
}

/// Runs the analysis; each ended connection goes to `each` with its record and whether it
/// passes the filters (`show` looks at every connection; output in id order must skip ids).
fn analyze(
    input: &Input,
    order: Order,
    observer: Option<&mut dyn FnMut(&ObservedPacket)>,
    each: &mut dyn FnMut(&Conn, ConnRecord<'static>, bool) -> io::Result<()>,
) -> io::Result<Analysis> {
    let filter = Filter::all(input.filter.clone());
    let files = inputs::timeline(inputs::expand(&input.files));
    let progress = Progress::start(&files, input.per_file);
    let options = Options {
        timeouts: input.timeouts(),
        max_connections: input.max_connections as usize,
        decap: !input.no_decap,
        jobs: input.jobs(),
        end_order: order == Order::End,
        progress: progress.as_ref().map(|p| p.bytes.clone()),
    };
    let result = pipeline::analyze(&files, &options, observer, &mut |c| {
        let record = ConnRecord::new(&c);
        let kept = filter.as_ref().is_none_or(|f| f.matches(&record));
        each(&c, record, kept)
    });
    drop(progress);
    result
}

/// A progress bar on stderr for long inputs, only when stderr is a terminal: a thread redraws
/// it from the reader's byte count (bytes of the decompressed stream for gzip files, so it can
/// run past the file size there).
struct Progress {
    bytes: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Inputs smaller than this finish before a bar would help.
    const MIN_BYTES: u64 = 256 << 20;

    fn start(files: &[PathBuf], per_file: bool) -> Option<Progress> {
        if per_file || !io::stderr().is_terminal() {
            return None;
        }
        let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
        if total < Self::MIN_BYTES {
            return None;
        }
        let bytes = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template"),
        );
        let (b, d) = (bytes.clone(), done.clone());
        let ticker = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                bar.set_position(b.load(Ordering::Relaxed).min(total));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Some(Progress { bytes, done, ticker: Some(ticker) })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
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
