//! What the store keeps.

use std::borrow::Cow;

/// A registered account. Names are stored folded (by the server's casemapping), the
/// spelling the user chose is kept for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_ms: i64,
}

/// A msgid made from a [`Seq`]: at most 16 hex digits, on the stack (one is made for
/// every message relayed).
pub type MsgId = arrayvec::ArrayString<16>;

/// A message's place in the server's history, and its time: a hybrid logical clock.
///
/// The upper bits hold the time in milliseconds since the epoch, the lower
/// [`Seq::COUNTER_BITS`] count the messages within that millisecond. Each new value is
/// greater than the one before it and not earlier than the wall clock, so one number
/// orders history, carries each message's time, and names the message (its msgid is
/// this number in hex). A query by time is then a range of numbers: the store needs
/// one index, on (conversation, seq), to answer every CHATHISTORY query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(i64);

impl Seq {
    /// Messages one millisecond can hold before the clock is moved on by a tick.
    pub const COUNTER_BITS: u32 = 20;
    const LATEST_MS: i64 = i64::MAX >> Seq::COUNTER_BITS;

    /// The first number of millisecond `time_ms` (clamped to what a `Seq` can hold).
    pub fn at(time_ms: i64) -> Seq {
        Seq(time_ms.clamp(0, Seq::LATEST_MS) << Seq::COUNTER_BITS)
    }

    /// The number after this one, at `now_ms` or later: a clock that goes back does
    /// not reorder history, it only stretches the same millisecond.
    pub fn next(self, now_ms: i64) -> Seq {
        Seq(self.0.saturating_add(1)).max(Seq::at(now_ms))
    }

    /// The message's time, in milliseconds since the epoch.
    pub fn time_ms(self) -> i64 {
        self.0 >> Seq::COUNTER_BITS
    }

    pub fn from_raw(raw: i64) -> Seq {
        Seq(raw)
    }

    pub fn raw(self) -> i64 {
        self.0
    }

    /// The message id that names this message on the wire.
    pub fn msgid(self) -> MsgId {
        // By hand rather than `format!("{:x}")`, a byte (two digits) a step: one is
        // made for every line relayed.
        const PAIRS: [[u8; 2]; 256] = hex_pairs();
        let raw = self.0.unsigned_abs();
        let mut digits = [0u8; 16];
        for (i, pair) in digits.chunks_exact_mut(2).enumerate() {
            pair.copy_from_slice(&PAIRS[(raw >> (56 - 8 * i)) as u8 as usize]);
        }
        // No leading zeros, but one digit for zero itself.
        let start = ((raw | 1).leading_zeros() / 4) as usize;
        // Hex digits only: always UTF-8, and 16 at most: always fits.
        let mut msgid = MsgId::new();
        let _ = msgid.try_push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
        msgid
    }

    /// The number a msgid from [`Seq::msgid`] names; `None` for anything else.
    pub fn from_msgid(msgid: &str) -> Option<Seq> {
        let hex_only = !msgid.is_empty()
            && msgid.len() <= 16
            && msgid
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_only {
            return None;
        }
        i64::from_str_radix(msgid, 16).ok().map(Seq)
    }

    /// Whether `msgid` is the one this number names ([`Seq::msgid`]: lowercase hex
    /// without leading zeros), compared digit by digit without building it.
    pub fn names(self, msgid: &str) -> bool {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut rest = self.0.unsigned_abs();
        let mut digits = msgid.bytes().rev();
        loop {
            if digits.next() != Some(DIGITS[(rest & 0xf) as usize]) {
                return false;
            }
            rest >>= 4;
            if rest == 0 {
                return digits.next().is_none();
            }
        }
    }
}

/// Every byte as its two lowercase hex digits.
const fn hex_pairs() -> [[u8; 2]; 256] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
        byte += 1;
    }
    pairs
}

/// The parts of a message as stored, borrowed: what [`StoredMessage::new`] packs and
/// [`StoredMessage::parts`] gives back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageParts<'a> {
    /// The msgid it was relayed with, when that is not the one its number names
    /// (messages kept before msgids were derived from the sequence number); `None`
    /// for the usual [`Seq::msgid`], which is then never built unless asked for.
    pub msgid: Option<&'a str>,
    /// The conversation: a folded room name, or [`StoredMessage::direct_key`].
    pub target: &'a str,
    /// PRIVMSG, NOTICE or TAGMSG.
    pub command: &'a str,
    /// `nick!user@host` of the sender.
    pub source: &'a str,
    /// The sender's account, if logged in.
    pub account: Option<&'a str>,
    /// The target as the sender wrote it (`#Team`, `bob`).
    pub recipient: &'a str,
    pub text: &'a str,
    /// Client-only tags, serialized as on the wire (`+a=b;+c`), or empty.
    pub client_tags: &'a str,
}

/// One message as stored: enough to replay it exactly as it was relayed.
///
/// Its text parts live in one allocation: a message is made on the hub's thread and
/// dropped on the store's (or the other way for history read back), and one
/// allocation freed across threads costs far less than eight.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its place in history, and its time.
    pub seq: Seq,
    /// Said in a room closed to outsiders (secret, invite-only or keyed): replayed
    /// only to those in that room since before it was said.
    pub members_only: bool,
    /// The parts one after another, in the order of [`MessageParts`]' fields.
    packed: Box<str>,
    /// Where each part ends in `packed`.
    ends: [u32; PARTS],
    has_account: bool,
    /// The msgid is the first part, not the one `seq` names.
    own_msgid: bool,
}

/// The text parts of a message: msgid, target, command, source, account, recipient,
/// text, client tags.
const PARTS: usize = 8;

impl StoredMessage {
    pub fn new(seq: Seq, parts: MessageParts<'_>) -> StoredMessage {
        // A msgid its number names is kept as that: one message, one representation.
        let own_msgid = parts.msgid.filter(|msgid| !seq.names(msgid));
        let fields = [
            own_msgid.unwrap_or(""),
            parts.target,
            parts.command,
            parts.source,
            parts.account.unwrap_or(""),
            parts.recipient,
            parts.text,
            parts.client_tags,
        ];
        let mut packed = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; PARTS];
        for (end, field) in ends.iter_mut().zip(fields) {
            // Most messages leave three parts empty: no copy for them.
            if !field.is_empty() {
                packed.push_str(field);
            }
            // A message is a few kilobytes at most: far below 4 GiB.
            *end = u32::try_from(packed.len()).unwrap_or(u32::MAX);
        }
        StoredMessage {
            seq,
            members_only: false,
            packed: packed.into_boxed_str(),
            ends,
            has_account: parts.account.is_some(),
            own_msgid: own_msgid.is_some(),
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.packed
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    pub fn parts(&self) -> MessageParts<'_> {
        MessageParts {
            msgid: self.own_msgid(),
            target: self.target(),
            command: self.command(),
            source: self.source(),
            account: self.account(),
            recipient: self.recipient(),
            text: self.text(),
            client_tags: self.client_tags(),
        }
    }

    /// The same message with some parts changed.
    pub fn with<'a>(&'a self, change: impl FnOnce(&mut MessageParts<'a>)) -> StoredMessage {
        let mut parts = self.parts();
        change(&mut parts);
        StoredMessage {
            members_only: self.members_only,
            ..StoredMessage::new(self.seq, parts)
        }
    }

    /// The msgid it was relayed with; built from its number for nearly every message.
    pub fn msgid(&self) -> Cow<'_, str> {
        match self.own_msgid() {
            Some(msgid) => Cow::Borrowed(msgid),
            None => Cow::Owned(self.seq.msgid().to_string()),
        }
    }

    /// Its msgid when that is not the one its number names ([`MessageParts::msgid`]).
    pub fn own_msgid(&self) -> Option<&str> {
        self.own_msgid.then(|| self.part(0))
    }

    pub fn target(&self) -> &str {
        self.part(1)
    }

    pub fn command(&self) -> &str {
        self.part(2)
    }

    pub fn source(&self) -> &str {
        self.part(3)
    }

    pub fn account(&self) -> Option<&str> {
        self.has_account.then(|| self.part(4))
    }

    pub fn recipient(&self) -> &str {
        self.part(5)
    }

    pub fn text(&self) -> &str {
        self.part(6)
    }

    pub fn client_tags(&self) -> &str {
        self.part(7)
    }

    /// Milliseconds since the epoch, as its server-time tag said.
    pub fn time_ms(&self) -> i64 {
        self.seq.time_ms()
    }

    /// The conversation key of a direct conversation between two parties (folded
    /// account names or nicks): the same whichever of them asks.
    pub fn direct_key(a: &str, b: &str) -> String {
        let mut key = String::with_capacity(a.len() + 1 + b.len());
        StoredMessage::write_direct_key(&mut key, a, b);
        key
    }

    /// [`StoredMessage::direct_key`] written into `key` (cleared first): a caller
    /// keeping one buffer makes a key per message without allocating.
    pub fn write_direct_key(key: &mut String, a: &str, b: &str) {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        key.clear();
        key.push_str(first);
        key.push(' ');
        key.push_str(second);
    }
}

#[cfg(test)]
impl StoredMessage {
    /// A PRIVMSG from `a!b@c` in `room`, with the msgid its number gives: for tests.
    pub(crate) fn example(seq: Seq, room: &str, text: &str) -> StoredMessage {
        StoredMessage::new(
            seq,
            MessageParts {
                msgid: None,
                target: room,
                command: "PRIVMSG",
                source: "a!b@c",
                account: None,
                recipient: room,
                text,
                client_tags: "",
            },
        )
    }
}

impl std::fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("seq", &self.seq)
            .field("members_only", &self.members_only)
            .field("parts", &self.parts())
            .finish()
    }
}

/// A write the server asks for; a batch of them is one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A message to history, and to the offline queue of each account listed.
    Message {
        message: StoredMessage,
        offline_for: Vec<String>,
    },
    /// Creates an account, or replaces the one of the same name.
    Account(Account),
    /// Deletes an account with its offline messages and read markers.
    DeleteAccount { name: String },
    /// An account has read a conversation up to a time.
    ReadMarker {
        account: String,
        target: String,
        time_ms: i64,
    },
}

/// Where in a conversation a history query starts or ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `msgid=...`
    Msgid(String),
    /// `timestamp=...`, in ms since the epoch.
    Time(i64),
    /// `*`: no bound.
    Unbounded,
}

/// The CHATHISTORY subcommands, as the store answers them. Every result is oldest
/// first; `limit` bounds the count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The most recent messages, after `after` if bounded.
    Latest { after: Selector, limit: usize },
    /// Messages strictly before the selector, the closest ones.
    Before { at: Selector, limit: usize },
    /// Messages strictly after the selector, the closest ones.
    After { at: Selector, limit: usize },
    /// Messages around the selector: about half before, half after.
    Around { at: Selector, limit: usize },
    /// Messages strictly between two selectors, from the first towards the second.
    Between {
        from: Selector,
        to: Selector,
        limit: usize,
    },
}

/// A conversation and the time of its latest message, for CHATHISTORY TARGETS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetActivity {
    pub target: String,
    pub latest_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_orders_messages_and_carries_their_time() {
        let first = Seq::at(1_000);
        let second = first.next(1_000);
        let third = second.next(999); // the clock went back: history does not
        assert!(first < second && second < third);
        assert_eq!(third.time_ms(), 1_000);
        let later = third.next(2_000);
        assert_eq!(later, Seq::at(2_000));
        assert_eq!(later.time_ms(), 2_000);
    }

    #[test]
    fn a_derived_msgid_is_recognised_exactly() {
        for seq in [Seq::at(0), Seq::at(1), Seq::at(1_764_236_000_123).next(0)] {
            assert!(seq.names(&seq.msgid()));
            assert!(!seq.names(&format!("0{}", seq.msgid())));
            assert!(!seq.names(&seq.msgid().as_str()[1..]));
        }
        assert!(Seq::from_raw(0xabc).names("abc"));
        assert!(!Seq::from_raw(0xabc).names("ABC"));
        assert!(!Seq::at(0).names(""));
        assert!(!Seq::at(1).names("19abc-1"));
    }

    #[test]
    fn a_message_keeps_its_msgid_once_whichever_way_it_was_given() {
        let seq = Seq::at(1_764_236_000_123).next(0);
        let derived = StoredMessage::example(seq, "#r", "hi");
        let msgid = seq.msgid();
        let spelled_out = derived.with(|m| m.msgid = Some(&msgid));
        assert_eq!(spelled_out, derived);
        assert_eq!(spelled_out.own_msgid(), None);
        assert_eq!(derived.msgid(), seq.msgid().as_str());
        let legacy = derived.with(|m| m.msgid = Some("19abc-1"));
        assert_ne!(legacy, derived);
        assert_eq!(legacy.own_msgid(), Some("19abc-1"));
        assert_eq!(legacy.msgid(), "19abc-1");
        let empty = derived.with(|m| m.msgid = Some(""));
        assert_eq!(empty.msgid(), "");
    }

    #[test]
    fn seq_round_trips_through_its_msgid() {
        let seq = Seq::at(1_764_236_000_123).next(1_764_236_000_123);
        assert_eq!(seq.msgid().as_str(), format!("{:x}", seq.raw()));
        assert_eq!(Seq::from_msgid(&seq.msgid()), Some(seq));
        assert_eq!(Seq::at(0).msgid().as_str(), "0");
        for raw in [1, 15, 16, 255, 1 << 20, 0x1234_5678_9abc, i64::MAX] {
            assert_eq!(
                Seq::from_raw(raw).msgid().as_str(),
                format!("{raw:x}"),
                "{raw}"
            );
        }
        for foreign in ["", "19abc-42", "ABC", "m5", "12345678901234567", "-1", "+1"] {
            assert_eq!(Seq::from_msgid(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn seq_survives_absurd_clocks() {
        assert_eq!(Seq::at(-5), Seq::at(0));
        let end = Seq::at(i64::MAX);
        assert!(end.next(i64::MAX) >= end);
        assert!(end.time_ms() > 0);
    }
}
