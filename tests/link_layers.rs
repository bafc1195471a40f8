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
    let p = packets(f);
    assert_eq!((&p["total"], &p["udp"], &p["skipped"]), (&4.into(), &4.into(), &0.into()), "{p}");
}

/// The packet accounting of `summary --format json`.
fn packets(file: &str) -> serde_json::Value {
    let summary: serde_json::Value =
        serde_json::from_str(&stdout(&sockscope(&["summary", "--format", "json", file]))).unwrap();
    summary["packets"].clone()
}

/// tcpdump's `HDLC.pcap`: Cisco HDLC with 10 ICMP echoes, 24 SLARP keepalives (0x8035) and 4
/// CDP frames (0x2000), as tcpdump counts them.
#[test]
fn cisco_hdlc() {
    let p = packets(data("HDLC.pcap").to_str().unwrap());
    assert_eq!((&p["total"], &p["other"], &p["skipped"]), (&38.into(), &38.into(), &0.into()), "{p}");
    let kinds = &p["other_by_kind"];
    assert_eq!(kinds["icmp"], 10, "{p}");
    assert_eq!(kinds["ethertype 0x8035"], 24, "{p}");
    assert_eq!(kinds["ethertype 0x2000"], 4, "{p}");
}

/// tcpdump's `ipoib.pcap`: IP over InfiniBand, one direction of an SSH session and a few SYNs
/// (20 TCP segments), 6 ICMP echoes and 4 ARP frames, as tcpdump decodes them.
#[test]
fn ip_over_infiniband() {
    let f = data("ipoib.pcap");
    let f = f.to_str().unwrap();
    let p = packets(f);
    assert_eq!(
        (&p["total"], &p["tcp"], &p["other"], &p["skipped"]),
        (&30.into(), &20.into(), &10.into(), &0.into())
    );
    assert_eq!((&p["other_by_kind"]["icmp"], &p["other_by_kind"]["arp"]), (&6.into(), &4.into()), "{p}");
    let conns = jsonl(&sockscope(&["conns", "--format", "jsonl", f]));
    assert!(conns.iter().all(|c| c["orig"]["ip"] == "192.168.56.10" && c["resp"]["ip"] == "192.168.56.24"));
    let ssh = conns.iter().filter(|c| c["resp"]["port"] == 22).map(|c| c["orig_bytes"].as_u64().unwrap());
    // tcpdump: the client's last data segment is "seq 1338:1438".
    assert_eq!(ssh.sum::<u64>(), 1438);
}
