//! How `check` reports its rules: text for people, JUnit XML and Markdown for CI systems.

use std::io::{self, Write};

use super::table;
use crate::check::Verdict;

/// One line per rule; each broken rule with the connections that broke it.
pub fn text(out: &mut dyn Write, verdicts: &[Verdict], conns: u64, color: bool) -> io::Result<()> {
    if verdicts.is_empty() {
        return writeln!(out, "no rules given: {conns} connection(s) analyzed (see sockscope check --help)");
    }
    for v in verdicts {
        writeln!(out, "{} {}: {}", if v.passed { "ok  " } else { "FAIL" }, v.rule, v.detail)?;
        if !v.offenders.is_empty() {
            table::write_conns(out, &v.offenders, color)?;
            let more = v.offender_count - v.offenders.len() as u64;
            if more > 0 {
                writeln!(out, "... and {more} more")?;
            }
        }
    }
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    // (Worded so that CI log readers do not take it for a test runner's summary line.)
    writeln!(out, "{} of {} rules held, {failed} broken", verdicts.len() - failed, verdicts.len())
}

/// A JUnit XML report: one test case per rule, a failure for each broken one.
pub fn junit(out: &mut dyn Write, verdicts: &[Verdict], name: &str) -> io::Result<()> {
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(out, r#"<testsuites name="sockscope check" tests="{}" failures="{failed}">"#, verdicts.len())?;
    writeln!(out, r#"  <testsuite name="{}" tests="{}" failures="{failed}">"#, xml(name), verdicts.len())?;
    for v in verdicts {
        write!(out, r#"    <testcase classname="sockscope.check" name="{}""#, xml(&v.rule))?;
        if v.passed {
            writeln!(out, "/>")?;
        } else {
            writeln!(out, ">")?;
            let ids: Vec<String> = v.offenders.iter().map(|c| c.id.to_string()).collect();
            let body = if ids.is_empty() {
                v.detail.clone()
            } else {
                format!("{}; connection ids: {}", v.detail, ids.join(" "))
            };
            writeln!(out, r#"      <failure message="{}">{}</failure>"#, xml(&v.detail), xml(&body))?;
            writeln!(out, "    </testcase>")?;
        }
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

/// A Markdown summary (for a CI job's summary page).
pub fn markdown(out: &mut dyn Write, verdicts: &[Verdict], name: &str) -> io::Result<()> {
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    writeln!(out, "## sockscope check: {name}\n")?;
    writeln!(out, "{} of {} rules passed.\n", verdicts.len() - failed, verdicts.len())?;
    writeln!(out, "| result | rule | detail |")?;
    writeln!(out, "|---|---|---|")?;
    for v in verdicts {
        writeln!(
            out,
            "| {} | `{}` | {} |",
            if v.passed { "pass" } else { "**FAIL**" },
            v.rule,
            v.detail.replace('|', "\\|")
        )?;
    }
    for v in verdicts.iter().filter(|v| !v.offenders.is_empty()) {
        writeln!(out, "\n### `{}`\n", v.rule)?;
        writeln!(out, "| id | proto | orig | resp | state | history |")?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for c in &v.offenders {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | `{}` |",
                c.id, c.proto, c.orig, c.resp, c.conn_state, c.history
            )?;
        }
    }
    Ok(())
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
