//! Damaged and hostile input: arbitrary and mutated bytes never panic, never lose a packet's
//! account, and end in exit 0 (maybe with a warning) or 2 with a one-line message.

mod common;

use std::io::Cursor;

use proptest::prelude::Rng as _;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng};

use common::*;
use sockscope::capture::{CaptureReader, Record};
use sockscope::decode;
use sockscope::pipeline::{self, Options};

/// Reads every record of an in-memory capture; returns (records, error).
fn read_all(bytes: Vec<u8>) -> (u64, Option<String>) {
    let mut reader = match CaptureReader::new(Box::new(Cursor::new(bytes))) {
        Ok(r) => r,
        Err(e) => return (0, Some(e.to_string())),
    };
    let mut n = 0;
    loop {
        match reader.next_record() {
            Ok(Some(Record::Frame(f))) => {
                n += 1;
                let _ = decode::decode(f.link_type, f.data, true);
            }
            Ok(Some(Record::Bad(_))) => n += 1,
            Ok(None) => return (n, None),
            Err(e) => return (n, Some(e.to_string())),
        }
    }
}

/// Deterministic pseudo-random numbers for the mutation tests: proptest's seeded generator.
struct Rng(TestRng);

impl Rng {
    fn seeded(seed: u8) -> Self {
        let mut bytes = [0u8; 32];
        bytes[0] = seed;
        Rng(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut files = vec![];
    for name in ["teardowns.pcap", "udp_and_reuse.pcapng", "ipv6.pcap"] {
        files.push(std::fs::read(samples().join(name)).unwrap());
    }
    files
}

/// Runs the full analysis on bytes written to a file and checks the accounting identity.
fn analyze_bytes(bytes: &[u8], name: &str) {
    let dir = std::env::temp_dir().join(format!("sockscope-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let run = |jobs| {
        let opts = Options { jobs, ..Options::default() };
        pipeline::analyze(std::slice::from_ref(&path), &opts, None, &mut |_| Ok(())).unwrap()
    };
    let a = run(1);
    assert!(a.accounting.balances(), "{name}: accounting identity");
    let counted: u64 = a.files.iter().map(|f| f.packets).sum();
    assert_eq!(counted, a.accounting.total, "{name}");
    // Three tables side by side: the same front, so the same accounting, and no panic.
    let three = run(3);
    assert_eq!(format!("{:?}", three.accounting), format!("{:?}", a.accounting), "{name}: --jobs 3");
}

proptest! {
    // 2000 cases in CI; a longer soak: PROPTEST_CASES=1000000 cargo test --release --test hostile
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        read_all(bytes);
    }

    /// Past a valid magic, so that each pcap flavour's record reader meets the junk.
    #[test]
    fn arbitrary_records_never_panic_the_reader(
        magic in prop_oneof![Just(0xa1b2c3d4u32), Just(0xa1b23c4d), Just(0xa1b2cd34)],
        big_endian in any::<bool>(),
        rest in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let magic = if big_endian { magic.to_be_bytes() } else { magic.to_le_bytes() };
        read_all([&magic[..], &rest].concat());
    }

    #[test]
    fn arbitrary_frames_never_panic_the_decoder(link in prop_oneof![Just(0u32), Just(1), Just(9), Just(12), Just(50), Just(101), Just(108), Just(104), Just(105), Just(113), Just(119), Just(127), Just(163), Just(192), Just(197), Just(239), Just(242), Just(276), any::<u32>()],
                                               bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode::decode(link, &bytes, true);
    }

    /// Radio headers, ERF records and 802.11 data frames that pass their first checks (version,
    /// magic, a length within the frame, the data type), then junk: the walks behind those
    /// checks meet it too.
    #[test]
    fn plausible_link_headers_then_junk_never_panic_the_decoder(
        kind in 0usize..6,
        len in 0u16..96,
        mut bytes in proptest::collection::vec(any::<u8>(), 8..200),
    ) {
        let link = match kind {
            0 | 1 => {
                bytes[0] = 0;
                bytes[2..4].copy_from_slice(&len.to_le_bytes());
                if kind == 0 { 127 } else { 192 }
            }
            2 => {
                bytes[..4].copy_from_slice(&0x44u32.to_le_bytes());
                bytes[4..8].copy_from_slice(&u32::from(len).to_le_bytes());
                119
            }
            3 => {
                bytes[..4].copy_from_slice(&0x8021_1001u32.to_be_bytes());
                bytes[4..8].copy_from_slice(&u32::from(len).to_be_bytes());
                163
            }
            4 => 197,
            _ => {
                bytes[0] = if len % 2 == 0 { 0x08 } else { 0x88 };
                bytes[1] &= !0x40;
                105
            }
        };
        let _ = decode::decode(link, &bytes, true);
    }

    #[test]
    fn capture_headers_with_garbage_records(magic in 0usize..3, body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let header: &[u8] = match magic {
            0 => &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0],
            1 => &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 101],
            _ => &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0],
        };
        read_all([header, &body].concat());
    }
}

#[test]
fn truncation_at_every_length_keeps_what_came_before() {
    for (i, seed) in seeds().into_iter().enumerate() {
        let (full, err) = read_all(seed.clone());
        assert!(err.is_none());
        let mut last = 0;
        for cut in 0..seed.len() {
            let (n, err) = read_all(seed[..cut].to_vec());
            assert!(n <= full, "seed {i} cut {cut}");
            assert!(n >= last || err.is_some(), "seed {i} cut {cut}: fewer records than a shorter cut");
            if err.is_none() {
                last = n;
            }
        }
    }
}

#[test]
fn byte_flips_with_a_fixed_seed() {
    let mut rng = Rng::seeded(1);
    for (i, seed) in seeds().into_iter().enumerate() {
        for round in 0..300 {
            let mut bytes = seed.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            read_all(bytes.clone());
            if round % 30 == 0 {
                analyze_bytes(&bytes, &format!("flip-{i}-{round}.pcap"));
            }
        }
    }
}

#[test]
fn forged_length_fields() {
    // pcap: record lengths at offset 24+8 (incl_len) and 24+12 (orig_len) of the first record.
    let pcap = std::fs::read(samples().join("teardowns.pcap")).unwrap();
    for forged in [0u32, 1, 15, 65535, 0x7fff_ffff, 0xffff_ffff] {
        let mut b = pcap.clone();
        b[32..36].copy_from_slice(&forged.to_le_bytes());
        let (_, err) = read_all(b.clone());
        if forged > 64 << 20 {
            let err = err.expect("a record claiming gigabytes is an error");
            assert!(err.contains("more than the 64 MiB limit") && err.contains("at byte 24"), "{err}");
        }
        let mut b = pcap.clone();
        b[36..40].copy_from_slice(&forged.to_le_bytes());
        read_all(b);
    }
    // pcapng: the first block after the section header is an interface description block.
    let ng = std::fs::read(samples().join("udp_and_reuse.pcapng")).unwrap();
    let shb_len = u32::from_le_bytes(ng[4..8].try_into().unwrap()) as usize;
    for forged in [0u32, 3, 12, 13, 0xffff_fff0] {
        let mut b = ng.clone();
        b[shb_len + 4..shb_len + 8].copy_from_slice(&forged.to_le_bytes());
        let (_, err) = read_all(b);
        assert!(err.is_some(), "forged block length {forged} must be reported");
    }
}

#[test]
#[cfg_attr(no_shared_captures, ignore = "needs ../shared/captures")]
fn shared_captures_survive_mutation() {
    let dir = shared_captures();
    let mut rng = Rng::seeded(42);
    for f in capture_files(&dir) {
        let seed = std::fs::read(&f).unwrap();
        if seed.len() > 200_000 || seed.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        for _ in 0..20 {
            let mut bytes = seed.clone();
            let at = rng.below(bytes.len());
            bytes[at] = rng.next() as u8;
            let cut = rng.below(bytes.len() + 1);
            read_all(bytes[..cut].to_vec());
            analyze_bytes(&bytes[..cut], "mutated.pcap");
        }
    }
}

#[test]
fn damaged_files_give_one_line_naming_file_and_offset() {
    let pcap = std::fs::read(samples().join("teardowns.pcap")).unwrap();
    let dir = std::env::temp_dir().join(format!("sockscope-hostile-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let check = |name: &str, bytes: &[u8], code: i32, needles: &[&str]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = sockscope(&["conns", "--format", "jsonl", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: {err} lacks {n}");
        }
    };
    let mut huge = pcap.clone();
    huge[32..36].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    check("huge-record.pcap", &huge, 2, &["record claims 1073741840 bytes", "at byte 24"]);
    check("cut.pcap", &pcap[..pcap.len() - 7], 0, &["warning", "file cut short"]);
    check("header-only.pcap", &pcap[..10], 2, &["pcap file header cut short"]);
    let mut gz = flate2_gzip(&pcap);
    gz.truncate(gz.len() / 2);
    check("cut.pcap.gz", &gz, 0, &["warning", "file cut short"]);
    let mut corrupt = flate2_gzip(&pcap);
    for b in corrupt.iter_mut().skip(40).take(64) {
        *b ^= 0x5a;
    }
    check("corrupt.pcap.gz", &corrupt, 2, &["read error"]);
}

fn flate2_gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Offset of the first Enhanced Packet Block of a little-endian pcapng.
fn first_epb(ng: &[u8]) -> usize {
    let mut at = 0;
    while at + 8 <= ng.len() {
        let ty = u32::from_le_bytes(ng[at..at + 4].try_into().unwrap());
        if ty == 6 {
            return at;
        }
        at += u32::from_le_bytes(ng[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    panic!("no enhanced packet block");
}

#[test]
fn pcapng_packet_for_a_missing_interface_is_one_counted_skip() {
    let mut ng = std::fs::read(samples().join("udp_and_reuse.pcapng")).unwrap();
    let epb = first_epb(&ng);
    ng[epb + 8..epb + 12].copy_from_slice(&7u32.to_le_bytes());
    let dir = std::env::temp_dir().join(format!("sockscope-hostile-ng-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad-interface.pcapng");
    std::fs::write(&path, &ng).unwrap();
    let out = sockscope(&["conns", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["packets"]["total"], 96);
    assert_eq!(doc["packets"]["skipped_by_reason"]["pcapng packet for an undeclared interface"], 1);
}

#[test]
fn pcapng_block_length_not_a_multiple_of_four_names_offset_and_reason() {
    let mut ng = std::fs::read(samples().join("udp_and_reuse.pcapng")).unwrap();
    let epb = first_epb(&ng);
    ng[epb + 4..epb + 8].copy_from_slice(&13u32.to_le_bytes());
    let dir = std::env::temp_dir().join(format!("sockscope-hostile-ng4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unaligned.pcapng");
    std::fs::write(&path, &ng).unwrap();
    let out = sockscope(&["conns", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("unaligned.pcapng")
            && err.contains("not a multiple of 4")
            && err.contains(&format!("at byte {epb}")),
        "{err}"
    );
}
