//! The outgoing line stream: framing, buffering until acknowledged, retransmission.
//!
//! Lines travel as one ordered byte stream per direction, each line framed by a 2-byte
//! big-endian length. A stream (rather than a packet per line) lets many short chat lines
//! share one datagram and lets a long line (up to 65535 bytes, well above IRC's 8191 + 512)
//! span several, with one mechanism: byte offsets, as in TCP and QUIC. Bytes stay buffered
//! until acknowledged; lost ranges are queued and resent first, in new packets.
//!
//! The stream holds each line as the `Bytes` it was given, framed only when a packet
//! is built: a server fans one line out to every member of a room, and every member's
//! datagrams are written from that one line. An earlier version copied each line,
//! framed, into a ring of bytes (`VecDeque<u8>`) per session; it cost fewer
//! instructions, but two more copies of every byte (into a staging block, into the
//! ring) before the copy into the packet, into a ring per session that was cold in the
//! cache by the time its packets were built: under reliable-UDP fan-out, copying took
//! a sixth of the server's time. Packets are built from the front of the stream
//! onwards, so the line a packet starts in is usually the one the last packet ended
//! in: a remembered position finds it without a search.

use std::collections::VecDeque;
use std::ops::{ControlFlow, Range};

use bytes::Bytes;

use crate::line_batches::LineBatches;
use crate::ranges::RangeSet;

/// Why a line was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The send buffer is full: the peer is slow or the path is lossy. Back-pressure: try
    /// again after the session has made progress (a later `poll_transmit` or an ack), or
    /// treat it as IRC's "SendQ exceeded".
    Full,
    /// The line is longer than the 65535 bytes its length prefix can say.
    TooLong,
    /// The session is not open for sending (closing or closed).
    NotOpen,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Full => write!(f, "send buffer full: wait for the peer to catch up"),
            SendError::TooLong => write!(f, "line longer than 65535 bytes"),
            SendError::NotOpen => write!(f, "session is closing or closed"),
        }
    }
}

impl std::error::Error for SendError {}

/// The bytes of a line's length prefix.
pub(crate) const LINE_PREFIX_LEN: usize = 2;

/// The bytes of the line end a kept line carries: on the wire, its length prefix takes
/// their place, so a line's framed length is its length as kept.
const KEPT_END: &[u8; LINE_PREFIX_LEN] = b"\r\n";

/// Appends the bytes of `line`'s framing (its prefix, then the line without its kept
/// line end) from `from` to `to`, offsets within that framing.
fn write_framed(line: &[u8], from: usize, to: usize, out: &mut Vec<u8>) {
    let body_len = line.len().saturating_sub(LINE_PREFIX_LEN);
    // The body fits a prefix: the stream took only lines that do.
    let prefix = (body_len as u16).to_be_bytes();
    if from == 0 && to >= LINE_PREFIX_LEN {
        // The whole prefix, as nearly every line's is: a copy of a known size,
        // made in place rather than by a call to copy two bytes.
        out.extend_from_slice(&prefix);
    } else if from < LINE_PREFIX_LEN {
        out.extend_from_slice(&prefix[from..to.min(LINE_PREFIX_LEN)]);
    }
    if to > LINE_PREFIX_LEN {
        let body_from = from.max(LINE_PREFIX_LEN) - LINE_PREFIX_LEN;
        out.extend_from_slice(
            line.get(body_from..to - LINE_PREFIX_LEN)
                .unwrap_or_default(),
        );
    }
}

/// Appends the whole framing of `line`: its prefix, then the line without its kept
/// line end.
fn write_whole(line: &[u8], out: &mut Vec<u8>) {
    let body = line
        .get(..line.len().saturating_sub(LINE_PREFIX_LEN))
        .unwrap_or_default();
    // The body fits a prefix: the stream took only lines that do.
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// `body` with the kept line end after it, in a buffer of its own.
fn with_kept_end(body: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(body.len() + LINE_PREFIX_LEN);
    line.extend_from_slice(body);
    line.extend_from_slice(KEPT_END);
    Bytes::from(line)
}

/// A line by its number (as `SendStream::dropped` counts) and the offset of its prefix:
/// where the last packet's chunk ended.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    number: u64,
    start: u64,
}

/// Send-side stream state.
///
/// Each line is kept as the `Bytes` it was given, line end included, and nothing else:
/// no offset, no length. Its framed length is its length (the prefix takes the line
/// end's two bytes), so offsets are sums of lengths from the first line's, and packets,
/// built from the front onwards, find their line from where the last one ended. A
/// record per line (offset, length, the `Bytes`) cost a fan-out's sessions half as much
/// again in memory written per line, into queues that are cold by the time they are
/// read.
#[derive(Debug)]
pub(crate) struct SendStream {
    /// Lowest unacknowledged offset.
    base: u64,
    /// The lines from the one holding `base` onwards, in stream order, each ending in
    /// the two bytes its prefix stands in for.
    lines: LineBatches,
    /// Offset of the prefix of `lines[0]`.
    front: u64,
    /// How many lines were dropped from the front of `lines` since the start: the
    /// number of `lines[0]` among all lines ever queued.
    dropped: u64,
    /// The line the last packet's chunk ended in: where the next chunk most likely
    /// starts.
    cursor: std::cell::Cell<Cursor>,
    /// Offset just past everything queued.
    end: u64,
    /// First offset never sent.
    next_new: u64,
    /// Acknowledged ranges at or above `base` (below it is implicitly acknowledged).
    acked: RangeSet,
    /// Sent, declared lost, not yet acknowledged: resent before any new data.
    lost: RangeSet,
    /// Most bytes buffered (sent-unacknowledged plus unsent), prefixes included.
    capacity: usize,
}

impl SendStream {
    pub(crate) fn new(capacity: usize) -> SendStream {
        SendStream {
            base: 0,
            lines: LineBatches::default(),
            front: 0,
            dropped: 0,
            cursor: std::cell::Cell::new(Cursor::default()),
            end: 0,
            next_new: 0,
            acked: RangeSet::new(),
            lost: RangeSet::new(),
            capacity,
        }
    }

    /// Offset just past everything queued.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// First offset never sent: bytes below it that go out again are retransmissions.
    pub(crate) fn next_new(&self) -> u64 {
        self.next_new
    }

    /// Bytes held (unacknowledged or unsent).
    pub(crate) fn buffered(&self) -> usize {
        usize::try_from(self.end - self.base).unwrap_or(usize::MAX)
    }

    /// Free space for new lines, prefix included.
    pub(crate) fn available(&self) -> usize {
        self.capacity.saturating_sub(self.buffered())
    }

    /// Whether a line of `body_len` bytes (without its line end) can be queued now.
    fn check_room(&self, body_len: usize) -> Result<(), SendError> {
        if body_len > usize::from(u16::MAX) {
            return Err(SendError::TooLong);
        }
        if self.buffered() + LINE_PREFIX_LEN + body_len > self.capacity {
            return Err(SendError::Full);
        }
        Ok(())
    }

    /// Queues one line, without its line end. On failure the line is handed back.
    pub(crate) fn push_line(&mut self, line: Bytes) -> Result<(), (SendError, Bytes)> {
        if let Err(e) = self.check_room(line.len()) {
            return Err((e, line));
        }
        self.queue(with_kept_end(&line));
        Ok(())
    }

    /// Queues one line, without its line end, copied from `line`.
    pub(crate) fn push_line_slice(&mut self, line: &[u8]) -> Result<(), SendError> {
        self.check_room(line.len())?;
        self.queue(with_kept_end(line));
        Ok(())
    }

    /// Queues a line that ends in its kept line end and fits in room.
    fn queue(&mut self, line: Bytes) {
        self.end += line.len() as u64;
        self.lines.push_back(line);
    }

    /// Queues lines taken from the front of `lines` while they fit, each without its
    /// line end (`body_len` gives the length of the part to send); returns how many
    /// were taken and their bytes as given. A line that ends in two bytes (CR LF) is
    /// kept as given; any other is copied with two added. Lines longer than a prefix
    /// can say are taken and dropped, as no frame can hold them.
    pub(crate) fn push_lines(
        &mut self,
        lines: &mut VecDeque<Bytes>,
        body_len: impl Fn(&[u8]) -> usize,
    ) -> (usize, usize) {
        let mut room = self.available();
        let (mut taken, mut taken_bytes) = (0, 0);
        while let Some(line) = lines.front() {
            let body = body_len(line);
            if body > usize::from(u16::MAX) {
                taken += 1;
                taken_bytes += line.len();
                lines.pop_front();
                continue;
            }
            let framed = LINE_PREFIX_LEN + body;
            if framed > room {
                break;
            }
            let Some(line) = lines.pop_front() else {
                break;
            };
            taken += 1;
            taken_bytes += line.len();
            room -= framed;
            if line.len() == framed {
                self.queue(line);
            } else {
                self.queue(with_kept_end(line.get(..body).unwrap_or_default()));
            }
        }
        (taken, taken_bytes)
    }

    /// Queues all of `lines`, `bytes` long in all, if they fit; else takes none and
    /// returns `None`. Every line must end in CR LF and be at most 65535 bytes
    /// without it, as the lines a server builds are: they are taken whole, by their
    /// count, without a look at any of them (a fan-out hands each member's session
    /// hundreds of lines at once, and reading each again cost more than the rest of
    /// queuing them).
    pub(crate) fn push_crlf_lines(
        &mut self,
        lines: &mut VecDeque<Bytes>,
        bytes: usize,
    ) -> Option<(usize, usize)> {
        if bytes > self.available() {
            return None;
        }
        debug_assert!(
            lines.iter().all(|line| line.ends_with(KEPT_END)
                && line.len() - LINE_PREFIX_LEN <= usize::from(u16::MAX)),
            "lines taken whole end in CR LF and fit a prefix"
        );
        debug_assert_eq!(bytes, lines.iter().map(Bytes::len).sum::<usize>());
        let taken = lines.len();
        self.lines.append(lines);
        self.end += bytes as u64;
        Some((taken, bytes))
    }

    /// True if there is something to send that flow control (`limit`) allows.
    pub(crate) fn has_sendable(&self, limit: u64) -> bool {
        !self.lost.is_empty() || self.next_new < self.end().min(limit)
    }

    /// True if new data waits only because of the peer's flow-control limit.
    pub(crate) fn blocked_by_flow_control(&self, limit: u64) -> bool {
        self.lost.is_empty() && self.next_new < self.end() && self.next_new >= limit
    }

    /// True when some bytes wait to be resent.
    pub(crate) fn has_lost(&self) -> bool {
        !self.lost.is_empty()
    }

    /// True when some sent bytes are not yet acknowledged (cumulatively or selectively).
    pub(crate) fn has_unacked_sent(&self) -> bool {
        self.base < self.next_new
    }

    /// Forgets the selective acknowledgements and queues everything sent but not
    /// cumulatively acknowledged again. TCP does this after a timeout (RFC 2018: SACKed
    /// data may be "reneged"); here it is the way out if the peer acknowledged a packet
    /// number whose bytes it never kept (a forged or damaged copy arrived first).
    pub(crate) fn renege(&mut self) {
        self.acked = RangeSet::new();
        if self.base < self.next_new {
            self.lost.insert(self.base..self.next_new);
        }
    }

    /// True when every byte ever queued has been acknowledged.
    pub(crate) fn all_acked(&self) -> bool {
        self.base == self.end
    }

    /// The next chunk to send, at most `max_len` bytes: lost bytes first, then new bytes
    /// below `limit`. Marks the chunk as sent and returns its offsets; its bytes are
    /// copied into the packet with [`SendStream::write_range`].
    pub(crate) fn next_chunk(&mut self, max_len: usize, limit: u64) -> Option<Range<u64>> {
        if max_len == 0 {
            return None;
        }
        while let Some(r) = self.lost.first() {
            let start = r.start.max(self.base);
            if start >= r.end {
                self.lost.remove(r);
                continue;
            }
            let end = r.end.min(start + max_len as u64);
            self.lost.remove(start..end);
            return Some(start..end);
        }
        let stop = self.end().min(limit);
        if self.next_new < stop {
            let start = self.next_new;
            let end = stop.min(start + max_len as u64);
            self.next_new = end;
            return Some(start..end);
        }
        None
    }

    /// Appends the buffered bytes of `r` (as returned by [`SendStream::next_chunk`]) to
    /// `out`, framed, straight from the queued lines into the packet being built.
    pub(crate) fn write_range(&self, r: Range<u64>, out: &mut Vec<u8>) {
        let mut at = r.start.max(self.base);
        let stop = r.end.min(self.end);
        if at >= stop {
            return;
        }
        out.reserve((stop - at) as usize);
        let (first, mut start) = self.line_at(at);
        let mut i = first;
        self.lines.for_each_from(first, |line| {
            let line_end = start + line.len() as u64;
            if at == start && line_end <= stop {
                // A whole line, as nearly every one in a packet is.
                write_whole(line, out);
            } else {
                let to = (stop.min(line_end) - start) as usize;
                write_framed(line, (at - start) as usize, to, out);
            }
            at = stop.min(line_end);
            if at < line_end {
                // The packet ends inside this line: the next chunk starts in it.
                return ControlFlow::Break(());
            }
            i += 1;
            start = line_end;
            if at == stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        self.cursor.set(Cursor {
            number: self.dropped + i as u64,
            start,
        });
    }

    /// The index in `lines` of the line holding offset `at` (at least `base`, below
    /// `end`) and the offset of its prefix: the remembered line or the next when it is,
    /// else found by a walk from the front (a retransmission, or the first chunk).
    fn line_at(&self, at: u64) -> (usize, u64) {
        let cursor = self.cursor.get();
        if let Some(hint) = cursor.number.checked_sub(self.dropped) {
            let mut start = cursor.start;
            for i in [hint, hint + 1].map(|i| i as usize) {
                let Some(line) = self.lines.get(i) else {
                    break;
                };
                let end = start + line.len() as u64;
                if start <= at && at < end {
                    return (i, start);
                }
                start = end;
            }
        }
        self.lines_ending_by(at)
    }

    /// How many lines from the front end at or before `offset`, and the offset of the
    /// prefix of the line after them.
    fn lines_ending_by(&self, offset: u64) -> (usize, u64) {
        let (mut n, mut start) = (0, self.front);
        self.lines.for_each_from(0, |line| {
            let end = start + line.len() as u64;
            if end > offset {
                return ControlFlow::Break(());
            }
            (n, start) = (n + 1, end);
            ControlFlow::Continue(())
        });
        (n, start)
    }

    /// Marks `r` selectively acknowledged (its packet was acknowledged): it will not be
    /// resent on loss. The bytes stay buffered until the cumulative acknowledgement
    /// covers them (RFC 2018's rule), because a selective acknowledgement can be wrong:
    /// see [`SendStream::renege`].
    pub(crate) fn on_acked(&mut self, r: Range<u64>) {
        let r = r.start.max(self.base)..r.end.min(self.next_new);
        if r.start >= r.end {
            return;
        }
        self.acked.insert(r.clone());
        self.lost.remove(r);
    }

    /// Everything below `offset` was received by the peer (its cumulative ack): free it.
    pub(crate) fn ack_below(&mut self, offset: u64) {
        let offset = offset.min(self.next_new);
        if offset <= self.base {
            return;
        }
        self.base = offset;
        // Counted first, then dropped together: a pop per line cost half again as
        // much as the lines' own drops.
        let (acked_lines, front) = self.lines_ending_by(offset);
        self.front = front;
        self.lines.drop_front(acked_lines);
        self.dropped += acked_lines as u64;
        // An emptied stream keeps a buffer for the next lines (`LineBatches`);
        // `release_idle` gives it back once the session has gone quiet.
        self.acked.remove_below(self.base);
        self.lost.remove_below(self.base);
    }

    /// Gives back the memory of an empty stream's queue beyond what a few lines need:
    /// called when the session's timers find it quiet, so that an idle session does
    /// not hold the queue of its largest burst.
    pub(crate) fn release_idle(&mut self) {
        self.lines.release_idle(IDLE_LINES);
    }

    /// Lines the queue holds room for, used or not.
    #[cfg(test)]
    fn queue_capacity(&self) -> usize {
        self.lines.capacity()
    }

    /// `r` was sent in a packet now declared lost: queue what of it is unacknowledged.
    pub(crate) fn on_lost(&mut self, r: Range<u64>) {
        let r = r.start.max(self.base)..r.end.min(self.next_new);
        for gap in self.acked.gaps_within(r) {
            self.lost.insert(gap);
        }
    }

    /// Drops everything: the session closed and nothing more will be sent.
    pub(crate) fn clear(&mut self) {
        self.base = self.end;
        self.next_new = self.base;
        self.front = self.end;
        self.dropped += self.lines.len() as u64;
        self.lines = LineBatches::default();
        self.acked = RangeSet::new();
        self.lost = RangeSet::new();
    }
}

/// Lines an emptied stream keeps room for; beyond this, it gives its memory back
/// when the session is quiet.
const IDLE_LINES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn push(s: &mut SendStream, line: &[u8]) -> Result<(), SendError> {
        s.push_line(Bytes::copy_from_slice(line))
            .map_err(|(e, _)| e)
    }

    /// The next chunk's offset and bytes.
    fn chunk(s: &mut SendStream, max_len: usize, limit: u64) -> Option<(u64, Vec<u8>)> {
        let r = s.next_chunk(max_len, limit)?;
        let mut data = Vec::new();
        s.write_range(r.clone(), &mut data);
        Some((r.start, data))
    }

    #[test]
    fn a_chunk_spanning_lines_is_copied_whole() {
        let mut s = SendStream::new(16);
        push(&mut s, &[1; 8]).unwrap(); // 0..10
        assert_eq!(chunk(&mut s, 100, u64::MAX).unwrap().1.len(), 10);
        s.ack_below(10);
        push(&mut s, &[2; 12]).unwrap(); // 10..24: the second line
        let (o, d) = chunk(&mut s, 100, u64::MAX).unwrap();
        let mut want = vec![0, 12];
        want.extend_from_slice(&[2; 12]);
        assert_eq!((o, d), (10, want));
    }

    #[test]
    fn any_range_reads_the_framed_lines_it_covers() {
        let mut s = SendStream::new(1000);
        let mut framed = Vec::new();
        for len in [0usize, 1, 2, 3, 7, 40, 1] {
            let line: Vec<u8> = (0..len).map(|i| (len * 16 + i) as u8).collect();
            push(&mut s, &line).unwrap();
            framed.extend_from_slice(&(len as u16).to_be_bytes());
            framed.extend_from_slice(&line);
        }
        assert_eq!(s.end(), framed.len() as u64);
        while s.next_chunk(1000, u64::MAX).is_some() {}
        for base in [0, 1, 3, 9] {
            s.ack_below(base);
            for start in base..framed.len() as u64 {
                for end in start..=framed.len() as u64 {
                    let mut out = Vec::new();
                    s.write_range(start..end, &mut out);
                    assert_eq!(out, &framed[start as usize..end as usize], "{start}..{end}");
                }
            }
        }
    }

    #[test]
    fn lines_are_length_prefixed_and_sent_in_chunks() {
        let mut s = SendStream::new(1000);
        push(&mut s, b"hello").unwrap();
        push(&mut s, b"").unwrap();
        assert_eq!(s.end(), 9);
        let (o, d) = chunk(&mut s, 4, u64::MAX).unwrap();
        assert_eq!((o, d.as_slice()), (0, &b"\x00\x05he"[..]));
        let (o, d) = chunk(&mut s, 100, u64::MAX).unwrap();
        assert_eq!((o, d.as_slice()), (4, &b"llo\x00\x00"[..]));
        assert!(s.next_chunk(100, u64::MAX).is_none());
    }

    #[test]
    fn lost_bytes_are_resent_before_new_ones_and_acks_free_the_buffer() {
        let mut s = SendStream::new(1000);
        push(&mut s, &[b'a'; 20]).unwrap(); // 22 bytes
        s.next_chunk(10, u64::MAX).unwrap(); // 0..10
        s.next_chunk(10, u64::MAX).unwrap(); // 10..20
        s.on_acked(10..20);
        s.on_lost(0..20);
        let (o, d) = chunk(&mut s, 100, u64::MAX).unwrap();
        assert_eq!(
            (o, d.len()),
            (0, 10),
            "selectively acknowledged bytes are not resent"
        );
        let (o, d) = chunk(&mut s, 100, u64::MAX).unwrap();
        assert_eq!((o, d.len()), (20, 2));
        s.on_acked(0..10);
        assert_eq!(s.buffered(), 22, "only the cumulative ack frees the buffer");
        s.ack_below(10);
        assert_eq!(s.buffered(), 12);
        s.ack_below(22);
        assert!(s.all_acked());
    }

    #[test]
    fn reneging_resends_everything_not_cumulatively_acknowledged() {
        let mut s = SendStream::new(1000);
        push(&mut s, &[1; 30]).unwrap(); // 32 bytes
        s.next_chunk(100, u64::MAX).unwrap();
        s.on_acked(10..32);
        assert!(s.has_unacked_sent());
        assert!(!s.has_sendable(u64::MAX));
        s.renege();
        let (o, d) = chunk(&mut s, 100, u64::MAX).unwrap();
        assert_eq!((o, d.len()), (0, 32));
    }

    #[test]
    fn flow_control_limits_new_data_but_not_retransmissions() {
        let mut s = SendStream::new(1000);
        push(&mut s, &[0; 100]).unwrap();
        let (_, d) = chunk(&mut s, 1000, 50).unwrap();
        assert_eq!(d.len(), 50);
        assert!(s.next_chunk(1000, 50).is_none());
        assert!(s.blocked_by_flow_control(50));
        s.on_lost(0..50);
        assert!(s.next_chunk(1000, 50).is_some());
    }

    #[test]
    fn an_emptied_stream_keeps_its_queue_until_released() {
        let mut s = SendStream::new(1_000_000);
        for _ in 0..10_000 {
            push(&mut s, b"x").unwrap();
        }
        while s.next_chunk(1000, u64::MAX).is_some() {}
        s.ack_below(s.end());
        assert!(s.all_acked());
        let burst = s.queue_capacity();
        assert!(burst >= 10_000);
        s.release_idle();
        assert!(s.queue_capacity() < burst);
    }

    #[test]
    fn lines_taken_in_bulk_are_framed_as_one_at_a_time_and_stop_when_full() {
        let lens = [0usize, 1, 70, 3000, 5, 2100, 40, 1];
        let given: VecDeque<Bytes> = lens
            .iter()
            .map(|&len| {
                let mut line: Vec<u8> = (0..len).map(|i| (i % 200) as u8 + 1).collect();
                line.extend_from_slice(b"\r\n");
                Bytes::from(line)
            })
            .collect();
        fn body(line: &[u8]) -> &[u8] {
            &line[..line.len() - 2]
        }
        fn body_len(line: &[u8]) -> usize {
            body(line).len()
        }
        let mut one_by_one = SendStream::new(100_000);
        for line in &given {
            push(&mut one_by_one, body(line)).unwrap();
        }
        let mut bulk = SendStream::new(100_000);
        let mut lines = given.clone();
        let (n, bytes) = bulk.push_lines(&mut lines, body_len);
        assert_eq!(n, lens.len());
        assert_eq!(bytes, given.iter().map(Bytes::len).sum::<usize>());
        assert!(lines.is_empty());
        assert_eq!(bulk.end(), one_by_one.end());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        bulk.write_range(0..bulk.end(), &mut a);
        one_by_one.write_range(0..one_by_one.end(), &mut b);
        assert_eq!(a, b);

        // Room for the first three lines only: the rest stay, in order.
        let mut small = SendStream::new(2 + 2 + 1 + 2 + 70 + 10);
        let mut lines = given.clone();
        let (n, _) = small.push_lines(&mut lines, body_len);
        assert_eq!(n, 3);
        assert_eq!(lines.len(), lens.len() - 3);
        assert_eq!(lines.front(), given.get(3));
    }

    #[test]
    fn lines_with_any_line_end_are_framed_alike() {
        let given: VecDeque<Bytes> = [
            &b"PING :a\r\n"[..],
            b"PING :bb\n",
            b"PING :c\r",
            b"PING :dddd",
        ]
        .into_iter()
        .map(Bytes::from_static)
        .collect();
        let body_len = |line: &[u8]| match line {
            [.., b'\r', b'\n'] => line.len() - 2,
            [.., b'\n'] | [.., b'\r'] => line.len() - 1,
            _ => line.len(),
        };
        let mut s = SendStream::new(1000);
        let mut lines = given.clone();
        let (n, bytes) = s.push_lines(&mut lines, body_len);
        assert_eq!((n, bytes), (4, 9 + 9 + 8 + 10));
        let mut want = Vec::new();
        for body in [&b"PING :a"[..], b"PING :bb", b"PING :c", b"PING :dddd"] {
            want.extend_from_slice(&(body.len() as u16).to_be_bytes());
            want.extend_from_slice(body);
        }
        assert_eq!(s.end(), want.len() as u64);
        let (at, data) = chunk(&mut s, 1000, u64::MAX).unwrap();
        assert_eq!((at, data), (0, want));
    }

    #[test]
    fn a_lost_chunk_is_found_again_after_later_chunks_moved_on() {
        let mut s = SendStream::new(10_000);
        let mut framed = Vec::new();
        for i in 0..50u8 {
            let line = vec![i; usize::from(i % 7) * 5];
            push(&mut s, &line).unwrap();
            framed.extend_from_slice(&(line.len() as u16).to_be_bytes());
            framed.extend_from_slice(&line);
        }
        let mut sent = Vec::new();
        while let Some((at, data)) = chunk(&mut s, 37, u64::MAX) {
            sent.push((at, data));
        }
        s.ack_below(40);
        // Every third chunk lost, then resent: each from its own offset.
        for (at, data) in sent.iter().step_by(3) {
            s.on_lost(*at..*at + data.len() as u64);
        }
        while let Some((at, data)) = chunk(&mut s, 37, u64::MAX) {
            let at = at as usize;
            assert_eq!(data, &framed[at..at + data.len()]);
        }
    }

    #[test]
    fn back_pressure_and_length_limits() {
        let mut s = SendStream::new(10);
        assert_eq!(push(&mut s, &[0; 9]), Err(SendError::Full));
        push(&mut s, &[0; 8]).unwrap();
        assert_eq!(push(&mut s, &[]), Err(SendError::Full));
        let mut big = SendStream::new(1 << 20);
        assert_eq!(push(&mut big, &vec![0; 70_000]), Err(SendError::TooLong));
    }
}
