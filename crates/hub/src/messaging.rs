//! PRIVMSG, NOTICE and TAGMSG: to nicks, to rooms, to several targets at once.

use natter_proto::{numeric::*, Message};

use crate::caps::Cap;
use crate::client::ClientId;
use crate::fanout::Outgoing;
use crate::hub::Hub;
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
        let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
        if targets.len() > self.config.limits.max_targets {
            let first = targets.first().copied().unwrap_or("*");
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
        for target in targets {
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
        let Some(sender) = self.clients.get(&id) else {
            return;
        };
        let source = sender.source();
        let echo = sender.has(Cap::EchoMessage);
        let is_tagmsg = command == "TAGMSG";
        // STATUSMSG: `@#room` reaches the room's operators, `+#room` its voiced too.
        let (status, room) = match target.strip_prefix('@') {
            Some(room) => (Some('@'), room),
            None => match target.strip_prefix('+') {
                Some(room) if room.starts_with('#') => (Some('+'), room),
                _ => (None, target),
            },
        };
        let mut line = Outgoing::new(self.now.server_time(), Some(source), command)
            .param(target)
            .msgid(self.next_msgid())
            .client_tags(&msg.tags);
        if !is_tagmsg {
            line = line.param(text);
        }
        if room.starts_with('#') {
            let folded = self.fold(room);
            let Some(channel) = self.channels.get(&folded) else {
                self.refuse(
                    out,
                    id,
                    command,
                    ERR_NOSUCHNICK,
                    &[target, "No such nick/channel"],
                );
                return;
            };
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
            let recipients: Vec<(ClientId, bool)> = channel
                .members
                .iter()
                .filter(|(_, m)| match status {
                    Some('@') => m.op,
                    Some(_) => m.op || m.voice,
                    None => true,
                })
                .map(|(cid, _)| (*cid, *cid == id))
                .collect();
            for (to, is_sender) in recipients {
                if is_sender && !echo {
                    continue;
                }
                self.deliver(out, to, &mut line, is_tagmsg);
            }
            if echo && member.is_none() {
                self.deliver(out, id, &mut line, is_tagmsg);
            }
            return;
        }
        let Some(to) = self.find_nick(target) else {
            self.refuse(
                out,
                id,
                command,
                ERR_NOSUCHNICK,
                &[target, "No such nick/channel"],
            );
            return;
        };
        if to != id || !echo {
            self.deliver(out, to, &mut line, is_tagmsg);
        } else if let Some(caps) = self.clients.get(&to).map(|c| c.caps) {
            // To oneself with echo-message the message arrives twice, delivered and
            // echoed; only the echo answers a labeled command (labeled-response).
            if !is_tagmsg || caps.has(Cap::MessageTags) {
                out.deliveries.push((to, line.for_caps(caps)));
            }
        }
        if echo {
            self.deliver(out, id, &mut line, is_tagmsg);
        }
        if command == "PRIVMSG" {
            if let Some((nick, away)) = self
                .clients
                .get(&to)
                .and_then(|c| c.away.clone().map(|a| (c.nick.clone(), a)))
            {
                self.numeric(out, id, RPL_AWAY, &[&nick, &away]);
            }
        }
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
