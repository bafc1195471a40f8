//! Micro-benchmarks of the per-packet hot paths: decoding a frame, and a segment's trip through
//! the connection table. Run with `cargo bench`; bench/run.sh measures whole runs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;

use sockscope::capture::Timestamp;
use sockscope::decode::{self, Decoded};
use sockscope::flow::table::{ConnTable, Context, Timeouts};

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
                black_box(t.tcp(Timestamp::from_nanos(ts), ip, &seg, &Context::default()));
            }
            t.drain_ended().for_each(drop);
        })
    });
    g.finish();
}

criterion_group!(benches, decode_frames, table);
criterion_main!(benches);
