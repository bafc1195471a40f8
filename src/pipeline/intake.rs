//! What happens to a record before the connection table: accounting, the run's time range,
//! and fragment reassembly.

use super::source::DecodedRecord;
use super::{Accounting, Analysis, FileReport, Transport};
use crate::decode::frag::{Added, Defragmenter, GiveUp};
use crate::decode::{self, Decoded, Hop, Ip, Packet, Skip, MAX_LAYERS};
use crate::flow::table::Hint;
use crate::types::Timestamp;

/// Accounts for every record and turns the packets with something for the table into
/// `TablePacket`s.
pub(super) struct Intake {
    defrag: Defragmenter,
    decap: bool,
    prev_ts: Option<Timestamp>,
    pub(super) accounting: Accounting,
    first_ts: Option<Timestamp>,
    pub(super) last_ts: Option<Timestamp>,
}

/// One captured packet as the connection table sees it: every tunnel layer (those of the frame,
/// then those of a datagram one of its fragments completed), then the segment or datagram
/// inside, if any.
pub(super) struct TablePacket {
    pub(super) ts: Timestamp,
    /// 1-based packet number over the whole run.
    pub(super) number: u64,
    pub(super) hops: Vec<Hop>,
    pub(super) inner: Option<(Ip, Transport)>,
    /// Where the table expects the inner packet's connection (set by `deliver::prefetch`).
    pub(super) hint: Option<Hint>,
}

impl Intake {
    pub(super) fn new(decap: bool) -> Self {
        Intake {
            defrag: Defragmenter::default(),
            decap,
            prev_ts: None,
            accounting: Accounting::default(),
            first_ts: None,
            last_ts: None,
        }
    }

    /// Whether tunnels are looked through (reading decodes with the same setting).
    pub(super) fn decap(&self) -> bool {
        self.decap
    }

    /// Accounts for one record; adds what the table has to do with it, if anything, to `out`
    /// (made in place, in the group it joins, rather than returned and moved).
    pub(super) fn take(&mut self, record: DecodedRecord, out: &mut Vec<TablePacket>) {
        self.accounting.total += 1;
        // Bound in the pattern, not moved into a tuple first: a packet is copied once less.
        let DecodedRecord::Packet(ts, Packet { tunnels: mut hops, mut inner }, cut) = record else {
            if let DecodedRecord::Damaged(why) = record {
                *self.accounting.skipped.entry(Skip::BadRecord(why)).or_default() += 1;
            }
            return;
        };
        self.accounting.snaplen_cut += u64::from(cut);
        self.note_time(ts);
        let number = self.accounting.total;
        let mut frames = 1;
        let transport = loop {
            match inner {
                Decoded::Tcp(ip, seg) => {
                    self.accounting.tcp += frames;
                    break Some((ip, Transport::Tcp(seg)));
                }
                Decoded::Udp(ip, d) => {
                    self.accounting.udp += frames;
                    break Some((ip, Transport::Udp(d)));
                }
                Decoded::Other(o) => *self.accounting.other.entry(o).or_default() += frames,
                Decoded::Skipped(s) => *self.accounting.skipped.entry(s).or_default() += frames,
                // Accounted for when its datagram completes or is given up.
                Decoded::Fragment(f) => {
                    if let Added::Complete { packet, frames: n, overlaps } = self.defrag.add(ts, *f) {
                        self.accounting.overlapping_fragments += overlaps;
                        let whole = decode::decode(decode::LINK_RAW, &packet, self.decap);
                        inner = if hops.len() + whole.tunnels.len() > MAX_LAYERS {
                            Decoded::Skipped(Skip::TooManyTunnelLayers)
                        } else {
                            hops.extend(whole.tunnels);
                            whole.inner
                        };
                        if let Decoded::Fragment(f) = &mut inner {
                            // It is accounted for with its own datagram, as the frames this
                            // datagram stood for.
                            f.frames = n;
                        }
                        frames = n;
                        continue;
                    }
                }
            }
            break None;
        };
        for g in self.defrag.take_given_up() {
            *self.accounting.skipped.entry(give_up_reason(g.why)).or_default() += g.frames;
        }
        // Without a segment or datagram inside, tunnel layers still carry outer flows.
        if transport.is_some() || !hops.is_empty() {
            out.push(TablePacket { ts, number, hops, inner: transport, hint: None });
        }
    }

    /// The run's time range, and packets stamped earlier than the one before.
    fn note_time(&mut self, ts: Timestamp) {
        if self.prev_ts.is_some_and(|p| ts < p) {
            self.accounting.time_went_backwards += 1;
        }
        self.prev_ts = Some(ts);
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
    }

    /// Accounts for the fragments still waiting, and reports the run.
    pub(super) fn finish(mut self, files: Vec<FileReport>, evicted: u64) -> Analysis {
        for g in self.defrag.finish() {
            *self.accounting.skipped.entry(give_up_reason(g.why)).or_default() += g.frames;
        }
        Analysis {
            evicted,
            accounting: self.accounting,
            files,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
        }
    }
}

fn give_up_reason(why: GiveUp) -> Skip {
    match why {
        GiveUp::Incomplete => Skip::FragmentIncomplete,
        GiveUp::TooBig => Skip::FragmentTooBig,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (no options) with the given protocol, identification, flags and fragment
    /// offset (in 8-byte units), around `payload`.
    fn ipv4(proto: u8, id: u16, more: bool, offset: u16, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
        h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&id.to_be_bytes());
        h[6..8].copy_from_slice(&(u16::from(more) << 13 | offset).to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    /// Three IP-in-IP layers around an IP packet.
    fn wrap(packet: Vec<u8>) -> Vec<u8> {
        (0..3).fold(packet, |p, _| ipv4(4, 0, false, 0, &p))
    }

    /// Frames where each datagram's last fragment, inside three IP-in-IP layers, is what
    /// completes the datagram one level out: the last frame sets off the whole chain, `levels`
    /// reassemblies deep, down to a TCP segment. Returns what the intake made of the last.
    fn chain(levels: u16) -> (Vec<TablePacket>, Accounting) {
        let mut tcp = vec![0u8; 20];
        tcp[12] = 5 << 4;
        let mut datagram = ipv4(6, 0, false, 0, &tcp);
        let mut firsts = Vec::new();
        for id in 1..=levels {
            let body = &datagram[20..];
            let proto = datagram[9];
            firsts.push(wrap(ipv4(proto, id, true, 0, &body[..8])));
            datagram = wrap(ipv4(proto, id, false, 1, &body[8..]));
        }
        let mut intake = Intake::new(true);
        let mut out = Vec::new();
        let ts = Timestamp::from_nanos(1);
        for frame in firsts.into_iter().chain([datagram]) {
            out.clear();
            let packet = decode::decode(decode::LINK_RAW, &frame, true);
            intake.take(DecodedRecord::Packet(ts, packet, false), &mut out);
        }
        (out, intake.finish(Vec::new(), 0).accounting)
    }

    #[test]
    fn tunnels_through_reassembled_fragments_are_followed_up_to_the_limit() {
        let (out, accounting) = chain(5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].hops.len(), 15, "three layers around each of five datagrams");
        assert!(matches!(out[0].inner, Some((_, Transport::Tcp(_)))));
        assert!(
            accounting.balances() && accounting.tcp == 6,
            "every frame is in the segment: {accounting:?}"
        );

        let (out, accounting) = chain(6);
        assert_eq!(out[0].hops.len(), 15, "the sixth datagram's layers are past the limit");
        assert!(out[0].inner.is_none());
        assert!(accounting.skipped.contains_key(&Skip::TooManyTunnelLayers), "{accounting:?}");
        assert!(accounting.balances() && accounting.tcp == 0, "{accounting:?}");
    }
}
