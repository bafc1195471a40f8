//! Aligned text tables for people at a terminal.

use std::io::{self, IsTerminal, Write};

use comfy_table::{presets, Attribute, Cell, Color, ContentArrangement, Table};

use super::record::ConnRecord;
use super::Exporter;
use crate::flow::inventory::SocketStats;
use crate::pipeline::Analysis;
use crate::tcp::verdict::ConnState;

/// Connections as an aligned table: every row is kept to size the columns, and the table is
/// written at the end, by id.
pub struct TableExporter {
    rows: Vec<ConnRecord>,
    color: bool,
}

impl TableExporter {
    /// An empty table; `color` colors states and the header.
    pub fn new(color: bool) -> Self {
        TableExporter { rows: Vec::new(), color }
    }
}

impl Exporter for TableExporter {
    fn record(&mut self, _out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        self.rows.push(record.clone());
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>, _analysis: &Analysis) -> io::Result<()> {
        self.rows.sort_unstable_by_key(|r| r.id);
        write_conns(out, &self.rows, self.color)
    }
}

/// Whether table output should be colored: stdout is a terminal and NO_COLOR is not set
/// (<https://no-color.org>).
pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints rows under a header, each column as wide as its widest cell, two spaces apart.
fn write_rows(out: &mut dyn Write, header: &[&str], rows: Vec<Vec<Cell>>, color: bool) -> io::Result<()> {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header(header.iter().map(|h| {
        if color {
            Cell::new(h).add_attribute(Attribute::Bold)
        } else {
            Cell::new(h)
        }
    }));
    table.add_rows(rows);
    let last = header.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 2 }));
    }
    writeln!(out, "{}", table.trim_fmt())
}

/// Green for normal ends, red for resets and refusals, yellow for attempts and oddities.
fn state_cell(state: ConnState, color: bool) -> Cell {
    let cell = Cell::new(state);
    if !color {
        return cell;
    }
    match state {
        ConnState::SF | ConnState::S1 => cell.fg(Color::Green),
        ConnState::REJ | ConnState::RSTO | ConnState::RSTR | ConnState::RSTOS0 | ConnState::RSTRH => {
            cell.fg(Color::Red)
        }
        _ => cell.fg(Color::Yellow),
    }
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
    let rows: Vec<Vec<Cell>> = conns
        .iter()
        .map(|c| {
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
            vec![
                Cell::new(c.id),
                Cell::new(c.proto),
                Cell::new(c.orig),
                Cell::new(c.resp),
                state_cell(c.conn_state, color),
                Cell::new(&c.history),
                Cell::new(format!("{:.3}s", c.duration)),
                Cell::new(format!("{}/{}", c.orig_pkts, c.resp_pkts)),
                Cell::new(format!("{}/{}", c.orig_bytes, c.resp_bytes)),
                Cell::new(handshake),
                Cell::new(teardown),
            ]
        })
        .collect();
    write_rows(out, &header, rows, color)
}

/// The socket inventory as an aligned table, one socket per row.
pub fn write_sockets(out: &mut dyn Write, sockets: &[SocketStats], color: bool) -> io::Result<()> {
    let header = ["SOCKET", "ROLE", "CONNS", "MAX OPEN", "PKTS out/in", "BYTES out/in"];
    let rows: Vec<Vec<Cell>> = sockets
        .iter()
        .map(|s| {
            let addr = crate::types::Addr { ip: s.ip, port: s.port };
            vec![
                Cell::new(format!("{}/{}", addr, s.proto)),
                Cell::new(s.role.as_str()),
                Cell::new(s.conns),
                Cell::new(s.max_concurrent),
                Cell::new(format!("{}/{}", s.pkts_sent, s.pkts_received)),
                Cell::new(format!("{}/{}", s.bytes_sent, s.bytes_received)),
            ]
        })
        .collect();
    write_rows(out, &header, rows, color)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_widest_cell() {
        let mut out = Vec::new();
        let rows = vec![vec![Cell::new(1), Cell::new("long value")], vec![Cell::new(22), Cell::new("x")]];
        write_rows(&mut out, &["A", "B"], rows, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A   B\n1   long value\n22  x\n");
    }

    #[test]
    fn color_only_when_asked() {
        let mut plain = Vec::new();
        write_rows(&mut plain, &["STATE"], vec![vec![state_cell(ConnState::REJ, false)]], false).unwrap();
        assert!(!String::from_utf8(plain).unwrap().contains('\x1b'));
        let mut colored = Vec::new();
        write_rows(&mut colored, &["STATE"], vec![vec![state_cell(ConnState::REJ, true)]], true).unwrap();
        assert!(String::from_utf8(colored).unwrap().contains("\x1b["));
    }
}
