//! Running packets through one connection table, a group at a time.

use super::intake::TablePacket;
use super::{ObservedPacket, Observer};
use crate::flow::key::TunnelKey;
use crate::flow::table::{ConnTable, Context};

/// Packets delivered as one group: their table entries are all requested first (`prefetch`),
/// so the cache misses of a group overlap instead of stalling one packet after another.
pub(super) const GROUP: usize = 16;

/// Runs a packet through the table: the outer UDP flows of its tunnel layers (connections too,
/// as in Zeek), then its segment or datagram, which `observer` (if any) is told of. Returns the
/// ids of those outer flows.
pub(super) fn deliver(
    table: &mut ConnTable,
    packet: &TablePacket,
    observer: &mut Option<&mut Observer<'_>>,
) -> Vec<u64> {
    let mut tunnel = None;
    let mut parents = Vec::new();
    for (i, hop) in packet.hops.iter().enumerate() {
        if let Some(d) = &hop.udp {
            let ctx = Context { tunnel, hops: &packet.hops[..i], parents: &parents, carries: Some(hop.kind) };
            parents.push(table.udp(packet.ts, &hop.ip, d, &ctx, None));
        }
        tunnel = Some(TunnelKey::new(hop.kind, hop.ip.src, hop.ip.dst));
    }
    let ctx = Context { tunnel, hops: &packet.hops, parents: &parents, carries: None };
    if let Some((ip, transport)) = packet.inner {
        let conn_id = match &transport {
            super::Transport::Tcp(seg) => table.tcp(packet.ts, &ip, seg, &ctx, packet.hint),
            super::Transport::Udp(d) => table.udp(packet.ts, &ip, d, &ctx, packet.hint),
        };
        if let Some(observer) = observer {
            observer(&ObservedPacket { number: packet.number, ts: packet.ts, conn_id, ip, transport });
        }
    }
    parents
}

/// Starts loading the table entries `packets` will touch, and notes where they are (untunnelled
/// packets only: the rest are few, and their keys need the table's tunnel ids).
pub(super) fn prefetch(table: &ConnTable, packets: &mut [TablePacket]) {
    for packet in packets {
        if let (true, Some((ip, transport))) = (packet.hops.is_empty(), &packet.inner) {
            let (src, dst) = transport.sockets(ip);
            packet.hint = Some(table.prefetch(transport.proto(), src, dst));
        }
    }
}
