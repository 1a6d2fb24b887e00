//! Serialization straight into a buffer, with no intermediate message value: the hub
//! writes each delivered line once and shares the bytes with every recipient.

use crate::tags::escape_tag_value;

/// The last parameter written, and whether its colon is written already.
#[derive(Clone, Copy)]
struct Pending {
    start: usize,
    end: usize,
    has_colon: bool,
}

/// Writes one line: tags first (optional), then `start`, then parameters, then
/// `finish`. The last parameter is always written as a trailing (`:`) parameter,
/// as ngircd and InspIRCd do, so that naive clients find text after ` :`.
#[derive(Default)]
pub struct LineWriter {
    buf: Vec<u8>,
    has_tags: bool,
    /// Where the last parameter written lies, until the next one or the end.
    pending: Option<Pending>,
    /// Write the colon of the last parameter only where the grammar needs it.
    minimal: bool,
    /// Where the part after the tags begins: the part the 512-byte limit is about.
    body_start: usize,
}

impl LineWriter {
    pub fn new() -> LineWriter {
        LineWriter::with_capacity(128)
    }

    /// A writer with room for `bytes`. A line written to exactly that size comes back
    /// with no spare capacity, and `Bytes::from` then takes it without allocating a
    /// shared header: a relayed message is one allocation instead of two.
    pub fn with_capacity(bytes: usize) -> LineWriter {
        LineWriter {
            buf: Vec::with_capacity(bytes),
            has_tags: false,
            pending: None,
            minimal: false,
            body_start: 0,
        }
    }

    /// A writer that adds the last parameter's colon only when it is empty, holds a
    /// space or starts with a colon: the exact inverse of parsing, so a line at the
    /// length limit stays within it when written back.
    pub fn minimal() -> LineWriter {
        LineWriter {
            minimal: true,
            ..LineWriter::new()
        }
    }

    /// Adds a tag; call before [`LineWriter::start`].
    pub fn tag(&mut self, key: &str, value: &str) -> &mut Self {
        self.buf.push(if self.has_tags { b';' } else { b'@' });
        self.has_tags = true;
        self.buf.extend_from_slice(key.as_bytes());
        if !value.is_empty() {
            self.buf.push(b'=');
            escape_tag_value(value, &mut self.buf);
        }
        self
    }

    /// Writes the source and command.
    pub fn start(&mut self, source: Option<&str>, command: &str) -> &mut Self {
        if self.has_tags {
            self.buf.push(b' ');
        }
        self.body_start = self.buf.len();
        if let Some(source) = source {
            self.buf.push(b':');
            self.buf.extend_from_slice(source.as_bytes());
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(command.as_bytes());
        self
    }

    /// Adds a parameter, after a space. Where each ends is kept until the next, so
    /// that the last can be given its colon once it is known to be the last.
    pub fn param(&mut self, param: &str) -> &mut Self {
        self.put_param(b" ", param, false)
    }

    /// Adds the last parameter, colon and all, as [`LineWriter::param`] then
    /// [`LineWriter::finish`] would: written once in place, where that would move it by
    /// a byte to put the colon in front. Only a minimal writer may leave the colon out,
    /// so only the other kind writes this way; nothing but `finish` may follow.
    pub fn trailing(&mut self, param: &str) -> &mut Self {
        if self.minimal {
            return self.param(param);
        }
        self.put_param(b" :", param, true)
    }

    /// Adds every parameter of `params`, the last as [`LineWriter::trailing`].
    pub fn params<P: AsRef<str>>(&mut self, params: &[P]) -> &mut Self {
        if let Some((last, middle)) = params.split_last() {
            for p in middle {
                self.param(p.as_ref());
            }
            self.trailing(last.as_ref());
        }
        self
    }

    /// Writes `lead` (the space, and the colon if `has_colon`), then `param`, and
    /// keeps where it lies until the next parameter or the end.
    fn put_param(&mut self, lead: &[u8], param: &str, has_colon: bool) -> &mut Self {
        self.flush_pending(false);
        self.buf.extend_from_slice(lead);
        let start = self.buf.len();
        self.buf.extend_from_slice(param.as_bytes());
        self.pending = Some(Pending {
            start,
            end: self.buf.len(),
            has_colon,
        });
        self
    }

    /// Ends the line with CR LF, cutting the last parameter (at a character
    /// boundary) so that the part after the tags is at most `max_line` bytes, CR LF
    /// included. Lines echo what clients send; this keeps every line a client
    /// receives within what IRC allows, whatever it echoes.
    pub fn finish_within(mut self, max_line: usize) -> Vec<u8> {
        if let Some(pending) = &mut self.pending {
            // CR LF and perhaps the colon (a byte) are still to come.
            let colon = usize::from(!pending.has_colon);
            let total = self.buf.len() - self.body_start + colon + 2;
            if total > max_line {
                let excess = total - max_line;
                let param = &self.buf[pending.start..pending.end];
                let mut keep = param.len().saturating_sub(excess);
                while keep > 0 && (param[keep] & 0xC0) == 0x80 {
                    keep -= 1;
                }
                pending.end = pending.start + keep;
                self.buf.truncate(pending.end);
            }
        }
        self.finish()
    }

    /// Ends the line with CR LF and returns it.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush_pending(true);
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }

    fn flush_pending(&mut self, last: bool) {
        let Some(Pending {
            start,
            end,
            has_colon,
        }) = self.pending.take()
        else {
            return;
        };
        debug_assert!(
            !has_colon || last,
            "nothing but `finish` follows `trailing`"
        );
        debug_assert!(
            last || !(self.buf[start..end].is_empty() || self.buf[start..end].contains(&b' ')),
            "only the last parameter may be empty or hold a space"
        );
        if !last || has_colon {
            return;
        }
        let needs_colon = || {
            let param = &self.buf[start..end];
            param.is_empty() || param.contains(&b' ') || param[0] == b':'
        };
        if !self.minimal || needs_colon() {
            // Shifts only the last parameter, by one byte.
            self.buf.insert(start, b':');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_tags_source_and_trailing() {
        let mut w = LineWriter::new();
        w.tag("time", "2026-01-01T00:00:00.000Z").tag("+x", "a b");
        w.start(Some("srv"), "NOTICE").param("*").param("hi");
        assert_eq!(
            w.finish(),
            b"@time=2026-01-01T00:00:00.000Z;+x=a\\sb :srv NOTICE * :hi\r\n".to_vec()
        );
    }

    #[test]
    fn finish_within_cuts_the_last_parameter_at_a_character_boundary() {
        let mut w = LineWriter::new();
        w.tag("time", "x");
        w.start(Some("srv"), "NOTICE")
            .param("*")
            .param(&"é".repeat(300));
        let line = w.finish_within(64);
        let body = &line[line.iter().position(|&b| b == b' ').unwrap() + 1..];
        assert!(body.len() <= 64, "{}", body.len());
        assert!(std::str::from_utf8(&line).is_ok());
        assert!(line.ends_with(b"\r\n"));
    }

    /// `trailing` is a faster `param` for the last parameter: the same bytes, cut or not.
    #[test]
    fn trailing_writes_what_param_then_finish_write() {
        let long = "é".repeat(300);
        for last in ["hi there", "", ":x", "plain", long.as_str()] {
            for max in [512, 40, 25] {
                let with_param = {
                    let mut w = LineWriter::new();
                    w.tag("time", "t").start(Some("a!b@c"), "PRIVMSG");
                    w.param("#room").param(last);
                    w.finish_within(max)
                };
                let with_trailing = {
                    let mut w = LineWriter::new();
                    w.tag("time", "t").start(Some("a!b@c"), "PRIVMSG");
                    w.param("#room").trailing(last);
                    w.finish_within(max)
                };
                assert_eq!(
                    String::from_utf8_lossy(&with_trailing),
                    String::from_utf8_lossy(&with_param),
                    "last {last:?}, max {max}"
                );
            }
        }
        let mut w = LineWriter::minimal();
        w.start(None, "PRIVMSG").param("#r").trailing("word");
        assert_eq!(w.finish(), b"PRIVMSG #r word\r\n".to_vec());
    }

    #[test]
    fn a_line_without_params_has_no_colon() {
        let mut w = LineWriter::new();
        w.start(None, "PING");
        assert_eq!(w.finish(), b"PING\r\n".to_vec());
    }
}
