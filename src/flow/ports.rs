//! Which side is the server when no SYN says so: Zeek's `likely_server_ports`.
//!
//! Zeek adds each protocol analyzer's registered ports to this set (`redef likely_server_ports
//! += { ports }` in its base scripts); the lists below are those of Zeek's default script set.
//! A pure SYN never consults them.

/// Selects the TCP list in [`likely_server`].
pub const TCP: usize = 0;
/// Selects the UDP list in [`likely_server`].
pub const UDP: usize = 1;

const TCP_PORTS: &[u16] = &[
    21, 22, 23, 25, 53, 79, 80, 81, 88, 110, 135, 139, 143, 389, 443, 445, 502, 563, 585, 587, 614, 631, 636,
    989, 990, 992, 993, 995, 1080, 1883, 2811, 3128, 3268, 3389, 5222, 5223, 5269, 5432, 6379, 6666, 6667,
    6668, 6669, 8000, 8080, 8888, 20000,
];

const UDP_PORTS: &[u16] = &[
    53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389, 3544, 4789, 5060, 5072, 5353,
    5355, 6081, 20000,
];

/// Is `port` a likely server port for the protocol (`TCP` or `UDP`)?
pub fn likely_server(proto: usize, port: u16) -> bool {
    let list = if proto == TCP { TCP_PORTS } else { UDP_PORTS };
    list.binary_search(&port).is_ok()
}

/// Zeek's UDP rule: the first datagram's sender is the originator unless it comes from a likely
/// server port and goes to one that is not.
pub fn udp_should_flip(src_port: u16, dst_port: u16) -> bool {
    likely_server(UDP, src_port) && !likely_server(UDP, dst_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_for_binary_search() {
        assert!(TCP_PORTS.windows(2).all(|w| w[0] < w[1]));
        assert!(UDP_PORTS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn protocol_specific() {
        assert!(likely_server(TCP, 80));
        assert!(!likely_server(UDP, 80));
        assert!(likely_server(UDP, 53));
        assert!(!likely_server(TCP, 3306), "Zeek's MySQL analyzer does not add its port");
    }

    #[test]
    fn udp_flip_only_from_server_to_client_port() {
        assert!(udp_should_flip(53, 40000));
        assert!(!udp_should_flip(40000, 53));
        assert!(!udp_should_flip(53, 53));
    }
}
