//! How `check` reports its rules: text for people, JUnit XML and Markdown for CI systems.

use std::io::{self, Write};

use super::record::ConnRecord;
use super::table;
use crate::check::Verdict;

/// The verdicts of one run: all inputs as one timeline, or one capture with `--per-file`.
pub struct Suite {
    /// The inputs, as given.
    pub name: String,
    /// Each rule's verdict.
    pub verdicts: Vec<Verdict>,
    /// Inputs that could not be read ("FILE: reason"): then no rule is held or broken.
    pub unread: Vec<String>,
}

impl Suite {
    /// Broken rules: none when nothing could be checked.
    fn failed(&self) -> usize {
        if self.unread.is_empty() {
            self.verdicts.iter().filter(|v| !v.passed).count()
        } else {
            0
        }
    }

    /// Rules not checked because an input could not be read.
    fn errors(&self) -> usize {
        if self.unread.is_empty() {
            0
        } else {
            self.verdicts.len()
        }
    }
}

/// Each suite's verdicts, under a `== NAME ==` line when there are several.
pub fn text(out: &mut dyn Write, suites: &[Suite], color: bool) -> io::Result<()> {
    for (i, suite) in suites.iter().enumerate() {
        if suites.len() > 1 {
            writeln!(out, "{}== {} ==", if i > 0 { "\n" } else { "" }, suite.name)?;
        }
        suite_text(out, &suite.verdicts, &suite.unread, color)?;
    }
    Ok(())
}

/// One line per rule; each broken rule with the connections that broke it. With inputs that
/// could not be read (`unread`: "FILE: reason"), no rule is reported as held or broken.
fn suite_text(out: &mut dyn Write, verdicts: &[Verdict], unread: &[String], color: bool) -> io::Result<()> {
    if !unread.is_empty() {
        for v in verdicts {
            writeln!(out, "ERROR {}: not checked", v.rule)?;
        }
        for u in unread {
            writeln!(out, "ERROR cannot read {u}")?;
        }
        return writeln!(out, "no rule checked: {} input(s) could not be read", unread.len());
    }
    for v in verdicts {
        writeln!(out, "{} {}: {}", if v.passed { "ok  " } else { "FAIL" }, v.rule, v.detail)?;
        for note in &v.notes {
            writeln!(out, "  {note}")?;
        }
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

/// A connection as a failure names it: id, socket pair, state, history, and its capture with
/// `--per-file`.
fn offender(c: &ConnRecord) -> String {
    let line = format!("{} {} {} -> {} {} {}", c.id, c.proto, c.orig, c.resp, c.conn_state, c.history);
    match &c.file {
        Some(file) => format!("{line} ({file})"),
        None => line,
    }
}

/// A JUnit XML report: a test suite per `Suite`, a test case per rule, a failure for each broken
/// one naming the connections that broke it; with inputs that could not be read, every rule of
/// that suite is an error.
pub fn junit(out: &mut dyn Write, suites: &[Suite]) -> io::Result<()> {
    let count = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>();
    let (tests, failed, errors) = (count(|s| s.verdicts.len()), count(Suite::failed), count(Suite::errors));
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="sockscope check" tests="{tests}" failures="{failed}" errors="{errors}">"#
    )?;
    for suite in suites {
        let counts = format!(
            r#"tests="{}" failures="{}" errors="{}""#,
            suite.verdicts.len(),
            suite.failed(),
            suite.errors()
        );
        writeln!(out, r#"  <testsuite name="{}" {counts}>"#, xml(&suite.name))?;
        for v in &suite.verdicts {
            testcase(out, v, &suite.unread)?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// One rule as a JUnit test case.
fn testcase(out: &mut dyn Write, v: &Verdict, unread: &[String]) -> io::Result<()> {
    write!(out, r#"    <testcase classname="sockscope.check" name="{}""#, xml(&v.rule))?;
    if !unread.is_empty() {
        let why = format!("not checked: cannot read {}", unread.join("; "));
        return writeln!(out, ">\n      <error message=\"{}\"/>\n    </testcase>", xml(&why));
    }
    if v.passed {
        return writeln!(out, "/>");
    }
    let mut body = v.detail.clone();
    for note in &v.notes {
        body.push('\n');
        body.push_str(note);
    }
    for c in &v.offenders {
        body.push('\n');
        body.push_str(&offender(c));
    }
    let more = v.offender_count.saturating_sub(v.offenders.len() as u64);
    if !v.offenders.is_empty() && more > 0 {
        body.push_str(&format!("\n... and {more} more"));
    }
    writeln!(out, ">")?;
    writeln!(out, r#"      <failure message="{}">{}</failure>"#, xml(&v.detail), xml(&body))?;
    writeln!(out, "    </testcase>")
}

/// A Markdown section per suite (for a CI job's summary page).
pub fn markdown(out: &mut dyn Write, suites: &[Suite]) -> io::Result<()> {
    for suite in suites {
        suite_markdown(out, &suite.verdicts, &suite.unread, &suite.name)?;
    }
    Ok(())
}

/// One suite's Markdown section; with inputs that could not be read, every rule is an error.
fn suite_markdown(
    out: &mut dyn Write,
    verdicts: &[Verdict],
    unread: &[String],
    name: &str,
) -> io::Result<()> {
    writeln!(out, "## sockscope check: {name}\n")?;
    if !unread.is_empty() {
        writeln!(out, "**ERROR**: no rule checked, {} input(s) could not be read:\n", unread.len())?;
        for u in unread {
            writeln!(out, "- {}", u.replace('|', "\\|"))?;
        }
        writeln!(out)?;
    } else {
        let failed = verdicts.iter().filter(|v| !v.passed).count();
        writeln!(out, "{} of {} rules passed.\n", verdicts.len() - failed, verdicts.len())?;
    }
    writeln!(out, "| result | rule | detail |")?;
    writeln!(out, "|---|---|---|")?;
    for v in verdicts {
        let (result, detail) = match (unread.is_empty(), v.passed) {
            (false, _) => ("**ERROR**", "not checked"),
            (true, true) => ("pass", v.detail.as_str()),
            (true, false) => ("**FAIL**", v.detail.as_str()),
        };
        writeln!(out, "| {result} | `{}` | {} |", v.rule, detail.replace('|', "\\|"))?;
    }
    for v in verdicts.iter().filter(|v| unread.is_empty() && !v.notes.is_empty()) {
        writeln!(out, "\n### `{}`\n", v.rule)?;
        for note in &v.notes {
            writeln!(out, "- `{note}`")?;
        }
    }
    for v in verdicts.iter().filter(|v| unread.is_empty() && !v.offenders.is_empty()) {
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
    writeln!(out)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
