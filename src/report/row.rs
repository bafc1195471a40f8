//! A connection as one flat row: the columns of CSV and Parquet, each named, typed and filled
//! in one place. Nested fields are flattened to `parent_child` columns.

use serde::Serialize;

use super::record::ConnRecord;
use crate::tcp::phases::Offered;

/// What a column holds, beyond its Rust type: Parquet gives times and spans their Arrow types,
/// and lists theirs; CSV prints them as the record does (seconds; a list as `[1,2]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A number or a word as it is.
    Plain,
    /// Seconds since the epoch: Arrow `Timestamp(Microsecond, "UTC")`.
    Time,
    /// Seconds: Arrow `Duration(Microsecond)`.
    Span,
    /// Ids as `[1,2]`: Arrow `List(UInt64)`.
    Ids,
}

/// Declares the flat row: for each column its name, its Rust type, the Arrow type its column is
/// built in, its kind, and its value taken from a record (`$c`).
macro_rules! flat_row {
    ($c:ident => $( $(#[doc = $doc:literal])* $name:ident: $ty:ty as $arrow:ident $kind:ident = $value:expr, )+) => {
        /// A connection as one flat row (see the module).
        #[derive(Debug, Serialize)]
        pub struct FlatRow<'a> {
            $( $(#[doc = $doc])* pub $name: $ty, )+
        }

        impl<'a> FlatRow<'a> {
            /// The row of `$c`.
            pub fn new($c: &'a ConnRecord) -> Self {
                FlatRow { $( $name: $value, )+ }
            }
        }

        /// The columns' names, in order.
        pub const NAMES: &[&str] = &[$(stringify!($name)),+];

        /// The columns' kinds, in order.
        pub const KINDS: &[Kind] = &[$(Kind::$kind),+];

        /// The columns as they are built (every one nullable), in order.
        #[cfg(feature = "parquet")]
        pub fn arrow_fields() -> Vec<arrow_schema::Field> {
            use arrow_schema::{DataType, Field};
            vec![$( Field::new(stringify!($name), DataType::$arrow, true) ),+]
        }

        /// The rows' columns while they are built, one Arrow builder per column.
        #[cfg(feature = "parquet")]
        #[derive(Default)]
        pub struct ArrowColumns {
            $( $name: arrow_builder!($arrow), )+
        }

        #[cfg(feature = "parquet")]
        impl ArrowColumns {
            /// Adds the row of `$c`.
            pub fn push(&mut self, $c: &ConnRecord) {
                let row = FlatRow::new($c);
                $( Append::append(&mut self.$name, row.$name); )+
            }

            /// The columns built so far, in order; the builders start again.
            pub fn finish(&mut self) -> Vec<arrow_array::ArrayRef> {
                use arrow_array::builder::ArrayBuilder;
                vec![$( ArrayBuilder::finish(&mut self.$name), )+]
            }
        }
    };
}

/// The Arrow builder of a column's Arrow type.
#[cfg(feature = "parquet")]
macro_rules! arrow_builder {
    (UInt8) => {
        arrow_array::builder::UInt8Builder
    };
    (UInt16) => {
        arrow_array::builder::UInt16Builder
    };
    (UInt32) => {
        arrow_array::builder::UInt32Builder
    };
    (UInt64) => {
        arrow_array::builder::UInt64Builder
    };
    (Float64) => {
        arrow_array::builder::Float64Builder
    };
    (Boolean) => {
        arrow_array::builder::BooleanBuilder
    };
    (Utf8) => {
        arrow_array::builder::StringBuilder
    };
}

/// A value appended to its column's builder: `None` as null.
#[cfg(feature = "parquet")]
trait Append<T> {
    fn append(&mut self, value: T);
}

#[cfg(feature = "parquet")]
macro_rules! append_primitive {
    ($($t:ty => $builder:ty),+) => {$(
        impl Append<$t> for $builder {
            fn append(&mut self, value: $t) {
                self.append_value(value);
            }
        }
        impl Append<Option<$t>> for $builder {
            fn append(&mut self, value: Option<$t>) {
                self.append_option(value);
            }
        }
    )+};
}

#[cfg(feature = "parquet")]
append_primitive!(
    u8 => arrow_array::builder::UInt8Builder,
    u16 => arrow_array::builder::UInt16Builder,
    u32 => arrow_array::builder::UInt32Builder,
    u64 => arrow_array::builder::UInt64Builder,
    f64 => arrow_array::builder::Float64Builder,
    bool => arrow_array::builder::BooleanBuilder
);

#[cfg(feature = "parquet")]
macro_rules! append_text {
    ($($t:ty),+) => {$(
        impl<'s> Append<$t> for arrow_array::builder::StringBuilder {
            fn append(&mut self, value: $t) {
                self.append_value(value);
            }
        }
        impl<'s> Append<Option<$t>> for arrow_array::builder::StringBuilder {
            fn append(&mut self, value: Option<$t>) {
                self.append_option(value);
            }
        }
    )+};
}

#[cfg(feature = "parquet")]
append_text!(&'s str, String);

/// Options one side offered, or none.
fn offered(c: &ConnRecord, orig: bool) -> Option<&Offered> {
    c.handshake.as_ref().and_then(|h| if orig { h.orig_options.as_ref() } else { h.resp_options.as_ref() })
}

flat_row! { c =>
    /// 1, 2, 3 ... in order of first packet.
    id: u64 as UInt64 Plain = c.id,
    /// tcp or udp.
    proto: &'static str as Utf8 Plain = c.proto.as_str(),
    /// The originator's address.
    orig_ip: String as Utf8 Plain = c.orig.ip.to_string(),
    /// The originator's port.
    orig_port: u16 as UInt16 Plain = c.orig.port,
    /// The responder's address.
    resp_ip: String as Utf8 Plain = c.resp.ip.to_string(),
    /// The responder's port.
    resp_port: u16 as UInt16 Plain = c.resp.port,
    /// Zeek's conn_state code.
    conn_state: &'static str as Utf8 Plain = c.conn_state.code(),
    /// Zeek's history letters.
    history: &'a str as Utf8 Plain = &c.history,
    /// Zeek's service names, joined by ','.
    service: Option<String> as Utf8 Plain = c.service.map(|s| s.to_string()),
    /// First packet.
    ts: f64 as Float64 Time = c.ts,
    /// Last packet minus first.
    duration: f64 as Float64 Span = c.duration,
    /// Originator's packets.
    orig_pkts: u64 as UInt64 Plain = c.orig_pkts,
    /// Responder's packets.
    resp_pkts: u64 as UInt64 Plain = c.resp_pkts,
    /// Originator's payload bytes (TCP: from sequence numbers).
    orig_bytes: u64 as UInt64 Plain = c.orig_bytes,
    /// Responder's payload bytes.
    resp_bytes: u64 as UInt64 Plain = c.resp_bytes,
    /// Originator's IP bytes.
    orig_ip_bytes: u64 as UInt64 Plain = c.orig_ip_bytes,
    /// Responder's IP bytes.
    resp_ip_bytes: u64 as UInt64 Plain = c.resp_ip_bytes,
    /// How the handshake went.
    handshake_state: Option<&'static str> as Utf8 Plain = c.handshake.as_ref().map(|h| h.state.as_str()),
    /// SYN to ACK.
    handshake_rtt: Option<f64> as Float64 Span = c.handshake.as_ref().and_then(|h| h.rtt),
    /// SYN to SYN+ACK.
    handshake_rtt_server: Option<f64> as Float64 Span = c.handshake.as_ref().and_then(|h| h.rtt_server),
    /// SYN+ACK to ACK.
    handshake_rtt_client: Option<f64> as Float64 Span = c.handshake.as_ref().and_then(|h| h.rtt_client),
    /// The first SYN.
    handshake_syn_ts: Option<f64> as Float64 Time = c.handshake.as_ref().and_then(|h| h.syn_ts),
    /// The SYN+ACK.
    handshake_synack_ts: Option<f64> as Float64 Time = c.handshake.as_ref().and_then(|h| h.synack_ts),
    /// The handshake's ACK.
    handshake_ack_ts: Option<f64> as Float64 Time = c.handshake.as_ref().and_then(|h| h.ack_ts),
    /// SYNs sent again.
    handshake_syn_retransmissions: Option<u32> as UInt32 Plain = c.handshake.as_ref().map(|h| h.syn_retransmissions),
    /// MSS the originator offered.
    orig_mss: Option<u16> as UInt16 Plain = offered(c, true).and_then(|o| o.mss),
    /// Window scale the originator offered.
    orig_window_scale: Option<u8> as UInt8 Plain = offered(c, true).and_then(|o| o.window_scale),
    /// The originator offered SACK.
    orig_sack_permitted: Option<bool> as Boolean Plain = offered(c, true).map(|o| o.sack_permitted),
    /// The originator offered timestamps.
    orig_timestamps: Option<bool> as Boolean Plain = offered(c, true).map(|o| o.timestamps),
    /// MSS the responder offered.
    resp_mss: Option<u16> as UInt16 Plain = offered(c, false).and_then(|o| o.mss),
    /// Window scale the responder offered.
    resp_window_scale: Option<u8> as UInt8 Plain = offered(c, false).and_then(|o| o.window_scale),
    /// The responder offered SACK.
    resp_sack_permitted: Option<bool> as Boolean Plain = offered(c, false).map(|o| o.sack_permitted),
    /// The responder offered timestamps.
    resp_timestamps: Option<bool> as Boolean Plain = offered(c, false).map(|o| o.timestamps),
    /// How the connection ended.
    teardown_state: Option<&'static str> as Utf8 Plain = c.teardown.as_ref().map(|t| t.state.as_str()),
    /// Who ended it.
    teardown_initiator: Option<&'static str> as Utf8 Plain =
        c.teardown.as_ref().and_then(|t| t.initiator).map(|i| i.as_str()),
    /// The kind of close or reset.
    teardown_kind: Option<&'static str> as Utf8 Plain = c.teardown.as_ref().and_then(|t| t.kind).map(|k| k.as_str()),
    /// The first FIN.
    teardown_first_fin_ts: Option<f64> as Float64 Time = c.teardown.as_ref().and_then(|t| t.first_fin_ts),
    /// The second side's FIN.
    teardown_last_fin_ts: Option<f64> as Float64 Time = c.teardown.as_ref().and_then(|t| t.last_fin_ts),
    /// The ACK of the last FIN.
    teardown_final_ack_ts: Option<f64> as Float64 Time = c.teardown.as_ref().and_then(|t| t.final_ack_ts),
    /// The first RST.
    teardown_rst_ts: Option<f64> as Float64 Time = c.teardown.as_ref().and_then(|t| t.rst_ts),
    /// Originator's payload bytes as carried (retransmissions included).
    orig_payload_bytes: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.orig_payload_bytes),
    /// Responder's payload bytes as carried.
    resp_payload_bytes: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.resp_payload_bytes),
    /// Originator's retransmitted segments.
    orig_rexmit_pkts: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.orig_rexmit_pkts),
    /// Responder's retransmitted segments.
    resp_rexmit_pkts: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.resp_rexmit_pkts),
    /// Originator's retransmitted bytes.
    orig_rexmit_bytes: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.orig_rexmit_bytes),
    /// Responder's retransmitted bytes.
    resp_rexmit_bytes: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.resp_rexmit_bytes),
    /// Originator's zero-window advertisements.
    orig_zero_windows: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.orig_zero_windows),
    /// Responder's zero-window advertisements.
    resp_zero_windows: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.resp_zero_windows),
    /// Originator's duplicate ACKs.
    orig_dup_acks: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.orig_dup_acks),
    /// Responder's duplicate ACKs.
    resp_dup_acks: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.resp_dup_acks),
    /// Originator's segments ahead of a hole.
    orig_out_of_order: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.orig_out_of_order),
    /// Responder's segments ahead of a hole.
    resp_out_of_order: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.resp_out_of_order),
    /// Originator's bytes acknowledged but never captured.
    orig_missed_bytes: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.orig_missed_bytes),
    /// Responder's bytes acknowledged but never captured.
    resp_missed_bytes: Option<u64> as UInt64 Plain = c.data.as_ref().map(|d| d.resp_missed_bytes),
    /// Tunnel kinds outermost first, joined by '/', e.g. "gre" or "vxlan/gtpu".
    tunnel: Option<String> as Utf8 Plain =
        c.tunnel.as_ref().map(|t| t.path.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>().join("/")),
    /// Ids of the outer connections, `[1,2]`.
    tunnel_parents: Option<String> as Utf8 Ids = c.tunnel.as_ref().map(|t| {
        format!("[{}]", t.parents.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
    }),
    /// Why the record ended.
    end: &'static str as Utf8 Plain = c.end.as_str(),
    /// The Community ID of the 5-tuple.
    community_id: String as Utf8 Plain = c.community_id.to_string(),
    /// The capture it came from, with `--per-file`.
    file: Option<&'a str> as Utf8 Plain = c.file.as_deref(),
}
