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

/// The connections of `conns --format jsonl` as (proto, orig ip:port, resp ip:port, state,
/// history, orig packets/bytes, resp packets/bytes).
fn conns(file: &str) -> Vec<String> {
    jsonl(&sockscope(&["conns", "--format", "jsonl", file]))
        .iter()
        .map(|c| {
            format!(
                "{} {}:{} {}:{} {} {} {}/{} {}/{}",
                c["proto"].as_str().unwrap(),
                c["orig"]["ip"].as_str().unwrap(),
                c["orig"]["port"],
                c["resp"]["ip"].as_str().unwrap(),
                c["resp"]["port"],
                c["conn_state"].as_str().unwrap(),
                c["history"].as_str().unwrap(),
                c["orig_pkts"],
                c["orig_bytes"],
                c["resp_pkts"],
                c["resp_bytes"],
            )
        })
        .collect()
}

/// Zeek's `wlanmon.pcap` (802.11, LINKTYPE 105) and `radiotap.pcap` (the same frames after
/// radiotap headers whose Flags say each frame ends in its FCS): a DNS exchange and an mDNS
/// announcement in QoS and plain data frames through LLC/SNAP, as Zeek's conn.log baselines
/// (`core.wlanmon`, `core.radiotap`) have them.
#[test]
fn ieee80211_and_radiotap() {
    for name in ["wlanmon.pcap", "radiotap.pcap"] {
        let f = data(name);
        let f = f.to_str().unwrap();
        assert_eq!(
            conns(f),
            [
                "udp 172.17.156.76:61738 208.67.220.220:53 SF Dd 1/35 1/128",
                "udp fe80::a667:6ff:fef7:ec54:5353 ff02::fb:5353 S0 D 1/280 0/0",
            ],
            "{name}"
        );
        let p = packets(f);
        assert_eq!((&p["total"], &p["udp"], &p["skipped"]), (&3.into(), &3.into(), &0.into()), "{name}: {p}");
    }
}

/// tcpdump's `ieee802.11_htc.pcap`: a QoS data frame with the Order flag, so an HT control
/// field before its LLC/SNAP header, holding a DHCP discover (tcpdump's `ieee802.11_htc.out`:
/// "0.0.0.0.68 > 255.255.255.255.67: BOOTP/DHCP, Request ... length 300").
#[test]
fn ieee80211_ht_control() {
    let f = data("ieee802.11_htc.pcap");
    assert_eq!(conns(f.to_str().unwrap()), ["udp 0.0.0.0:68 255.255.255.255:67 S0 D 1/300 0/0"]);
}

/// tcpdump's `ieee802.11_exthdr.pcap`: radiotap headers with an extended present bitmap before
/// management frames (12 probe requests and responses, 2 authentications, 2 associations), 8
/// ACKs and 2 null data frames, as tcpdump decodes them.
#[test]
fn radiotap_extended_bitmaps_management_and_control() {
    let p = packets(data("ieee802.11_exthdr.pcap").to_str().unwrap());
    assert_eq!((&p["total"], &p["other"]), (&26.into(), &26.into()), "{p}");
    let kinds = &p["other_by_kind"];
    assert_eq!(
        (&kinds["802.11 management"], &kinds["802.11 control"], &kinds["802.11 data without payload"]),
        (&16.into(), &8.into(), &2.into()),
        "{p}"
    );
}

/// tcpdump's `ieee802.11_rx-stbc.pcap`: three QoS data frames with the Protected flag (tcpdump
/// prints their CCMP header: "Data IV: 11 Pad 20 KeyID 0").
#[test]
fn ieee80211_protected() {
    let p = packets(data("ieee802.11_rx-stbc.pcap").to_str().unwrap());
    assert_eq!((&p["total"], &p["other_by_kind"]["802.11 protected"]), (&3.into(), &3.into()), "{p}");
}

/// aircrack-ng's `wpa.cap` (Prism headers, LINKTYPE 119): a beacon, a WPA handshake's four
/// EAPOL frames (ethertype 0x888e under LLC/SNAP), two protected data frames and six ACKs, as
/// tcpdump decodes them.
#[test]
fn prism() {
    let p = packets(data("wpa-prism.cap").to_str().unwrap());
    assert_eq!((&p["total"], &p["other"], &p["skipped"]), (&13.into(), &13.into(), &0.into()), "{p}");
    let kinds = &p["other_by_kind"];
    assert_eq!(kinds["802.11 management"], 1, "{p}");
    assert_eq!(kinds["ethertype 0x888e"], 4, "{p}");
    assert_eq!(kinds["802.11 protected"], 2, "{p}");
    assert_eq!(kinds["802.11 control"], 6, "{p}");
}

/// libtrace's `100_packets.erf`, its records in a pcap file of LINKTYPE_ERF: Ethernet records
/// (type 2), read the same as the Ethernet frames inside them (tcpdump reads those as 92 TCP
/// segments, 7 UDP datagrams and an ESP packet).
#[test]
fn erf() {
    let p = packets(data("erf-100_packets.pcap").to_str().unwrap());
    assert_eq!(
        (&p["total"], &p["tcp"], &p["udp"], &p["other_by_kind"]["ip protocol 50"]),
        (&100.into(), &92.into(), &7.into(), &1.into()),
        "{p}"
    );
    let conns = conns(data("erf-100_packets.pcap").to_str().unwrap());
    // tcpdump: "51.1.160.192.3017 > 97.89.225.174.2745: Flags [S] ..." and no answer.
    assert!(
        conns.iter().any(|c| c.starts_with("tcp 51.1.160.192:3017 97.89.225.174:2745 S0 S 1/0")),
        "{conns:?}"
    );
}

/// Zeek's `snap-tcp.pcap`: an HTTP exchange in 802.3 frames with LLC/SNAP headers (tcpdump:
/// "802.3, length 48: LLC, dsap SNAP ... ethertype IPv4").
#[test]
fn ieee8023_llc_snap() {
    let f = data("snap-tcp.pcap");
    assert_eq!(conns(f.to_str().unwrap()), ["tcp 192.168.1.1:12345 192.168.1.2:80 SF ShADdFf 5/37 3/77"]);
}

/// Zeek's `pbb.pcap`: 802.1ah (PBB) frames in a VLAN; Zeek's `core.pbb` baseline has the TCP
/// connection "10.199.249.11 49601 10.199.249.12 49416 tcp - 0.002215 209 0 SF ... ShADFaf 5 421
/// 3 132" and an OSPF and a VRRP packet, which are other here (as are an ARP and a CFM frame).
#[test]
fn pbb() {
    let f = data("pbb.pcap");
    let f = f.to_str().unwrap();
    assert_eq!(conns(f), ["tcp 10.199.249.11:49601 10.199.249.12:49416 SF ShADFaf 5/209 3/0"]);
    let p = packets(f);
    let kinds = &p["other_by_kind"];
    assert_eq!(
        (&kinds["ip protocol 89"], &kinds["ip protocol 112"], &kinds["arp"]),
        (&1.into(), &1.into(), &1.into())
    );
    assert_eq!((&p["total"], &p["tcp"], &p["skipped"]), (&12.into(), &8.into(), &0.into()), "{p}");
}

/// Zeek's `vntag.pcap` (VN-Tag, then a VLAN tag, then IP protocol 253, which Zeek's `core.vntag`
/// baseline logs as 3 packets of unknown transport) and `vntag_vlan_sandwich_clean.pcap` (a VLAN
/// tag, VN-Tag, another VLAN tag, then a TCP SYN-ACK from 10.10.10.1:443).
#[test]
fn vntag() {
    let p = packets(data("vntag.pcap").to_str().unwrap());
    assert_eq!((&p["total"], &p["other_by_kind"]["ip protocol 253"]), (&3.into(), &3.into()), "{p}");
    let f = data("vntag_vlan_sandwich_clean.pcap");
    let c = jsonl(&sockscope(&["conns", "--format", "jsonl", f.to_str().unwrap()]));
    assert_eq!(c.len(), 1);
    let ends = [&c[0]["orig"], &c[0]["resp"]].map(|e| format!("{}:{}", e["ip"].as_str().unwrap(), e["port"]));
    assert!(
        ends.contains(&"10.10.10.1:443".to_string()) && ends.contains(&"10.10.10.2:56960".to_string()),
        "{ends:?}"
    );
}

/// tcpdump's MACsec captures: an ICMP echo in a frame with integrity only, read through its
/// SecTAG (tcpdump: "flags I, sci ..., ethertype IPv4 (0x0800), 192.168.113.1 > 192.168.113.2:
/// ICMP echo request"), and an encrypted one ("flags ECI"), which cannot be read.
#[test]
fn macsec() {
    let p = packets(data("macsec-integonly.pcap").to_str().unwrap());
    assert_eq!((&p["total"], &p["other_by_kind"]["icmp"]), (&1.into(), &1.into()), "{p}");
    let p = packets(data("macsec-encrypted.pcap").to_str().unwrap());
    assert_eq!((&p["total"], &p["other_by_kind"]["macsec (encrypted)"]), (&1.into(), &1.into()), "{p}");
}

/// tcpdump's `esp_truncated.pcap`, whose file header's link-type field is 0x40000001: bits above
/// the LINKTYPE that libpcap ignores (no FCS-length flag among them), so Ethernet, as tcpdump
/// reads it ("IP 0.254.92.182.4500 > 255.127.255.121.8472: UDP-encap").
#[test]
fn pcap_link_type_field_upper_bits() {
    let f = data("esp_truncated.pcap");
    let c = jsonl(&sockscope(&["conns", "--format", "jsonl", f.to_str().unwrap()]));
    assert_eq!(c.len(), 1);
    assert_eq!(
        (&c[0]["proto"], &c[0]["orig"]["port"], &c[0]["resp"]["port"]),
        (&"udp".into(), &4500.into(), &8472.into())
    );
    assert_eq!(
        (&c[0]["orig"]["ip"], &c[0]["resp"]["ip"]),
        (&"0.254.92.182".into(), &"255.127.255.121".into())
    );
}

/// The connections of `file`, as JSON lines.
fn conns_jsonl(file: &std::path::Path) -> String {
    let out = sockscope(&["conns", "--format", "jsonl", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

/// Link layers no small public capture shows, made by `tools/wrap.py` from real captures: the
/// same frames inside PPI and AVS headers (tcpdump decodes both to the same DNS exchange), and
/// behind an 802.1BR E-Tag, must give the same connections as the frames alone.
#[test]
fn wrapped_frames_give_the_same_connections() {
    let samples = samples();
    for (plain, wrapped) in [
        (data("wlanmon.pcap"), data("wlanmon-ppi.pcap")),
        (data("wlanmon.pcap"), data("wlanmon-avs.pcap")),
        (samples.join("teardowns.pcap"), data("teardowns-etag.pcap")),
    ] {
        let expected = conns_jsonl(&plain);
        assert!(expected.lines().count() >= 2, "{plain:?}");
        assert_eq!(conns_jsonl(&wrapped), expected, "{wrapped:?}");
    }
    let p = packets(data("teardowns-etag.pcap").to_str().unwrap());
    assert_eq!((&p["total"], &p["tcp"]), (&114.into(), &114.into()), "{p}");
}

/// teardowns.pcap's frames each with its CRC-32 FCS, in a pcapng whose interface says so
/// (`if_fcslen`): read as the frames alone. (TCP takes its length from the IP header, so an FCS
/// left on would not show here; the trimming itself is tested in `capture`.)
#[test]
fn pcapng_interface_with_an_fcs_length() {
    let plain = conns_jsonl(&samples().join("teardowns.pcap"));
    assert_eq!(conns_jsonl(&data("teardowns-fcs.pcapng")), plain);
}
