//! Which files to read: directories walked for captures, several files put in time order.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::capture::{CaptureReader, Record};
use crate::types::Timestamp;

/// Files named on the command line, with directories replaced by the captures inside them
/// (recursively, in name order). A file in a directory counts as a capture when it starts like
/// one (pcap, pcapng or gzip magic), whatever its name.
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = files.len();
            walk(p, &mut files);
            if files.len() == before {
                // Nothing to read there: the reader says so, naming the directory.
                files.push(p.clone());
            }
        } else {
            files.push(p.clone());
        }
    }
    files
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // An unreadable directory is reported by the reader like any unreadable input.
        files.push(dir.to_path_buf());
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, files);
        } else if looks_like_capture(&p) {
            files.push(p);
        }
    }
}

fn looks_like_capture(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let Ok(mut f) = File::open(path) else { return false };
    if f.read_exact(&mut magic).is_err() {
        return false;
    }
    matches!(
        magic,
        [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x0a, 0x0d, 0x0d, 0x0a]
            | [0x1f, 0x8b, _, _]
    )
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
