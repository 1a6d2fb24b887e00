//! The hub's state and its entry points; each group of commands has its own file.

use std::collections::VecDeque;

use crate::maps::{Map, Set};

use bytes::Bytes;
use natter_proto::{numeric::*, LineWriter, Message, ParseError, MAX_LINE_BYTES};

use crate::caps::Cap;
use crate::channel::Channel;
use crate::client::{Client, ClientId, ClientInfo};
use crate::config::HubConfig;
use crate::outbox::{Effect, Outbox};
use crate::time::Now;

/// A nick that was, for WHOWAS.
#[derive(Clone, Debug)]
pub(crate) struct Whowas {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    pub when: u64,
}

/// What one command from a client produces for that client: its replies, gathered
/// so that they can carry the command's label (IRCv3 labeled-response) and wait for
/// the store when the command wrote something (the durability contract).
pub(crate) struct Reply {
    pub client: ClientId,
    pub label: Option<String>,
    pub lines: Vec<Bytes>,
    /// The ticket of the batch of writes holding what the command asked the store to
    /// keep, if it asked anything: the replies go out once that batch is kept.
    pub write_ticket: Option<u64>,
}

impl Reply {
    pub fn new(client: ClientId, label: Option<String>) -> Reply {
        Reply {
            client,
            label,
            lines: Vec::new(),
            write_ticket: None,
        }
    }
}

/// A password check the hub is waiting on.
pub(crate) enum PendingCheck {
    Oper {
        client: ClientId,
        name: String,
        label: Option<String>,
    },
    Sasl {
        client: ClientId,
        /// Folded account name.
        account: String,
        label: Option<String>,
    },
    /// A password being hashed for a new account.
    Register {
        client: ClientId,
        account: String,
        label: Option<String>,
    },
}

/// Lines a held client may send before it is dropped: far more than any client
/// pipelines behind one OPER, and a bound on what a flood can cost.
const MAX_HELD_LINES: usize = 512;

/// A `time` tag's value, on the stack.
pub(crate) type TimeTag = arrayvec::ArrayString<32>;

/// The chat state machine. See the crate documentation.
pub struct Hub {
    pub(crate) config: HubConfig,
    /// Boxed: a map's empty slots then cost a pointer, not a whole client (the map
    /// keeps spare slots, and idle memory per client is a measured target).
    pub(crate) clients: Map<ClientId, Box<Client>>,
    /// Folded nick → client, registered clients only.
    pub(crate) nicks: Map<String, ClientId>,
    /// Folded name → room.
    pub(crate) channels: Map<String, Channel>,
    pub(crate) whowas: VecDeque<Whowas>,
    pub(crate) now: Now,
    pub(crate) created: Now,
    /// ISUPPORT tokens, computed once from the configuration.
    pub(crate) isupport: Vec<String>,
    /// The last message number given out: every msgid, and every stored message's
    /// place and time in history, comes from it.
    pub(crate) last_seq: natter_store::Seq,
    /// The last millisecond written as a `time` tag, and how: messages come many to
    /// a millisecond under load, and formatting a date is not free.
    last_time_tag: (i64, TimeTag),
    pub(crate) reply: Option<Reply>,
    batch_counter: u64,
    pub(crate) pending_checks: Map<u64, PendingCheck>,
    pub(crate) pending_store: crate::tickets::Tickets<crate::persistence::PendingStore>,
    pub(crate) next_ticket: u64,
    /// The writes of the commands handled since the last [`Hub::end_batch`], asked of
    /// the store as one job.
    pub(crate) write_batch: Option<crate::persistence::WriteBatch>,
    /// How many writes the last batch gathered: the next one makes room for as many
    /// at once rather than by doublings, each a copy into fresh memory.
    pub(crate) last_batch_writes: usize,
    /// The conversation key of the direct message being stored, kept from one
    /// message to the next (`Hub::message_one`).
    pub(crate) direct_key_buf: String,
    /// The members a room message goes to, gathered before delivery borrows the hub:
    /// kept from message to message, since growing a list for a room of a hundred
    /// took five reallocations per message.
    pub(crate) room_recipients: Vec<(ClientId, bool)>,
    /// The most registered clients at once since start, for LUSERS.
    pub(crate) peak_users: usize,
    /// Every account, by folded name.
    pub(crate) accounts: Map<String, crate::accounts::AccountEntry>,
    /// Folded account name → the clients logged in to it.
    pub(crate) logins: Map<String, Vec<ClientId>>,
    pub(crate) guest_counter: u64,
    /// Folded nick → the clients that MONITOR it.
    pub(crate) watchers: Map<String, Set<ClientId>>,
    /// (folded account, conversation key) → read up to (ms), as far as known.
    pub(crate) read_markers: Map<(String, String), i64>,
}

impl Hub {
    pub fn new(config: HubConfig, now: Now) -> Hub {
        let isupport = crate::registration::isupport_tokens(&config);
        Hub {
            config,
            clients: Map::default(),
            nicks: Map::default(),
            channels: Map::default(),
            whowas: VecDeque::new(),
            now,
            created: now,
            isupport,
            last_seq: natter_store::Seq::at(0),
            direct_key_buf: String::new(),
            room_recipients: Vec::new(),
            last_time_tag: (-1, TimeTag::new()),
            reply: None,
            batch_counter: 0,
            pending_checks: Map::default(),
            pending_store: crate::tickets::Tickets::default(),
            next_ticket: 1,
            write_batch: None,
            last_batch_writes: 0,
            peak_users: 0,
            accounts: Map::default(),
            logins: Map::default(),
            guest_counter: 0,
            watchers: Map::default(),
            read_markers: Map::default(),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Clients connected, registered or not.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// A connection opened.
    pub fn connect(&mut self, id: ClientId, mut info: ClientInfo, now: Now, _out: &mut Outbox) {
        self.now = now;
        // `::1` in the middle of a WHO or WHOIS reply would read as its trailing
        // parameter; servers show such hosts as `0::1`.
        if info.host.starts_with(':') {
            info.host.insert(0, '0');
        }
        self.clients
            .insert(id, Box::new(Client::new(id, info, now)));
    }

    /// A connection closed on its own (EOF, reset, write error, SendQ exceeded): the
    /// rooms it was in see it quit with `reason`. A no-op for a client already gone.
    pub fn disconnect(&mut self, id: ClientId, reason: &str, now: Now, out: &mut Outbox) {
        self.now = now;
        self.remove_client(out, id, reason);
    }

    /// A line arrived from a client and parsed.
    pub fn line(&mut self, id: ClientId, msg: Message, now: Now, out: &mut Outbox) {
        self.now = now;
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.last_heard = now.mono;
        client.ping_sent = None;
        if let Some(held) = &mut client.held {
            if held.len() >= MAX_HELD_LINES {
                self.close_with_error(out, id, "Excess flood", "Excess flood");
            } else {
                held.push_back(msg);
            }
            return;
        }
        let labeled = client.has(Cap::LabeledResponse);
        let label = msg
            .tag("label")
            .filter(|l| labeled && !l.is_empty() && l.len() <= 64)
            .map(str::to_owned);
        self.reply = Some(Reply::new(id, label));
        self.dispatch(id, &msg, out);
        self.finish_reply(out);
    }

    /// A line arrived that could not be parsed: the client is told why and nothing
    /// is relayed. A line too long for the framer comes here as `BodyTooLong`.
    pub fn bad_line(&mut self, id: ClientId, error: ParseError, now: Now, out: &mut Outbox) {
        self.now = now;
        if !self.clients.contains_key(&id) {
            return;
        }
        match error {
            ParseError::Empty => {}
            ParseError::TagsTooLong | ParseError::BodyTooLong => {
                self.numeric(out, id, ERR_INPUTTOOLONG, &["Input line was too long"]);
            }
            ParseError::InvalidUtf8 { command } => {
                let command = command.unwrap_or_else(|| "*".into());
                self.fail(
                    out,
                    id,
                    &command,
                    "INVALID_UTF8",
                    &[],
                    "Message rejected: it is not valid UTF-8",
                );
            }
            ParseError::ForbiddenByte { command } => {
                let command = command.unwrap_or_else(|| "*".into());
                self.numeric(
                    out,
                    id,
                    ERR_UNKNOWNERROR,
                    &[&command, "Message rejected: it holds a NUL or control byte"],
                );
            }
            ParseError::NoCommand => {
                self.numeric(out, id, ERR_UNKNOWNCOMMAND, &["*", "Unknown command"]);
            }
        }
    }

    /// Time passed: PING quiet clients, drop those that do not answer and those
    /// that never register. Call about once a second.
    pub fn tick(&mut self, now: Now, out: &mut Outbox) {
        self.now = now;
        let limits = &self.config.limits;
        let mut unregistered_late = Vec::new();
        let mut timed_out = Vec::new();
        let mut to_ping = Vec::new();
        for client in self.clients.values() {
            if !client.is_registered() {
                if now.mono.duration_since(client.connected_at) >= limits.registration_timeout {
                    unregistered_late.push(client.id);
                }
            } else if let Some(sent) = client.ping_sent {
                if now.mono.duration_since(sent) >= limits.ping_timeout {
                    timed_out.push(client.id);
                }
            } else if now.mono.duration_since(client.last_heard) >= limits.ping_interval {
                to_ping.push(client.id);
            }
        }
        for id in unregistered_late {
            self.close_with_error(out, id, "Registration timed out", "Registration timed out");
        }
        let timeout = self.config.limits.ping_timeout.as_secs();
        for id in timed_out {
            let reason = format!("Ping timeout: {timeout} seconds");
            self.close_with_error(out, id, &reason, &reason);
        }
        let server = self.config.server_name.clone();
        for id in to_ping {
            if let Some(c) = self.clients.get_mut(&id) {
                c.ping_sent = Some(now.mono);
            }
            let line = server_line(None, "PING", &[&server]);
            self.send(out, id, line);
        }
        self.enforce_nick_protection(out);
    }

    /// The server is stopping: every client is told and closed.
    pub fn shutdown(&mut self, now: Now, out: &mut Outbox) {
        self.now = now;
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        let line = server_line(None, "ERROR", &["Server shutting down"]);
        for id in ids {
            self.send(out, id, line.clone());
            out.effects.push(Effect::Close { client: id });
        }
        self.clients.clear();
        self.nicks.clear();
        self.channels.clear();
    }

    /// The server finished a password check asked for with
    /// [`Effect::VerifyPassword`].
    pub fn password_checked(&mut self, ticket: u64, ok: bool, now: Now, out: &mut Outbox) {
        self.now = now;
        let client = match self.pending_checks.remove(&ticket) {
            Some(PendingCheck::Oper {
                client,
                name,
                label,
            }) => {
                self.reply = Some(Reply::new(client, label));
                self.finish_oper(out, client, name, ok);
                client
            }
            Some(PendingCheck::Sasl {
                client,
                account,
                label,
            }) => {
                self.reply = Some(Reply::new(client, label));
                self.finish_sasl(out, client, &account, ok);
                client
            }
            Some(PendingCheck::Register { .. }) | None => return,
        };
        self.finish_reply(out);
        self.release(out, client);
    }

    /// Stops handling a client's lines until [`Hub::release`]; returns the label of
    /// the command being handled, so that its late reply can still carry it.
    pub(crate) fn hold(&mut self, id: ClientId) -> Option<String> {
        if let Some(c) = self.clients.get_mut(&id) {
            c.held = Some(Box::default());
        }
        match &mut self.reply {
            Some(reply) if reply.client == id && reply.lines.is_empty() => reply.label.take(),
            _ => None,
        }
    }

    /// Handles, in order, the lines a client sent while held.
    pub(crate) fn release(&mut self, out: &mut Outbox, id: ClientId) {
        let Some(mut queue) = self.clients.get_mut(&id).and_then(|c| c.held.take()) else {
            return;
        };
        while let Some(msg) = queue.pop_front() {
            self.line(id, msg, self.now, out);
            match self.clients.get_mut(&id) {
                // Held again by a line just handled: the rest waits behind it.
                Some(c) if c.held.is_some() => {
                    c.held = Some(queue);
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    fn dispatch(&mut self, id: ClientId, msg: &Message, out: &mut Outbox) {
        let registered = self.clients.get(&id).is_some_and(|c| c.is_registered());
        match msg.command.as_str() {
            "CAP" => self.cmd_cap(out, id, msg),
            "NICK" => self.cmd_nick(out, id, msg),
            "USER" => self.cmd_user(out, id, msg),
            "PASS" => self.cmd_pass(out, id, msg),
            "PING" => self.cmd_ping(out, id, msg),
            "PONG" => {}
            "QUIT" => self.cmd_quit(out, id, msg),
            "AUTHENTICATE" => self.cmd_authenticate(out, id, msg),
            "REGISTER" => self.cmd_register(out, id, msg),
            _ if !registered => {
                self.numeric(out, id, ERR_NOTREGISTERED, &["You have not registered"]);
            }
            "PRIVMSG" | "NOTICE" | "TAGMSG" => self.cmd_message(out, id, msg),
            "JOIN" => self.cmd_join(out, id, msg),
            "PART" => self.cmd_part(out, id, msg),
            "TOPIC" => self.cmd_topic(out, id, msg),
            "NAMES" => self.cmd_names(out, id, msg),
            "LIST" => self.cmd_list(out, id, msg),
            "KICK" => self.cmd_kick(out, id, msg),
            "INVITE" => self.cmd_invite(out, id, msg),
            "MODE" => self.cmd_mode(out, id, msg),
            "WHO" => self.cmd_who(out, id, msg),
            "WHOIS" => self.cmd_whois(out, id, msg),
            "WHOWAS" => self.cmd_whowas(out, id, msg),
            "ISON" => self.cmd_ison(out, id, msg),
            "USERHOST" => self.cmd_userhost(out, id, msg),
            "AWAY" => self.cmd_away(out, id, msg),
            "SETNAME" => self.cmd_setname(out, id, msg),
            "CHATHISTORY" => self.cmd_chathistory(out, id, msg),
            "MONITOR" => self.cmd_monitor(out, id, msg),
            "MARKREAD" => self.cmd_markread(out, id, msg),
            "MOTD" => self.send_motd(out, id),
            "LUSERS" => self.send_lusers(out, id),
            "VERSION" => self.cmd_version(out, id),
            "TIME" => self.cmd_time(out, id),
            "ADMIN" => self.cmd_admin(out, id),
            "INFO" => self.cmd_info(out, id),
            "OPER" => self.cmd_oper(out, id, msg),
            "KILL" => self.cmd_kill(out, id, msg),
            "WALLOPS" => self.cmd_wallops(out, id, msg),
            "USERS" | "SUMMON" => {
                self.numeric(
                    out,
                    id,
                    "446",
                    &[&msg.command, "This command has been disabled"],
                );
            }
            other => {
                let other = other.to_owned();
                self.numeric(out, id, ERR_UNKNOWNCOMMAND, &[&other, "Unknown command"]);
            }
        }
    }

    // ---- sending -------------------------------------------------------------

    /// Queues a line for a client, or for the labeled response being gathered.
    pub(crate) fn send(&mut self, out: &mut Outbox, to: ClientId, line: Bytes) {
        if let Some(reply) = &mut self.reply {
            if reply.client == to {
                reply.lines.push(line);
                return;
            }
        }
        out.deliveries.push((to, line));
    }

    /// Sends `:server <code> <nick> params...`.
    pub(crate) fn numeric(&mut self, out: &mut Outbox, to: ClientId, code: &str, params: &[&str]) {
        let Some(client) = self.clients.get(&to) else {
            return;
        };
        let mut w = LineWriter::new();
        w.start(Some(&self.config.server_name), code)
            .param(&client.nick);
        let last = params.len().saturating_sub(1);
        for (i, p) in params.iter().enumerate() {
            // A middle parameter echoed from the client (`NICK :a b`, `TOPIC :`) must
            // not split, vanish or swallow the parameters after it, nor push the line
            // past 512 bytes.
            let broken = p.is_empty() || p.contains(' ') || p.starts_with(':');
            let p = if i < last && broken { "*" } else { p };
            if i < last {
                w.param(cut(p, MAX_ECHOED_PARAM));
            } else {
                w.trailing(p);
            }
        }
        self.send(out, to, Bytes::from(w.finish_within(MAX_LINE_BYTES)));
    }

    /// Sends an IRCv3 standard reply: `FAIL <command> <code> [context...] :description`.
    pub(crate) fn fail(
        &mut self,
        out: &mut Outbox,
        to: ClientId,
        command: &str,
        code: &str,
        context: &[&str],
        description: &str,
    ) {
        let mut w = LineWriter::new();
        w.start(Some(&self.config.server_name), "FAIL")
            .param(command)
            .param(code);
        for c in context {
            w.param(c);
        }
        w.param(description);
        self.send(out, to, Bytes::from(w.finish()));
    }

    /// Sends the replies gathered for the command just handled: labeled if it was,
    /// and only once the store has kept what the command wrote.
    pub(crate) fn finish_reply(&mut self, out: &mut Outbox) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let lines = match &reply.label {
            Some(label) => self.labeled(label, reply.lines),
            None => reply.lines,
        };
        self.deliver_reply(out, reply.client, lines, reply.write_ticket);
    }

    /// The replies to a labeled command, labeled: one line carries the label, several
    /// come in a labeled-response batch, none give an ACK.
    fn labeled(&mut self, label: &str, lines: Vec<Bytes>) -> Vec<Bytes> {
        let label_tag = format!("label={}", escape(label));
        let server = &self.config.server_name;
        match lines.len() {
            0 => vec![Bytes::from(format!("@{label_tag} :{server} ACK\r\n"))],
            1 => vec![add_tag(&lines[0], &label_tag)],
            n => {
                self.batch_counter += 1;
                let id = format!("lr{}", self.batch_counter);
                let server = &self.config.server_name;
                let mut wrapped = Vec::with_capacity(n + 2);
                wrapped.push(Bytes::from(format!(
                    "@{label_tag} :{server} BATCH +{id} labeled-response\r\n"
                )));
                let batch_tag = format!("batch={id}");
                wrapped.extend(lines.iter().map(|line| add_tag(line, &batch_tag)));
                wrapped.push(Bytes::from(format!(":{server} BATCH -{id}\r\n")));
                wrapped
            }
        }
    }

    /// A new batch reference, unique on this server.
    pub(crate) fn next_batch_id(&mut self) -> String {
        self.batch_counter += 1;
        format!("b{}", self.batch_counter)
    }

    // ---- identifiers ---------------------------------------------------------

    /// A message id unique on this server, across restarts: numbers grow with the
    /// clock and continue after the last one kept ([`Hub::continue_history`]).
    pub(crate) fn next_msgid(&mut self) -> String {
        self.next_seq().msgid().to_string()
    }

    /// The next message number, which also carries the message's time.
    pub(crate) fn next_seq(&mut self) -> natter_store::Seq {
        self.last_seq = self.last_seq.next(self.now_ms());
        self.last_seq
    }

    /// The `time` tag of a millisecond, formatted once for the messages of that
    /// millisecond and copied to each (a copy of 32 bytes costs less than the two
    /// atomic operations of sharing it).
    pub(crate) fn time_tag(&mut self, ms: i64) -> TimeTag {
        if self.last_time_tag.0 != ms {
            let mut tag = TimeTag::new();
            // `YYYY-MM-DDTHH:MM:SS.mmmZ`: 24 bytes for every time a `Seq` holds.
            let _ = tag.try_push_str(&crate::history::format_ms(ms));
            self.last_time_tag = (ms, tag);
        }
        self.last_time_tag.1
    }

    /// Numbers new messages after `last`, the newest message the store keeps: at
    /// start, so that a clock set back since then cannot reuse a msgid.
    pub fn continue_history(&mut self, last: natter_store::Seq) {
        self.last_seq = self.last_seq.max(last);
    }

    pub(crate) fn fold(&self, name: &str) -> String {
        self.config.casemapping.fold(name)
    }

    /// A name folded for a lookup, without allocating for the usual short name.
    pub(crate) fn folded(&self, name: &str) -> crate::names::FoldedName {
        crate::names::FoldedName::new(self.config.casemapping, name)
    }

    pub(crate) fn find_nick(&self, nick: &str) -> Option<ClientId> {
        self.nicks.get(&*self.folded(nick)).copied()
    }

    pub(crate) fn nick_of(&self, id: ClientId) -> String {
        self.clients
            .get(&id)
            .map(|c| c.nick.clone())
            .unwrap_or_else(|| "*".into())
    }

    /// Every client that shares a room with `id`, without `id` itself.
    pub(crate) fn neighbours(&self, id: ClientId) -> Vec<ClientId> {
        let Some(client) = self.clients.get(&id) else {
            return Vec::new();
        };
        let mut seen = Set::default();
        for name in &client.channels {
            if let Some(ch) = self.channels.get(name) {
                seen.extend(ch.members.keys().copied());
            }
        }
        seen.remove(&id);
        let mut ids: Vec<ClientId> = seen.into_iter().collect();
        ids.sort_unstable();
        ids
    }

    // ---- leaving ---------------------------------------------------------------

    /// Tells a client why it is being dropped, closes it, and tells its rooms.
    pub(crate) fn close_with_error(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        error: &str,
        quit_reason: &str,
    ) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let text = format!("Closing Link: {} ({error})", client.info.host);
        let line = server_line(None, "ERROR", &[&text]);
        self.send(out, id, line);
        self.remove_client(out, id, quit_reason);
    }

    /// Forgets a client: its rooms see it QUIT with `reason`, its nick goes to
    /// WHOWAS, and its connection is closed.
    pub(crate) fn remove_client(&mut self, out: &mut Outbox, id: ClientId, reason: &str) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        out.effects.push(Effect::Close { client: id });
        if let Some(account) = &client.account {
            self.forget_login(id, account);
        }
        self.forget_monitors(id, client.monitoring.keys().cloned());
        if !client.is_registered() {
            return;
        }
        self.notify_watchers(out, &client.nick, None);
        let mut quit =
            crate::fanout::Outgoing::new(self.now.server_time(), Some(client.source()), "QUIT")
                .param(reason);
        let mut told = Set::default();
        for name in &client.channels {
            let Some(ch) = self.channels.get_mut(name) else {
                continue;
            };
            ch.members.remove(&id);
            for member in ch.members.keys() {
                if told.insert(*member) {
                    if let Some(c) = self.clients.get(member) {
                        out.deliveries.push((*member, quit.for_caps(c.caps)));
                    }
                }
            }
            if ch.members.is_empty() {
                self.channels.remove(name);
            }
        }
        self.nicks.remove(&self.fold(&client.nick));
        self.remember_whowas(&client);
        for ch in self.channels.values_mut() {
            ch.invited.remove(&id);
        }
    }

    pub(crate) fn remember_whowas(&mut self, client: &Client) {
        self.whowas.push_front(Whowas {
            nick: client.nick.clone(),
            user: client.user.clone(),
            host: client.info.host.clone(),
            realname: client.realname.clone(),
            when: self.now.unix_secs(),
        });
        self.whowas.truncate(self.config.limits.whowas);
    }
}

/// A line with an optional source and no tags.
pub(crate) fn server_line(source: Option<&str>, command: &str, params: &[&str]) -> Bytes {
    let mut w = LineWriter::new();
    w.start(source, command).params(params);
    Bytes::from(w.finish_within(MAX_LINE_BYTES))
}

/// The longest middle parameter a reply echoes: nicks, rooms and ISUPPORT tokens
/// fit; garbage a client sent is cut so the reply stays within 512 bytes.
const MAX_ECHOED_PARAM: usize = 200;

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Adds one tag (already `key=escaped-value`) to a serialized line.
fn add_tag(line: &Bytes, tag: &str) -> Bytes {
    let mut v = Vec::with_capacity(line.len() + tag.len() + 2);
    if let Some(rest) = line.strip_prefix(b"@") {
        v.push(b'@');
        v.extend_from_slice(tag.as_bytes());
        v.push(b';');
        v.extend_from_slice(rest);
    } else {
        v.push(b'@');
        v.extend_from_slice(tag.as_bytes());
        v.push(b' ');
        v.extend_from_slice(line);
    }
    Bytes::from(v)
}

fn escape(value: &str) -> String {
    let mut v = Vec::new();
    natter_proto::escape_tag_value(value, &mut v);
    String::from_utf8(v).unwrap_or_default()
}
