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

/// Capacity the buffer keeps once everything in it was read; a larger one is given
/// back, so that idle sessions cost little. (While it is in use, the space of the
/// lines read is reused in place.)
const KEEP_WHEN_EMPTY: usize = 4 * 1024;

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
        for gap in self.filled.gaps_within(start..end) {
            let src_from = usize::try_from(gap.start - offset).unwrap_or(usize::MAX);
            let src_to = usize::try_from(gap.end - offset).unwrap_or(usize::MAX);
            let dst_from = usize::try_from(gap.start - self.base).unwrap_or(usize::MAX);
            let Some(src) = data.get(src_from..src_to) else {
                continue;
            };
            if dst_from >= self.buf.len() {
                // Past the end (the usual case: bytes in order): append, with zeros
                // for a hole before it, if any, until its bytes come.
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
        self.buf.advance(LINE_PREFIX_LEN + len);
        self.base += (LINE_PREFIX_LEN + len) as u64;
        if self.buf.is_empty() && self.buf.capacity() > KEEP_WHEN_EMPTY {
            // Everything was read: an idle session keeps no large buffer.
            self.buf = BytesMut::new();
        }
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
    fn data_already_held_is_never_overwritten() {
        let mut r = RecvStream::new(1000);
        r.on_data(0, &framed(&[b"abc"])).unwrap();
        r.on_data(2, b"XYZ").unwrap();
        assert_eq!(r.poll_line().unwrap(), &b"abc"[..]);
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
