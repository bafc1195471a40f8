//! What each subcommand does: run the analysis into the right consumer, then report.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::analyzer::Analyzer;
use crate::check::{Checker, Rules};
use crate::cli::{Config, Run, Wanted};
use crate::diff::{self, Tolerances};
use crate::flow::inventory::Inventory;
use crate::flow::Conn;
use crate::inputs;
use crate::pipeline::{Analysis, ObservedPacket, Observer};
use crate::report::clock::Clock;
use crate::report::record::ConnRecord;
use crate::report::summary::Summary;
use crate::report::table::Layout;
use crate::report::verdicts::{self, Suite};
use crate::report::writer::{ConnWriter, Order};
use crate::report::{self, ladder, table, Format, SocketFormat};

/// Runs a subcommand, writing to `out` (or to `--output`): 0 success, 1 a `check` rule failed,
/// 2 an input could not be read or `show` found no connection.
pub fn run(config: Config, out: &mut dyn Write) -> io::Result<ExitCode> {
    match config {
        Config::Conns { run, format, order, output, .. }
            if run.per_file && output.is_none() && format != Format::Table =>
        {
            conns_each_file(&run, format, order, out)
        }
        Config::Conns { run, format, order, wide, clock, output } => {
            let one =
                |run: &Run, out: &mut dyn Write, tty: bool| conns(run, format, order, wide, &clock, tty, out);
            dispatch(&run, output.as_deref(), format.extension(), out, &one)
        }
        Config::Sockets { run, format, output } => {
            let one = |run: &Run, out: &mut dyn Write, tty: bool| sockets(run, format, tty, out);
            dispatch(&run, output.as_deref(), format.extension(), out, &one)
        }
        Config::Summary { run, json, clock } => {
            let one = |run: &Run, out: &mut dyn Write, _tty: bool| summary(run, json, &clock, out);
            dispatch(&run, None, "summary.txt", out, &one)
        }
        Config::Show { run, wanted, absolute, clock, write_pcap } => {
            show(&run, wanted, absolute, &clock, write_pcap, out)
        }
        Config::Check { run, rules, junit, markdown } => check(&run, rules, junit, markdown, out),
        Config::Diff { old, new, analyzer, tolerances, json } => {
            diff(&old, &new, &analyzer, &tolerances, json, out)
        }
    }
}

/// The terminal's width in columns, 80 when it cannot be read.
fn terminal_width() -> usize {
    terminal_size::terminal_size().map_or(80, |(w, _)| usize::from(w.0))
}

/// The ladder of every connection `wanted` names; exit 2 when there is none.
fn show(
    run: &Run,
    wanted: Wanted,
    absolute: bool,
    clock: &Clock,
    write_pcap: Option<PathBuf>,
    out: &mut dyn Write,
) -> io::Result<ExitCode> {
    let wanted = match wanted {
        // A first pass finds the connections the filter keeps; the second draws them.
        Wanted::Matching => {
            let mut ids = std::collections::BTreeSet::new();
            analyze(run, None, &mut |_, record, kept| {
                if kept {
                    ids.insert(record.id);
                }
                Ok(())
            })?;
            Wanted::Ids(ids)
        }
        wanted => wanted,
    };
    let width = io::stdout().is_terminal().then(terminal_width);
    let mut packets: BTreeMap<u64, Vec<ObservedPacket>> = BTreeMap::new();
    let mut found: Vec<ConnRecord> = Vec::new();
    let mut total = 0;
    let mut observe = |seen: &ObservedPacket| {
        let (src, dst) = seen.sockets();
        if wanted.id(seen.conn_id) || wanted.pair(src, dst) {
            packets.entry(seen.conn_id).or_default().push(*seen);
        }
    };
    let analysis = analyze(run, Some(&mut observe), &mut |_, record, _| {
        total += 1;
        if wanted.id(record.id) || wanted.pair(record.orig, record.resp) {
            found.push(record);
        }
        Ok(())
    })?;
    let code = finish(&analysis);
    found.sort_unstable_by_key(|r| r.id);
    for (i, c) in found.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        ladder::write(out, c, packets.get(&c.id).map_or(&[], Vec::as_slice), absolute, clock, width)?;
    }
    if let (Some(path), false) = (&write_pcap, found.is_empty()) {
        let numbers =
            found.iter().flat_map(|c| packets.get(&c.id).into_iter().flatten()).map(|p| p.number).collect();
        let written = write_file(path, |w| crate::capture::write_frames(&run.paths[0], &numbers, w))?;
        eprintln!("sockscope: {written} packet(s) written to {}", path.display());
    }
    if found.is_empty() && code == ExitCode::SUCCESS {
        match wanted {
            Wanted::Id(id) => eprintln!("sockscope: no connection with id {id} ({total} connections)"),
            Wanted::Pair(a, b) => eprintln!("sockscope: no connection between {a} and {b}"),
            Wanted::Ids(_) | Wanted::Matching => eprintln!("sockscope: no connection matches the filter"),
        }
        return Ok(ExitCode::from(2));
    }
    Ok(code)
}

/// The rules' verdicts, with JUnit and Markdown reports when asked; exit 1 when one broke.
fn check(
    run: &Run,
    rules: Rules,
    junit: Option<PathBuf>,
    markdown: Option<PathBuf>,
    out: &mut dyn Write,
) -> io::Result<ExitCode> {
    let baseline = match &rules.baseline {
        Some((path, _)) => match diff_side(path, &run.analyzer)? {
            Some(side) => Some(side),
            None => return Ok(ExitCode::from(2)),
        },
        None => None,
    };
    let runs = match run.per_file {
        true => {
            expand_warning(&run.paths).into_iter().map(|f| Run { paths: vec![f], ..run.clone() }).collect()
        }
        false => vec![run.clone()],
    };
    let mut suites = Vec::new();
    let mut worst = ExitCode::SUCCESS;
    for one in &runs {
        let (suite, code) = check_one(one, &rules, baseline.clone())?;
        if code != ExitCode::SUCCESS {
            worst = code;
        }
        suites.push(suite);
    }
    verdicts::text(out, &suites, io::stdout().is_terminal() && table::color_enabled())?;
    if let Some(path) = junit {
        write_file(&path, |w| verdicts::junit(w, &suites))?;
    }
    if let Some(path) = markdown {
        // Appended: a CI job's step summary is one file that several steps write to.
        append_file(&path, |w| verdicts::markdown(w, &suites))?;
    }
    let failed = suites.iter().flat_map(|s| &s.verdicts).any(|v| !v.passed);
    Ok(if worst != ExitCode::SUCCESS {
        worst
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The rules' verdicts over one run, and the run's exit code.
fn check_one(run: &Run, rules: &Rules, baseline: Option<diff::Side>) -> io::Result<(Suite, ExitCode)> {
    let mut checker = Checker::new(rules.clone(), baseline);
    let analysis = analyze(run, None, &mut |_, record, kept| {
        if kept {
            checker.add(&record);
        }
        Ok(())
    })?;
    // No rule is held or broken on input that was never read.
    let unread = analysis
        .files
        .iter()
        .filter_map(|f| Some(format!("{}: {}", f.path.display(), f.error.as_ref()?)))
        .collect();
    let name = run.paths.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" ");
    Ok((Suite { name, verdicts: checker.finish(), unread }, finish(&analysis)))
}

/// `--per-file` to standard output in a machine format: each file on its own, one after another,
/// into one output that stays parseable (one header, one document), each record naming its file.
fn conns_each_file(run: &Run, format: Format, order: Order, out: &mut dyn Write) -> io::Result<ExitCode> {
    let uid_seed = if format == Format::Zeek { inputs::fingerprint(&run.paths) } else { 0 };
    let mut writer = writer(
        run,
        ConnWriter::new(out, report::exporter(format, Layout::Wide, false, &Clock::Utc, uid_seed)?, order)?,
    );
    let mut all = Analysis::default();
    for file in expand_warning(&run.paths) {
        let single = Run { paths: vec![file], ..run.clone() };
        let analysis = analyze(&single, None, &mut |_, record, kept| {
            if kept {
                writer.conn(record)
            } else {
                writer.skip(record.id)
            }
        })?;
        writer.next_input()?;
        all = all.merge(analysis);
    }
    writer.finish(&all)?;
    Ok(finish(&all))
}

/// The files of `paths`, saying which found in directories were passed over.
fn expand_warning(paths: &[PathBuf]) -> Vec<PathBuf> {
    let inputs = inputs::expand(paths);
    for path in &inputs.skipped {
        eprintln!("sockscope: warning: {}: {}", path.display(), inputs::SKIPPED);
    }
    inputs.files
}

/// What changed between two runs; exit 0 the same, 1 changed, 2 when a run cannot be read.
fn diff(
    old: &Path,
    new: &Path,
    analyzer: &Analyzer,
    tolerances: &Tolerances,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<ExitCode> {
    let (Some(a), Some(b)) = (diff_side(old, analyzer)?, diff_side(new, analyzer)?) else {
        return Ok(ExitCode::from(2));
    };
    let changes = diff::compare(&a, &b, tolerances);
    if json {
        report::diff::json(out, &a, &b, &changes)?;
    } else {
        report::diff::text(out, &a, &b, &changes)?;
    }
    Ok(if changes.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One run for `diff`: connection records as `conns --format jsonl` writes them, or a capture
/// analyzed; `None` when it cannot be read (said on stderr).
fn diff_side(path: &Path, analyzer: &Analyzer) -> io::Result<Option<diff::Side>> {
    let mut side = diff::Side::default();
    if let Some(lines) = json_lines(path) {
        for (n, line) in lines.enumerate() {
            let line = line.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<ConnRecord>(&line) {
                Ok(record) if analyzer.filter.as_ref().is_none_or(|f| f.matches(&record)) => {
                    side.add(&record)
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("sockscope: {}: line {}: not a connection record: {e}", path.display(), n + 1);
                    return Ok(None);
                }
            }
        }
        return Ok(Some(side));
    }
    let analysis = analyzer.run(&[path], None, &mut |_, record, kept| {
        if kept {
            side.add(&record);
        }
        Ok(())
    })?;
    Ok((finish(&analysis) == ExitCode::SUCCESS).then_some(side))
}

/// The lines of `path` when it holds JSON lines (its first byte opens an object).
fn json_lines(path: &Path) -> Option<io::Lines<io::BufReader<std::fs::File>>> {
    use std::io::{BufRead, Read};
    let mut first = [0u8; 1];
    let mut file = std::fs::File::open(path).ok()?;
    (file.read(&mut first).ok()? == 1 && first[0] == b'{').then_some(())?;
    let file = std::fs::File::open(path).ok()?;
    Some(io::BufReader::new(file).lines())
}

/// A run with threads to spare formats records on as many as it has tables.
fn writer<'a>(run: &Run, writer: ConnWriter<'a>) -> ConnWriter<'a> {
    match run.analyzer.options.jobs {
        0 | 1 => writer,
        jobs => writer.with_formatters(jobs),
    }
}

/// `tty`: the output is a terminal, so the table gets colors (unless NO_COLOR) and the
/// summary after it.
fn conns(
    run: &Run,
    format: Format,
    order: Order,
    wide: bool,
    clock: &Clock,
    tty: bool,
    out: &mut dyn Write,
) -> io::Result<ExitCode> {
    let with_summary = tty && format == Format::Table;
    let (mut summary, mut inventory) = (Summary::default(), Inventory::default());
    let uid_seed = if format == Format::Zeek { inputs::fingerprint(&run.paths) } else { 0 };
    let layout = match (wide, tty) {
        (false, true) => Layout::Compact(terminal_width()),
        _ => Layout::Wide,
    };
    let exporter = report::exporter(format, layout, tty && table::color_enabled(), clock, uid_seed)?;
    let mut writer = writer(run, ConnWriter::new(out, exporter, order)?);
    let analysis = analyze(run, None, &mut |c, record, kept| {
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
        summary.write(out, &analysis, &inventory.top(), clock)?;
    }
    Ok(finish(&analysis))
}

fn sockets(run: &Run, format: SocketFormat, tty: bool, out: &mut dyn Write) -> io::Result<ExitCode> {
    let mut inventory = Inventory::default();
    let analysis = analyze(run, None, &mut |c, _, kept| {
        if kept {
            inventory.add(c);
        }
        Ok(())
    })?;
    let color = tty && table::color_enabled();
    report::write_sockets(out, format, &inventory.finish(), &analysis, color)?;
    Ok(finish(&analysis))
}

fn summary(run: &Run, json: bool, clock: &Clock, out: &mut dyn Write) -> io::Result<ExitCode> {
    let mut summary = Summary::default();
    let mut inventory = Inventory::default();
    let analysis = analyze(run, None, &mut |c, record, kept| {
        if kept {
            summary.add(&record);
            inventory.add(c);
        }
        Ok(())
    })?;
    if json {
        summary.write_json(out, &analysis, &inventory.top())?;
    } else {
        summary.write(out, &analysis, &inventory.top(), clock)?;
    }
    Ok(finish(&analysis))
}

/// One file's outcome in `--per-file`: its exit code and, when printed to stdout, its output.
type FileResult = io::Result<(ExitCode, Vec<u8>)>;

/// Runs a command on the inputs as one timeline, writing to `out` or to the file `output`; or,
/// with `--per-file`, on each input file on its own, in parallel (`--jobs`), each output
/// named after its input: `DIR/NAME.EXT` with `--output DIR`, else printed one after another
/// under a `== FILE ==` line. The exit code is the worst of the files'.
fn dispatch(
    run: &Run,
    output: Option<&Path>,
    ext: &str,
    out: &mut dyn Write,
    one: &OneRun<'_>,
) -> io::Result<ExitCode> {
    if !run.per_file {
        return match output {
            None => one(run, out, io::stdout().is_terminal()),
            // Nothing can be read: the errors are reported, and no empty output left behind.
            Some(_) if !inputs::any_readable(&run.paths) => one(run, &mut io::sink(), false),
            Some(path) => write_file(path, |w| one(run, w, false)),
        };
    }
    let files = expand_warning(&run.paths);
    let targets = match output {
        Some(dir) => Some(output_paths(&run.paths, &files, dir, ext)?),
        None => None,
    };
    let results = each_file(run, &files, targets.as_deref(), one);
    let mut worst = ExitCode::SUCCESS;
    for (file, result) in files.iter().zip(results) {
        let (code, text) = result?;
        if output.is_none() {
            writeln!(out, "== {} ==", file.display())?;
            out.write_all(&text)?;
        }
        if code != ExitCode::SUCCESS {
            worst = code;
        }
    }
    Ok(worst)
}

/// Where each file's output goes under `dir`: a file found by walking a directory that was
/// named keeps its path below that directory, a file named itself its name, then `.ext`. Two
/// inputs that would write the same output are refused before any work.
fn output_paths(named: &[PathBuf], files: &[PathBuf], dir: &Path, ext: &str) -> io::Result<Vec<PathBuf>> {
    let mut targets: Vec<PathBuf> = Vec::with_capacity(files.len());
    for file in files {
        let below = named.iter().filter(|n| n.is_dir()).find_map(|n| file.strip_prefix(n).ok());
        let name = below.map(Path::to_path_buf).or_else(|| file.file_name().map(PathBuf::from));
        let name = name.unwrap_or_else(|| PathBuf::from("stdin"));
        let target = dir.join(format!("{}.{ext}", name.display()));
        if let Some(i) = targets.iter().position(|t| *t == target) {
            let why = format!(
                "{} and {} would both be written to {}: name their directories, or run them apart",
                files[i].display(),
                file.display(),
                target.display()
            );
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, why));
        }
        targets.push(target);
    }
    for parent in targets.iter().filter_map(|t| t.parent()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", parent.display())))?;
    }
    Ok(targets)
}

/// A command's work on one run, writing to `out`; `tty` when that is a terminal.
type OneRun<'a> = dyn Fn(&Run, &mut dyn Write, bool) -> io::Result<ExitCode> + Sync + 'a;

/// Runs `one` on each file on its own, `run.analyzer.options.jobs` files at a time, each on one
/// thread, writing to its target (`targets`, one per file) or into memory; the results come back
/// in the order of `files`.
fn each_file(run: &Run, files: &[PathBuf], targets: Option<&[PathBuf]>, one: &OneRun<'_>) -> Vec<FileResult> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, FileResult)>> = Mutex::default();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(file) = files.get(i) else { return };
        let mut single = Run { paths: vec![file.clone()], ..run.clone() };
        single.analyzer.options.jobs = 1;
        let result = match targets.map(|t| &t[i]) {
            Some(_) if !inputs::any_readable(&single.paths) => {
                one(&single, &mut io::sink(), false).map(|code| (code, Vec::new()))
            }
            Some(target) => write_file(target, |w| one(&single, w, false)).map(|code| (code, Vec::new())),
            None => {
                let mut buf = Vec::new();
                one(&single, &mut buf, false).map(|code| (code, buf))
            }
        };
        results.lock().expect("no worker panics").push((i, result));
    };
    std::thread::scope(|scope| {
        for _ in 0..run.analyzer.options.jobs.clamp(1, files.len().max(1)) {
            scope.spawn(work);
        }
    });
    let mut results = results.into_inner().expect("no worker panics");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Writes a side report (JUnit, Markdown); failing to is an error of the run.
fn write_file<T>(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<T>) -> io::Result<T> {
    write_to(std::fs::File::create(path), path, write)
}

/// Adds a side report at the end of a file, which is made if need be.
fn append_file<T>(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<T>) -> io::Result<T> {
    write_to(std::fs::OpenOptions::new().append(true).create(true).open(path), path, write)
}

fn write_to<T>(
    file: io::Result<std::fs::File>,
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
    let file = file.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut w = io::BufWriter::new(file);
    let value = write(&mut w)?;
    w.flush()?;
    Ok(value)
}

/// Runs the analysis; each ended connection goes to `each` with its record and whether it
/// passes the filters (`show` looks at every connection; output in id order must skip ids).
fn analyze(
    run: &Run,
    observer: Option<&mut Observer<'_>>,
    each: &mut dyn FnMut(&Conn, ConnRecord, bool) -> io::Result<()>,
) -> io::Result<Analysis> {
    let progress = Progress::start(&run.paths, run.per_file);
    let mut analyzer = run.analyzer.clone();
    analyzer.options.progress = progress.as_ref().map(|p| p.bytes.clone());
    // Each file on its own: its records name it.
    let file =
        run.per_file.then(|| run.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" "));
    let result = analyzer.run(&run.paths, observer, &mut |conn, mut record, kept| {
        record.file.clone_from(&file);
        each(conn, record, kept)
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

    fn start(paths: &[PathBuf], per_file: bool) -> Option<Progress> {
        if per_file || !io::stderr().is_terminal() {
            return None;
        }
        let total: u64 = inputs::expand(paths)
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
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
    for w in analysis.warnings() {
        eprintln!("sockscope: warning: {w}");
    }
    for f in &analysis.files {
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
