//! Socket pairs as the connection table keys them, and the tunnels they are seen in.

use std::net::{IpAddr, Ipv6Addr};

use crate::decode::tunnel::TunnelKind;
use crate::types::{Addr, Proto};

/// A socket pair with no direction: both directions of a connection map to the same key.
/// It is hashed and compared on every packet and is the only copy of a live connection's
/// sockets, so it is kept to five plain words: addresses as halves of 128-bit numbers (a
/// `u128` would align the key to 16 bytes and pad it), ports, protocol, family and tunnel
/// packed into the fifth. The family bit keeps IPv4 apart from IPv4-mapped IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairKey {
    ips: [u64; 4],
    /// `lo_port | hi_port << 16 | proto << 32 | v4 << 33 | tunnel << 34`.
    rest: u64,
}

impl std::hash::Hash for PairKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Word by word: the derived impl would hash the array as a length-prefixed slice.
        for w in self.ips {
            state.write_u64(w);
        }
        state.write_u64(self.rest);
    }
}

/// A plain TCP socket pair over IPv4, outside any tunnel, in 12 bytes rather than a
/// `PairKey`'s 40: what a scan's half-open connections are keyed by (see `flow::opening`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4TcpPair {
    /// The lower and the higher socket's address and port.
    ips: [u32; 2],
    ports: [u16; 2],
}

impl From<V4TcpPair> for PairKey {
    fn from(pair: V4TcpPair) -> Self {
        let mapped = |ip: u32| u64::from(ip) | 0xffff << 32;
        PairKey {
            ips: [0, mapped(pair.ips[0]), 0, mapped(pair.ips[1])],
            rest: u64::from(pair.ports[0]) | u64::from(pair.ports[1]) << 16 | 1 << 33,
        }
    }
}

/// Tunnels a table tells apart in its keys: 0 means no tunnel, the rest are interned ids.
pub type TunnelId = u32;

/// Interned tunnel ids have 30 bits in a key; a billion distinct tunnels would take far more
/// memory than any machine has for the interning table, so the bound is never reached.
pub const MAX_TUNNEL_ID: TunnelId = (1 << 30) - 1;

/// Which tunnel: its kind and its endpoints' outer addresses, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunnelKey {
    kind: TunnelKind,
    lo: u128,
    hi: u128,
}

/// IPv4 as IPv4-mapped IPv6: one 128-bit number for either family.
pub(crate) fn wide(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

impl TunnelKey {
    /// The key of a tunnel of `kind` between outer addresses `a` and `b`, in either order
    /// (any Teredo tunnel is one key).
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
    /// The key of the socket pair `a`, `b` of `proto`, in either order, in `tunnel` (0: none).
    pub fn new(proto: Proto, a: Addr, b: Addr, tunnel: TunnelId) -> Self {
        Self::ordered(proto, a, b, tunnel).0
    }

    /// The key, and whether `a` is its lower side (so a packet's direction can be told from
    /// one bit instead of comparing addresses).
    pub fn ordered(proto: Proto, a: Addr, b: Addr, tunnel: TunnelId) -> (Self, bool) {
        debug_assert!(tunnel <= MAX_TUNNEL_ID);
        let v4 = a.ip.is_ipv4();
        let (a, b) = ((wide(a.ip), a.port), (wide(b.ip), b.port));
        let a_is_lo = a <= b;
        let ((lo_ip, lo_port), (hi_ip, hi_port)) = if a_is_lo { (a, b) } else { (b, a) };
        let half = |ip: u128, high: bool| (if high { ip >> 64 } else { ip }) as u64;
        let ips = [half(lo_ip, true), half(lo_ip, false), half(hi_ip, true), half(hi_ip, false)];
        let rest = u64::from(lo_port)
            | u64::from(hi_port) << 16
            | u64::from(proto == Proto::Udp) << 32
            | u64::from(v4) << 33
            | u64::from(tunnel) << 34;
        (PairKey { ips, rest }, a_is_lo)
    }

    /// The pair in 12 bytes, if it is a TCP pair over IPv4 outside any tunnel.
    pub fn v4_tcp(&self) -> Option<V4TcpPair> {
        // Protocol TCP, IPv4, no tunnel: of the bits above the ports, only the family's is set;
        // and both addresses IPv4-mapped.
        if self.rest >> 32 != 1 << 1 || self.ips[0] != 0 || self.ips[2] != 0 {
            return None;
        }
        let ip = |half: u64| u32::try_from(half ^ 0xffff << 32).ok();
        let (lo, hi) = self.ports();
        Some(V4TcpPair { ips: [ip(self.ips[1])?, ip(self.ips[3])?], ports: [lo, hi] })
    }

    /// The lower socket of the pair (the one with the smaller address and port).
    pub fn lo(&self) -> Addr {
        self.side(0, self.ports().0)
    }

    /// The higher socket of the pair.
    pub fn hi(&self) -> Addr {
        self.side(2, self.ports().1)
    }

    /// The lower and the higher socket's ports.
    pub fn ports(&self) -> (u16, u16) {
        (self.rest as u16, (self.rest >> 16) as u16)
    }

    fn side(&self, at: usize, port: u16) -> Addr {
        let wide = u128::from(self.ips[at]) << 64 | u128::from(self.ips[at + 1]);
        let v6 = Ipv6Addr::from_bits(wide);
        let ip = match v6.to_ipv4_mapped() {
            Some(v4) if self.rest >> 33 & 1 == 1 => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        };
        Addr { ip, port }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Socket;

    fn addr(s: &str, port: u16) -> Addr {
        Addr { ip: s.parse().unwrap(), port }
    }

    #[test]
    fn pair_key_ignores_direction() {
        let a = addr("10.0.0.1", 40000);
        let b = addr("10.0.0.2", 80);
        assert_eq!(PairKey::new(Proto::Tcp, a, b, 0), PairKey::new(Proto::Tcp, b, a, 0));
    }

    #[test]
    fn pair_key_gives_back_its_sockets() {
        let a = addr("10.0.0.2", 80);
        let b = addr("10.0.0.1", 40000);
        let (key, a_is_lo) = PairKey::ordered(Proto::Udp, a, b, MAX_TUNNEL_ID);
        assert!(!a_is_lo);
        assert_eq!((key.lo(), key.hi()), (b, a));
        let (v6, mapped) = (addr("2001:db8::1", 443), addr("::ffff:10.0.0.1", 40000));
        let key = PairKey::new(Proto::Tcp, v6, mapped, 0);
        assert_eq!((key.lo(), key.hi()), (mapped, v6));
    }

    #[test]
    fn only_plain_tcp_over_ipv4_narrows_and_it_widens_back_the_same() {
        let (a, b) = (addr("192.0.2.7", 40000), addr("10.0.0.1", 80));
        let key = PairKey::new(Proto::Tcp, a, b, 0);
        let narrow = key.v4_tcp().expect("plain TCP over IPv4");
        assert_eq!(PairKey::from(narrow), key);
        assert_eq!(std::mem::size_of::<V4TcpPair>(), 12);
        let (v6, mapped) = (addr("2001:db8::1", 443), addr("::ffff:10.0.0.1", 40000));
        let others = [
            PairKey::new(Proto::Udp, a, b, 0),
            PairKey::new(Proto::Tcp, a, b, 1),
            PairKey::new(Proto::Tcp, v6, a, 0),
            PairKey::new(Proto::Tcp, mapped, addr("::ffff:10.0.0.2", 80), 0),
        ];
        for key in others {
            assert_eq!(key.v4_tcp(), None, "{key:?}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_not_ipv4() {
        let (a, b) = (addr("10.0.0.1", 1), addr("10.0.0.2", 2));
        let (ma, mb) = (addr("::ffff:10.0.0.1", 1), addr("::ffff:10.0.0.2", 2));
        assert_ne!(PairKey::new(Proto::Tcp, a, b, 0), PairKey::new(Proto::Tcp, ma, mb, 0));
    }

    #[test]
    fn same_port_other_protocol_is_another_socket_pair() {
        let a = addr("10.0.0.1", 8081);
        let b = addr("10.0.0.2", 5000);
        assert_ne!(PairKey::new(Proto::Tcp, a, b, 0), PairKey::new(Proto::Udp, a, b, 0));
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
