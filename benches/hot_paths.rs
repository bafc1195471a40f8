//! Micro-benchmarks of the hot paths: decoding a frame, a segment's trip through the connection
//! table, and a connection's JSON line. Run with `cargo bench`; bench/run.sh measures whole runs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;

use sockscope::decode::{self, Decoded};
use sockscope::flow::table::{ConnTable, Context, Timeouts};
use sockscope::report::jsonl;
use sockscope::report::record::ConnRecord;
use sockscope::types::CommunityId;
use sockscope::types::Timestamp;

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
    g.bench_function("JSON line from record", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            buf.clear();
            for r in &records {
                jsonl::conn_line(&mut buf, black_box(r));
            }
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(benches, decode_frames, table, format);
criterion_main!(benches);
