//! Stateless address-validation cookies.
//!
//! A UDP source address is a claim, not a fact. Before the server spends memory or
//! bandwidth on a peer it asks the peer to echo a cookie that only the server could have
//! made and that only a receiver at that address could have seen. The cookie is a keyed
//! MAC (BLAKE3 in keyed mode) over the peer's address, a coarse time bucket and optional
//! extra bytes, so the server stores nothing per peer until the cookie comes back: this
//! is TCP's SYN cookie and QUIC's Retry token. The same key also derives the session ids
//! and stateless-reset tokens of reliable mode, so that they too need no table.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Length of the MAC part of a cookie: 96 bits makes forgery within a cookie's one-minute
/// life hopeless while keeping the plain-mode text token short enough to type.
pub const MAC_LEN: usize = 12;

/// Length of a cookie: one byte naming the time bucket, then the MAC.
pub const COOKIE_LEN: usize = 1 + MAC_LEN;

/// Length of a cookie in its text form (lowercase hex), as sent in plain mode's `PING`.
pub const COOKIE_TEXT_LEN: usize = COOKIE_LEN * 2;

/// Default width of a time bucket. A cookie is valid in the bucket it was made in and the
/// next one, so it lives between 30 and 60 seconds: long enough for a person typing the
/// `PONG` by hand in `nc -u`, short enough that a captured cookie soon expires.
pub const DEFAULT_BUCKET: Duration = Duration::from_secs(30);

/// The length of a stateless-reset token (see [`Cookies::reset_token`]).
pub const RESET_TOKEN_LEN: usize = 16;

/// What a cookie is for. It is part of the MAC input, so a cookie made for one purpose
/// can never be replayed as another (a plain-mode PING token as a path-validation proof,
/// say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Purpose {
    /// Plain mode: the `PING :<cookie>` a client must answer before registration ends.
    Plain = 1,
    /// Reliable mode: the cookie in a Retry, echoed in the next Initial (extra = the
    /// client nonce).
    Handshake = 2,
    /// Reliable mode: the token in a path challenge when a session's client address
    /// changes (extra = the session id).
    Path = 3,
}

/// Domain-separation tags for values derived from the key that are not cookies.
const DERIVE_SESSION_ID: u8 = 0x10;
const DERIVE_RESET_TOKEN: u8 = 0x11;

/// A cookie as it travels: a bucket tag and a truncated MAC.
///
/// Only the low byte of the bucket number travels: the verifier knows the current bucket
/// and accepts only it and the previous one, so one byte tells them apart without
/// spending a whole timestamp on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cookie([u8; COOKIE_LEN]);

impl Cookie {
    /// The binary form, as carried in Retry, Initial and path-challenge packets.
    pub fn as_bytes(&self) -> &[u8; COOKIE_LEN] {
        &self.0
    }

    /// Parses the binary form; `None` if the length is wrong (a peer's mistake or a forgery).
    pub fn from_bytes(bytes: &[u8]) -> Option<Cookie> {
        <[u8; COOKIE_LEN]>::try_from(bytes).ok().map(Cookie)
    }

    /// The text form: lowercase hex, printable and safe as an IRC parameter.
    pub fn to_text(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(COOKIE_TEXT_LEN);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        s
    }

    /// Parses the text form, accepting either case (people retype these); `None` if it is
    /// not exactly [`COOKIE_TEXT_LEN`] hex digits.
    pub fn from_text(text: &str) -> Option<Cookie> {
        let t = text.as_bytes();
        if t.len() != COOKIE_TEXT_LEN {
            return None;
        }
        let mut out = [0u8; COOKIE_LEN];
        for (slot, pair) in out.iter_mut().zip(t.chunks_exact(2)) {
            let hi = hex_value(*pair.first()?)?;
            let lo = hex_value(*pair.get(1)?)?;
            *slot = (hi << 4) | lo;
        }
        Some(Cookie(out))
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie({})", self.to_text())
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The server's cookie maker and checker: a secret key, the clock's origin and the bucket
/// width. Cheap to clone (every reliable server session holds a copy, to validate the
/// new address when its client roams).
#[derive(Clone)]
pub struct Cookies {
    key: [u8; 32],
    epoch: Instant,
    bucket: Duration,
}

impl fmt::Debug for Cookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key: Debug output ends up in logs.
        f.debug_struct("Cookies")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl Cookies {
    /// A cookie maker with a 32-byte secret `key` (random at server start, or loaded from
    /// the data directory so that stateless resets keep working across restarts) and an
    /// `epoch`: time buckets count from it, because this crate never reads a clock.
    pub fn new(key: [u8; 32], epoch: Instant) -> Cookies {
        Cookies {
            key,
            epoch,
            bucket: DEFAULT_BUCKET,
        }
    }

    /// Changes the bucket width (at least one millisecond); a cookie lives between one
    /// and two widths.
    pub fn with_bucket(mut self, bucket: Duration) -> Cookies {
        self.bucket = bucket.max(Duration::from_millis(1));
        self
    }

    /// The bucket width in use.
    pub fn bucket(&self) -> Duration {
        self.bucket
    }

    fn bucket_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch).as_millis();
        let width = self.bucket.as_millis().max(1);
        u64::try_from(elapsed / width).unwrap_or(u64::MAX)
    }

    /// Makes a cookie for `peer`, valid for the current and the next bucket.
    pub fn issue(&self, now: Instant, purpose: Purpose, peer: SocketAddr, extra: &[u8]) -> Cookie {
        let bucket = self.bucket_at(now);
        self.make(purpose, peer, bucket, extra)
    }

    /// True if `cookie` was made by this key for this purpose, peer and extra bytes, in
    /// the current or the previous bucket. Runs in time independent of where a forged MAC
    /// first differs.
    pub fn verify(
        &self,
        now: Instant,
        purpose: Purpose,
        peer: SocketAddr,
        extra: &[u8],
        cookie: &Cookie,
    ) -> bool {
        let current = self.bucket_at(now);
        let mut ok = false;
        for bucket in [current, current.saturating_sub(1)] {
            let expected = self.make(purpose, peer, bucket, extra);
            ok |= constant_time_eq(&expected.0, &cookie.0);
        }
        ok
    }

    /// The plain-mode cookie for `peer`, as the text to put in `PING :<text>`.
    pub fn plain_token(&self, now: Instant, peer: SocketAddr) -> String {
        self.issue(now, Purpose::Plain, peer, &[]).to_text()
    }

    /// True if `text` (the parameter of the peer's `PONG`) is a valid plain-mode cookie
    /// for `peer`. Surrounding whitespace and a leading ':' are tolerated, because people
    /// type `PONG :token` and `PONG token` alike.
    pub fn verify_plain_token(&self, now: Instant, peer: SocketAddr, text: &str) -> bool {
        let t = text.trim();
        let t = t.strip_prefix(':').unwrap_or(t);
        Cookie::from_text(t).is_some_and(|c| self.verify(now, Purpose::Plain, peer, &[], &c))
    }

    /// The session id a server gives to the handshake (peer, client nonce).
    ///
    /// Derived, not drawn at random: a keyed PRF output is as unpredictable to anyone
    /// without the key as a random number, and deriving it makes a retransmitted Initial
    /// name the session it already created, so the server needs no table of handshakes
    /// in progress to stay idempotent.
    pub fn session_id(&self, peer: SocketAddr, nonce: u64) -> u64 {
        let h = self.mac(DERIVE_SESSION_ID, Some(peer), 0, &nonce.to_be_bytes());
        let b = h.as_bytes();
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[..8]);
        u64::from_be_bytes(id)
    }

    /// The stateless-reset token for a session id. Given to the client in Accept; a
    /// server that no longer knows the session (it restarted with the same key, or the
    /// session expired) can still prove, by recomputing it, that it is entitled to end it.
    pub fn reset_token(&self, session_id: u64) -> [u8; RESET_TOKEN_LEN] {
        let h = self.mac(DERIVE_RESET_TOKEN, None, 0, &session_id.to_be_bytes());
        let mut t = [0u8; RESET_TOKEN_LEN];
        t.copy_from_slice(&h.as_bytes()[..RESET_TOKEN_LEN]);
        t
    }

    fn make(&self, purpose: Purpose, peer: SocketAddr, bucket: u64, extra: &[u8]) -> Cookie {
        let h = self.mac(purpose as u8, Some(peer), bucket, extra);
        let mut c = [0u8; COOKIE_LEN];
        c[0] = bucket as u8; // only the low byte travels, by design
        c[1..].copy_from_slice(&h.as_bytes()[..MAC_LEN]);
        Cookie(c)
    }

    fn mac(&self, tag: u8, peer: Option<SocketAddr>, bucket: u64, extra: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&[tag]);
        match peer.map(canonical) {
            None => {
                h.update(&[0]);
            }
            Some(SocketAddr::V4(a)) => {
                h.update(&[4]);
                h.update(&a.ip().octets());
                h.update(&a.port().to_be_bytes());
            }
            Some(SocketAddr::V6(a)) => {
                h.update(&[6]);
                h.update(&a.ip().octets());
                h.update(&a.port().to_be_bytes());
            }
        }
        h.update(&bucket.to_be_bytes());
        h.update(&u64::try_from(extra.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(extra);
        h.finalize()
    }
}

/// The same peer may be seen as `1.2.3.4` on an IPv4 socket and `::ffff:1.2.3.4` on a
/// dual-stack one; a cookie must not depend on which socket the server happened to use.
fn canonical(addr: SocketAddr) -> SocketAddr {
    let ip: IpAddr = addr.ip().to_canonical();
    SocketAddr::new(ip, addr.port())
}

/// Compares without an early exit, so timing does not reveal how much of a guess is right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_cookie_is_valid_for_its_bucket_and_the_next_only() {
        let t0 = Instant::now();
        let c = Cookies::new([7; 32], t0);
        let peer = addr("192.0.2.1:5000");
        let made = t0 + Duration::from_secs(31); // bucket 1
        let k = c.issue(made, Purpose::Plain, peer, b"");
        assert!(c.verify(made, Purpose::Plain, peer, b"", &k));
        assert!(c.verify(t0 + Duration::from_secs(59), Purpose::Plain, peer, b"", &k));
        assert!(c.verify(t0 + Duration::from_secs(89), Purpose::Plain, peer, b"", &k));
        assert!(!c.verify(t0 + Duration::from_secs(90), Purpose::Plain, peer, b"", &k));
    }

    #[test]
    fn a_cookie_is_bound_to_address_purpose_extra_and_key() {
        let t0 = Instant::now();
        let c = Cookies::new([1; 32], t0);
        let peer = addr("192.0.2.1:5000");
        let k = c.issue(t0, Purpose::Handshake, peer, b"nonce");
        assert!(c.verify(t0, Purpose::Handshake, peer, b"nonce", &k));
        assert!(!c.verify(t0, Purpose::Handshake, addr("192.0.2.1:5001"), b"nonce", &k));
        assert!(!c.verify(t0, Purpose::Handshake, addr("192.0.2.2:5000"), b"nonce", &k));
        assert!(!c.verify(t0, Purpose::Path, peer, b"nonce", &k));
        assert!(!c.verify(t0, Purpose::Handshake, peer, b"other", &k));
        let other_key = Cookies::new([2; 32], t0);
        assert!(!other_key.verify(t0, Purpose::Handshake, peer, b"nonce", &k));
    }

    #[test]
    fn mapped_ipv4_and_ipv4_are_the_same_peer() {
        let t0 = Instant::now();
        let c = Cookies::new([3; 32], t0);
        let k = c.issue(t0, Purpose::Plain, addr("192.0.2.9:6667"), b"");
        assert!(c.verify(t0, Purpose::Plain, addr("[::ffff:192.0.2.9]:6667"), b"", &k));
    }

    #[test]
    fn the_text_form_round_trips_and_rejects_junk() {
        let t0 = Instant::now();
        let c = Cookies::new([9; 32], t0);
        let peer = addr("[2001:db8::1]:4000");
        let text = c.plain_token(t0, peer);
        assert_eq!(text.len(), COOKIE_TEXT_LEN);
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(c.verify_plain_token(t0, peer, &text));
        assert!(c.verify_plain_token(t0, peer, &format!(" :{}\r\n", text.to_uppercase())));
        assert!(!c.verify_plain_token(t0, peer, &text[1..]));
        assert!(!c.verify_plain_token(t0, peer, "zz"));
        assert!(!c.verify_plain_token(t0, peer, &"g".repeat(COOKIE_TEXT_LEN)));
        assert!(!c.verify_plain_token(t0, peer, "é"));
    }

    #[test]
    fn session_ids_and_reset_tokens_are_deterministic_and_keyed() {
        let t0 = Instant::now();
        let a = Cookies::new([4; 32], t0);
        let b = Cookies::new([5; 32], t0);
        let peer = addr("198.51.100.7:9999");
        assert_eq!(a.session_id(peer, 1), a.session_id(peer, 1));
        assert_ne!(a.session_id(peer, 1), a.session_id(peer, 2));
        assert_ne!(a.session_id(peer, 1), b.session_id(peer, 1));
        assert_eq!(a.reset_token(42), a.reset_token(42));
        assert_ne!(a.reset_token(42), b.reset_token(42));
    }
}
