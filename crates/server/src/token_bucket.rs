//! Flood control: how many lines a client may send, and how fast.

use std::time::{Duration, Instant};

/// A token bucket: a client may send `burst` lines at once, then `rate` lines a
/// second. A client over its budget is not disconnected: its reader waits for the
/// time [`TokenBucket::admit`] returns before taking the next line (the "fake lag" of
/// classic IRC servers), so a paste arrives slowly instead of drowning everyone else.
///
/// Pure: the caller passes the time, so tests need no clock.
///
/// Every connection keeps one, so it is kept small: the burst and rate as `u32` and
/// `f32`, which hold any sane setting exactly enough (the tokens stay `f64`, as they
/// accrue in small fractions).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    burst: u32,
    rate: f32,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket, or `None` when flood control is off (`burst` or `rate` zero).
    pub fn new(burst: u32, rate_per_sec: f64, now: Instant) -> Option<TokenBucket> {
        if burst == 0 || rate_per_sec <= 0.0 || !rate_per_sec.is_finite() {
            return None;
        }
        // A rate out of an `f32`'s range would read as zero or infinity.
        let rate = (rate_per_sec as f32).clamp(f32::MIN_POSITIVE, f32::MAX);
        Some(TokenBucket {
            burst,
            rate,
            tokens: f64::from(burst),
            last: now,
        })
    }

    /// Takes one token for a line. `None`: the line may go now. `Some(wait)`: no token
    /// is left; ask again after `wait`, when one will have accrued.
    pub fn admit(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let rate = f64::from(self.rate);
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            let wait = (1.0 - self.tokens) / rate;
            // Round up to a whole millisecond so that the wait always suffices.
            Some(Duration::from_millis((wait * 1000.0).ceil() as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_lines_are_paced_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 4.0, t0).expect("flood control on");
        for _ in 0..10 {
            assert_eq!(bucket.admit(t0), None);
        }
        let wait = bucket.admit(t0).expect("the 11th line waits");
        assert_eq!(wait, Duration::from_millis(250));
        // Asking again after the wait succeeds, and only once.
        let t1 = t0 + wait;
        assert_eq!(bucket.admit(t1), None);
        assert!(bucket.admit(t1).is_some());
    }

    #[test]
    fn the_bucket_refills_up_to_the_burst_and_no_further() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(3, 1.0, t0).expect("flood control on");
        for _ in 0..3 {
            assert_eq!(bucket.admit(t0), None);
        }
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(bucket.admit(later), None);
        }
        assert!(bucket.admit(later).is_some());
    }

    #[test]
    fn a_client_at_the_sustained_rate_never_waits() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2, 4.0, t0).expect("flood control on");
        for i in 0..100u32 {
            assert_eq!(bucket.admit(t0 + Duration::from_millis(250) * i), None);
        }
    }

    #[test]
    fn zero_turns_flood_control_off() {
        let t0 = Instant::now();
        assert!(TokenBucket::new(0, 4.0, t0).is_none());
        assert!(TokenBucket::new(10, 0.0, t0).is_none());
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1, 1.0, t0).expect("flood control on");
        assert_eq!(bucket.admit(t0), None);
        assert!(bucket.admit(t0 - Duration::from_secs(5)).is_some());
        assert!(bucket.admit(t0).is_some());
    }
}
