//! The binary's command line: exit codes and the one-line errors users see.

mod common;

use std::io::Write;

use common::*;

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sockscope-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path
}

#[test]
fn not_a_capture_is_exit_2_naming_file_and_reason() {
    let f = temp_file("notes.txt", b"hello, this is text\n");
    let out = sockscope(&["conns", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("notes.txt") && err.contains("not a pcap or pcapng file"), "{err}");
}

#[test]
fn missing_file_empty_file_and_directory() {
    let out = sockscope(&["conns", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/x.pcap: no such file"), "{}", stderr(&out));

    let empty = temp_file("empty.pcap", b"");
    let out = sockscope(&["conns", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("empty.pcap: empty file"), "{}", stderr(&out));

    let dir = std::env::temp_dir().join(format!("sockscope-empty-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = sockscope(&["conns", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a directory with no capture files in it"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn bad_file_among_good_ones_still_analyzes_the_others() {
    let dir = shared_captures();
    let good = dir.join("zeek_http_get.pcap");
    let bad = temp_file("bad.pcap", b"\xd4\xc3\xb2\xa1garbage");
    let out = sockscope(&["conns", "--format", "jsonl", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.pcap"), "{}", stderr(&out));
    assert_eq!(jsonl(&out).len(), 1, "the good file's connection is still reported");
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn stdin_is_read_with_dash() {
    let dir = shared_captures();
    let bytes = std::fs::read(dir.join("zeek_http_get.pcap")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(["conns", "--format", "jsonl", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(jsonl(&out)[0]["conn_state"], "SF");
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn check_exit_codes_both_ways() {
    let dir = shared_captures();
    let f = dir.join("zeek_tcp_syn-then-rst.pcap");
    let f = f.to_str().unwrap();
    let failing = sockscope(&["check", f, "--fail-on-state", "RSTOS0"]);
    assert_eq!(failing.status.code(), Some(1), "{}", stdout(&failing));
    assert!(
        stdout(&failing).contains("FAIL --fail-on-state RSTOS0: 1 of 1 connections are RSTOS0"),
        "{}",
        stdout(&failing)
    );
    let passing = sockscope(&["check", f, "--fail-on-state", "REJ", "--fail-on-state", "S0"]);
    assert_eq!(passing.status.code(), Some(0), "{}", stdout(&passing));
    let usage = sockscope(&["check", f, "--fail-on-state", "NOPE"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn every_format_prints_the_same_connections() {
    let dir = shared_captures();
    let f = dir.join("zeek_ftp_ipv4.pcap");
    let f = f.to_str().unwrap();
    let lines = jsonl(&sockscope(&["conns", "--format", "jsonl", f]));
    let doc: serde_json::Value =
        serde_json::from_slice(&sockscope(&["conns", "--format", "json", f]).stdout).unwrap();
    assert_eq!(doc["connections"].as_array().unwrap(), &lines);
    let csv = stdout(&sockscope(&["conns", "--format", "csv", f]));
    assert_eq!(csv.lines().count(), lines.len() + 1);
    assert!(csv.starts_with("id,proto,orig_ip,orig_port,resp_ip,resp_port,conn_state,history,"));
    let table = stdout(&sockscope(&["conns", f]));
    assert_eq!(table.lines().count(), lines.len() + 1);
    for c in &lines {
        assert!(table.contains(c["history"].as_str().unwrap()));
    }
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn show_prints_one_line_per_packet() {
    let dir = shared_captures();
    let f = dir.join("zeek_http_get.pcap");
    let c = &jsonl(&sockscope(&["conns", "--format", "jsonl", f.to_str().unwrap()]))[0];
    let packets = c["orig_pkts"].as_u64().unwrap() + c["resp_pkts"].as_u64().unwrap();
    let out = sockscope(&["show", f.to_str().unwrap(), "--conn", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let ladder: Vec<&str> = text.lines().filter(|l| l.contains("------------")).collect();
    assert_eq!(ladder.len() as u64, packets, "{text}");
    assert!(ladder[0].contains("S seq=0") && ladder[0].ends_with('>'), "{}", ladder[0]);
    let missing = sockscope(&["show", f.to_str().unwrap(), "--conn", "99"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn closed_pipe_is_a_quiet_exit() {
    let dir = shared_captures();
    let f = dir.join("ndpi_synscan.pcap");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(["conns", "--format", "jsonl", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once, like `| head -0`
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty());
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn zeek_format_has_conn_log_headers_and_one_row_per_connection() {
    let dir = shared_captures();
    let f = dir.join("zeek_ftp_ipv4.pcap");
    let f = f.to_str().unwrap();
    let lines = jsonl(&sockscope(&["conns", "--format", "jsonl", f]));
    let text = stdout(&sockscope(&["conns", "--format", "zeek", f]));
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(headers[0], "#separator \\x09");
    assert!(headers.contains(&"#path\tconn"));
    let fields = headers.iter().find(|h| h.starts_with("#fields\t")).unwrap();
    let names: Vec<&str> = fields.split('\t').skip(1).collect();
    for required in [
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "conn_state",
        "history",
        "orig_pkts",
        "resp_pkts",
    ] {
        assert!(names.contains(&required), "{required} in {fields}");
    }
    let rows: Vec<Vec<&str>> =
        text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), lines.len());
    for (row, c) in rows.iter().zip(&lines) {
        assert_eq!(row.len(), names.len());
        let col = |n: &str| row[names.iter().position(|x| *x == n).unwrap()];
        assert_eq!(col("conn_state"), c["conn_state"]);
        assert_eq!(col("history"), c["history"]);
        assert_eq!(col("orig_pkts"), c["orig_pkts"].to_string());
    }
    let sockets = sockscope(&["sockets", "--format", "zeek", f]);
    assert_eq!(sockets.status.code(), Some(2));
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn max_connections_bounds_the_table_and_says_so() {
    let dir = shared_captures();
    let f = dir.join("ndpi_synscan.pcap");
    let out = sockscope(&["conns", "--format", "jsonl", "--max-connections", "100", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("ended early to stay within --max-connections"), "{}", stderr(&out));
    let conns = jsonl(&out);
    let evicted = conns.iter().filter(|c| c["end"] == "evicted").count();
    assert!(evicted > 1000, "a SYN scan over 100 slots evicts most: {evicted}");
    let pkts: u64 =
        conns.iter().map(|c| c["orig_pkts"].as_u64().unwrap() + c["resp_pkts"].as_u64().unwrap()).sum();
    assert_eq!(pkts, 2011, "every packet still belongs to a connection");
    // Which connections end early is decided over all of them: the same for any thread count.
    for jobs in ["1", "3"] {
        let more = sockscope(&[
            "conns",
            "--format",
            "jsonl",
            "--max-connections",
            "100",
            "--jobs",
            jobs,
            f.to_str().unwrap(),
        ]);
        assert_eq!(stdout(&more), stdout(&out), "--jobs {jobs}");
    }
}

#[test]
fn end_order_streams_the_same_connections() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let first_seen = jsonl(&sockscope(&["conns", "--format", "jsonl", f]));
    let ids: Vec<u64> = first_seen.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let mut by_end = jsonl(&sockscope(&["conns", "--format", "jsonl", "--order", "end", f]));
    let end_ids: Vec<u64> = by_end.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_ne!(end_ids, ids, "closed and reset connections end before older ones still open");
    by_end.sort_by_key(|c| c["id"].as_u64());
    assert_eq!(by_end, first_seen);
}

/// `--jobs 2` and `3` split the connections over that many tables by address pair, and
/// `--order end` with two jobs runs one table in three stages: every one of them must give
/// exactly what one thread gives (records, numbering, tunnel parents, accounting, warnings).
fn one_thread_and_several_threads_agree(files: &[std::path::PathBuf]) {
    for f in files {
        let f = f.to_str().unwrap();
        for order in ["first-seen", "end"] {
            let run = |jobs| sockscope(&["conns", "--format", "json", "--order", order, "--jobs", jobs, f]);
            let one = run("1");
            for jobs in ["2", "3"] {
                let more = run(jobs);
                assert_eq!(one.status.code(), more.status.code(), "{f} --jobs {jobs} --order {order}");
                assert_eq!(stdout(&one), stdout(&more), "{f} --jobs {jobs} --order {order}");
                assert_eq!(stderr(&one), stderr(&more), "{f} --jobs {jobs} --order {order}");
            }
        }
    }
}

#[test]
fn one_thread_and_several_threads_agree_on_every_sample() {
    let names = ["teardowns.pcap", "udp_and_reuse.pcapng", "snaplen96.pcap.gz", "ipv6.pcap"];
    one_thread_and_several_threads_agree(&names.map(|n| samples().join(n)));
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn one_thread_and_several_threads_agree_on_every_shared_capture() {
    one_thread_and_several_threads_agree(&capture_files(&shared_captures()));
}

#[test]
fn check_rules_from_flags_and_toml_with_junit_and_markdown() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let dir = std::env::temp_dir().join(format!("sockscope-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "max_state = { REJ = \"5%\", S0 = 1 }\nhandshakes_complete = true\nexpect_sockets = [\"tcp/127.0.0.1:9001\"]\n",
    )
    .unwrap();
    let junit = dir.join("junit.xml");
    let md = dir.join("summary.md");
    let out = sockscope(&[
        "check",
        f,
        "--rules",
        rules.to_str().unwrap(),
        "--forbid-socket",
        "tcp/127.0.0.1:9005",
        "--junit",
        junit.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("FAIL --max-state REJ=5%: 1 of 12 connections (8.3%) are REJ"), "{text}");
    assert!(text.contains("ok   --max-state S0=1: 1 of 12 connections (8.3%) are S0"), "{text}");
    assert!(text.contains("FAIL --handshakes-complete: 2 of 12 connections"), "{text}");
    assert!(text.contains("ok   --expect-socket tcp/127.0.0.1:9001"), "{text}");
    assert!(text.contains("FAIL --forbid-socket tcp/127.0.0.1:9005"), "{text}");
    assert!(text.contains("2 of 5 rules held, 3 broken"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuites name="sockscope check" tests="5" failures="3" errors="0">"#),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure ").count(), 3);
    assert!(
        xml.contains("5 tcp 127.0.0.1:40005 -&gt; 127.0.0.1:9005 REJ Sr"),
        "a failure names its connections: {xml}"
    );
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("| **FAIL** | `--max-state REJ=5%` |"), "{markdown}");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "max_state = { NOPE = 1 }\n").unwrap();
    let out = sockscope(&["check", f, "--rules", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml: unknown conn_state 'NOPE'"), "{}", stderr(&out));
    let passing = sockscope(&["check", f, "--max-state", "REJ=1", "--max-rtt", "1"]);
    assert_eq!(passing.status.code(), Some(0), "{}", stdout(&passing));
}

#[test]
fn filters_apply_to_every_subcommand() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let conns = jsonl(&sockscope(&["conns", "--format", "jsonl", "--filter", "state in RSTO,RSTR", f]));
    let states: Vec<&str> = conns.iter().map(|c| c["conn_state"].as_str().unwrap()).collect();
    assert_eq!(states, ["RSTO", "RSTR", "RSTR"]);
    let two =
        jsonl(&sockscope(&["conns", "--format", "jsonl", "--filter", "tcp", "--filter", "port 9007", f]));
    assert_eq!(two.len(), 2);
    let summary = stdout(&sockscope(&["summary", "--filter", "kind=four_way", f]));
    assert!(summary.contains("connections: 4 (4 tcp, 0 udp)"), "{summary}");
    let sockets = jsonl(&sockscope(&["sockets", "--format", "jsonl", "--filter", "resp.port=9001", f]));
    assert_eq!(sockets.len(), 2);
    let check = sockscope(&["check", f, "--filter", "not state=REJ", "--fail-on-state", "REJ"]);
    assert_eq!(check.status.code(), Some(0));
    let bad = sockscope(&["conns", "--filter", "port http", f]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("'http' is not a port number"), "{}", stderr(&bad));
}

/// Splits a little-endian microsecond pcap into two files at record `at` (rotated pieces).
fn split_pcap(bytes: &[u8], at: usize) -> (Vec<u8>, Vec<u8>) {
    let (header, mut rest) = bytes.split_at(24);
    let (mut first, mut second) = (header.to_vec(), header.to_vec());
    let mut n = 0;
    while rest.len() >= 16 {
        let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (record, tail) = rest.split_at(16 + len);
        if n < at { &mut first } else { &mut second }.extend_from_slice(record);
        rest = tail;
        n += 1;
    }
    (first, second)
}

#[test]
fn rotated_pieces_are_one_timeline_in_any_order() {
    let whole = std::fs::read(samples().join("teardowns.pcap")).unwrap();
    let (a, b) = split_pcap(&whole, 57);
    let dir = std::env::temp_dir().join(format!("sockscope-rotated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Named so that name order is the wrong time order.
    let (early, late) = (dir.join("z-part.pcap"), dir.join("a-part.pcap"));
    std::fs::write(&early, a).unwrap();
    std::fs::write(&late, b).unwrap();
    let expected = jsonl(&sockscope(&[
        "conns",
        "--format",
        "jsonl",
        samples().join("teardowns.pcap").to_str().unwrap(),
    ]));
    for args in [vec![late.to_str().unwrap(), early.to_str().unwrap()], vec![dir.to_str().unwrap()]] {
        let mut argv = vec!["conns", "--format", "jsonl"];
        argv.extend(args);
        let got = jsonl(&sockscope(&argv));
        assert_eq!(got, expected, "a connection spanning the two pieces stays one");
    }
}

#[test]
fn per_file_outputs_are_named_after_each_input() {
    let out_dir = std::env::temp_dir().join(format!("sockscope-perfile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = sockscope(&[
        "conns",
        "--per-file",
        "--format",
        "csv",
        "-o",
        out_dir.to_str().unwrap(),
        samples().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ipv6.pcap.csv",
            "services.pcap.csv",
            "snaplen96.pcap.gz.csv",
            "teardowns.pcap.csv",
            "udp_and_reuse.pcapng.csv"
        ]
    );
    let rows = std::fs::read_to_string(out_dir.join("teardowns.pcap.csv")).unwrap().lines().count();
    assert_eq!(rows, 1 + 12, "header and one row per connection, ids from 1 in each file");
    let printed = stdout(&sockscope(&["summary", "--per-file", samples().to_str().unwrap()]));
    assert_eq!(printed.matches("== ").count(), 5, "{printed}");
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_output_reads_back_with_the_same_rows() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = samples().join("udp_and_reuse.pcapng");
    let path = std::env::temp_dir().join(format!("sockscope-{}.parquet", std::process::id()));
    let out = sockscope(&["conns", "--format", "parquet", "-o", path.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = jsonl(&sockscope(&["conns", "--format", "jsonl", f.to_str().unwrap()]));
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows() as usize, lines.len());
    let columns: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let csv_header = stdout(&sockscope(&["conns", "--format", "csv", f.to_str().unwrap()]));
    assert_eq!(columns.join(","), csv_header.lines().next().unwrap(), "the CSV's columns");
    let rows: Vec<_> = reader.get_row_iter(None).unwrap().map(|r| r.unwrap()).collect();
    for (row, line) in rows.iter().zip(&lines) {
        let text = row.to_string();
        assert!(text.contains(&format!("id: {}", line["id"])), "{text}");
        assert!(
            text.contains(&format!("conn_state: \"{}\"", line["conn_state"].as_str().unwrap())),
            "{text}"
        );
    }
}

#[test]
fn files_whose_times_overlap_are_merged_packet_by_packet() {
    // Every other record to each file: two captures of one link, as from two interfaces.
    let whole = std::fs::read(samples().join("teardowns.pcap")).unwrap();
    let (header, mut rest) = whole.split_at(24);
    let (mut odd, mut even) = (header.to_vec(), header.to_vec());
    let mut n = 0;
    while rest.len() >= 16 {
        let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (record, tail) = rest.split_at(16 + len);
        if n % 2 == 0 { &mut even } else { &mut odd }.extend_from_slice(record);
        rest = tail;
        n += 1;
    }
    let dir = std::env::temp_dir().join(format!("sockscope-interleaved-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("even.pcap"), even).unwrap();
    std::fs::write(dir.join("odd.pcap"), odd).unwrap();
    let expected = jsonl(&sockscope(&[
        "conns",
        "--format",
        "jsonl",
        samples().join("teardowns.pcap").to_str().unwrap(),
    ]));
    for jobs in ["1", "2"] {
        let got = jsonl(&sockscope(&["conns", "--format", "jsonl", "--jobs", jobs, dir.to_str().unwrap()]));
        assert_eq!(got, expected, "--jobs {jobs}");
    }
}

/// A TCP connection idle for 400 s in the middle: `--tcp-timeout` decides whether that gap
/// ends it, above Zeek's 300 s default as well as below it.
#[test]
fn tcp_timeout_reaches_established_connections() {
    let segment = |from_client: bool, flags: &str, seq: u32, ack: u32, len: usize| {
        tcp_frame(from_client, flags, seq, ack, len, 8192)
    };
    let t0 = 1_700_000_000_000_000u64;
    let s = |secs: u64| t0 + secs * 1_000_000;
    let frames = [
        (s(0), segment(true, "S", 100, 0, 0)),
        (s(0) + 1, segment(false, "SA", 500, 101, 0)),
        (s(0) + 2, segment(true, "A", 101, 501, 0)),
        (s(1), segment(true, "A", 101, 501, 10)),
        (s(1) + 1, segment(false, "A", 501, 111, 0)),
        (s(401), segment(true, "A", 111, 501, 10)),
        (s(401) + 1, segment(false, "A", 501, 121, 0)),
        (s(402), segment(true, "FA", 121, 501, 0)),
        (s(402) + 1, segment(false, "FA", 501, 122, 0)),
        (s(402) + 2, segment(true, "A", 122, 502, 0)),
    ];
    let f = temp_file("idle400.pcap", &pcap_bytes(&frames));
    let f = f.to_str().unwrap();
    let states = |timeout: &str| -> Vec<String> {
        let out = sockscope(&["conns", "--format", "jsonl", "--tcp-timeout", timeout, f]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        jsonl(&out).iter().map(|c| c["conn_state"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(states("600"), ["SF"], "400 s idle is within a 600 s timeout");
    assert_eq!(states("300").len(), 2, "400 s idle ends the connection at Zeek's default");
    assert_eq!(states("100").len(), 2);
}

/// Each subcommand accepts only the options it honours: the rest are usage errors (exit 2,
/// naming the option), before any input is read.
#[test]
fn options_a_subcommand_does_not_honour_are_refused() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    for (args, word) in [
        (vec!["show", "--conn", "1", "--per-file", f], "--per-file"),
        (vec!["show", "--conn", "1", "--filter", "tcp", f], "--filter"),
        (vec!["summary", "--output", "x", f], "--output"),
        (vec!["sockets", "--format", "zeek", f], "zeek"),
        (vec!["sockets", "--format", "parquet", f], "parquet"),
        (vec!["conns", "--tcp-timeout=-1", f], "-1"),
        (vec!["conns", "--udp-timeout", "NaN", f], "NaN"),
    ] {
        let out = sockscope(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stdout(&out).is_empty(), "{args:?}");
        assert!(stderr(&out).contains(word), "{args:?}: {}", stderr(&out));
    }
    // What each accepts still works.
    for args in [
        vec!["summary", "--per-file", "--filter", "tcp", f],
        vec!["sockets", "--per-file", "--filter", "udp", f],
        vec!["check", "--filter", "tcp", "--fail-on-state", "S0", f],
        vec!["conns", "--tcp-timeout", "0.5", "--udp-timeout", "0", f],
    ] {
        let out = sockscope(&args);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {}", stderr(&out));
    }
}

/// A rules file that cannot be read is refused before the capture is read.
#[test]
fn a_bad_rules_file_is_refused_before_reading() {
    let out = sockscope(&["check", "--rules", "/nonexistent/rules.toml", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("rules.toml") && !err.contains("capture.pcap"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A CI gate never reports green on input it could not read: every rule is an error in the
/// text, JUnit and Markdown reports, and the exit code is 2.
#[test]
fn check_on_an_unreadable_capture_reports_errors_not_passes() {
    let dir = std::env::temp_dir().join(format!("sockscope-check-unread-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (junit, md) = (dir.join("junit.xml"), dir.join("summary.md"));
    let missing = dir.join("missing.pcap");
    let out = sockscope(&[
        "check",
        missing.to_str().unwrap(),
        "--max-state",
        "REJ=0",
        "--junit",
        junit.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(!text.contains("ok ") && !text.contains("held"), "{text}");
    assert!(text.contains("ERROR --max-state REJ=0: not checked"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"tests="1" failures="0" errors="1""#), "{xml}");
    assert!(
        xml.contains("<error message=\"not checked: cannot read") && xml.contains("missing.pcap"),
        "{xml}"
    );
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("| **ERROR** | `--max-state REJ=0` | not checked |"), "{markdown}");
    assert!(!markdown.contains("pass"), "{markdown}");
}

#[test]
fn check_needs_a_rule_and_can_require_connections() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let none = sockscope(&["check", f]);
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("check needs at least one rule"), "{}", stderr(&none));
    let empty = temp_file("empty.pcap", &pcap_bytes(&[]));
    let out = sockscope(&["check", empty.to_str().unwrap(), "--min-connections", "1"]);
    assert_eq!(out.status.code(), Some(1), "an empty capture proves nothing: {}", stdout(&out));
    assert!(stdout(&out).contains("FAIL --min-connections 1: 0 connections, at least 1 expected"));
    let rules = temp_file("min.toml", b"min_connections = 12\n");
    let out = sockscope(&["check", f, "--rules", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn socket_rules_take_wildcards_and_networks() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let out = sockscope(&["check", f, "--forbid-socket", "tcp/*:9005", "--forbid-socket", "udp/0.0.0.0:53"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL --forbid-socket tcp/*:9005")
            && text.contains("ok   --forbid-socket udp/0.0.0.0/0:53"),
        "{text}"
    );
    let out = sockscope(&["check", f, "--expect-socket", "tcp/127.0.0.0/8:*"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn markdown_reports_are_appended() {
    let f = samples().join("teardowns.pcap");
    let md = std::env::temp_dir().join(format!("sockscope-step-summary-{}.md", std::process::id()));
    std::fs::write(&md, "# earlier step\n").unwrap();
    for _ in 0..2 {
        sockscope(&[
            "check",
            f.to_str().unwrap(),
            "--max-state",
            "REJ=1",
            "--markdown",
            md.to_str().unwrap(),
        ]);
    }
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# earlier step\n"), "{text}");
    assert_eq!(text.matches("## sockscope check").count(), 2, "{text}");
    std::fs::remove_file(&md).unwrap();
}

/// Walking a directory, a compressed file that holds no capture is passed over with a warning;
/// named on the command line, it is an error.
#[test]
fn a_directory_walk_skips_compressed_files_that_are_no_captures() {
    use std::io::Write as _;
    let dir = std::env::temp_dir().join(format!("sockscope-walk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gzip = |name: &str, bytes: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        std::fs::write(dir.join(name), gz.finish().unwrap()).unwrap();
    };
    gzip("conn.log.gz", b"#separator \\x09\n#path\tconn\n");
    gzip("logs.tar.gz", &[0u8; 1024]);
    gzip("trace.pcap.gz", &std::fs::read(samples().join("teardowns.pcap")).unwrap());
    std::fs::write(dir.join("notes.txt"), "not a capture either").unwrap();
    let out = sockscope(&["conns", "--format", "jsonl", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(jsonl(&out).len(), 12, "the capture inside gzip is read");
    let err = stderr(&out);
    assert!(err.contains("conn.log.gz: compressed, but not a capture: skipped"), "{err}");
    assert!(err.contains("logs.tar.gz: compressed, but not a capture: skipped"), "{err}");
    assert!(!err.contains("notes.txt"), "{err}");
    let named = sockscope(&["conns", dir.join("conn.log.gz").to_str().unwrap()]);
    assert_eq!(named.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Zeek's uids tell connections of different captures apart (connection 1 of one capture is not
/// connection 1 of another), and stay the same for the same input.
#[test]
fn zeek_uids_differ_between_captures() {
    let first_uid = |name: &str| {
        let text = stdout(&sockscope(&["conns", "--format", "zeek", samples().join(name).to_str().unwrap()]));
        let row = text.lines().find(|l| !l.starts_with('#')).expect("a row").to_string();
        row.split('\t').nth(1).unwrap().to_string()
    };
    assert_ne!(first_uid("teardowns.pcap"), first_uid("udp_and_reuse.pcapng"));
    assert_eq!(first_uid("teardowns.pcap"), first_uid("teardowns.pcap"));
    let text =
        stdout(&sockscope(&["conns", "--format", "zeek", samples().join("ipv6.pcap").to_str().unwrap()]));
    assert!(text.lines().nth(5).unwrap().starts_with("#open\t20"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("#close\t20"), "{text}");
}

/// `-o FILE` without `--format` writes what the file's name asks for; an input that cannot be
/// read leaves no output file behind.
#[test]
fn the_output_files_name_picks_the_format_and_an_unreadable_input_leaves_none() {
    let dir = std::env::temp_dir().join(format!("sockscope-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = samples().join("teardowns.pcap");
    for (name, starts) in
        [("c.csv", "id,proto,"), ("c.jsonl", "{\"id\":1,"), ("c.log", "#separator"), ("c.txt", "ID ")]
    {
        let out = dir.join(name);
        assert_eq!(
            sockscope(&["conns", "-o", out.to_str().unwrap(), f.to_str().unwrap()]).status.code(),
            Some(0)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with(starts), "{name}: {text}");
    }
    let parquet = dir.join("c.parquet");
    sockscope(&["conns", "-o", parquet.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(&std::fs::read(&parquet).unwrap()[..4], b"PAR1");
    let sockets = dir.join("s.csv");
    sockscope(&["sockets", "-o", sockets.to_str().unwrap(), f.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&sockets).unwrap().starts_with("proto,ip,port,role"));

    let missing = dir.join("missing.pcap");
    let never = dir.join("never.csv");
    let out = sockscope(&["conns", "-o", never.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.pcap"), "{}", stderr(&out));
    assert!(!never.exists(), "no header-only file left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--per-file -o DIR` never writes two inputs to one output: files found in a named directory
/// keep their place below it, and two named files with one name are refused before any work.
#[test]
fn per_file_outputs_never_overwrite_each_other() {
    let dir = std::env::temp_dir().join(format!("sockscope-per-file-{}", std::process::id()));
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join("in").join(sub)).unwrap();
        std::fs::copy(samples().join("teardowns.pcap"), dir.join("in").join(sub).join("trace.pcap")).unwrap();
    }
    let out_dir = dir.join("out");
    let run = |args: &[&Path]| {
        let mut a = vec!["conns", "--format", "jsonl", "--per-file", "-o", out_dir.to_str().unwrap()];
        a.extend(args.iter().map(|p| p.to_str().unwrap()));
        sockscope(&a)
    };
    use std::path::Path;
    let walked = run(&[&dir.join("in")]);
    assert_eq!(walked.status.code(), Some(0), "{}", stderr(&walked));
    for sub in ["a", "b"] {
        let text = std::fs::read_to_string(out_dir.join(sub).join("trace.pcap.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 12);
    }
    std::fs::remove_dir_all(&out_dir).unwrap();
    let named = run(&[&dir.join("in/a/trace.pcap"), &dir.join("in/b/trace.pcap")]);
    assert_eq!(named.status.code(), Some(2));
    assert!(stderr(&named).contains("would both be written to"), "{}", stderr(&named));
    assert!(!out_dir.join("trace.pcap.jsonl").exists(), "refused before any work");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--per-file` to standard output keeps machine formats parseable: no separator lines, one
/// header, one document, each record naming its capture.
#[test]
fn per_file_machine_output_stays_parseable_and_names_each_file() {
    let (a, b) = (samples().join("teardowns.pcap"), samples().join("udp_and_reuse.pcapng"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let lines = sockscope(&["conns", "--per-file", "--format", "jsonl", a, b]);
    assert_eq!(lines.status.code(), Some(0), "{}", stderr(&lines));
    let records = jsonl(&lines);
    let from = |f: &str| records.iter().filter(|r| r["file"] == f).count();
    assert_eq!(from(a), 12);
    assert!(from(b) > 0 && from(a) + from(b) == records.len());
    assert_eq!(records.iter().filter(|r| r["id"] == 1).count(), 2, "each file numbers from 1");
    let csv = stdout(&sockscope(&["conns", "--per-file", "--format", "csv", a, b]));
    assert_eq!(csv.lines().filter(|l| l.starts_with("id,")).count(), 1, "{csv}");
    assert_eq!(csv.lines().count(), records.len() + 1);
    assert!(csv.lines().next().unwrap().ends_with(",file"));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&sockscope(&["conns", "--per-file", "--format", "json", a, b])))
            .unwrap();
    assert_eq!(json["connections"].as_array().unwrap().len(), records.len());
    assert_eq!(json["files"].as_array().unwrap().len(), 2);
    let sockets = sockscope(&["sockets", "--per-file", "--format", "jsonl", a, b]);
    assert_eq!(sockets.status.code(), Some(2), "one file per input needs -o DIR");
}

/// `diff OLD NEW` compares two runs of the same traffic, captures or JSON lines of `conns`,
/// with diff(1)'s exit codes.
#[test]
fn diff_compares_runs_by_server_and_client_with_diffs_exit_codes() {
    let (a, b) = (samples().join("teardowns.pcap"), samples().join("udp_and_reuse.pcapng"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let same = sockscope(&["diff", a, a]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    assert!(stdout(&same).contains("no change: 12 and 12 connections"));
    let lines = temp_file("teardowns.jsonl", &sockscope(&["conns", "--format", "jsonl", a]).stdout);
    assert_eq!(
        sockscope(&["diff", lines.to_str().unwrap(), a]).status.code(),
        Some(0),
        "JSON lines against the capture"
    );
    let other = sockscope(&["diff", a, b]);
    assert_eq!(other.status.code(), Some(1));
    let text = stdout(&other);
    assert!(text.contains("vanished  tcp 127.0.0.1:9001 <- 127.0.0.1: 1 connection (SF 1)"), "{text}");
    assert!(text.contains("appeared  udp 127.0.0.1:5300 <- 127.0.0.1"), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&sockscope(&["diff", "--format", "json", a, b]).stdout).unwrap();
    assert_eq!(json["old_conns"], 12);
    assert!(json["changes"].as_array().unwrap().iter().any(|c| c["change"] == "appeared"));
    let only_udp = sockscope(&["diff", "--filter", "udp", a, a]);
    assert!(stdout(&only_udp).contains("no change: 0 and 0 connections"), "{}", stdout(&only_udp));
    let missing = sockscope(&["diff", "/nonexistent.pcap", a]);
    assert_eq!(missing.status.code(), Some(2));
    let bad = temp_file("bad.jsonl", b"{\"not\": \"a record\"}\n");
    let out = sockscope(&["diff", bad.to_str().unwrap(), a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 1: not a connection record"), "{}", stderr(&out));
}

/// `check --baseline OLD` is diff's comparison as a rule, in every report.
#[test]
fn check_against_a_baseline() {
    let (a, b) = (samples().join("teardowns.pcap"), samples().join("udp_and_reuse.pcapng"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let same = sockscope(&["check", a, "--baseline", a]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    let junit = std::env::temp_dir().join(format!("sockscope-baseline-{}.xml", std::process::id()));
    let changed = sockscope(&["check", b, "--baseline", a, "--junit", junit.to_str().unwrap()]);
    assert_eq!(changed.status.code(), Some(1));
    let text = stdout(&changed);
    assert!(text.contains("FAIL --baseline") && text.contains("vanished  tcp 127.0.0.1:9001"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("appeared  udp 127.0.0.1:5300"), "{xml}");
    std::fs::remove_file(&junit).unwrap();
    let missing = sockscope(&["check", a, "--baseline", "/nonexistent.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn summary_as_json() {
    let f = samples().join("teardowns.pcap");
    let out = sockscope(&["summary", "--format", "json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["connections"]["total"], 12);
    assert_eq!(doc["connections"]["by_state"]["tcp"]["REJ"], 1);
    assert_eq!(doc["packets"]["total"], doc["packets"]["tcp"]);
    assert_eq!(doc["handshakes"]["complete"], 10);
    assert!(doc["rtt"]["median"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["top_sockets_by_connections"][0]["conns"], 2, "a socket of the reused pair");
    let per_file = sockscope(&["summary", "--per-file", "--format", "json", f.to_str().unwrap()]);
    assert_eq!(per_file.status.code(), Some(2));
}

/// `check --per-file`: a verdict and a JUnit test suite per capture; a failure names the
/// capture its connection came from.
#[test]
fn check_per_file_gives_each_capture_its_own_suite() {
    let (a, b) = (samples().join("teardowns.pcap"), samples().join("udp_and_reuse.pcapng"));
    let junit = std::env::temp_dir().join(format!("sockscope-per-file-junit-{}.xml", std::process::id()));
    let out = sockscope(&[
        "check",
        "--per-file",
        "--fail-on-state",
        "REJ",
        "--junit",
        junit.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "teardowns.pcap has a refused connection");
    let text = stdout(&out);
    assert_eq!(text.matches("== ").count(), 2, "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite name=").count(), 2, "{xml}");
    assert!(
        xml.contains(r#"<testsuites name="sockscope check" tests="2" failures="1" errors="0">"#),
        "{xml}"
    );
    assert!(
        xml.contains("REJ Sr (") && xml.contains("teardowns.pcap)"),
        "the failure names its capture: {xml}"
    );
    std::fs::remove_file(&junit).unwrap();
}

/// A rule can apply to the connections a filter matches only, on the command line (`VALUE if
/// EXPR`) and in a rules file (`[[scope]]` tables).
#[test]
fn rules_scoped_by_a_filter() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let out = sockscope(&[
        "check",
        f,
        "--max-state",
        "REJ=0 if resp.port=9001",
        "--max-state",
        "REJ=0% if resp.port=9005",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("ok   --max-state REJ=0 if resp.port=9001: 0 of 1 connections"), "{text}");
    assert!(
        text.contains("FAIL --max-state REJ=0% if resp.port=9005: 1 of 1 connections (100.0%) are REJ"),
        "{text}"
    );
    let rules = temp_file(
        "scoped.toml",
        b"max_rtt = 1\n[[scope]]\nfilter = \"resp.port=9005\"\nfail_on_state = [\"REJ\"]\n[[scope]]\nfilter = \"udp\"\nmin_connections = 1\n",
    );
    let out = sockscope(&["check", f, "--rules", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL --fail-on-state REJ if resp.port=9005")
            && text.contains("FAIL --min-connections 1 if udp"),
        "{text}"
    );
    assert!(text.contains("ok   --max-rtt 1: 0 of 12"), "{text}");
    let bad = temp_file("unscoped.toml", b"[[scope]]\nfail_on_state = [\"REJ\"]\n");
    let out = sockscope(&["check", f, "--rules", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a [[scope]] table needs a filter"), "{}", stderr(&out));
    assert_eq!(sockscope(&["check", f, "--max-state", "REJ=0 if bogus"]).status.code(), Some(2));
}

/// The JUnit report parsed back as a CI system reads it: the counts on each suite agree with its
/// test cases, a broken rule is a failure, an unreadable capture's rules are errors.
#[test]
fn junit_reports_parse_and_count_what_they_hold() {
    let dir = std::env::temp_dir().join(format!("sockscope-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("report.xml");
    let missing = dir.join("missing.pcap");
    let (a, b) = (samples().join("teardowns.pcap"), samples().join("udp_and_reuse.pcapng"));
    let out = sockscope(&[
        "check",
        "--per-file",
        "--fail-on-state",
        "REJ",
        "--min-connections",
        "1",
        "--junit",
        junit.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "an unreadable capture is trouble");
    let text = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let count = |n: roxmltree::Node, attr: &str| n.attribute(attr).unwrap().parse::<usize>().unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 3);
    let mut outcome = Vec::new();
    for suite in &suites {
        let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
        let has = |tag: &str| cases.iter().filter(|c| c.children().any(|n| n.has_tag_name(tag))).count();
        assert_eq!(count(*suite, "tests"), cases.len());
        assert_eq!(count(*suite, "failures"), has("failure"));
        assert_eq!(count(*suite, "errors"), has("error"));
        outcome.push((has("failure"), has("error")));
    }
    assert_eq!(
        outcome,
        [(1, 0), (0, 0), (0, 2)],
        "teardowns has a REJ; udp passes; the missing file is errors"
    );
    assert_eq!(count(root, "tests"), 6);
    assert_eq!((count(root, "failures"), count(root, "errors")), (1, 2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every conn_state code and history letter is explained where a user looks: `conns --help`.
#[test]
fn conns_help_explains_every_code_and_letter() {
    let help = stdout(&sockscope(&["conns", "--help"]));
    for code in ["S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(&format!("{code} "))), "{code}: {help}");
    }
    for letter in ["S", "H", "A", "D", "F", "R", "T", "W", "G", "I", "Q", "^"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(&format!("{letter}  "))), "{letter}");
    }
}

/// The ladder as Wireshark users expect it: sequence numbers from each side's ISN (raw with
/// --absolute), windows scaled by the negotiated shift, the SYNs' options, a delta column, the
/// first packet's time and a display filter; --filter draws every matching connection.
#[test]
fn show_speaks_wiresharks_language() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    let text = stdout(&sockscope(&["show", f, "--conn", "1"]));
    assert!(text.contains("first packet: 2026-11-25 14:54:49.096 UTC"), "{text}");
    assert!(text.contains(
        "wireshark: ip.addr==127.0.0.1 && ip.addr==127.0.0.1 && tcp.port==40001 && tcp.port==9001"
    ));
    assert!(text.contains("S seq=0 len=0 win=65495 <mss=65495 ws=10 sack ts>"), "{text}");
    assert!(text.contains(". seq=1 ack=1 len=0 win=65536"), "64 << 10: {text}");
    assert!(text.lines().any(|l| l.contains("delta")));
    let raw = stdout(&sockscope(&["show", f, "--conn", "1", "--absolute"]));
    assert!(!raw.contains(" seq=0 "), "{raw}");
    let matching = stdout(&sockscope(&["show", f, "--filter", "state=REJ or state=S0"]));
    assert_eq!(matching.matches("connection ").count(), 2, "{matching}");
    let stdin = sockscope(&["show", "-", "--filter", "tcp"]);
    assert_eq!(stdin.status.code(), Some(2));
}

/// Every format carries the Community ID of the connection, checked against values computed
/// apart from sockscope, from the spec's pseudo code (Python 3):
///
/// ```python
/// def cid(proto, saddr, daddr, sport, dport, seed=0):
///     fam = socket.AF_INET6 if ':' in saddr else socket.AF_INET
///     s, d = socket.inet_pton(fam, saddr), socket.inet_pton(fam, daddr)
///     if not (s < d or (s == d and sport < dport)):
///         s, d, sport, dport = d, s, dport, sport
///     data = struct.pack('!H', seed) + s + d + struct.pack('!BBHH', proto, 0, sport, dport)
///     return '1:' + base64.b64encode(hashlib.sha1(data).digest()).decode()
/// ```
#[test]
fn every_format_carries_the_community_id() {
    let f = samples().join("teardowns.pcap");
    let f = f.to_str().unwrap();
    // cid(6, '127.0.0.1', '127.0.0.1', 40001, 9001), then with seed=1.
    let (id, seeded) = ("1:onOhFAZevwxTmCh/q1Ud/h2ftag=", "1:JIf8Bq/t4hFAxC7wyP7KBE40Wzo=");
    let first = |args: &[&str]| jsonl(&sockscope(args))[0].clone();
    let c = first(&["conns", "--format", "jsonl", f]);
    assert_eq!((c["orig"]["port"].as_u64(), c["resp"]["port"].as_u64()), (Some(40001), Some(9001)));
    assert_eq!(c["community_id"], id);
    assert_eq!(first(&["conns", "--format", "jsonl", "--community-id-seed", "1", f])["community_id"], seeded);
    let doc: serde_json::Value =
        serde_json::from_str(&stdout(&sockscope(&["conns", "--format", "json", f]))).unwrap();
    assert_eq!(doc["connections"][0]["community_id"], id);
    let csv = stdout(&sockscope(&["conns", "--format", "csv", f]));
    let (header, row) = (csv.lines().next().unwrap(), csv.lines().nth(1).unwrap());
    assert!(header.ends_with(",community_id,file") && row.ends_with(&format!(",{id},")), "{header}\n{row}");
    let zeek = stdout(&sockscope(&["conns", "--format", "zeek", f]));
    assert!(zeek.lines().any(|l| l.starts_with("#fields\t") && l.ends_with("\tip_proto\tcommunity_id")));
    assert!(zeek.lines().any(|l| l.starts_with("#types\t") && l.ends_with("\tcount\tstring")));
    assert!(zeek.lines().find(|l| !l.starts_with('#')).unwrap().ends_with(&format!("\t6\t{id}")));
    let show = stdout(&sockscope(&["show", f, "--conn", "1", "--community-id-seed", "1"]));
    assert!(show.contains(&format!("community id: {seeded}")), "{show}");
    // The table has no such column: a seed there would be ignored, so it is refused.
    let table = sockscope(&["conns", "--format", "table", "--community-id-seed", "1", f]);
    assert_eq!(table.status.code(), Some(2));
    // IPv6, and equal addresses: the ports decide which end comes first (8086 here).
    // cid(6, '::1', '::1', 45001, 8086) and cid(17, '::1', '::1', 45002, 5306).
    let v6 =
        jsonl(&sockscope(&["conns", "--format", "jsonl", samples().join("ipv6.pcap").to_str().unwrap()]));
    assert_eq!(
        (&v6[0]["resp"]["port"], &v6[0]["community_id"]),
        (&8086.into(), &"1:FzpKPAEvrdfQLOyOmivtsAD0FL0=".into())
    );
    assert_eq!(
        (&v6[1]["proto"], &v6[1]["community_id"]),
        (&"udp".into(), &"1:4D/j1UCrGXTOrI4ukC470xr52uo=".into())
    );
}

/// `show --write-pcap` copies just the drawn connections' packets; read back (by sockscope, and
/// by tshark and tcpdump where installed), they are the same connections.
#[test]
fn show_writes_the_connections_packets_as_a_pcap() {
    let f = samples().join("teardowns.pcap");
    let out_file = temp_file("reused.pcap", b"");
    let out = sockscope(&[
        "show",
        f.to_str().unwrap(),
        "--socket-pair",
        "127.0.0.1:40007-127.0.0.1:9007",
        "--write-pcap",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("22 packet(s) written"), "{}", stderr(&out));
    let original =
        jsonl(&sockscope(&["conns", "--format", "jsonl", "--filter", "port 40007", f.to_str().unwrap()]));
    let copied = jsonl(&sockscope(&["conns", "--format", "jsonl", out_file.to_str().unwrap()]));
    let key = |c: &serde_json::Value| {
        (c["conn_state"].clone(), c["history"].clone(), c["orig_pkts"].clone(), c["ts"].clone())
    };
    assert_eq!(copied.iter().map(key).collect::<Vec<_>>(), original.iter().map(key).collect::<Vec<_>>());
    match std::process::Command::new("tshark")
        .args([
            "-n",
            "-r",
            out_file.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
        ])
        .output()
    {
        Ok(t) => {
            let text = String::from_utf8_lossy(&t.stdout);
            assert!(t.status.success(), "tshark: {}", String::from_utf8_lossy(&t.stderr));
            assert_eq!(text.lines().count(), 22, "{text}");
            let ports = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
            assert!(text
                .lines()
                .map(ports)
                .all(|p| p.contains(&"40007".into()) && p.contains(&"9007".into())));
        }
        Err(_) => eprintln!("tshark not installed: the copy not read back by it"),
    }
    let filter = "tcp port 40007 and tcp port 9007";
    match std::process::Command::new("tcpdump")
        .args(["-n", "-r", out_file.to_str().unwrap(), filter])
        .output()
    {
        Ok(t) => {
            assert!(t.status.success(), "tcpdump: {}", String::from_utf8_lossy(&t.stderr));
            assert_eq!(String::from_utf8_lossy(&t.stdout).lines().count(), 22);
        }
        Err(_) => eprintln!("tcpdump not installed: the copy not read back by it"),
    }
    let two = sockscope(&[
        "show",
        f.to_str().unwrap(),
        f.to_str().unwrap(),
        "--conn",
        "1",
        "--write-pcap",
        "/tmp/x.pcap",
    ]);
    assert_eq!(two.status.code(), Some(2), "one capture file only");
}

/// The ladder notes every event the analysis knows, on a capture made to hold each: a gap before
/// the first payload, a retransmission, three duplicate ACKs and the fast retransmission they
/// call for, a zero window and the window update that reopens it, an ACK of bytes never captured,
/// segments that fill gaps later and a copy of one of them.
#[test]
fn the_ladder_notes_gaps_retransmissions_dup_acks_and_windows() {
    let t0 = 1_700_000_000_000_000u64;
    let mut at = t0;
    let mut frames = Vec::new();
    let mut add = |from_client, flags: &str, seq, ack, len, window| {
        at += 1000;
        frames.push((at, tcp_frame(from_client, flags, seq, ack, len, window)));
    };
    add(true, "S", 100, 0, 0, 8192);
    add(false, "SA", 500, 101, 0, 8192);
    add(true, "A", 101, 501, 0, 8192);
    add(true, "PA", 111, 501, 10, 8192); // 10 bytes (101..111) never captured
    add(false, "A", 501, 121, 0, 8192);
    add(true, "PA", 121, 501, 10, 8192);
    add(true, "PA", 131, 501, 10, 8192);
    add(false, "A", 501, 131, 0, 8192);
    add(false, "A", 501, 131, 0, 8192); // dup 1
    add(false, "A", 501, 131, 0, 8192); // dup 2
    add(false, "A", 501, 131, 0, 8192); // dup 3
    add(true, "PA", 131, 501, 10, 8192); // fast retransmission
    add(true, "PA", 131, 501, 10, 8192); // retransmission
    add(false, "A", 501, 141, 0, 0); // zero window
    add(false, "A", 501, 141, 0, 8192); // window update
    add(false, "A", 501, 161, 0, 8192); // acks 20 bytes never captured
    add(true, "PA", 171, 501, 10, 8192); // 30 bytes (141..171) skipped
    add(true, "PA", 101, 501, 10, 8192); // fills the first gap
    add(true, "PA", 141, 501, 20, 8192); // fills part of the second
    add(true, "PA", 161, 501, 10, 8192); // fills the rest
    add(true, "PA", 161, 501, 10, 8192); // retransmission
    let f = temp_file("events.pcap", &pcap_bytes(&frames));
    let text = stdout(&sockscope(&["show", f.to_str().unwrap(), "--conn", "1"]));
    let note = |packet: u64| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{packet} ")))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string()
    };
    assert!(note(4).contains("[10 bytes before it not captured (or out of order)]"), "{text}");
    assert!(note(9).contains("dup ack #1") && note(11).contains("dup ack #3"), "{text}");
    assert!(note(12).contains("fast retransmission"), "{text}");
    assert!(note(13).contains("[retransmission]"), "{text}");
    assert!(note(14).contains("zero window") && note(15).contains("window update"), "{text}");
    assert!(note(16).contains("acks 20 bytes never captured"), "{text}");
    assert!(note(17).contains("[30 bytes before it not captured (or out of order)]"), "{text}");
    for packet in [18, 19, 20] {
        assert!(note(packet).contains("[retransmission, fills a gap]"), "{text}");
    }
    assert!(note(21).contains("[retransmission]"), "{text}");
}

/// `sample` rewritten in the "modified" pcap format of old Linux tcpdump builds (magic
/// 0xa1b2cd34): each record header gains interface index, protocol, packet type and padding;
/// big-endian when asked.
fn modified_pcap(sample: &[u8], big_endian: bool) -> Vec<u8> {
    let le32 = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    assert_eq!(le32(sample), 0xa1b2c3d4, "a little-endian microsecond pcap");
    let word = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let half = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = word(0xa1b2cd34).to_vec();
    out.extend_from_slice(&half(2));
    out.extend_from_slice(&half(4));
    for at in [8, 12, 16, 20] {
        out.extend_from_slice(&word(le32(&sample[at..])));
    }
    let mut rest = &sample[24..];
    while !rest.is_empty() {
        let incl = le32(&rest[8..]) as usize;
        for at in [0, 4, 8, 12] {
            out.extend_from_slice(&word(le32(&rest[at..])));
        }
        out.extend_from_slice(&word(2)); // interface index
        out.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol
        out.extend_from_slice(&[0, 0]); // packet type, padding
        out.extend_from_slice(&rest[16..16 + incl]);
        rest = &rest[16 + incl..];
    }
    out
}

#[test]
fn modified_pcap_files_read_as_their_classic_twin() {
    let sample = samples().join("teardowns.pcap");
    let bytes = std::fs::read(&sample).unwrap();
    let expected = stdout(&sockscope(&["conns", "--format", "jsonl", sample.to_str().unwrap()]));
    for big_endian in [false, true] {
        // libpcap (tcpdump 4.99) reads these files packet for packet as it reads the sample.
        let modified = modified_pcap(&bytes, big_endian);
        let f = temp_file(&format!("modified-{big_endian}.pcap"), &modified);
        let out = sockscope(&["conns", "--format", "jsonl", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), expected, "big-endian: {big_endian}");
        // Cut inside the last record: everything before it, and a warning.
        let cut = temp_file(&format!("modified-cut-{big_endian}.pcap"), &modified[..modified.len() - 10]);
        let out = sockscope(&["summary", "--format", "json", cut.to_str().unwrap()]);
        let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(summary["packets"]["total"], 113, "one of 114 lost to the cut");
        assert!(stderr(&out).contains("file cut short: the record at byte"), "{}", stderr(&out));
    }
}
