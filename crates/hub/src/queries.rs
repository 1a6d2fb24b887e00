//! Finding out about people and the server: WHO, WHOIS, WHOWAS, ISON, USERHOST,
//! VERSION, TIME, ADMIN, INFO; and saying things about oneself: AWAY, SETNAME.

use natter_proto::{numeric::*, Message};

use crate::caps::Cap;
use crate::client::{Client, ClientId};
use crate::fanout::Outgoing;
use crate::hub::Hub;
use crate::mask;
use crate::outbox::Outbox;
use crate::registration::truncate;
use crate::time::unix_secs;

impl Hub {
    pub(crate) fn cmd_who(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let target = msg.param(0).unwrap_or("*").to_owned();
        let only_opers = msg.param(1).is_some_and(|f| f.contains('o'));
        let multi = self
            .clients
            .get(&id)
            .is_some_and(|c| c.has(Cap::MultiPrefix));
        let mut rows: Vec<[String; 7]> = Vec::new();
        if target.starts_with('#') {
            let folded = self.fold(&target);
            if let Some(channel) = self.channels.get(&folded) {
                let inside = channel.members.contains_key(&id);
                if inside || !channel.secret {
                    for (cid, member) in &channel.members {
                        let Some(c) = self.clients.get(cid) else {
                            continue;
                        };
                        if (!inside && c.invisible) || (only_opers && c.oper.is_none()) {
                            continue;
                        }
                        rows.push(self.who_row(c, &channel.name, member.prefixes(multi)));
                    }
                }
            }
        } else {
            let casemap = self.config.casemapping;
            let my_rooms = self
                .clients
                .get(&id)
                .map(|c| c.channels.clone())
                .unwrap_or_default();
            let exact = self.find_nick(&target);
            for c in self.clients.values().filter(|c| c.is_registered()) {
                let hit = match exact {
                    Some(e) => e == c.id,
                    None => {
                        (target == "0"
                            || target == "*"
                            || mask::matches(&target, &c.nick, casemap)
                            || mask::matches(&target, &c.info.host, casemap)
                            || mask::matches(&target, &c.realname, casemap))
                            && (!c.invisible || c.id == id || !c.channels.is_disjoint(&my_rooms))
                    }
                };
                if hit && !(only_opers && c.oper.is_none()) {
                    let room = c
                        .channels
                        .iter()
                        .next()
                        .and_then(|f| self.channels.get(f))
                        .filter(|ch| !ch.secret || ch.members.contains_key(&id));
                    let (room_name, prefix) = match room {
                        Some(ch) => (
                            ch.name.clone(),
                            ch.member(c.id).map(|m| m.prefixes(multi)).unwrap_or(""),
                        ),
                        None => ("*".to_owned(), ""),
                    };
                    rows.push(self.who_row(c, &room_name, prefix));
                }
            }
        }
        rows.sort();
        for row in rows {
            let row: Vec<&str> = row.iter().map(String::as_str).collect();
            self.numeric(out, id, RPL_WHOREPLY, &row);
        }
        self.numeric(out, id, RPL_ENDOFWHO, &[&target, "End of WHO list"]);
    }

    fn who_row(&self, c: &Client, room: &str, prefix: &str) -> [String; 7] {
        let mut flags = String::from(if c.away.is_some() { "G" } else { "H" });
        if c.oper.is_some() {
            flags.push('*');
        }
        flags.push_str(prefix);
        [
            room.to_owned(),
            c.user.clone(),
            c.info.host.clone(),
            self.config.server_name.clone(),
            c.nick.clone(),
            flags,
            format!("0 {}", c.realname),
        ]
    }

    pub(crate) fn cmd_whois(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        // `WHOIS server nick` asks a given server; there is only this one.
        let Some(nicks) = msg
            .params
            .last()
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
        else {
            self.numeric(out, id, ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        let nick = nicks.split(',').next().unwrap_or("").to_owned();
        let Some(target) = self.find_nick(&nick) else {
            self.numeric(out, id, ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]);
            self.numeric(out, id, RPL_ENDOFWHOIS, &[&nick, "End of /WHOIS list"]);
            return;
        };
        let Some(c) = self.clients.get(&target) else {
            return;
        };
        let multi = self
            .clients
            .get(&id)
            .is_some_and(|me| me.has(Cap::MultiPrefix));
        let mut rooms: Vec<String> = c
            .channels
            .iter()
            .filter_map(|f| self.channels.get(f))
            .filter(|ch| !ch.secret || ch.members.contains_key(&id))
            .map(|ch| {
                let prefix = ch.member(target).map(|m| m.prefixes(multi)).unwrap_or("");
                format!("{prefix}{}", ch.name)
            })
            .collect();
        rooms.sort();
        let (tnick, user, host, realname) = (
            c.nick.clone(),
            c.user.clone(),
            c.info.host.clone(),
            c.realname.clone(),
        );
        let away = c.away.clone();
        let oper = c.oper.is_some();
        let account = c.account.clone();
        let idle = self
            .now
            .mono
            .saturating_duration_since(c.last_spoke)
            .as_secs()
            .to_string();
        let signon = unix_secs(c.signon).to_string();
        let secure = matches!(c.info.transport, crate::client::Transport::Tls);
        let server = self.config.server_name.clone();
        let description = self.config.description.clone();
        self.numeric(
            out,
            id,
            RPL_WHOISUSER,
            &[&tnick, &user, &host, "*", &realname],
        );
        if !rooms.is_empty() {
            self.numeric(out, id, RPL_WHOISCHANNELS, &[&tnick, &rooms.join(" ")]);
        }
        self.numeric(out, id, RPL_WHOISSERVER, &[&tnick, &server, &description]);
        if let Some(away) = away {
            self.numeric(out, id, RPL_AWAY, &[&tnick, &away]);
        }
        if let Some(account) = account {
            self.numeric(
                out,
                id,
                RPL_WHOISACCOUNT,
                &[&tnick, &account, "is logged in as"],
            );
        }
        if oper {
            self.numeric(out, id, RPL_WHOISOPERATOR, &[&tnick, "is an IRC operator"]);
        }
        if secure {
            self.numeric(out, id, "671", &[&tnick, "is using a secure connection"]);
        }
        self.numeric(
            out,
            id,
            RPL_WHOISIDLE,
            &[&tnick, &idle, &signon, "seconds idle, signon time"],
        );
        self.numeric(out, id, RPL_ENDOFWHOIS, &[&tnick, "End of /WHOIS list"]);
    }

    pub(crate) fn cmd_whowas(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(nick) = msg.param(0).filter(|n| !n.is_empty()).map(str::to_owned) else {
            self.numeric(out, id, ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        let count: usize = msg
            .param(1)
            .and_then(|c| c.parse().ok())
            .filter(|c| *c > 0)
            .unwrap_or(usize::MAX);
        let casemap = self.config.casemapping;
        let entries: Vec<_> = self
            .whowas
            .iter()
            .filter(|w| casemap.eq(&w.nick, &nick))
            .take(count)
            .cloned()
            .collect();
        if entries.is_empty() {
            self.numeric(
                out,
                id,
                ERR_WASNOSUCHNICK,
                &[&nick, "There was no such nickname"],
            );
        }
        let server = self.config.server_name.clone();
        for w in entries {
            self.numeric(
                out,
                id,
                RPL_WHOWASUSER,
                &[&w.nick, &w.user, &w.host, "*", &w.realname],
            );
            let when = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(w.when),
            )
            .to_string();
            self.numeric(out, id, RPL_WHOISSERVER, &[&w.nick, &server, &when]);
        }
        self.numeric(out, id, RPL_ENDOFWHOWAS, &[&nick, "End of WHOWAS"]);
    }

    pub(crate) fn cmd_ison(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        if msg.params.is_empty() {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["ISON", "Not enough parameters"],
            );
            return;
        }
        let online: Vec<String> = msg
            .params
            .iter()
            .flat_map(|p| p.split(' '))
            .filter_map(|n| self.find_nick(n))
            .map(|cid| self.nick_of(cid))
            .collect();
        self.numeric(out, id, RPL_ISON, &[&online.join(" ")]);
    }

    pub(crate) fn cmd_userhost(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        if msg.params.is_empty() {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["USERHOST", "Not enough parameters"],
            );
            return;
        }
        let replies: Vec<String> = msg
            .params
            .iter()
            .flat_map(|p| p.split(' '))
            .take(5)
            .filter_map(|n| self.find_nick(n))
            .filter_map(|cid| self.clients.get(&cid))
            .map(|c| {
                let oper = if c.oper.is_some() { "*" } else { "" };
                let away = if c.away.is_some() { '-' } else { '+' };
                format!("{}{oper}={away}{}@{}", c.nick, c.user, c.info.host)
            })
            .collect();
        self.numeric(out, id, RPL_USERHOST, &[&replies.join(" ")]);
    }

    pub(crate) fn cmd_away(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let text = msg
            .param(0)
            .filter(|t| !t.is_empty())
            .map(|t| truncate(t, self.config.limits.away_len));
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.away = text.clone();
        let source = client.source();
        match &text {
            Some(_) => self.numeric(
                out,
                id,
                RPL_NOWAWAY,
                &["You have been marked as being away"],
            ),
            None => self.numeric(
                out,
                id,
                RPL_UNAWAY,
                &["You are no longer marked as being away"],
            ),
        }
        let mut line = Outgoing::new(self.now.server_time(), Some(source), "AWAY");
        if let Some(text) = text {
            line = line.param(text);
        }
        let to: Vec<ClientId> = self
            .neighbours(id)
            .into_iter()
            .filter(|n| self.clients.get(n).is_some_and(|c| c.has(Cap::AwayNotify)))
            .collect();
        self.fan_out(out, &to, &mut line);
    }

    pub(crate) fn cmd_setname(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(realname) = msg.param(0).filter(|r| !r.is_empty()) else {
            self.fail(
                out,
                id,
                "SETNAME",
                "INVALID_REALNAME",
                &[],
                "Realname cannot be empty",
            );
            return;
        };
        if realname.len() > self.config.limits.realname_len {
            self.fail(
                out,
                id,
                "SETNAME",
                "INVALID_REALNAME",
                &[],
                "Realname is too long",
            );
            return;
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.realname = realname.to_owned();
        let source = client.source();
        let mut line = Outgoing::new(self.now.server_time(), Some(source), "SETNAME")
            .param(realname)
            .msgid(self.next_msgid());
        let mut to: Vec<ClientId> = self.neighbours(id);
        to.push(id);
        to.retain(|n| self.clients.get(n).is_some_and(|c| c.has(Cap::Setname)));
        self.fan_out(out, &to, &mut line);
    }

    pub(crate) fn cmd_version(&mut self, out: &mut Outbox, id: ClientId) {
        let version = self.config.version.clone();
        let server = self.config.server_name.clone();
        self.numeric(
            out,
            id,
            RPL_VERSION,
            &[&version, &server, "natter IRC server"],
        );
        for chunk in self.isupport.clone().chunks(13) {
            let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
            params.push("are supported by this server");
            self.numeric(out, id, RPL_ISUPPORT, &params);
        }
    }

    pub(crate) fn cmd_time(&mut self, out: &mut Outbox, id: ClientId) {
        let server = self.config.server_name.clone();
        let now = humantime::format_rfc3339_seconds(self.now.wall).to_string();
        self.numeric(out, id, RPL_TIME, &[&server, &now]);
    }

    pub(crate) fn cmd_admin(&mut self, out: &mut Outbox, id: ClientId) {
        let server = self.config.server_name.clone();
        let network = self.config.network_name.clone();
        self.numeric(out, id, RPL_ADMINME, &[&server, "Administrative info"]);
        self.numeric(out, id, RPL_ADMINLOC1, &[&network]);
        self.numeric(out, id, RPL_ADMINLOC2, &[&self.config.description.clone()]);
        self.numeric(out, id, RPL_ADMINEMAIL, &["Ask an operator: /WHO * o"]);
    }

    pub(crate) fn cmd_info(&mut self, out: &mut Outbox, id: ClientId) {
        let version = self.config.version.clone();
        self.numeric(
            out,
            id,
            RPL_INFO,
            &[&format!("{version}: a chat server speaking IRC")],
        );
        self.numeric(out, id, RPL_ENDOFINFO, &["End of INFO list"]);
    }
}
