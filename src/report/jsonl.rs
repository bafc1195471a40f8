//! One JSON object per line.

use std::io::{self, Write};

use serde::Serialize;

use super::record::ConnRecord;
use super::Exporter;
use crate::flow::inventory::SocketStats;
use crate::tcp::phases::{Initiator, TeardownKind};
use crate::types::Addr;

/// Connections as JSON lines.
pub struct Jsonl;

impl Exporter for Jsonl {
    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        conn_line(out, record);
        Ok(())
    }

    fn fork(&self) -> Option<Box<dyn Exporter + Send>> {
        Some(Box::new(Jsonl))
    }
}

/// The socket inventory, a JSON line each.
pub fn write_sockets(out: &mut dyn Write, sockets: &[SocketStats]) -> io::Result<()> {
    let mut buf = Vec::new();
    for s in sockets {
        line(&mut buf, s);
        if buf.len() >= 64 << 10 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// Appends `item` as one line of JSON.
pub fn line<T: Serialize>(buf: &mut Vec<u8>, item: &T) {
    serde_json::to_writer(&mut *buf, item).expect("records serialize to JSON");
    buf.push(b'\n');
}

/// A field name with its punctuation, `,"name":`, put together at compile time: one copy per
/// field instead of four small appends. An array, so that its length is known where it is
/// copied: a copy of a length known only at run time is a call to `memmove`, dozens per line.
macro_rules! key {
    ($name:expr) => {{
        const TEXT: &str = concat!(",\"", $name, "\":");
        const KEY: [u8; TEXT.len()] = bytes(TEXT);
        &KEY
    }};
}

/// `text`'s bytes as an array, at compile time (`key!`).
const fn bytes<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = text.as_bytes()[i];
        i += 1;
    }
    out
}

/// Integer fields of `$record` that are all zero on most connections (the data phase's
/// troubles): then written as one constant run instead of field by field.
macro_rules! counters {
    ($obj:expr, $record:expr, $($field:ident),+) => {
        if $($record.$field == 0)&&+ {
            $obj.buf.extend_from_slice(concat!($(",\"", stringify!($field), "\":0"),+).as_bytes());
        } else {
            $($obj.u64(key!(stringify!($field)), $record.$field);)+
        }
    };
}

/// Appends a connection record as one line of JSON, byte for byte what serde_json writes for
/// `ConnRecord` (a test holds the two together). Written out by hand because serde_json
/// re-escapes every field name of every record, a large share of the run when there are
/// hundreds of thousands of short connections (docs/performance.md, "JSON writer").
pub fn conn_line(buf: &mut Vec<u8>, c: &ConnRecord) {
    let mut w = Obj::open(buf);
    w.u64(key!("id"), c.id);
    w.word(key!("proto"), c.proto.as_str());
    w.addr(key!("orig"), c.orig);
    w.addr(key!("resp"), c.resp);
    w.word(key!("conn_state"), c.conn_state.code());
    w.text(key!("history"), &c.history);
    w.opt(key!("service"), c.service, |o, key, s| o.word(key, &s.to_string()));
    w.key(key!("ts"));
    let ts_at = w.buf.len();
    w.number(c.ts);
    // syn_ts is nearly always the same value: copied rather than formatted again.
    let ts_text = ts_at..w.buf.len();
    w.f64(key!("duration"), c.duration);
    w.u64(key!("orig_pkts"), c.orig_pkts);
    w.u64(key!("resp_pkts"), c.resp_pkts);
    w.u64(key!("orig_bytes"), c.orig_bytes);
    w.u64(key!("resp_bytes"), c.resp_bytes);
    w.u64(key!("orig_ip_bytes"), c.orig_ip_bytes);
    w.u64(key!("resp_ip_bytes"), c.resp_ip_bytes);
    w.key(key!("handshake"));
    match &c.handshake {
        None => w.null(),
        Some(h) => {
            let mut o = Obj::open(w.buf);
            o.word(key!("state"), h.state.as_str());
            o.opt_f64(key!("rtt"), h.rtt);
            o.opt_f64(key!("rtt_server"), h.rtt_server);
            o.opt_f64(key!("rtt_client"), h.rtt_client);
            if h.syn_ts == Some(c.ts) {
                o.key(key!("syn_ts"));
                o.buf.extend_from_within(ts_text);
            } else {
                o.opt_f64(key!("syn_ts"), h.syn_ts);
            }
            o.opt_f64(key!("synack_ts"), h.synack_ts);
            o.opt_f64(key!("ack_ts"), h.ack_ts);
            o.u64(key!("syn_retransmissions"), h.syn_retransmissions.into());
            for (key, offered) in
                [(key!("orig_options"), &h.orig_options), (key!("resp_options"), &h.resp_options)]
            {
                o.key(key);
                match offered {
                    None => o.null(),
                    Some(x) => {
                        let mut p = Obj::open(o.buf);
                        p.opt_u64(key!("mss"), x.mss.map(u64::from));
                        p.opt_u64(key!("window_scale"), x.window_scale.map(u64::from));
                        p.bool(key!("sack_permitted"), x.sack_permitted);
                        p.bool(key!("timestamps"), x.timestamps);
                        p.close();
                    }
                }
            }
            o.close();
        }
    }
    w.key(key!("teardown"));
    match &c.teardown {
        None => w.null(),
        Some(t) => {
            let mut o = Obj::open(w.buf);
            o.word(key!("state"), t.state.as_str());
            o.opt_word(key!("initiator"), t.initiator.map(Initiator::as_str));
            o.opt_word(key!("kind"), t.kind.map(TeardownKind::as_str));
            o.opt_f64(key!("first_fin_ts"), t.first_fin_ts);
            o.opt_f64(key!("last_fin_ts"), t.last_fin_ts);
            o.opt_f64(key!("final_ack_ts"), t.final_ack_ts);
            o.opt_f64(key!("rst_ts"), t.rst_ts);
            o.close();
        }
    }
    w.key(key!("data"));
    match &c.data {
        None => w.null(),
        Some(d) => {
            let mut o = Obj::open(w.buf);
            o.u64(key!("orig_payload_bytes"), d.orig_payload_bytes);
            o.u64(key!("resp_payload_bytes"), d.resp_payload_bytes);
            counters!(
                o,
                d,
                orig_rexmit_pkts,
                resp_rexmit_pkts,
                orig_rexmit_bytes,
                resp_rexmit_bytes,
                orig_zero_windows,
                resp_zero_windows,
                orig_dup_acks,
                resp_dup_acks,
                orig_out_of_order,
                resp_out_of_order,
                orig_missed_bytes,
                resp_missed_bytes
            );
            o.close();
        }
    }
    w.key(key!("tunnel"));
    match &c.tunnel {
        // Rare: serde's own writer is fine here.
        Some(t) => serde_json::to_writer(&mut *w.buf, t).expect("records serialize to JSON"),
        None => w.null(),
    }
    w.word(key!("end"), c.end.as_str());
    w.key(key!("community_id"));
    w.buf.push(b'"');
    c.community_id.write_to(w.buf);
    w.buf.push(b'"');
    if let Some(file) = &c.file {
        w.text(key!("file"), file);
    }
    w.close();
    buf.push(b'\n');
}

/// Appends a few bytes one by one: for a number's digits that is cheaper than a call to
/// `memmove`, which `extend_from_slice` makes for a length not known at compile time (not so
/// for an IPv4 octet or an f64).
fn push_short(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len());
    for &b in bytes {
        buf.push(b);
    }
}

fn needs_no_escape(v: &str) -> bool {
    v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// A JSON object being written: fields are separated as they come.
struct Obj<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        Obj { buf, first: true }
    }

    fn close(self) {
        self.buf.push(b'}');
    }

    /// `key` is `,"name":` as made by `key!` (the record's own constant: nothing to escape);
    /// the first field of an object goes without the comma. Inlined, so that each copy is of a
    /// constant length.
    #[inline(always)]
    fn key<const N: usize>(&mut self, key: &[u8; N]) {
        if self.first {
            self.first = false;
            self.buf.extend_from_slice(&key[1..]);
        } else {
            self.buf.extend_from_slice(key);
        }
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(b"null");
    }

    fn u64<const N: usize>(&mut self, key: &[u8; N], v: u64) {
        self.key(key);
        push_short(self.buf, itoa::Buffer::new().format(v).as_bytes());
    }

    /// A field that may be null: `write` writes it when there is a value.
    fn opt<T, const N: usize>(
        &mut self,
        key: &[u8; N],
        v: Option<T>,
        write: impl FnOnce(&mut Self, &[u8; N], T),
    ) {
        match v {
            Some(v) => write(self, key, v),
            None => {
                self.key(key);
                self.null();
            }
        }
    }

    fn opt_u64<const N: usize>(&mut self, key: &[u8; N], v: Option<u64>) {
        self.opt(key, v, Self::u64);
    }

    fn f64<const N: usize>(&mut self, key: &[u8; N], v: f64) {
        self.key(key);
        self.number(v);
    }

    fn number(&mut self, v: f64) {
        serde_json::to_writer(&mut *self.buf, &v).expect("numbers serialize to JSON");
    }

    fn opt_f64<const N: usize>(&mut self, key: &[u8; N], v: Option<f64>) {
        self.opt(key, v, Self::f64);
    }

    fn bool<const N: usize>(&mut self, key: &[u8; N], v: bool) {
        self.key(key);
        self.buf.extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// A string of the program's own (a state code, a kind ...), as made or read back from a
    /// waiting record: its string literals hold nothing to escape, so the check `text` makes is
    /// left out.
    fn word<const N: usize>(&mut self, key: &[u8; N], v: &str) {
        debug_assert!(needs_no_escape(v), "{v:?}");
        self.key(key);
        self.quoted(v);
    }

    fn opt_word<const N: usize>(&mut self, key: &[u8; N], v: Option<&str>) {
        self.opt(key, v, Self::word);
    }

    fn text<const N: usize>(&mut self, key: &[u8; N], v: &str) {
        self.key(key);
        if needs_no_escape(v) {
            self.quoted(v);
        } else {
            serde_json::to_writer(&mut *self.buf, v).expect("strings serialize to JSON");
        }
    }

    /// `v` in quotes, as it is: the caller knows there is nothing to escape.
    fn quoted(&mut self, v: &str) {
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
    }

    fn addr<const N: usize>(&mut self, key: &[u8; N], a: Addr) {
        self.key(key);
        let mut o = Obj::open(self.buf);
        o.key(key!("ip"));
        // Addresses print as plain ASCII (digits, dots, hex, colons).
        o.buf.push(b'"');
        match a.ip {
            // The common case by hand: the formatting machinery costs more than the digits.
            std::net::IpAddr::V4(v4) => {
                let mut octets = itoa::Buffer::new();
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        o.buf.push(b'.');
                    }
                    o.buf.extend_from_slice(octets.format(octet).as_bytes());
                }
            }
            std::net::IpAddr::V6(v6) => write!(o.buf, "{v6}").expect("writing to memory"),
        }
        o.buf.push(b'"');
        o.u64(key!("port"), a.port.into());
        o.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_line_is_what_serde_writes() {
        // Every variant the samples hold: TCP with and without handshakes, UDP, IPv6.
        for sample in ["teardowns.pcap", "udp_and_reuse.pcapng", "ipv6.pcap"] {
            let records = super::super::record::of_sample(sample);
            assert!(!records.is_empty());
            let same = |r: &ConnRecord| {
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                conn_line(&mut ours, r);
                line(&mut theirs, r);
                // A record from no particular file leaves the field out.
                let theirs = String::from_utf8(theirs).unwrap().replace(",\"file\":null}", "}");
                assert_eq!(String::from_utf8(ours).unwrap(), theirs);
            };
            for mut r in records {
                same(&r);
                r.file = Some("captures/\"odd\" name\\01.pcap".into());
                same(&r);
                r.file = None;
                // The samples' connections had no troubles: the counters one by one, too.
                if let Some(d) = r.data.as_mut() {
                    (d.resp_dup_acks, d.orig_missed_bytes) = (3, 1 << 40);
                    same(&r);
                }
            }
        }
    }

    #[test]
    fn one_object_per_line() {
        let mut out = Vec::new();
        line(&mut out, &serde_json::json!({"a": 1}));
        line(&mut out, &serde_json::json!({"b": [2]}));
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1}\n{\"b\":[2]}\n");
    }
}
