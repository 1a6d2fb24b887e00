//! The receiver's side of acknowledgement: which packet numbers arrived and when an
//! ACK is owed.
//!
//! Acknowledging every packet at once doubles the packet count; waiting too long
//! inflates the sender's RTT and delays its loss detection. QUIC's policy is used: an
//! ack-eliciting packet is acknowledged within `max_ack_delay`, at once if it is the
//! second one unacknowledged, arrived out of order, or was a duplicate (the sender may
//! have missed our ACK). The set of received packet numbers is bounded; forgetting the
//! oldest ranges only risks a spurious retransmission, never a lost line, because the
//! stream's cumulative offset also travels in every ACK.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::ranges::RangeSet;
use crate::wire::{AckFrame, MAX_ACK_RANGES};

/// Ranges of received packet numbers remembered; beyond it the oldest are forgotten.
const MAX_TRACKED_RANGES: usize = 64;

/// What happened to an incoming packet number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// First time seen: process its frames.
    New,
    /// Seen before (or too old to tell): ignore its frames.
    Duplicate,
}

/// Received packet numbers and the ACK timer.
#[derive(Debug)]
pub(crate) struct AckTracker {
    received: RangeSet,
    /// Packet numbers below this are treated as already seen (forgotten ranges).
    floor: u64,
    largest: Option<(u64, Instant)>,
    unacked_eliciting: u32,
    deadline: Option<Instant>,
    /// A packet arrived since the last ACK went out: the next one has news.
    news: bool,
}

impl AckTracker {
    pub(crate) fn new() -> AckTracker {
        AckTracker {
            received: RangeSet::new(),
            floor: 0,
            largest: None,
            unacked_eliciting: 0,
            deadline: None,
            news: false,
        }
    }

    /// Records packet `pn` arriving at `now`.
    pub(crate) fn on_packet(
        &mut self,
        pn: u64,
        now: Instant,
        ack_eliciting: bool,
        max_ack_delay: Duration,
    ) -> Arrival {
        if pn < self.floor || self.received.contains(pn) {
            if ack_eliciting {
                self.deadline = Some(now);
            }
            return Arrival::Duplicate;
        }
        let in_order = match self.largest {
            None => pn == 0,
            Some((l, _)) => pn == l.saturating_add(1),
        };
        self.received.insert(pn..pn.saturating_add(1));
        while self.received.len() > MAX_TRACKED_RANGES {
            if let Some(r) = self.received.pop_first() {
                self.floor = self.floor.max(r.end);
            }
        }
        if self.largest.is_none_or(|(l, _)| l < pn) {
            self.largest = Some((pn, now));
        }
        self.news = true;
        if ack_eliciting {
            self.unacked_eliciting += 1;
            if !in_order || self.unacked_eliciting >= 2 {
                self.deadline = Some(now);
            } else {
                let d = now + max_ack_delay;
                self.deadline = Some(self.deadline.map_or(d, |x| x.min(d)));
            }
        }
        Arrival::New
    }

    /// True once anything has arrived, so there is something to acknowledge.
    pub(crate) fn has_received(&self) -> bool {
        self.largest.is_some()
    }

    /// True if a packet arrived since the last ACK went out.
    pub(crate) fn has_news(&self) -> bool {
        self.news
    }

    /// When an ACK must go out, if one is owed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Forces an ACK at the next transmission (a window update, say).
    pub(crate) fn request_immediate(&mut self, now: Instant) {
        if self.has_received() {
            self.deadline = Some(now);
        }
    }

    /// An ACK frame describing what has arrived, with the given stream offsets.
    pub(crate) fn frame(&self, now: Instant, cum_offset: u64, max_offset: u64) -> AckFrame {
        let delay = self
            .largest
            .map_or(Duration::ZERO, |(_, t)| now.saturating_duration_since(t));
        let ranges: Vec<RangeInclusive<u64>> = self
            .received
            .iter()
            .rev()
            .take(MAX_ACK_RANGES)
            .map(|r| r.start..=r.end.saturating_sub(1))
            .collect();
        AckFrame {
            cum_offset,
            max_offset,
            ack_delay_micros: u32::try_from(delay.as_micros()).unwrap_or(u32::MAX),
            ranges,
        }
    }

    /// An ACK went out: nothing is owed until the next ack-eliciting packet.
    pub(crate) fn on_ack_sent(&mut self) {
        self.unacked_eliciting = 0;
        self.deadline = None;
        self.news = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_millis(25);

    #[test]
    fn in_order_packets_are_acked_every_second_or_after_the_delay() {
        let t = Instant::now();
        let mut a = AckTracker::new();
        assert_eq!(a.on_packet(0, t, true, D), Arrival::New);
        assert_eq!(a.deadline(), Some(t + D));
        a.on_packet(1, t, true, D);
        assert_eq!(a.deadline(), Some(t));
        a.on_ack_sent();
        a.on_packet(2, t, false, D);
        assert_eq!(a.deadline(), None, "acks are not acked");
    }

    #[test]
    fn gaps_and_duplicates_are_acked_at_once_and_reported_as_ranges() {
        let t = Instant::now();
        let mut a = AckTracker::new();
        a.on_packet(0, t, true, D);
        a.on_ack_sent();
        a.on_packet(3, t, true, D);
        assert_eq!(a.deadline(), Some(t));
        a.on_ack_sent();
        assert_eq!(a.on_packet(3, t, true, D), Arrival::Duplicate);
        assert_eq!(a.deadline(), Some(t));
        a.on_packet(5, t, true, D);
        let f = a.frame(t + Duration::from_millis(3), 7, 100);
        assert_eq!(f.ranges, vec![5..=5, 3..=3, 0..=0]);
        assert_eq!(f.ack_delay_micros, 3000);
        assert_eq!((f.cum_offset, f.max_offset), (7, 100));
    }

    #[test]
    fn the_tracked_set_is_bounded() {
        let t = Instant::now();
        let mut a = AckTracker::new();
        for pn in 0..1000u64 {
            a.on_packet(pn * 2, t, true, D);
        }
        assert!(a.received.len() <= MAX_TRACKED_RANGES);
        assert_eq!(a.on_packet(0, t, true, D), Arrival::Duplicate);
        assert_eq!(a.frame(t, 0, 0).ranges.len(), MAX_ACK_RANGES);
    }
}
