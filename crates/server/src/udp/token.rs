//! Plain mode's `PING` token: a stateless proof of address that also carries the
//! registration a client sent before it proved its address.
//!
//! A person (or a five-line script) sends `NICK` and `USER` once, reads the `PING`,
//! answers it, and expects to be registered. The server may keep nothing for an
//! address that has not answered yet, so whatever it must remember travels in the
//! token instead, and the MAC makes it tamper-proof:
//!
//! ```text
//! token   = base64url(mac || payload)                      (no padding)
//! mac     = bytes 1..9 of Cookies::issue(now, Purpose::Plain, peer, extra = payload)
//! payload = field*,  field = 1 | len | nick
//!                          | 2 | len | user | len | real name
//!                          | 3 | len | password                 (len: one byte)
//! ```
//!
//! The MAC is the cookie's (keyed BLAKE3 over purpose, address, 30-second bucket and
//! the payload) cut to 64 bits: forging one is hopeless within the token's life of 30
//! to 60 seconds, and every byte saved lets a smaller datagram carry a nick within the
//! three-times reply rule. The cookie's bucket byte does not travel: the verifier tries
//! the current bucket and the previous one. Base64url keeps the token one IRC word
//! with no `:`, so `PONG :<token>`, `PONG <token>` and a script's `split(':')` all work.

use std::net::SocketAddr;
use std::time::Instant;

use natter_proto::Message;
use natter_udp::{Cookies, Purpose};

/// Bytes of MAC in a token.
pub(crate) const MAC_BYTES: usize = 8;

/// The most payload a token carries, so that `PING :<token>` stays a short IRC line
/// (about 420 characters at most).
const MAX_PAYLOAD: usize = 300;

const FIELD_NICK: u8 = 1;
const FIELD_USER: u8 = 2;
const FIELD_PASS: u8 = 3;

/// The registration lines a client sent before proving its address, as the token
/// carries them. Each part is a single IRC parameter as the client gave it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Carried {
    pub(crate) nick: Option<String>,
    /// User name and real name.
    pub(crate) user: Option<(String, String)>,
    pub(crate) pass: Option<String>,
}

impl Carried {
    /// What a datagram's lines say about registration: the last `NICK` (a later one
    /// renames), the first `USER` and the first `PASS` (as a server takes them).
    pub(crate) fn from_messages<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Carried {
        let mut carried = Carried::default();
        for m in messages {
            match m.command.as_str() {
                "NICK" => {
                    if let Some(nick) = m.param(0).filter(|n| !n.is_empty()) {
                        carried.nick = Some(nick.to_owned());
                    }
                }
                "USER" if carried.user.is_none() => {
                    if let Some(user) = m.param(0).filter(|u| !u.is_empty()) {
                        let real = m.params.get(3).unwrap_or(user);
                        carried.user = Some((user.to_owned(), real.to_owned()));
                    }
                }
                "PASS" if carried.pass.is_none() => {
                    if let Some(pass) = m.param(0).filter(|p| !p.is_empty()) {
                        carried.pass = Some(pass.to_owned());
                    }
                }
                _ => {}
            }
        }
        carried
    }

    /// How many parts are carried.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.nick.is_some())
            + usize::from(self.user.is_some())
            + usize::from(self.pass.is_some())
    }

    /// The first `keep` parts in order of importance (nick, user, password): what
    /// still fits when the reply to a small datagram cannot hold them all. A nick is
    /// worth most, since a user line can be made up from it.
    pub(crate) fn truncated(&self, keep: usize) -> Carried {
        let mut out = Carried::default();
        let mut left = keep;
        let mut take = |present: bool| {
            let yes = present && left > 0;
            if yes {
                left -= 1;
            }
            yes
        };
        if take(self.nick.is_some()) {
            out.nick.clone_from(&self.nick);
        }
        if take(self.user.is_some()) {
            out.user.clone_from(&self.user);
        }
        if take(self.pass.is_some()) {
            out.pass.clone_from(&self.pass);
        }
        out
    }

    /// The lines to replay, in the order a server expects them.
    pub(crate) fn messages(&self) -> Vec<Message> {
        let mut out = Vec::with_capacity(3);
        if let Some(pass) = &self.pass {
            out.push(Message::new("PASS", &[pass]));
        }
        if let Some(nick) = &self.nick {
            out.push(Message::new("NICK", &[nick]));
        }
        if let Some((user, real)) = &self.user {
            out.push(Message::new("USER", &[user, "0", "*", real]));
        }
        out
    }

    /// The payload encoding. A part too long for its length byte, or one that would
    /// take the payload past [`MAX_PAYLOAD`], is left out (the client then sends it
    /// again after its PONG, as with any line the server could not carry).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |kind: u8, parts: &[&str]| {
            let size = 1 + parts.iter().map(|p| 1 + p.len()).sum::<usize>();
            if parts.iter().any(|p| p.len() > usize::from(u8::MAX))
                || out.len() + size > MAX_PAYLOAD
            {
                return;
            }
            out.push(kind);
            for p in parts {
                // Checked above: every part fits its length byte.
                out.push(u8::try_from(p.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(p.as_bytes());
            }
        };
        if let Some(nick) = &self.nick {
            push(FIELD_NICK, &[nick]);
        }
        if let Some((user, real)) = &self.user {
            push(FIELD_USER, &[user, real]);
        }
        if let Some(pass) = &self.pass {
            push(FIELD_PASS, &[pass]);
        }
        out
    }

    /// Parses a payload; `None` if it is not exactly a sequence of known fields, each
    /// at most once. (Only this server makes payloads, and the MAC was checked first,
    /// but a parser on an input path trusts nothing.)
    fn decode(mut bytes: &[u8]) -> Option<Carried> {
        fn part(bytes: &mut &[u8]) -> Option<String> {
            let (&len, rest) = bytes.split_first()?;
            let len = usize::from(len);
            let text = rest.get(..len)?;
            *bytes = rest.get(len..)?;
            String::from_utf8(text.to_vec()).ok()
        }
        let mut carried = Carried::default();
        while let Some((&kind, rest)) = bytes.split_first() {
            bytes = rest;
            match kind {
                FIELD_NICK if carried.nick.is_none() => carried.nick = Some(part(&mut bytes)?),
                FIELD_USER if carried.user.is_none() => {
                    let user = part(&mut bytes)?;
                    let real = part(&mut bytes)?;
                    carried.user = Some((user, real));
                }
                FIELD_PASS if carried.pass.is_none() => carried.pass = Some(part(&mut bytes)?),
                _ => return None,
            }
        }
        Some(carried)
    }
}

/// A token for `peer` carrying `carried`, valid for 30 to 60 seconds.
pub(crate) fn issue(
    cookies: &Cookies,
    now: Instant,
    peer: SocketAddr,
    carried: &Carried,
) -> String {
    let payload = carried.encode();
    let mut raw = Vec::with_capacity(MAC_BYTES + payload.len());
    raw.extend_from_slice(&mac(cookies, now, peer, &payload));
    raw.extend_from_slice(&payload);
    base64url_encode(&raw)
}

/// The registration a token carries, if `text` is a token this server made for `peer`
/// within the last 30 to 60 seconds. A leading `:` and surrounding spaces are allowed.
pub(crate) fn verify(
    cookies: &Cookies,
    now: Instant,
    peer: SocketAddr,
    text: &str,
) -> Option<Carried> {
    let text = text.trim();
    let text = text.strip_prefix(':').unwrap_or(text);
    // The longest token this server makes; anything longer is not worth decoding.
    if text.len() > (MAC_BYTES + MAX_PAYLOAD).div_ceil(3) * 4 {
        return None;
    }
    let raw = base64url_decode(text)?;
    let (given, payload) = raw.split_at_checked(MAC_BYTES)?;
    let previous = now.checked_sub(cookies.bucket()).unwrap_or(now);
    let mut ok = false;
    for at in [now, previous] {
        ok |= constant_time_eq(&mac(cookies, at, peer, payload), given);
    }
    if !ok {
        return None;
    }
    Carried::decode(payload)
}

fn mac(cookies: &Cookies, at: Instant, peer: SocketAddr, payload: &[u8]) -> [u8; MAC_BYTES] {
    let cookie = cookies.issue(at, Purpose::Plain, peer, payload);
    let mut out = [0u8; MAC_BYTES];
    // Byte 0 of a cookie names its bucket; the MAC follows.
    out.copy_from_slice(&cookie.as_bytes()[1..=MAC_BYTES]);
    out
}

/// Compares without an early exit, so timing does not reveal how much of a guess is
/// right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 base64url, without padding.
fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// The inverse of [`base64url_encode`]; `None` for any character outside the alphabet
/// or a length no encoding has.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }
    let text = text.as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(bytes.get(1..chunk.len())?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cookies(t0: Instant) -> Cookies {
        Cookies::new([9; 32], t0)
    }

    fn peer() -> SocketAddr {
        "192.0.2.7:40000".parse().expect("address")
    }

    fn alice() -> Carried {
        Carried {
            nick: Some("alice".into()),
            user: Some(("al".into(), "Alice Liddell".into())),
            pass: Some("s3cret".into()),
        }
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let text = base64url_encode(&bytes);
            assert!(!text.contains(':') && !text.contains(' ') && !text.contains('='));
            assert_eq!(base64url_decode(&text), Some(bytes), "{text}");
        }
        assert_eq!(base64url_decode("a"), None);
        assert_eq!(base64url_decode("ab!d"), None);
    }

    #[test]
    fn a_token_carries_the_registration_back_to_the_same_address() {
        let t0 = Instant::now();
        let c = cookies(t0);
        let token = issue(&c, t0, peer(), &alice());
        assert_eq!(verify(&c, t0, peer(), &token), Some(alice()));
        assert_eq!(
            verify(&c, t0, peer(), &format!(" :{token}\r\n")),
            Some(alice())
        );
        let bare = issue(&c, t0, peer(), &Carried::default());
        assert_eq!(bare.len(), 11, "8 bytes of MAC");
        assert_eq!(verify(&c, t0, peer(), &bare), Some(Carried::default()));
    }

    #[test]
    fn a_token_is_refused_from_another_address_later_or_altered() {
        let t0 = Instant::now();
        let c = cookies(t0);
        let token = issue(&c, t0, peer(), &alice());
        let other: SocketAddr = "192.0.2.7:40001".parse().expect("address");
        assert_eq!(verify(&c, t0, other, &token), None);
        assert!(verify(&c, t0 + Duration::from_secs(59), peer(), &token).is_some());
        assert_eq!(
            verify(&c, t0 + Duration::from_secs(60), peer(), &token),
            None
        );
        // Change one character anywhere: the MAC or the payload no longer match.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).expect("ascii");
            assert_eq!(verify(&c, t0, peer(), &altered), None, "{altered}");
        }
        assert_eq!(verify(&c, t0, peer(), ""), None);
        assert_eq!(verify(&c, t0, peer(), "é"), None);
        assert_eq!(verify(&c, t0, peer(), &"A".repeat(5000)), None);
        let forged = base64url_encode(&[0u8; MAC_BYTES + 3]);
        assert_eq!(verify(&c, t0, peer(), &forged), None);
    }

    #[test]
    fn truncation_keeps_the_nick_first() {
        let a = alice();
        assert_eq!(a.len(), 3);
        assert_eq!(a.truncated(1).nick.as_deref(), Some("alice"));
        assert_eq!(a.truncated(1).len(), 1);
        assert_eq!(a.truncated(2).pass, None);
        assert_eq!(a.truncated(0), Carried::default());
    }

    #[test]
    fn parts_too_long_for_a_token_are_left_out() {
        let t0 = Instant::now();
        let c = cookies(t0);
        let long = Carried {
            nick: Some("n".repeat(300)),
            user: Some(("u".into(), "r".repeat(200))),
            pass: Some("p".repeat(200)),
        };
        let token = issue(&c, t0, peer(), &long);
        let back = verify(&c, t0, peer(), &token).expect("valid");
        assert_eq!(back.nick, None);
        assert!(back.user.is_some());
        assert_eq!(back.pass, None, "past the payload limit");
    }

    #[test]
    fn carried_lines_come_from_the_datagram_and_replay_in_server_order() {
        let lines = [
            "NICK a",
            "USER u 0 * :Real Name",
            "NICK b",
            "PASS pw",
            "JOIN #x",
        ];
        let messages: Vec<Message> = lines
            .iter()
            .map(|l| Message::parse(l.as_bytes()).expect("parses"))
            .collect();
        let carried = Carried::from_messages(&messages);
        assert_eq!(carried.nick.as_deref(), Some("b"));
        assert_eq!(carried.user, Some(("u".to_owned(), "Real Name".to_owned())));
        let replay: Vec<String> = carried
            .messages()
            .iter()
            .map(|m| String::from_utf8(m.to_line()).expect("utf-8"))
            .collect();
        assert_eq!(
            replay,
            ["PASS pw\r\n", "NICK b\r\n", "USER u 0 * :Real Name\r\n"]
        );
    }
}
