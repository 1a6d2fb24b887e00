//! Counting what a server sends without parsing it: the receivers of a benchmark see
//! millions of lines a second, and the generator must not be what limits the server.
//!
//! A [`Scanner`] holds the bytes read so far, cuts complete lines with `memchr` and
//! looks only at the command word of each (skipping tags and prefix). A `PRIVMSG`
//! whose text starts with the timestamp marker also yields its send time.

use memchr::memchr;

/// The text of a timestamped message starts with this, then [`STAMP_DIGITS`] digits:
/// nanoseconds since the generator started. `%` appears in no nick, user or host.
pub const STAMP_MARK: &[u8] = b"%ts";
/// Digits of the timestamp: 10^16 ns is 115 days.
pub const STAMP_DIGITS: usize = 16;
/// Bytes of marker and digits.
pub const STAMP_LEN: usize = STAMP_MARK.len() + STAMP_DIGITS;

/// What one line is, as far as a benchmark cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A message delivered to us, with its timestamp if it carries one.
    Privmsg { stamp: Option<u64> },
    /// The server checks we are alive: answer `PONG` with these parameters.
    Ping { params: &'a [u8] },
    /// The answer to our own `PING`.
    Pong,
    /// The server is closing the connection, saying why.
    Error { text: &'a [u8] },
    /// Anything else: a numeric, JOIN, NOTICE...
    Other { command: &'a [u8], params: &'a [u8] },
}

/// Bytes read from one connection, cut into lines as they complete.
#[derive(Debug)]
pub struct Scanner {
    buf: Vec<u8>,
    /// How much to make room for before each read.
    read_size: usize,
}

impl Scanner {
    pub fn new(read_size: usize) -> Scanner {
        Scanner {
            buf: Vec::with_capacity(read_size),
            read_size,
        }
    }

    /// The buffer to read into (append to it; `tokio`'s `read_buf` does), with room for
    /// one read.
    pub fn read_buffer(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
            self.buf.reserve(self.read_size);
        }
        &mut self.buf
    }

    /// Appends bytes read elsewhere.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Hands each complete line to `each` and forgets it; a partial last line stays
    /// for the next read. Stops early, keeping the rest, when `each` returns false.
    pub fn lines(&mut self, mut each: impl FnMut(Line<'_>) -> bool) {
        let mut start = 0;
        let mut stopped = false;
        while let Some(end) = memchr(b'\n', &self.buf[start..]) {
            let line = &self.buf[start..start + end];
            start += end + 1;
            if !each(classify(line)) {
                stopped = true;
                break;
            }
        }
        if start > 0 {
            self.buf.drain(..start);
        }
        // A server that sends a line longer than any IRC line is broken or hostile;
        // keep the memory bounded and go on.
        if !stopped && self.buf.len() > 64 * 1024 {
            self.buf.clear();
        }
    }

    /// Bytes held that are not yet a complete line, or not yet handed out.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// Classifies one line (without its LF; a CR before it is allowed).
pub fn classify(line: &[u8]) -> Line<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rest = line;
    // Tags, then the prefix, each ending at a space.
    for lead in [b'@', b':'] {
        if rest.first() == Some(&lead) {
            rest = match space_in(rest) {
                Some(i) => trim_spaces(&rest[i..]),
                None => &[],
            };
        }
    }
    let (command, params) = match space_in(rest) {
        Some(i) => (&rest[..i], trim_spaces(&rest[i..])),
        None => (rest, &[][..]),
    };
    match command {
        b"PRIVMSG" => Line::Privmsg {
            stamp: stamp_of(params),
        },
        b"PING" => Line::Ping { params },
        b"PONG" => Line::Pong,
        b"ERROR" => Line::Error {
            text: params.strip_prefix(b":").unwrap_or(params),
        },
        _ => Line::Other { command, params },
    }
}

/// Where the first space is, looked for eight bytes at a time. The words before it are
/// a few dozen bytes at most, where `memchr` spends more setting up its vector search
/// than this spends finding the byte (callgrind: about 70 instructions a call against
/// about 25), and classifying every line received is most of the generator's work.
fn space_in(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        // A byte of `x` is zero where the word holds a space; the lowest byte flagged
        // below is always such a byte (a borrow can only flag bytes above one).
        let x = u64::from_le_bytes(word) ^ SPACES;
        let flagged = x.wrapping_sub(ONES) & !x & HIGHS;
        if flagged != 0 {
            return Some(at + (flagged.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b' ')
        .map(|i| at + i)
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|&&b| b == b' ').count();
    &bytes[n..]
}

/// The timestamp in `target :%ts0000000000001234 xxx`, if the text starts with one.
fn stamp_of(params: &[u8]) -> Option<u64> {
    let space = space_in(params)?;
    let text = trim_spaces(&params[space..]);
    let text = text.strip_prefix(b":").unwrap_or(text);
    let digits = text.strip_prefix(STAMP_MARK)?.get(..STAMP_DIGITS)?;
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.wrapping_mul(10).wrapping_add(u64::from(d - b'0')))
    })
}

/// Writes the timestamp marker and `ns` into `out` (which must be [`STAMP_LEN`] long).
pub fn write_stamp(out: &mut [u8], ns: u64) {
    out[..STAMP_MARK.len()].copy_from_slice(STAMP_MARK);
    let mut n = ns;
    for d in out[STAMP_MARK.len()..STAMP_LEN].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The `PONG` that answers a `PING` with `params`.
pub fn pong_for(params: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(params.len() + 8);
    out.extend_from_slice(b"PONG ");
    if params.is_empty() {
        out.push(b':');
    }
    out.extend_from_slice(params);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(scanner: &mut Scanner) -> Vec<String> {
        let mut out = Vec::new();
        scanner.lines(|l| {
            out.push(format!("{l:?}"));
            true
        });
        out
    }

    #[test]
    fn a_space_is_found_where_memchr_finds_it() {
        // Every length up to three words, a space at every place (or none), and bytes
        // on either side that the borrow of the word search could confuse with one.
        for len in 0..24 {
            for fill in [b'x', b'!', b'\x00', 0x1f, 0x21, 0xa0, 0xff] {
                for space in (0..len).map(Some).chain([None]) {
                    let mut bytes = vec![fill; len];
                    if let Some(at) = space {
                        bytes[at] = b' ';
                        if at + 1 < len {
                            bytes[at + 1] = b' ';
                        }
                    }
                    assert_eq!(space_in(&bytes), memchr(b' ', &bytes), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn deliveries_are_counted_whatever_the_prefix_and_tags() {
        for line in [
            &b":alice!a@host PRIVMSG #room :hello"[..],
            b"@time=2024-01-01T00:00:00Z :alice!~a@host PRIVMSG bob :hi",
            b"PRIVMSG #room :no prefix",
            b":a PRIVMSG #r :x\r",
        ] {
            assert_eq!(classify(line), Line::Privmsg { stamp: None }, "{line:?}");
        }
        assert!(matches!(
            classify(b":srv NOTICE * :PRIVMSG in text"),
            Line::Other { .. }
        ));
        assert!(matches!(classify(b""), Line::Other { .. }));
        assert!(matches!(classify(b":only-prefix"), Line::Other { .. }));
    }

    #[test]
    fn a_stamp_round_trips_and_a_malformed_one_is_none() {
        let mut text = vec![b'x'; STAMP_LEN];
        write_stamp(&mut text, 123_456_789);
        let mut line = b":a!b@c PRIVMSG #room :".to_vec();
        line.extend_from_slice(&text);
        line.extend_from_slice(b" padding");
        assert_eq!(
            classify(&line),
            Line::Privmsg {
                stamp: Some(123_456_789)
            }
        );
        assert_eq!(
            classify(b":a PRIVMSG #r :%ts12x4567890123456"),
            Line::Privmsg { stamp: None }
        );
        assert_eq!(
            classify(b":a PRIVMSG #r :%ts12"),
            Line::Privmsg { stamp: None }
        );
        assert_eq!(classify(b":a PRIVMSG #r"), Line::Privmsg { stamp: None });
    }

    #[test]
    fn pings_are_answered_with_their_own_parameters() {
        assert_eq!(
            classify(b"PING :cookie123"),
            Line::Ping {
                params: b":cookie123"
            }
        );
        assert_eq!(
            classify(b":irc.local PING :tok"),
            Line::Ping { params: b":tok" }
        );
        assert_eq!(pong_for(b":cookie123"), b"PONG :cookie123\r\n");
        assert_eq!(pong_for(b""), b"PONG :\r\n");
        assert_eq!(classify(b":s PONG s :x"), Line::Pong);
        assert_eq!(
            classify(b"ERROR :Closing link (Excess Flood)"),
            Line::Error {
                text: b"Closing link (Excess Flood)"
            }
        );
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut s = Scanner::new(1024);
        s.extend(b":a PRIVMSG #r :one\r\n:a PRIV");
        assert_eq!(all(&mut s), vec!["Privmsg { stamp: None }"]);
        assert_eq!(s.pending(), b":a PRIV");
        s.extend(b"MSG #r :two\r\nPING :x\r\n");
        assert_eq!(
            all(&mut s),
            vec!["Privmsg { stamp: None }", "Ping { params: [58, 120] }"]
        );
        assert!(s.pending().is_empty());
    }

    #[test]
    fn stopping_early_keeps_the_rest() {
        let mut s = Scanner::new(1024);
        s.extend(b":s 376 me :End\r\n:a PRIVMSG #r :x\r\n");
        let mut seen = 0;
        s.lines(|_| {
            seen += 1;
            false
        });
        assert_eq!(seen, 1);
        assert_eq!(s.pending(), b":a PRIVMSG #r :x\r\n");
    }

    #[test]
    fn an_endless_line_does_not_grow_the_buffer_forever() {
        let mut s = Scanner::new(1024);
        s.extend(&vec![b'x'; 70 * 1024]);
        assert!(all(&mut s).is_empty());
        assert!(s.pending().is_empty());
    }
}
