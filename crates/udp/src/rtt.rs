//! Round-trip time estimation and the retransmission timeout, per RFC 6298.
//!
//! Retransmitting too early wastes the link and floods a slow peer; too late, and a lost
//! line stalls the conversation. RFC 6298 estimates the round trip and its variance and
//! sets the timeout a few deviations above the mean. Packet numbers in this protocol are
//! never reused (a retransmission goes out in a new packet), so every acknowledgement of a
//! new largest packet is an unambiguous sample and Karn's rule holds by construction.

use std::time::Duration;

/// RTO before any sample: RFC 6298 §2.1 says one second.
pub const INITIAL_RTO: Duration = Duration::from_secs(1);

/// The floor of the RTO: 200 ms, not RFC 6298's conservative 1 s (§2.4 allows a lower
/// one). That 1 s guarded against spurious retransmissions when receivers delayed acks by
/// up to 500 ms and retransmissions were ambiguous. Here the receiver delays an ack by at
/// most 25 ms (and reports the delay), and unique packet numbers make a spurious
/// retransmission cheap and visible; chat is interactive, and Linux TCP has used 200 ms
/// for decades.
pub const MIN_RTO: Duration = Duration::from_millis(200);

/// The ceiling of the RTO, backoff included: RFC 6298 §2.5 allows 60 s.
pub const MAX_RTO: Duration = Duration::from_secs(60);

/// Clock granularity G of RFC 6298: the RTO is at least SRTT + G.
pub const GRANULARITY: Duration = Duration::from_millis(1);

/// Backoff doublings beyond this cannot change a timeout already at [`MAX_RTO`].
const MAX_BACKOFF: u32 = 16;

/// The RFC 6298 estimator with exponential backoff.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    latest: Option<Duration>,
    min_rtt: Option<Duration>,
    rto: Duration,
    backoff: u32,
    min_rto: Duration,
    max_rto: Duration,
}

impl Default for RttEstimator {
    fn default() -> Self {
        RttEstimator::new(INITIAL_RTO, MIN_RTO, MAX_RTO)
    }
}

impl RttEstimator {
    /// An estimator with no samples yet; the bounds are clamped so that
    /// `min_rto <= initial_rto <= max_rto`.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> RttEstimator {
        let max_rto = max_rto.max(min_rto);
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            latest: None,
            min_rtt: None,
            rto: initial_rto.clamp(min_rto, max_rto),
            backoff: 0,
            min_rto,
            max_rto,
        }
    }

    /// Takes one round-trip measurement (RFC 6298 §2.2–2.3) and ends any backoff: a fresh
    /// sample means the path is delivering again (§5.7).
    pub fn update(&mut self, sample: Duration) {
        self.latest = Some(sample);
        self.min_rtt = Some(self.min_rtt.map_or(sample, |m| m.min(sample)));
        match self.srtt {
            None => {
                // §2.2: SRTT <- R, RTTVAR <- R/2
                self.srtt = Some(sample);
                self.rttvar = sample / 2;
            }
            Some(srtt) => {
                // §2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'| (with the old SRTT), then
                // SRTT <- 7/8 SRTT + 1/8 R'
                let diff = srtt.abs_diff(sample);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + sample) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(sample);
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4; then the bounds of §2.4–2.5.
        self.rto = (srtt + GRANULARITY.max(self.rttvar * 4)).clamp(self.min_rto, self.max_rto);
        self.backoff = 0;
    }

    /// Takes a sample from an acknowledgement: `latest` is the time from sending the
    /// packet to receiving its ACK, `ack_delay` what the peer says it held the ACK.
    ///
    /// The delay is taken out (RFC 9002 §5.3), but never below the smallest raw sample
    /// seen, so a peer cannot make the RTT look shorter than the path has ever been. A
    /// delay beyond `max_ack_delay` means the ACK was not a prompt answer: an earlier ACK
    /// was lost and this one re-reports an old packet, seconds later. Such a sample
    /// measures the loss, not the path, and would inflate the RTO to tens of seconds, so
    /// it is not taken (the caller still ends the backoff: the path did answer).
    /// Returns whether the sample was taken.
    pub fn on_ack_sample(
        &mut self,
        latest: Duration,
        ack_delay: Duration,
        max_ack_delay: Duration,
    ) -> bool {
        if ack_delay > max_ack_delay {
            return false;
        }
        let min_rtt = self.min_rtt.map_or(latest, |m| m.min(latest));
        self.min_rtt = Some(min_rtt);
        let adjusted = latest.saturating_sub(ack_delay).max(min_rtt);
        self.update(adjusted);
        true
    }

    /// A retransmission timer expired: double the timeout (§5.5), up to the maximum.
    pub fn on_timeout(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
    }

    /// Ends the backoff without a sample: the path answered, but an answer we cannot time
    /// (Karn). Used when the handshake completes after retransmitted Initials, so that the
    /// first data does not inherit a handshake's worth of doubling (RFC 6298 §5.7 resets
    /// to 3 s after a retransmitted SYN for the same reason).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// The retransmission timeout now, backoff included.
    pub fn rto(&self) -> Duration {
        let factor = 1u32 << self.backoff;
        self.rto
            .checked_mul(factor)
            .unwrap_or(self.max_rto)
            .min(self.max_rto)
    }

    /// The retransmission timeout without backoff.
    pub fn base_rto(&self) -> Duration {
        self.rto
    }

    /// How many times the timeout has been doubled since the last sample.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    /// SRTT, once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTTVAR (zero before the first sample).
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The most recent sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// The smallest raw sample seen (ack delay included): the floor of adjusted samples.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// SRTT, or the initial RTO's worth of guess before any sample.
    pub fn smoothed_or(&self, guess: Duration) -> Duration {
        self.srtt.unwrap_or(guess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn before_any_sample_the_rto_is_one_second() {
        assert_eq!(RttEstimator::default().rto(), ms(1000));
    }

    #[test]
    fn first_sample_sets_srtt_r_and_rttvar_half_r() {
        let mut e = RttEstimator::default();
        e.update(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        // RTO = 100 + 4*50 = 300 ms
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn later_samples_follow_the_rfc_6298_smoothing() {
        let mut e = RttEstimator::default();
        e.update(ms(100));
        e.update(ms(200));
        // RTTVAR = 3/4*50 + 1/4*|100-200| = 37.5 + 25 = 62.5 ms
        // SRTT   = 7/8*100 + 1/8*200 = 112.5 ms
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        // RTO = 112.5 + 250 = 362.5 ms
        assert_eq!(e.rto(), Duration::from_micros(362_500));
        e.update(ms(112));
        // RTTVAR = 3/4*62.5 + 1/4*0.5 = 46.875 + 0.125 = 47 ms
        // SRTT = 7/8*112.5 + 1/8*112 = 112.4375 ms
        assert_eq!(e.rttvar(), ms(47));
        assert_eq!(
            e.srtt(),
            Some(Duration::from_micros(112_437) + Duration::from_nanos(500))
        );
    }

    #[test]
    fn ack_delay_is_taken_out_but_never_below_the_smallest_rtt() {
        let max = ms(25);
        let mut e = RttEstimator::default();
        assert!(e.on_ack_sample(ms(50), ms(0), max));
        assert!(e.on_ack_sample(ms(80), ms(20), max));
        assert_eq!(e.latest(), Some(ms(60)));
        // A re-reported ACK held for 15 s measures the lost ACK, not the path.
        assert!(!e.on_ack_sample(ms(15_060), ms(15_000), max));
        assert_eq!(e.latest(), Some(ms(60)));
        // A delay cannot push a sample below the smallest seen.
        assert!(e.on_ack_sample(ms(60), ms(25), max));
        assert_eq!(e.latest(), Some(ms(50)));
        assert_eq!(e.min_rtt(), Some(ms(50)));
    }

    #[test]
    fn the_rto_is_clamped_to_min_and_max() {
        let mut e = RttEstimator::default();
        e.update(ms(1));
        assert_eq!(e.rto(), MIN_RTO);
        e.update(Duration::from_secs(100));
        assert_eq!(e.rto(), MAX_RTO);
    }

    #[test]
    fn timeouts_double_the_rto_until_a_new_sample() {
        let mut e = RttEstimator::default();
        e.update(ms(100)); // 300 ms
        e.on_timeout();
        assert_eq!(e.rto(), ms(600));
        e.on_timeout();
        assert_eq!(e.rto(), ms(1200));
        for _ in 0..40 {
            e.on_timeout();
        }
        assert_eq!(e.rto(), MAX_RTO);
        e.update(ms(100));
        assert_eq!(e.backoff(), 0);
        assert!(e.rto() < ms(400));
    }

    #[test]
    fn the_rto_is_at_least_srtt_plus_granularity() {
        let mut e = RttEstimator::new(INITIAL_RTO, Duration::ZERO, MAX_RTO);
        for _ in 0..200 {
            e.update(ms(50));
        }
        // RTTVAR decays toward 0, so RTO -> SRTT + G.
        assert!(e.rto() >= ms(50) + GRANULARITY);
    }
}
