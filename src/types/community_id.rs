//! The Community ID v1 flow hash (<https://github.com/corelight/community-id-spec>): one string
//! for a connection that Zeek, Suricata, Wireshark and others compute alike, so that their
//! records of it can be joined.

use std::fmt;
use std::net::IpAddr;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha1::{Digest, Sha1};

use super::{Addr, Proto};

/// A connection's Community ID: printed and serialized as `1:` and the base64 of its SHA-1
/// digest (28 characters). The same for both directions of a connection.
///
/// ```
/// use sockscope::types::{Addr, CommunityId, Proto};
///
/// let client = Addr { ip: "1.2.3.4".parse().unwrap(), port: 1122 };
/// let server = Addr { ip: "5.6.7.8".parse().unwrap(), port: 3344 };
/// let id = CommunityId::new(0, Proto::Tcp, client, server);
/// assert_eq!(id.to_string(), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
/// assert_eq!(id, CommunityId::new(0, Proto::Tcp, server, client));
/// ```
///
/// `CommunityId::default()` prints as the empty string, the spec's value for a flow it cannot
/// name: what a record read back from JSON lines written without the field holds.
///
/// The digest is kept and the text made only where it is printed, and binary serializers (the
/// records waiting in `report::order`) get the 20 bytes rather than the text.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CommunityId {
    /// The SHA-1 digest; none for the empty ID.
    digest: Option<[u8; 20]>,
}

impl CommunityId {
    /// The ID of the `proto` connection between `a` and `b` (in either order), under `seed`
    /// (0 unless the sites that compare IDs agreed on another).
    pub fn new(seed: u16, proto: Proto, a: Addr, b: Addr) -> CommunityId {
        // The smaller endpoint first, address before port: that makes the ID directionless.
        let (lo, hi) = if (a.ip, a.port) <= (b.ip, b.port) { (a, b) } else { (b, a) };
        // seed, addresses, protocol, a zero byte, ports: at most 40 bytes, one SHA-1 block.
        let mut input = [0u8; 40];
        input[..2].copy_from_slice(&seed.to_be_bytes());
        let mut n = 2;
        for ip in [lo.ip, hi.ip] {
            n += match ip {
                IpAddr::V4(v4) => put(&mut input[n..], &v4.octets()),
                IpAddr::V6(v6) => put(&mut input[n..], &v6.octets()),
            };
        }
        n += put(&mut input[n..], &[proto.number(), 0]);
        n += put(&mut input[n..], &lo.port.to_be_bytes());
        n += put(&mut input[n..], &hi.port.to_be_bytes());
        CommunityId { digest: Some(Sha1::digest(&input[..n]).into()) }
    }

    /// The ID of its text: empty, or `1:` and the base64 of a 20-byte digest.
    pub fn parse(s: &str) -> Option<CommunityId> {
        if s.is_empty() {
            return Some(CommunityId::default());
        }
        let mut digest = [0u8; 20];
        let text = s.strip_prefix("1:").filter(|t| t.len() == 28)?;
        matches!(STANDARD.decode_slice(text, &mut digest), Ok(20))
            .then_some(CommunityId { digest: Some(digest) })
    }

    /// Appends the ID's text, as `Display` prints it, without formatting machinery: for the
    /// JSON lines writer, which prints one for every connection.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(digest) = &self.digest {
            let mut text = *b"1:0000000000000000000000000000";
            let written = STANDARD.encode_slice(digest, &mut text[2..]).expect("20 bytes are 28 characters");
            debug_assert_eq!(written, text.len() - 2);
            out.extend_from_slice(&text);
        }
    }
}

/// Copies `bytes` to the start of `to`; their length.
fn put(to: &mut [u8], bytes: &[u8]) -> usize {
    to[..bytes.len()].copy_from_slice(bytes);
    bytes.len()
}

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(digest) => write!(f, "1:{}", Base64Display::new(digest, &STANDARD)),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl Serialize for CommunityId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_bytes(self.digest.as_ref().map_or(&[], |d| d.as_slice()))
        }
    }
}

impl<'de> Deserialize<'de> for CommunityId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The text from a human-readable format, the digest's bytes from a binary one.
        struct Id;

        impl Visitor<'_> for Id {
            type Value = CommunityId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Community ID v1 (\"1:\" and 28 base64 characters) or an empty string")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<CommunityId, E> {
                CommunityId::parse(s).ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
            }

            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<CommunityId, E> {
                match b.len() {
                    0 => Ok(CommunityId::default()),
                    _ => match b.try_into() {
                        Ok(digest) => Ok(CommunityId { digest: Some(digest) }),
                        Err(_) => Err(E::invalid_length(b.len(), &"20 bytes")),
                    },
                }
            }
        }

        if d.is_human_readable() {
            d.deserialize_str(Id)
        } else {
            d.deserialize_bytes(Id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str, port: u16) -> Addr {
        Addr { ip: ip.parse().unwrap(), port }
    }

    /// One of the spec's test vectors: a flow and its IDs with seed 0 and with seed 1.
    struct Vector {
        proto: Proto,
        src: (&'static str, u16),
        dst: (&'static str, u16),
        seed_0: &'static str,
        seed_1: &'static str,
    }

    /// The spec's vectors (baseline/README.md and baseline_*.json in corelight/community-id-spec)
    /// for TCP and UDP, IPv4 and IPv6.
    const VECTORS: &[Vector] = &[
        Vector {
            proto: Proto::Tcp,
            src: ("1.2.3.4", 1122),
            dst: ("5.6.7.8", 3344),
            seed_0: "1:wCb3OG7yAFWelaUydu0D+125CLM=",
            seed_1: "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
        },
        Vector {
            proto: Proto::Udp,
            src: ("1.2.3.4", 1122),
            dst: ("5.6.7.8", 3344),
            seed_0: "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
            seed_1: "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
        },
        Vector {
            proto: Proto::Tcp,
            src: ("128.232.110.120", 34855),
            dst: ("66.35.250.204", 80),
            seed_0: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            seed_1: "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
        },
        Vector {
            proto: Proto::Udp,
            src: ("192.168.1.52", 54585),
            dst: ("8.8.8.8", 53),
            seed_0: "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            seed_1: "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
        },
        Vector {
            proto: Proto::Tcp,
            src: ("2001:470:e5bf:dead:4957:2174:e82c:4887", 63943),
            dst: ("2607:f8b0:400c:c03::1a", 25),
            seed_0: "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            seed_1: "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
        },
    ];

    #[test]
    fn the_spec_vectors_in_both_directions() {
        for v in VECTORS {
            let (src, dst) = (addr(v.src.0, v.src.1), addr(v.dst.0, v.dst.1));
            for (a, b) in [(src, dst), (dst, src)] {
                assert_eq!(CommunityId::new(0, v.proto, a, b).to_string(), v.seed_0, "{a} {b}");
                assert_eq!(CommunityId::new(1, v.proto, a, b).to_string(), v.seed_1, "{a} {b} seed 1");
            }
        }
    }

    #[test]
    fn equal_addresses_are_ordered_by_port() {
        let (a, b) = (addr("10.0.0.1", 80), addr("10.0.0.1", 1234));
        assert_eq!(CommunityId::new(0, Proto::Udp, a, b), CommunityId::new(0, Proto::Udp, b, a));
        assert_ne!(
            CommunityId::new(0, Proto::Udp, a, b),
            CommunityId::new(0, Proto::Udp, addr("10.0.0.1", 81), b),
        );
    }

    #[test]
    fn serializes_as_its_text_and_reads_back() {
        let id = CommunityId::new(0, Proto::Tcp, addr("1.2.3.4", 1122), addr("5.6.7.8", 3344));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"1:wCb3OG7yAFWelaUydu0D+125CLM=\"");
        assert_eq!(serde_json::from_str::<CommunityId>(&json).unwrap(), id);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes.len(), 21, "the digest, not its text");
        assert_eq!(postcard::from_bytes::<CommunityId>(&bytes).unwrap(), id);
        let empty = postcard::to_allocvec(&CommunityId::default()).unwrap();
        assert_eq!(postcard::from_bytes::<CommunityId>(&empty).unwrap(), CommunityId::default());
        assert_eq!(serde_json::from_str::<CommunityId>("\"\"").unwrap(), CommunityId::default());
        assert_eq!(CommunityId::default().to_string(), "");
        let mut text = Vec::new();
        id.write_to(&mut text);
        assert_eq!(text, id.to_string().as_bytes());
        for bad in ["\"2:wCb3OG7yAFWelaUydu0D+125CLM=\"", "\"1:wCb3\"", "\"1:wCb3OG7yAFWelaUydu0D+125CL!=\""]
        {
            assert!(serde_json::from_str::<CommunityId>(bad).is_err(), "{bad}");
        }
    }
}
