//! The incoming line stream: reassembly by offset, in-order exactly-once line delivery,
//! and the flow-control window.
//!
//! Packets arrive lost, late, twice and out of order; stream offsets make all of that
//! harmless: a byte is stored once at its offset, bytes already held are ignored, and
//! lines are cut from the contiguous prefix only. The window (how far past the consumed
//! point the peer may send) bounds memory when the application reads slowly.
//!
//! The bytes live in one contiguous buffer: a chunk is stored with one copy, and a
//! line is copied out into a `Bytes` of its own. Lines could instead be split off the
//! buffer and share its allocation, but then every line still held (in a channel, say)
//! pins its block, the buffer can never reuse its space, and a busy receiver allocates
//! and faults in fresh blocks all the time; a small copy per line is cheaper than that,
//! and the buffer is reused in place.

use bytes::{Buf, Bytes, BytesMut};

use crate::ranges::RangeSet;
use crate::send_stream::LINE_PREFIX_LEN;

/// Capacity an idle session's buffer keeps; a larger one is given back, so that a
/// session that once had a burst does not keep its peak. It is given back only once
/// the session's timers find the buffer empty ([`RecvStream::release_idle`]), not each
/// time it empties: a busy receiver empties it after nearly every burst, and giving
/// it back then meant allocating and faulting in a fresh one for the next. While the
/// buffer is in use, the space of the lines read is reused in place.
const KEEP_WHEN_EMPTY: usize = 128 * 1024;

/// Most the buffer grows to in one step (a window configured larger than this is
/// reached by doubling from there).
const MAX_GROWTH_AT_ONCE: usize = 1024 * 1024;

/// The peer sent beyond the flow-control window it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowControlViolation;

/// Receive-side stream state.
#[derive(Debug)]
pub(crate) struct RecvStream {
    /// Offset consumed by the application: `buf[0]` is the byte at this offset.
    base: u64,
    /// Bytes from `base` to the highest received offset (holes are zero until filled).
    buf: BytesMut,
    /// Which offsets have been received. Below `base` it is trimmed once per chunk
    /// received, not per line read: what lingers there is one range reaching up to
    /// the contiguous end, which changes no answer.
    filled: RangeSet,
    /// How far past `base` the peer may send.
    window: u64,
    /// Everything below this has been received: kept as chunks arrive, since it is
    /// asked for every line read.
    contiguous: u64,
}

impl RecvStream {
    pub(crate) fn new(window: u64) -> RecvStream {
        RecvStream {
            base: 0,
            buf: BytesMut::new(),
            filled: RangeSet::new(),
            window,
            contiguous: 0,
        }
    }

    /// The flow-control limit to advertise: the peer may send below this offset.
    pub(crate) fn max_offset(&self) -> u64 {
        self.base + self.window
    }

    /// Everything below this offset has been received (the cumulative ack).
    pub(crate) fn contiguous_end(&self) -> u64 {
        self.contiguous
    }

    /// The window size.
    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    /// Stores a received chunk. Returns how many new bytes it added (0 for a duplicate),
    /// or an error if it reaches beyond the window (the chunk is then ignored whole).
    pub(crate) fn on_data(
        &mut self,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, FlowControlViolation> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FlowControlViolation)?;
        if end > self.max_offset() {
            return Err(FlowControlViolation);
        }
        let start = offset.max(self.base);
        if start >= end {
            return Ok(0);
        }
        let mut added = 0;
        // Bytes past everything held (the usual case: in order) are one gap: no need
        // to look for the gaps.
        let past_end = start >= self.base + self.buf.len() as u64;
        let searched = (!past_end).then(|| self.filled.gaps_within(start..end));
        let gaps = searched
            .into_iter()
            .flatten()
            .chain(past_end.then_some(start..end));
        for gap in gaps {
            let src_from = usize::try_from(gap.start - offset).unwrap_or(usize::MAX);
            let src_to = usize::try_from(gap.end - offset).unwrap_or(usize::MAX);
            let dst_from = usize::try_from(gap.start - self.base).unwrap_or(usize::MAX);
            let Some(src) = data.get(src_from..src_to) else {
                continue;
            };
            if dst_from >= self.buf.len() {
                // Past the end (the usual case: bytes in order): append, with zeros
                // for a hole before it, if any, until its bytes come.
                self.make_room(dst_from + src.len());
                self.buf.resize(dst_from, 0);
                self.buf.extend_from_slice(src);
            } else if let Some(dst) = self.buf.get_mut(dst_from..dst_from + src.len()) {
                // A hole filled: the gap ends where bytes already received begin.
                dst.copy_from_slice(src);
            } else {
                continue;
            }
            added += src.len();
        }
        self.filled.remove_below(self.base);
        self.filled.insert(start..end);
        if let Some(r) = self.filled.first().filter(|r| r.start <= self.base) {
            self.contiguous = r.end;
        }
        Ok(added)
    }

    /// Up to `max` complete lines, in order, each exactly once, appended to `out`;
    /// returns how many. They are copied out together, into one allocation that
    /// each line is a slice of.
    #[cfg(test)]
    pub(crate) fn poll_lines(&mut self, max: usize, out: &mut Vec<Bytes>) -> usize {
        self.poll_lines_with(max, out, &mut |_| false)
    }

    /// As [`RecvStream::poll_lines`], but each line is first shown to `take`, where it
    /// lies in the buffer; a line `take` says it took (true) is consumed without being
    /// copied, and only the others are appended to `out`. Returns how many lines were
    /// consumed in all.
    pub(crate) fn poll_lines_with(
        &mut self,
        max: usize,
        out: &mut Vec<Bytes>,
        take: &mut dyn FnMut(&[u8]) -> bool,
    ) -> usize {
        let avail = usize::try_from(self.contiguous_end() - self.base).unwrap_or(usize::MAX);
        let avail = avail.min(self.buf.len());
        // Where each line not taken lies in the buffer, as (start, end) past its prefix.
        let mut kept = Vec::new();
        let mut lines = 0;
        let mut at = 0;
        while lines < max && at + LINE_PREFIX_LEN <= avail {
            let len = match self.buf.get(at..at + LINE_PREFIX_LEN) {
                Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
                _ => break,
            };
            let (from, to) = (at + LINE_PREFIX_LEN, at + LINE_PREFIX_LEN + len);
            if to > avail {
                break;
            }
            if !take(self.buf.get(from..to).unwrap_or_default()) {
                kept.push((from, to));
            }
            lines += 1;
            at = to;
        }
        if lines == 0 {
            return 0;
        }
        if kept.len() == lines {
            let block = Bytes::copy_from_slice(self.buf.get(..at).unwrap_or_default());
            out.extend(kept.iter().map(|&(from, to)| block.slice(from..to)));
        } else if !kept.is_empty() {
            let mut block = BytesMut::with_capacity(kept.iter().map(|(f, t)| t - f).sum());
            for &(from, to) in &kept {
                block.extend_from_slice(self.buf.get(from..to).unwrap_or_default());
            }
            let block = block.freeze();
            let mut start = 0;
            for &(from, to) in &kept {
                out.push(block.slice(start..start + (to - from)));
                start += to - from;
            }
        }
        self.consumed(at);
        lines
    }

    /// Makes the buffer hold at least `len` bytes. It never needs more than the window
    /// (the peer may not send past it), so once one datagram's worth is not enough it
    /// grows to the window at once: growing by doubling instead copied the buffer at
    /// every step into fresh memory, about twice the window in all, and a receiver
    /// that fell behind under a fan-out spent an eighth of its time faulting those
    /// pages in.
    fn make_room(&mut self, len: usize) {
        if len > self.buf.capacity() {
            let window = usize::try_from(self.window).unwrap_or(usize::MAX);
            let want = if self.buf.capacity() == 0 {
                len
            } else {
                len.max(window.min(MAX_GROWTH_AT_ONCE))
            };
            self.buf.reserve(want.saturating_sub(self.buf.len()));
        }
    }

    /// The first `n` bytes of the buffer were read.
    fn consumed(&mut self, n: usize) {
        self.buf.advance(n);
        self.base += n as u64;
    }

    /// Gives back a large buffer that holds nothing: called when the session's timers
    /// fire, so that an idle session keeps no large buffer.
    pub(crate) fn release_idle(&mut self) {
        if !self.buf.is_empty() {
            return;
        }
        // Its capacity counts from where reading stopped: asking for one byte more
        // makes it take back the space of what was read, if any (no copy: there is
        // nothing to move), so that the capacity is the whole allocation.
        let _ = self.buf.try_reclaim(self.buf.capacity() + 1);
        if self.buf.capacity() > KEEP_WHEN_EMPTY {
            self.buf = BytesMut::new();
        }
    }

    /// The next complete line, in order, exactly once.
    pub(crate) fn poll_line(&mut self) -> Option<Bytes> {
        let avail = usize::try_from(self.contiguous_end() - self.base).unwrap_or(usize::MAX);
        let avail = avail.min(self.buf.len());
        if avail < LINE_PREFIX_LEN {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([*self.buf.first()?, *self.buf.get(1)?]));
        if avail < LINE_PREFIX_LEN + len {
            return None;
        }
        let line = Bytes::copy_from_slice(self.buf.get(LINE_PREFIX_LEN..LINE_PREFIX_LEN + len)?);
        self.consumed(LINE_PREFIX_LEN + len);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(lines: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in lines {
            v.extend_from_slice(&(l.len() as u16).to_be_bytes());
            v.extend_from_slice(l);
        }
        v
    }

    #[test]
    fn out_of_order_and_duplicate_chunks_deliver_each_line_once_in_order() {
        let bytes = framed(&[b"one", b"two", b"three"]);
        let mut r = RecvStream::new(1000);
        assert_eq!(r.on_data(10, &bytes[10..]).unwrap(), bytes.len() - 10);
        assert!(r.poll_line().is_none());
        assert_eq!(r.on_data(3, &bytes[3..12]).unwrap(), 7);
        assert_eq!(r.on_data(0, &bytes[0..4]).unwrap(), 3);
        assert_eq!(r.contiguous_end(), bytes.len() as u64);
        assert_eq!(r.poll_line().unwrap(), &b"one"[..]);
        assert_eq!(
            r.on_data(0, &bytes).unwrap(),
            0,
            "duplicate after consumption"
        );
        assert_eq!(r.poll_line().unwrap(), &b"two"[..]);
        assert_eq!(r.poll_line().unwrap(), &b"three"[..]);
        assert!(r.poll_line().is_none());
    }

    #[test]
    fn lines_taken_in_bulk_are_the_same_lines_in_the_same_order() {
        let bytes = framed(&[b"one", b"", b"three", b"four"]);
        let mut r = RecvStream::new(1000);
        r.on_data(0, &bytes[..bytes.len() - 2]).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.poll_lines(2, &mut out), 2);
        assert_eq!(r.poll_lines(10, &mut out), 1, "the last line is incomplete");
        assert_eq!(out, vec![&b"one"[..], &b""[..], &b"three"[..]]);
        r.on_data(bytes.len() as u64 - 2, &bytes[bytes.len() - 2..])
            .unwrap();
        assert_eq!(r.poll_line().unwrap(), &b"four"[..]);
        assert_eq!(r.poll_lines(10, &mut out), 0);
    }

    #[test]
    fn lines_taken_where_they_lie_are_not_handed_out_and_the_rest_keep_their_order() {
        let bytes = framed(&[
            b"PRIVMSG 1",
            b"PING a",
            b"PRIVMSG 2",
            b"PING b",
            b"PRIVMSG 3",
        ]);
        let mut r = RecvStream::new(1000);
        r.on_data(0, &bytes).unwrap();
        let mut seen = Vec::new();
        let mut take = |line: &[u8]| {
            seen.push(line.to_vec());
            line.starts_with(b"PRIVMSG")
        };
        let mut out = Vec::new();
        assert_eq!(r.poll_lines_with(4, &mut out, &mut take), 4);
        assert_eq!(out, vec![&b"PING a"[..], &b"PING b"[..]]);
        assert_eq!(r.poll_lines_with(10, &mut out, &mut take), 1);
        assert_eq!(out.len(), 2, "the last line was taken");
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[2], b"PRIVMSG 2");
        assert_eq!(
            r.max_offset(),
            1000 + bytes.len() as u64,
            "all of it consumed"
        );
        // A line taken by nobody still comes out whole.
        let more = framed(&[b"after"]);
        r.on_data(bytes.len() as u64, &more).unwrap();
        assert_eq!(r.poll_lines_with(10, &mut out, &mut |_| false), 1);
        assert_eq!(out[2], &b"after"[..]);
    }

    #[test]
    fn data_already_held_is_never_overwritten() {
        let mut r = RecvStream::new(1000);
        r.on_data(0, &framed(&[b"abc"])).unwrap();
        r.on_data(2, b"XYZ").unwrap();
        assert_eq!(r.poll_line().unwrap(), &b"abc"[..]);
    }

    #[test]
    fn a_receiver_that_falls_behind_grows_its_buffer_once_and_loses_nothing() {
        let window = 64 * 1024;
        let lines: Vec<Vec<u8>> = (0..500u32)
            .map(|i| format!("{i:0>98}").into_bytes())
            .collect();
        let stream = framed(&lines.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert!(stream.len() <= window);
        let mut r = RecvStream::new(window as u64);
        let mut chunks = stream.chunks(1200).zip((0u64..).step_by(1200));
        for (chunk, at) in chunks.by_ref().take(2) {
            r.on_data(at, chunk).unwrap();
        }
        // Nothing was read: the second datagram already made room for the window.
        assert!(r.buf.capacity() >= window, "{}", r.buf.capacity());
        let block = r.buf.as_ptr();
        for (chunk, at) in chunks {
            r.on_data(at, chunk).unwrap();
        }
        assert_eq!(r.buf.as_ptr(), block, "no reallocation up to the window");
        let mut out = Vec::new();
        assert_eq!(r.poll_lines(1000, &mut out), lines.len());
        assert!(out.iter().zip(&lines).all(|(got, sent)| got == sent));
    }

    #[test]
    fn a_large_buffer_is_kept_while_busy_and_given_back_when_idle() {
        let line = vec![b'x'; 1000];
        let stream = framed(&vec![line.as_slice(); 200]);
        let mut r = RecvStream::new(256 * 1024);
        for (chunk, at) in stream.chunks(1200).zip((0u64..).step_by(1200)) {
            r.on_data(at, chunk).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(r.poll_lines(1000, &mut out), 200);
        assert!(r.buf.is_empty());
        assert!(r.buf.try_reclaim(r.buf.capacity() + 1));
        assert!(
            r.buf.capacity() > KEEP_WHEN_EMPTY,
            "kept for the next burst"
        );
        r.release_idle();
        assert_eq!(r.buf.capacity(), 0, "given back once idle");
        // And it still works afterwards.
        let next = framed(&[b"after"]);
        r.on_data(stream.len() as u64, &next).unwrap();
        assert_eq!(r.poll_line().unwrap(), &b"after"[..]);
    }

    #[test]
    fn the_window_bounds_what_is_accepted_and_moves_as_lines_are_read() {
        let mut r = RecvStream::new(10);
        assert_eq!(r.on_data(5, &[0; 6]), Err(FlowControlViolation));
        r.on_data(0, &framed(&[b"12345678"])).unwrap();
        assert_eq!(r.max_offset(), 10);
        r.poll_line().unwrap();
        assert_eq!(r.max_offset(), 20);
        assert_eq!(r.on_data(u64::MAX, &[1]), Err(FlowControlViolation));
    }
}
