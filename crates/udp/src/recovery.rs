//! The sender's record of packets in flight: acknowledgement, RTT samples and loss.
//!
//! Every ack-eliciting packet is remembered with its send time and what it carried.
//! An ACK's ranges retire packets (their stream bytes become acknowledged) and, because
//! packet numbers are never reused, the newly acknowledged largest packet yields an
//! unambiguous RTT sample. A packet is declared lost, QUIC-style (RFC 9002 §6.1), when a
//! packet sent three later has been acknowledged, or when it is older than 9/8 of the RTT
//! and a later one has been acknowledged; or, on the retransmission timer, everything in
//! flight is (TCP's behaviour after an RTO). Lost packets are not resent as such: what
//! they carried is queued again and goes out in new packets.
//!
//! Packets are recorded in the order they are sent, which is packet number order, and
//! are mostly acknowledged in that order too: the record is a ring (a `VecDeque`) in
//! which an acknowledged packet leaves a vacant slot, and vacant slots at the front are
//! let go. Finding a number is a binary search over the ring; most acknowledgements
//! retire packets from its front. Vacant slots behind a packet that stays (one declared
//! lost and remembered for a late acknowledgement) are swept out once they outnumber the
//! packets still recorded, so the ring stays within twice what it records.

use std::collections::VecDeque;
use std::ops::{Range, RangeInclusive};
use std::time::{Duration, Instant};

/// Packets a later acknowledged packet must be ahead by for an earlier one to be lost.
const PACKET_THRESHOLD: u64 = 3;

/// Lost packets are remembered this many for late acknowledgements, then forgotten.
const MAX_REMEMBERED_LOST: usize = 1024;

/// Slots an emptied record keeps for the next packets; beyond this, it gives its
/// memory back.
const IDLE_SLOTS: usize = 64;

/// What an ack-eliciting packet carried, and when it left.
#[derive(Debug, Clone)]
pub(crate) struct SentPacket {
    pub(crate) time: Instant,
    pub(crate) stream: StreamRanges,
    pub(crate) ping: bool,
    pub(crate) close: bool,
    /// A path MTU probe of this many bytes (0 for any other packet): its loss is not
    /// congestion, and it carries nothing to send again.
    pub(crate) probe: u16,
    /// Larger than the base datagram size (a probe or a data packet built after one
    /// proved its size): its acknowledgement shows the path still carries such.
    pub(crate) large: bool,
    /// False once declared lost (kept a while so a late ACK still frees its bytes).
    pub(crate) in_flight: bool,
}

/// The stream ranges one packet carried. Nearly every packet carries one (new bytes, or
/// one lost range sent again): that one is kept inline, which saves an allocation per
/// packet sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamRanges {
    first: Option<Range<u64>>,
    rest: Vec<Range<u64>>,
}

impl StreamRanges {
    /// Adds a range the packet carries.
    pub(crate) fn push(&mut self, r: Range<u64>) {
        match &self.first {
            None => self.first = Some(r),
            Some(_) => self.rest.push(r),
        }
    }

    /// True when the packet carried no stream bytes.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The ranges, in the order they were added.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.first.iter().chain(&self.rest).cloned()
    }
}

/// The result of processing an ACK frame's ranges.
#[derive(Debug, Default)]
pub(crate) struct Acked {
    /// Packets acknowledged for the first time.
    pub(crate) packets: Vec<SentPacket>,
    /// Time from sending the largest acknowledged packet to now, when that packet is
    /// among the newly acknowledged.
    pub(crate) rtt_sample: Option<Duration>,
    /// Some ranges named packet numbers never sent (ignored): the peer is broken, or it
    /// acknowledges a packet someone forged with our session id.
    pub(crate) beyond_sent: bool,
}

/// One slot of the ring: a packet number and its packet, `None` once acknowledged or
/// forgotten.
#[derive(Debug)]
struct Slot {
    pn: u64,
    packet: Option<SentPacket>,
}

/// Packets sent and not yet acknowledged.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// In increasing packet number order; the front slot is never vacant.
    sent: VecDeque<Slot>,
    /// Slots in `sent` that hold a packet.
    recorded: usize,
    in_flight: u32,
    lost_remembered: usize,
    largest_acked: Option<u64>,
}

impl Recovery {
    pub(crate) fn new() -> Recovery {
        Recovery::default()
    }

    /// Ack-eliciting packets in flight (what the send window counts).
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Records an ack-eliciting packet sent.
    /// Packet numbers must increase from one call to the next (a number out of order
    /// is not recorded).
    pub(crate) fn on_sent(&mut self, pn: u64, packet: SentPacket) {
        if self.sent.back().is_some_and(|last| last.pn >= pn) {
            // The ring's order is what the binary search relies on.
            return;
        }
        if packet.in_flight {
            self.in_flight += 1;
        }
        self.sent.push_back(Slot {
            pn,
            packet: Some(packet),
        });
        self.recorded += 1;
    }

    /// Takes the packet out of slot `i`, leaving it vacant.
    fn take(&mut self, i: usize) -> Option<SentPacket> {
        let packet = self.sent.get_mut(i)?.packet.take()?;
        self.recorded -= 1;
        Some(packet)
    }

    /// Lets go of vacant slots at the front, and sweeps out the others once they
    /// outnumber the recorded packets.
    fn trim(&mut self) {
        while self.sent.front().is_some_and(|slot| slot.packet.is_none()) {
            self.sent.pop_front();
        }
        if self.sent.len() > 2 * self.recorded + 16 {
            self.sent.retain(|slot| slot.packet.is_some());
        }
        if self.sent.is_empty() && self.sent.capacity() > IDLE_SLOTS {
            self.sent.shrink_to(IDLE_SLOTS);
        }
    }

    /// Processes acknowledged `ranges` (highest first); `next_pn` is the first packet
    /// number not yet sent. Numbers at or above it are ignored rather than voiding the
    /// whole frame: without encryption, a forged packet can make an honest peer
    /// acknowledge a number we never sent, and that must not stall the session.
    pub(crate) fn on_ack(
        &mut self,
        ranges: &[RangeInclusive<u64>],
        next_pn: u64,
        now: Instant,
    ) -> Acked {
        let mut acked = Acked::default();
        let Some(last_sent) = next_pn.checked_sub(1) else {
            acked.beyond_sent = !ranges.is_empty();
            return acked;
        };
        let clipped = ranges
            .iter()
            .filter(|r| r.start() <= r.end() && *r.start() <= last_sent)
            .map(|r| *r.start()..=(*r.end()).min(last_sent));
        acked.beyond_sent = ranges.iter().any(|r| *r.end() > last_sent);
        let Some(largest) = clipped.clone().next().map(|r| *r.end()) else {
            return acked;
        };
        for r in clipped {
            let mut i = self.sent.partition_point(|slot| slot.pn < *r.start());
            while let Some(slot) = self.sent.get(i) {
                let pn = slot.pn;
                if pn > *r.end() {
                    break;
                }
                if let Some(p) = self.take(i) {
                    if p.in_flight {
                        self.in_flight = self.in_flight.saturating_sub(1);
                    } else {
                        self.lost_remembered = self.lost_remembered.saturating_sub(1);
                    }
                    if pn == largest {
                        acked.rtt_sample = Some(now.saturating_duration_since(p.time));
                    }
                    acked.packets.push(p);
                }
                i += 1;
            }
        }
        self.trim();
        if self.largest_acked.is_none_or(|l| l < largest) {
            self.largest_acked = Some(largest);
        }
        acked
    }

    /// Declares lost the in-flight packets that the acknowledgements so far prove lost.
    /// Returns them and the time at which the next one would be lost by the time rule.
    pub(crate) fn detect_lost(
        &mut self,
        now: Instant,
        loss_delay: Duration,
    ) -> (Vec<SentPacket>, Option<Instant>) {
        let Some(largest) = self.largest_acked else {
            return (Vec::new(), None);
        };
        let mut lost = Vec::new();
        let mut next_loss_time: Option<Instant> = None;
        for slot in self.sent.iter_mut() {
            let pn = slot.pn;
            if pn >= largest {
                break;
            }
            let Some(p) = slot.packet.as_mut().filter(|p| p.in_flight) else {
                continue;
            };
            let deadline = p.time + loss_delay;
            if largest - pn >= PACKET_THRESHOLD || deadline <= now {
                p.in_flight = false;
                lost.push(p.clone());
            } else {
                next_loss_time = Some(next_loss_time.map_or(deadline, |t| t.min(deadline)));
            }
        }
        self.account_lost(lost.len());
        (lost, next_loss_time)
    }

    /// Declares everything in flight lost: the retransmission timer fired, or the path
    /// changed and what went to the old address will not arrive.
    pub(crate) fn declare_all_lost(&mut self) -> Vec<SentPacket> {
        let mut lost = Vec::new();
        for p in self.sent.iter_mut().filter_map(|slot| slot.packet.as_mut()) {
            if p.in_flight {
                p.in_flight = false;
                lost.push(p.clone());
            }
        }
        self.account_lost(lost.len());
        lost
    }

    fn account_lost(&mut self, n: usize) {
        self.in_flight = self
            .in_flight
            .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        self.lost_remembered += n;
        if self.lost_remembered <= MAX_REMEMBERED_LOST {
            return;
        }
        // Forget the oldest lost packets, in one pass.
        let mut i = 0;
        while self.lost_remembered > MAX_REMEMBERED_LOST {
            let Some(slot) = self.sent.get(i) else {
                self.lost_remembered = 0;
                break;
            };
            if slot.packet.as_ref().is_some_and(|p| !p.in_flight) {
                self.take(i);
                self.lost_remembered -= 1;
            }
            i += 1;
        }
        self.trim();
    }

    /// Forgets everything: the session is over.
    pub(crate) fn clear(&mut self) {
        self.sent = VecDeque::new();
        self.recorded = 0;
        self.in_flight = 0;
        self.lost_remembered = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(t: Instant, bytes: Range<u64>) -> SentPacket {
        SentPacket {
            time: t,
            stream: {
                let mut s = StreamRanges::default();
                s.push(bytes);
                s
            },
            ping: false,
            close: false,
            probe: 0,
            large: false,
            in_flight: true,
        }
    }

    #[test]
    fn acks_retire_packets_and_sample_the_largest() {
        let t = Instant::now();
        let mut r = Recovery::new();
        for pn in 0..5 {
            r.on_sent(pn, pkt(t, pn * 10..pn * 10 + 10));
        }
        let later = t + Duration::from_millis(40);
        let a = r.on_ack(&[3..=4, 0..=1], 5, later);
        assert_eq!(a.packets.len(), 4);
        assert_eq!(a.rtt_sample, Some(Duration::from_millis(40)));
        assert!(!a.beyond_sent);
        assert_eq!(r.in_flight(), 1);
        let again = r.on_ack(&[3..=4], 5, later);
        assert!(again.packets.is_empty() && again.rtt_sample.is_none());
    }

    #[test]
    fn acks_of_packets_never_sent_are_ignored_without_voiding_the_rest() {
        let t = Instant::now();
        let mut r = Recovery::new();
        for pn in 0..3 {
            r.on_sent(pn, pkt(t, 0..1));
        }
        let a = r.on_ack(&[1_000..=1_000, 1..=5], 3, t);
        assert!(a.beyond_sent);
        assert_eq!(a.packets.len(), 2, "1 and 2 are acknowledged");
        assert_eq!(a.rtt_sample, Some(Duration::ZERO));
        assert!(Recovery::new().on_ack(&[0..=0], 0, t).beyond_sent);
    }

    #[test]
    fn a_packet_three_behind_an_acked_one_is_lost_and_a_close_one_waits_for_time() {
        let t = Instant::now();
        let mut r = Recovery::new();
        for pn in 0..6 {
            r.on_sent(pn, pkt(t, 0..1));
        }
        r.on_ack(&[5..=5], 6, t);
        let (lost, next) = r.detect_lost(t, Duration::from_millis(100));
        assert_eq!(lost.len(), 3, "0, 1, 2 are three or more behind 5");
        assert_eq!(next, Some(t + Duration::from_millis(100)));
        let (lost, _) = r.detect_lost(t + Duration::from_millis(100), Duration::from_millis(100));
        assert_eq!(lost.len(), 2, "3 and 4 by the time rule");
        assert_eq!(r.in_flight(), 0);
        // A late ack of a packet declared lost still retires it.
        let a = r.on_ack(&[0..=0], 6, t);
        assert_eq!(a.packets.len(), 1);
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn the_memory_of_lost_packets_is_bounded() {
        let t = Instant::now();
        let mut r = Recovery::new();
        for pn in 0..(MAX_REMEMBERED_LOST as u64 * 3) {
            r.on_sent(pn, pkt(t, 0..1));
            r.declare_all_lost();
        }
        assert!(r.sent.len() <= MAX_REMEMBERED_LOST);
    }

    #[test]
    fn acks_out_of_order_and_a_packet_never_acknowledged_keep_the_record_small() {
        let t = Instant::now();
        let mut r = Recovery::new();
        r.on_sent(0, pkt(t, 0..1));
        r.declare_all_lost();
        // Packet 0 is remembered; everything after it is acknowledged, in pairs and
        // out of order, with gaps in the numbering (packets that elicited nothing).
        let mut acked = 0;
        for k in 0..10_000u64 {
            let pn = 1 + 3 * k;
            r.on_sent(pn, pkt(t, 0..1));
            r.on_sent(pn + 2, pkt(t, 0..1));
            acked += r.on_ack(&[pn + 2..=pn + 2], pn + 3, t).packets.len();
            acked += r.on_ack(&[pn..=pn], pn + 3, t).packets.len();
            assert!(
                r.sent.len() <= 2 * r.recorded + 16,
                "{} slots",
                r.sent.len()
            );
        }
        assert_eq!(acked, 20_000);
        assert_eq!(r.in_flight(), 0);
        assert_eq!(
            r.on_ack(&[0..=0], 30_001, t).packets.len(),
            1,
            "a late ack of 0"
        );
        assert!(r.sent.is_empty());
    }
}
