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
    id: u64 as UInt64 = c.id,
    proto: &'static str as Utf8 = c.proto.as_str(),
    orig_ip: String as Utf8 = c.orig.ip.to_string(),
    orig_port: u16 as UInt16 = c.orig.port,
    resp_ip: String as Utf8 = c.resp.ip.to_string(),
    resp_port: u16 as UInt16 = c.resp.port,
    conn_state: &'static str as Utf8 = c.conn_state.code(),
    history: &'a str as Utf8 = &c.history,
    ts: f64 as Float64 = c.ts,
    duration: f64 as Float64 = c.duration,
    orig_pkts: u64 as UInt64 = c.orig_pkts,
    resp_pkts: u64 as UInt64 = c.resp_pkts,
    orig_bytes: u64 as UInt64 = c.orig_bytes,
    resp_bytes: u64 as UInt64 = c.resp_bytes,
    orig_ip_bytes: u64 as UInt64 = c.orig_ip_bytes,
    resp_ip_bytes: u64 as UInt64 = c.resp_ip_bytes,
    handshake_state: Option<&'static str> as Utf8 = c.handshake.as_ref().map(|h| h.state.as_str()),
    handshake_rtt: Option<f64> as Float64 = c.handshake.as_ref().and_then(|h| h.rtt),
    teardown_state: Option<&'static str> as Utf8 = c.teardown.as_ref().map(|t| t.state.as_str()),
    teardown_initiator: Option<&'static str> as Utf8 =
        c.teardown.as_ref().and_then(|t| t.initiator).map(|i| i.as_str()),
    teardown_kind: Option<&'static str> as Utf8 = c.teardown.as_ref().and_then(|t| t.kind).map(|k| k.as_str()),
    /// Tunnel kinds outermost first, joined by '/', e.g. "gre" or "vxlan/gtpu".
    tunnel: Option<String> as Utf8 =
        c.tunnel.as_ref().map(|t| t.path.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>().join("/")),
    /// Ids of the outer connections, joined by ' '.
    tunnel_parents: Option<String> as Utf8 =
        c.tunnel.as_ref().map(|t| t.parents.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")),
    end: &'static str as Utf8 = c.end.as_str(),
    /// The capture it came from, with `--per-file`.
    file: Option<&'a str> as Utf8 = c.file.as_deref(),
}
