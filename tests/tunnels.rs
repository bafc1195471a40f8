//! Connections inside tunnels, against the Zeek oracles of ../shared/captures/zeek_tunnels_*.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use serde_json::Value;
use sockscope::types::{Addr, CommunityId, Proto};

/// The Community ID of a JSON record's own sockets.
fn community_id(c: &Value) -> CommunityId {
    let addr = |s: &Value| Addr {
        ip: s["ip"].as_str().unwrap().parse().unwrap(),
        port: s["port"].as_u64().unwrap().try_into().unwrap(),
    };
    let proto = Proto::parse(c["proto"].as_str().unwrap()).unwrap();
    CommunityId::new(0, proto, addr(&c["orig"]), addr(&c["resp"]))
}

/// Tunneled rows of a Zeek conn.log: key -> (conn_state, number of parents).
fn tunneled_rows(log: &Path) -> Vec<(String, String, usize)> {
    let text = std::fs::read_to_string(log).unwrap();
    let fields: Vec<&str> =
        text.lines().find_map(|l| l.strip_prefix("#fields\t")).unwrap().split('\t').collect();
    let col = |row: &[&str], name: &str| row[fields.iter().position(|f| *f == name).unwrap()].to_string();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|r| matches!(col(r, "proto").as_str(), "tcp" | "udp") && col(r, "tunnel_parents") != "-")
        .map(|r| {
            let key = format!(
                "{} {}:{} {}:{}",
                col(&r, "proto"),
                col(&r, "id.orig_h"),
                col(&r, "id.orig_p"),
                col(&r, "id.resp_h"),
                col(&r, "id.resp_p")
            );
            (key, col(&r, "conn_state"), col(&r, "tunnel_parents").split(',').count())
        })
        .collect()
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn every_tunneled_oracle_connection_is_found_with_its_state_and_parents() {
    let dir = shared_captures();
    let mut checked = 0;
    for f in capture_files(&dir).into_iter().filter(|f| f.to_string_lossy().contains("tunnels")) {
        let log = Path::new(&format!("{}.zeek-conn.log", f.display())).to_path_buf();
        if !log.exists() {
            continue;
        }
        let out = sockscope(&["conns", "--format", "jsonl", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0));
        let conns = jsonl(&out);
        let by_id: HashMap<u64, &Value> = conns.iter().map(|c| (c["id"].as_u64().unwrap(), c)).collect();
        for (k, state, _) in tunneled_rows(&log) {
            let c = conns
                .iter()
                .find(|c| conn_key(c) == k)
                .unwrap_or_else(|| panic!("{}: {k} not found", f.display()));
            assert_eq!(c["conn_state"], state.as_str(), "{}: {k}", f.display());
            let t = &c["tunnel"];
            assert!(!t["path"].as_array().unwrap().is_empty(), "{k}: tunnel path");
            // As Zeek's: the ID names the inner connection, not the tunnel's.
            assert_eq!(c["community_id"], community_id(c).to_string(), "{k}: community_id");
            for p in t["parents"].as_array().unwrap() {
                let parent = by_id[&p.as_u64().unwrap()];
                assert_eq!(parent["proto"], "udp", "{k}: a parent is the outer UDP flow");
                assert_ne!(parent["community_id"], c["community_id"], "{k}: the parent's own ID");
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "tunneled oracle rows checked: {checked}");
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn gtp_inner_connection_has_both_directions_outer_flows_as_parents() {
    let dir = shared_captures();
    let f = dir.join("zeek_tunnels_gtp_gtp2_different_udp_port.pcap");
    let conns = jsonl(&sockscope(&["conns", "--format", "jsonl", f.to_str().unwrap()]));
    let inner = conns.iter().find(|c| c["proto"] == "tcp").unwrap();
    assert_eq!(inner["tunnel"]["path"][0]["kind"], "gtpu");
    assert_eq!(inner["tunnel"]["parents"].as_array().unwrap().len(), 2, "Zeek lists two parents too");
    assert_eq!(inner["conn_state"], "S3");
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn no_decap_reports_outer_flows_only_and_accounts_for_every_packet() {
    let dir = shared_captures();
    // (capture, has TCP/UDP inside its tunnels: the VXLAN sample carries only ICMP)
    for (name, inner) in [
        ("zeek_tunnels_vxlan.pcap", false),
        ("zeek_tunnels_gre-sample.pcap", true),
        ("zeek_tunnels_Teredo.pcap", true),
    ] {
        let f = dir.join(name);
        let f = f.to_str().unwrap();
        let with: Value =
            serde_json::from_slice(&sockscope(&["conns", "--format", "json", f]).stdout).unwrap();
        let without: Value =
            serde_json::from_slice(&sockscope(&["conns", "--format", "json", "--no-decap", f]).stdout)
                .unwrap();
        assert_eq!(with["packets"]["total"], without["packets"]["total"], "{name}");
        for doc in [&with, &without] {
            let p = &doc["packets"];
            let sum: u64 = ["tcp", "udp", "other", "skipped"].iter().map(|k| p[*k].as_u64().unwrap()).sum();
            assert_eq!(sum, p["total"].as_u64().unwrap(), "{name}");
        }
        let tunneled = |doc: &Value| {
            doc["connections"].as_array().unwrap().iter().filter(|c| !c["tunnel"].is_null()).count()
        };
        assert_eq!(tunneled(&with) > 0, inner, "{name}");
        assert_eq!(tunneled(&without), 0, "{name}");
    }
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn zeek_format_names_tunnel_parents() {
    let dir = shared_captures();
    let f = dir.join("zeek_tunnels_ayiya3.pcap");
    let text = stdout(&sockscope(&["conns", "--format", "zeek", f.to_str().unwrap()]));
    let fields: Vec<&str> =
        text.lines().find_map(|l| l.strip_prefix("#fields\t")).unwrap().split('\t').collect();
    let at = |n: &str| fields.iter().position(|f| *f == n).unwrap();
    let rows: Vec<Vec<&str>> =
        text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('\t').collect()).collect();
    let inner = rows.iter().find(|r| r[at("proto")] == "tcp").unwrap();
    let parent_uid = inner[at("tunnel_parents")];
    assert!(parent_uid.starts_with('C'), "{parent_uid}");
    let parent = rows.iter().find(|r| r[at("uid")] == parent_uid).expect("the parent is a logged connection");
    assert_eq!(parent[at("id.resp_p")], "5072");
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn fragmented_datagrams_are_reassembled_and_counted_once_per_connection() {
    let dir = shared_captures();
    let run = |name: &str| -> Value {
        let f = dir.join(name);
        serde_json::from_slice(&sockscope(&["conns", "--format", "json", f.to_str().unwrap()]).stdout)
            .unwrap()
    };
    // A SYN split into two fragments: two tcp packets in the accounting, one in the connection.
    let syn = run("zeek_ipv4_fragmented-syn.pcap");
    assert_eq!(syn["packets"]["tcp"], 2);
    let c = &syn["connections"][0];
    assert_eq!((c["orig_pkts"].as_u64(), c["conn_state"].as_str()), (Some(1), Some("S0")));

    // DNS over IPv6: one answer in three fragments, and a lone last fragment that never completes.
    let dns = run("zeek_ipv6-fragmented-dns.pcap");
    assert_eq!(dns["packets"]["skipped_by_reason"]["IP fragment of a datagram that never completed"], 1);
    let second = &dns["connections"][1];
    assert_eq!((second["orig_pkts"].as_u64(), second["resp_pkts"].as_u64()), (Some(2), Some(1)));
    assert_eq!(second["resp_bytes"], 3230, "the whole reassembled answer, not its first fragment");
}
