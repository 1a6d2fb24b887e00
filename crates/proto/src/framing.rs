//! Splitting a byte stream into lines, with bounded memory whatever the peer sends.

use bytes::{Buf, Bytes, BytesMut};

use crate::limits::{MAX_BODY_BYTES, MAX_CLIENT_TAG_BYTES};

/// What the framer found next in the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum FramedLine<L = Bytes> {
    /// One line, without its terminator (or what was read from it, with
    /// [`LineFramer::next_line_with`]).
    Line(L),
    /// A line longer than any valid line. Its bytes were dropped up to the next
    /// terminator, so a peer that never sends a newline costs a bounded buffer.
    TooLong,
}

/// Cuts lines at CR, LF or CR LF (clients send all three) and skips empty lines.
#[derive(Debug)]
pub struct LineFramer {
    buf: BytesMut,
    /// Where the first line in `buf` ends, once looked for and found ([`NOT_FOUND`]
    /// otherwise): a reader asks [`LineFramer::has_line`] before it takes each line,
    /// and the search is then not made twice.
    first_end: u32,
    /// `u16`: a server keeps a framer per connection, and an IRC line with all its
    /// tags is under 9 KiB. With the two other fields it fits where `max_line` alone
    /// as a `u32` did.
    max_line: u16,
    discarding: bool,
}

/// [`LineFramer::first_end`] when no line end is known.
const NOT_FOUND: u32 = u32::MAX;

impl Default for LineFramer {
    fn default() -> Self {
        LineFramer::new(MAX_CLIENT_TAG_BYTES + MAX_BODY_BYTES)
    }
}

impl LineFramer {
    /// A framer that refuses lines longer than `max_line` bytes (65,535 at most).
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer {
            buf: BytesMut::with_capacity(1024),
            first_end: NOT_FOUND,
            max_line: u16::try_from(max_line).unwrap_or(u16::MAX),
            discarding: false,
        }
    }

    fn max_line(&self) -> usize {
        self.max_line as usize
    }

    /// The buffer to read into (for `AsyncReadExt::read_buf`).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        // Whoever holds the buffer may change what is in it.
        self.first_end = NOT_FOUND;
        &mut self.buf
    }

    /// Appends bytes received from the peer.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Whether [`LineFramer::next_line`] has something to look at: a terminator, or
    /// more bytes than a line may hold. It may still find nothing but empty or
    /// discarded lines. Lets a reader that must wait before taking a line (flood
    /// control, a full queue) know whether to wait at all, without taking the line.
    pub fn has_line(&mut self) -> bool {
        self.buf.len() > self.max_line() || self.first_line_end().is_some()
    }

    /// Where the first line in the buffer ends (its first CR or LF), remembered until
    /// the buffer's front moves.
    fn first_line_end(&mut self) -> Option<usize> {
        if self.first_end != NOT_FOUND {
            return Some(self.first_end as usize);
        }
        let end = line_end(&self.buf)?;
        // Past 4 GiB (never, with a bounded read buffer) it is only not remembered.
        self.first_end = u32::try_from(end).unwrap_or(NOT_FOUND);
        Some(end)
    }

    /// The next complete line, if the buffer holds one.
    pub fn next_line(&mut self) -> Option<FramedLine> {
        self.next(|buf, end| {
            // One split for the line and its terminator, which is then cut off.
            let mut line = buf.split_to(end + 1);
            line.truncate(end);
            line.freeze()
        })
    }

    /// As [`LineFramer::next_line`], but the line is lent to `read` where it lies in
    /// the buffer, and what `read` makes of it is returned: a reader that parses each
    /// line at once needs no line of its own, nor the shared buffer's reference
    /// counting that one costs.
    pub fn next_line_with<T>(&mut self, read: impl FnOnce(&[u8]) -> T) -> Option<FramedLine<T>> {
        self.next(|buf, end| {
            let line = read(buf.get(..end).unwrap_or_default());
            buf.advance(end + 1);
            line
        })
    }

    /// Finds the next line and has `take` take it out of the buffer: the line is the
    /// first `end` bytes, and `take` must remove those and the terminator after them.
    fn next<T>(&mut self, take: impl FnOnce(&mut BytesMut, usize) -> T) -> Option<FramedLine<T>> {
        loop {
            match self.first_line_end() {
                Some(end) => {
                    self.first_end = NOT_FOUND;
                    // A CR LF goes as one terminator: otherwise its LF would be found
                    // next, as an empty line, at the cost of another search.
                    let crlf =
                        self.buf.get(end) == Some(&b'\r') && self.buf.get(end + 1) == Some(&b'\n');
                    let terminator = 1 + usize::from(crlf);
                    if std::mem::take(&mut self.discarding) || end == 0 {
                        self.buf.advance(end + terminator);
                        continue;
                    }
                    if end > self.max_line() {
                        self.buf.advance(end + terminator);
                        return Some(FramedLine::TooLong);
                    }
                    let line = take(&mut self.buf, end);
                    if crlf {
                        self.buf.advance(1);
                    }
                    return Some(FramedLine::Line(line));
                }
                None => {
                    if self.buf.len() <= self.max_line() {
                        return None;
                    }
                    self.buf.clear();
                    if self.discarding {
                        return None;
                    }
                    self.discarding = true;
                    return Some(FramedLine::TooLong);
                }
            }
        }
    }
}

/// Where the first line of `buf` ends: its first CR or LF.
fn line_end(buf: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(framer: &mut LineFramer) -> Vec<FramedLine> {
        std::iter::from_fn(|| framer.next_line()).collect()
    }

    #[test]
    fn cuts_at_any_terminator_and_skips_empty_lines() {
        let mut f = LineFramer::new(100);
        f.extend(b"A\r\nB\nC\r\r\nD");
        assert_eq!(
            lines(&mut f),
            vec![
                FramedLine::Line(Bytes::from_static(b"A")),
                FramedLine::Line(Bytes::from_static(b"B")),
                FramedLine::Line(Bytes::from_static(b"C")),
            ]
        );
        f.extend(b"\n");
        assert_eq!(
            lines(&mut f),
            vec![FramedLine::Line(Bytes::from_static(b"D"))]
        );
    }

    #[test]
    fn an_endless_line_is_reported_once_and_dropped() {
        let mut f = LineFramer::new(10);
        f.extend(&[b'x'; 11]);
        assert_eq!(lines(&mut f), vec![FramedLine::TooLong]);
        f.extend(&[b'x'; 50]);
        assert_eq!(lines(&mut f), vec![]);
        assert_eq!(f.pending(), 0);
        f.extend(b"xx\nOK\n");
        assert_eq!(
            lines(&mut f),
            vec![FramedLine::Line(Bytes::from_static(b"OK"))]
        );
    }

    #[test]
    fn has_line_tells_whether_next_line_has_work() {
        let mut f = LineFramer::new(4);
        assert!(!f.has_line());
        f.extend(b"abc");
        assert!(!f.has_line(), "a partial line waits for more");
        f.extend(b"\r");
        assert!(f.has_line());
        assert_eq!(
            f.next_line(),
            Some(FramedLine::Line(Bytes::from_static(b"abc")))
        );
        f.extend(b"\n");
        assert!(f.has_line(), "an empty line is still work to skip");
        assert_eq!(f.next_line(), None);
        assert!(!f.has_line());
        f.extend(b"abcde");
        assert!(f.has_line(), "an over-long partial line is reported");
    }

    #[test]
    fn lines_lent_in_place_are_the_lines_split_off() {
        let stream = b"A\r\nBB\nC\r\r\n\nDDDD\nE";
        let mut split = LineFramer::new(3);
        let mut lent = LineFramer::new(3);
        split.extend(stream);
        lent.extend(stream);
        let lent_lines: Vec<FramedLine<Vec<u8>>> =
            std::iter::from_fn(|| lent.next_line_with(<[u8]>::to_vec)).collect();
        let split_lines: Vec<FramedLine<Vec<u8>>> = lines(&mut split)
            .into_iter()
            .map(|l| match l {
                FramedLine::Line(bytes) => FramedLine::Line(bytes.to_vec()),
                FramedLine::TooLong => FramedLine::TooLong,
            })
            .collect();
        assert_eq!(lent_lines, split_lines);
        assert_eq!(lent.pending(), split.pending());
    }

    #[test]
    fn a_line_end_found_before_more_bytes_arrive_still_ends_that_line() {
        let mut f = LineFramer::new(100);
        f.extend(b"AB\r");
        assert!(f.has_line());
        // The LF of the CR LF comes with the next read, and another line after it.
        f.extend(b"\nCD\r\nEF");
        assert_eq!(
            f.next_line(),
            Some(FramedLine::Line(Bytes::from_static(b"AB")))
        );
        assert!(f.has_line());
        assert_eq!(
            f.next_line(),
            Some(FramedLine::Line(Bytes::from_static(b"CD")))
        );
        assert_eq!(f.pending(), 2);
        assert!(!f.has_line());
        // A buffer handed out may come back changed: nothing found before is trusted.
        f.buffer_mut().extend_from_slice(b"\n");
        assert_eq!(
            f.next_line(),
            Some(FramedLine::Line(Bytes::from_static(b"EF")))
        );
        assert_eq!(f.next_line(), None);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn a_complete_long_line_is_too_long() {
        let mut f = LineFramer::new(3);
        f.extend(b"abcd\nabc\n");
        assert_eq!(
            lines(&mut f),
            vec![
                FramedLine::TooLong,
                FramedLine::Line(Bytes::from_static(b"abc"))
            ]
        );
    }
}
