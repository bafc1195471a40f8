//! Which files to read: directories walked for captures, several files put in time order.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::capture::{CaptureReader, Record};
use crate::types::Timestamp;

/// Why a file found in a directory was passed over.
pub const SKIPPED: &str = "compressed, but not a capture: skipped";

/// What a list of inputs holds.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Files to read.
    pub files: Vec<PathBuf>,
    /// Compressed files found in a directory that hold no capture (a `logs.tar.gz`, a
    /// `conn.log.gz`): passed over, with a warning.
    pub skipped: Vec<PathBuf>,
}

/// Files named on the command line, with directories replaced by the captures inside them
/// (recursively, in name order). A file in a directory counts as a capture when it starts like
/// one (pcap or pcapng magic, also inside gzip), whatever its name; a file named on the command
/// line is read whatever it holds (the reader says when it is no capture).
pub fn expand(paths: &[PathBuf]) -> Inputs {
    let mut inputs = Inputs::default();
    for p in paths {
        if p.is_dir() {
            let before = inputs.files.len();
            walk(p, &mut inputs);
            if inputs.files.len() == before {
                // Nothing to read there: the reader says so, naming the directory.
                inputs.files.push(p.clone());
            }
        } else {
            inputs.files.push(p.clone());
        }
    }
    inputs
}

fn walk(dir: &Path, inputs: &mut Inputs) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // An unreadable directory is reported by the reader like any unreadable input.
        inputs.files.push(dir.to_path_buf());
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, inputs);
            continue;
        }
        match sniff(&p) {
            Sniffed::Capture => inputs.files.push(p),
            Sniffed::GzipOfSomethingElse => inputs.skipped.push(p),
            Sniffed::Other => {}
        }
    }
}

enum Sniffed {
    Capture,
    /// gzip, but not of a capture.
    GzipOfSomethingElse,
    Other,
}

fn sniff(path: &Path) -> Sniffed {
    let Ok(f) = File::open(path) else { return Sniffed::Other };
    let mut f = std::io::BufReader::new(f);
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() {
        return Sniffed::Other;
    }
    if is_capture_magic(magic) {
        return Sniffed::Capture;
    }
    if magic[..2] != [0x1f, 0x8b] {
        return Sniffed::Other;
    }
    let gz = std::io::Read::chain(&magic[..], f);
    let mut inner = [0u8; 4];
    match flate2::read::MultiGzDecoder::new(gz).read_exact(&mut inner) {
        Ok(()) if is_capture_magic(inner) => Sniffed::Capture,
        _ => Sniffed::GzipOfSomethingElse,
    }
}

fn is_capture_magic(magic: [u8; 4]) -> bool {
    matches!(
        magic,
        [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x0a, 0x0d, 0x0d, 0x0a]
    )
}

/// Whether any of the inputs can be read as a capture (standard input is taken to be one).
pub fn any_readable(paths: &[PathBuf]) -> bool {
    expand(paths).files.iter().any(|f| f.as_os_str() == "-" || CaptureReader::open(f).is_ok())
}

/// A number that tells these inputs apart from others: a hash of each file's length and first
/// 64 KiB (its header and first packets), the same for the same files. Standard input cannot be
/// read twice, so with `-` it is random.
pub fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut hash = std::hash::DefaultHasher::new();
    for path in expand(paths).files {
        if path.as_os_str() == "-" {
            return std::hash::BuildHasher::build_hasher(&std::collections::hash_map::RandomState::new())
                .finish();
        }
        let mut start = Vec::with_capacity(64 << 10);
        if let Ok(f) = File::open(&path) {
            let len = f.metadata().map_or(0, |m| m.len());
            let _ = f.take(64 << 10).read_to_end(&mut start);
            (len, start).hash(&mut hash);
        }
    }
    hash.finish()
}

/// Several files as one timeline: the rotated pieces of a capture go in order of their first
/// packet, whatever their names. Files whose first packet cannot be read keep their place after
/// the others (the reader reports them); stdin cannot be peeked at, so with `-` the order given
/// is kept.
pub fn timeline(files: Vec<PathBuf>) -> Vec<PathBuf> {
    if files.len() < 2 || files.iter().any(|f| f.as_os_str() == "-") {
        return files;
    }
    let mut keyed: Vec<(Option<Timestamp>, usize, PathBuf)> =
        files.into_iter().enumerate().map(|(i, f)| (first_timestamp(&f), i, f)).collect();
    keyed.sort_by_key(|(ts, i, _)| (ts.is_none(), *ts, *i));
    keyed.into_iter().map(|(_, _, f)| f).collect()
}

fn first_timestamp(path: &Path) -> Option<Timestamp> {
    let mut reader = CaptureReader::open(path).ok()?;
    loop {
        match reader.next_record().ok()?? {
            Record::Frame(f) => return Some(f.ts),
            Record::Bad(_) => continue,
        }
    }
}
