//! What the store keeps.

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
    pub fn msgid(self) -> String {
        // By hand rather than `format!("{:x}")`: one is made for every line relayed.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 16];
        let mut rest = self.0.unsigned_abs();
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = DIGITS[(rest & 0xf) as usize];
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        // Hex digits only: always UTF-8, and copied once.
        std::str::from_utf8(&digits[start..])
            .unwrap_or_default()
            .to_owned()
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
}

/// One message as stored: enough to replay it exactly as it was relayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its place in history, and its time.
    pub seq: Seq,
    /// As relayed: `seq.msgid()`, except for messages kept before msgids were
    /// derived from the sequence number.
    pub msgid: String,
    /// The conversation: a folded room name, or [`StoredMessage::direct_key`].
    pub target: String,
    /// PRIVMSG, NOTICE or TAGMSG.
    pub command: String,
    /// `nick!user@host` of the sender.
    pub source: String,
    /// The sender's account, if logged in.
    pub account: Option<String>,
    /// The target as the sender wrote it (`#Team`, `bob`).
    pub recipient: String,
    pub text: String,
    /// Client-only tags, serialized as on the wire (`+a=b;+c`), or empty.
    pub client_tags: String,
}

impl StoredMessage {
    /// Milliseconds since the epoch, as its server-time tag said.
    pub fn time_ms(&self) -> i64 {
        self.seq.time_ms()
    }

    /// The conversation key of a direct conversation between two parties (folded
    /// account names or nicks): the same whichever of them asks.
    pub fn direct_key(a: &str, b: &str) -> String {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let mut key = String::with_capacity(first.len() + 1 + second.len());
        key.push_str(first);
        key.push(' ');
        key.push_str(second);
        key
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
    fn seq_round_trips_through_its_msgid() {
        let seq = Seq::at(1_764_236_000_123).next(1_764_236_000_123);
        assert_eq!(seq.msgid(), format!("{:x}", seq.raw()));
        assert_eq!(Seq::from_msgid(&seq.msgid()), Some(seq));
        assert_eq!(Seq::at(0).msgid(), "0");
        for raw in [1, 15, 16, 255, 1 << 20, 0x1234_5678_9abc, i64::MAX] {
            assert_eq!(Seq::from_raw(raw).msgid(), format!("{raw:x}"), "{raw}");
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
