//! Rooms: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE.

use natter_proto::{is_valid_channel, numeric::*, Message};

use crate::caps::Cap;
use crate::channel::{Channel, Member, Topic};
use crate::client::ClientId;
use crate::fanout::Outgoing;
use crate::hub::Hub;
use crate::mask;
use crate::outbox::Outbox;
use crate::registration::truncate;

impl Hub {
    pub(crate) fn cmd_join(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(names) = msg.param(0).filter(|n| !n.is_empty()) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["JOIN", "Not enough parameters"],
            );
            return;
        };
        if names == "0" {
            let rooms: Vec<String> = self
                .clients
                .get(&id)
                .map(|c| c.channels.iter().cloned().collect())
                .unwrap_or_default();
            for folded in rooms {
                self.part_one(out, id, &folded, None);
            }
            return;
        }
        let mut keys = msg.param(1).unwrap_or("").split(',');
        for (n, name) in names.split(',').enumerate() {
            let key = keys.next().filter(|k| !k.is_empty());
            if name.is_empty() {
                continue;
            }
            if n >= self.config.limits.max_targets {
                self.numeric(out, id, ERR_TOOMANYTARGETS, &[name, "Too many targets"]);
                break;
            }
            self.join_one(out, id, name, key);
        }
    }

    fn join_one(&mut self, out: &mut Outbox, id: ClientId, name: &str, key: Option<&str>) {
        if !is_valid_channel(name, self.config.limits.channel_len) {
            self.numeric(out, id, ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        }
        let folded = self.fold(name);
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.channels.contains(&folded) {
            return;
        }
        if client.channels.len() >= self.config.limits.channels_per_client {
            self.numeric(
                out,
                id,
                ERR_TOOMANYCHANNELS,
                &[name, "You have joined too many channels"],
            );
            return;
        }
        if let Some(channel) = self.channels.get(&folded) {
            let invited = channel.invited.contains(&id);
            let display = channel.name.clone();
            let refusal = if channel.key.is_some() && channel.key.as_deref() != key {
                Some((ERR_BADCHANNELKEY, "Cannot join channel (+k)"))
            } else if channel.invite_only && !invited {
                Some((ERR_INVITEONLYCHAN, "Cannot join channel (+i)"))
            } else if channel.limit.is_some_and(|l| channel.members.len() >= l) && !invited {
                Some((ERR_CHANNELISFULL, "Cannot join channel (+l)"))
            } else if !invited && self.is_banned(&folded, id) {
                Some((ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"))
            } else {
                None
            };
            if let Some((code, text)) = refusal {
                self.numeric(out, id, code, &[&display, text]);
                return;
            }
        }
        let created = self.now.unix_secs();
        let opened_after = self.last_seq;
        let channel = self
            .channels
            .entry(folded.clone())
            .or_insert_with(|| Channel::new(name, created, opened_after));
        let first = channel.members.is_empty();
        channel.members.insert(
            id,
            Member {
                op: first,
                voice: false,
            },
        );
        channel.invited.remove(&id);
        let display = channel.name.clone();
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.channels.insert(folded.clone());
        let source = client.source();
        let realname = client.realname.clone();
        let account = client.account.clone();
        let time = self.now.server_time();
        let msgid = self.next_msgid();
        let mut plain = Outgoing::new(time.clone(), Some(source.clone()), "JOIN")
            .param(display.clone())
            .msgid(msgid.clone())
            .account(account.clone());
        let mut extended = Outgoing::new(time, Some(source), "JOIN")
            .param(display.clone())
            .param(account.clone().unwrap_or_else(|| "*".into()))
            .param(realname)
            .msgid(msgid)
            .account(account.clone());
        let members: Vec<ClientId> = self.channels[&folded].members.keys().copied().collect();
        for &to in &members {
            let Some(c) = self.clients.get(&to) else {
                continue;
            };
            let bytes = if c.has(Cap::ExtendedJoin) {
                extended.for_caps(c.caps)
            } else {
                plain.for_caps(c.caps)
            };
            self.send(out, to, bytes);
        }
        // away-notify: members are told when someone who is away joins.
        if let Some((source, away)) = self
            .clients
            .get(&id)
            .and_then(|c| Some((c.source(), c.away.clone()?)))
        {
            let mut line = Outgoing::new(self.now.server_time(), Some(source), "AWAY").param(away);
            let to: Vec<ClientId> = members
                .into_iter()
                .filter(|m| *m != id)
                .filter(|m| self.clients.get(m).is_some_and(|c| c.has(Cap::AwayNotify)))
                .collect();
            self.fan_out(out, &to, &mut line);
        }
        if let Some(topic) = self.channels[&folded].topic.clone() {
            self.send_topic(out, id, &display, &topic);
        }
        // draft/read-marker: a joining client learns how far its account has read,
        // before the end of NAMES.
        let wants_marker = self
            .clients
            .get(&id)
            .is_some_and(|c| c.has(Cap::ReadMarker));
        match (wants_marker, account) {
            (true, Some(account)) => {
                let key = (self.fold(&account), folded.clone());
                self.send_marker_then_names(out, id, &display, key);
            }
            (true, None) => {
                let line = crate::hub::server_line(
                    Some(&self.config.server_name),
                    "MARKREAD",
                    &[&display, "*"],
                );
                self.send(out, id, line);
                self.send_names(out, id, &folded);
            }
            (false, _) => self.send_names(out, id, &folded),
        }
    }

    pub(crate) fn cmd_part(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(names) = msg.param(0).filter(|n| !n.is_empty()) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["PART", "Not enough parameters"],
            );
            return;
        };
        let reason = msg
            .param(1)
            .map(|r| truncate(r, self.config.limits.kick_len));
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let folded = self.fold(name);
            match self.channels.get(&folded) {
                None => {
                    self.numeric(out, id, ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
                }
                Some(ch) if !ch.members.contains_key(&id) => {
                    let display = ch.name.clone();
                    self.numeric(
                        out,
                        id,
                        ERR_NOTONCHANNEL,
                        &[&display, "You're not on that channel"],
                    );
                }
                Some(_) => self.part_one(out, id, &folded, reason.as_deref()),
            }
        }
    }

    /// Takes a member out of a room, telling every member, the leaver included.
    fn part_one(&mut self, out: &mut Outbox, id: ClientId, folded: &str, reason: Option<&str>) {
        let Some(source) = self.clients.get(&id).map(|c| c.source()) else {
            return;
        };
        let msgid = self.next_msgid();
        let Some(channel) = self.channels.get(folded) else {
            return;
        };
        let mut line = Outgoing::new(self.now.server_time(), Some(source), "PART")
            .param(channel.name.clone())
            .msgid(msgid);
        if let Some(reason) = reason {
            line = line.param(reason);
        }
        let members: Vec<ClientId> = channel.members.keys().copied().collect();
        self.fan_out(out, &members, &mut line);
        self.leave(id, folded);
    }

    /// Forgets a membership; a room left empty is forgotten too.
    pub(crate) fn leave(&mut self, id: ClientId, folded: &str) {
        if let Some(channel) = self.channels.get_mut(folded) {
            channel.members.remove(&id);
            if channel.members.is_empty() {
                self.channels.remove(folded);
            }
        }
        if let Some(c) = self.clients.get_mut(&id) {
            c.channels.remove(folded);
        }
    }

    /// Sends one line to each of `to`, each with the tags it accepts.
    pub(crate) fn fan_out(&mut self, out: &mut Outbox, to: &[ClientId], line: &mut Outgoing) {
        for &member in to {
            if let Some(caps) = self.clients.get(&member).map(|c| c.caps) {
                let bytes = line.for_caps(caps);
                self.send(out, member, bytes);
            }
        }
    }

    pub(crate) fn cmd_topic(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(name) = msg.param(0) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["TOPIC", "Not enough parameters"],
            );
            return;
        };
        let folded = self.fold(name);
        let Some(channel) = self.channels.get(&folded) else {
            self.numeric(out, id, ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let display = channel.name.clone();
        let member = channel.member(id);
        let Some(text) = msg.param(1) else {
            if channel.secret && member.is_none() {
                self.numeric(
                    out,
                    id,
                    ERR_NOTONCHANNEL,
                    &[&display, "You're not on that channel"],
                );
                return;
            }
            match channel.topic.clone() {
                Some(topic) => self.send_topic(out, id, &display, &topic),
                None => self.numeric(out, id, RPL_NOTOPIC, &[&display, "No topic is set"]),
            }
            return;
        };
        let Some(member) = member else {
            self.numeric(
                out,
                id,
                ERR_NOTONCHANNEL,
                &[&display, "You're not on that channel"],
            );
            return;
        };
        if channel.topic_locked && !member.op {
            self.numeric(
                out,
                id,
                ERR_CHANOPRIVSNEEDED,
                &[&display, "You're not channel operator"],
            );
            return;
        }
        let text = truncate(text, self.config.limits.topic_len);
        let current = channel
            .topic
            .as_ref()
            .map(|t| t.text.as_str())
            .unwrap_or("");
        if text == current {
            // Nothing changes, so nobody is told.
            return;
        }
        let Some(source) = self.clients.get(&id).map(|c| c.source()) else {
            return;
        };
        let members: Vec<ClientId> = channel.members.keys().copied().collect();
        if let Some(ch) = self.channels.get_mut(&folded) {
            ch.topic = (!text.is_empty()).then(|| Topic {
                text: text.clone(),
                set_by: source.clone(),
                set_at: self.now.unix_secs(),
            });
        }
        let mut line = Outgoing::new(self.now.server_time(), Some(source), "TOPIC")
            .param(display)
            .param(text)
            .msgid(self.next_msgid());
        self.fan_out(out, &members, &mut line);
    }

    fn send_topic(&mut self, out: &mut Outbox, id: ClientId, display: &str, topic: &Topic) {
        self.numeric(out, id, RPL_TOPIC, &[display, &topic.text]);
        let at = topic.set_at.to_string();
        self.numeric(out, id, RPL_TOPICWHOTIME, &[display, &topic.set_by, &at]);
    }

    pub(crate) fn cmd_names(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(names) = msg.param(0).filter(|n| !n.is_empty()) else {
            self.numeric(out, id, RPL_ENDOFNAMES, &["*", "End of /NAMES list"]);
            return;
        };
        let several = names.contains(',');
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let folded = self.fold(name);
            let visible = self
                .channels
                .get(&folded)
                .is_some_and(|ch| !ch.secret || ch.members.contains_key(&id));
            if visible {
                self.send_names_lines(out, id, &folded, !several);
            } else if !several {
                self.numeric(out, id, RPL_ENDOFNAMES, &[name, "End of /NAMES list"]);
            }
        }
        // RFC 2812: one end for a list of rooms, naming the list as asked.
        if several {
            self.numeric(out, id, RPL_ENDOFNAMES, &[names, "End of /NAMES list"]);
        }
    }

    /// 353 lines, cut to fit in 512 bytes, then 366.
    pub(crate) fn send_names(&mut self, out: &mut Outbox, id: ClientId, folded: &str) {
        self.send_names_lines(out, id, folded, true);
    }

    /// 353 lines, cut to fit in 512 bytes, and 366 if `end`.
    fn send_names_lines(&mut self, out: &mut Outbox, id: ClientId, folded: &str, end: bool) {
        let Some(channel) = self.channels.get(folded) else {
            return;
        };
        let Some(me) = self.clients.get(&id) else {
            return;
        };
        let multi = me.has(Cap::MultiPrefix);
        let full = me.has(Cap::UserhostInNames);
        let inside = channel.members.contains_key(&id);
        let symbol = if channel.secret { "@" } else { "=" };
        let display = channel.name.clone();
        let mut entries: Vec<String> = channel
            .members
            .iter()
            .filter_map(|(cid, member)| {
                let c = self.clients.get(cid)?;
                if !inside && c.invisible {
                    return None;
                }
                let who = if full { c.source() } else { c.nick.clone() };
                Some(format!("{}{}", member.prefixes(multi), who))
            })
            .collect();
        entries.sort_unstable();
        // Room for `:server 353 nick = #room :` and CR LF.
        let overhead = self.config.server_name.len() + me.nick.len() + display.len() + 16;
        let budget = 512usize.saturating_sub(overhead).max(64);
        let mut chunk = String::new();
        for entry in entries {
            if !chunk.is_empty() && chunk.len() + 1 + entry.len() > budget {
                let line = std::mem::take(&mut chunk);
                self.numeric(out, id, RPL_NAMREPLY, &[symbol, &display, &line]);
            }
            if !chunk.is_empty() {
                chunk.push(' ');
            }
            chunk.push_str(&entry);
        }
        if !chunk.is_empty() {
            self.numeric(out, id, RPL_NAMREPLY, &[symbol, &display, &chunk]);
        }
        if end {
            self.numeric(out, id, RPL_ENDOFNAMES, &[&display, "End of /NAMES list"]);
        }
    }

    pub(crate) fn cmd_list(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let filter: Option<Vec<String>> = msg
            .param(0)
            .filter(|p| !p.is_empty())
            .map(|p| p.split(',').map(|n| self.fold(n)).collect());
        self.numeric(out, id, RPL_LISTSTART, &["Channel", "Users  Name"]);
        let mut rows: Vec<(String, String, String)> = self
            .channels
            .iter()
            .filter(|(folded, _)| filter.as_ref().is_none_or(|f| f.contains(folded)))
            .filter(|(_, ch)| !ch.secret || ch.members.contains_key(&id))
            .map(|(_, ch)| {
                let topic = ch
                    .topic
                    .as_ref()
                    .map(|t| t.text.clone())
                    .unwrap_or_default();
                (ch.name.clone(), ch.members.len().to_string(), topic)
            })
            .collect();
        rows.sort();
        for (name, count, topic) in rows {
            self.numeric(out, id, RPL_LIST, &[&name, &count, &topic]);
        }
        self.numeric(out, id, RPL_LISTEND, &["End of /LIST"]);
    }

    pub(crate) fn cmd_kick(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let (Some(names), Some(nicks)) = (msg.param(0), msg.param(1)) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["KICK", "Not enough parameters"],
            );
            return;
        };
        let rooms: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
        let nicks: Vec<&str> = nicks
            .split(',')
            .filter(|n| !n.is_empty())
            .take(self.config.limits.max_targets)
            .collect();
        let reason = msg.param(2);
        // One room and several nicks, or as many rooms as nicks, paired (RFC 2812).
        match rooms.len() {
            1 => self.kick_from(out, id, rooms[0], &nicks, reason),
            n if n == nicks.len() => {
                for (room, nick) in rooms.iter().zip(&nicks) {
                    self.kick_from(out, id, room, &[nick], reason);
                }
            }
            _ => self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["KICK", "Not enough parameters"],
            ),
        }
    }

    fn kick_from(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        name: &str,
        nicks: &[&str],
        reason: Option<&str>,
    ) {
        let folded = self.fold(name);
        let Some(channel) = self.channels.get(&folded) else {
            self.numeric(out, id, ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let display = channel.name.clone();
        let Some(member) = channel.member(id) else {
            self.numeric(
                out,
                id,
                ERR_NOTONCHANNEL,
                &[&display, "You're not on that channel"],
            );
            return;
        };
        if !member.op {
            self.numeric(
                out,
                id,
                ERR_CHANOPRIVSNEEDED,
                &[&display, "You're not channel operator"],
            );
            return;
        }
        let kicker = self.nick_of(id);
        let reason = truncate(reason.unwrap_or(&kicker), self.config.limits.kick_len);
        let Some(source) = self.clients.get(&id).map(|c| c.source()) else {
            return;
        };
        for &nick in nicks {
            let Some(target) = self.find_nick(nick) else {
                self.numeric(out, id, ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
                continue;
            };
            let Some(channel) = self.channels.get(&folded) else {
                return;
            };
            if !channel.members.contains_key(&target) {
                let target_nick = self.nick_of(target);
                self.numeric(
                    out,
                    id,
                    ERR_USERNOTINCHANNEL,
                    &[&target_nick, &display, "They aren't on that channel"],
                );
                continue;
            }
            let members: Vec<ClientId> = channel.members.keys().copied().collect();
            let mut line = Outgoing::new(self.now.server_time(), Some(source.clone()), "KICK")
                .param(display.clone())
                .param(self.nick_of(target))
                .param(reason.clone())
                .msgid(self.next_msgid());
            self.fan_out(out, &members, &mut line);
            self.leave(target, &folded);
        }
    }

    pub(crate) fn cmd_invite(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let (Some(nick), Some(name)) = (msg.param(0), msg.param(1)) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["INVITE", "Not enough parameters"],
            );
            return;
        };
        let Some(target) = self.find_nick(nick) else {
            self.numeric(out, id, ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
            return;
        };
        let folded = self.fold(name);
        let Some(channel) = self.channels.get(&folded) else {
            self.numeric(out, id, ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let display = channel.name.clone();
        let Some(member) = channel.member(id) else {
            self.numeric(
                out,
                id,
                ERR_NOTONCHANNEL,
                &[&display, "You're not on that channel"],
            );
            return;
        };
        if channel.invite_only && !member.op {
            self.numeric(
                out,
                id,
                ERR_CHANOPRIVSNEEDED,
                &[&display, "You're not channel operator"],
            );
            return;
        }
        let target_nick = self.nick_of(target);
        if channel.members.contains_key(&target) {
            self.numeric(
                out,
                id,
                ERR_USERONCHANNEL,
                &[&target_nick, &display, "is already on channel"],
            );
            return;
        }
        // Members with invite-notify who may see the invitation: operators of the room.
        let notify: Vec<ClientId> = channel
            .members
            .iter()
            .filter(|(cid, m)| {
                **cid != id
                    && m.op
                    && self
                        .clients
                        .get(cid)
                        .is_some_and(|c| c.has(Cap::InviteNotify))
            })
            .map(|(cid, _)| *cid)
            .collect();
        if let Some(ch) = self.channels.get_mut(&folded) {
            ch.invited.insert(target);
        }
        self.numeric(out, id, RPL_INVITING, &[&target_nick, &display]);
        let Some(source) = self.clients.get(&id).map(|c| c.source()) else {
            return;
        };
        let mut line = Outgoing::new(self.now.server_time(), Some(source), "INVITE")
            .param(target_nick.clone())
            .param(display)
            .msgid(self.next_msgid());
        self.fan_out(out, &[target], &mut line);
        self.fan_out(out, &notify, &mut line);
        if let Some(away) = self.clients.get(&target).and_then(|c| c.away.clone()) {
            self.numeric(out, id, RPL_AWAY, &[&target_nick, &away]);
        }
    }

    /// Whether a ban in the room matches the client's `nick!user@host`.
    pub(crate) fn is_banned(&self, folded: &str, id: ClientId) -> bool {
        let (Some(channel), Some(client)) = (self.channels.get(folded), self.clients.get(&id))
        else {
            return false;
        };
        if channel.bans.is_empty() {
            return false;
        }
        let source = client.source();
        channel
            .bans
            .iter()
            .any(|b| mask::matches(&b.mask, &source, self.config.casemapping))
    }
}
