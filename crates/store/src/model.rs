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

/// One message as stored: enough to replay it exactly as it was relayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub msgid: String,
    /// Milliseconds since the epoch, as its server-time tag said.
    pub time_ms: i64,
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
    /// The conversation key of a direct conversation between two parties (folded
    /// account names or nicks): the same whichever of them asks.
    pub fn direct_key(a: &str, b: &str) -> String {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        format!("{first} {second}")
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
