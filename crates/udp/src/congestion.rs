//! The send window: how many packets may be in flight.
//!
//! A fixed window would flood a slow path and keep flooding it while everything is lost.
//! This is NewReno reduced to packets: grow by one per acknowledged packet up to the slow
//! start threshold, then by one per window; halve once per loss event; fall to the floor
//! when the retransmission timer fires; never exceed the ceiling (the configured send
//! window). Counting packets rather than bytes is enough here: data packets are
//! near-full datagrams under load and tiny chat lines otherwise.

use std::time::Instant;

/// Congestion state.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    cwnd: u32,
    ssthresh: u32,
    /// Acknowledgements counted toward the next +1 in congestion avoidance.
    credits: u32,
    /// Losses of packets sent before this instant belong to the loss event already
    /// reacted to, so one burst of loss halves the window once.
    recovery_start: Option<Instant>,
    min: u32,
    max: u32,
}

impl Window {
    pub(crate) fn new(initial: u32, min: u32, max: u32) -> Window {
        Window {
            cwnd: initial,
            ssthresh: max,
            credits: 0,
            recovery_start: None,
            min,
            max,
        }
    }

    /// Packets that may be in flight.
    pub(crate) fn size(&self) -> u32 {
        self.cwnd
    }

    /// A packet sent at `sent` was acknowledged.
    pub(crate) fn on_ack(&mut self, sent: Instant) {
        if self.recovery_start.is_some_and(|r| sent <= r) {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += 1;
        } else {
            self.credits += 1;
            if self.credits >= self.cwnd {
                self.credits = 0;
                self.cwnd += 1;
            }
        }
        self.cwnd = self.cwnd.min(self.max);
    }

    /// A packet sent at `sent` was declared lost at `now`.
    pub(crate) fn on_loss(&mut self, sent: Instant, now: Instant) {
        if self.recovery_start.is_some_and(|r| sent <= r) {
            return;
        }
        self.ssthresh = (self.cwnd / 2).max(self.min);
        self.cwnd = self.ssthresh;
        self.credits = 0;
        self.recovery_start = Some(now);
    }

    /// The retransmission timer fired: the path may be gone; start again from the floor.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        self.ssthresh = (self.cwnd / 2).max(self.min);
        self.cwnd = self.min;
        self.credits = 0;
        self.recovery_start = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn grows_halves_once_per_event_and_collapses_on_timeout() {
        let t0 = Instant::now();
        let mut w = Window::new(4, 2, 64);
        for _ in 0..4 {
            w.on_ack(t0);
        }
        assert_eq!(w.size(), 8);
        let t1 = t0 + Duration::from_secs(1);
        w.on_loss(t0, t1);
        assert_eq!(w.size(), 4);
        w.on_loss(t0, t1 + Duration::from_millis(1));
        assert_eq!(w.size(), 4, "same loss event");
        w.on_ack(t0);
        assert_eq!(
            w.size(),
            4,
            "acks of packets from before recovery do not grow it"
        );
        for _ in 0..4 {
            w.on_ack(t1 + Duration::from_millis(5));
        }
        assert_eq!(w.size(), 5, "congestion avoidance: +1 per window");
        w.on_timeout(t1 + Duration::from_secs(1));
        assert_eq!(w.size(), 2);
        for _ in 0..10_000 {
            w.on_ack(t1 + Duration::from_secs(2));
        }
        assert_eq!(w.size(), 64);
    }
}
