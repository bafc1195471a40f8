//! Every command the README shows, run as written: its `sockscope` lines in a folder holding the
//! files they name (`trace.pcap`, `captures/`, `rules.toml` from the README's own rules example
//! ...), its quick-start lines from the repository's root with the built binary in place of
//! `cargo run --release --`. A command may report broken rules or changes (exit 1), never
//! trouble (exit 2). The README's DuckDB query runs in `tests/dataframes.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The lines of the README's code blocks in `lang`, continuation lines joined, comments dropped.
fn blocks(readme: &str, lang: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            inside = line == format!("```{lang}");
            continue;
        }
        if !inside {
            continue;
        }
        let line = match line.find("  #") {
            Some(at) if lang == "sh" => line[..at].trim_end(),
            _ => line,
        };
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending).trim().to_string());
            }
        }
    }
    lines
}

/// Runs `command` with `sh` in `dir`, `sockscope` on the PATH; returns (exit code, stderr).
fn sh(command: &str, dir: &Path, summary: &Path) -> (Option<i32>, String) {
    let bin = Path::new(env!("CARGO_BIN_EXE_sockscope")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("PATH", path)
        .env("GITHUB_STEP_SUMMARY", summary)
        .output()
        .expect("run sh");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_command_the_readme_shows_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let dir = std::env::temp_dir().join(format!("sockscope-readme-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("captures")).unwrap();
    let teardowns = samples().join("teardowns.pcap");
    for name in ["trace.pcap", "yesterday.pcap", "today.pcap", "baseline.pcap", "captures/teardowns.pcap"] {
        std::fs::copy(&teardowns, dir.join(name)).unwrap();
    }
    std::fs::copy(samples().join("udp_and_reuse.pcapng"), dir.join("captures/udp.pcapng")).unwrap();
    let rules = blocks(&readme, "toml").join("\n");
    assert!(rules.contains("[[scope]]"), "the README's rules example");
    std::fs::write(dir.join("rules.toml"), rules).unwrap();
    let summary = dir.join("step-summary.md");
    let jq = Command::new("sh").arg("-c").arg("command -v jq").output().is_ok_and(|o| o.status.success());
    let mut ran = 0;
    for command in blocks(&readme, "sh") {
        let (command, at) = if let Some(args) = command.strip_prefix("cargo run --release -- ") {
            // Quick start: from the repository's root, with the binary `cargo run` would build.
            let command = format!("sockscope {args}");
            let command = if jq { command } else { command.replace("| jq .", "| cat") };
            (command, Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf())
        } else if command.starts_with("sockscope ") {
            (command, dir.clone())
        } else {
            continue; // `cargo test` itself; `duckdb` (tests/dataframes.rs)
        };
        let (code, stderr) = sh(&command, &at, &summary);
        assert!(matches!(code, Some(0 | 1)), "{command}: exit {code:?}\n{stderr}");
        assert!(!stderr.contains("error"), "{command}:\n{stderr}");
        ran += 1;
    }
    assert!(ran >= 15, "{ran} commands run");
    assert!(std::fs::read_to_string(&summary).unwrap().contains("## sockscope check"), "the step summary");
    assert!(
        dir.join("check.xml").exists() && dir.join("baseline.jsonl").exists() && dir.join("out").is_dir()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
