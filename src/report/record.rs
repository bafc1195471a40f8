//! The connection record every format prints: one flat, stable schema (see the README).

use std::net::IpAddr;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::decode::tunnel::TunnelKind;
use crate::flow::app::Services;
use crate::flow::{Conn, EndReason};
use crate::tcp::phases::{Handshake, Teardown};
use crate::tcp::verdict::ConnState;
use crate::types::{Addr, CommunityId, Proto};

/// A connection as every format prints it (`conns --format jsonl` has its fields and names).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnRecord {
    /// 1, 2, 3 ... in order of first packet over the whole run (what `show --conn` takes); in
    /// that order but with gaps when `Options::numbered` is off.
    pub id: u64,
    /// TCP or UDP.
    pub proto: Proto,
    /// The originator's (client's) socket address.
    pub orig: Addr,
    /// The responder's (server's) socket address.
    pub resp: Addr,
    /// Zeek's conn_state.
    pub conn_state: ConnState,
    /// Zeek's history letters (upper case originator, lower case responder; `^` when flipped).
    /// Inline up to 24 letters, so that a record allocates nothing for it.
    pub history: CompactString,
    /// The application protocols its payload showed, Zeek's `service` (`null` when none).
    pub service: Option<Services>,
    /// Time of the first packet, in seconds since the Unix epoch.
    pub ts: f64,
    /// From the first packet to the last, in seconds (as Zeek: packets after both sides closed
    /// do not extend it).
    pub duration: f64,
    /// Packets the originator sent.
    pub orig_pkts: u64,
    /// Packets the responder sent.
    pub resp_pkts: u64,
    /// Payload bytes the originator sent. TCP: from sequence numbers, as Zeek; UDP: from the UDP
    /// length fields.
    pub orig_bytes: u64,
    /// Payload bytes the responder sent, counted as `orig_bytes`.
    pub resp_bytes: u64,
    /// IP-level bytes the originator sent (from the IP length fields).
    pub orig_ip_bytes: u64,
    /// IP-level bytes the responder sent (from the IP length fields).
    pub resp_ip_bytes: u64,
    /// The three-way handshake (TCP only).
    pub handshake: Option<Handshake>,
    /// The teardown (TCP only).
    pub teardown: Option<Teardown>,
    /// Data-phase counters (TCP only).
    pub data: Option<DataPhase>,
    /// Set for connections inside a tunnel: the layers around it and the outer connections.
    pub tunnel: Option<TunnelRecord>,
    /// Why the record ended.
    pub end: EndReason,
    /// The Community ID of the connection's 5-tuple (of the inner connection in a tunnel, as
    /// Zeek's); empty when read back from JSON lines written without it.
    #[serde(default)]
    pub community_id: CommunityId,
    /// The capture the connection came from, when several are read each on its own
    /// (`--per-file`). JSON lines leave it out when there is none.
    #[serde(default)]
    pub file: Option<String>,
}

/// The tunnel a connection was seen in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TunnelRecord {
    /// Layers outside the connection on its first packet, outermost first.
    pub path: Vec<TunnelHop>,
    /// Ids of the outer UDP connections that carried it (Zeek's tunnel_parents).
    pub parents: Vec<u64>,
}

/// One tunnel layer around a connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TunnelHop {
    /// Which encapsulation.
    pub kind: TunnelKind,
    /// Source address of the outer IP header.
    pub src: IpAddr,
    /// Destination address of the outer IP header.
    pub dst: IpAddr,
}

/// Per-direction data-phase counters (TCP).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataPhase {
    /// Payload bytes as carried by the packets, retransmissions included.
    pub orig_payload_bytes: u64,
    /// The responder's, as `orig_payload_bytes`.
    pub resp_payload_bytes: u64,
    /// Segments in which the originator resent payload.
    pub orig_rexmit_pkts: u64,
    /// Segments in which the responder resent payload.
    pub resp_rexmit_pkts: u64,
    /// Payload bytes of the originator's retransmitted segments.
    pub orig_rexmit_bytes: u64,
    /// Payload bytes of the responder's retransmitted segments.
    pub resp_rexmit_bytes: u64,
    /// Segments in which the originator advertised a zero window.
    pub orig_zero_windows: u64,
    /// Segments in which the responder advertised a zero window.
    pub resp_zero_windows: u64,
    /// Duplicate ACKs (pure ACKs repeating the previous acknowledgement and window).
    pub orig_dup_acks: u64,
    /// The responder's duplicate ACKs.
    pub resp_dup_acks: u64,
    /// Payload segments that arrived ahead of a hole.
    pub orig_out_of_order: u64,
    /// The responder's, as `orig_out_of_order`.
    pub resp_out_of_order: u64,
    /// Bytes acknowledged but never seen in the capture (content gaps).
    pub orig_missed_bytes: u64,
    /// The responder's bytes acknowledged but never seen.
    pub resp_missed_bytes: u64,
}

impl ConnRecord {
    /// The record of an ended connection; its Community ID hashed with `community_id_seed`,
    /// or left empty without one.
    pub fn new(c: &Conn, community_id_seed: Option<u16>) -> Self {
        let (orig_bytes, resp_bytes) = match c.tcp() {
            Some(t) => t.seq_bytes(),
            None => (c.orig_stats.payload_bytes, c.resp_stats.payload_bytes),
        };
        let conn_state = c.conn_state();
        let (handshake, teardown, data) = match c.tcp() {
            Some(t) => {
                let p = &t.phases;
                let (o, r) = (p.orig.trouble(), p.resp.trouble());
                let data = DataPhase {
                    orig_payload_bytes: c.orig_stats.payload_bytes,
                    resp_payload_bytes: c.resp_stats.payload_bytes,
                    orig_rexmit_pkts: o.rexmit_pkts as u64,
                    resp_rexmit_pkts: r.rexmit_pkts as u64,
                    orig_rexmit_bytes: o.rexmit_bytes,
                    resp_rexmit_bytes: r.rexmit_bytes,
                    orig_zero_windows: o.zero_windows as u64,
                    resp_zero_windows: r.zero_windows as u64,
                    orig_dup_acks: o.dup_acks as u64,
                    resp_dup_acks: r.dup_acks as u64,
                    orig_out_of_order: o.out_of_order as u64,
                    resp_out_of_order: r.out_of_order as u64,
                    orig_missed_bytes: o.missed_bytes,
                    resp_missed_bytes: r.missed_bytes,
                };
                (Some(p.handshake(conn_state == ConnState::REJ)), Some(p.teardown()), Some(data))
            }
            None => (None, None, None),
        };
        let (orig, resp) = (c.orig(), c.resp());
        ConnRecord {
            id: c.id,
            proto: c.proto,
            orig,
            resp,
            conn_state,
            history: c.history.as_str().into(),
            service: Some(c.app.services()).filter(|s| !s.is_empty()),
            ts: c.first.as_secs_f64(),
            duration: c.duration().as_secs_f64(),
            orig_pkts: c.orig_stats.pkts,
            resp_pkts: c.resp_stats.pkts,
            orig_bytes,
            resp_bytes,
            orig_ip_bytes: c.orig_stats.ip_bytes,
            resp_ip_bytes: c.resp_stats.ip_bytes,
            handshake,
            teardown,
            data,
            tunnel: c.tunnel.as_ref().map(|t| TunnelRecord {
                path: t.path.iter().map(|&(kind, src, dst)| TunnelHop { kind, src, dst }).collect(),
                parents: t.parents.clone(),
            }),
            end: c.end,
            community_id: community_id_seed
                .map_or_else(CommunityId::default, |seed| CommunityId::new(seed, c.proto, orig, resp)),
            file: None,
        }
    }
}

/// The records of one capture in `samples/`, in the order their connections ended (for tests).
#[cfg(test)]
pub fn of_sample(name: &str) -> Vec<ConnRecord> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name);
    let mut records = Vec::new();
    crate::pipeline::analyze(&[path], &Default::default(), None, &mut |c| {
        records.push(ConnRecord::new(&c, Some(0)));
        Ok(())
    })
    .expect("the samples analyze");
    records
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use crate::decode::tunnel::TunnelKind;
    use crate::flow::EndReason;
    use crate::tcp::phases::{HandshakeState, Initiator, TeardownKind, TeardownState};
    use crate::tcp::verdict::ConnState;
    use crate::types::Proto;

    #[test]
    fn lines_written_without_a_community_id_read_back() {
        let record = &super::of_sample("teardowns.pcap")[0];
        assert!(record.community_id.to_string().starts_with("1:"));
        let mut line = serde_json::to_value(record).unwrap();
        line.as_object_mut().unwrap().remove("community_id");
        let old: super::ConnRecord = serde_json::from_value(line).unwrap();
        assert_eq!(old.community_id.to_string(), "", "the spec's ID of a flow it cannot name");
    }

    fn serde_name(v: impl Serialize) -> String {
        serde_json::to_value(v).unwrap().as_str().expect("a word").to_string()
    }

    #[test]
    fn words_serialize_as_printed() {
        for v in [Proto::Tcp, Proto::Udp] {
            assert_eq!(serde_name(v), v.as_str());
        }
        for v in ConnState::ALL {
            assert_eq!(serde_name(v), v.code());
        }
        for v in HandshakeState::ALL {
            assert_eq!(serde_name(v), v.as_str());
        }
        for v in TeardownState::ALL {
            assert_eq!(serde_name(v), v.as_str());
        }
        for v in TeardownKind::ALL {
            assert_eq!(serde_name(v), v.as_str());
        }
        for v in Initiator::ALL {
            assert_eq!(serde_name(v), v.as_str());
        }
        for v in [EndReason::CaptureEnd, EndReason::Inactivity, EndReason::Reused, EndReason::Evicted] {
            assert_eq!(serde_name(v), v.as_str());
        }
        let tunnels = [
            TunnelKind::IpInIp,
            TunnelKind::Gre,
            TunnelKind::Vxlan,
            TunnelKind::Geneve,
            TunnelKind::Teredo,
            TunnelKind::Ayiya,
            TunnelKind::Gtpu,
        ];
        for v in tunnels {
            assert_eq!(serde_name(v), v.as_str());
        }
    }
}
