//! Connection registration: CAP negotiation, PASS, NICK, USER, the welcome burst,
//! and the commands that keep a connection alive or end it.

use bytes::Bytes;
use natter_proto::{is_valid_nick, numeric::*, Message};

use crate::caps::Cap;
use crate::client::ClientId;
use crate::config::HubConfig;
use crate::fanout::Outgoing;
use crate::hub::{server_line, Hub};
use crate::outbox::Outbox;

/// The ISUPPORT tokens that describe this server truthfully.
pub(crate) fn isupport_tokens(config: &HubConfig) -> Vec<String> {
    let l = &config.limits;
    let t = l.max_targets;
    vec![
        format!("AWAYLEN={}", l.away_len),
        format!("CASEMAPPING={}", config.casemapping.token()),
        format!("CHANLIMIT=#:{}", l.channels_per_client),
        "CHANMODES=b,k,l,imnst".into(),
        format!("CHANNELLEN={}", l.channel_len),
        "CHANTYPES=#".into(),
        format!("KICKLEN={}", l.kick_len),
        "LINELEN=512".into(),
        format!("MAXLIST=b:{}", l.max_bans),
        format!("MAXTARGETS={t}"),
        "MODES=4".into(),
        format!("NETWORK={}", config.network_name),
        format!("NICKLEN={}", l.nick_len),
        "PREFIX=(ov)@+".into(),
        "STATUSMSG=@+".into(),
        format!(
            "TARGMAX=PRIVMSG:{t},NOTICE:{t},TAGMSG:{t},JOIN:{t},PART:{t},KICK:{t},NAMES:{t},LIST:{t},WHOIS:1,ISON:,USERHOST:5"
        ),
        format!("TOPICLEN={}", l.topic_len),
        format!("CHATHISTORY={}", crate::history::HISTORY_PAGE),
        format!("MONITOR={}", l.monitor),
        "MSGREFTYPES=msgid,timestamp".into(),
        "USERLEN=18".into(),
        "UTF8ONLY".into(),
    ]
}

/// The longest username kept; longer ones are cut, as USERLEN says.
const USER_LEN: usize = 18;

impl Hub {
    pub(crate) fn cmd_cap(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(sub) = msg.param(0) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["CAP", "Not enough parameters"],
            );
            return;
        };
        let sub = sub.to_ascii_uppercase();
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let nick = client.nick.clone();
        let server = self.config.server_name.clone();
        match sub.as_str() {
            "LS" => {
                let version = msg.param(1).and_then(|v| v.parse().ok()).unwrap_or(0u32);
                client.cap_version = client.cap_version.max(version);
                if version >= 302 {
                    // CAP 302 implies cap-notify.
                    client.caps.set(Cap::CapNotify, true);
                }
                if let Some(reg) = &mut client.registration {
                    reg.cap_negotiating = true;
                }
                // CAP 302 clients also learn each capability's value (`sasl=PLAIN`).
                let names: Vec<String> = Cap::ALL
                    .iter()
                    .map(|c| match c.value() {
                        Some(v) if version >= 302 => format!("{}={v}", c.name()),
                        _ => c.name().to_owned(),
                    })
                    .collect();
                let line = server_line(Some(&server), "CAP", &[&nick, "LS", &names.join(" ")]);
                self.send(out, id, line);
            }
            "LIST" => {
                let names = client.caps.names();
                let line = server_line(Some(&server), "CAP", &[&nick, "LIST", &names]);
                self.send(out, id, line);
            }
            "REQ" => {
                if let Some(reg) = &mut client.registration {
                    reg.cap_negotiating = true;
                }
                let requested = msg.param(1).unwrap_or("");
                let mut changes = Vec::new();
                let mut ok = !requested.trim().is_empty();
                for word in requested.split(' ').filter(|w| !w.is_empty()) {
                    let (enable, name) = match word.strip_prefix('-') {
                        Some(name) => (false, name),
                        None => (true, word),
                    };
                    match Cap::from_name(name) {
                        Some(cap) => changes.push((cap, enable)),
                        None => ok = false,
                    }
                }
                // A REQ is all or nothing.
                let verb = if ok {
                    for (cap, enable) in changes {
                        client.caps.set(cap, enable);
                    }
                    "ACK"
                } else {
                    "NAK"
                };
                let line = server_line(Some(&server), "CAP", &[&nick, verb, requested]);
                self.send(out, id, line);
            }
            "END" => {
                if let Some(reg) = &mut client.registration {
                    reg.cap_negotiating = false;
                }
                self.try_finish_registration(out, id);
            }
            _ => {
                self.numeric(out, id, ERR_INVALIDCAPCMD, &[&sub, "Invalid CAP command"]);
            }
        }
    }

    pub(crate) fn cmd_pass(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        match (&mut client.registration, msg.param(0)) {
            (None, _) => {
                self.numeric(out, id, ERR_ALREADYREGISTERED, &["You may not reregister"]);
            }
            (Some(_), None) => {
                self.numeric(
                    out,
                    id,
                    ERR_NEEDMOREPARAMS,
                    &["PASS", "Not enough parameters"],
                );
            }
            (Some(reg), Some(password)) => reg.password = Some(password.to_owned()),
        }
    }

    pub(crate) fn cmd_user(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        if msg.params.len() < 4 || msg.params[0].is_empty() || msg.params[3].is_empty() {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["USER", "Not enough parameters"],
            );
            return;
        }
        let realname_len = self.config.limits.realname_len;
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(reg) = &mut client.registration else {
            self.numeric(out, id, ERR_ALREADYREGISTERED, &["You may not reregister"]);
            return;
        };
        // Usernames end up in every `nick!user@host`: keep only characters that
        // cannot confuse a parser.
        let user: String = msg.params[0]
            .chars()
            .filter(|c| c.is_ascii_graphic() && !matches!(c, '!' | '@' | ':' | ','))
            .take(USER_LEN)
            .collect();
        let user = if user.is_empty() { "user".into() } else { user };
        let realname = truncate(&msg.params[3], realname_len);
        reg.user = Some((user, realname));
        self.try_finish_registration(out, id);
    }

    pub(crate) fn cmd_nick(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(wanted) = msg.param(0).filter(|n| !n.is_empty()) else {
            self.numeric(out, id, ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        let wanted = wanted.to_owned();
        if !is_valid_nick(&wanted, self.config.limits.nick_len) {
            self.numeric(
                out,
                id,
                ERR_ERRONEUSNICKNAME,
                &[&wanted, "Erroneous nickname"],
            );
            return;
        }
        let folded = self.fold(&wanted);
        // A registered nick held by someone else may still be this client's: it can
        // log in (SASL) before registration ends, and then takes the nick back. So
        // before registration the check waits until then.
        let unregistered = self.clients.get(&id).is_some_and(|c| !c.is_registered());
        let decided_later = unregistered && self.accounts.contains_key(&folded);
        if !decided_later && !self.reclaim_nick(out, id, &folded) {
            self.numeric(
                out,
                id,
                ERR_NICKNAMEINUSE,
                &[&wanted, "Nickname is already in use"],
            );
            return;
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if let Some(reg) = &mut client.registration {
            reg.nick = Some(wanted);
            self.try_finish_registration(out, id);
            return;
        }
        if client.nick == wanted {
            return;
        }
        // Everyone who shares a room sees the change once, and so does the client.
        let old_source = client.source();
        let old_folded = self.config.casemapping.fold(&client.nick);
        let mut line = Outgoing::new(self.now.server_time(), Some(old_source), "NICK")
            .param(wanted.clone())
            .msgid(self.next_msgid());
        let snapshot = self.whowas_snapshot(id);
        if let Some(entry) = snapshot {
            self.whowas.push_front(entry);
            self.whowas.truncate(self.config.limits.whowas);
        }
        self.nicks.remove(&old_folded);
        self.nicks.insert(folded, id);
        let mut recipients = self.neighbours(id);
        recipients.push(id);
        for to in recipients {
            if let Some(caps) = self.clients.get(&to).map(|c| c.caps) {
                let bytes = line.for_caps(caps);
                self.send(out, to, bytes);
            }
        }
        let old_nick = self.nick_of(id);
        let new_source = match self.clients.get_mut(&id) {
            Some(client) => {
                client.nick = wanted.clone();
                client.nick_deadline = None;
                client.source()
            }
            None => return,
        };
        self.notify_watchers(out, &old_nick, None);
        self.notify_watchers(out, &wanted, Some(&new_source));
        self.protect_nick(out, id);
    }

    fn whowas_snapshot(&self, id: ClientId) -> Option<crate::hub::Whowas> {
        let c = self.clients.get(&id)?;
        Some(crate::hub::Whowas {
            nick: c.nick.clone(),
            user: c.user.clone(),
            host: c.info.host.clone(),
            realname: c.realname.clone(),
            when: self.now.unix_secs(),
        })
    }

    /// Registers the client once it has given NICK and USER and ended CAP
    /// negotiation, and the server password, if any, matches.
    fn try_finish_registration(&mut self, out: &mut Outbox, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let Some(reg) = &client.registration else {
            return;
        };
        let (Some(nick), Some((user, realname))) = (reg.nick.clone(), reg.user.clone()) else {
            return;
        };
        if reg.cap_negotiating {
            return;
        }
        if let Some(expected) = &self.config.server_password {
            if reg.password.as_deref() != Some(expected.as_str()) {
                self.numeric(out, id, ERR_PASSWDMISMATCH, &["Password incorrect"]);
                self.close_with_error(out, id, "Bad password", "Bad password");
                return;
            }
        }
        // The nick may have been taken since NICK was accepted.
        let folded = self.fold(&nick);
        if !self.reclaim_nick(out, id, &folded) {
            self.numeric(
                out,
                id,
                ERR_NICKNAMEINUSE,
                &[&nick, "Nickname is already in use"],
            );
            if let Some(reg) = self
                .clients
                .get_mut(&id)
                .and_then(|c| c.registration.as_mut())
            {
                reg.nick = None;
            }
            return;
        }
        self.nicks.insert(folded, id);
        self.peak_users = self.peak_users.max(self.nicks.len());
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.registration = None;
        client.nick = nick;
        client.user = user;
        client.realname = realname;
        client.last_heard = self.now.mono;
        client.last_spoke = self.now.mono;
        self.welcome(out, id);
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let (source, nick, account) =
            (client.source(), client.nick.clone(), client.account.clone());
        self.notify_watchers(out, &nick, Some(&source));
        // Logged in before registering (SASL): its offline messages come now.
        if let Some(account) = account {
            let folded = self.fold(&account);
            self.take_offline(out, &folded);
        }
        // Even a logged-in client may not keep another account's nick.
        self.protect_nick(out, id);
    }

    /// 001 to 005, LUSERS and the MOTD.
    fn welcome(&mut self, out: &mut Outbox, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let source = client.source();
        let network = self.config.network_name.clone();
        let server = self.config.server_name.clone();
        let version = self.config.version.clone();
        let created = humantime::format_rfc3339_seconds(self.created.wall).to_string();
        let welcome = format!("Welcome to the {network} IRC Network, {source}");
        self.numeric(out, id, RPL_WELCOME, &[&welcome]);
        let host = format!("Your host is {server}, running version {version}");
        self.numeric(out, id, RPL_YOURHOST, &[&host]);
        let created = format!("This server was created {created}");
        self.numeric(out, id, RPL_CREATED, &[&created]);
        self.numeric(
            out,
            id,
            RPL_MYINFO,
            &[&server, &version, "iow", "biklmnst", "bklov"],
        );
        for chunk in self.isupport.clone().chunks(13) {
            let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
            params.push("are supported by this server");
            self.numeric(out, id, RPL_ISUPPORT, &params);
        }
        self.send_lusers(out, id);
        self.send_motd(out, id);
    }

    pub(crate) fn send_lusers(&mut self, out: &mut Outbox, id: ClientId) {
        let registered = self.clients.values().filter(|c| c.is_registered());
        let (mut users, mut invisible, mut opers) = (0, 0, 0);
        for c in registered {
            users += 1;
            invisible += usize::from(c.invisible);
            opers += usize::from(c.oper.is_some());
        }
        let unknown = self.clients.len() - users;
        let channels = self.channels.len();
        let visible = users - invisible;
        self.numeric(
            out,
            id,
            RPL_LUSERCLIENT,
            &[&format!(
                "There are {visible} users and {invisible} invisible on 1 servers"
            )],
        );
        self.numeric(
            out,
            id,
            RPL_LUSEROP,
            &[&opers.to_string(), "operator(s) online"],
        );
        self.numeric(
            out,
            id,
            RPL_LUSERUNKNOWN,
            &[&unknown.to_string(), "unknown connection(s)"],
        );
        self.numeric(
            out,
            id,
            RPL_LUSERCHANNELS,
            &[&channels.to_string(), "channels formed"],
        );
        self.numeric(
            out,
            id,
            RPL_LUSERME,
            &[&format!("I have {users} clients and 0 servers")],
        );
        let peak = self.peak_users.max(users);
        let (u, max) = (users.to_string(), peak.to_string());
        let text = format!("Current local users {users}, max {peak}");
        self.numeric(out, id, RPL_LOCALUSERS, &[&u, &max, &text]);
        let text = format!("Current global users {users}, max {peak}");
        self.numeric(out, id, RPL_GLOBALUSERS, &[&u, &max, &text]);
    }

    pub(crate) fn send_motd(&mut self, out: &mut Outbox, id: ClientId) {
        if self.config.motd.is_empty() {
            self.numeric(out, id, ERR_NOMOTD, &["MOTD File is missing"]);
            return;
        }
        let server = self.config.server_name.clone();
        self.numeric(
            out,
            id,
            RPL_MOTDSTART,
            &[&format!("- {server} Message of the day - ")],
        );
        for line in self.config.motd.clone() {
            self.numeric(out, id, RPL_MOTD, &[&format!("- {line}")]);
        }
        self.numeric(out, id, RPL_ENDOFMOTD, &["End of /MOTD command."]);
    }

    pub(crate) fn cmd_ping(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(token) = msg.param(0) else {
            self.numeric(out, id, ERR_NOORIGIN, &["No origin specified"]);
            return;
        };
        let server = self.config.server_name.clone();
        let line = server_line(Some(&server), "PONG", &[&server, token]);
        self.send(out, id, line);
    }

    pub(crate) fn cmd_quit(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let reason = match msg.param(0) {
            Some(r) if !r.is_empty() => {
                format!("Quit: {}", truncate(r, self.config.limits.kick_len))
            }
            _ => "Client Quit".into(),
        };
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let text = format!("Closing Link: {} ({reason})", client.info.host);
        self.send(out, id, Bytes::from(format!("ERROR :{text}\r\n")));
        self.remove_client(out, id, &reason);
    }
}

/// `text` cut to at most `max` bytes at a character boundary, owned.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    crate::hub::cut(text, max).to_owned()
}
