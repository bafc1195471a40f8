//! A connection as one flat row: the columns of CSV and Parquet, each named, typed and filled
//! in one place.

use serde::Serialize;

use super::record::ConnRecord;

/// Declares the flat row: for each column its name, its Rust type, its Arrow type (Parquet),
/// and its value taken from a record (`$c`).
macro_rules! flat_row {
    ($c:ident => $( $(#[doc = $doc:literal])* $name:ident: $ty:ty as $arrow:ident = $value:expr, )+) => {
        /// A connection as one flat row; nested fields are flattened to `parent_child` columns.
        #[derive(Debug, Serialize)]
        pub struct FlatRow<'a> {
            $( $(#[doc = $doc])* pub $name: $ty, )+
        }

        impl<'a> FlatRow<'a> {
            /// The row of a record.
            pub fn new($c: &'a ConnRecord) -> Self {
                FlatRow { $( $name: $value, )+ }
            }
        }

        /// The columns' names, in order.
        pub const NAMES: &[&str] = &[$(stringify!($name)),+];

        /// The columns as Arrow fields, in order (every one nullable).
        #[cfg(feature = "parquet")]
        pub fn arrow_fields() -> Vec<arrow_schema::FieldRef> {
            use arrow_schema::{DataType, Field};
            vec![$( std::sync::Arc::new(Field::new(stringify!($name), DataType::$arrow, true)) ),+]
        }
    };
}

flat_row! { c =>
    /// The record's `id`.
    id: u64 as UInt64 = c.id,
    /// `tcp` or `udp`.
    proto: &'static str as Utf8 = c.proto.as_str(),
    /// The originator's IP address.
    orig_ip: String as Utf8 = c.orig.ip.to_string(),
    /// The originator's port.
    orig_port: u16 as UInt16 = c.orig.port,
    /// The responder's IP address.
    resp_ip: String as Utf8 = c.resp.ip.to_string(),
    /// The responder's port.
    resp_port: u16 as UInt16 = c.resp.port,
    /// Zeek's conn_state code.
    conn_state: &'static str as Utf8 = c.conn_state.code(),
    /// Zeek's history letters.
    history: &'a str as Utf8 = &c.history,
    /// Time of the first packet, in seconds since the Unix epoch.
    ts: f64 as Float64 = c.ts,
    /// First to last packet, in seconds.
    duration: f64 as Float64 = c.duration,
    /// Packets the originator sent.
    orig_pkts: u64 as UInt64 = c.orig_pkts,
    /// Packets the responder sent.
    resp_pkts: u64 as UInt64 = c.resp_pkts,
    /// Payload bytes the originator sent (TCP: from sequence numbers).
    orig_bytes: u64 as UInt64 = c.orig_bytes,
    /// Payload bytes the responder sent (TCP: from sequence numbers).
    resp_bytes: u64 as UInt64 = c.resp_bytes,
    /// IP-level bytes the originator sent.
    orig_ip_bytes: u64 as UInt64 = c.orig_ip_bytes,
    /// IP-level bytes the responder sent.
    resp_ip_bytes: u64 as UInt64 = c.resp_ip_bytes,
    /// How far the handshake got (TCP only).
    handshake_state: Option<&'static str> as Utf8 = c.handshake.as_ref().map(|h| h.state.as_str()),
    /// SYN to the completing ACK, in seconds (complete handshakes only).
    handshake_rtt: Option<f64> as Float64 = c.handshake.as_ref().and_then(|h| h.rtt),
    /// Where the teardown got to (TCP only).
    teardown_state: Option<&'static str> as Utf8 = c.teardown.as_ref().map(|t| t.state.as_str()),
    /// Who began the teardown, when known.
    teardown_initiator: Option<&'static str> as Utf8 =
        c.teardown.as_ref().and_then(|t| t.initiator).map(|i| i.as_str()),
    /// How the connection was torn down, when known.
    teardown_kind: Option<&'static str> as Utf8 = c.teardown.as_ref().and_then(|t| t.kind).map(|k| k.as_str()),
    /// Tunnel kinds outermost first, joined by '/', e.g. "gre" or "vxlan/gtpu".
    tunnel: Option<String> as Utf8 =
        c.tunnel.as_ref().map(|t| t.path.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>().join("/")),
    /// Ids of the outer connections, joined by ' '.
    tunnel_parents: Option<String> as Utf8 =
        c.tunnel.as_ref().map(|t| t.parents.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")),
    /// Why the record ended.
    end: &'static str as Utf8 = c.end.as_str(),
    /// The capture it came from, with `--per-file`.
    file: Option<&'a str> as Utf8 = c.file.as_deref(),
}
