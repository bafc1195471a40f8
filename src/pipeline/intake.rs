//! What happens to a record before the connection table: accounting, the run's time range,
//! and fragment reassembly.

use super::source::DecodedRecord;
use super::{Accounting, Analysis, FileReport, Transport};
use crate::capture::Timestamp;
use crate::decode::frag::{Added, Defragmenter, GiveUp};
use crate::decode::{self, Decoded, Hop, Ip, Skip};
use crate::flow::table::Hint;

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
        let (ts, packet, cut) = match record {
            DecodedRecord::Damaged(why) => {
                *self.accounting.skipped.entry(Skip::BadRecord(why)).or_default() += 1;
                return;
            }
            DecodedRecord::Packet(ts, packet, cut) => (ts, packet, cut),
        };
        self.accounting.snaplen_cut += u64::from(cut);
        self.note_time(ts);
        let number = self.accounting.total;
        let (mut hops, mut inner, mut frames) = (packet.tunnels, packet.inner, 1);
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
                        hops.extend(whole.tunnels);
                        (inner, frames) = (whole.inner, n);
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
