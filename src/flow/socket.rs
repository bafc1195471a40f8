//! Sockets and socket pairs: the identities connections are keyed by.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::decode::tunnel::TunnelKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address and port; with a protocol it names a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Addr {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// `<protocol, IP, port>`: TCP and UDP on one port number are two sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Socket {
    pub proto: Proto,
    pub addr: Addr,
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.proto)
    }
}

/// A socket pair with no direction: both directions of a connection map to the same key.
/// Addresses are kept as 128-bit numbers so the per-packet lookup hashes and compares plain
/// integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairKey {
    lo_ip: u128,
    hi_ip: u128,
    lo_port: u16,
    hi_port: u16,
    proto: Proto,
    /// The tunnel the pair was seen in: the same inner addresses in two tunnels are two pairs.
    tunnel: Option<TunnelKey>,
}

/// Which tunnel: its kind and its endpoints' outer addresses, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunnelKey {
    kind: TunnelKind,
    lo: u128,
    hi: u128,
}

/// IPv4 as IPv4-mapped IPv6: one 128-bit number for either family.
fn wide(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

impl TunnelKey {
    pub fn new(kind: TunnelKind, a: IpAddr, b: IpAddr) -> Self {
        // Teredo relays change the outer addresses mid-connection; Teredo's inner IPv6
        // addresses already embed the server and client, so the kind alone identifies it.
        if kind == TunnelKind::Teredo {
            return TunnelKey { kind, lo: 0, hi: 0 };
        }
        let (a, b) = (wide(a), wide(b));
        TunnelKey { kind, lo: a.min(b), hi: a.max(b) }
    }
}

impl PairKey {
    pub fn new(proto: Proto, a: Addr, b: Addr, tunnel: Option<TunnelKey>) -> Self {
        Self::ordered(proto, a, b, tunnel).0
    }

    /// The key, and whether `a` is its lower side (so a packet's direction can be told from
    /// one bit instead of comparing addresses).
    pub fn ordered(proto: Proto, a: Addr, b: Addr, tunnel: Option<TunnelKey>) -> (Self, bool) {
        let (a, b) = ((wide(a.ip), a.port), (wide(b.ip), b.port));
        let a_is_lo = a <= b;
        let ((lo_ip, lo_port), (hi_ip, hi_port)) = if a_is_lo { (a, b) } else { (b, a) };
        (PairKey { lo_ip, hi_ip, lo_port, hi_port, proto, tunnel }, a_is_lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str, port: u16) -> Addr {
        Addr { ip: s.parse().unwrap(), port }
    }

    #[test]
    fn pair_key_ignores_direction() {
        let a = addr("10.0.0.1", 40000);
        let b = addr("10.0.0.2", 80);
        assert_eq!(PairKey::new(Proto::Tcp, a, b, None), PairKey::new(Proto::Tcp, b, a, None));
    }

    #[test]
    fn same_port_other_protocol_is_another_socket_pair() {
        let a = addr("10.0.0.1", 8081);
        let b = addr("10.0.0.2", 5000);
        assert_ne!(PairKey::new(Proto::Tcp, a, b, None), PairKey::new(Proto::Udp, a, b, None));
        let tcp = Socket { proto: Proto::Tcp, addr: a };
        let udp = Socket { proto: Proto::Udp, addr: a };
        assert_ne!(tcp, udp);
        assert_eq!(tcp.to_string(), "10.0.0.1:8081/tcp");
    }

    #[test]
    fn two_addresses_of_one_host_are_two_sockets() {
        let v4 = Socket { proto: Proto::Tcp, addr: addr("10.0.0.1", 22) };
        let other = Socket { proto: Proto::Tcp, addr: addr("10.0.0.9", 22) };
        assert_ne!(v4, other);
        let v6 = Socket { proto: Proto::Tcp, addr: addr("::1", 22) };
        assert_eq!(v6.to_string(), "[::1]:22/tcp");
    }
}
