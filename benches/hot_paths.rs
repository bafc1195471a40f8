//! Micro-benchmarks of the hot paths: decoding a frame, a segment's trip through the connection
//! table, and a connection's JSON line. Run with `cargo bench`; bench/run.sh measures whole runs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;

use sockscope::decode::{self, Decoded};
use sockscope::flow::table::{ConnTable, Context, Timeouts};
use sockscope::report::jsonl;
use sockscope::report::record::ConnRecord;
use sockscope::tcp::verdict::ConnState;
use sockscope::types::CommunityId;
use sockscope::types::{Duration, Timestamp};

fn frame(client: u16, payload: usize, seq: u32) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, (client >> 8) as u8, client as u8], [192, 168, 0, 1], 64)
        .tcp(client, 443, seq, 65535)
        .ack(1)
        .psh();
    let mut out = Vec::new();
    b.write(&mut out, &vec![0x61; payload]).unwrap();
    out
}

fn decode_frames(c: &mut Criterion) {
    let data = frame(40000, 500, 1);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ethernet ipv4 tcp 500 B", |b| {
        b.iter(|| black_box(decode::decode(1, black_box(&data), true)))
    });
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .tcp(40000, 443, 1, 65535)
        .ack(1)
        .write(&mut v6, &[0x61; 500])
        .unwrap();
    g.bench_function("ethernet ipv6 tcp 500 B", |b| {
        b.iter(|| black_box(decode::decode(1, black_box(&v6), true)))
    });
    g.finish();
}

fn table(c: &mut Criterion) {
    // 4096 connections taking turns, as in a busy capture: the table lookup and TCP state
    // update per segment.
    const CONNS: u16 = 4096;
    let segments: Vec<_> = (0..CONNS)
        .map(|i| match decode::decode(1, &frame(1024 + i, 100, 1000), true).inner {
            Decoded::Tcp(ip, seg) => (ip, seg),
            _ => unreachable!("a TCP frame"),
        })
        .collect();
    let mut g = c.benchmark_group("table");
    g.throughput(Throughput::Elements(CONNS as u64));
    g.bench_function("4096 live connections, one segment each", |b| {
        let mut t = ConnTable::new(Timeouts::default(), 10_000_000);
        let mut ts = 1_700_000_000_000_000_000u64;
        let mut round = 0u32;
        b.iter(|| {
            round += 1;
            for (ip, seg) in &segments {
                ts += 1_000;
                let mut seg = *seg;
                seg.seq = seg.seq.advance(round * 100);
                black_box(t.tcp(Timestamp::from_nanos(ts), ip, &seg, &Context::default(), None));
            }
            t.drain_ended().for_each(drop);
        })
    });
    g.finish();
}

fn format(c: &mut Criterion) {
    // The teardowns sample's connections: full TCP records (handshake, teardown, data).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/teardowns.pcap");
    let mut conns = Vec::new();
    sockscope::pipeline::analyze(&[path], &Default::default(), None, &mut |conn| {
        conns.push(conn);
        Ok(())
    })
    .expect("the sample reads");
    let records: Vec<_> = conns.iter().map(|c| ConnRecord::new(c, Some(0))).collect();
    let scan = scan_records();
    let mut g = c.benchmark_group("format");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("record from connection", |b| {
        b.iter(|| conns.iter().map(|c| black_box(ConnRecord::new(black_box(c), Some(0))).id).sum::<u64>())
    });
    // Hashed for every record, and its text written on every JSON line.
    g.bench_function("Community ID hashed and written", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            buf.clear();
            for r in &records {
                CommunityId::new(black_box(0), r.proto, black_box(r.orig), r.resp).write_to(&mut buf);
            }
            black_box(buf.len())
        })
    });
    g.bench_function("JSON line from record", |b| b.iter(|| json_lines(&records)));
    // A scan's records, most of a scan's output: a SYN never answered, one in twenty refused.
    g.throughput(Throughput::Elements(scan.len() as u64));
    g.bench_function("JSON line from record, scan", |b| b.iter(|| json_lines(&scan)));
    g.finish();
}

/// Formats `records` as the writer does, into a buffer written out (here: emptied) in pieces.
fn json_lines(records: &[ConnRecord]) -> usize {
    let mut buf = Vec::with_capacity(68 << 10);
    let mut written = 0;
    for r in records {
        jsonl::conn_line(&mut buf, black_box(r));
        if buf.len() >= 64 << 10 {
            written += black_box(&buf).len();
            buf.clear();
        }
    }
    written + buf.len()
}

/// SYNs in the scan: records enough (55 MB) not to stay in the caches, as in a real run (a loop
/// over a few that stay in the caches favours calls to `memmove`, which cost more in a real run).
const SCAN_SYNS: u32 = 100_000;

/// The records of `SCAN_SYNS` SYNs to distinct hosts and ports, every twentieth answered by a RST.
fn scan_records() -> Vec<ConnRecord> {
    let mut t = ConnTable::new(Timeouts::default(), 10_000_000);
    let ts = |i: u32| Timestamp::from_nanos(1_700_000_000_000_000_000 + u64::from(i) * 1_000);
    let segment = |frame: &[u8]| match decode::decode(1, frame, true).inner {
        Decoded::Tcp(ip, seg) => (ip, seg),
        _ => unreachable!("a TCP frame"),
    };
    for i in 0..SCAN_SYNS {
        let [_, mid, hi, lo] = i.to_be_bytes();
        let port = 1 + (i * 7919 % 65535) as u16;
        let mut syn = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 1], [10, mid, hi, lo], 64)
            .tcp(40000, port, i.wrapping_mul(2_654_435_761), 1024)
            .syn()
            .write(&mut syn, &[])
            .unwrap();
        let (ip, seg) = segment(&syn);
        t.tcp(ts(i), &ip, &seg, &Context::default(), None);
        if i % 20 == 0 {
            let mut rst = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
                .ipv4([10, mid, hi, lo], [198, 51, 100, 1], 64)
                .tcp(port, 40000, 0, 0)
                .rst()
                .ack(i.wrapping_mul(2_654_435_761).wrapping_add(1))
                .write(&mut rst, &[])
                .unwrap();
            let (ip, seg) = segment(&rst);
            t.tcp(ts(i).plus(Duration::from_secs_f64(300e-6).unwrap()), &ip, &seg, &Context::default(), None);
        }
    }
    let records: Vec<_> = t.finish(None).map(|c| ConnRecord::new(&c, Some(0))).collect();
    let refused = records.iter().filter(|r| r.conn_state == ConnState::REJ).count();
    assert_eq!((records.len(), refused), (SCAN_SYNS as usize, SCAN_SYNS as usize / 20), "the scan's records");
    records
}

criterion_group!(benches, decode_frames, table, format);
criterion_main!(benches);
