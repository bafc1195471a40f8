//! The loopback captures in samples/ against samples/expected.json, which tools/traffic.py wrote from
//! its own decoding of the packets (independent of sockscope).

mod common;

use serde_json::Value;

use common::*;

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(samples().join("expected.json")).unwrap()).unwrap()
}

fn run(file: &str, format: &str) -> std::process::Output {
    let out = sockscope(&["conns", "--format", format, samples().join(file).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
    out
}

#[test]
fn packet_and_connection_counts() {
    for (file, exp) in expected()["files"].as_object().unwrap() {
        let doc: Value = serde_json::from_slice(&run(file, "json").stdout).unwrap();
        let p = &doc["packets"];
        assert_eq!(p["total"], exp["packets"], "{file}");
        assert_eq!(p["tcp"], exp["tcp_packets"], "{file}");
        assert_eq!(p["udp"], exp["udp_packets"], "{file}");
        let conns = doc["connections"].as_array().unwrap();
        let count = |proto: &str| conns.iter().filter(|c| c["proto"] == proto).count() as u64;
        assert_eq!(count("tcp"), exp["tcp_connections"].as_u64().unwrap(), "{file}");
        assert_eq!(count("udp"), exp["udp_flows"].as_u64().unwrap(), "{file}");
    }
}

/// Every TCP scenario: conn_state, handshake, teardown kind, who closed first, packets, bytes.
#[test]
fn tcp_phases_per_scenario() {
    for (file, exp) in expected()["files"].as_object().unwrap() {
        let conns = jsonl(&run(file, "jsonl"));
        let Some(tcp) = exp["tcp"].as_object() else {
            continue;
        };
        for (port, s) in tcp {
            let port: u64 = port.parse().unwrap();
            let mine: Vec<&Value> = conns
                .iter()
                .filter(|c| c["proto"] == "tcp" && c["resp"]["port"].as_u64() == Some(port))
                .collect();
            let what = format!("{file} port {port} ({})", s["description"]);
            assert_eq!(mine.len() as u64, s["connections"].as_u64().unwrap(), "{what}");
            for (c, pc) in mine.iter().zip(s["per_connection"].as_array().unwrap()) {
                assert_eq!(c["orig"]["port"], pc["client_port"], "{what}");
                assert_eq!(c["conn_state"], s["conn_state"], "{what}");
                assert_eq!(c["handshake"]["state"], s["handshake"], "{what}");
                let kind = c["teardown"]["kind"].as_str().unwrap_or("null");
                assert_eq!(kind, s["teardown"], "{what}");
                let initiator = match c["teardown"]["initiator"].as_str() {
                    Some("orig") => "client",
                    Some("resp") => "server",
                    Some(other) => other,
                    None => "none",
                };
                assert_eq!(initiator, s["closed_first"], "{what}");
                assert_eq!(c["orig_pkts"], pc["orig_packets"], "{what}");
                assert_eq!(c["resp_pkts"], pc["resp_packets"], "{what}");
                assert_eq!(c["orig_bytes"], pc["orig_payload_bytes"], "{what}");
                assert_eq!(c["resp_bytes"], pc["resp_payload_bytes"], "{what}");
                assert_eq!(
                    c["handshake"]["syn_retransmissions"].as_u64().unwrap() + 1,
                    pc["syn_packets"].as_u64().unwrap(),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn port_reuse_is_two_connections_in_order() {
    let conns = jsonl(&run("teardowns.pcap", "jsonl"));
    let reused: Vec<&Value> = conns.iter().filter(|c| c["resp"]["port"] == 9007).collect();
    assert_eq!(reused.len(), 2);
    assert_eq!(reused[0]["orig"], reused[1]["orig"], "the same socket pair");
    assert!(reused[0]["id"].as_u64() < reused[1]["id"].as_u64());
    assert!(reused[0]["ts"].as_f64() < reused[1]["ts"].as_f64());
}

#[test]
fn tcp_and_udp_on_one_port_are_different_sockets() {
    let conns = jsonl(&run("udp_and_reuse.pcapng", "jsonl"));
    let on_8081 = |proto: &str, client: u64| {
        conns
            .iter()
            .filter(|c| c["proto"] == proto && c["resp"]["port"] == 8081 && c["orig"]["port"] == client)
            .count()
    };
    // Same addresses and port numbers, two protocols: two connections.
    assert_eq!(on_8081("tcp", 42001), 1);
    assert_eq!(on_8081("udp", 42001), 1);

    let out = sockscope(&[
        "sockets",
        "--format",
        "jsonl",
        samples().join("udp_and_reuse.pcapng").to_str().unwrap(),
    ]);
    let sockets = jsonl(&out);
    let server =
        |proto: &str| sockets.iter().find(|s| s["proto"] == proto && s["port"] == 8081).unwrap().clone();
    let (tcp, udp) = (server("tcp"), server("udp"));
    assert_eq!(tcp["role"], "server");
    assert_eq!(tcp["conns"], 5);
    assert_eq!(tcp["max_concurrent"], 5, "five clients were connected at once");
    assert_eq!(udp["role"], "server");
    assert_eq!(udp["conns"], 2);
}

#[test]
fn snaplen_truncated_packets_keep_their_payload_length() {
    let conns = jsonl(&run("snaplen96.pcap.gz", "jsonl"));
    let exp = &expected()["files"]["snaplen96.pcap.gz"]["tcp"]["8096"]["per_connection"];
    for (c, e) in conns.iter().zip(exp.as_array().unwrap()) {
        assert_eq!(c["resp_bytes"], e["resp_payload_bytes"]);
        assert_eq!(
            c["data"]["resp_payload_bytes"], e["resp_payload_bytes"],
            "from IP lengths, not captured bytes"
        );
    }
}

/// samples/services.pcap (tools/traffic.py `services`): each application protocol the script
/// spoke is named, the unknown one is not, and the DNS and NTP flows that opened with the
/// server's message are turned round to the side that asked.
#[test]
fn services_and_payload_role_rules() {
    let conns = jsonl(&run("services.pcap", "jsonl"));
    let by_port = |port: u64| {
        let found: Vec<_> = conns.iter().filter(|c| c["resp"]["port"] == port).collect();
        assert_eq!(found.len(), 1, "one connection to port {port}");
        found[0].clone()
    };
    for (port, service) in
        [(8080, "http"), (8443, "ssl"), (2222, "ssh"), (2525, "smtp"), (53, "dns"), (123, "ntp")]
    {
        assert_eq!(by_port(port)["service"], service, "port {port}");
    }
    assert!(by_port(7777)["service"].is_null(), "bytes of no protocol");
    for port in [53, 123] {
        let flow = by_port(port);
        // 127.0.0.1 spoke first, as the server: the flow belongs to the client, 127.0.0.2.
        assert_eq!(flow["orig"]["ip"], "127.0.0.2", "port {port}");
        assert_eq!(flow["resp"]["ip"], "127.0.0.1", "port {port}");
        assert_eq!(flow["history"], "D^d", "port {port}");
        assert_eq!(flow["conn_state"], "SF", "port {port}");
    }
}
