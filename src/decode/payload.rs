//! What a segment's or datagram's first payload bytes look like: the fixed parts of the first
//! messages of common application protocols (a TLS ClientHello, an SSH banner, a DNS header
//! ...). Read here, where the bytes are, so that one small value (`Shape`) rather than the
//! bytes travels to the connection table, where `flow::app` turns it into Zeek's service
//! names by direction. A payload of no protocol costs a match on its first byte and a check or
//! two.

use super::field::be16;

/// The protocol message a payload starts with, as far as its first bytes tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// Nothing recognised.
    #[default]
    None,
    /// The payload was not captured (snap length), so nothing can be said.
    NotCaptured,
    /// A TLS record with a ClientHello, or an SSLv2-framed one.
    TlsClientHello,
    /// A TLS record with a ServerHello.
    TlsServerHello,
    /// Another TLS record (alert, handshake, change cipher spec, application data), or what
    /// may be SSLv2 framing.
    TlsRecord,
    /// An SSH version banner (`SSH-`).
    Ssh,
    /// An HTTP/1.x request line.
    HttpRequest,
    /// SMTP's `EHLO` or `HELO`.
    SmtpHello,
    /// FTP's `USER` or `AUTH`.
    FtpCommand,
    /// IRC's `NICK` or `CAP LS`.
    IrcCommand,
    /// An IRC server message with a numeric reply (`:server 001 ...`).
    IrcReply,
    /// A Redis command (an array of bulk strings).
    RedisCommand,
    /// An RDP connection request (TPKT, X.224 CR, RDP's cookie or negotiation request).
    RdpRequest,
    /// TPKT with an X.224 connection confirm.
    RdpConfirm,
    /// IMAP's `* OK` greeting.
    ImapGreeting,
    /// POP3's `+OK` (a greeting, or any positive answer).
    Pop3Ok,
    /// A MySQL server handshake packet.
    MysqlGreeting,
    /// A Modbus/TCP request whose length matches the segment.
    Modbus,
    /// SMB1/2/3 in a NetBIOS session message.
    Smb,
    /// Kerberos over TCP (a record length, then an AS/TGS message).
    KrbTcp,
    /// A connection-oriented DCE/RPC PDU.
    DceRpc,
    /// An LDAP message.
    Ldap,
    /// A DNS message.
    Dns,
    /// A BOOTP/DHCP message.
    Dhcp,
    /// An NTPv3/v4 packet of modes 1 to 5.
    Ntp,
    /// A QUIC Initial as large as a client's must be.
    QuicClientInitial,
    /// A QUIC Initial or Handshake packet.
    QuicLongHeader,
    /// A DTLS ClientHello.
    DtlsClientHello,
    /// Another DTLS handshake record.
    DtlsHandshake,
    /// RDP-UDP's SYN datagram.
    RdpeudpSyn,
    /// A datagram with RDP-UDP's SYN or ACK flag (an answer to its SYN, if one came).
    RdpeudpFlags,
    /// A SIP request or status line.
    Sip,
    /// An SNMP message.
    Snmp,
    /// Kerberos over UDP.
    Krb,
    /// A syslog message (`<PRI>`).
    Syslog,
}

/// What Zeek's DNS and NTP analyzers read of a datagram on their ports, for their role rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RoleView {
    /// Neither port is one of theirs, or the header is incomplete.
    #[default]
    None,
    /// A whole DNS header on a DNS port (53, 137, 5353, 5355): its QR bit and opcode.
    Dns {
        /// QR: a response.
        response: bool,
        /// The opcode (0 query, 4 notify, 5 update ...).
        opcode: u8,
    },
    /// A whole NTP header of versions 1 to 4 on port 123: its mode (3 client, 4 server).
    Ntp {
        /// The mode.
        mode: u8,
    },
}

/// The UDP ports Zeek's DNS analyzer reads.
pub const DNS_PORTS: [u16; 4] = [53, 137, 5353, 5355];
/// NTP's port.
pub const NTP_PORT: u16 = 123;
/// The fixed NTP header of modes 1 to 5 (RFC 5905).
const NTP_HEADER: u32 = 48;

/// The shape of a TCP payload: `head` its first bytes, `len` its length on the wire.
pub fn tcp(h: &[u8], len: u32) -> Shape {
    let Some(&first) = h.first() else { return Shape::NotCaptured };
    let found = match first {
        0x16 | 0x80..=0xff => tls(h),
        b'S' if h.starts_with(b"SSH-") => Shape::Ssh,
        b'A'..=b'Z' | b'a'..=b'z' => client_command(h),
        b'*' if is_redis_command(h) => Shape::RedisCommand,
        b'*' if h.starts_with(b"* OK") => Shape::ImapGreeting,
        b'+' if h.starts_with(b"+OK") => Shape::Pop3Ok,
        b':' if is_irc_reply(h) => Shape::IrcReply,
        3 if is_rdp_request(h) => Shape::RdpRequest,
        3 if h.get(1) == Some(&0) && h.get(5).is_some_and(|cc| cc & 0xf0 == 0xd0) => Shape::RdpConfirm,
        0 if is_smb(h) => Shape::Smb,
        // Kerberos over TCP: a 4-byte record length, then the message.
        0 if h.len() > 4 && is_kerberos(&h[4..]) => Shape::KrbTcp,
        0x14 | 0x15 | 0x17 if h.get(1) == Some(&3) => Shape::TlsRecord,
        5 if is_dce_rpc(h) => Shape::DceRpc,
        0x30 if is_ldap(h) => Shape::Ldap,
        _ => Shape::None,
    };
    match found {
        // Two whose first byte is any: a Modbus transaction id, a MySQL packet length.
        Shape::None | Shape::TlsRecord if is_modbus(h, len) => Shape::Modbus,
        Shape::None | Shape::TlsRecord if is_mysql_greeting(h) => Shape::MysqlGreeting,
        found => found,
    }
}

/// The shape of a UDP payload: `head` its first bytes, `len` its length on the wire.
pub fn udp(h: &[u8], len: u32) -> Shape {
    if h.is_empty() {
        return Shape::NotCaptured;
    }
    if let Some(quic) = quic(h, len) {
        quic
    } else if let [0x16, 0xfe, 0xff | 0xfd, ..] = h {
        match h.get(13) {
            Some(1) => Shape::DtlsClientHello,
            Some(_) => Shape::DtlsHandshake,
            None => Shape::None,
        }
    } else if is_dns(h) {
        Shape::Dns
    } else if is_dhcp(h, len) {
        Shape::Dhcp
    } else if is_ntp(h, len) {
        Shape::Ntp
    } else if h.len() >= 8 && h[..4] == [0xff; 4] && h[7] == 0x01 && (1132..=1232).contains(&len) {
        // RDP-UDP's SYN: no acknowledgement yet (all ones), the SYN flag, padded.
        Shape::RdpeudpSyn
    } else if [b"INVITE sip:" as &[u8], b"REGISTER sip:", b"OPTIONS sip:", b"SIP/2.0 "]
        .iter()
        .any(|m| h.starts_with(m))
    {
        Shape::Sip
    } else if is_snmp(h) {
        Shape::Snmp
    } else if is_ldap(h) {
        Shape::Ldap
    } else if is_kerberos(h) {
        Shape::Krb
    } else if is_syslog(h) {
        Shape::Syslog
    } else if h.len() >= 8 && h[7] & 0x05 != 0 {
        Shape::RdpeudpFlags
    } else {
        Shape::None
    }
}

/// What Zeek's DNS or NTP analyzer reads of a datagram between `src_port` and `dst_port`, when
/// either is one of theirs (which side is the responder is the table's to say).
pub fn udp_roles(src_port: u16, dst_port: u16, h: &[u8], len: u32) -> RoleView {
    let on = |ports: &[u16]| ports.contains(&src_port) || ports.contains(&dst_port);
    if on(&DNS_PORTS) && h.len() >= 12 {
        let flags = be16(h, 2..4).expect("a whole header");
        return RoleView::Dns { response: flags & 0x8000 != 0, opcode: ((flags >> 11) & 0xf) as u8 };
    }
    if on(&[NTP_PORT]) && len >= NTP_HEADER {
        let first = h.first().copied().unwrap_or_default();
        if (1..=4).contains(&((first >> 3) & 7)) {
            return RoleView::Ntp { mode: first & 7 };
        }
    }
    RoleView::None
}

/// A TLS record, and which hello it carries if any.
fn tls(h: &[u8]) -> Shape {
    match h {
        [0x16, 0x03, 0..=4, _, _, 1, ..] => Shape::TlsClientHello,
        [0x16, 0x03, 0..=4, _, _, 2, ..] => Shape::TlsServerHello,
        [0x16, 0x03, ..] => Shape::TlsRecord,
        [hi, _, 0x01, 0x03, 0..=3, ..] if hi & 0x80 != 0 => Shape::TlsClientHello,
        [hi, ..] if hi & 0x80 != 0 => Shape::TlsRecord,
        _ => Shape::None,
    }
}

/// A QUIC long-header packet of a known version: a client's Initial (in a datagram as large as
/// one must be), or another Initial or a Handshake packet.
fn quic(h: &[u8], len: u32) -> Option<Shape> {
    let version = h.get(1..5)?;
    let known = matches!(version, [0, 0, 0, 1] | [0x6b, 0x33, 0x43, 0xcf] | [0xff, 0, 0, _]);
    if h[0] & 0xc0 != 0xc0 || !known {
        return None;
    }
    // QUIC v2 numbers its long-header types one up from v1 (RFC 9369).
    let kind =
        if version == [0x6b, 0x33, 0x43, 0xcf] { (((h[0] >> 4) & 3) + 3) % 4 } else { (h[0] >> 4) & 3 };
    match kind {
        0 if len >= 1200 => Some(Shape::QuicClientInitial),
        0 | 2 => Some(Shape::QuicLongHeader),
        _ => None,
    }
}

/// A client's first word: an HTTP/1.x request method (upper case, and the space after it), or
/// an SMTP, FTP or IRC command (any case). By its first letter, so that text of no protocol
/// costs one comparison or two.
fn client_command(h: &[u8]) -> Shape {
    let method = |m: &[u8]| h.starts_with(m);
    let word = |w: &[u8]| starts_with_word(h, w);
    match h[0] | 0x20 {
        b'g' if method(b"GET ") => Shape::HttpRequest,
        b'p' if method(b"POST ") || method(b"PUT ") || method(b"PATCH ") => Shape::HttpRequest,
        b'h' if method(b"HEAD ") => Shape::HttpRequest,
        b'd' if method(b"DELETE ") => Shape::HttpRequest,
        b'o' if method(b"OPTIONS ") => Shape::HttpRequest,
        b'c' if method(b"CONNECT ") => Shape::HttpRequest,
        b't' if method(b"TRACE ") => Shape::HttpRequest,
        b'e' if word(b"ehlo ") => Shape::SmtpHello,
        b'h' if word(b"helo ") => Shape::SmtpHello,
        b'u' if word(b"user ") => Shape::FtpCommand,
        b'a' if word(b"auth ") => Shape::FtpCommand,
        b'n' if word(b"nick ") => Shape::IrcCommand,
        b'c' if word(b"cap ls") => Shape::IrcCommand,
        _ => Shape::None,
    }
}

/// A DNS header's opcode is one Zeek's analyzer reads (query, notify, update).
pub fn dns_opcode_known(opcode: u8) -> bool {
    matches!(opcode, 0 | 4 | 5)
}

/// Whether `head` starts with `word` (lower-case letters and spaces), ignoring the letters'
/// case: setting bit 0x20 lower-cases a letter and leaves a lower-case one and a space as they
/// are (it also takes a zero byte for a space, which no rule minds).
fn starts_with_word(head: &[u8], word: &[u8]) -> bool {
    head.get(..word.len()).is_some_and(|h| h.iter().zip(word).all(|(a, b)| a | 0x20 == *b))
}

/// An NTP packet of version 3 or 4 in mode 1 to 5, with a stratum and a poll interval in
/// range, as long as the fixed header.
fn is_ntp(h: &[u8], payload_len: u32) -> bool {
    let [first, stratum, poll, ..] = h else { return false };
    let (version, mode) = ((first >> 3) & 7, first & 7);
    payload_len >= NTP_HEADER
        && matches!(version, 3 | 4)
        && (1..=5).contains(&mode)
        && *stratum <= 16
        && *poll <= 17
}

/// A DNS message: a header with a known opcode, sane counts, and a question that starts with a
/// label length (or the root).
fn is_dns(h: &[u8]) -> bool {
    let Some(flags) = be16(h, 2..4).filter(|_| h.len() >= 12) else { return false };
    if !dns_opcode_known(((flags >> 11) & 0xf) as u8) {
        return false;
    }
    let qr = flags & 0x8000 != 0;
    let count = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let (questions, answers, authority, additional) = (count(4), count(6), count(8), count(10));
    let z = h[3] & 0x40 != 0;
    let label = h.get(12).copied();
    let records = [answers, authority, additional];
    if z || questions > 25 || records.iter().any(|&n| n > 1000) || questions + answers == 0 {
        return false;
    }
    match label {
        Some(l) => l <= 63 && (questions >= 1 || qr),
        None => qr && questions == 0,
    }
}

/// A BOOTP/DHCP message on Ethernet: request or reply, hardware type 1, 6-byte addresses, and
/// as long as the fixed part and the options cookie.
fn is_dhcp(h: &[u8], payload_len: u32) -> bool {
    matches!(h, [1 | 2, 1, 6, hops, ..] if *hops <= 16) && payload_len >= 240
}

/// SNMP v1, v2c or v3: a BER sequence whose first element is the version.
fn is_snmp(h: &[u8]) -> bool {
    let Some(rest) = ber_sequence(h) else { return false };
    matches!(rest, [0x02, 0x01, 0 | 1 | 3, ..])
}

/// An LDAP message: a BER sequence holding a message id, then an LDAP application tag.
fn is_ldap(h: &[u8]) -> bool {
    let Some(rest) = ber_sequence(h) else { return false };
    let [0x02, id_len @ 1..=4, ..] = rest else { return false };
    let op = rest.get(2 + usize::from(*id_len)).copied();
    op.is_some_and(|t| (0x60..=0x79).contains(&t) || t == 0x42 || t == 0x4a)
}

/// A Kerberos message: an AS or TGS request or reply, or an error ([APPLICATION n] tags),
/// then a BER length and a sequence.
fn is_kerberos(h: &[u8]) -> bool {
    let [0x6a | 0x6b | 0x6c | 0x6d | 0x7e, rest @ ..] = h else { return false };
    let skip = match rest.first() {
        Some(l) if *l < 0x80 => 1,
        Some(0x81) => 2,
        Some(0x82) => 3,
        _ => return false,
    };
    rest.get(skip) == Some(&0x30)
}

/// The bytes after a BER SEQUENCE header (tag 0x30 and a definite length).
fn ber_sequence(h: &[u8]) -> Option<&[u8]> {
    let [0x30, len, rest @ ..] = h else { return None };
    let skip = match len {
        0..=0x7f => 0,
        0x81..=0x84 => usize::from(len - 0x80),
        _ => return None,
    };
    rest.get(skip..)
}

/// Syslog: `<PRI>` with a priority of at most 191.
fn is_syslog(h: &[u8]) -> bool {
    let [b'<', rest @ ..] = h else { return false };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return false;
    }
    let pri: u32 = rest[..digits].iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    pri <= 191
}

/// SMB over TCP: a NetBIOS session message (or direct TCP's zero byte) whose body starts with
/// the SMB1, SMB2/3 or SMB3 transform signature.
fn is_smb(h: &[u8]) -> bool {
    matches!(h, [0x00, _, _, _, 0xfd..=0xff, b'S', b'M', b'B', ..])
}

/// DCE/RPC connection-oriented PDU: version 5.0, a known packet type, and the NDR data
/// representation.
fn is_dce_rpc(h: &[u8]) -> bool {
    matches!(h, [5, 0, 0 | 2 | 11 | 12 | 13 | 14 | 15, _, 0x10 | 0x00, 0, 0, 0, ..])
}

/// A MySQL server greeting: packet 0, protocol version 10, then a version string.
fn is_mysql_greeting(h: &[u8]) -> bool {
    matches!(h, [_, _, 0, 0, 0x0a, d, ..] if d.is_ascii_digit())
}

/// An IRC server's message with a numeric reply: `:server 001 ...`.
fn is_irc_reply(h: &[u8]) -> bool {
    let [b':', rest @ ..] = h else { return false };
    let Some(space) = rest.iter().position(|&b| b == b' ') else { return false };
    match rest.get(space + 1..space + 5) {
        Some([a, b, c, b' ']) => space > 0 && [a, b, c].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// A Redis command: an array of bulk strings (`*2\r\n$3\r\n...`).
fn is_redis_command(h: &[u8]) -> bool {
    let [b'*', rest @ ..] = h else { return false };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && rest[digits..].starts_with(b"\r\n$")
}

/// A Modbus/TCP request: protocol id 0, a length that matches the segment and fits a Modbus
/// PDU, a unit id and a public function code.
fn is_modbus(h: &[u8], payload_len: u32) -> bool {
    let [_, _, 0, 0, hi, lo, _unit, function, ..] = h else { return false };
    let len = u32::from(u16::from_be_bytes([*hi, *lo]));
    let public = matches!(function, 1..=8 | 11 | 12 | 15..=17 | 20..=24 | 43);
    (2..=254).contains(&len) && len + 6 == payload_len && public
}

/// An RDP connection request: TPKT, an X.224 connection request, and RDP's cookie, routing
/// token or negotiation request.
fn is_rdp_request(h: &[u8]) -> bool {
    let [3, 0, _, _, _, cr, ..] = h else { return false };
    if cr & 0xf0 != 0xe0 {
        return false;
    }
    // What of `Cookie: ` the head holds.
    let rest = h.get(11..).unwrap_or_default();
    let cookie = &b"Cookie: "[..rest.len().min(8)];
    (!cookie.is_empty() && rest.starts_with(cookie)) || rest.starts_with(&[0x01, 0x00, 0x08, 0x00])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes, any length on the wire, any ports: a shape, never a panic; nothing to say
        /// only when nothing was captured.
        #[test]
        fn any_payload_has_a_shape(
            head in proptest::collection::vec(any::<u8>(), 0..64),
            len in any::<u32>(),
            ports in (any::<u16>(), prop::sample::select(vec![53u16, 123, 137, 5353, 5355, 9999])),
        ) {
            prop_assert_eq!(tcp(&head, len) == Shape::NotCaptured, head.is_empty());
            prop_assert_eq!(udp(&head, len) == Shape::NotCaptured, head.is_empty());
            let _ = udp_roles(ports.0, ports.1, &head, len);
        }
    }

    #[test]
    fn a_payload_the_capture_cut_says_nothing() {
        assert_eq!(tcp(&[], 100), Shape::NotCaptured);
        assert_eq!(udp(&[], 100), Shape::NotCaptured);
    }

    #[test]
    fn text_of_no_protocol_is_none() {
        assert_eq!(tcp(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 500), Shape::None);
        assert_eq!(tcp(b"GETTING", 7), Shape::None);
        assert_eq!(tcp(b"get / HTTP/1.1", 14), Shape::None, "methods are upper case");
        assert_eq!(tcp(b"helo x\r\n", 8), Shape::SmtpHello, "commands are any case");
        assert_eq!(tcp(&[0; 32], 500), Shape::None);
    }

    #[test]
    fn tls_records_and_hellos() {
        assert_eq!(tcp(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], 517), Shape::TlsClientHello);
        assert_eq!(tcp(&[0x16, 0x03, 0x03, 0x00, 0x5a, 0x02], 95), Shape::TlsServerHello);
        assert_eq!(tcp(&[0x17, 0x03, 0x03, 0x00, 0x20, 0x99], 37), Shape::TlsRecord);
        assert_eq!(tcp(&[0x80, 0x2e, 0x01, 0x03, 0x01, 0x00], 48), Shape::TlsClientHello, "SSLv2 framing");
    }

    #[test]
    fn role_views_only_on_their_ports() {
        let mut dns = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        assert_eq!(udp_roles(53, 40000, &dns, 12), RoleView::Dns { response: true, opcode: 0 });
        assert_eq!(udp_roles(40000, 40001, &dns, 12), RoleView::None, "no DNS port");
        dns.truncate(11);
        assert_eq!(udp_roles(53, 53, &dns, 11), RoleView::None, "a cut header");
        let mut ntp = vec![0x24];
        ntp.resize(48, 0);
        assert_eq!(udp_roles(123, 123, &ntp, 48), RoleView::Ntp { mode: 4 });
        assert_eq!(udp_roles(123, 123, &ntp[..20], 20), RoleView::None, "shorter than the header");
        assert_eq!(udp_roles(124, 125, &ntp, 48), RoleView::None);
    }
}
