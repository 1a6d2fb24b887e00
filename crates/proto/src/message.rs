//! One IRC line, parsed: `@tags :source COMMAND params :trailing`.

use smallvec::SmallVec;

use crate::command::Command;
use crate::limits::{MAX_BODY_BYTES, MAX_CLIENT_TAG_BYTES, MAX_PARAMS};
use crate::params::Params;
use crate::tags::unescape_tag_value;
use crate::validate::is_valid_tag_key;
use crate::writer::LineWriter;

/// A message tag. `value` is unescaped; a tag sent without `=` has an empty value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A parsed IRC message. The command is upper-cased so that `privmsg` and
/// `PRIVMSG` are one command, as every server treats them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    pub tags: Vec<Tag>,
    pub source: Option<String>,
    pub command: Command,
    pub params: Params,
}

/// Why a line was refused. Each maps to the reply a client is owed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but spaces: ignored, as every server does.
    Empty,
    /// The tags exceed what a client may send: `417 ERR_INPUTTOOLONG`.
    TagsTooLong,
    /// The part after the tags exceeds 510 bytes: `417 ERR_INPUTTOOLONG`.
    BodyTooLong,
    /// Not UTF-8. Never relayed; the command is given when it could be read so that
    /// the `FAIL <command> INVALID_UTF8` reply can name it.
    InvalidUtf8 { command: Option<String> },
    /// A NUL, or a CR or LF inside the line: bytes no IRC line may hold. (Other
    /// control bytes pass: CTCP needs `\x01`, formatting needs `\x02` and friends.)
    ForbiddenByte { command: Option<String> },
    /// A source but no command, or a command that is neither letters nor 3 digits.
    NoCommand,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Empty => write!(f, "empty line"),
            ParseError::TagsTooLong => write!(f, "message tags too long"),
            ParseError::BodyTooLong => write!(f, "line too long"),
            ParseError::InvalidUtf8 { .. } => write!(f, "line is not valid UTF-8"),
            ParseError::ForbiddenByte { .. } => write!(f, "line holds a NUL or control byte"),
            ParseError::NoCommand => write!(f, "line has no command"),
        }
    }
}

impl std::error::Error for ParseError {}

impl Message {
    /// A message with a command and parameters and nothing else.
    pub fn new(command: &str, params: &[&str]) -> Message {
        Message {
            tags: Vec::new(),
            source: None,
            command: Command::new(command),
            params: params.iter().collect(),
        }
    }

    /// Parses one line, without its CR LF, as a client sent it.
    pub fn parse(line: &[u8]) -> Result<Message, ParseError> {
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(_) => {
                return Err(ParseError::InvalidUtf8 {
                    command: command_of_garbage(line),
                })
            }
        };
        if memchr::memchr3(0, b'\r', b'\n', line).is_some() {
            return Err(ParseError::ForbiddenByte {
                command: command_of_garbage(line),
            });
        }
        let mut rest = text.trim_start_matches(' ');
        let mut tags = Vec::new();
        if let Some(after_at) = rest.strip_prefix('@') {
            let (raw_tags, after) = split_at_space(after_at);
            // `@` + tags + one space.
            if raw_tags.len() + 2 > MAX_CLIENT_TAG_BYTES {
                return Err(ParseError::TagsTooLong);
            }
            tags = parse_tags(raw_tags);
            rest = after.trim_start_matches(' ');
        }
        if rest.len() > MAX_BODY_BYTES {
            return Err(ParseError::BodyTooLong);
        }
        let mut source = None;
        if let Some(after_colon) = rest.strip_prefix(':') {
            let (src, after) = split_at_space(after_colon);
            source = Some(src.to_owned());
            rest = after.trim_start_matches(' ');
        }
        let (command, mut rest) = split_at_space(rest);
        let all_params = rest;
        if command.is_empty() {
            return if source.is_none() && tags.is_empty() {
                Err(ParseError::Empty)
            } else {
                Err(ParseError::NoCommand)
            };
        }
        // Letters first, then letters, digits or `_`: unknown commands such as
        // `NONEXISTENT_COMMAND` still parse, so that they get 421 with their label.
        let is_word = command
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && command
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let is_numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
        if !is_word && !is_numeric {
            return Err(ParseError::NoCommand);
        }
        // One copy of the parameters' part of the line, and where each parameter lies
        // in it: `len` bytes from where `from`, a suffix of that part, starts. (The
        // line is at most a few kilobytes: offsets fit in u16.)
        let mut spans = SmallVec::new();
        let span = |from: &str, len: usize| {
            let start = all_params.len() - from.len();
            (start as u16, (start + len) as u16)
        };
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                spans.push(span(trailing, trailing.len()));
                break;
            }
            if spans.len() == MAX_PARAMS - 1 {
                spans.push(span(rest, rest.len()));
                break;
            }
            let (param, after) = split_at_space(rest);
            spans.push(span(rest, param.len()));
            rest = after;
        }
        let params = Params::in_text(all_params.into(), spans);
        Ok(Message {
            tags,
            source,
            command: Command::upper(command),
            params,
        })
    }

    /// The value of a tag, if the message carries it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }

    /// The parameter at `index`, if there is one.
    pub fn param(&self, index: usize) -> Option<&str> {
        self.params.get(index)
    }

    /// The message as a wire line, CR LF included, with a trailing colon only where
    /// needed, so that any line that parsed is written back within the same limits.
    pub fn to_line(&self) -> Vec<u8> {
        let mut w = LineWriter::minimal();
        for tag in &self.tags {
            w.tag(&tag.key, &tag.value);
        }
        w.start(self.source.as_deref(), &self.command);
        for p in &self.params {
            w.param(p);
        }
        w.finish()
    }
}

/// `text` cut at its first space, which goes with neither part; all of it and
/// nothing when it has none.
fn split_at_space(text: &str) -> (&str, &str) {
    memchr::memchr(b' ', text.as_bytes())
        // A space is one byte, so both sides are on character boundaries.
        .and_then(|at| Some((text.get(..at)?, text.get(at + 1..)?)))
        .unwrap_or((text, ""))
}

/// Parses `key=value;key2` into tags, keeping the last of repeated keys as the
/// specification says and dropping keys that are not well formed.
fn parse_tags(raw: &str) -> Vec<Tag> {
    let mut tags: Vec<Tag> = Vec::new();
    for item in raw.split(';') {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        if !is_valid_tag_key(key) {
            continue;
        }
        let value = unescape_tag_value(value);
        if let Some(existing) = tags.iter_mut().find(|t| t.key == key) {
            existing.value = value;
        } else {
            tags.push(Tag {
                key: key.to_owned(),
                value,
            });
        }
    }
    tags
}

/// Best effort at naming the command of a line that failed to parse, so that the
/// error reply can say which command was refused.
fn command_of_garbage(line: &[u8]) -> Option<String> {
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let mut word = words.next()?;
    if word.first() == Some(&b'@') {
        word = words.next()?;
    }
    if word.first() == Some(&b':') {
        word = words.next()?;
    }
    if !word.is_empty()
        && word.len() <= 32
        && word.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        Some(String::from_utf8_lossy(word).to_ascii_uppercase())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_a_full_line() {
        let m = parse("@a=b\\sc;+d :nick!u@h privmsg #chan :hello world");
        assert_eq!(m.tag("a"), Some("b c"));
        assert_eq!(m.tag("+d"), Some(""));
        assert_eq!(m.source.as_deref(), Some("nick!u@h"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, vec!["#chan", "hello world"]);
    }

    #[test]
    fn trailing_may_be_empty_or_hold_colons() {
        assert_eq!(parse("TOPIC #a :").params, vec!["#a", ""]);
        assert_eq!(parse("PRIVMSG a ::-)").params, vec!["a", ":-)"]);
        assert_eq!(parse("NICK   bob  ").params, vec!["bob"]);
    }

    #[test]
    fn more_than_fifteen_params_fold_into_the_last() {
        let m = parse("X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17");
        assert_eq!(m.params.len(), 15);
        assert_eq!(&m.params[14], "15 16 17");
    }

    #[test]
    fn refuses_what_is_not_a_line() {
        assert_eq!(Message::parse(b""), Err(ParseError::Empty));
        assert_eq!(Message::parse(b"   "), Err(ParseError::Empty));
        assert_eq!(Message::parse(b":src"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse(b"PRIV-MSG x"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse(b"1X x"), Err(ParseError::NoCommand));
        assert_eq!(parse("NO_SUCH_COMMAND2").command, "NO_SUCH_COMMAND2");
        assert_eq!(
            Message::parse(b"PRIVMSG a :\xff\xfe"),
            Err(ParseError::InvalidUtf8 {
                command: Some("PRIVMSG".into())
            })
        );
        assert_eq!(
            Message::parse(b"PRIVMSG a :x\0y"),
            Err(ParseError::ForbiddenByte {
                command: Some("PRIVMSG".into())
            })
        );
    }

    #[test]
    fn enforces_the_length_limits() {
        let body = format!("PRIVMSG a :{}", "x".repeat(499));
        assert_eq!(body.len(), 510);
        assert!(Message::parse(body.as_bytes()).is_ok());
        let long = format!("{body}x");
        assert_eq!(
            Message::parse(long.as_bytes()),
            Err(ParseError::BodyTooLong)
        );
        let tags = format!("@a={} PING x", "v".repeat(4093));
        assert_eq!(
            Message::parse(tags.as_bytes()),
            Err(ParseError::TagsTooLong)
        );
        let tags = format!("@a={} PING x", "v".repeat(4092));
        assert!(Message::parse(tags.as_bytes()).is_ok());
    }

    #[test]
    fn serializes_back() {
        let m = parse("@k=v;x :s PRIVMSG #a :hi there");
        assert_eq!(m.to_line(), b"@k=v;x :s PRIVMSG #a :hi there\r\n".to_vec());
    }
}
