//! What a connection's first payload bytes say: which application protocol it speaks (Zeek's
//! `service`), and, for DNS and NTP, whether originator and responder are the other way round.
//!
//! Each rule reads the head of one segment or datagram (`decode::HEAD_LEN` bytes at most),
//! never the port numbers: a protocol is named because its bytes look like it. Zeek confirms a
//! service once its analyzer parses the traffic; these rules ask for the fixed parts of each
//! protocol's first message instead, so they are a little more willing (one well-formed
//! message is enough) and know no protocol that only deep parsing reveals (NTLM or Kerberos
//! inside an LDAP bind, FTP data connections). docs/how-it-decides.md lists every rule.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decode::tunnel::TunnelKind;
use crate::types::Proto;

/// The payload bytes of each direction looked at (the start of each packet among them): enough
/// to see a TLS handshake that follows a STARTTLS exchange and a server's list of features,
/// few enough that the rules cost nothing on a long transfer.
pub const LOOK_BYTES: u64 = 4096;

/// Application protocols, by Zeek's service names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Service {
    /// HTTP/1.x.
    Http,
    /// TLS (and SSL), on TCP.
    Ssl,
    /// DTLS: TLS on UDP.
    Dtls,
    /// SSH.
    Ssh,
    /// FTP's control connection.
    Ftp,
    /// SMTP.
    Smtp,
    /// IMAP.
    Imap,
    /// POP3.
    Pop3,
    /// IRC.
    Irc,
    /// DNS (also multicast DNS, LLMNR and NetBIOS name service, as Zeek).
    Dns,
    /// DHCP (BOOTP).
    Dhcp,
    /// NTP.
    Ntp,
    /// QUIC.
    Quic,
    /// RDP over TCP.
    Rdp,
    /// RDP's UDP transport.
    Rdpeudp,
    /// SMB (versions 1 to 3) over NetBIOS session service or direct TCP.
    Smb,
    /// DCE/RPC (connection-oriented).
    DceRpc,
    /// MySQL.
    Mysql,
    /// Redis (RESP).
    Redis,
    /// Modbus/TCP.
    Modbus,
    /// LDAP over TCP.
    LdapTcp,
    /// LDAP over UDP (CLDAP).
    LdapUdp,
    /// Kerberos over UDP.
    Krb,
    /// Kerberos over TCP.
    KrbTcp,
    /// SIP.
    Sip,
    /// SNMP.
    Snmp,
    /// Syslog over UDP.
    Syslog,
    /// A VXLAN tunnel's outer flow.
    Vxlan,
    /// A Geneve tunnel's outer flow.
    Geneve,
    /// A Teredo tunnel's outer flow.
    Teredo,
    /// An AYIYA tunnel's outer flow.
    Ayiya,
    /// A GTPv1-U tunnel's outer flow.
    Gtpv1,
}

impl Service {
    /// Every service, in the order they are listed.
    pub const ALL: [Service; 32] = [
        Service::Http,
        Service::Ssl,
        Service::Dtls,
        Service::Ssh,
        Service::Ftp,
        Service::Smtp,
        Service::Imap,
        Service::Pop3,
        Service::Irc,
        Service::Dns,
        Service::Dhcp,
        Service::Ntp,
        Service::Quic,
        Service::Rdp,
        Service::Rdpeudp,
        Service::Smb,
        Service::DceRpc,
        Service::Mysql,
        Service::Redis,
        Service::Modbus,
        Service::LdapTcp,
        Service::LdapUdp,
        Service::Krb,
        Service::KrbTcp,
        Service::Sip,
        Service::Snmp,
        Service::Syslog,
        Service::Vxlan,
        Service::Geneve,
        Service::Teredo,
        Service::Ayiya,
        Service::Gtpv1,
    ];

    /// Its name as Zeek logs it, e.g. `ssl`, `dce_rpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Http => "http",
            Service::Ssl => "ssl",
            Service::Dtls => "dtls",
            Service::Ssh => "ssh",
            Service::Ftp => "ftp",
            Service::Smtp => "smtp",
            Service::Imap => "imap",
            Service::Pop3 => "pop3",
            Service::Irc => "irc",
            Service::Dns => "dns",
            Service::Dhcp => "dhcp",
            Service::Ntp => "ntp",
            Service::Quic => "quic",
            Service::Rdp => "rdp",
            Service::Rdpeudp => "rdpeudp",
            Service::Smb => "smb",
            Service::DceRpc => "dce_rpc",
            Service::Mysql => "mysql",
            Service::Redis => "redis",
            Service::Modbus => "modbus",
            Service::LdapTcp => "ldap_tcp",
            Service::LdapUdp => "ldap_udp",
            Service::Krb => "krb",
            Service::KrbTcp => "krb_tcp",
            Service::Sip => "sip",
            Service::Snmp => "snmp",
            Service::Syslog => "syslog",
            Service::Vxlan => "vxlan",
            Service::Geneve => "geneve",
            Service::Teredo => "teredo",
            Service::Ayiya => "ayiya",
            Service::Gtpv1 => "gtpv1",
        }
    }

    /// The service of a tunnel's outer flow, for the kinds Zeek names one for.
    pub fn of_tunnel(kind: TunnelKind) -> Option<Service> {
        match kind {
            TunnelKind::Vxlan => Some(Service::Vxlan),
            TunnelKind::Geneve => Some(Service::Geneve),
            TunnelKind::Teredo => Some(Service::Teredo),
            TunnelKind::Ayiya => Some(Service::Ayiya),
            TunnelKind::Gtpu => Some(Service::Gtpv1),
            TunnelKind::IpInIp | TunnelKind::Gre => None,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The services a connection was seen to speak (usually none or one; `ftp,ssl` after AUTH TLS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Services(u32);

const _: () = assert!(Service::ALL.len() <= 32);

impl Services {
    /// Adds one.
    pub fn insert(&mut self, s: Service) {
        self.0 |= 1 << s as u8;
    }

    /// Whether `s` is among them.
    pub fn contains(self, s: Service) -> bool {
        self.0 & 1 << s as u8 != 0
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Each one, in the order of [`Service::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Service> {
        Service::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Display for Services {
    /// As Zeek's conn.log writes the set: names joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for Services {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Services {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut out = Services::default();
        for name in text.split(',').filter(|n| !n.is_empty()) {
            let s = Service::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown service {name:?}")))?;
            out.insert(s);
        }
        Ok(out)
    }
}

/// What one payload shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The protocol, from this side alone.
    Alone(Service),
    /// This side's half of a protocol whose other side must show its half too (a TLS
    /// ClientHello wants the ServerHello), as Zeek's signatures that need both directions and
    /// its analyzers that confirm only on the answer.
    Half(Service),
}

/// Per connection: the services found so far, each side's pending half, and what the role
/// rules have already decided. Five bytes with no alignment, so that it fits in the padding of
/// a connection's first fields. How far each side has got is the connection's own byte count.
#[derive(Clone, Copy, Debug, Default)]
pub struct AppState {
    /// Up to two services found (`Service as u8 + 1`; 0 is none): a protocol, and TLS if it
    /// upgraded to it.
    found: [u8; 2],
    /// The half each side showed last, waiting for the other side's (same encoding).
    half: [u8; 2],
    /// `DNS_DECIDED`: the DNS rule has seen its first message (Zeek's DNS analyzer flips on
    /// that one only); `NTP_FLIPPED`: the NTP rule has flipped the roles (it flips once);
    /// `TLS_ANSWER_DUE_*`: see `tls_answer`.
    flags: u8,
}

const DNS_DECIDED: u8 = 1;
const NTP_FLIPPED: u8 = 2;
/// TLS was found from one side's hello; the other side's next payload must look like TLS too.
const TLS_ANSWER_DUE_FROM_ORIG: u8 = 4;
const TLS_ANSWER_DUE_FROM_RESP: u8 = 8;

fn code(s: Service) -> u8 {
    s as u8 + 1
}

fn service(code: u8) -> Option<Service> {
    code.checked_sub(1).and_then(|i| Service::ALL.get(usize::from(i)).copied())
}

impl AppState {
    /// The services found so far.
    pub fn services(&self) -> Services {
        let mut all = Services::default();
        self.found.iter().filter_map(|&c| service(c)).for_each(|s| all.insert(s));
        all
    }

    /// Records a service. The first one found stands (a Redis server's `+OK` does not make
    /// the connection POP3 too); only TLS, which other protocols upgrade to, may join it, or
    /// anything after HTTP, whose CONNECT hands the connection to another protocol.
    fn found(&mut self, s: Service) {
        let c = code(s);
        match self.found {
            [0, _] => self.found[0] = c,
            [first, 0]
                if first != c
                    && (matches!(s, Service::Ssl | Service::Dtls) || first == code(Service::Http)) =>
            {
                self.found[1] = c
            }
            _ => {}
        }
    }

    fn evidence(&mut self, is_orig: bool, e: Evidence) {
        match e {
            Evidence::Alone(s) => self.found(s),
            Evidence::Half(s) => {
                self.half[usize::from(!is_orig)] = code(s);
                if self.half[usize::from(is_orig)] == code(s) {
                    self.found(s);
                }
            }
        }
    }

    /// Looks at a payload from the originator (`is_orig`) or the responder, while its side has
    /// sent fewer than `LOOK_BYTES`; `sent` is what the originator and the responder had sent
    /// before it (payload bytes), `payload_len` its length on the wire, `head` its first bytes.
    pub fn payload(&mut self, proto: Proto, is_orig: bool, sent: [u64; 2], head: &[u8], payload_len: u32) {
        self.look(proto, is_orig, sent, head, payload_len, false);
    }

    /// As `payload`, for a TCP connection whose start was not seen: most of Zeek's analyzers
    /// ignore such a connection (`IsPartial`); those written in Spicy (LDAP, Redis) do not.
    pub fn partial_payload(&mut self, is_orig: bool, sent: [u64; 2], head: &[u8], payload_len: u32) {
        self.look(Proto::Tcp, is_orig, sent, head, payload_len, true);
    }

    fn look(
        &mut self,
        proto: Proto,
        is_orig: bool,
        sent: [u64; 2],
        head: &[u8],
        payload_len: u32,
        partial: bool,
    ) {
        if sent[usize::from(!is_orig)] >= LOOK_BYTES || head.is_empty() {
            return;
        }
        // A server that speaks first, before its client said anything.
        let greeting = !is_orig && sent[0] == 0;
        let found = match proto {
            Proto::Tcp => tcp_service(is_orig, greeting, head, payload_len),
            Proto::Udp => udp_service(is_orig, head, payload_len),
        };
        let spicy = |e: &Evidence| matches!(e, Evidence::Alone(Service::Redis | Service::LdapTcp));
        let found = found.filter(|e| !partial || spicy(e));
        if proto == Proto::Tcp {
            self.tls_answer(is_orig, head, found);
        }
        if let Some(e) = found {
            self.evidence(is_orig, e);
        }
    }

    /// A TLS hello from one side alone names the connection TLS, as Zeek's signatures for
    /// either hello do; but when the other side answers with something that is no TLS record
    /// (an HTTP error to a ClientHello sent to a web server's plain port), Zeek's analyzer
    /// fails and the service goes again.
    fn tls_answer(&mut self, is_orig: bool, head: &[u8], found: Option<Evidence>) {
        let (due_here, due_there) = if is_orig {
            (TLS_ANSWER_DUE_FROM_ORIG, TLS_ANSWER_DUE_FROM_RESP)
        } else {
            (TLS_ANSWER_DUE_FROM_RESP, TLS_ANSWER_DUE_FROM_ORIG)
        };
        if self.flags & due_here != 0 {
            self.flags &= !due_here;
            let record =
                matches!(head, [0x14..=0x17, 0x03, ..]) || head.first().is_some_and(|b| b & 0x80 != 0);
            if !record {
                self.found.iter_mut().filter(|c| **c == code(Service::Ssl)).for_each(|c| *c = 0);
                self.found.sort_unstable_by_key(|&c| c == 0);
            }
        }
        if found == Some(Evidence::Alone(Service::Ssl)) && !self.services().contains(Service::Ssl) {
            self.flags |= due_there;
        }
    }

    /// Marks a UDP flow whose datagram from the originator (`is_orig`) or the responder
    /// carried a tunnel. Zeek names a Teredo flow only once both sides spoke Teredo.
    pub fn carried(&mut self, kind: TunnelKind, is_orig: bool) {
        match Service::of_tunnel(kind) {
            Some(Service::Teredo) => self.evidence(is_orig, Evidence::Half(Service::Teredo)),
            Some(s) => self.found(s),
            None => {}
        }
    }

    /// Zeek's role rules of its DNS and NTP analyzers, for a UDP datagram from the originator
    /// (`is_orig`) or the responder: whether the roles are to be swapped now. `resp_port` is
    /// the responder's port, which decides (as in Zeek) which analyzer reads the flow at all;
    /// `resp_multicast` whether the responder's address is a multicast group.
    pub fn udp_flip(
        &mut self,
        is_orig: bool,
        resp_port: u16,
        resp_multicast: bool,
        head: &[u8],
        payload_len: u32,
    ) -> bool {
        match resp_port {
            53 | 137 | 5353 | 5355 if self.flags & DNS_DECIDED == 0 => {
                let Some(qr) = dns_qr(head, resp_port == 137) else { return false };
                self.flags |= DNS_DECIDED;
                // A response sent by the originator, as the flow's first message.
                is_orig && qr && !resp_multicast
            }
            123 if self.flags & NTP_FLIPPED == 0 => {
                let mode = ntp_mode(head).filter(|_| payload_len >= NTP_HEADER);
                let flip = matches!((mode, is_orig), (Some(NTP_SERVER), true) | (Some(NTP_CLIENT), false));
                if flip {
                    self.flags |= NTP_FLIPPED;
                }
                flip
            }
            _ => false,
        }
    }

    /// After the roles were swapped: the pending halves go with their sides.
    pub fn flipped(&mut self) {
        self.half.swap(0, 1);
        let due = self.flags & (TLS_ANSWER_DUE_FROM_ORIG | TLS_ANSWER_DUE_FROM_RESP);
        let swapped = if due == TLS_ANSWER_DUE_FROM_ORIG || due == TLS_ANSWER_DUE_FROM_RESP {
            due ^ (TLS_ANSWER_DUE_FROM_ORIG | TLS_ANSWER_DUE_FROM_RESP)
        } else {
            due
        };
        self.flags = (self.flags & !due) | swapped;
    }
}

/// A DNS header's QR bit (true for a response), if the bytes are a DNS message Zeek's analyzer
/// reads: a whole header and an opcode it knows (query, notify, update; any under NetBIOS).
fn dns_qr(head: &[u8], netbios: bool) -> Option<bool> {
    let flags = u16::from_be_bytes(head.get(2..4)?.try_into().ok()?);
    if head.len() < 12 {
        return None;
    }
    let opcode = (flags >> 11) & 0xf;
    (netbios || matches!(opcode, 0 | 4 | 5)).then_some(flags & 0x8000 != 0)
}

const NTP_CLIENT: u8 = 3;
const NTP_SERVER: u8 = 4;
/// The fixed NTP header of modes 1 to 5 (RFC 5905).
const NTP_HEADER: u32 = 48;

/// An NTP packet's mode, if its version is one of 1 to 4.
fn ntp_mode(head: &[u8]) -> Option<u8> {
    let first = *head.first()?;
    let version = (first >> 3) & 7;
    ((1..=4).contains(&version)).then_some(first & 7)
}

/// Whether `head` starts with `word`, ignoring ASCII case.
fn starts_with_word(head: &[u8], word: &[u8]) -> bool {
    head.get(..word.len()).is_some_and(|h| h.eq_ignore_ascii_case(word))
}

/// HTTP/1.x request methods, each with the space that follows it.
const HTTP_METHODS: [&[u8]; 9] =
    [b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ", b"TRACE "];

/// What a TCP payload from the originator (`is_orig`) or the responder shows, read from its
/// first bytes. `greeting`: the responder speaks before the originator said anything. One
/// match on the first byte, so that a payload of no protocol costs a few comparisons.
fn tcp_service(is_orig: bool, greeting: bool, h: &[u8], payload_len: u32) -> Option<Evidence> {
    use Evidence::{Alone, Half};
    let &first = h.first()?;
    let found = match (is_orig, first) {
        (_, 0x16) | (true, 0x80..=0xff) if is_tls_hello(h, is_orig) => Some(Alone(Service::Ssl)),
        (_, b'S') if h.starts_with(b"SSH-") => Some(Half(Service::Ssh)),
        (true, b'A'..=b'Z' | b'a'..=b'z') => client_command(h).map(Alone),
        (true, b'*') if is_redis_command(h) => Some(Alone(Service::Redis)),
        (true, 3) if is_rdp_request(h) => Some(Half(Service::Rdp)),
        // TPKT with an X.224 connection confirm: RDP's answer.
        (false, 3) if h.get(1) == Some(&0) && h.get(5).is_some_and(|cc| cc & 0xf0 == 0xd0) => {
            Some(Half(Service::Rdp))
        }
        (false, b':') if is_irc_reply(h) => Some(Alone(Service::Irc)),
        (false, b'*') if greeting && h.starts_with(b"* OK") => Some(Alone(Service::Imap)),
        (false, b'+') if greeting && h.starts_with(b"+OK") => Some(Alone(Service::Pop3)),
        (_, 0) if is_smb(h) => Some(Alone(Service::Smb)),
        // Kerberos over TCP: a 4-byte record length, then the message.
        (_, 0) if h.len() > 4 && is_kerberos(&h[4..]) => Some(Alone(Service::KrbTcp)),
        (_, 5) if is_dce_rpc(h) => Some(Alone(Service::DceRpc)),
        (_, 0x30) if is_ldap(h) => Some(Alone(Service::LdapTcp)),
        _ => None,
    };
    // Two protocols whose first byte is any: a Modbus transaction id, a MySQL packet length.
    found.or_else(|| match is_orig {
        true => is_modbus(h, payload_len).then_some(Alone(Service::Modbus)),
        false => (greeting && is_mysql_greeting(h)).then_some(Alone(Service::Mysql)),
    })
}

/// A client's first word: an HTTP request method, or an SMTP, FTP or IRC command.
fn client_command(h: &[u8]) -> Option<Service> {
    if HTTP_METHODS.iter().any(|m| h.starts_with(m)) {
        Some(Service::Http)
    } else if starts_with_word(h, b"EHLO ") || starts_with_word(h, b"HELO ") {
        Some(Service::Smtp)
    } else if starts_with_word(h, b"USER ") || starts_with_word(h, b"AUTH ") {
        Some(Service::Ftp)
    } else if starts_with_word(h, b"NICK ") || starts_with_word(h, b"CAP LS") {
        Some(Service::Irc)
    } else {
        None
    }
}

/// What a UDP payload from the originator (`is_orig`) or the responder shows, read from its
/// first bytes.
fn udp_service(is_orig: bool, h: &[u8], payload_len: u32) -> Option<Evidence> {
    use Evidence::{Alone, Half};
    if is_quic(h, payload_len, is_orig) {
        return Some(Half(Service::Quic));
    }
    if is_dtls(h, is_orig) {
        return Some(Half(Service::Dtls));
    }
    let s = if is_dns(h) {
        Service::Dns
    } else if is_dhcp(h, payload_len) {
        Service::Dhcp
    } else if is_ntp(h, payload_len) {
        Service::Ntp
    } else if is_orig
        && h.len() >= 8
        && h[..4] == [0xff; 4]
        && h[7] == 0x01
        && (1132..=1232).contains(&payload_len)
    {
        // RDP-UDP's SYN datagram: no acknowledgement yet (all ones), the SYN flag, padded.
        return Some(Half(Service::Rdpeudp));
    } else if !is_orig && h.len() >= 8 && h[7] & 0x05 != 0 {
        // The server's answer to it, with SYN or ACK set: Zeek confirms on this one.
        return Some(Half(Service::Rdpeudp));
    } else if [b"INVITE sip:" as &[u8], b"REGISTER sip:", b"OPTIONS sip:", b"SIP/2.0 "]
        .iter()
        .any(|m| h.starts_with(m))
    {
        Service::Sip
    } else if is_snmp(h) {
        Service::Snmp
    } else if is_ldap(h) {
        Service::LdapUdp
    } else if is_kerberos(h) {
        Service::Krb
    } else if is_syslog(h) {
        Service::Syslog
    } else {
        return None;
    };
    Some(Alone(s))
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

/// A TLS record carrying a ClientHello (from the originator) or a ServerHello (from the
/// responder); or an SSLv2-framed ClientHello.
fn is_tls_hello(h: &[u8], is_orig: bool) -> bool {
    match h {
        [0x16, 0x03, 0..=4, _, _, kind, ..] => *kind == if is_orig { 1 } else { 2 },
        [hi, _, 0x01, 0x03, 0..=3, ..] if is_orig => hi & 0x80 != 0,
        _ => false,
    }
}

/// A DTLS handshake record (versions 1.0 and 1.2): a ClientHello from the originator, any
/// handshake message from the responder.
fn is_dtls(h: &[u8], is_orig: bool) -> bool {
    matches!(h, [0x16, 0xfe, 0xff | 0xfd, ..]) && h.get(13).is_some_and(|&kind| !is_orig || kind == 1)
}

/// A QUIC long-header packet of a known version: from the originator an Initial, in a datagram
/// as large as a client's Initial must be; from the responder an Initial or a Handshake packet.
fn is_quic(h: &[u8], payload_len: u32, is_orig: bool) -> bool {
    let Some(version) = h.get(1..5) else { return false };
    let known = matches!(version, [0, 0, 0, 1] | [0x6b, 0x33, 0x43, 0xcf] | [0xff, 0, 0, _]);
    // QUIC v2 numbers its long-header types one up from v1 (RFC 9369).
    let kind =
        if version == [0x6b, 0x33, 0x43, 0xcf] { (((h[0] >> 4) & 3) + 3) % 4 } else { (h[0] >> 4) & 3 };
    let fits = if is_orig { kind == 0 && payload_len >= 1200 } else { kind == 0 || kind == 2 };
    h[0] & 0xc0 == 0xc0 && known && fits
}

/// A DNS message: a header with a known opcode, sane counts, and a question that starts with a
/// label length (or the root).
fn is_dns(h: &[u8]) -> bool {
    let Some(qr) = dns_qr(h, false) else { return false };
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
    use Evidence::{Alone, Half};

    fn tcp(is_orig: bool, h: &[u8]) -> Option<Evidence> {
        tcp_service(is_orig, false, h, h.len() as u32)
    }

    fn greeting(h: &[u8]) -> Option<Evidence> {
        tcp_service(false, true, h, h.len() as u32)
    }

    fn udp(is_orig: bool, h: &[u8]) -> Option<Evidence> {
        udp_service(is_orig, h, h.len() as u32)
    }

    #[test]
    fn text_protocols_by_their_first_words() {
        assert_eq!(tcp(true, b"GET /index.html HTTP/1.1\r\n"), Some(Alone(Service::Http)));
        assert_eq!(tcp(true, b"GETTING"), None);
        assert_eq!(tcp(true, b"SSH-2.0-OpenSSH_9.6\r\n"), Some(Half(Service::Ssh)));
        assert_eq!(tcp(false, b"SSH-2.0-OpenSSH_9.6\r\n"), Some(Half(Service::Ssh)));
        assert_eq!(tcp(true, b"EHLO mail.example.org\r\n"), Some(Alone(Service::Smtp)));
        assert_eq!(tcp(true, b"user anonymous\r\n"), Some(Alone(Service::Ftp)));
        assert_eq!(tcp(true, b"AUTH TLS\r\n"), Some(Alone(Service::Ftp)));
        assert_eq!(greeting(b"* OK IMAP4rev1 ready\r\n"), Some(Alone(Service::Imap)));
        assert_eq!(greeting(b"+OK POP3 ready\r\n"), Some(Alone(Service::Pop3)));
        assert_eq!(tcp(false, b"+OK\r\n"), None, "an answer, not a greeting: Redis's");
        assert_eq!(tcp(true, b"NICK alice\r\n"), Some(Alone(Service::Irc)));
        assert_eq!(tcp(false, b":irc.example.org 670 a :go ahead"), Some(Alone(Service::Irc)));
        assert_eq!(tcp(false, b":irc.example.org NOTICE"), None);
        assert_eq!(tcp(true, b"*1\r\n$4\r\nPING\r\n"), Some(Alone(Service::Redis)));
        // A server banner alone does not tell FTP from SMTP.
        assert_eq!(greeting(b"220 ready\r\n"), None);
    }

    #[test]
    fn tls_hellos_by_direction() {
        let client_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
        let server_hello = [0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03];
        assert_eq!(tcp(true, &client_hello), Some(Alone(Service::Ssl)));
        assert_eq!(tcp(false, &server_hello), Some(Alone(Service::Ssl)));
        assert_eq!(tcp(false, &client_hello), None, "a ClientHello comes from the client");
        assert_eq!(tcp(true, &[0x17, 0x03, 0x03, 0x00, 0x20, 0x01]), None, "application data is no hello");
        assert_eq!(
            tcp(true, &[0x80, 0x2e, 0x01, 0x03, 0x01, 0x00]),
            Some(Alone(Service::Ssl)),
            "SSLv2 framing"
        );
    }

    #[test]
    fn binary_protocols_by_their_headers() {
        let smb2 = [0, 0, 0, 0x40, 0xfe, b'S', b'M', b'B', 0x40, 0];
        assert_eq!(tcp(true, &smb2), Some(Alone(Service::Smb)));
        let bind = [5, 0, 11, 3, 0x10, 0, 0, 0, 0x48, 0];
        assert_eq!(tcp(true, &bind), Some(Alone(Service::DceRpc)));
        let mysql = [0x4a, 0, 0, 0, 0x0a, b'8', b'.', b'0'];
        assert_eq!(greeting(&mysql), Some(Alone(Service::Mysql)));
        let modbus = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10];
        assert_eq!(tcp(true, &modbus), Some(Alone(Service::Modbus)));
        assert_eq!(tcp_service(true, false, &modbus, 40), None, "the length must match the segment");
        let mut rdp = vec![3, 0, 0, 0x2b, 0x26, 0xe0, 0, 0, 0, 0, 0];
        rdp.extend_from_slice(b"Cookie: mstshash=alice\r\n");
        assert_eq!(tcp(true, &rdp), Some(Half(Service::Rdp)));
        assert_eq!(tcp(false, &[3, 0, 0, 0x13, 0x0e, 0xd0, 0, 0]), Some(Half(Service::Rdp)));
        let ldap_bind = [0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03];
        assert_eq!(tcp(true, &ldap_bind), Some(Alone(Service::LdapTcp)));
        let krb_tcp = [0, 0, 0, 0x90, 0x6a, 0x81, 0x8d, 0x30, 0x81];
        assert_eq!(tcp(true, &krb_tcp), Some(Alone(Service::KrbTcp)));
    }

    /// A DNS query for `a.` with the given flags.
    fn dns(flags: u16, questions: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&questions.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1]);
        m
    }

    #[test]
    fn udp_protocols_by_their_headers() {
        assert_eq!(udp(true, &dns(0x0100, 1)), Some(Alone(Service::Dns)));
        assert_eq!(udp(false, &dns(0x8180, 1)), Some(Alone(Service::Dns)));
        assert_eq!(udp(true, &dns(0x0100, 300)), None, "more questions than Zeek reads");
        assert_eq!(udp(true, &dns(0x3100, 1)), None, "opcode 6 is not DNS's");
        let mut ntp = vec![0x23, 0, 6, 0xec];
        ntp.resize(48, 0);
        assert_eq!(udp(true, &ntp), Some(Alone(Service::Ntp)));
        let mut netbios_datagram = vec![0x11, 0x02, 0x80, 0x0c];
        netbios_datagram.resize(200, 0);
        assert_eq!(udp(true, &netbios_datagram), None, "NTP version 2 is not taken");
        let mut bootp = vec![1, 1, 6, 0];
        bootp.resize(300, 0);
        assert_eq!(udp_service(true, &bootp[..32], 300), Some(Alone(Service::Dhcp)));
        assert_eq!(udp_service(true, &bootp[..32], 100), None, "too short for BOOTP");
        assert_eq!(udp_service(true, &[0xc3, 0, 0, 0, 1, 8], 1252), Some(Half(Service::Quic)));
        assert_eq!(udp_service(true, &[0xc3, 0, 0, 0, 1, 8], 200), None, "a client Initial is padded");
        assert_eq!(udp_service(false, &[0xe0, 0, 0, 0, 1, 8], 200), Some(Half(Service::Quic)), "a Handshake");
        assert_eq!(udp_service(false, &[0xf0, 0, 0, 0, 1, 8], 200), None, "a Retry");
        assert_eq!(udp(true, b"<34>Oct 11 22:14:15 host su: failed"), Some(Alone(Service::Syslog)));
        assert_eq!(udp(true, b"<999>x"), None);
        assert_eq!(udp(true, b"INVITE sip:bob@example.org SIP/2.0\r\n"), Some(Alone(Service::Sip)));
        let snmp = [0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b'];
        assert_eq!(udp(true, &snmp), Some(Alone(Service::Snmp)));
        let mut rdpeudp = vec![0xff, 0xff, 0xff, 0xff, 0x00, 0x40, 0x00, 0x01];
        rdpeudp.resize(1232, 0);
        assert_eq!(udp(true, &rdpeudp[..32]), None, "the SYN datagram is padded");
        assert_eq!(udp_service(true, &rdpeudp[..32], 1232), Some(Half(Service::Rdpeudp)));
        assert_eq!(udp(true, b"hello world, nothing here"), None);
    }

    #[test]
    fn halves_need_both_sides() {
        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], b"SSH-2.0-x\r\n", 11);
        assert!(app.services().is_empty(), "no answer yet");
        app.payload(Proto::Tcp, false, [11, 0], b"SSH-2.0-y\r\n", 11);
        assert_eq!(app.services().to_string(), "ssh");
    }

    #[test]
    fn a_tls_hello_stands_unless_answered_with_something_else() {
        let client_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
        let server_hello = [0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03];
        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], &client_hello, 512);
        assert_eq!(app.services().to_string(), "ssl", "a one-sided capture");
        app.payload(Proto::Tcp, false, [512, 0], &server_hello, 90);
        assert_eq!(app.services().to_string(), "ssl");

        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], &client_hello, 512);
        app.payload(Proto::Tcp, false, [512, 0], b"HTTP/1.1 400 Bad Request\r\n", 300);
        assert!(app.services().is_empty(), "a web server's plain port");
    }

    #[test]
    fn the_first_service_stands_and_tls_may_join_it() {
        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], b"*1\r\n$4\r\nPING\r\n", 14);
        app.payload(Proto::Tcp, false, [14, 0], b"+PONG\r\n", 7);
        app.payload(Proto::Tcp, true, [14, 7], b"USER x\r\n", 8);
        assert_eq!(app.services().to_string(), "redis");

        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 20], b"AUTH TLS\r\n", 10);
        app.payload(Proto::Tcp, false, [10, 20], b"234 go ahead\r\n", 14);
        app.payload(Proto::Tcp, true, [10, 34], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], 512);
        app.payload(Proto::Tcp, false, [522, 34], &[0x16, 0x03, 0x03, 0x00, 0x5a, 0x02], 90);
        assert_eq!(app.services().to_string(), "ssl,ftp");

        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], b"CONNECT mail:25 HTTP/1.0\r\n", 27);
        app.payload(Proto::Tcp, true, [27, 40], b"EHLO x\r\n", 8);
        assert_eq!(app.services().to_string(), "http,smtp", "what a CONNECT carries");
    }

    #[test]
    fn a_partial_connection_gets_only_what_zeek_spicy_analyzers_find() {
        let mut app = AppState::default();
        app.partial_payload(true, [0, 0], b"GET / HTTP/1.1\r\n", 16);
        assert!(app.services().is_empty());
        app.partial_payload(true, [16, 0], b"*2\r\n$3\r\nGET\r\n", 40);
        assert_eq!(app.services().to_string(), "redis");
    }

    #[test]
    fn only_the_first_bytes_are_looked_at() {
        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [LOOK_BYTES, 0], b"NICK x\r\n", 8);
        assert!(app.services().is_empty());
        app.payload(Proto::Tcp, false, [LOOK_BYTES, LOOK_BYTES - 1], b"\0\0\0\x40\xfeSMB", 68);
        assert_eq!(app.services().to_string(), "smb");
    }

    #[test]
    fn tunnels_name_their_outer_flows() {
        let mut app = AppState::default();
        app.carried(TunnelKind::Vxlan, true);
        assert_eq!(app.services().to_string(), "vxlan");
        let mut app = AppState::default();
        app.carried(TunnelKind::Teredo, true);
        app.carried(TunnelKind::Teredo, true);
        assert!(app.services().is_empty(), "Teredo from one side only");
        app.carried(TunnelKind::Teredo, false);
        assert_eq!(app.services().to_string(), "teredo");
        let mut app = AppState::default();
        app.carried(TunnelKind::Gre, true);
        assert!(app.services().is_empty(), "GRE in UDP has no service in Zeek");
    }

    #[test]
    fn services_print_and_read_as_zeek_writes_them() {
        let mut s = Services::default();
        s.insert(Service::Ssl);
        s.insert(Service::Ftp);
        assert_eq!(s.to_string(), "ssl,ftp");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"ssl,ftp\"");
        assert_eq!(serde_json::from_str::<Services>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Services>("\"gopher\"").is_err());
        for s in Service::ALL {
            assert_eq!(service(code(s)), Some(s));
        }
    }

    mod roles {
        use super::*;

        #[test]
        fn dns_response_from_the_originator_first_flips_once() {
            let mut app = AppState::default();
            assert!(app.udp_flip(true, 53, false, &dns(0x8180, 1), 40));
            assert!(!app.udp_flip(true, 53, false, &dns(0x8180, 1), 40), "only the first message decides");
        }

        #[test]
        fn dns_query_first_or_multicast_or_other_port_keeps_roles() {
            let mut app = AppState::default();
            assert!(!app.udp_flip(true, 53, false, &dns(0x0100, 1), 40));
            assert!(!app.udp_flip(true, 53, false, &dns(0x8180, 1), 40), "decided by the query");
            assert!(
                !AppState::default().udp_flip(false, 53, false, &dns(0x8180, 1), 40),
                "sent by the responder"
            );
            assert!(
                !AppState::default().udp_flip(true, 5353, true, &dns(0x8400, 0), 40),
                "to a multicast group"
            );
            assert!(!AppState::default().udp_flip(true, 40000, false, &dns(0x8180, 1), 40), "no DNS port");
            assert!(
                AppState::default().udp_flip(true, 137, false, &dns(0xa800, 1), 40),
                "NetBIOS: any opcode"
            );
        }

        #[test]
        fn ntp_server_mode_from_the_originator_flips() {
            let mut server = vec![0x24];
            server.resize(48, 0);
            let mut client = vec![0x23];
            client.resize(48, 0);
            let mut app = AppState::default();
            assert!(!app.udp_flip(true, 123, false, &client, 48));
            assert!(app.udp_flip(true, 123, false, &server, 48));
            assert!(!app.udp_flip(true, 123, false, &server, 48), "once");
            assert!(
                AppState::default().udp_flip(false, 123, false, &client, 48),
                "client mode from the responder"
            );
            assert!(!AppState::default().udp_flip(true, 123, false, &server[..20], 20), "a cut header");
        }

        #[test]
        fn a_flip_moves_the_halves() {
            let mut app = AppState::default();
            app.payload(Proto::Tcp, true, [0, 0], b"SSH-2.0-x", 9);
            app.flipped();
            app.payload(Proto::Tcp, false, [0, 9], b"SSH-2.0-x", 9);
            assert!(app.services().is_empty(), "the same host again");
            app.payload(Proto::Tcp, true, [0, 18], b"SSH-2.0-y", 9);
            assert_eq!(app.services().to_string(), "ssh");
        }
    }
}
