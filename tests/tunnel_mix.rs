//! Tunnelled traffic mixed with plain traffic on the same hosts and ports: Teredo bubbles with
//! and without an origin indication, Teredo through relays (the outer addresses change within
//! one inner connection), Teredo inside GTP-U, VXLAN, datagrams on tunnel ports that do not
//! decode, plain TCP between the tunnel endpoints. Whatever the thread count, the analysis must
//! give the same connections, ids, parents and accounting.

use std::net::Ipv6Addr;
use std::path::Path;

use etherparse::PacketBuilder;
use proptest::prelude::*;

mod common;
use common::pcap_bytes;

use sockscope::pipeline::{self, Options};
use sockscope::report::record::ConnRecord;

/// Outer IPv4 hosts: a Teredo client behind two addresses, a server, two relays, a GTP node.
const OUTER: [[u8; 4]; 5] =
    [[10, 0, 0, 1], [10, 0, 0, 2], [192, 0, 2, 9], [198, 51, 100, 7], [203, 0, 113, 5]];
/// Outer UDP ports: tunnel ports and ordinary ones, so that some datagrams on a tunnel port do
/// not decode and some tunnels run on ordinary ports.
const PORTS: [u16; 6] = [3544, 2152, 4789, 40000, 40001, 53];

/// One packet of the mix.
#[derive(Clone, Debug)]
struct Spec {
    /// Outer source and destination (indexes into `OUTER`, equal ones made different).
    outer: (usize, usize),
    /// Outer UDP ports (indexes into `PORTS`), unless `natural_port` picks the shape's own.
    ports: (usize, usize),
    natural_port: bool,
    shape: Shape,
    /// Inner socket pair: host pair and port pair picked from small pools so connections meet.
    inner_hosts: usize,
    inner_ports: (u16, u16),
    /// Inner TCP flags (index into `FLAGS`), sequence number step.
    flags: usize,
    seq: u32,
    /// Milliseconds since the packet before.
    gap_ms: u64,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// UDP with a payload that is no tunnel.
    Junk,
    /// Teredo bubble: an IPv6 header with no next header, optionally behind an origin indication.
    Bubble { origin: bool },
    /// IPv6 TCP or UDP in Teredo.
    Teredo { tcp: bool, origin: bool },
    /// GTP-U carrying IPv4 UDP (port 3544) carrying Teredo carrying IPv6 TCP (or a bubble).
    GtpTeredo { bubble: bool },
    /// GTP-U carrying IPv4 TCP.
    Gtp,
    /// VXLAN carrying Ethernet, IPv4 and TCP.
    Vxlan,
    /// Plain TCP between the outer hosts.
    PlainTcp,
}

const FLAGS: [&str; 6] = ["S", "SA", "A", "PA", "FA", "R"];

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Junk),
        any::<bool>().prop_map(|origin| Shape::Bubble { origin }),
        (any::<bool>(), any::<bool>()).prop_map(|(tcp, origin)| Shape::Teredo { tcp, origin }),
        any::<bool>().prop_map(|bubble| Shape::GtpTeredo { bubble }),
        Just(Shape::Gtp),
        Just(Shape::Vxlan),
        Just(Shape::PlainTcp),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (0..OUTER.len(), 0..OUTER.len()),
        (0..PORTS.len(), 0..PORTS.len()),
        prop::bool::weighted(0.7),
        shape(),
        0..3usize,
        (
            prop_oneof![Just(80u16), Just(443), 1024..1030u16],
            prop_oneof![Just(80u16), Just(443), 1024..1030u16],
        ),
        0..FLAGS.len(),
        0..3000u32,
        prop_oneof![0..5u64, 0..2000u64, Just(70_000u64)],
    )
        .prop_map(|(outer, ports, natural_port, shape, inner_hosts, inner_ports, flags, seq, gap_ms)| {
            Spec { outer, ports, natural_port, shape, inner_hosts, inner_ports, flags, seq, gap_ms }
        })
}

/// Teredo addresses (2001:0::/32) for the inner IPv6 hosts.
fn v6(host: usize, side: usize) -> [u8; 16] {
    Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, (host * 2 + side) as u16 + 1).octets()
}

fn tcp_flags(builder: etherparse::PacketBuilderStep<etherparse::TcpHeader>, s: &Spec) -> Vec<u8> {
    let flags = FLAGS[s.flags];
    let mut b = builder;
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(s.seq.wrapping_mul(7));
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('R') {
        b = b.rst();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    let payload = if flags.contains('P') { vec![0x41; 20] } else { Vec::new() };
    let mut out = Vec::new();
    b.write(&mut out, &payload).unwrap();
    out
}

/// The inner IPv6 packet of a Teredo layer: TCP, UDP, or a bubble (no next header).
fn inner_v6(s: &Spec, what: Option<bool>) -> Vec<u8> {
    let (src, dst) = (v6(s.inner_hosts, 0), v6(s.inner_hosts, 1));
    let (sp, dp) = s.inner_ports;
    match what {
        None => {
            let mut h = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
            h.extend_from_slice(&src);
            h.extend_from_slice(&dst);
            h
        }
        Some(true) => tcp_flags(PacketBuilder::ipv6(src, dst, 64).tcp(sp, dp, s.seq, 8192), s),
        Some(false) => {
            let mut out = Vec::new();
            PacketBuilder::ipv6(src, dst, 64).udp(sp, dp).write(&mut out, b"inner").unwrap();
            out
        }
    }
}

fn inner_v4_tcp(s: &Spec) -> Vec<u8> {
    let src = [172, 16, s.inner_hosts as u8, 1];
    let dst = [172, 16, s.inner_hosts as u8, 2];
    tcp_flags(PacketBuilder::ipv4(src, dst, 64).tcp(s.inner_ports.0, s.inner_ports.1, s.seq, 8192), s)
}

fn teredo(s: &Spec, what: Option<bool>, origin: bool) -> Vec<u8> {
    let mut p = if origin { vec![0, 0, 0x12, 0x34, 0xc0, 0, 2, 9] } else { Vec::new() };
    p.extend(inner_v6(s, what));
    p
}

fn gtp(inner: Vec<u8>) -> Vec<u8> {
    let mut p = vec![0x30, 0xff];
    p.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 7]);
    p.extend(inner);
    p
}

/// One Ethernet frame for `s`.
fn frame(s: &Spec) -> Vec<u8> {
    let (a, mut b) = s.outer;
    if a == b {
        b = (b + 1) % OUTER.len();
    }
    let (src, dst) = (OUTER[a], OUTER[b]);
    let natural = match s.shape {
        Shape::Bubble { .. } | Shape::Teredo { .. } => Some(3544),
        Shape::GtpTeredo { .. } | Shape::Gtp => Some(2152),
        Shape::Vxlan => Some(4789),
        Shape::Junk | Shape::PlainTcp => None,
    };
    let (mut sp, mut dp) = (PORTS[s.ports.0], PORTS[s.ports.1]);
    if let (true, Some(port)) = (s.natural_port, natural) {
        // The tunnel's port on one side, the other side keeps its pooled port.
        if s.ports.0.is_multiple_of(2) {
            sp = port;
        } else {
            dp = port;
        }
    }
    let payload = match s.shape {
        Shape::Junk => b"not a tunnel at all".to_vec(),
        Shape::Bubble { origin } => teredo(s, None, origin),
        Shape::Teredo { tcp, origin } => teredo(s, Some(tcp), origin),
        Shape::GtpTeredo { bubble } => {
            let mut udp = Vec::new();
            let t = teredo(s, (!bubble).then_some(true), false);
            PacketBuilder::ipv4([100, 64, 0, 1], [100, 64, 0, 2], 64)
                .udp(40000, 3544)
                .write(&mut udp, &t)
                .unwrap();
            gtp(udp)
        }
        Shape::Gtp => gtp(inner_v4_tcp(s)),
        Shape::Vxlan => {
            let mut p = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
            p.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
            p.extend(inner_v4_tcp(s));
            p
        }
        Shape::PlainTcp => {
            let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
            return tcp_flags(b.tcp(s.inner_ports.0, s.inner_ports.1, s.seq, 8192), s);
        }
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .udp(sp, dp)
        .write(&mut out, &payload)
        .unwrap();
    out
}

/// A pcap of the specs, one frame each.
fn capture(specs: &[Spec]) -> Vec<u8> {
    let mut us = 1_700_000_000_000_000u64;
    let frames: Vec<(u64, Vec<u8>)> = specs
        .iter()
        .map(|s| {
            us += s.gap_ms * 1000 + 1;
            (us, frame(s))
        })
        .collect();
    pcap_bytes(&frames)
}

/// Every connection's record as a JSON line, by id, and the accounting, for `jobs` threads.
fn analyze(path: &Path, jobs: usize) -> (Vec<String>, String) {
    let mut conns = Vec::new();
    let opts = Options { jobs, ..Options::default() };
    let analysis = pipeline::analyze(&[path.to_path_buf()], &opts, None, &mut |c| {
        conns.push((c.id, serde_json::to_string(&ConnRecord::new(&c, Some(0))).unwrap()));
        Ok(())
    })
    .unwrap();
    conns.sort();
    (conns.into_iter().map(|(_, line)| line).collect(), format!("{:?}", analysis.accounting))
}

fn same_for_every_thread_count(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mix.pcap");
    std::fs::write(&path, bytes).unwrap();
    let one = analyze(&path, 1);
    for jobs in 2..=5 {
        let more = analyze(&path, jobs);
        prop_assert_eq!(&one.1, &more.1, "accounting, --jobs {}", jobs);
        prop_assert_eq!(&one.0, &more.0, "connections, --jobs {}", jobs);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
    ))]

    #[test]
    fn tunnelled_and_plain_traffic_gives_one_answer_for_every_thread_count(
        specs in proptest::collection::vec(spec(), 1..120)
    ) {
        same_for_every_thread_count(&capture(&specs))?;
    }
}

/// The mix decodes as intended: each shape reaches the table as the tunnel it is meant to be
/// (so the property above is not passing on traffic that never tunnels).
#[test]
fn the_mix_holds_every_kind_of_tunnel_and_bubble() {
    let base = Spec {
        outer: (0, 2),
        ports: (3, 3),
        natural_port: true,
        shape: Shape::Junk,
        inner_hosts: 0,
        inner_ports: (1024, 80),
        flags: 0,
        seq: 1,
        gap_ms: 1,
    };
    let shapes = [
        Shape::Bubble { origin: false },
        Shape::Bubble { origin: true },
        Shape::Teredo { tcp: true, origin: true },
        Shape::Teredo { tcp: false, origin: false },
        Shape::GtpTeredo { bubble: false },
        Shape::GtpTeredo { bubble: true },
        Shape::Gtp,
        Shape::Vxlan,
    ];
    for shape in shapes {
        let packet = frame(&Spec { shape, ..base.clone() });
        let decoded = sockscope::decode::decode(1, &packet, true);
        assert!(!decoded.tunnels.is_empty(), "{shape:?} decodes as a tunnel");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.pcap");
    let specs: Vec<Spec> = shapes.iter().map(|&shape| Spec { shape, ..base.clone() }).collect();
    std::fs::write(&path, capture(&specs)).unwrap();
    let (conns, _) = analyze(&path, 1);
    let kinds: Vec<&str> =
        ["teredo", "gtpu", "vxlan"].into_iter().filter(|k| conns.iter().any(|c| c.contains(k))).collect();
    assert_eq!(kinds, ["teredo", "gtpu", "vxlan"]);
}

/// Relays: one inner Teredo connection reaching its server through two relays, with a bubble
/// between, on an ordinary port; the smallest shape that split across tables.
#[test]
fn a_teredo_connection_through_two_relays_and_a_bubble_is_one_connection_for_every_thread_count() {
    let base = Spec {
        outer: (0, 3),
        ports: (3, 0),
        natural_port: false,
        shape: Shape::Teredo { tcp: true, origin: false },
        inner_hosts: 1,
        inner_ports: (1025, 80),
        flags: 0,
        seq: 5,
        gap_ms: 1,
    };
    let specs = vec![
        base.clone(),
        Spec { shape: Shape::Junk, ..base.clone() },
        Spec { outer: (4, 0), ports: (0, 3), flags: 1, ..base.clone() },
        Spec { shape: Shape::Bubble { origin: true }, outer: (1, 4), ..base.clone() },
        Spec { outer: (1, 4), flags: 2, ..base.clone() },
    ];
    same_for_every_thread_count(&capture(&specs)).unwrap();
}
