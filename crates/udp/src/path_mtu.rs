//! Path MTU discovery: how large a datagram the path carries (RFC 8899's DPLPMTUD, as
//! QUIC does it).
//!
//! Every session starts at [`MAX_DATAGRAM_SIZE`], which fits any IPv6 path. Once it has
//! data to send, it probes: a packet holding only a PING and padding, of the size to
//! try. An acknowledged probe proves the size, and later packets are built that large;
//! a probe lost [`MAX_PROBES`] times in a row proves nothing, and a smaller size is
//! tried. The search starts at the largest size allowed (`Config::max_datagram_size`:
//! what the local interface carries, since most paths carry what the first link does),
//! then halves the distance, and ends when the sizes left differ by less than
//! [`SEARCH_STEP`].
//!
//! Probes are sent with IP fragmentation forbidden (the sockets set DF), so a size the
//! path cannot carry is dropped, never fragmented. A lost probe is not congestion, and
//! carries no data to send again. A path whose MTU shrinks later (a route change, a
//! VPN coming up) drops every large packet: the retransmission timer then fires twice
//! with no large packet acknowledged in between, and the session goes back to the base
//! size, searching again a while later. (One timeout is not enough: on a lossy path a
//! timeout is ordinary, and large packets keep getting through around it.)
//!
//! Larger datagrams cost the same per packet and carry more lines: on a 1500-byte
//! Ethernet path a quarter more than the base size, on a loopback or jumbo-frame path
//! over seven times more.

use std::time::{Duration, Instant};

use crate::wire::MAX_DATAGRAM_SIZE;

/// A size is given up after this many of its probes are lost in a row (RFC 8899's
/// `MAX_PROBES`).
pub(crate) const MAX_PROBES: u8 = 3;

/// The search ends when the largest size proved and the smallest refused differ by
/// less than this.
pub(crate) const SEARCH_STEP: usize = 32;

/// After a search that ended below the largest size allowed, the next search starts
/// this much later (RFC 8899 suggests 600 s).
pub(crate) const RESEARCH_AFTER: Duration = Duration::from_secs(600);

/// After a fall back to the base size, the next search starts this much later.
pub(crate) const RESEARCH_AFTER_BLACK_HOLE: Duration = Duration::from_secs(60);

/// Retransmission timeouts in a row, with no packet larger than the base size
/// acknowledged in between, that mean the path no longer carries them.
pub(crate) const BLACK_HOLE_TIMEOUTS: u8 = 2;

/// The search's state. Sizes are whole datagrams, headers included.
#[derive(Debug)]
pub(crate) struct PathMtu {
    /// The size packets are built at: proved, or the base.
    current: usize,
    /// The largest size allowed at all.
    max: usize,
    /// The largest size not yet refused.
    high: usize,
    /// The size of the probe in flight.
    in_flight: Option<usize>,
    /// Probes of the size being tried lost in a row.
    lost: u8,
    /// No search before then.
    next_search: Option<Instant>,
    /// Retransmission timeouts since a packet larger than the base size was last
    /// acknowledged.
    timeouts: u8,
}

impl PathMtu {
    /// A search up to `max` bytes (the base size when smaller).
    pub(crate) fn new(max: usize) -> PathMtu {
        let max = max.max(MAX_DATAGRAM_SIZE);
        PathMtu {
            current: MAX_DATAGRAM_SIZE,
            max,
            high: max,
            in_flight: None,
            lost: 0,
            next_search: None,
            timeouts: 0,
        }
    }

    /// The size to build packets at.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// The size of the probe to send now, if one is due: none while one is in flight,
    /// once the search has ended, or before the next search.
    pub(crate) fn probe_due(&mut self, now: Instant) -> Option<usize> {
        if self.in_flight.is_some() {
            return None;
        }
        if let Some(at) = self.next_search {
            if now < at {
                return None;
            }
            self.next_search = None;
            self.high = self.max;
            self.lost = 0;
        }
        if self.high < self.current + SEARCH_STEP {
            // Ended; below the largest size allowed, it runs again in a while.
            if self.current + SEARCH_STEP <= self.max {
                self.next_search = Some(now + RESEARCH_AFTER);
            }
            return None;
        }
        Some(self.candidate())
    }

    /// The size tried next: the largest not refused while nothing has been refused
    /// since the search began, then halfway between the proved and the refused.
    fn candidate(&self) -> usize {
        if self.high == self.max {
            self.high
        } else {
            self.current + (self.high - self.current).div_ceil(2)
        }
    }

    /// A probe of `size` bytes went out.
    pub(crate) fn on_probe_sent(&mut self, size: usize) {
        self.in_flight = Some(size);
    }

    /// A probe of `size` bytes was acknowledged: the path carries that size. Only the
    /// probe in flight counts: one acknowledged after it was given up for lost, or
    /// sent before a fall back or a move to another path, speaks of a path that may
    /// no longer be this one.
    pub(crate) fn on_probe_acked(&mut self, size: usize) {
        if self.in_flight != Some(size) {
            return;
        }
        self.in_flight = None;
        self.lost = 0;
        self.current = self.current.max(size);
        self.high = self.high.max(self.current);
    }

    /// A probe of `size` bytes was declared lost.
    pub(crate) fn on_probe_lost(&mut self, size: usize) {
        if self.in_flight != Some(size) {
            return;
        }
        self.in_flight = None;
        self.lost += 1;
        if self.lost >= MAX_PROBES {
            self.lost = 0;
            self.high = self.high.min(size - 1);
        }
    }

    /// A packet larger than the base size was acknowledged: the path still carries
    /// such packets.
    pub(crate) fn on_large_acked(&mut self) {
        self.timeouts = 0;
    }

    /// The retransmission timer fired (everything in flight is lost). The second time
    /// in a row with packets larger than the base size and none of them acknowledged,
    /// the path may no longer carry them: back to the base size, and search again
    /// later.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if self.current <= MAX_DATAGRAM_SIZE {
            return;
        }
        self.timeouts += 1;
        if self.timeouts >= BLACK_HOLE_TIMEOUTS {
            self.restart(now + RESEARCH_AFTER_BLACK_HOLE);
        }
    }

    /// The session moved to another path: what this one carried says nothing of it.
    pub(crate) fn on_new_path(&mut self, now: Instant) {
        self.restart(now);
    }

    fn restart(&mut self, search_at: Instant) {
        self.current = MAX_DATAGRAM_SIZE;
        self.high = self.max;
        self.in_flight = None;
        self.lost = 0;
        self.timeouts = 0;
        self.next_search = Some(search_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a path that carries `path_mtu` bytes, every probe acked or
    /// lost at once; returns the size found and the probes sent.
    fn search(max: usize, path_mtu: usize) -> (usize, Vec<usize>) {
        let now = Instant::now();
        let mut mtu = PathMtu::new(max);
        let mut probes = Vec::new();
        for _ in 0..100 {
            let Some(size) = mtu.probe_due(now) else {
                break;
            };
            probes.push(size);
            mtu.on_probe_sent(size);
            if size <= path_mtu {
                mtu.on_probe_acked(size);
            } else {
                mtu.on_probe_lost(size);
            }
        }
        (mtu.current(), probes)
    }

    /// A search up to 8952 bytes whose first probe was acknowledged.
    fn proved_largest(now: Instant) -> PathMtu {
        let mut mtu = PathMtu::new(8952);
        let size = mtu.probe_due(now).expect("a probe");
        mtu.on_probe_sent(size);
        mtu.on_probe_acked(size);
        assert_eq!(mtu.current(), 8952);
        mtu
    }

    #[test]
    fn a_path_that_carries_the_largest_size_takes_one_probe() {
        assert_eq!(search(8952, 65535), (8952, vec![8952]));
        assert_eq!(search(1472, 1500), (1472, vec![1472]));
    }

    #[test]
    fn a_smaller_path_is_found_within_the_search_step() {
        let (found, probes) = search(8952, 1472);
        assert!(found <= 1472 && found + SEARCH_STEP > 1472, "{found}");
        assert_eq!(&probes[..3], &[8952; 3], "the largest first, three times");
        assert!(probes.len() < 30, "{probes:?}");
    }

    #[test]
    fn a_path_that_carries_little_more_than_the_base_stays_there() {
        let (found, probes) = search(8952, MAX_DATAGRAM_SIZE + SEARCH_STEP / 2);
        assert_eq!(found, MAX_DATAGRAM_SIZE);
        assert!(probes.iter().all(|&p| p > MAX_DATAGRAM_SIZE));
    }

    #[test]
    fn no_probe_when_the_base_is_all_that_is_allowed() {
        assert_eq!(
            search(MAX_DATAGRAM_SIZE, 65535),
            (MAX_DATAGRAM_SIZE, vec![])
        );
        assert_eq!(search(500, 65535), (MAX_DATAGRAM_SIZE, vec![]));
    }

    #[test]
    fn one_probe_at_a_time_and_only_its_loss_counts() {
        let now = Instant::now();
        let mut mtu = PathMtu::new(8952);
        let size = mtu.probe_due(now).expect("a probe");
        mtu.on_probe_sent(size);
        assert_eq!(mtu.probe_due(now), None, "one in flight");
        for _ in 0..MAX_PROBES {
            mtu.on_probe_lost(4000);
        }
        assert_eq!(mtu.current(), MAX_DATAGRAM_SIZE);
        mtu.on_probe_acked(size);
        assert_eq!(mtu.current(), 8952);
    }

    #[test]
    fn a_probe_acknowledged_after_a_fall_back_proves_nothing() {
        let now = Instant::now();
        let mut mtu = PathMtu::new(8952);
        let size = mtu.probe_due(now).expect("a probe");
        mtu.on_probe_sent(size);
        mtu.on_new_path(now);
        mtu.on_probe_acked(size);
        assert_eq!(mtu.current(), MAX_DATAGRAM_SIZE);
    }

    #[test]
    fn a_black_hole_falls_back_to_the_base_and_searches_again_later() {
        let now = Instant::now();
        let mut mtu = proved_largest(now);
        mtu.on_timeout(now);
        assert_eq!(mtu.current(), 8952, "one timeout is ordinary");
        mtu.on_timeout(now);
        assert_eq!(mtu.current(), MAX_DATAGRAM_SIZE);
        assert_eq!(mtu.probe_due(now), None, "not at once");
        let later = now + RESEARCH_AFTER_BLACK_HOLE;
        assert_eq!(mtu.probe_due(later), Some(8952));
    }

    #[test]
    fn timeouts_with_large_packets_acknowledged_between_them_are_not_a_black_hole() {
        let now = Instant::now();
        let mut mtu = proved_largest(now);
        for _ in 0..10 {
            mtu.on_timeout(now);
            mtu.on_large_acked();
        }
        assert_eq!(mtu.current(), 8952);
    }

    #[test]
    fn a_search_that_ended_below_the_largest_runs_again_later() {
        let now = Instant::now();
        let mut mtu = PathMtu::new(1472);
        for _ in 0..MAX_PROBES {
            let size = mtu.probe_due(now).expect("a probe");
            assert_eq!(size, 1472);
            mtu.on_probe_sent(size);
            mtu.on_probe_lost(size);
        }
        // Halfway, then onwards to the end of the search, all lost.
        let mut probes = 0;
        while let Some(size) = mtu.probe_due(now) {
            mtu.on_probe_sent(size);
            mtu.on_probe_lost(size);
            probes += 1;
            assert!(probes < 100);
        }
        assert_eq!(mtu.current(), MAX_DATAGRAM_SIZE);
        assert_eq!(mtu.probe_due(now + RESEARCH_AFTER), Some(1472));
    }
}
