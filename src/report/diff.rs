//! How `diff` reports: a line per change for people, one JSON document for programs.

use std::io::{self, Write};

use serde::Serialize;

use crate::diff::{Change, Group, GroupKey, Side};

/// `tcp 10.0.0.2:80 <- 10.0.0.1`: the server socket and the client host.
fn name(g: &GroupKey) -> String {
    format!("{} {} <- {}", g.proto, g.server, g.client)
}

/// `12 connections (SF 11, REJ 1)`.
fn sum(g: &Group) -> String {
    let states: Vec<String> = g.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
    format!("{} ({})", super::count(g.conns, "connection"), states.join(", "))
}

/// One change as a line of text.
pub fn line(change: &Change) -> String {
    match change {
        Change::Appeared { group, new } => format!("appeared  {}: {}", name(group), sum(new)),
        Change::Vanished { group, old } => format!("vanished  {}: {}", name(group), sum(old)),
        Change::Changed { group, what } => format!("changed   {}: {}", name(group), what.join("; ")),
    }
}

/// A line per change, then how many groups changed.
pub fn text(out: &mut dyn Write, old: &Side, new: &Side, changes: &[Change]) -> io::Result<()> {
    for c in changes {
        writeln!(out, "{}", line(c))?;
    }
    let (a, b) = (old.conns(), new.conns());
    match changes.len() {
        0 => writeln!(out, "no change: {a} and {b} connections"),
        n => writeln!(out, "{n} change(s): {a} connections before, {b} after"),
    }
}

/// One JSON document: both runs' connection counts and every change.
pub fn json(out: &mut dyn Write, old: &Side, new: &Side, changes: &[Change]) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        old_conns: u64,
        new_conns: u64,
        changes: &'a [Change],
    }
    serde_json::to_writer_pretty(
        &mut *out,
        &Doc { old_conns: old.conns(), new_conns: new.conns(), changes },
    )?;
    writeln!(out)
}
