//! The table as a person sees it: the real binary in a pseudo-terminal (`script`) of a given
//! width, with and without colors.

mod common;

use std::process::Command;

use common::*;

/// What `sockscope ARGS` prints in a terminal `cols` wide, escape sequences kept.
fn at_terminal(args: &str, cols: u16, env: &[(&str, &str)]) -> String {
    let bin = env!("CARGO_BIN_EXE_sockscope");
    let out = Command::new("script")
        .args(["-qec", &format!("stty cols {cols}; {bin} {args}"), "/dev/null"])
        .envs(env.iter().copied())
        .output()
        .expect("run script (util-linux)");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// The text without terminal escape sequences.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

fn inputs() -> String {
    let mut files: Vec<_> =
        ["teardowns.pcap", "udp_and_reuse.pcapng", "ipv6.pcap"].map(|n| samples().join(n)).into();
    // Long IPv6 addresses (Teredo), when the shared corpus is here.
    let teredo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/zeek_tunnels_Teredo.pcap");
    if teredo.exists() {
        files.push(teredo);
    }
    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" ")
}

#[test]
fn the_table_fits_an_80_column_terminal_and_colors_its_states() {
    for cols in [80, 100] {
        let text = at_terminal(&format!("conns {}", inputs()), cols, &[]);
        let table = plain(&text);
        assert!(table.lines().count() > 20, "{table}");
        // Every line but the summary's file names, which are as long as their paths.
        for line in table.lines().filter(|l| !l.starts_with("file ")) {
            assert!(line.chars().count() <= usize::from(cols), "{} > {cols}: {line}", line.chars().count());
        }
        assert!(text.contains("\x1b[32mSF"), "states in color at a terminal");
        assert!(table.contains("connections:"), "the summary after the table");
    }
}

#[test]
fn no_color_and_wide_at_a_terminal() {
    let text = at_terminal(&format!("conns {}", inputs()), 80, &[("NO_COLOR", "1")]);
    assert!(!text.contains('\x1b'), "NO_COLOR: {text}");
    let wide = plain(&at_terminal(&format!("conns --wide {}", inputs()), 80, &[("NO_COLOR", "1")]));
    let header = wide.lines().next().unwrap();
    assert!(
        header.contains("START (UTC)") && header.contains("PAYLOAD o/r") && header.contains("TEARDOWN"),
        "{header}"
    );
}

#[test]
fn piped_output_has_every_column_and_no_color() {
    let out = sockscope(&["conns", samples().join("teardowns.pcap").to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!text.contains('\x1b'));
    assert!(text.lines().next().unwrap().contains("HANDSHAKE"));
    assert_eq!(text.lines().count(), 13, "a header and 12 rows, no summary when piped");
}

#[test]
fn show_lists_packets_within_an_80_column_terminal_and_draws_the_ladder_when_piped() {
    for sample in ["teardowns.pcap", "ipv6.pcap"] {
        let file = samples().join(sample);
        let text = plain(&at_terminal(&format!("show --conn 1 {}", file.display()), 80, &[]));
        assert!(text.lines().count() > 12, "{text}");
        // The Wireshark filter is kept whole, for pasting.
        for line in text.lines().filter(|l| !l.starts_with("wireshark: ")) {
            assert!(line.chars().count() <= 80, "{} > 80: {line}", line.chars().count());
        }
        assert!(text.contains("C>S  S seq=0") && text.contains("S>C  S. seq=0"), "{text}");
        // Wrapped lines continue under the label: nothing is cut.
        assert!(text.contains("\n                                     sack ts>"), "{text}");
        assert!(!text.contains('…'), "{text}");

        let piped = stdout(&sockscope(&["show", "--conn", "1", file.to_str().unwrap()]));
        assert!(piped.contains("------------>") && piped.contains("<------------"), "{piped}");
        assert!(!piped.contains("C>S"), "{piped}");
    }
}

/// `sockscope ARGS` piped, in the time zone `tz`.
fn in_zone(tz: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope")).args(args).env("TZ", tz).output().unwrap()
}

#[test]
fn times_are_utc_unless_local_is_asked_for() {
    let file = samples().join("teardowns.pcap");
    let file = file.to_str().unwrap();
    // The first packet: 2026-11-25 14:54:49.096 UTC.
    let table = stdout(&in_zone("Europe/Paris", &["conns", file]));
    assert!(
        table.starts_with("ID") && table.contains("START (UTC)") && table.contains("2026-11-25 14:54:49.096")
    );
    let local = stdout(&in_zone("Europe/Paris", &["conns", "--local", file]));
    assert!(local.contains("START (local)") && local.contains("2026-11-25 15:54:49.096"), "{local}");

    let summary = stdout(&in_zone("America/New_York", &["summary", "--local", file]));
    assert!(summary.contains("first packet: 2026-11-25 09:54:49.096 -05:00"), "{summary}");
    let summary = stdout(&in_zone("America/New_York", &["summary", file]));
    assert!(summary.contains("first packet: 2026-11-25 14:54:49.096 UTC"), "{summary}");

    let ladder = stdout(&in_zone("Asia/Kolkata", &["show", "--local", "--conn", "1", file]));
    assert!(ladder.contains("first packet: 2026-11-25 20:24:49.096 +05:30"), "{ladder}");

    // Machine formats keep epoch seconds: the flags that shape the table are refused there.
    for args in [
        &["conns", "--format", "jsonl", "--local", file][..],
        &["conns", "--format", "csv", "--wide", file],
        &["summary", "--format", "json", "--local", file],
    ] {
        let out = in_zone("Europe/Paris", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("UTC") || stderr(&out).contains("epoch"), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
}
