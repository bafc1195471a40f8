//! Every subcommand and format on samples/, as snapshots (insta): a change in what users see
//! shows up as a diff to review. Run from the crate root with relative paths, so the
//! snapshots hold no machine-specific paths.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run sockscope");
    let mut text = String::from_utf8(out.stdout).unwrap();
    text.push_str(&format!("--- exit {:?}\n", out.status.code()));
    text.push_str(&String::from_utf8(out.stderr).unwrap());
    text
}

const TEARDOWNS: &str = "samples/teardowns.pcap";
const UDP: &str = "samples/udp_and_reuse.pcapng";

#[test]
fn conns_table() {
    insta::assert_snapshot!(run(&["conns", TEARDOWNS]));
}

#[test]
fn conns_jsonl() {
    insta::assert_snapshot!(run(&["conns", "--format", "jsonl", TEARDOWNS]));
}

#[test]
fn conns_json() {
    insta::assert_snapshot!(run(&["conns", "--format", "json", UDP]));
}

#[test]
fn conns_csv() {
    insta::assert_snapshot!(run(&["conns", "--format", "csv", TEARDOWNS]));
}

#[test]
fn conns_zeek() {
    // The time of writing, as Zeek gives it, differs from run to run.
    insta::with_settings!({ filters => vec![(r"(#open|#close)\t\S+", "$1\t[time of writing]")] }, {
        insta::assert_snapshot!(run(&["conns", "--format", "zeek", TEARDOWNS]));
    });
}

#[test]
fn sockets_table() {
    insta::assert_snapshot!(run(&["sockets", UDP]));
}

#[test]
fn sockets_csv() {
    insta::assert_snapshot!(run(&["sockets", "--format", "csv", UDP]));
}

#[test]
fn sockets_jsonl() {
    insta::assert_snapshot!(run(&["sockets", "--format", "jsonl", UDP]));
}

#[test]
fn summary() {
    insta::assert_snapshot!(run(&["summary", TEARDOWNS]));
}

#[test]
fn show_half_close() {
    insta::assert_snapshot!(run(&["show", TEARDOWNS, "--conn", "6"]));
}

#[test]
fn check_failing() {
    insta::assert_snapshot!(run(&[
        "check",
        TEARDOWNS,
        "--fail-on-state",
        "REJ",
        "--max-state",
        "S0=0",
        "--max-rtt",
        "1"
    ]));
}

/// The CSV and JSON lines outputs parse back to the same values the table shows.
#[test]
fn csv_and_jsonl_agree_with_the_table() {
    let table = run(&["conns", TEARDOWNS]);
    let csv = run(&["conns", "--format", "csv", TEARDOWNS]);
    let jsonl = run(&["conns", "--format", "jsonl", TEARDOWNS]);
    let mut csv_rows = csv.lines().take_while(|l| !l.starts_with("--- exit"));
    let header: Vec<&str> = csv_rows.next().unwrap().split(',').collect();
    let col = |row: &[String], name: &str| row[header.iter().position(|h| *h == name).unwrap()].clone();
    let json_rows: Vec<serde_json::Value> = jsonl
        .lines()
        .take_while(|l| !l.starts_with("--- exit"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let table_rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("--- exit"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    for ((csv_row, json), table_row) in csv_rows.zip(&json_rows).zip(&table_rows) {
        let csv_row: Vec<String> = csv_row.split(',').map(String::from).collect();
        assert_eq!(col(&csv_row, "id"), json["id"].to_string());
        assert_eq!(table_row[0], json["id"].to_string());
        assert_eq!(col(&csv_row, "conn_state"), json["conn_state"].as_str().unwrap());
        assert_eq!(table_row[4], json["conn_state"].as_str().unwrap());
        assert_eq!(col(&csv_row, "history"), json["history"].as_str().unwrap());
        assert_eq!(table_row[5], json["history"].as_str().unwrap());
        assert_eq!(table_row[6], json["service"].as_str().unwrap_or("-"));
        // START (UTC) is a date and a time: two words.
        assert_eq!(table_row[10], format!("{}/{}", json["orig_pkts"], json["resp_pkts"]));
        assert_eq!(col(&csv_row, "orig_bytes"), json["orig_bytes"].to_string());
    }
    assert_eq!(json_rows.len(), 12);
}
