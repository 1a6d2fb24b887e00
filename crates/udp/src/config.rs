//! Tunables of a reliable session, with the defaults and the reasons for them.

use std::time::Duration;

use crate::rtt;
use crate::wire::MAX_DATAGRAM_SIZE;

/// The largest datagram a session ever sends, headers included, whatever the path
/// carries: a jumbo Ethernet frame's payload under IPv6 (9000 - 40 - 8). Beyond it a
/// datagram saves little more per line, and a lost one costs more to send again.
pub const MAX_DATAGRAM_LIMIT: usize = 8952;

/// The flow-control credit each side may assume before the peer's first ACK says
/// otherwise: every receiver must accept at least this much (and so must configure a
/// receive window at least this large).
pub const INITIAL_MAX_OFFSET: u64 = 64 * 1024;

/// Settings of one reliable session. `Config::default()` is what natter uses; tests
/// shorten timers.
#[derive(Debug, Clone)]
pub struct Config {
    /// RTO before the first round-trip sample (RFC 6298: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (see [`rtt::MIN_RTO`] for why 200 ms).
    pub min_rto: Duration,
    /// Upper bound of the RTO, backoff included (RFC 6298: at least 60 s).
    pub max_rto: Duration,
    /// Longest a receiver waits before acknowledging an ack-eliciting packet: 25 ms, as in
    /// QUIC. Every second such packet and every out-of-order one is acknowledged at once.
    pub max_ack_delay: Duration,
    /// With nothing received for this long, send a PING: keeps the peer's idle timer and
    /// any NAT binding alive (NATs commonly forget UDP mappings after 30 s).
    pub keepalive: Duration,
    /// With nothing received for this long, the peer is gone: close without a handshake.
    pub idle_timeout: Duration,
    /// A client that has not completed the handshake by then gives up (and a server
    /// session whose client never confirmed the Accept is dropped). 30 s: with Initials
    /// at most [`MAX_INITIAL_INTERVAL`](crate::MAX_INITIAL_INTERVAL) apart, that is
    /// about ten tries.
    pub handshake_timeout: Duration,
    /// Shortest linger after acknowledging the peer's Close; the linger is three RTOs
    /// (enough for two lost CloseAcks), at least this, at most `max_rto`.
    pub min_linger: Duration,
    /// Congestion window at start, in packets in flight.
    pub initial_window: u32,
    /// Congestion window ceiling, in packets in flight: the send window that keeps a
    /// slow peer or path from being flooded (64 × 1200 B = 75 KiB in flight at the base size;
    /// with larger datagrams, `send_buffer` bounds the bytes).
    pub max_window: u32,
    /// Congestion window floor after loss.
    pub min_window: u32,
    /// Most bytes of queued, unacknowledged lines; `send_line` fails with
    /// [`SendError::Full`](crate::SendError::Full) beyond it.
    pub send_buffer: usize,
    /// Receive window: how many bytes past what the application has read the peer may
    /// send. At least [`INITIAL_MAX_OFFSET`].
    pub recv_window: u64,
    /// The largest datagram path MTU discovery may try, headers included: what the
    /// local interface toward the peer carries, less the IP and UDP headers. At the
    /// base size ([`MAX_DATAGRAM_SIZE`], the default) the session never probes; above
    /// 8952 bytes (a jumbo frame's payload) it is cut to that.
    pub max_datagram_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_rto: rtt::INITIAL_RTO,
            min_rto: rtt::MIN_RTO,
            max_rto: rtt::MAX_RTO,
            max_ack_delay: Duration::from_millis(25),
            keepalive: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(30),
            min_linger: Duration::from_secs(1),
            initial_window: 16,
            max_window: 64,
            min_window: 2,
            send_buffer: 256 * 1024,
            recv_window: 256 * 1024,
            max_datagram_size: MAX_DATAGRAM_SIZE,
        }
    }
}

impl Config {
    /// The same settings with inconsistent values repaired, so a session never has to
    /// check them again.
    pub(crate) fn normalized(mut self) -> Config {
        self.min_window = self.min_window.max(1);
        self.max_window = self.max_window.max(self.min_window);
        self.initial_window = self.initial_window.clamp(self.min_window, self.max_window);
        self.recv_window = self.recv_window.max(INITIAL_MAX_OFFSET);
        self.send_buffer = self.send_buffer.max(2);
        self.max_datagram_size = self
            .max_datagram_size
            .clamp(MAX_DATAGRAM_SIZE, MAX_DATAGRAM_LIMIT);
        self.max_rto = self.max_rto.max(self.min_rto);
        self.keepalive = self.keepalive.max(Duration::from_millis(1));
        self.idle_timeout = self.idle_timeout.max(self.keepalive);
        self
    }
}
