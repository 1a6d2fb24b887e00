//! A line said once and delivered to many: serialized once per set of tags a
//! recipient can take, so that a room of a thousand costs a handful of encodings.

use bytes::Bytes;
use natter_proto::{LineWriter, Tag};

use crate::caps::{Cap, CapSet};

/// Which tags a recipient gets, as a bit set: at most eight encodings of one line.
const TIME: usize = 1;
const MSGID_AND_CLIENT_TAGS: usize = 2;
const ACCOUNT: usize = 4;

/// One line to fan out, with every tag it may carry.
pub struct Outgoing {
    time: String,
    msgid: Option<String>,
    account: Option<String>,
    client_tags: Vec<Tag>,
    source: Option<String>,
    command: &'static str,
    params: Vec<String>,
    encoded: [Option<Bytes>; 8],
}

impl Outgoing {
    /// A line from `source` (a user's `nick!user@host` or the server's name).
    pub fn new(time: String, source: Option<String>, command: &'static str) -> Outgoing {
        Outgoing {
            time,
            msgid: None,
            account: None,
            client_tags: Vec::new(),
            source,
            command,
            params: Vec::new(),
            encoded: Default::default(),
        }
    }

    pub fn param(mut self, p: impl Into<String>) -> Outgoing {
        self.params.push(p.into());
        self
    }

    /// The sender's account, for recipients with account-tag.
    pub fn account(mut self, account: Option<String>) -> Outgoing {
        self.account = account;
        self
    }

    pub fn msgid(mut self, msgid: String) -> Outgoing {
        self.msgid = Some(msgid);
        self
    }

    /// Client-only tags (`+key`) the sender attached, relayed to those who take
    /// message-tags.
    pub fn client_tags(mut self, tags: &[Tag]) -> Outgoing {
        self.client_tags = tags
            .iter()
            .filter(|t| t.key.starts_with('+'))
            .cloned()
            .collect();
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
        let bytes = Bytes::from(self.encode(variant));
        self.encoded[variant] = Some(bytes.clone());
        bytes
    }

    fn encode(&self, variant: usize) -> Vec<u8> {
        let mut w = LineWriter::new();
        if variant & ACCOUNT != 0 {
            if let Some(account) = &self.account {
                w.tag("account", account);
            }
        }
        if variant & MSGID_AND_CLIENT_TAGS != 0 {
            if let Some(msgid) = &self.msgid {
                w.tag("msgid", msgid);
            }
            for tag in &self.client_tags {
                w.tag(&tag.key, &tag.value);
            }
        }
        if variant & TIME != 0 {
            w.tag("time", &self.time);
        }
        w.start(self.source.as_deref(), self.command);
        for p in &self.params {
            w.param(p);
        }
        w.finish_within(natter_proto::MAX_LINE_BYTES)
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
        let mut o = Outgoing::new("T".into(), Some("a!b@c".into()), "PRIVMSG")
            .param("#r")
            .param("hi")
            .msgid("m1".into())
            .client_tags(&tags);
        assert_eq!(
            &o.for_caps(CapSet::default())[..],
            b":a!b@c PRIVMSG #r :hi\r\n"
        );
        let mut caps = CapSet::default();
        caps.set(Cap::ServerTime, true);
        caps.set(Cap::MessageTags, true);
        assert_eq!(
            &o.for_caps(caps)[..],
            b"@msgid=m1;+draft/reply=x1;time=T :a!b@c PRIVMSG #r :hi\r\n"
        );
    }
}
