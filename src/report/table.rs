//! Aligned text tables for people at a terminal.

use std::io::{self, IsTerminal, Write};

use super::clock::Clock;
use super::record::ConnRecord;
use super::Exporter;
use crate::flow::inventory::SocketStats;
use crate::pipeline::Analysis;
use crate::tcp::phases::HandshakeState;
use crate::tcp::verdict::ConnState;

/// How the connection table is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Every column, each as wide as its widest cell among the first rows (`--wide`, and
    /// output that is no terminal).
    Wide,
    /// The columns that fit this many characters, addresses shortened to fit: the default at a
    /// terminal.
    Compact(usize),
}

/// Rows whose cells size the columns before the first is printed; later rows keep those widths
/// (a longer cell widens only its own line), so memory stays bounded however many rows follow.
const SIZING_ROWS: usize = 100;

/// Connections as an aligned table, printed as they come: the first rows size the columns.
pub struct TableExporter {
    layout: Layout,
    color: bool,
    clock: Clock,
    /// Cells of the rows waiting until the columns are sized.
    waiting: Vec<Vec<String>>,
    /// Column widths, once sized.
    widths: Option<Vec<usize>>,
}

impl TableExporter {
    /// An empty table in `layout`; `color` colors states and the header; start times in
    /// `clock`'s zone.
    pub fn new(layout: Layout, color: bool, clock: Clock) -> Self {
        TableExporter { layout, color, clock, waiting: Vec::new(), widths: None }
    }

    fn header(&self) -> Vec<String> {
        let names: &[&str] = match self.layout {
            Layout::Wide => &WIDE_HEADER,
            Layout::Compact(_) => &COMPACT_HEADER,
        };
        let zone = |h: &&str| match *h {
            "START" => format!("START ({})", self.clock.name()),
            h => h.to_string(),
        };
        names.iter().map(zone).collect()
    }

    /// Sizes the columns from the rows waiting, and prints the header and them.
    fn size(&mut self, out: &mut Vec<u8>) {
        let header = self.header();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &self.waiting {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        if let Layout::Compact(width) = self.layout {
            fit(&mut widths, width);
        }
        print_row(out, &header, &widths, self.gap(), self.color.then_some(BOLD));
        for row in std::mem::take(&mut self.waiting) {
            self.print(out, &row, &widths);
        }
        self.widths = Some(widths);
    }

    fn print(&self, out: &mut Vec<u8>, row: &[String], widths: &[usize]) {
        let state = row.get(STATE_COLUMN).and_then(|s| ConnState::parse(s).ok());
        let color = if self.color { state.map(state_color) } else { None };
        out.extend_from_slice(cells(row, widths, self.gap(), color).as_bytes());
        out.push(b'\n');
    }

    /// Spaces between columns: two, or one where the width is scarce.
    fn gap(&self) -> usize {
        match self.layout {
            Layout::Wide => 2,
            Layout::Compact(_) => 1,
        }
    }
}

impl Exporter for TableExporter {
    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        let row = match self.layout {
            Layout::Wide => wide_row(record, &self.clock),
            Layout::Compact(_) => compact_row(record),
        };
        match self.widths.take() {
            Some(widths) => {
                self.print(out, &row, &widths);
                self.widths = Some(widths);
            }
            None => {
                self.waiting.push(row);
                if self.waiting.len() == SIZING_ROWS {
                    self.size(out);
                }
            }
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>, _analysis: &Analysis) -> io::Result<()> {
        if self.widths.is_none() {
            self.size(out);
        }
        Ok(())
    }
}

/// Where the conn_state sits in both layouts' rows.
const STATE_COLUMN: usize = 4;

const WIDE_HEADER: [&str; 13] = [
    "ID",
    "PROTO",
    "ORIG",
    "RESP",
    "STATE",
    "HISTORY",
    "SERVICE",
    "START",
    "DURATION",
    "PKTS o/r",
    "PAYLOAD o/r",
    "HANDSHAKE",
    "TEARDOWN",
];

const COMPACT_HEADER: [&str; 7] = ["ID", "PROTO", "ORIG", "RESP", "STATE", "HISTORY", "DURATION"];

/// The cells both layouts start with: ID to HISTORY.
fn leading_cells(c: &ConnRecord) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.proto.to_string(),
        c.orig.to_string(),
        c.resp.to_string(),
        c.conn_state.to_string(),
        c.history.to_string(),
    ]
}

fn duration_cell(c: &ConnRecord) -> String {
    format!("{:.3}s", c.duration)
}

/// A connection's cells, every column.
fn wide_row(c: &ConnRecord, clock: &Clock) -> Vec<String> {
    let mut row = leading_cells(c);
    row.extend([
        c.service.map_or_else(|| "-".to_string(), |s| s.to_string()),
        clock.time(c.ts),
        duration_cell(c),
        format!("{}/{}", c.orig_pkts, c.resp_pkts),
        format!("{}/{}", c.orig_bytes, c.resp_bytes),
        handshake_cell(c),
        teardown_cell(c),
    ]);
    row
}

/// A connection's cells, the compact columns.
fn compact_row(c: &ConnRecord) -> Vec<String> {
    let mut row = leading_cells(c);
    row.push(duration_cell(c));
    row
}

/// The handshake's state and RTT; when Zeek's verdict is REJ after a handshake that completed
/// (a refusal it read from later packets), the cell says so rather than contradict the state.
fn handshake_cell(c: &ConnRecord) -> String {
    c.handshake.as_ref().map_or("-".to_string(), |h| {
        let refused = c.conn_state == ConnState::REJ && h.state == HandshakeState::Complete;
        let state = if refused { format!("{}, then refused", h.state) } else { h.state.to_string() };
        match h.rtt {
            Some(rtt) => format!("{state} rtt={:.3}ms", rtt * 1e3),
            None => state,
        }
    })
}

fn teardown_cell(c: &ConnRecord) -> String {
    c.teardown.as_ref().map_or("-".to_string(), |t| {
        let mut s = t.state.to_string();
        if let Some(k) = t.kind {
            s = format!("{s} {k}");
        }
        if let Some(i) = t.initiator {
            s = format!("{s} by {i}");
        }
        s
    })
}

/// Narrows the widest columns until the row, one space between columns, fits `width`; no
/// column narrower than its title or 5 characters.
fn fit(widths: &mut [usize], width: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + w.len().saturating_sub(1);
    while total(widths) > width {
        let Some((at, &widest)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else { return };
        if widest <= 7 {
            return;
        }
        widths[at] = widest - 1;
    }
}

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Green for normal ends, red for resets and refusals, yellow for attempts and oddities.
fn state_color(state: ConnState) -> &'static str {
    match state {
        ConnState::SF | ConnState::S1 => "\x1b[32m",
        ConnState::REJ | ConnState::RSTO | ConnState::RSTR | ConnState::RSTOS0 | ConnState::RSTRH => {
            "\x1b[31m"
        }
        _ => "\x1b[33m",
    }
}

/// A cell in its column's width: padded, or cut with `…` in the middle (addresses keep both
/// ends) when longer; the last column is not padded.
pub(crate) fn cell(text: &str, width: usize, last: bool) -> String {
    let len = text.chars().count();
    if len > width {
        let keep = width.saturating_sub(1);
        let (head, tail) = (keep / 2, keep - keep / 2);
        let chars: Vec<char> = text.chars().collect();
        let cut: String = chars[..head].iter().chain(['…'].iter()).chain(&chars[len - tail..]).collect();
        return cut;
    }
    if last {
        text.to_string()
    } else {
        format!("{text:<width$}")
    }
}

/// One row, its cells `gap` spaces apart; `style` wraps the whole row (the header's bold).
fn print_row(out: &mut Vec<u8>, row: &[String], widths: &[usize], gap: usize, style: Option<&str>) {
    let line = cells(row, widths, gap, None);
    match style {
        Some(s) => out.extend_from_slice(format!("{s}{line}{RESET}\n").as_bytes()),
        None => out.extend_from_slice(format!("{line}\n").as_bytes()),
    }
}

/// A row's cells `gap` spaces apart, the conn_state cell in `state`'s color if given.
fn cells(row: &[String], widths: &[usize], gap: usize, state: Option<&str>) -> String {
    let last = row.len().saturating_sub(1);
    let mut line = String::new();
    for (i, (text, &w)) in row.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str(&" ".repeat(gap));
        }
        let c = cell(text, w, i == last);
        match state.filter(|_| i == STATE_COLUMN) {
            Some(color) => line.push_str(&format!("{color}{c}{RESET}")),
            None => line.push_str(&c),
        }
    }
    line.trim_end().to_string()
}

/// Whether table output should be colored: stdout is a terminal and NO_COLOR is not set
/// (<https://no-color.org>).
pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints a row per item under a header, each column as wide as its widest cell, two spaces
/// apart; `state` colors an item's conn_state cell. Each row is made twice, to size the columns
/// and to print it, so that none is held: the socket inventory of a scan has millions.
fn write_rows<T>(
    out: &mut dyn Write,
    header: &[&str],
    items: &[T],
    row: impl Fn(&T) -> Vec<String>,
    state: impl Fn(&T) -> Option<&'static str>,
    color: bool,
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for item in items {
        for (w, cell) in widths.iter_mut().zip(row(item)) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut buf = Vec::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    print_row(&mut buf, &header, &widths, 2, color.then_some(BOLD));
    for item in items {
        buf.extend_from_slice(cells(&row(item), &widths, 2, state(item).filter(|_| color)).as_bytes());
        buf.push(b'\n');
        if buf.len() >= 64 << 10 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// Connections as an aligned table, one per row, in the order given.
pub fn write_conns(out: &mut dyn Write, conns: &[ConnRecord], color: bool) -> io::Result<()> {
    let header = [
        "ID",
        "PROTO",
        "ORIG",
        "RESP",
        "STATE",
        "HISTORY",
        "DURATION",
        "PKTS o/r",
        "BYTES o/r",
        "HANDSHAKE",
        "TEARDOWN",
    ];
    let row = |c: &ConnRecord| {
        let handshake = c.handshake.as_ref().map_or("-".to_string(), |h| match h.rtt {
            Some(rtt) => format!("{} rtt={:.3}ms", h.state, rtt * 1e3),
            None => h.state.to_string(),
        });
        let teardown = c.teardown.as_ref().map_or("-".to_string(), |t| {
            let mut s = t.state.to_string();
            if let Some(k) = t.kind {
                s = format!("{s} {k}");
            }
            if let Some(i) = t.initiator {
                s = format!("{s} by {i}");
            }
            s
        });
        let mut row = leading_cells(c);
        row.extend([
            duration_cell(c),
            format!("{}/{}", c.orig_pkts, c.resp_pkts),
            format!("{}/{}", c.orig_bytes, c.resp_bytes),
            handshake,
            teardown,
        ]);
        row
    };
    write_rows(out, &header, conns, row, |c| Some(state_color(c.conn_state)), color)
}

/// The socket inventory as an aligned table, one socket per row.
pub fn write_sockets(out: &mut dyn Write, sockets: &[SocketStats], color: bool) -> io::Result<()> {
    let header = ["SOCKET", "ROLE", "CONNS", "MAX OPEN", "PKTS out/in", "BYTES out/in"];
    let row = |s: &SocketStats| {
        let addr = crate::types::Addr { ip: s.ip, port: s.port };
        vec![
            format!("{}/{}", addr, s.proto),
            s.role.as_str().to_string(),
            s.conns.to_string(),
            s.max_concurrent.to_string(),
            format!("{}/{}", s.pkts_sent, s.pkts_received),
            format!("{}/{}", s.bytes_sent, s.bytes_received),
        ]
    };
    write_rows(out, &header, sockets, row, |_| None, color)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_after_a_complete_handshake_says_so() {
        let mut c =
            super::super::record::of_sample("teardowns.pcap").into_iter().find(|r| r.id == 1).unwrap();
        assert_eq!(handshake_cell(&c), "complete rtt=0.026ms");
        c.conn_state = ConnState::REJ;
        assert_eq!(handshake_cell(&c), "complete, then refused rtt=0.026ms");
    }

    #[test]
    fn columns_align_to_widest_cell() {
        let mut out = Vec::new();
        let rows = [("1", "long value"), ("22", "x")];
        write_rows(&mut out, &["A", "B"], &rows, |r| vec![r.0.into(), r.1.into()], |_| None, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A   B\n1   long value\n22  x\n");
    }

    #[test]
    fn color_only_when_asked() {
        let records = super::super::record::of_sample("teardowns.pcap");
        let mut plain = Vec::new();
        write_conns(&mut plain, &records, false).unwrap();
        assert!(!String::from_utf8(plain).unwrap().contains('\x1b'));
        let mut colored = Vec::new();
        write_conns(&mut colored, &records, true).unwrap();
        let colored = String::from_utf8(colored).unwrap();
        assert!(colored.starts_with(BOLD) && colored.contains("\x1b[31mREJ"), "{colored}");
    }
}
