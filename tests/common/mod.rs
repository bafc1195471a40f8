//! Helpers shared by the integration tests: run the real binary, find the shared corpus.

#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn sockscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sockscope")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn jsonl(o: &Output) -> Vec<serde_json::Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// `../shared/captures`. Tests that call this are marked
/// `#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]`: build.rs sets that cfg
/// when the folder is absent, so they show as ignored rather than run without it.
pub fn shared_captures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    assert!(dir.is_dir(), "{} is absent (touch build.rs after adding it)", dir.display());
    dir
}

/// The captures of the shared corpus: files with oracle files beside them.
pub fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            dir.join(format!("{name}.capinfos.txt")).exists()
        })
        .collect();
    files.sort();
    files
}

pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// `proto orig_ip:port resp_ip:port` of a JSON connection record (Zeek's 5-tuple).
pub fn conn_key(c: &serde_json::Value) -> String {
    format!(
        "{} {}:{} {}:{}",
        c["proto"].as_str().unwrap(),
        c["orig"]["ip"].as_str().unwrap(),
        c["orig"]["port"],
        c["resp"]["ip"].as_str().unwrap(),
        c["resp"]["port"]
    )
}

/// A pcap file (microseconds, Ethernet) of `(microseconds since the epoch, frame)` records.
pub fn pcap_bytes(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out =
        vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    for (us, f) in frames {
        for word in [us / 1_000_000, us % 1_000_000, f.len() as u64, f.len() as u64] {
            out.extend_from_slice(&(word as u32).to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}
