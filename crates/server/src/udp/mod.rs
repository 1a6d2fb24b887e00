//! IRC over UDP (`udp://HOST:PORT`): plain mode for any client that can call `sendto`,
//! and reliable mode for natter's own client, on one socket (docs/udp.md).
//!
//! One task per socket owns every UDP session of that socket: it receives datagrams in
//! batches, routes each by its first byte (plain text, or a reliable-mode packet), feeds
//! the `natter-udp` state machines, drains the hub's queue of each session (woken by
//! the queue, not by polling), and sends in batches. Each proven session is a hub
//! client like a TCP connection: `Connected` with a bounded queue, `Line`s, and
//! `Disconnected`. Nothing is kept for an address that has not proven it can receive
//! (plain mode's `PING` token, reliable mode's Retry cookie).

mod endpoint;
mod input_gate;
mod plain;
mod reliable;
mod route_mtu;
mod socket;
mod token;

use std::io::{Read, Write};
use std::path::Path;

pub(crate) use endpoint::UdpEndpoint;
pub(crate) use socket::BatchSocket;

/// What the UDP listeners did, for tests and operators: above all what they dropped,
/// since hostile input is never answered. Summed over every UDP socket of a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpStats {
    /// Datagrams received, every kind.
    pub datagrams_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,

    /// Plain-mode datagrams from addresses with no session.
    pub plain_from_strangers: u64,
    /// ...that held no line at all (or were too small to answer within three times
    /// their size): dropped without an answer.
    pub plain_ignored: u64,
    /// ...answered with a `PING` token (one datagram each).
    pub plain_challenges: u64,
    /// ...holding a `PONG` whose token did not verify (forged, expired, or from
    /// another address).
    pub plain_bad_pongs: u64,
    /// Plain-mode sessions opened by a valid `PONG`.
    pub plain_sessions_opened: u64,
    /// Plain-mode sessions open now.
    pub plain_sessions: u64,
    /// Lines from plain-mode sessions dropped by flood control (beyond the backlog
    /// a session may have waiting).
    pub plain_lines_dropped: u64,

    /// Reliable-mode handshakes answered with a Retry (no or a stale cookie).
    pub handshake_retries: u64,
    /// Reliable-mode sessions created (Initials with a valid cookie).
    pub reliable_sessions_opened: u64,
    /// Reliable-mode sessions open now (lingering ones included).
    pub reliable_sessions: u64,
    /// Reliable-mode datagrams dropped as malformed: undecodable, truncated, an
    /// unpadded Initial, an unknown version, a packet kind a server never receives.
    pub reliable_malformed: u64,
    /// Reliable-mode datagrams for a session id this server does not have.
    pub reliable_unknown_session: u64,
    /// Reliable-mode datagrams a session dropped as out of place (duplicates not
    /// counted): wrong session, unexpected kind, arrived after it closed.
    pub reliable_dropped: u64,
    /// Resets sent for unknown session ids.
    pub resets_sent: u64,
    /// Times a reliable session moved to a client's new, validated address.
    pub migrations: u64,

    /// Proven sessions turned away by the connection limits.
    pub refused: u64,
    /// Plain sessions closed to make room for a newer one from the same host, when
    /// the host was at its `connections_per_ip` limit (the one heard from longest ago
    /// goes: plain-mode scripts seldom say QUIT).
    pub evicted: u64,
}

impl UdpStats {
    /// Sessions open now, both modes.
    pub fn sessions(&self) -> u64 {
        self.plain_sessions + self.reliable_sessions
    }

    pub(crate) fn add(&mut self, o: &UdpStats) {
        let UdpStats {
            datagrams_received,
            bytes_received,
            datagrams_sent,
            bytes_sent,
            plain_from_strangers,
            plain_ignored,
            plain_challenges,
            plain_bad_pongs,
            plain_sessions_opened,
            plain_sessions,
            plain_lines_dropped,
            handshake_retries,
            reliable_sessions_opened,
            reliable_sessions,
            reliable_malformed,
            reliable_unknown_session,
            reliable_dropped,
            resets_sent,
            migrations,
            refused,
            evicted,
        } = self;
        *datagrams_received += o.datagrams_received;
        *bytes_received += o.bytes_received;
        *datagrams_sent += o.datagrams_sent;
        *bytes_sent += o.bytes_sent;
        *plain_from_strangers += o.plain_from_strangers;
        *plain_ignored += o.plain_ignored;
        *plain_challenges += o.plain_challenges;
        *plain_bad_pongs += o.plain_bad_pongs;
        *plain_sessions_opened += o.plain_sessions_opened;
        *plain_sessions += o.plain_sessions;
        *plain_lines_dropped += o.plain_lines_dropped;
        *handshake_retries += o.handshake_retries;
        *reliable_sessions_opened += o.reliable_sessions_opened;
        *reliable_sessions += o.reliable_sessions;
        *reliable_malformed += o.reliable_malformed;
        *reliable_unknown_session += o.reliable_unknown_session;
        *reliable_dropped += o.reliable_dropped;
        *resets_sent += o.resets_sent;
        *migrations += o.migrations;
        *refused += o.refused;
        *evicted += o.evicted;
    }
}

/// The file in the data directory holding the cookie key.
const KEY_FILE: &str = "udp-cookie.key";

/// The secret key for cookies, session ids and reset tokens, kept in the data
/// directory so that a restarted server can still end its old sessions at once with a
/// valid Reset (a new key would leave their clients to time out). Made at the first
/// start; if it cannot be read or written, a fresh key serves this run.
pub(crate) fn cookie_key(data_dir: &Path) -> [u8; 32] {
    use password_hash::rand_core::{OsRng, RngCore};

    let path = data_dir.join(KEY_FILE);
    let mut key = [0u8; 32];
    if let Ok(mut file) = std::fs::File::open(&path) {
        let mut bytes = Vec::with_capacity(33);
        if file.read_to_end(&mut bytes).is_ok() && bytes.len() == key.len() {
            key.copy_from_slice(&bytes);
            return key;
        }
        tracing::warn!("{} is not a 32-byte key; making a new one", path.display());
    }
    OsRng.fill_bytes(&mut key);
    let written = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&key))
    };
    if let Err(e) = written {
        tracing::warn!(
            "cannot keep the UDP cookie key in {}: {e}; after a restart, UDP clients will time out instead of being reset",
            path.display()
        );
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = cookie_key(dir.path());
        assert_eq!(cookie_key(dir.path()), first);
        std::fs::write(dir.path().join(KEY_FILE), b"short").expect("write");
        assert_ne!(cookie_key(dir.path()), first, "a damaged key is replaced");
    }
}
