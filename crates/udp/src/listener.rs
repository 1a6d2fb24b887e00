//! The server's stateless handshake: Initial → Retry → Initial with cookie → Accept.
//!
//! A server must not allocate a session for every datagram with a forged source address,
//! or a flood of Initials would exhaust it, and must not answer a small datagram with a
//! big one, or it becomes a reflector. So the [`Listener`] has no per-peer memory at all:
//! an Initial without a valid cookie gets a Retry (smaller than the padded Initial) and
//! is forgotten; only an Initial that echoes a cookie proves the address and yields an
//! [`Accept`], from which the server makes a [`Session`]. Session ids are derived from the
//! key (see [`Cookies::session_id`]), so a retransmitted Initial names the session it
//! already created and the server's one session table is the only state.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::cookie::{Cookie, Cookies, Purpose};
use crate::session::{Session, Transmit};
use crate::stats::ListenerStats;
use crate::wire::{self, Packet, MIN_INITIAL_SIZE, RESET_LEN, VERSION};

/// Where a datagram arriving at the server's socket should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Plain-mode IRC text (first byte below 0xF8): the plain-mode handler.
    Plain,
    /// A reliable packet naming this session id: the session, if the server has it;
    /// otherwise [`Listener::handle`] (which may answer with a Reset).
    Session(u64),
    /// A handshake packet (or junk in the reliable range): [`Listener::handle`].
    Listener,
}

/// Classifies a datagram by its first bytes, without decoding it: the server's first
/// step for every datagram on a shared UDP socket.
pub fn route(datagram: &[u8]) -> Route {
    if !wire::is_reliable(datagram) {
        return Route::Plain;
    }
    match wire::peek_session_id(datagram) {
        Some(id) => Route::Session(id),
        None => Route::Listener,
    }
}

/// Why the listener dropped a datagram without answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a valid reliable packet.
    Malformed,
    /// An Initial shorter than [`MIN_INITIAL_SIZE`].
    TooSmall,
    /// An Initial of a version this server does not speak.
    BadVersion,
    /// A packet kind a server never receives.
    Unexpected,
    /// For an unknown session, and too short to answer with a Reset.
    UnknownSession,
}

/// What to do with a datagram the [`Listener`] looked at.
#[derive(Debug)]
pub enum Incoming {
    /// Send this and remember nothing.
    Reply(Transmit),
    /// The peer proved its address: find the session with [`Accept::session_id`] or
    /// create it with [`Accept::into_session`], then pass it the same datagram (it sends
    /// the Accept packet, and again for each retransmitted Initial).
    Accept(Accept),
    /// Drop the datagram (already counted).
    Drop(DropReason),
}

/// A validated handshake, ready to become a server [`Session`].
#[derive(Debug, Clone)]
pub struct Accept {
    session_id: u64,
    peer: SocketAddr,
    nonce: u64,
    cookies: Cookies,
}

impl Accept {
    /// The session id: look it up before creating a session, since a retransmitted
    /// Initial yields the same id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The client's validated address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The client's nonce.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// Creates the server session. Feed it the Initial next (`handle_datagram`) so that
    /// it answers with Accept.
    pub fn into_session(self, now: Instant, config: Config) -> Session {
        Session::accepted(
            now,
            self.peer,
            self.nonce,
            self.session_id,
            self.cookies,
            config,
        )
    }
}

/// The stateless handshake responder. One per server socket; it holds the cookie key and
/// counters, and nothing per peer.
#[derive(Debug)]
pub struct Listener {
    cookies: Cookies,
    stats: ListenerStats,
}

impl Listener {
    /// A listener using `cookies` (share the same [`Cookies`] with plain mode: the
    /// purposes keep their tokens apart).
    pub fn new(cookies: Cookies) -> Listener {
        Listener {
            cookies,
            stats: ListenerStats::default(),
        }
    }

    /// The cookie maker, for plain mode's PING tokens.
    pub fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// Counters.
    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }

    /// Handles a reliable-mode datagram that no existing session took: an Initial, or a
    /// packet for a session id the server does not have. Never panics; never keeps state.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Incoming {
        let packet = match wire::decode(datagram) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return Incoming::Drop(DropReason::Malformed);
            }
        };
        match packet {
            Packet::Initial {
                version,
                nonce,
                cookie,
            } => {
                self.stats.initials += 1;
                if datagram.len() < MIN_INITIAL_SIZE {
                    self.stats.too_small += 1;
                    return Incoming::Drop(DropReason::TooSmall);
                }
                if version != VERSION {
                    self.stats.bad_version += 1;
                    return Incoming::Drop(DropReason::BadVersion);
                }
                let extra = nonce.to_be_bytes();
                let valid = Cookie::from_bytes(cookie).is_some_and(|c| {
                    self.cookies
                        .verify(now, Purpose::Handshake, from, &extra, &c)
                });
                if valid {
                    self.stats.accepted += 1;
                    return Incoming::Accept(Accept {
                        session_id: self.cookies.session_id(from, nonce),
                        peer: from,
                        nonce,
                        cookies: self.cookies.clone(),
                    });
                }
                if !cookie.is_empty() {
                    self.stats.bad_cookie += 1;
                }
                let fresh = self.cookies.issue(now, Purpose::Handshake, from, &extra);
                let retry = Packet::Retry {
                    version: VERSION,
                    nonce,
                    cookie: fresh.as_bytes(),
                }
                .to_vec();
                self.stats.retries_sent += 1;
                Incoming::Reply(Transmit {
                    to: from,
                    datagram: retry,
                })
            }
            Packet::Data { session_id, .. } | Packet::PathResponse { session_id, .. } => {
                // Strictly longer than a Reset, so a Reset can never answer a Reset-sized
                // datagram: no amplification and no loops between two confused peers.
                if datagram.len() <= RESET_LEN {
                    self.stats.unknown_session += 1;
                    return Incoming::Drop(DropReason::UnknownSession);
                }
                self.stats.resets_sent += 1;
                let reset = Packet::Reset {
                    session_id,
                    token: self.cookies.reset_token(session_id),
                }
                .to_vec();
                Incoming::Reply(Transmit {
                    to: from,
                    datagram: reset,
                })
            }
            Packet::Retry { .. }
            | Packet::Accept { .. }
            | Packet::PathChallenge { .. }
            | Packet::Reset { .. } => {
                self.stats.unexpected += 1;
                Incoming::Drop(DropReason::Unexpected)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn listener(t0: Instant) -> Listener {
        Listener::new(Cookies::new([42; 32], t0))
    }

    fn initial(nonce: u64, cookie: &[u8]) -> Vec<u8> {
        Packet::Initial {
            version: VERSION,
            nonce,
            cookie,
        }
        .to_vec()
    }

    #[test]
    fn an_initial_without_cookie_gets_a_small_retry_and_leaves_nothing() {
        let t0 = Instant::now();
        let mut l = listener(t0);
        let peer: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let Incoming::Reply(t) = l.handle(t0, peer, &initial(1, &[])) else {
            panic!("expected a Retry");
        };
        assert_eq!(t.to, peer);
        assert!(t.datagram.len() * 3 <= MIN_INITIAL_SIZE * 3);
        assert!(t.datagram.len() < 40);
        assert!(matches!(
            wire::decode(&t.datagram),
            Ok(Packet::Retry { nonce: 1, .. })
        ));
    }

    #[test]
    fn the_echoed_cookie_is_accepted_only_from_the_same_address_and_nonce() {
        let t0 = Instant::now();
        let mut l = listener(t0);
        let peer: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let Incoming::Reply(t) = l.handle(t0, peer, &initial(1, &[])) else {
            panic!()
        };
        let Ok(Packet::Retry { cookie, .. }) = wire::decode(&t.datagram) else {
            panic!()
        };
        let cookie = cookie.to_vec();
        let later = t0 + Duration::from_secs(1);
        let Incoming::Accept(a) = l.handle(later, peer, &initial(1, &cookie)) else {
            panic!("expected Accept")
        };
        assert_eq!(a.peer(), peer);
        let other: SocketAddr = "203.0.113.6:40000".parse().unwrap();
        assert!(matches!(
            l.handle(later, other, &initial(1, &cookie)),
            Incoming::Reply(_)
        ));
        assert!(matches!(
            l.handle(later, peer, &initial(2, &cookie)),
            Incoming::Reply(_)
        ));
        assert_eq!(l.stats().bad_cookie, 2);
        let Incoming::Accept(again) = l.handle(later, peer, &initial(1, &cookie)) else {
            panic!()
        };
        assert_eq!(again.session_id(), a.session_id(), "idempotent");
    }

    #[test]
    fn short_initials_and_server_bound_junk_are_dropped() {
        let t0 = Instant::now();
        let mut l = listener(t0);
        let peer: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let short = &initial(1, &[])[..100];
        assert!(matches!(
            l.handle(t0, peer, short),
            Incoming::Drop(DropReason::TooSmall)
        ));
        assert!(matches!(
            l.handle(t0, peer, &[0xFF; 50]),
            Incoming::Drop(DropReason::Malformed)
        ));
        let retry = Packet::Retry {
            version: VERSION,
            nonce: 1,
            cookie: &[],
        }
        .to_vec();
        assert!(matches!(
            l.handle(t0, peer, &retry),
            Incoming::Drop(DropReason::Unexpected)
        ));
    }

    #[test]
    fn data_for_an_unknown_session_gets_a_smaller_reset() {
        let t0 = Instant::now();
        let mut l = listener(t0);
        let peer: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let mut data = Vec::new();
        wire::encode_data(&mut data, 77, 0, &[3; 20]); // pings
        let Incoming::Reply(t) = l.handle(t0, peer, &data) else {
            panic!()
        };
        assert!(t.datagram.len() < data.len());
        assert_eq!(
            wire::decode(&t.datagram),
            Ok(Packet::Reset {
                session_id: 77,
                token: l.cookies().reset_token(77)
            })
        );
        let mut tiny = Vec::new();
        wire::encode_data(&mut tiny, 77, 0, &[]);
        assert!(matches!(
            l.handle(t0, peer, &tiny),
            Incoming::Drop(DropReason::UnknownSession)
        ));
    }

    #[test]
    fn routing_by_first_byte() {
        assert_eq!(route(b"NICK a\r\n"), Route::Plain);
        assert_eq!(route(&initial(1, &[])), Route::Listener);
        let mut data = Vec::new();
        wire::encode_data(&mut data, 9, 0, &[]);
        assert_eq!(route(&data), Route::Session(9));
        assert_eq!(route(&[]), Route::Plain);
    }
}
