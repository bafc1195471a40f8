//! Deterministic synthetic captures for benchmarks and tests.
//!
//! ```text
//! cargo run --release --example gen -- PROFILE PACKETS OUT.pcap [SEED]
//! ```
//! Profiles: `realistic` (many concurrent TCP connections with handshakes, data both ways, a few
//! percent retransmissions and reordering, every teardown kind, UDP request/response, about 85%
//! IPv4 / 15% IPv6, 500-600 bytes per packet on average), `tiny` (the same mix with small
//! payloads: 70-80 bytes per packet, per-packet cost), `manyconn` (hundreds of thousands of short
//! connections: table and memory cost), `scan` (a SYN scan of distinct targets, about a million
//! SYNs a second: 94% unanswered, 5% refused, 1% answered and reset by the scanner; half-open
//! connections' cost). The same arguments always give the same file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// xorshift64*: small, fast, and reproducible across platforms.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy)]
pub struct Profile {
    /// Connections open at once.
    concurrent: usize,
    /// Data segments per direction: a range.
    segments: (u64, u64),
    /// Payload bytes per data segment: a range.
    payload: (u64, u64),
    /// Percent of new flows that are UDP request/response.
    udp_percent: u64,
    /// Percent of data segments retransmitted, and of segment pairs sent out of order.
    rexmit_percent: u64,
    reorder_percent: u64,
    /// Most microseconds between two packets (the gap is 1 to this).
    max_gap_us: u64,
    /// A SYN scan instead of conversations: each flow a SYN to a new target, mostly unanswered
    /// (`scan_script`), the targets spread over the whole IPv4 space.
    scan: bool,
}

pub fn profile(name: &str) -> Option<Profile> {
    Some(match name {
        "realistic" => Profile {
            concurrent: 2_000,
            segments: (1, 24),
            payload: (100, 1370),
            udp_percent: 15,
            rexmit_percent: 3,
            reorder_percent: 2,
            max_gap_us: 40,
            scan: false,
        },
        "tiny" => Profile {
            concurrent: 2_000,
            segments: (1, 24),
            payload: (1, 24),
            udp_percent: 15,
            rexmit_percent: 3,
            reorder_percent: 2,
            max_gap_us: 40,
            scan: false,
        },
        "manyconn" => Profile {
            concurrent: 200_000,
            segments: (1, 2),
            payload: (20, 200),
            udp_percent: 10,
            rexmit_percent: 1,
            reorder_percent: 1,
            max_gap_us: 40,
            scan: false,
        },
        // A million SYNs a second from a few scanners: 94% unanswered, 5% refused, 1% answered
        // and then reset by the scanner.
        "scan" => Profile {
            concurrent: 1_000,
            segments: (0, 0),
            payload: (0, 0),
            udp_percent: 0,
            rexmit_percent: 0,
            reorder_percent: 0,
            max_gap_us: 1,
            scan: true,
        },
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Teardown {
    ClientFourWay,
    ServerFourWay,
    Combined,
    Simultaneous,
    HalfClose,
    ClientRst,
    ServerRst,
    FinThenRst,
    Refused,
    Unanswered,
    StillOpen,
}

const TEARDOWNS: [Teardown; 11] = [
    Teardown::ClientFourWay,
    Teardown::ServerFourWay,
    Teardown::Combined,
    Teardown::Simultaneous,
    Teardown::HalfClose,
    Teardown::ClientRst,
    Teardown::ServerRst,
    Teardown::FinThenRst,
    Teardown::Refused,
    Teardown::Unanswered,
    Teardown::StillOpen,
];

/// One scripted flow: the packets it still has to send.
struct Flow {
    v6: bool,
    udp: bool,
    client: ([u8; 16], u16),
    server: ([u8; 16], u16),
    steps: Vec<Step>,
    next: usize,
}

#[derive(Clone, Copy)]
struct Step {
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u16,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One target of a SYN scan: unanswered, refused, or answered and reset by the scanner.
fn scan_script(rng: &mut Rng) -> Vec<Step> {
    let c = rng.next() as u32;
    let step = |from_client, flags, seq, ack| Step { from_client, flags, seq, ack, len: 0 };
    let mut steps = vec![step(true, SYN, c, 0)];
    match rng.below(100) {
        0..=93 => {}
        94..=98 => steps.push(step(false, RST | ACK, 0, c.wrapping_add(1))),
        _ => {
            let s = rng.next() as u32;
            steps.push(step(false, SYN | ACK, s, c.wrapping_add(1)));
            steps.push(step(true, RST, c.wrapping_add(1), 0));
        }
    }
    steps
}

fn script(rng: &mut Rng, p: &Profile) -> (bool, Vec<Step>) {
    let udp = rng.chance(p.udp_percent);
    let mut steps = Vec::new();
    let payload = |rng: &mut Rng| (p.payload.0 + rng.below(p.payload.1 - p.payload.0 + 1)) as u16;
    if udp {
        for _ in 0..1 + rng.below(3) {
            steps.push(Step { from_client: true, flags: 0, seq: 0, ack: 0, len: payload(rng) });
            steps.push(Step { from_client: false, flags: 0, seq: 0, ack: 0, len: payload(rng) });
        }
        return (true, steps);
    }
    let teardown = TEARDOWNS[rng.below(TEARDOWNS.len() as u64) as usize];
    let (mut c, mut s) = (rng.next() as u32, rng.next() as u32);
    let step = |from_client, flags, seq, ack, len| Step { from_client, flags, seq, ack, len };
    steps.push(step(true, SYN, c, 0, 0));
    match teardown {
        Teardown::Unanswered => {
            steps.push(step(true, SYN, c, 0, 0));
            return (false, steps);
        }
        Teardown::Refused => {
            steps.push(step(false, RST | ACK, 0, c.wrapping_add(1), 0));
            return (false, steps);
        }
        _ => {}
    }
    c = c.wrapping_add(1);
    steps.push(step(false, SYN | ACK, s, c, 0));
    s = s.wrapping_add(1);
    steps.push(step(true, ACK, c, s, 0));
    let rounds = p.segments.0 + rng.below(p.segments.1 - p.segments.0 + 1);
    for _ in 0..rounds {
        let n = payload(rng);
        steps.push(step(true, PSH | ACK, c, s, n));
        if rng.chance(p.rexmit_percent) {
            steps.push(step(true, PSH | ACK, c, s, n));
        }
        c = c.wrapping_add(n as u32);
        let m = payload(rng);
        steps.push(step(false, PSH | ACK, s, c, m));
        s = s.wrapping_add(m as u32);
        if rng.chance(p.reorder_percent) {
            let k = payload(rng);
            steps.push(step(false, PSH | ACK, s.wrapping_add(k as u32), c, k));
            steps.push(step(false, PSH | ACK, s, c, k));
            s = s.wrapping_add(2 * k as u32);
        }
        steps.push(step(true, ACK, c, s, 0));
    }
    match teardown {
        Teardown::ClientFourWay => {
            steps.extend([step(true, FIN | ACK, c, s, 0), step(false, ACK, s, c + 1, 0)]);
            steps.extend([step(false, FIN | ACK, s, c + 1, 0), step(true, ACK, c + 1, s + 1, 0)]);
        }
        Teardown::ServerFourWay => {
            steps.extend([step(false, FIN | ACK, s, c, 0), step(true, ACK, c, s + 1, 0)]);
            steps.extend([step(true, FIN | ACK, c, s + 1, 0), step(false, ACK, s + 1, c + 1, 0)]);
        }
        Teardown::Combined => {
            steps.extend([step(true, FIN | ACK, c, s, 0), step(false, FIN | ACK, s, c + 1, 0)]);
            steps.push(step(true, ACK, c + 1, s + 1, 0));
        }
        Teardown::Simultaneous => {
            steps.extend([step(true, FIN | ACK, c, s, 0), step(false, FIN | ACK, s, c, 0)]);
            steps.extend([step(true, ACK, c + 1, s + 1, 0), step(false, ACK, s + 1, c + 1, 0)]);
        }
        Teardown::HalfClose => {
            steps.extend([step(true, FIN | ACK, c, s, 0), step(false, ACK, s, c + 1, 0)]);
            let n = payload(rng);
            steps.push(step(false, PSH | ACK, s, c + 1, n));
            s = s.wrapping_add(n as u32);
            steps.extend([step(true, ACK, c + 1, s, 0), step(false, FIN | ACK, s, c + 1, 0)]);
            steps.push(step(true, ACK, c + 1, s + 1, 0));
        }
        Teardown::ClientRst => steps.push(step(true, RST | ACK, c, s, 0)),
        Teardown::ServerRst => steps.push(step(false, RST, s, 0, 0)),
        Teardown::FinThenRst => {
            steps.extend([step(false, FIN | ACK, s, c, 0), step(true, ACK, c, s + 1, 0)]);
            steps.push(step(false, RST, s + 1, 0, 0));
        }
        Teardown::StillOpen | Teardown::Refused | Teardown::Unanswered => {}
    }
    (false, steps)
}

struct Writer<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    fn header(&mut self) -> std::io::Result<()> {
        // pcap, little endian, microseconds, v2.4, snaplen 65535, Ethernet.
        self.out.write_all(&[
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
        ])
    }

    fn packet(&mut self, ts_us: u64, f: &Flow, st: &Step) -> std::io::Result<()> {
        let ((src, sport), (dst, dport)) =
            if st.from_client { (f.client, f.server) } else { (f.server, f.client) };
        let l4_len = if f.udp { 8 } else { 20 } + st.len as usize;
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
        if f.v6 {
            b.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            b.extend_from_slice(&(l4_len as u16).to_be_bytes());
            b.extend_from_slice(&[if f.udp { 17 } else { 6 }, 64]);
            b.extend_from_slice(&src);
            b.extend_from_slice(&dst);
        } else {
            b.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            b.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            b.extend_from_slice(&[0, 0, 0x40, 0, 64, if f.udp { 17 } else { 6 }, 0, 0]);
            b.extend_from_slice(&src[12..]);
            b.extend_from_slice(&dst[12..]);
        }
        b.extend_from_slice(&sport.to_be_bytes());
        b.extend_from_slice(&dport.to_be_bytes());
        if f.udp {
            b.extend_from_slice(&(l4_len as u16).to_be_bytes());
            b.extend_from_slice(&[0, 0]);
        } else {
            b.extend_from_slice(&st.seq.to_be_bytes());
            b.extend_from_slice(&st.ack.to_be_bytes());
            b.extend_from_slice(&[0x50, st.flags, 0xff, 0xff, 0, 0, 0, 0]);
        }
        b.resize(b.len() + st.len as usize, 0x61);
        let len = b.len() as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.buf)
    }
}

fn new_flow(rng: &mut Rng, p: &Profile, serial: u64) -> Flow {
    if p.scan {
        let mut scanner = [0u8; 16];
        let mut target = [0u8; 16];
        scanner[12..16].copy_from_slice(&[198, 51, 100, 1 + rng.below(4) as u8]);
        // Each target a new address: the serial number, scattered over the IPv4 space.
        target[12..16].copy_from_slice(&((serial as u32).wrapping_mul(2_654_435_761)).to_be_bytes());
        let dport = [22, 23, 80, 443, 445, 3389, 8080, 5900][rng.below(8) as usize];
        let sport = 32_768 + rng.below(28_000) as u16;
        return Flow {
            v6: false,
            udp: false,
            client: (scanner, sport),
            server: (target, dport),
            steps: scan_script(rng),
            next: 0,
        };
    }
    let v6 = rng.chance(15);
    let (udp, steps) = script(rng, p);
    let mut client = [0u8; 16];
    let mut server = [0u8; 16];
    if v6 {
        client[..2].copy_from_slice(&[0x20, 0x01]);
        server[..2].copy_from_slice(&[0x20, 0x01]);
        client[15] = 1;
        server[14] = 1;
    }
    // Clients spread over 10.0.0.0/8, a few hundred servers; ports make each flow's pair unique.
    client[12] = 10;
    client[13..16].copy_from_slice(&(rng.next() as u32 & 0xff_ffff).to_be_bytes()[1..]);
    server[12..16].copy_from_slice(&[192, 168, (rng.below(4)) as u8, 1 + rng.below(200) as u8]);
    let sport = 1024 + (serial % 64_000) as u16;
    let dport = [80, 443, 8080, 53, 25, 22, 3306, 5432][rng.below(8) as usize];
    Flow { v6, udp, client: (client, sport), server: (server, dport), steps, next: 0 }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: gen PROFILE(realistic|tiny|manyconn|scan) PACKETS OUT.pcap [SEED]";
    let (Some(p), Some(packets), Some(out)) =
        (args.get(1).and_then(|n| profile(n)), args.get(2).and_then(|n| n.parse::<u64>().ok()), args.get(3))
    else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let seed = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0x5eed_u64);
    let file = match File::create(out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gen: {out}: {e}");
            return ExitCode::from(2);
        }
    };
    match write_capture(p, packets, seed, BufWriter::with_capacity(1 << 20, file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen: {out}: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes a capture of `packets` packets of the named profile (see `profile`) to `out`; the tests
/// use it too (`tests/generated.rs`).
pub fn write_capture(p: Profile, packets: u64, seed: u64, out: impl Write) -> std::io::Result<()> {
    generate(&mut Writer { out, buf: Vec::with_capacity(2048) }, p, packets, seed)
}

fn generate<W: Write>(w: &mut Writer<W>, p: Profile, packets: u64, seed: u64) -> std::io::Result<()> {
    let mut rng = Rng(seed | 1);
    w.header()?;
    let mut flows: Vec<Flow> = Vec::with_capacity(p.concurrent);
    let mut serial = 0u64;
    let mut ts_us = 1_700_000_000_000_000u64;
    for _ in 0..packets {
        // Refill to the target concurrency; a finished flow's slot goes to a new one.
        while flows.len() < p.concurrent {
            flows.push(new_flow(&mut rng, &p, serial));
            serial += 1;
        }
        let i = rng.below(flows.len() as u64) as usize;
        let st = flows[i].steps[flows[i].next];
        w.packet(ts_us, &flows[i], &st)?;
        flows[i].next += 1;
        if flows[i].next == flows[i].steps.len() {
            flows.swap_remove(i);
        }
        ts_us += 1 + rng.below(p.max_gap_us);
    }
    w.out.flush()
}
