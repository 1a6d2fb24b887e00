//! Counters: what a session and the listener did, and above all what they dropped.
//!
//! Hostile or broken input is dropped silently on the wire (answering it would help an
//! attacker), so counting it is the only way an operator can see it. Plain `u64` fields:
//! the server copies them into its metrics.

/// Counters of one reliable session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_received: u64,
    /// Bytes handed to `handle_datagram`.
    pub bytes_received: u64,
    /// Datagrams produced by `poll_transmit`.
    pub datagrams_sent: u64,
    /// Bytes produced by `poll_transmit`.
    pub bytes_sent: u64,
    /// Dropped: did not decode (truncated, random bytes, unknown types).
    pub malformed: u64,
    /// Dropped: decoded, but for another session id.
    pub wrong_session: u64,
    /// Dropped (client): came from an address other than the server's.
    pub wrong_address: u64,
    /// Dropped: a packet kind or nonce that makes no sense in the current state.
    pub unexpected: u64,
    /// Dropped: a packet number already received.
    pub duplicates: u64,
    /// Absorbed: arrived after the session closed (during the linger or later).
    pub late: u64,
    /// Ignored: an ACK of a packet never sent, or stream data beyond the window.
    pub protocol_violations: u64,
    /// Ignored: a path response whose token did not validate.
    pub bad_path_responses: u64,
    /// Ack-eliciting packets declared lost.
    pub packets_lost: u64,
    /// Stream bytes sent again after a loss.
    pub bytes_retransmitted: u64,
    /// Retransmission timer expirations.
    pub rto_expirations: u64,
    /// Times selectively acknowledged bytes were sent again because the peer's cumulative
    /// acknowledgement never caught up (see `docs/udp.md`, "Reneging").
    pub reneges: u64,
    /// Lines accepted by `send_line`.
    pub lines_sent: u64,
    /// Lines returned by `poll_line`.
    pub lines_received: u64,
    /// Path challenges sent to a client's new address.
    pub path_challenges_sent: u64,
    /// Times the session moved to a validated new client address.
    pub migrations: u64,
    /// Path MTU probes sent (a PING padded to a size to try).
    pub mtu_probes_sent: u64,
    /// Retry packets acted on (client).
    pub retries: u64,
}

/// Counters of the stateless handshake [`Listener`](crate::Listener).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Initial packets seen.
    pub initials: u64,
    /// Retry packets sent (Initials without a valid cookie).
    pub retries_sent: u64,
    /// Initials with a valid cookie (sessions created or found).
    pub accepted: u64,
    /// Dropped: Initial shorter than the minimum (unpadded: would allow amplification).
    pub too_small: u64,
    /// Dropped: Initial of a version this server does not speak.
    pub bad_version: u64,
    /// Initials that carried a cookie that did not validate (answered with a fresh Retry).
    pub bad_cookie: u64,
    /// Dropped: did not decode.
    pub malformed: u64,
    /// Dropped: a packet a server never receives (Retry, Accept, challenge, reset).
    pub unexpected: u64,
    /// Reset packets sent for unknown session ids.
    pub resets_sent: u64,
    /// Dropped: for an unknown session, but too short to answer without amplifying.
    pub unknown_session: u64,
}
