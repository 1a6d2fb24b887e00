//! One room: members with their status, topic, modes and lists.

use crate::maps::{Map, Set};

use natter_store::{Seq, StoredMessage};

use crate::client::ClientId;

/// A member's status in a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Member {
    pub op: bool,
    pub voice: bool,
}

impl Member {
    /// The prefix shown before the nick in NAMES and WHO: every one with
    /// multi-prefix, the highest otherwise.
    pub fn prefixes(self, multi: bool) -> &'static str {
        match (self.op, self.voice, multi) {
            (true, true, true) => "@+",
            (true, _, _) => "@",
            (false, true, _) => "+",
            (false, false, _) => "",
        }
    }

    /// Ops and voiced members may speak in a moderated room or despite a ban.
    pub fn may_speak_anyway(self) -> bool {
        self.op || self.voice
    }
}

/// The topic and who set it when.
#[derive(Clone, Debug)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A ban entry with who set it when, for `367 RPL_BANLIST`.
#[derive(Clone, Debug)]
pub struct ListEntry {
    pub mask: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A room.
#[derive(Debug)]
pub struct Channel {
    /// The name as its creator spelled it.
    pub name: String,
    pub created: u64,
    pub topic: Option<Topic>,
    pub members: Map<ClientId, Member>,
    /// +t: only operators set the topic.
    pub topic_locked: bool,
    /// +n: no messages from outside.
    pub no_external: bool,
    /// +m: only voiced members and operators speak.
    pub moderated: bool,
    /// +i: only invited users join.
    pub invite_only: bool,
    /// +s: hidden from LIST, WHOIS and NAMES of those outside.
    pub secret: bool,
    /// +k
    pub key: Option<String>,
    /// +l
    pub limit: Option<usize>,
    /// +b
    pub bans: Vec<ListEntry>,
    /// Users invited by an operator since the last time they joined.
    pub invited: Set<ClientId>,
    /// The last message number before the room was opened: what was said in a closed
    /// room before then (under the same name, before it emptied or before a restart)
    /// is not this room's to replay.
    pub opened_after: Seq,
}

impl Channel {
    /// A new room, with the defaults most servers give: +nt.
    pub fn new(name: &str, created: u64, opened_after: Seq) -> Channel {
        Channel {
            name: name.to_owned(),
            created,
            topic: None,
            members: Map::default(),
            topic_locked: true,
            no_external: true,
            moderated: false,
            invite_only: false,
            secret: false,
            key: None,
            limit: None,
            bans: Vec::new(),
            invited: Set::default(),
            opened_after,
        }
    }

    /// Closed to outsiders: secret, invite-only or keyed. What is said in it is
    /// replayed only to members.
    pub fn is_closed(&self) -> bool {
        self.secret || self.invite_only || self.key.is_some()
    }

    /// Whether a message kept from this room's name may be replayed to `id`: one said
    /// while it was open may (to whoever may read the room's history), one said
    /// while it was closed only to a member, and only if this room is the one it was
    /// said in.
    pub fn may_replay(&self, id: ClientId, message: &StoredMessage) -> bool {
        !message.members_only || (message.seq > self.opened_after && self.members.contains_key(&id))
    }

    pub fn member(&self, id: ClientId) -> Option<Member> {
        self.members.get(&id).copied()
    }

    pub fn is_op(&self, id: ClientId) -> bool {
        self.member(id).is_some_and(|m| m.op)
    }

    /// The modes as `+ntk key`, with parameters shown only to members (`324`).
    pub fn mode_string(&self, show_params: bool) -> (String, Vec<String>) {
        let mut flags = String::from("+");
        let mut params = Vec::new();
        for (on, c) in [
            (self.invite_only, 'i'),
            (self.moderated, 'm'),
            (self.no_external, 'n'),
            (self.secret, 's'),
            (self.topic_locked, 't'),
        ] {
            if on {
                flags.push(c);
            }
        }
        if let Some(key) = &self.key {
            flags.push('k');
            params.push(if show_params { key.clone() } else { "*".into() });
        }
        if let Some(limit) = self.limit {
            flags.push('l');
            params.push(limit.to_string());
        }
        (flags, params)
    }
}
