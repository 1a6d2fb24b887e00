//! One connected client, registered or not.

use std::collections::VecDeque;
use std::ops::Deref;

use arrayvec::ArrayString;

use crate::maps::{Map, Set};

use natter_proto::Message;
use std::time::{Instant, SystemTime};

use crate::caps::{Cap, CapSet};

/// Names a connection for as long as it lives. Given by the server, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// The transport a client came over: shown to operators, and it decides whether a
/// password may be sent in the clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    Unix,
    Udp,
    WebSocket,
}

/// What the server knows of a connection when it opens.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// The peer's IP address as text (`127.0.0.1`, `::1`), or `localhost` on a Unix
    /// socket: shown as the client's host.
    pub host: String,
    pub transport: Transport,
}

/// Where a client is in registration.
#[derive(Clone, Debug, Default)]
pub struct Registration {
    pub nick: Option<String>,
    pub user: Option<(String, String)>,
    /// CAP LS or REQ was sent and CAP END not yet: registration waits.
    pub cap_negotiating: bool,
    /// The PASS given, if any, checked at registration against the server password.
    pub password: Option<String>,
}

/// A client's state.
#[derive(Debug)]
pub struct Client {
    pub id: ClientId,
    pub info: ClientInfo,
    /// `None` once registered. Boxed: most clients are registered, and spend their
    /// whole life without it (idle memory per client is a measured target).
    pub registration: Option<Box<Registration>>,
    pub nick: String,
    pub user: String,
    pub realname: String,
    pub caps: CapSet,
    /// The CAP version the client announced (302 enables cap values and cap-notify).
    pub cap_version: u32,
    pub invisible: bool,
    pub wallops: bool,
    /// The operator account name, when the client has become a server operator.
    pub oper: Option<String>,
    pub away: Option<String>,
    /// Folded names of the rooms the client is in.
    pub channels: Set<String>,
    pub connected_at: Instant,
    pub signon: SystemTime,
    /// Last message of any kind: for PING timing.
    pub last_heard: Instant,
    /// Last PRIVMSG/NOTICE: WHOIS idle time.
    pub last_spoke: Instant,
    /// When the hub sent a PING that is not yet answered.
    pub ping_sent: Option<Instant>,
    /// Lines that arrived while a check the client asked for (a password) was under
    /// way: handled in order once it finishes, so replies keep the order of requests.
    /// Boxed, like the other states a client is rarely in: every client pays for
    /// the field, few for what it holds. (The box holds the deque's 32 bytes, not
    /// its lines: that is the point.)
    #[allow(clippy::box_collection)]
    pub held: Option<Box<VecDeque<Message>>>,
    /// Replies waiting on the store, oldest first.
    pub parked: VecDeque<crate::persistence::Parked>,
    /// The account logged in to, as its owner spells it.
    pub account: Option<String>,
    /// An AUTHENTICATE exchange under way (boxed, as `held` is).
    pub sasl: Option<Box<crate::accounts::SaslExchange>>,
    /// When a client using a registered nick it has not logged in to is renamed.
    pub nick_deadline: Option<Instant>,
    /// MONITOR list: folded nick → the nick as the client wrote it.
    pub monitoring: Map<String, String>,
}

/// A client's `nick!user@host`, from [`Client::source_inline`].
pub(crate) enum Source {
    Inline(ArrayString<SOURCE_INLINE_BYTES>),
    Heap(String),
}

/// Room for a nick, a user name and an IPv6 address with room to spare.
const SOURCE_INLINE_BYTES: usize = 128;

impl Deref for Source {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Source::Inline(source) => source,
            Source::Heap(source) => source,
        }
    }
}

impl Client {
    pub fn new(id: ClientId, info: ClientInfo, now: crate::Now) -> Client {
        Client {
            id,
            info,
            registration: Some(Box::default()),
            nick: "*".into(),
            user: String::new(),
            realname: String::new(),
            caps: CapSet::default(),
            cap_version: 0,
            invisible: false,
            wallops: false,
            oper: None,
            away: None,
            channels: Set::default(),
            connected_at: now.mono,
            signon: now.wall,
            last_heard: now.mono,
            last_spoke: now.mono,
            ping_sent: None,
            held: None,
            parked: VecDeque::new(),
            account: None,
            sasl: None,
            nick_deadline: None,
            monitoring: Map::default(),
        }
    }

    pub fn is_registered(&self) -> bool {
        self.registration.is_none()
    }

    pub fn has(&self, cap: Cap) -> bool {
        self.caps.has(cap)
    }

    /// `nick!user@host`, the source of what the client says.
    pub fn source(&self) -> String {
        // Built by hand rather than with `format!`: commands that name the client
        // make one each.
        let (nick, user, host) = (&self.nick, &self.user, &self.info.host);
        let mut source = String::with_capacity(nick.len() + user.len() + host.len() + 2);
        source.push_str(nick);
        source.push('!');
        source.push_str(user);
        source.push('@');
        source.push_str(host);
        source
    }

    /// [`Client::source`] on the stack when it fits, as it nearly always does: one is
    /// made for every message the client sends.
    pub(crate) fn source_inline(&self) -> Source {
        let mut inline = ArrayString::new();
        let fits = [self.nick.as_str(), "!", &self.user, "@", &self.info.host]
            .into_iter()
            .all(|part| inline.try_push_str(part).is_ok());
        if fits {
            Source::Inline(inline)
        } else {
            Source::Heap(self.source())
        }
    }

    /// User modes as `+iow`.
    pub fn mode_string(&self) -> String {
        let mut s = String::from("+");
        if self.invisible {
            s.push('i');
        }
        if self.oper.is_some() {
            s.push('o');
        }
        if self.wallops {
            s.push('w');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_on_the_stack_is_the_source_whatever_its_length() {
        let info = |host: &str| ClientInfo {
            host: host.into(),
            transport: Transport::Tcp,
        };
        let mut client = Client::new(ClientId(1), info("2001:db8::1"), crate::Now::system());
        client.nick = "alice".into();
        client.user = "al".into();
        assert_eq!(&*client.source_inline(), "alice!al@2001:db8::1");
        assert!(matches!(client.source_inline(), Source::Inline(_)));
        client.nick = "n".repeat(200);
        assert_eq!(&*client.source_inline(), client.source());
        assert!(matches!(client.source_inline(), Source::Heap(_)));
    }
}
