//! Zeek's conn.log TSV layout, readable by zeek-cut and by tools that read Zeek logs.

use std::io::{self, Write};

use super::record::ConnRecord;
use super::Exporter;
use crate::pipeline::Analysis;

const FIELDS: [(&str, &str); 23] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
    // Where Zeek's community-id logging (policy/protocols/conn/community-id-logging) adds it.
    ("community_id", "string"),
];

/// Connections as a conn.log: Zeek's own columns, so that Zeek's tools read it.
pub struct Zeek {
    /// Mixed into every uid, so that uids differ between captures (`inputs::fingerprint`).
    uid_seed: u64,
}

impl Zeek {
    /// A conn.log writer whose uids mix in `uid_seed`.
    pub fn new(uid_seed: u64) -> Self {
        Zeek { uid_seed }
    }
}

impl Exporter for Zeek {
    fn begin(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        header(out, &now())
    }

    fn record(&mut self, out: &mut Vec<u8>, record: &ConnRecord) -> io::Result<()> {
        row(out, record, self.uid_seed);
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>, _analysis: &Analysis) -> io::Result<()> {
        writeln!(out, "#close\t{}", now())
    }

    fn fork(&self) -> Option<Box<dyn Exporter + Send>> {
        Some(Box::new(Zeek::new(self.uid_seed)))
    }
}

/// The time of writing, as Zeek's `#open` and `#close` lines give it (UTC).
fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d-%H-%M-%S").to_string()
}

/// The header lines of a conn.log, in Zeek's order; `open` is when the log was opened.
fn header(out: &mut dyn Write, open: &str) -> io::Result<()> {
    writeln!(out, "#separator \\x09")?;
    writeln!(out, "#set_separator\t,")?;
    writeln!(out, "#empty_field\t(empty)")?;
    writeln!(out, "#unset_field\t-")?;
    writeln!(out, "#path\tconn")?;
    writeln!(out, "#open\t{open}")?;
    let names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
    let types: Vec<&str> = FIELDS.iter().map(|f| f.1).collect();
    writeln!(out, "#fields\t{}", names.join("\t"))?;
    writeln!(out, "#types\t{}", types.join("\t"))
}

/// Appends one connection as a conn.log row.
fn row(buf: &mut Vec<u8>, c: &ConnRecord, seed: u64) {
    {
        // Like Zeek, duration and byte counts are logged only for connections that lasted.
        let (duration, orig_bytes, resp_bytes) = if c.duration > 0.0 {
            (format!("{:.6}", c.duration), c.orig_bytes.to_string(), c.resp_bytes.to_string())
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        let missed = c.data.as_ref().map_or(0, |d| d.orig_missed_bytes + d.resp_missed_bytes);
        let history = if c.history.is_empty() { "-" } else { &c.history };
        let service = c.service.map_or("-".to_string(), |s| s.to_string());
        let parents = match &c.tunnel {
            // IP-level tunnels (IP-in-IP, GRE) have no outer connection: name the tunnel itself.
            Some(t) if t.parents.is_empty() => uid(seed, u64::MAX - c.id),
            Some(t) => t.parents.iter().map(|&p| uid(seed, p)).collect::<Vec<_>>().join(","),
            None => "-".to_string(),
        };
        writeln!(
            buf,
            "{:.6}\t{}\t{}\t{}\t{}\t{}\t{}\t{service}\t{duration}\t{orig_bytes}\t{resp_bytes}\t{}\t-\t-\t{missed}\t{history}\t{}\t{}\t{}\t{}\t{parents}\t{}\t{}",
            c.ts,
            uid(seed, c.id),
            c.orig.ip,
            c.orig.port,
            c.resp.ip,
            c.resp.port,
            c.proto,
            c.conn_state,
            c.orig_pkts,
            c.orig_ip_bytes,
            c.resp_pkts,
            c.resp_ip_bytes,
            c.proto.number(),
            c.community_id,
        )
        .expect("rows format into memory");
    }
}

/// A Zeek-style connection uid ("C" + base62) from the id and the run's seed: unique within a
/// run, different between captures, the same for the same input, and a parent's uid can be
/// named from its id.
fn uid(seed: u64, id: u64) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = splitmix64(seed) ^ id;
    let mut s = String::from("C");
    for _ in 0..17 {
        x = splitmix64(x);
        s.push(DIGITS[(x % 62) as usize] as char);
    }
    s
}

/// One step of the splitmix64 generator: spreads consecutive inputs over the whole range.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_and_distinct() {
        assert_eq!(uid(7, 1), uid(7, 1));
        assert_ne!(uid(7, 1), uid(7, 2));
        assert_ne!(uid(7, 1), uid(8, 1), "another capture, other uids");
        assert_eq!(uid(7, 1).len(), 18);
        assert!(uid(7, 3).starts_with('C'));
        let many: std::collections::HashSet<String> = (0..100_000).map(|id| uid(7, id)).collect();
        assert_eq!(many.len(), 100_000);
    }
}
