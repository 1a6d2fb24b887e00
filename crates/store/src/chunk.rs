//! History chunks: the messages of one conversation from one commit, in one row.
//!
//! Under load a commit holds many messages of each conversation; writing them as one
//! row costs one B-tree insert (and one index entry) for all of them instead of one
//! each. A chunk is never rewritten by normal writes: history stays append-only.
//!
//! A chunk's body is a format byte, then for each message in increasing `Seq` order:
//!
//! ```text
//! varint   seq minus the previous message's (the first: minus the chunk's first_seq, so 0)
//! byte     flags: ACCOUNT, EXPLICIT_MSGID, MEMBERS_ONLY, and the command's code
//! [field]  command, when its code is OTHER_COMMAND
//! [field]  msgid, when EXPLICIT_MSGID (otherwise it is seq.msgid())
//! name     source
//! [field]  account, when ACCOUNT
//! name     recipient
//! field    client tags
//! field    text
//! ```
//!
//! where a field is a varint byte length and that many bytes of UTF-8, and a name is
//! a varint `n`: when even, a field of `n / 2` bytes follows, which becomes the next
//! entry of the chunk's name table (while it holds fewer than [`MAX_NAMES`]); when
//! odd, the name is entry `n / 2` of that table. A conversation's messages come from
//! few people to few places, so most names are a byte. Reading checks every length,
//! every string and the chunk's columns (first and last seq, count), so a damaged
//! chunk is reported as such instead of misread.

use crate::model::{MessageParts, Seq, StoredMessage};

/// The first byte of every chunk body; another value is a format this natter does not
/// know.
const FORMAT: u8 = 1;

const ACCOUNT: u8 = 1;
const EXPLICIT_MSGID: u8 = 2;
/// Two bits: PRIVMSG, NOTICE, TAGMSG or OTHER_COMMAND.
const COMMAND_SHIFT: u32 = 2;
const COMMAND_MASK: u8 = 3;
/// Said in a room closed to outsiders ([`StoredMessage::members_only`]).
const MEMBERS_ONLY: u8 = 16;
/// Bits no flag uses: set, they mean a damaged chunk.
const UNKNOWN_FLAGS: u8 =
    !(ACCOUNT | EXPLICIT_MSGID | COMMAND_MASK << COMMAND_SHIFT | MEMBERS_ONLY);
const PRIVMSG: u8 = 0;
const NOTICE: u8 = 1;
const TAGMSG: u8 = 2;
const OTHER_COMMAND: u8 = 3;

/// Names (sources and recipients) a chunk's table holds at most; later new names are
/// written out each time.
const MAX_NAMES: usize = 32;

/// Messages a chunk holds at most: a query decodes whole chunks, so they stay small
/// enough that reading one to answer `LATEST 1` costs little.
pub(crate) const MAX_MESSAGES: usize = 256;

/// Milliseconds between the first and last message of a chunk at most. Retention cuts
/// by time; with this bound only the chunks written around the cut can straddle it,
/// and pruning finds them in a short range of rows instead of scanning the table.
pub(crate) const MAX_SPAN_MS: i64 = 60_000;

/// Whether a message at `seq` may join a chunk that starts at `first` and holds
/// `count` messages.
pub(crate) fn fits(first: Seq, count: usize, seq: Seq) -> bool {
    count < MAX_MESSAGES && seq.time_ms() - first.time_ms() <= MAX_SPAN_MS
}

/// Builds chunk bodies from messages already in `Seq` order.
pub(crate) struct ChunkBuilder {
    body: Vec<u8>,
    /// Where the names of the table are in `body`.
    names: Vec<std::ops::Range<usize>>,
    first: Option<Seq>,
    last: Option<Seq>,
    count: usize,
}

impl Default for ChunkBuilder {
    fn default() -> ChunkBuilder {
        ChunkBuilder::new()
    }
}

impl ChunkBuilder {
    pub(crate) fn new() -> ChunkBuilder {
        ChunkBuilder {
            body: vec![FORMAT],
            names: Vec::new(),
            first: None,
            last: None,
            count: 0,
        }
    }

    /// Starts a new chunk, keeping the buffers.
    pub(crate) fn clear(&mut self) {
        self.body.clear();
        self.body.push(FORMAT);
        self.names.clear();
        self.first = None;
        self.last = None;
        self.count = 0;
    }

    /// Whether a message at `seq` may join this chunk (an empty one takes any).
    pub(crate) fn fits(&self, seq: Seq) -> bool {
        match self.first {
            None => true,
            Some(first) => fits(first, self.count, seq),
        }
    }

    /// Adds a message, later than the last one added.
    pub(crate) fn push(&mut self, m: &StoredMessage) {
        let previous = self.last.unwrap_or(m.seq).raw();
        put_varint(&mut self.body, m.seq.raw().wrapping_sub(previous) as u64);
        self.first.get_or_insert(m.seq);
        self.last = Some(m.seq);
        self.count += 1;
        let command = match m.command() {
            "PRIVMSG" => PRIVMSG,
            "NOTICE" => NOTICE,
            "TAGMSG" => TAGMSG,
            _ => OTHER_COMMAND,
        };
        let own_msgid = m.own_msgid();
        let mut flags = command << COMMAND_SHIFT;
        if m.account().is_some() {
            flags |= ACCOUNT;
        }
        if own_msgid.is_some() {
            flags |= EXPLICIT_MSGID;
        }
        if m.members_only {
            flags |= MEMBERS_ONLY;
        }
        self.body.push(flags);
        if command == OTHER_COMMAND {
            put_field(&mut self.body, m.command());
        }
        if let Some(msgid) = own_msgid {
            put_field(&mut self.body, msgid);
        }
        self.put_name(m.source());
        if let Some(account) = m.account() {
            put_field(&mut self.body, account);
        }
        self.put_name(m.recipient());
        put_field(&mut self.body, m.client_tags());
        put_field(&mut self.body, m.text());
    }

    fn put_name(&mut self, name: &str) {
        let body = &mut self.body;
        if let Some(i) = self
            .names
            .iter()
            .position(|range| &body[range.clone()] == name.as_bytes())
        {
            put_varint(body, (i as u64) << 1 | 1);
            return;
        }
        put_varint(body, (name.len() as u64) << 1);
        let start = body.len();
        body.extend_from_slice(name.as_bytes());
        if self.names.len() < MAX_NAMES {
            self.names.push(start..body.len());
        }
    }

    /// (first seq, last seq, count, body) of the chunk built; `None` when empty.
    pub(crate) fn parts(&self) -> Option<(Seq, Seq, usize, &[u8])> {
        Some((self.first?, self.last?, self.count, &self.body))
    }
}

/// A message read from a chunk, borrowing its strings from the chunk body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MessageView<'a> {
    pub seq: Seq,
    msgid: Option<&'a str>,
    command: &'a str,
    source: &'a str,
    account: Option<&'a str>,
    recipient: &'a str,
    client_tags: &'a str,
    text: &'a str,
    members_only: bool,
}

impl MessageView<'_> {
    pub(crate) fn to_message(self, target: &str) -> StoredMessage {
        let mut message = StoredMessage::new(
            self.seq,
            MessageParts {
                msgid: self.msgid,
                target,
                command: self.command,
                source: self.source,
                account: self.account,
                recipient: self.recipient,
                text: self.text,
                client_tags: self.client_tags,
            },
        );
        message.members_only = self.members_only;
        message
    }
}

/// The columns stored beside a chunk body, which the body must agree with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkColumns {
    pub first: i64,
    pub last: i64,
    pub count: i64,
}

/// Reads every message of a chunk, oldest first, into `out` (cleared first). An
/// error says what is wrong with the chunk.
pub(crate) fn decode<'a>(
    columns: ChunkColumns,
    body: &'a [u8],
    out: &mut Vec<MessageView<'a>>,
) -> Result<(), String> {
    out.clear();
    let mut reader = Reader { rest: body };
    let format = reader.byte()?;
    if format != FORMAT {
        return Err(format!("unknown chunk format {format}"));
    }
    let mut seq = columns.first;
    let mut names: Vec<&str> = Vec::new();
    while !reader.rest.is_empty() {
        let delta = reader.varint()?;
        if out.is_empty() {
            if delta != 0 {
                return Err("the first message is not at the chunk's first seq".into());
            }
        } else {
            let delta = i64::try_from(delta)
                .ok()
                .filter(|d| *d > 0)
                .ok_or("messages out of order")?;
            seq = seq.checked_add(delta).ok_or("seq out of range")?;
        }
        let flags = reader.byte()?;
        if flags & UNKNOWN_FLAGS != 0 {
            return Err(format!("unknown flags {flags:#x}"));
        }
        let command = match flags >> COMMAND_SHIFT & COMMAND_MASK {
            PRIVMSG => "PRIVMSG",
            NOTICE => "NOTICE",
            TAGMSG => "TAGMSG",
            _ => reader.field()?,
        };
        let msgid = if flags & EXPLICIT_MSGID != 0 {
            Some(reader.field()?)
        } else {
            None
        };
        let source = reader.name(&mut names)?;
        let account = if flags & ACCOUNT != 0 {
            Some(reader.field()?)
        } else {
            None
        };
        out.push(MessageView {
            seq: Seq::from_raw(seq),
            msgid,
            command,
            source,
            account,
            recipient: reader.name(&mut names)?,
            client_tags: reader.field()?,
            text: reader.field()?,
            members_only: flags & MEMBERS_ONLY != 0,
        });
    }
    if seq != columns.last {
        return Err("the last message is not at the chunk's last seq".into());
    }
    if i64::try_from(out.len()) != Ok(columns.count) {
        return Err(format!(
            "{} messages where {} were written",
            out.len(),
            columns.count
        ));
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_field(out: &mut Vec<u8>, field: &str) {
    put_varint(out, field.len() as u64);
    out.extend_from_slice(field.as_bytes());
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&first, rest) = self.rest.split_first().ok_or("cut short")?;
        self.rest = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number too long".into())
    }

    fn field(&mut self) -> Result<&'a str, String> {
        let len = self.varint()?;
        self.field_of(len)
    }

    fn name(&mut self, names: &mut Vec<&'a str>) -> Result<&'a str, String> {
        let n = self.varint()?;
        if n & 1 == 1 {
            let i = usize::try_from(n >> 1).unwrap_or(usize::MAX);
            return names
                .get(i)
                .copied()
                .ok_or_else(|| "an unknown name".into());
        }
        let name = self.field_of(n >> 1)?;
        if names.len() < MAX_NAMES {
            names.push(name);
        }
        Ok(name)
    }

    fn field_of(&mut self, len: u64) -> Result<&'a str, String> {
        let len = usize::try_from(len).map_err(|_| "a field too long")?;
        if len > self.rest.len() {
            return Err("cut short".into());
        }
        let (field, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(field).map_err(|_| "a field that is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: Seq, text: &str) -> StoredMessage {
        StoredMessage::example(seq, "#r", text)
    }

    fn chunk_of(messages: &[StoredMessage]) -> (ChunkColumns, Vec<u8>) {
        let mut builder = ChunkBuilder::new();
        for m in messages {
            builder.push(m);
        }
        let (first, last, count, body) = builder.parts().unwrap();
        let columns = ChunkColumns {
            first: first.raw(),
            last: last.raw(),
            count: count as i64,
        };
        (columns, body.to_vec())
    }

    fn read_back(columns: ChunkColumns, body: &[u8]) -> Result<Vec<StoredMessage>, String> {
        let mut views = Vec::new();
        decode(columns, body, &mut views)?;
        Ok(views.into_iter().map(|v| v.to_message("#r")).collect())
    }

    #[test]
    fn every_field_reads_back_as_written() {
        let first = Seq::at(1_000);
        let mut odd = message(first.next(0), "one\ntwo ünïcode").with(|m| {
            m.command = "NOTICE";
            m.account = Some("alice");
            m.client_tags = "+draft/react=1";
        });
        odd.members_only = true;
        let legacy = message(odd.seq.next(5_000), "").with(|m| {
            m.msgid = Some("19abc-1");
            m.command = "WALLOPS";
            m.account = Some("");
        });
        let zero_padded = message(legacy.seq.next(0), "x");
        let padded_msgid = format!("0{}", zero_padded.seq.msgid());
        let zero_padded = zero_padded.with(|m| m.msgid = Some(&padded_msgid));
        let mut messages = vec![message(first, "hello"), odd, legacy, zero_padded];
        // More names than the table holds, used again after it is full.
        let mut seq = messages[3].seq;
        for n in 0..(MAX_NAMES as u64 + 10) {
            for again in [n, n / 3] {
                seq = seq.next(0);
                let source = format!("nick{again}!u@h");
                let recipient = format!("#room{}", again % 5);
                messages.push(message(seq, "").with(|m| {
                    m.source = &source;
                    m.recipient = &recipient;
                }));
            }
        }
        let (columns, body) = chunk_of(&messages);
        assert_eq!(read_back(columns, &body).unwrap(), messages);
    }

    #[test]
    fn a_damaged_chunk_is_an_error_not_a_panic() {
        let messages: Vec<StoredMessage> = (0..5)
            .map(|n| message(Seq::at(1_000 + n), &format!("text {n}")))
            .collect();
        let (columns, body) = chunk_of(&messages);
        // Cut anywhere: always an error.
        for len in 0..body.len() {
            assert!(read_back(columns, &body[..len]).is_err(), "cut at {len}");
        }
        // Any byte changed: an error, or messages that still satisfy every check.
        for at in 0..body.len() {
            for value in [0x00, 0x7f, 0x80, 0xff] {
                let mut damaged = body.clone();
                damaged[at] = value;
                let _ = read_back(columns, &damaged);
            }
        }
        let mut wrong_count = columns;
        wrong_count.count += 1;
        assert!(read_back(wrong_count, &body).is_err());
        let mut wrong_last = columns;
        wrong_last.last += 1;
        assert!(read_back(wrong_last, &body).is_err());
        let mut format = body.clone();
        format[0] = 9;
        assert!(read_back(columns, &format)
            .unwrap_err()
            .contains("unknown chunk format"));
    }

    #[test]
    fn chunks_are_bounded_in_count_and_time() {
        let first = Seq::at(1_000);
        assert!(fits(first, MAX_MESSAGES - 1, Seq::at(1_000 + MAX_SPAN_MS)));
        assert!(!fits(first, MAX_MESSAGES, first.next(0)));
        assert!(!fits(first, 1, Seq::at(1_001 + MAX_SPAN_MS)));
    }
}
