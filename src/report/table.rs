//! Aligned text tables for people at a terminal.

use std::io::{self, Write};

use super::record::ConnRecord;
use crate::flow::inventory::SocketStats;

/// Prints rows under a header, each column as wide as its widest cell.
pub fn write_rows(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

pub fn write_conns(out: &mut dyn Write, conns: &[ConnRecord]) -> io::Result<()> {
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
    let rows: Vec<Vec<String>> = conns
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
                c.id.to_string(),
                c.proto.to_string(),
                c.orig.to_string(),
                c.resp.to_string(),
                c.conn_state.to_string(),
                c.history.clone(),
                format!("{:.3}s", c.duration),
                format!("{}/{}", c.orig_pkts, c.resp_pkts),
                format!("{}/{}", c.orig_bytes, c.resp_bytes),
                handshake,
                teardown,
            ]
        })
        .collect();
    write_rows(out, &header, &rows)
}

pub fn write_sockets(out: &mut dyn Write, sockets: &[SocketStats]) -> io::Result<()> {
    let header = ["SOCKET", "ROLE", "CONNS", "MAX OPEN", "PKTS out/in", "BYTES out/in"];
    let rows: Vec<Vec<String>> = sockets
        .iter()
        .map(|s| {
            let addr = crate::flow::socket::Addr { ip: s.ip, port: s.port };
            vec![
                format!("{}/{}", addr, s.proto),
                s.role.to_string(),
                s.conns.to_string(),
                s.max_concurrent.to_string(),
                format!("{}/{}", s.pkts_sent, s.pkts_received),
                format!("{}/{}", s.bytes_sent, s.bytes_received),
            ]
        })
        .collect();
    write_rows(out, &header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_widest_cell() {
        let mut out = Vec::new();
        let rows = vec![vec!["1".to_string(), "long value".to_string()], vec!["22".into(), "x".into()]];
        write_rows(&mut out, &["A", "B"], &rows).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A   B\n1   long value\n22  x\n");
    }
}
