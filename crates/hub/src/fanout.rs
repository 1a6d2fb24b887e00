//! A line said once and delivered to many: serialized once per set of tags a
//! recipient can take, so that a room of a thousand costs a handful of encodings.

use std::borrow::Cow;

use bytes::Bytes;
use natter_proto::{LineWriter, Tag};
use natter_store::Seq;
use smallvec::SmallVec;

use crate::caps::{Cap, CapSet};

/// Which tags a recipient gets, as a bit set: at most eight encodings of one line.
const TIME: usize = 1;
const MSGID_AND_CLIENT_TAGS: usize = 2;
const ACCOUNT: usize = 4;

/// One line to fan out, with every tag it may carry. Its parts may be borrowed: a
/// message relayed to a nick is encoded once or twice, and copying the sender's
/// source, the text and the msgid into the line first would cost more than that.
pub struct Outgoing<'a> {
    time: Cow<'a, str>,
    msgid: Option<LineMsgid<'a>>,
    account: Option<Cow<'a, str>>,
    /// The sender's tags; only the client-only ones (`+key`) are relayed.
    client_tags: &'a [Tag],
    source: Option<Cow<'a, str>>,
    command: &'static str,
    /// Room for the target and the text of a message without an allocation.
    params: SmallVec<[Cow<'a, str>; 2]>,
    encoded: [Option<Bytes>; 8],
    /// The variants given out once, without being kept (a bit per variant).
    given_once: u8,
}

impl<'a> Outgoing<'a> {
    /// A line from `source` (a user's `nick!user@host` or the server's name).
    pub fn new<T, S>(time: T, source: Option<S>, command: &'static str) -> Outgoing<'a>
    where
        T: Into<Cow<'a, str>>,
        S: Into<Cow<'a, str>>,
    {
        Outgoing {
            time: time.into(),
            msgid: None,
            account: None,
            client_tags: &[],
            source: source.map(Into::into),
            command,
            params: SmallVec::new(),
            encoded: Default::default(),
            given_once: 0,
        }
    }

    /// A PRIVMSG, NOTICE or TAGMSG (no text) from a user, built in one step. Its
    /// msgid is the one `seq` names, built only for recipients that take it.
    #[allow(clippy::too_many_arguments)]
    pub fn message(
        time: &'a str,
        source: &'a str,
        command: &'static str,
        target: &'a str,
        text: Option<&'a str>,
        seq: Seq,
        account: Option<&'a str>,
        client_tags: &'a [Tag],
    ) -> Outgoing<'a> {
        let mut params = SmallVec::new();
        params.push(Cow::Borrowed(target));
        params.extend(text.map(Cow::Borrowed));
        Outgoing {
            time: Cow::Borrowed(time),
            msgid: Some(LineMsgid::Numbered(seq)),
            account: account.map(Cow::Borrowed),
            client_tags,
            source: Some(Cow::Borrowed(source)),
            command,
            params,
            encoded: Default::default(),
            given_once: 0,
        }
    }

    pub fn param(mut self, p: impl Into<Cow<'a, str>>) -> Outgoing<'a> {
        self.params.push(p.into());
        self
    }

    /// The sender's account, for recipients with account-tag.
    pub fn account<A: Into<Cow<'a, str>>>(mut self, account: Option<A>) -> Outgoing<'a> {
        self.account = account.map(Into::into);
        self
    }

    pub fn msgid(mut self, msgid: impl Into<Cow<'a, str>>) -> Outgoing<'a> {
        self.msgid = Some(LineMsgid::Given(msgid.into()));
        self
    }

    /// The bytes for a recipient with these capabilities.
    pub fn for_caps(&mut self, caps: CapSet) -> Bytes {
        let mut variant = 0;
        if caps.has(Cap::ServerTime) {
            variant |= TIME;
        }
        if caps.has(Cap::MessageTags) {
            variant |= MSGID_AND_CLIENT_TAGS;
        }
        if caps.has(Cap::AccountTag) && self.account.is_some() {
            variant |= ACCOUNT;
        }
        if let Some(bytes) = &self.encoded[variant] {
            return bytes.clone();
        }
        // The first recipient of an encoding gets it unshared: a `Bytes` made from an
        // exact-size buffer costs no allocation beyond the buffer until it is cloned.
        // A second one means a room or several sessions: encoded again, kept, shared.
        let bytes = Bytes::from(self.encode(variant));
        if self.given_once & (1 << variant) == 0 {
            self.given_once |= 1 << variant;
            return bytes;
        }
        self.encoded[variant] = Some(bytes.clone());
        bytes
    }

    fn encode(&self, variant: usize) -> Vec<u8> {
        let mut w = LineWriter::with_capacity(self.encoded_len(variant));
        if variant & ACCOUNT != 0 {
            if let Some(account) = &self.account {
                w.tag("account", account);
            }
        }
        if variant & MSGID_AND_CLIENT_TAGS != 0 {
            if let Some(msgid) = &self.msgid {
                msgid.with(|msgid| {
                    w.tag("msgid", msgid);
                });
            }
            for tag in self.client_tags.iter().filter(|t| t.key.starts_with('+')) {
                w.tag(&tag.key, &tag.value);
            }
        }
        if variant & TIME != 0 {
            w.tag("time", &self.time);
        }
        w.start(self.source.as_deref(), self.command)
            .params(&self.params);
        w.finish_within(natter_proto::MAX_LINE_BYTES)
    }

    /// The length of [`Outgoing::encode`]'s line when no tag value needs escaping and
    /// nothing is cut (nearly always): the exact size to allocate.
    fn encoded_len(&self, variant: usize) -> usize {
        let tag =
            |key: &str, value: &str| 1 + key.len() + usize::from(!value.is_empty()) + value.len();
        let mut tags = 0;
        if variant & ACCOUNT != 0 {
            tags += self.account.as_deref().map_or(0, |a| tag("account", a));
        }
        if variant & MSGID_AND_CLIENT_TAGS != 0 {
            tags += self
                .msgid
                .as_ref()
                .map_or(0, |m| m.with(|m| tag("msgid", m)));
            tags += self
                .client_tags
                .iter()
                .filter(|t| t.key.starts_with('+'))
                .map(|t| tag(&t.key, &t.value))
                .sum::<usize>();
        }
        if variant & TIME != 0 {
            tags += tag("time", &self.time);
        }
        let source = self.source.as_deref().map_or(0, |s| 1 + s.len() + 1);
        let params: usize = self.params.iter().map(|p| 1 + p.len()).sum();
        let colon = usize::from(!self.params.is_empty());
        tags + usize::from(tags > 0) + source + self.command.len() + params + colon + 2
    }
}

/// The msgid a line carries.
enum LineMsgid<'a> {
    Given(Cow<'a, str>),
    /// The one a message's number names ([`Seq::msgid`]): most recipients take no
    /// msgid, so it is not built for them.
    Numbered(Seq),
}

impl LineMsgid<'_> {
    fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            LineMsgid::Given(msgid) => f(msgid),
            LineMsgid::Numbered(seq) => f(&seq.msgid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_recipient_gets_the_tags_it_asked_for() {
        let tags = vec![
            Tag {
                key: "+draft/reply".into(),
                value: "x1".into(),
            },
            Tag {
                key: "label".into(),
                value: "not-relayed".into(),
            },
        ];
        let seq = Seq::from_raw(0x19abc);
        let mut o = Outgoing::message("T", "a!b@c", "PRIVMSG", "#r", Some("hi"), seq, None, &tags);
        assert_eq!(
            &o.for_caps(CapSet::default())[..],
            b":a!b@c PRIVMSG #r :hi\r\n"
        );
        let mut caps = CapSet::default();
        caps.set(Cap::ServerTime, true);
        caps.set(Cap::MessageTags, true);
        assert_eq!(
            &o.for_caps(caps)[..],
            b"@msgid=19abc;+draft/reply=x1;time=T :a!b@c PRIVMSG #r :hi\r\n"
        );
    }

    #[test]
    fn every_encoding_is_allocated_at_its_exact_size() {
        let tags = vec![
            Tag {
                key: "+draft/reply".into(),
                value: "x1".into(),
            },
            Tag {
                key: "+typing".into(),
                value: String::new(),
            },
        ];
        let account = Some("alice");
        let seq = Seq::at(1_764_236_000_123).next(0);
        for text in [Some("hello there"), Some(""), None] {
            let o = Outgoing::message("T0", "a!b@c", "PRIVMSG", "#r", text, seq, account, &tags);
            for variant in 0..8 {
                let line = o.encode(variant);
                assert_eq!(o.encoded_len(variant), line.len(), "variant {variant}");
                assert_eq!(line.capacity(), line.len(), "variant {variant}");
            }
        }
        let notice = Outgoing::new("T0", None::<&str>, "NOTICE")
            .param("*")
            .param("hi");
        assert_eq!(notice.encoded_len(0), notice.encode(0).len());
    }
}
