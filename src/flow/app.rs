//! What a connection's first payload bytes say: which application protocol it speaks (Zeek's
//! `service`), and, for DNS and NTP, whether originator and responder are the other way round.
//!
//! Each rule reads what the decoder saw of a segment's or datagram's first bytes
//! (`decode::payload::Shape`), never the port numbers: a protocol is named because its bytes look like it. Zeek confirms a
//! service once its analyzer parses the traffic; these rules ask for the fixed parts of each
//! protocol's first message instead, so they are a little more willing (one well-formed
//! message is enough) and know no protocol that only deep parsing reveals (NTLM or Kerberos
//! inside an LDAP bind, FTP data connections). docs/how-it-decides.md lists every rule.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decode::payload::{dns_opcode_known, RoleView, Shape, DNS_PORTS, NTP_PORT};
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

const NTP_CLIENT: u8 = 3;
const NTP_SERVER: u8 = 4;

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
    /// before it (payload bytes), `shape` what its first bytes look like.
    pub fn payload(&mut self, proto: Proto, is_orig: bool, sent: [u64; 2], shape: Shape) {
        self.look(proto, is_orig, sent, shape, false);
    }

    /// As `payload`, for a TCP connection whose start was not seen: most of Zeek's analyzers
    /// ignore such a connection (`IsPartial`); those written in Spicy (LDAP, Redis) do not.
    pub fn partial_payload(&mut self, is_orig: bool, sent: [u64; 2], shape: Shape) {
        self.look(Proto::Tcp, is_orig, sent, shape, true);
    }

    fn look(&mut self, proto: Proto, is_orig: bool, sent: [u64; 2], shape: Shape, partial: bool) {
        let tls_answer_due = self.flags & (TLS_ANSWER_DUE_FROM_ORIG | TLS_ANSWER_DUE_FROM_RESP) != 0;
        let nothing = shape == Shape::None && !tls_answer_due;
        if nothing || shape == Shape::NotCaptured || sent[usize::from(!is_orig)] >= LOOK_BYTES {
            return;
        }
        // A server that speaks first, before its client said anything.
        let greeting = !is_orig && sent[0] == 0;
        let found = evidence(shape, is_orig, greeting).map(|e| match (e, proto) {
            (Evidence::Alone(Service::LdapTcp), Proto::Udp) => Evidence::Alone(Service::LdapUdp),
            (e, _) => e,
        });
        let spicy = |e: &Evidence| matches!(e, Evidence::Alone(Service::Redis | Service::LdapTcp));
        let found = found.filter(|e| !partial || spicy(e));
        if proto == Proto::Tcp {
            self.tls_answer(is_orig, shape, found);
        }
        if let Some(e) = found {
            self.evidence(is_orig, e);
        }
    }

    /// A TLS hello from one side alone names the connection TLS, as Zeek's signatures for
    /// either hello do; but when the other side answers with something that is no TLS record
    /// (an HTTP error to a ClientHello sent to a web server's plain port), Zeek's analyzer
    /// fails and the service goes again.
    fn tls_answer(&mut self, is_orig: bool, shape: Shape, found: Option<Evidence>) {
        let (due_here, due_there) = if is_orig {
            (TLS_ANSWER_DUE_FROM_ORIG, TLS_ANSWER_DUE_FROM_RESP)
        } else {
            (TLS_ANSWER_DUE_FROM_RESP, TLS_ANSWER_DUE_FROM_ORIG)
        };
        if self.flags & due_here != 0 {
            self.flags &= !due_here;
            if !matches!(shape, Shape::TlsClientHello | Shape::TlsServerHello | Shape::TlsRecord) {
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
    /// `resp_multicast` whether the responder's address is a multicast group; `view` what the
    /// decoder read of the datagram for these rules.
    pub fn udp_flip(&mut self, is_orig: bool, resp_port: u16, resp_multicast: bool, view: RoleView) -> bool {
        match view {
            RoleView::Dns { response, opcode }
                if DNS_PORTS.contains(&resp_port) && self.flags & DNS_DECIDED == 0 =>
            {
                // Zeek's analyzer reads any opcode under NetBIOS, only the ones it knows elsewhere.
                if resp_port != 137 && !dns_opcode_known(opcode) {
                    return false;
                }
                self.flags |= DNS_DECIDED;
                // A response sent by the originator, as the flow's first message.
                is_orig && response && !resp_multicast
            }
            RoleView::Ntp { mode } if resp_port == NTP_PORT && self.flags & NTP_FLIPPED == 0 => {
                let flip = matches!((mode, is_orig), (NTP_SERVER, true) | (NTP_CLIENT, false));
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

/// What a payload's shape shows, from the originator (`is_orig`) or the responder.
/// `greeting`: the responder speaks before the originator said anything.
fn evidence(shape: Shape, is_orig: bool, greeting: bool) -> Option<Evidence> {
    use Evidence::{Alone, Half};
    let s = match (shape, is_orig) {
        (Shape::TlsClientHello, true) | (Shape::TlsServerHello, false) => Alone(Service::Ssl),
        (Shape::Ssh, _) => Half(Service::Ssh),
        (Shape::HttpRequest, true) => Alone(Service::Http),
        (Shape::SmtpHello, true) => Alone(Service::Smtp),
        (Shape::FtpCommand, true) => Alone(Service::Ftp),
        (Shape::IrcCommand, true) | (Shape::IrcReply, false) => Alone(Service::Irc),
        (Shape::RedisCommand, true) => Alone(Service::Redis),
        (Shape::RdpRequest, true) | (Shape::RdpConfirm, false) => Half(Service::Rdp),
        (Shape::ImapGreeting, false) if greeting => Alone(Service::Imap),
        (Shape::Pop3Ok, false) if greeting => Alone(Service::Pop3),
        (Shape::MysqlGreeting, false) if greeting => Alone(Service::Mysql),
        (Shape::Modbus, true) => Alone(Service::Modbus),
        (Shape::Smb, _) => Alone(Service::Smb),
        (Shape::KrbTcp, _) => Alone(Service::KrbTcp),
        (Shape::DceRpc, _) => Alone(Service::DceRpc),
        (Shape::Ldap, _) => Alone(Service::LdapTcp),
        (Shape::Dns, _) => Alone(Service::Dns),
        (Shape::Dhcp, _) => Alone(Service::Dhcp),
        (Shape::Ntp, _) => Alone(Service::Ntp),
        (Shape::QuicClientInitial, true) | (Shape::QuicClientInitial | Shape::QuicLongHeader, false) => {
            Half(Service::Quic)
        }
        (Shape::DtlsClientHello, true) | (Shape::DtlsClientHello | Shape::DtlsHandshake, false) => {
            Half(Service::Dtls)
        }
        (Shape::RdpeudpSyn, true) | (Shape::RdpeudpFlags, false) => Half(Service::Rdpeudp),
        (Shape::Sip, _) => Alone(Service::Sip),
        (Shape::Snmp, _) => Alone(Service::Snmp),
        (Shape::Krb, _) => Alone(Service::Krb),
        (Shape::Syslog, _) => Alone(Service::Syslog),
        _ => return None,
    };
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::payload;
    use Evidence::{Alone, Half};

    fn tcp_service(is_orig: bool, greeting: bool, h: &[u8], len: u32) -> Option<Evidence> {
        evidence(payload::tcp(h, len), is_orig, greeting)
    }

    fn udp_service(is_orig: bool, h: &[u8], len: u32) -> Option<Evidence> {
        evidence(payload::udp(h, len), is_orig, false)
    }

    fn tcp(is_orig: bool, h: &[u8]) -> Option<Evidence> {
        tcp_service(is_orig, false, h, h.len() as u32)
    }

    fn greeting(h: &[u8]) -> Option<Evidence> {
        tcp_service(false, true, h, h.len() as u32)
    }

    fn udp(is_orig: bool, h: &[u8]) -> Option<Evidence> {
        udp_service(is_orig, h, h.len() as u32)
    }

    /// The shape of a TCP payload of `len` bytes starting with `h`.
    fn seg(h: &[u8], len: u32) -> Shape {
        payload::tcp(h, len)
    }

    /// What the DNS and NTP rules read of a datagram between two `port`s.
    fn view(port: u16, h: &[u8], len: u32) -> RoleView {
        payload::udp_roles(port, port, h, len)
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
        app.payload(Proto::Tcp, true, [0, 0], seg(b"SSH-2.0-x\r\n", 11));
        assert!(app.services().is_empty(), "no answer yet");
        app.payload(Proto::Tcp, false, [11, 0], seg(b"SSH-2.0-y\r\n", 11));
        assert_eq!(app.services().to_string(), "ssh");
    }

    #[test]
    fn a_tls_hello_stands_unless_answered_with_something_else() {
        let client_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
        let server_hello = [0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03];
        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], seg(&client_hello, 512));
        assert_eq!(app.services().to_string(), "ssl", "a one-sided capture");
        app.payload(Proto::Tcp, false, [512, 0], seg(&server_hello, 90));
        assert_eq!(app.services().to_string(), "ssl");

        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], seg(&client_hello, 512));
        app.payload(Proto::Tcp, false, [512, 0], seg(b"HTTP/1.1 400 Bad Request\r\n", 300));
        assert!(app.services().is_empty(), "a web server's plain port");
    }

    #[test]
    fn the_first_service_stands_and_tls_may_join_it() {
        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], seg(b"*1\r\n$4\r\nPING\r\n", 14));
        app.payload(Proto::Tcp, false, [14, 0], seg(b"+PONG\r\n", 7));
        app.payload(Proto::Tcp, true, [14, 7], seg(b"USER x\r\n", 8));
        assert_eq!(app.services().to_string(), "redis");

        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 20], seg(b"AUTH TLS\r\n", 10));
        app.payload(Proto::Tcp, false, [10, 20], seg(b"234 go ahead\r\n", 14));
        app.payload(Proto::Tcp, true, [10, 34], seg(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], 512));
        app.payload(Proto::Tcp, false, [522, 34], seg(&[0x16, 0x03, 0x03, 0x00, 0x5a, 0x02], 90));
        assert_eq!(app.services().to_string(), "ssl,ftp");

        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [0, 0], seg(b"CONNECT mail:25 HTTP/1.0\r\n", 27));
        app.payload(Proto::Tcp, true, [27, 40], seg(b"EHLO x\r\n", 8));
        assert_eq!(app.services().to_string(), "http,smtp", "what a CONNECT carries");
    }

    #[test]
    fn a_partial_connection_gets_only_what_zeek_spicy_analyzers_find() {
        let mut app = AppState::default();
        app.partial_payload(true, [0, 0], seg(b"GET / HTTP/1.1\r\n", 16));
        assert!(app.services().is_empty());
        app.partial_payload(true, [16, 0], seg(b"*2\r\n$3\r\nGET\r\n", 40));
        assert_eq!(app.services().to_string(), "redis");
    }

    #[test]
    fn only_the_first_bytes_are_looked_at() {
        let mut app = AppState::default();
        app.payload(Proto::Tcp, true, [LOOK_BYTES, 0], seg(b"NICK x\r\n", 8));
        assert!(app.services().is_empty());
        app.payload(Proto::Tcp, false, [LOOK_BYTES, LOOK_BYTES - 1], seg(b"\0\0\0\x40\xfeSMB", 68));
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
            assert!(app.udp_flip(true, 53, false, view(53, &dns(0x8180, 1), 40)));
            assert!(
                !app.udp_flip(true, 53, false, view(53, &dns(0x8180, 1), 40)),
                "only the first message decides"
            );
        }

        #[test]
        fn dns_query_first_or_multicast_or_other_port_keeps_roles() {
            let mut app = AppState::default();
            assert!(!app.udp_flip(true, 53, false, view(53, &dns(0x0100, 1), 40)));
            assert!(!app.udp_flip(true, 53, false, view(53, &dns(0x8180, 1), 40)), "decided by the query");
            assert!(
                !AppState::default().udp_flip(false, 53, false, view(53, &dns(0x8180, 1), 40)),
                "sent by the responder"
            );
            assert!(
                !AppState::default().udp_flip(true, 5353, true, view(5353, &dns(0x8400, 0), 40)),
                "to a multicast group"
            );
            assert!(
                !AppState::default().udp_flip(true, 40000, false, view(40000, &dns(0x8180, 1), 40)),
                "no DNS port"
            );
            assert!(
                AppState::default().udp_flip(true, 137, false, view(137, &dns(0xa800, 1), 40)),
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
            assert!(!app.udp_flip(true, 123, false, view(123, &client, 48)));
            assert!(app.udp_flip(true, 123, false, view(123, &server, 48)));
            assert!(!app.udp_flip(true, 123, false, view(123, &server, 48)), "once");
            assert!(
                AppState::default().udp_flip(false, 123, false, view(123, &client, 48)),
                "client mode from the responder"
            );
            assert!(
                !AppState::default().udp_flip(true, 123, false, view(123, &server[..20], 20)),
                "a cut header"
            );
        }

        #[test]
        fn a_flip_moves_the_halves() {
            let mut app = AppState::default();
            app.payload(Proto::Tcp, true, [0, 0], seg(b"SSH-2.0-x", 9));
            app.flipped();
            app.payload(Proto::Tcp, false, [0, 9], seg(b"SSH-2.0-x", 9));
            assert!(app.services().is_empty(), "the same host again");
            app.payload(Proto::Tcp, true, [0, 18], seg(b"SSH-2.0-y", 9));
            assert_eq!(app.services().to_string(), "ssh");
        }
    }
}
