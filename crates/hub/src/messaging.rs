//! PRIVMSG, NOTICE and TAGMSG: to nicks, to rooms, to several targets at once.

use natter_proto::{numeric::*, Message, MAX_LINE_BYTES};

use natter_store::{MessageParts, StoredMessage, Write};
use smallvec::{smallvec, SmallVec};

use crate::caps::Cap;
use crate::client::ClientId;
use crate::fanout::Outgoing;
use crate::hub::Hub;
use crate::names::FoldedName;
use crate::outbox::Outbox;

impl Hub {
    pub(crate) fn cmd_message(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let command: &'static str = match msg.command.as_str() {
            "PRIVMSG" => "PRIVMSG",
            "NOTICE" => "NOTICE",
            _ => "TAGMSG",
        };
        let is_tagmsg = command == "TAGMSG";
        let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
            let text = format!("No recipient given ({command})");
            self.refuse(out, id, command, ERR_NORECIPIENT, &[&text]);
            return;
        };
        let text = msg.param(1).unwrap_or("");
        if !is_tagmsg && text.is_empty() {
            self.refuse(out, id, command, ERR_NOTEXTTOSEND, &["No text to send"]);
            return;
        }
        if !targets.as_bytes().contains(&b',') && self.config.limits.max_targets > 0 {
            // One target, as nearly every message has.
            if let Some(c) = self.clients.get_mut(&id) {
                c.last_spoke = self.now.mono;
            }
            self.message_one(out, id, msg, command, targets, text);
            return;
        }
        let targets = || targets.split(',').filter(|t| !t.is_empty());
        if targets().count() > self.config.limits.max_targets {
            let first = targets().next().unwrap_or("*");
            self.refuse(
                out,
                id,
                command,
                ERR_TOOMANYTARGETS,
                &[first, "Too many recipients"],
            );
            return;
        }
        if let Some(c) = self.clients.get_mut(&id) {
            c.last_spoke = self.now.mono;
        }
        for target in targets() {
            self.message_one(out, id, msg, command, target, text);
        }
    }

    fn message_one(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        msg: &Message,
        command: &'static str,
        target: &str,
        text: &str,
    ) {
        let is_tagmsg = command == "TAGMSG";
        // STATUSMSG: `@#room` reaches the room's operators, `+#room` its voiced too.
        let (status, room) = match target.strip_prefix('@') {
            Some(room) => (Some('@'), room),
            None => match target.strip_prefix('+') {
                Some(room) if room.starts_with('#') => (Some('+'), room),
                _ => (None, target),
            },
        };
        let Some(sender) = self.clients.get(&id) else {
            return;
        };
        let source = sender.source_inline();
        let sender_account = sender.account.clone();
        let echo = sender.has(Cap::EchoMessage);
        // Who the sender is in a direct conversation's key, named while the sender is
        // at hand.
        let sender_identity =
            (!room.starts_with('#') && !is_tagmsg).then(|| self.identity_of_client(sender));
        // Relayed with the sender's source in front, the text must still fit in 512
        // bytes: it is cut (and stored) as relayed.
        let overhead = 1 + source.len() + 1 + command.len() + 1 + target.len() + 2 + 2;
        let text = crate::hub::cut(text, MAX_LINE_BYTES.saturating_sub(overhead));
        // Live and replayed from history, the message has the same id and time.
        let seq = self.next_seq();
        let time = self.time_tag(seq.time_ms());
        // The line and the stored message borrow the same parts: nothing is copied
        // for the relay, and the stored message copies them once, into one piece.
        let mut line = Outgoing::message(
            &time,
            &source,
            command,
            target,
            (!is_tagmsg).then_some(text),
            seq,
            sender_account.as_deref(),
            &msg.tags,
        );
        // What history keeps of it, but the conversation, which depends on the target.
        let client_tags = client_tags_wire(msg);
        let stored = MessageParts {
            msgid: None,
            target: "",
            command,
            source: &source,
            account: sender_account.as_deref(),
            recipient: target,
            text,
            client_tags: &client_tags,
        };
        if room.starts_with('#') {
            let folded = self.folded(room);
            let Some(channel) = self.channels.get(&*folded) else {
                self.refuse(
                    out,
                    id,
                    command,
                    ERR_NOSUCHNICK,
                    &[target, "No such nick/channel"],
                );
                return;
            };
            let members_only = channel.is_closed();
            let member = channel.member(id);
            let banned =
                member.is_none_or(|m| !m.may_speak_anyway()) && self.is_banned(&folded, id);
            let refused = (channel.no_external && member.is_none())
                || (channel.moderated && !member.is_some_and(|m| m.may_speak_anyway()))
                || banned;
            if refused {
                let name = channel.name.clone();
                self.refuse(
                    out,
                    id,
                    command,
                    ERR_CANNOTSENDTOCHAN,
                    &[&name, "Cannot send to channel"],
                );
                return;
            }
            let mut recipients = std::mem::take(&mut self.room_recipients);
            recipients.clear();
            recipients.extend(
                channel
                    .members
                    .iter()
                    .filter(|(_, m)| match status {
                        Some('@') => m.op,
                        Some(_) => m.op || m.voice,
                        None => true,
                    })
                    .map(|(cid, _)| (*cid, *cid == id)),
            );
            for &(to, is_sender) in &recipients {
                if is_sender && !echo {
                    continue;
                }
                self.deliver(out, to, &mut line, is_tagmsg);
            }
            self.room_recipients = recipients;
            if echo && member.is_none() {
                self.deliver(out, id, &mut line, is_tagmsg);
            }
            // The room's history keeps what everyone in it saw.
            if status.is_none() && !is_tagmsg {
                let mut message = StoredMessage::new(
                    seq,
                    MessageParts {
                        target: &folded,
                        ..stored
                    },
                );
                message.members_only = members_only;
                self.keep(message, Vec::new());
            }
            return;
        }
        // Folded once: it finds the recipient, and names the conversation's other
        // party when that is a nick rather than an account.
        let folded_target = self.folded(target);
        let online = self.nicks.get(&*folded_target).copied();
        // The account the message is for (its client's, or a registered nick's), and
        // the recipient's away message for a PRIVMSG, from one look at the recipient.
        let (account, away) = match online {
            Some(to) => match self.clients.get(&to) {
                Some(c) => (
                    c.account.as_deref().map(|a| self.fold(a)),
                    c.away
                        .as_ref()
                        .filter(|_| command == "PRIVMSG")
                        .map(|away| (c.nick.clone(), away.clone())),
                ),
                None => (None, None),
            },
            None => (
                self.accounts
                    .contains_key(&*folded_target)
                    .then(|| folded_target.to_string()),
                None,
            ),
        };
        // Every client logged in to that account sees the conversation.
        let recipients: SmallVec<[ClientId; 2]> = match (&account, online) {
            (Some(a), _) if self.logins.contains_key(a) => {
                SmallVec::from_slice(self.logins.get(a).map_or(&[][..], Vec::as_slice))
            }
            (_, Some(to)) => smallvec![to],
            _ => SmallVec::new(),
        };
        if recipients.is_empty() && account.is_none() {
            self.refuse(
                out,
                id,
                command,
                ERR_NOSUCHNICK,
                &[target, "No such nick/channel"],
            );
            return;
        }
        for &to in &recipients {
            if to != id || !echo {
                self.deliver(out, to, &mut line, is_tagmsg);
            } else if let Some(caps) = self.clients.get(&to).map(|c| c.caps) {
                // To oneself with echo-message the message arrives twice, delivered and
                // echoed; only the echo answers a labeled command (labeled-response).
                if !is_tagmsg || caps.has(Cap::MessageTags) {
                    out.deliveries.push((to, line.for_caps(caps)));
                }
            }
        }
        // The sender's other clients see what it said, as if echoed.
        if let Some(own) = sender_account.as_deref().map(|a| self.folded(a)) {
            for other in self.sessions_of(&own) {
                if other != id && !recipients.contains(&other) {
                    self.deliver(out, other, &mut line, is_tagmsg);
                }
            }
        }
        if echo {
            self.deliver(out, id, &mut line, is_tagmsg);
        }
        if !is_tagmsg {
            // As `Hub::identity` names the recipient: its account, else its nick, marked
            // when the nick is registered to an account it has not logged in to (an
            // offline registered nick has its account).
            let other_identity;
            let other: &str = match &account {
                Some(account) => account,
                None if self.accounts.contains_key(&*folded_target) => {
                    other_identity = FoldedName::with_prefix(self.config.casemapping, "!", target);
                    &other_identity
                }
                None => &folded_target,
            };
            // Built in the buffer the hub keeps for it (taken out while the hub is
            // borrowed to name the parties): no allocation per message.
            let mut conversation = std::mem::take(&mut self.direct_key_buf);
            let sender_identity = sender_identity.unwrap_or_else(|| self.identity(id));
            StoredMessage::write_direct_key(&mut conversation, &sender_identity, other);
            // An account with no client connected gets it when it next logs in.
            let offline_for = match (account, recipients.is_empty()) {
                (Some(a), true) => vec![a],
                _ => Vec::new(),
            };
            let message = StoredMessage::new(
                seq,
                MessageParts {
                    target: &conversation,
                    ..stored
                },
            );
            self.direct_key_buf = conversation;
            self.keep(message, offline_for);
        }
        if let Some((nick, away)) = away {
            self.numeric(out, id, RPL_AWAY, &[&nick, &away]);
        }
    }

    /// Asks the store to keep a message; the sender's replies to this command wait
    /// until it is kept.
    fn keep(&mut self, message: StoredMessage, offline_for: Vec<String>) {
        self.keep_write(Write::Message {
            message,
            offline_for,
        });
    }

    /// Sends an error numeric for a PRIVMSG or TAGMSG. A NOTICE never causes an
    /// automatic reply (RFC 2812, 3.3.2), errors included.
    fn refuse(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        command: &str,
        code: &str,
        params: &[&str],
    ) {
        if command != "NOTICE" {
            self.numeric(out, id, code, params);
        }
    }

    /// Delivers one fanned-out line, honouring what the recipient accepts: TAGMSG
    /// reaches only clients that take message-tags.
    fn deliver(&mut self, out: &mut Outbox, to: ClientId, line: &mut Outgoing, is_tagmsg: bool) {
        let Some(caps) = self.clients.get(&to).map(|c| c.caps) else {
            return;
        };
        if is_tagmsg && !caps.has(Cap::MessageTags) {
            return;
        }
        let bytes = line.for_caps(caps);
        self.send(out, to, bytes);
    }
}

/// The client-only tags of a message as they go on the wire, for the store.
fn client_tags_wire(msg: &Message) -> String {
    // Nearly every message has no tags at all: nothing to build or check.
    if msg.tags.is_empty() {
        return String::new();
    }
    let mut wire = Vec::new();
    for tag in msg.tags.iter().filter(|t| t.key.starts_with('+')) {
        if !wire.is_empty() {
            wire.push(b';');
        }
        wire.extend_from_slice(tag.key.as_bytes());
        if !tag.value.is_empty() {
            wire.push(b'=');
            natter_proto::escape_tag_value(&tag.value, &mut wire);
        }
    }
    String::from_utf8(wire).unwrap_or_default()
}
