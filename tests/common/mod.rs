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

/// An Ethernet frame of a TCP segment between 10.0.0.1:40000 (the client) and 10.0.0.2:80:
/// `flags` as letters (S, A, F, R, P), `len` bytes of payload.
pub fn tcp_frame(from_client: bool, flags: &str, seq: u32, ack: u32, len: usize, window: u16) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
    };
    let mut b =
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64).tcp(sp, dp, seq, window);
    for (letter, set) in [('S', 0), ('A', 1), ('F', 2), ('R', 3), ('P', 4)] {
        if flags.contains(letter) {
            b = match set {
                0 => b.syn(),
                1 => b.ack(ack),
                2 => b.fin(),
                3 => b.rst(),
                _ => b.psh(),
            };
        }
    }
    let mut out = Vec::new();
    b.write(&mut out, &vec![0x41; len]).unwrap();
    out
}
