//! The library API as a Rust program uses it: the same records as the command line, errors
//! with the command line's messages, and an iterator that can be dropped early.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use sockscope::report::jsonl;
use sockscope::{Analyzer, Error, Filter, Options};

/// The records of `analyzer` as the JSON lines `conns --format jsonl` prints.
fn lines(analyzer: &Analyzer, input: &str) -> String {
    let mut out = Vec::new();
    for conn in analyzer.connections(&[input]) {
        jsonl::conn_line(&mut out, &conn.expect("a readable capture"));
    }
    String::from_utf8(out).unwrap()
}

/// The samples with connections of every kind: TCP teardowns, UDP and port reuse, a cut
/// snapshot length, IPv6.
fn sample_files() -> Vec<std::path::PathBuf> {
    ["teardowns.pcap", "udp_and_reuse.pcapng", "snaplen96.pcap.gz", "ipv6.pcap"]
        .map(|n| samples().join(n))
        .into()
}

fn same_as_the_command_line(files: &[std::path::PathBuf]) {
    assert!(!files.is_empty());
    for f in files {
        let f = f.to_str().unwrap();
        let cli = sockscope(&["conns", "--format", "jsonl", f]);
        assert_eq!(cli.status.code(), Some(0), "{f}");
        for jobs in [1, 3] {
            let analyzer = Analyzer::new(Options { jobs, ..Options::default() });
            assert_eq!(lines(&analyzer, f), stdout(&cli), "{f} with {jobs} thread(s)");
        }
    }
}

#[test]
fn connections_are_the_command_lines_on_every_sample() {
    same_as_the_command_line(&sample_files());
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn connections_are_the_command_lines_on_every_shared_capture() {
    same_as_the_command_line(&capture_files(&shared_captures()));
}

/// The records of a run as JSON lines in id order, each id (and tunnel parent) replaced by its
/// rank among the run's ids; and whether the ids were 1, 2, 3 ... already.
fn ranked_lines(analyzer: &Analyzer, input: &str) -> (String, bool) {
    let mut records = Vec::new();
    let run = analyzer.run(&[input], None, &mut |_, record, _| {
        records.push(record);
        Ok(())
    });
    run.expect("the run goes on past a bad input");
    records.sort_unstable_by_key(|r| r.id);
    let rank: HashMap<u64, u64> = records.iter().zip(1..).map(|(r, n)| (r.id, n)).collect();
    let dense = rank.iter().all(|(id, n)| id == n);
    let mut out = Vec::new();
    for mut r in records {
        r.id = rank[&r.id];
        for parent in r.tunnel.iter_mut().flat_map(|t| &mut t.parents) {
            *parent = rank[parent];
        }
        jsonl::conn_line(&mut out, &r);
    }
    (String::from_utf8(out).unwrap(), dense)
}

/// Unnumbered runs (`summary`, `sockets`) see the same connections, their ids in the same order.
fn unnumbered_ids_keep_the_order(files: &[std::path::PathBuf]) {
    let mut gaps = 0;
    for f in files {
        let f = f.to_str().unwrap();
        let numbered = Analyzer::new(Options { jobs: 3, ..Options::default() });
        let unnumbered = Analyzer::new(Options { jobs: 3, numbered: false, ..Options::default() });
        let (expected, dense) = ranked_lines(&numbered, f);
        assert!(dense, "{f}: numbered 1, 2, 3 ...");
        let (lines, dense) = ranked_lines(&unnumbered, f);
        assert_eq!(lines, expected, "{f}");
        gaps += usize::from(!dense);
    }
    assert!(gaps > 0, "several tables leave gaps in the ids they make");
}

#[test]
fn unnumbered_ids_keep_the_order_on_every_sample() {
    unnumbered_ids_keep_the_order(&sample_files());
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn unnumbered_ids_keep_the_order_on_every_shared_capture() {
    unnumbered_ids_keep_the_order(&capture_files(&shared_captures()));
}

#[test]
fn a_filter_and_end_order_work_as_on_the_command_line() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let cli = sockscope(&["conns", "--format", "jsonl", "--order", "end", "--filter", "state in SF,REJ", f]);
    let analyzer = Analyzer::new(Options { end_order: true, ..Options::default() })
        .with_filter(Filter::parse("state in SF,REJ").unwrap());
    assert_eq!(lines(&analyzer, f), stdout(&cli));
}

#[test]
fn an_unreadable_input_ends_the_records_with_the_command_lines_error() {
    let good = samples().join("teardowns.pcap");
    let bad = samples().join("README.md");
    let cli = sockscope(&["conns", "--format", "jsonl", bad.to_str().unwrap()]);
    let mut conns = Analyzer::default().connections(&[&good, &bad]);
    let records: Vec<_> = conns.by_ref().take_while(Result::is_ok).collect();
    assert_eq!(records.len(), 12, "the readable file's connections first");
    assert!(conns.next().is_none(), "the error is the last item");
    let err = Analyzer::default().connections(&[&bad]).find_map(Result::err).expect("an error");
    assert!(matches!(err, Error::Input { .. }));
    assert_eq!(format!("sockscope: {err}\n"), stderr(&cli));
    assert_eq!(Analyzer::default().summary(&[&bad]).err().map(|e| e.to_string()), Some(err.to_string()));
}

#[test]
fn the_accounting_is_there_once_every_connection_was_read() {
    let mut conns = Analyzer::default().connections(&[samples().join("udp_and_reuse.pcapng")]);
    assert!(conns.analysis().is_none());
    let n = conns.by_ref().count();
    let analysis = conns.analysis().expect("read to the end");
    assert!(n > 0 && analysis.accounting.balances() && analysis.accounting.total > n as u64);
}

/// `copies` copies of a pcap's records (little-endian, as the samples are written), each ten
/// seconds after the one before, so the connections of one have ended when the next begins.
fn repeated(pcap: &[u8], copies: u32) -> Vec<u8> {
    let mut out = pcap[..24].to_vec();
    for copy in 0..copies {
        let mut at = 24;
        while at + 16 <= pcap.len() {
            let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
            let secs = u32::from_le_bytes(pcap[at..at + 4].try_into().unwrap()) + copy * 10;
            out.extend_from_slice(&secs.to_le_bytes());
            out.extend_from_slice(&pcap[at + 4..at + 16 + len]);
            at += 16 + len;
        }
    }
    out
}

#[test]
fn dropping_the_iterator_early_stops_the_analysis() {
    let f = std::env::temp_dir().join(format!("sockscope-library-{}.pcap", std::process::id()));
    // Far more connections than the hand-over between the threads holds.
    std::fs::write(&f, repeated(&std::fs::read(samples().join("teardowns.pcap")).unwrap(), 3000)).unwrap();
    let size = std::fs::metadata(&f).unwrap().len();
    let read = Arc::new(AtomicU64::new(0));
    // In end order, so that records flow from the start (in first-seen order a connection
    // open to the end holds every later one back).
    let analyzer =
        Analyzer::new(Options { progress: Some(read.clone()), end_order: true, ..Options::default() });
    let mut conns = analyzer.connections(&[&f]);
    assert!(matches!(conns.next(), Some(Ok(_))));
    drop(conns);
    let read = read.load(Ordering::Relaxed);
    assert!(read > 0 && read < size / 2, "read {read} of {size} bytes before stopping");
    std::fs::remove_file(&f).unwrap();
}
