//! The anti-amplification rule and packing lines into datagrams.
//!
//! A UDP source address can be forged. If a small datagram could make the server send a
//! large answer, anyone could aim the server at a victim by forging the victim's address.
//! So, until a peer has proved its address (by echoing a cookie), the server answers each
//! datagram with at most one datagram and never more than three times the bytes it got
//! (QUIC's rule, RFC 9000 §8). Plain mode keeps no state before the cookie comes back, so
//! there the rule is applied per datagram ([`reply_limit`], [`pack_reply`]); reliable
//! mode's path validation keeps a running [`Budget`] for a roaming client's new address.

use crate::wire::MAX_DATAGRAM_SIZE;

/// The most an unvalidated peer may be sent, as a multiple of what it sent.
pub const AMPLIFICATION_FACTOR: usize = 3;

/// The largest reply allowed to one datagram of `received` bytes from an unvalidated
/// peer: three times its size, and never more than one full datagram.
pub fn reply_limit(received: usize) -> usize {
    received
        .saturating_mul(AMPLIFICATION_FACTOR)
        .min(MAX_DATAGRAM_SIZE)
}

/// Running anti-amplification accounting for one unvalidated address: what it sent us
/// and what we sent it. Small and `Copy`, for servers that do keep a little state per
/// address (reliable mode does, for a session's candidate new address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    received_bytes: u64,
    received_datagrams: u64,
    sent_bytes: u64,
    sent_datagrams: u64,
}

impl Budget {
    /// A budget with nothing received: nothing may be sent yet.
    pub fn new() -> Budget {
        Budget::default()
    }

    /// Records a datagram of `len` bytes received from the address.
    pub fn on_received(&mut self, len: usize) {
        self.received_bytes = self.received_bytes.saturating_add(len as u64);
        self.received_datagrams = self.received_datagrams.saturating_add(1);
    }

    /// How many bytes one more datagram may hold right now: zero once as many datagrams
    /// have been sent as received, else what is left of three times the bytes received
    /// (capped at one full datagram).
    pub fn allowance(&self) -> usize {
        if self.sent_datagrams >= self.received_datagrams {
            return 0;
        }
        let limit = self
            .received_bytes
            .saturating_mul(AMPLIFICATION_FACTOR as u64);
        let left = limit.saturating_sub(self.sent_bytes);
        usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(MAX_DATAGRAM_SIZE)
    }

    /// True if a datagram of `len` bytes may be sent now.
    pub fn can_send(&self, len: usize) -> bool {
        len <= self.allowance()
    }

    /// Records a datagram of `len` bytes sent to the address.
    pub fn on_sent(&mut self, len: usize) {
        self.sent_bytes = self.sent_bytes.saturating_add(len as u64);
        self.sent_datagrams = self.sent_datagrams.saturating_add(1);
    }

    /// Bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// Bytes sent so far.
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }
}

/// Packs lines into as few datagrams of at most `max` bytes as possible, cutting only at
/// line boundaries, keeping their order.
///
/// Each line is copied as given: include its `"\r\n"` (plain mode sends IRC lines
/// verbatim, so a receiver splits a datagram on line ends). A line longer than `max`
/// cannot be cut at a boundary, so it travels alone in its own, larger datagram; callers
/// that must not exceed `max` keep their lines shorter (an IRC line without tags is at
/// most 512 bytes). Empty lines are skipped. Used by plain mode for validated peers;
/// reliable mode packs its line stream itself (see the session).
pub fn pack_lines<I, L>(lines: I, max: usize) -> Vec<Vec<u8>>
where
    I: IntoIterator<Item = L>,
    L: AsRef<[u8]>,
{
    let mut lines = lines.into_iter().peekable();
    let mut out = Vec::new();
    loop {
        let mut datagram = Vec::new();
        if !pack_next(&mut lines, max, &mut datagram) {
            return out;
        }
        out.push(datagram);
    }
}

/// Appends the next datagram of [`pack_lines`] to `out`, taking its lines from
/// `lines`; `false` (and nothing appended) when no line is left. For a sender that
/// builds its datagrams in a buffer of its own rather than one `Vec` each.
pub fn pack_next<I, L>(lines: &mut std::iter::Peekable<I>, max: usize, out: &mut Vec<u8>) -> bool
where
    I: Iterator<Item = L>,
    L: AsRef<[u8]>,
{
    let max = max.max(1);
    let start = out.len();
    while let Some(line) = lines.peek() {
        let line = line.as_ref();
        let used = out.len() - start;
        if used > 0 && used + line.len() > max {
            break;
        }
        out.extend_from_slice(line);
        lines.next();
        if out.len() - start >= max {
            break;
        }
    }
    out.len() > start
}

/// One reply datagram to an unvalidated peer, built by [`pack_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The datagram to send (empty: send nothing).
    pub datagram: Vec<u8>,
    /// Lines that did not fit and were not sent.
    pub dropped: usize,
}

/// Packs the reply to one datagram of `received` bytes from an unvalidated peer: as many
/// whole lines, in order, as fit in [`reply_limit`]`(received)`; the first line that does
/// not fit and every line after it are dropped (sending a later line without an earlier
/// one would change its meaning). The cookie `PING` should therefore come first.
pub fn pack_reply<I, L>(lines: I, received: usize) -> Reply
where
    I: IntoIterator<Item = L>,
    L: AsRef<[u8]>,
{
    let limit = reply_limit(received);
    let mut datagram = Vec::new();
    let mut dropped = 0;
    for line in lines {
        let line = line.as_ref();
        if dropped == 0 && datagram.len() + line.len() <= limit {
            datagram.extend_from_slice(line);
        } else {
            dropped += 1;
        }
    }
    Reply { datagram, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_limit_is_three_times_capped_at_one_datagram() {
        assert_eq!(reply_limit(0), 0);
        assert_eq!(reply_limit(10), 30);
        assert_eq!(reply_limit(400), 1200);
        assert_eq!(reply_limit(usize::MAX), 1200);
    }

    #[test]
    fn budget_allows_one_datagram_per_datagram_and_three_times_the_bytes() {
        let mut b = Budget::new();
        assert_eq!(b.allowance(), 0);
        b.on_received(20);
        assert!(b.can_send(60));
        assert!(!b.can_send(61));
        b.on_sent(30);
        assert_eq!(b.allowance(), 0, "one datagram per datagram received");
        b.on_received(20);
        assert_eq!(b.allowance(), 90);
        b.on_sent(90);
        b.on_received(1);
        assert_eq!(b.allowance(), 3);
    }

    #[test]
    fn pack_lines_cuts_only_at_line_boundaries() {
        let lines = [
            "a".repeat(500),
            "b".repeat(500),
            "c".repeat(300),
            "d".repeat(10),
        ];
        let d = pack_lines(&lines, 1200);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].len(), 1000);
        assert_eq!(d[1].len(), 310);
        assert_eq!(d.concat(), lines.concat().into_bytes());
    }

    #[test]
    fn packing_skips_empty_lines_and_ends_when_none_is_left() {
        let lines = ["", "ab", "", "", "cd", ""];
        assert_eq!(pack_lines(lines, 3), vec![b"ab".to_vec(), b"cd".to_vec()]);
        let mut rest = ["", ""].into_iter().peekable();
        let mut out = b"kept".to_vec();
        assert!(!pack_next(&mut rest, 3, &mut out));
        assert_eq!(out, b"kept");
    }

    #[test]
    fn pack_lines_sends_an_oversized_line_alone() {
        let lines = ["a".repeat(10), "b".repeat(2000), "c".repeat(10)];
        let d = pack_lines(&lines, 1200);
        assert_eq!(
            d.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 2000, 10]
        );
    }

    #[test]
    fn pack_reply_keeps_order_and_the_limit() {
        let lines = ["x".repeat(40), "y".repeat(40), "z".repeat(20)];
        let r = pack_reply(&lines, 30); // limit 90
        assert_eq!(r.datagram.len(), 80);
        assert_eq!(r.dropped, 1);
        let r = pack_reply(&lines, 20); // limit 60: the second line does not fit, nor after it
        assert_eq!(r.datagram.len(), 40);
        assert_eq!(r.dropped, 2);
        let r = pack_reply(&lines, 0);
        assert!(r.datagram.is_empty());
        assert_eq!(r.dropped, 3);
    }
}
