//! CSV with a header row; nested fields are flattened to `parent_child` columns.

use std::io::{self, Write};

use serde::Serialize;

use super::record::ConnRecord;
use crate::flow::inventory::SocketStats;
use crate::flow::socket::Proto;
use crate::flow::EndReason;
use crate::tcp::phases::{HandshakeState, Initiator, TeardownKind, TeardownState};
use crate::tcp::verdict::ConnState;

/// A connection as one flat CSV row.
#[derive(Serialize)]
struct ConnRow<'a> {
    id: u64,
    proto: Proto,
    orig_ip: String,
    orig_port: u16,
    resp_ip: String,
    resp_port: u16,
    conn_state: ConnState,
    history: &'a str,
    ts: f64,
    duration: f64,
    orig_pkts: u64,
    resp_pkts: u64,
    orig_bytes: u64,
    resp_bytes: u64,
    orig_ip_bytes: u64,
    resp_ip_bytes: u64,
    handshake_state: Option<HandshakeState>,
    handshake_rtt: Option<f64>,
    teardown_state: Option<TeardownState>,
    teardown_initiator: Option<Initiator>,
    teardown_kind: Option<TeardownKind>,
    /// Tunnel kinds outermost first, joined by '/', e.g. "gre" or "vxlan/gtpu".
    tunnel: Option<String>,
    /// Ids of the outer connections, joined by ' '.
    tunnel_parents: Option<String>,
    end: EndReason,
}

/// The header row of connection CSV.
pub const CONN_HEADER: &str = "id,proto,orig_ip,orig_port,resp_ip,resp_port,conn_state,history,ts,duration,\
orig_pkts,resp_pkts,orig_bytes,resp_bytes,orig_ip_bytes,resp_ip_bytes,handshake_state,handshake_rtt,\
teardown_state,teardown_initiator,teardown_kind,tunnel,tunnel_parents,end\n";

/// Appends one connection as a CSV row.
pub fn conn_row(buf: &mut Vec<u8>, c: &ConnRecord) {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(buf);
    w.serialize(ConnRow {
        id: c.id,
        proto: c.proto,
        orig_ip: c.orig.ip.to_string(),
        orig_port: c.orig.port,
        resp_ip: c.resp.ip.to_string(),
        resp_port: c.resp.port,
        conn_state: c.conn_state,
        history: &c.history,
        ts: c.ts,
        duration: c.duration,
        orig_pkts: c.orig_pkts,
        resp_pkts: c.resp_pkts,
        orig_bytes: c.orig_bytes,
        resp_bytes: c.resp_bytes,
        orig_ip_bytes: c.orig_ip_bytes,
        resp_ip_bytes: c.resp_ip_bytes,
        handshake_state: c.handshake.as_ref().map(|h| h.state),
        handshake_rtt: c.handshake.as_ref().and_then(|h| h.rtt),
        teardown_state: c.teardown.as_ref().map(|t| t.state),
        teardown_initiator: c.teardown.as_ref().and_then(|t| t.initiator),
        teardown_kind: c.teardown.as_ref().and_then(|t| t.kind),
        tunnel: c
            .tunnel
            .as_ref()
            .map(|t| t.path.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>().join("/")),
        tunnel_parents: c
            .tunnel
            .as_ref()
            .map(|t| t.parents.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")),
        end: c.end,
    })
    .expect("rows serialize to memory");
    w.flush().expect("rows serialize to memory");
}

pub fn write_sockets(out: &mut dyn Write, sockets: &[SocketStats]) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    for s in sockets {
        w.serialize(s).map_err(to_io)?;
    }
    w.flush()
}

fn to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_every_column() {
        let mut w = csv::Writer::from_writer(Vec::new());
        let row = ConnRow {
            id: 1,
            proto: Proto::Tcp,
            orig_ip: "10.0.0.1".into(),
            orig_port: 1,
            resp_ip: "10.0.0.2".into(),
            resp_port: 2,
            conn_state: ConnState::SF,
            history: "ShADadFf",
            ts: 1.0,
            duration: 0.5,
            orig_pkts: 1,
            resp_pkts: 1,
            orig_bytes: 0,
            resp_bytes: 0,
            orig_ip_bytes: 40,
            resp_ip_bytes: 40,
            handshake_state: None,
            handshake_rtt: None,
            teardown_state: None,
            teardown_initiator: None,
            teardown_kind: None,
            tunnel: None,
            tunnel_parents: None,
            end: EndReason::CaptureEnd,
        };
        w.serialize(row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), CONN_HEADER.trim_end());
    }
}
