//! Link layers read from real captures of other projects (`tests/data/README.md` names each
//! one's source and licence), checked against what their own tools decoded.

mod common;

use std::path::PathBuf;

use common::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// tcpdump's `nflog.pcap`: four DNS answers, as tcpdump's `nflog-e.out` decodes them.
#[test]
fn nflog() {
    let f = data("nflog.pcap");
    let f = f.to_str().unwrap();
    let conns = jsonl(&sockscope(&["conns", "--format", "jsonl", f]));
    let seen: Vec<(u64, u64)> = conns
        .iter()
        .map(|c| {
            assert_eq!(c["proto"], "udp");
            assert_eq!(c["orig"]["ip"], "10.0.0.20");
            assert_eq!(c["resp"]["ip"], "74.82.42.42");
            assert_eq!(c["resp"]["port"], 53);
            (c["orig"]["port"].as_u64().unwrap(), c["resp_bytes"].as_u64().unwrap())
        })
        .collect();
    // tcpdump: "74.82.42.42.53 > 10.0.0.20.42585: ... (45)" and so on.
    assert_eq!(seen, [(42585, 45), (45190, 57), (44031, 49), (48736, 61)]);
    let summary: serde_json::Value =
        serde_json::from_str(&stdout(&sockscope(&["summary", "--format", "json", f]))).unwrap();
    let p = &summary["packets"];
    assert_eq!(
        (p["total"].as_u64(), p["udp"].as_u64(), p["skipped"].as_u64()),
        (Some(4), Some(4), Some(0)),
        "{p}"
    );
}
