//! History: CHATHISTORY (draft/chathistory) and the delivery of offline messages,
//! both replaying stored messages with their original time, msgid and sender.

use bytes::Bytes;
use natter_proto::{LineWriter, Message};
use natter_store::{HistoryQuery, Selector, StoredMessage};

use crate::caps::{Cap, CapSet};
use crate::client::ClientId;
use crate::hub::{server_line, Hub, Reply};
use crate::names::FoldedName;
use crate::outbox::Outbox;
use crate::persistence::{PendingStore, StoreJob, StoreOutcome};

/// The most messages one CHATHISTORY answer holds (ISUPPORT `CHATHISTORY`).
pub const HISTORY_PAGE: usize = 100;

impl Hub {
    /// The conversation key of `target` as seen by `id`: a folded room name, or the
    /// key of the direct conversation between the two.
    pub(crate) fn conversation_key(&self, id: ClientId, target: &str) -> String {
        if target.starts_with('#') {
            return self.fold(target);
        }
        StoredMessage::direct_key(&self.identity_of(id), &self.identity_by_nick(target))
    }

    /// Who a client is for history: its account when logged in, else its nick. A
    /// registered nick used without logging in to it (during the grace period) stands
    /// for no one in particular: it must not open that account's conversations.
    pub(crate) fn identity_of(&self, id: ClientId) -> String {
        self.identity(id).into_string()
    }

    /// [`Hub::identity_of`], folded on the stack.
    pub(crate) fn identity(&self, id: ClientId) -> FoldedName {
        match self.clients.get(&id) {
            Some(c) => self.identity_of_client(c),
            None => FoldedName::new(self.config.casemapping, ""),
        }
    }

    /// [`Hub::identity`] of a client already at hand.
    pub(crate) fn identity_of_client(&self, c: &crate::client::Client) -> FoldedName {
        let casemapping = self.config.casemapping;
        match c.account.as_deref() {
            Some(account) => FoldedName::new(casemapping, account),
            None => {
                let nick = FoldedName::new(casemapping, &c.nick);
                if self.accounts.contains_key(&*nick) {
                    // `!` is in no nick nor account name.
                    FoldedName::with_prefix(casemapping, "!", &c.nick)
                } else {
                    nick
                }
            }
        }
    }

    /// Who a nick stands for: the account of the client using it, or the nick.
    fn identity_by_nick(&self, nick: &str) -> String {
        match self.find_nick(nick) {
            Some(other) => self.identity_of(other),
            None => self.fold(nick),
        }
    }

    pub(crate) fn cmd_chathistory(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let sub = msg.param(0).unwrap_or("").to_ascii_uppercase();
        let limit_of = |p: Option<&str>| -> Option<usize> {
            p.and_then(|l| l.parse::<usize>().ok())
                .map(|l| l.min(HISTORY_PAGE))
        };
        if sub == "TARGETS" {
            let (Some(a), Some(b)) = (
                msg.param(1).and_then(parse_time),
                msg.param(2).and_then(parse_time),
            ) else {
                self.fail(
                    out,
                    id,
                    "CHATHISTORY",
                    "INVALID_PARAMS",
                    &["TARGETS"],
                    "Give two timestamps and a limit",
                );
                return;
            };
            let limit = limit_of(msg.param(3)).unwrap_or(HISTORY_PAGE);
            let names = self.known_conversations(id);
            let targets = names.iter().map(|(key, _)| key.clone()).collect();
            let label = self.hold(id);
            self.ask_store(
                out,
                StoreJob::Targets {
                    targets,
                    participant: Some(self.identity_of(id)),
                    from_ms: a,
                    to_ms: b,
                    limit,
                },
                PendingStore::Targets {
                    client: id,
                    label,
                    names,
                },
            );
            return;
        }
        let Some(target) = msg.param(1).map(str::to_owned) else {
            self.fail(
                out,
                id,
                "CHATHISTORY",
                "NEED_MORE_PARAMS",
                &[&sub],
                "Missing parameters",
            );
            return;
        };
        let selector = |p: Option<&str>| p.and_then(parse_selector);
        let query = match sub.as_str() {
            "LATEST" => match (selector(msg.param(2)), limit_of(msg.param(3))) {
                (Some(after), Some(limit)) => Some(HistoryQuery::Latest { after, limit }),
                _ => None,
            },
            "BEFORE" | "AFTER" | "AROUND" => match (selector(msg.param(2)), limit_of(msg.param(3)))
            {
                (Some(Selector::Unbounded), _) | (None, _) | (_, None) => None,
                (Some(at), Some(limit)) => Some(match sub.as_str() {
                    "BEFORE" => HistoryQuery::Before { at, limit },
                    "AFTER" => HistoryQuery::After { at, limit },
                    _ => HistoryQuery::Around { at, limit },
                }),
            },
            "BETWEEN" => match (
                selector(msg.param(2)),
                selector(msg.param(3)),
                limit_of(msg.param(4)),
            ) {
                (Some(from), Some(to), Some(limit))
                    if from != Selector::Unbounded && to != Selector::Unbounded =>
                {
                    Some(HistoryQuery::Between { from, to, limit })
                }
                _ => None,
            },
            _ => {
                self.fail(
                    out,
                    id,
                    "CHATHISTORY",
                    "INVALID_PARAMS",
                    &[&sub],
                    "Unknown subcommand",
                );
                return;
            }
        };
        let Some(query) = query else {
            self.fail(
                out,
                id,
                "CHATHISTORY",
                "INVALID_PARAMS",
                &[&sub],
                "Invalid message reference or limit",
            );
            return;
        };
        if !self.may_read_history(id, &target) {
            self.fail(
                out,
                id,
                "CHATHISTORY",
                "INVALID_TARGET",
                &[&sub, &target],
                "You may not read that history",
            );
            return;
        }
        let key = self.conversation_key(id, &target);
        let label = self.hold(id);
        self.ask_store(
            out,
            StoreJob::History { target: key, query },
            PendingStore::History {
                client: id,
                label,
                subcommand: sub,
                target,
            },
        );
    }

    /// A room's history is open to its members, and to anyone not banned from it
    /// while it is neither secret, invite-only nor keyed (or empty, as after a
    /// restart); a direct conversation only to its two parties, which the key ensures.
    /// What was said while a room was closed is filtered from the answer
    /// ([`Channel::may_replay`](crate::channel::Channel::may_replay)).
    fn may_read_history(&self, id: ClientId, target: &str) -> bool {
        if !target.starts_with('#') {
            return natter_proto::is_valid_nick(target, self.config.limits.nick_len);
        }
        let folded = self.fold(target);
        match self.channels.get(&folded) {
            None => true,
            Some(ch) => {
                ch.members.contains_key(&id)
                    || !(ch.secret
                        || ch.invite_only
                        || ch.key.is_some()
                        || self.is_banned(&folded, id))
            }
        }
    }

    /// The conversations a client could ask TARGETS about: its rooms and the people
    /// it shares them with, keyed as stored.
    fn known_conversations(&self, id: ClientId) -> Vec<(String, String)> {
        let mut names = Vec::new();
        if let Some(c) = self.clients.get(&id) {
            for folded in &c.channels {
                if let Some(ch) = self.channels.get(folded) {
                    names.push((folded.clone(), ch.name.clone()));
                }
            }
        }
        for other in self.neighbours(id) {
            let nick = self.nick_of(other);
            names.push((self.conversation_key(id, &nick), nick));
        }
        names
    }

    pub(crate) fn answer_history(
        &mut self,
        out: &mut Outbox,
        client: ClientId,
        label: Option<String>,
        subcommand: &str,
        target: &str,
        outcome: StoreOutcome,
    ) {
        let caps = self.caps_of(client);
        match outcome {
            StoreOutcome::Messages(mut messages) => {
                // What was said while the room was closed goes only to its members,
                // and only from the room they are in now: checked here, when the
                // answer comes, for who is in the room then.
                if target.starts_with('#') {
                    let room = self.channels.get(&*self.folded(target));
                    messages.retain(|m| match room {
                        Some(room) => room.may_replay(client, m),
                        None => !m.members_only,
                    });
                }
                // One batch for a client that takes batches, labeled itself when the
                // request was, so that no line is in two batches.
                let batch = caps.has(Cap::Batch).then(|| self.next_batch_id());
                let (batch_label, reply_label) = match batch {
                    Some(_) => (label, None),
                    None => (None, label),
                };
                self.reply = Some(Reply::new(client, reply_label));
                if let Some(batch) = &batch {
                    let start =
                        self.batch_start(batch_label.as_deref(), batch, &["chathistory", target]);
                    self.send(out, client, start);
                }
                for m in &messages {
                    let line = replay_line(m, batch.as_deref(), caps);
                    self.send(out, client, line);
                }
                if let Some(batch) = &batch {
                    let end = server_line(
                        Some(&self.config.server_name),
                        "BATCH",
                        &[&format!("-{batch}")],
                    );
                    self.send(out, client, end);
                }
            }
            _ => {
                self.reply = Some(Reply::new(client, label));
                self.fail(
                    out,
                    client,
                    "CHATHISTORY",
                    "MESSAGE_ERROR",
                    &[subcommand, target],
                    "History could not be read; try again",
                );
            }
        }
        self.finish_reply(out);
        self.release(out, client);
    }

    pub(crate) fn answer_targets(
        &mut self,
        out: &mut Outbox,
        client: ClientId,
        label: Option<String>,
        names: &[(String, String)],
        outcome: StoreOutcome,
    ) {
        if let StoreOutcome::Targets(found) = outcome {
            // As for history: one batch, labeled itself, when the client takes batches.
            let batch = self
                .caps_of(client)
                .has(Cap::Batch)
                .then(|| self.next_batch_id());
            let (batch_label, reply_label) = match batch {
                Some(_) => (label, None),
                None => (None, label),
            };
            self.reply = Some(Reply::new(client, reply_label));
            let server = self.config.server_name.clone();
            if let Some(batch) = &batch {
                let start = self.batch_start(
                    batch_label.as_deref(),
                    batch,
                    &["draft/chathistory-targets"],
                );
                self.send(out, client, start);
            }
            let me = self.identity_of(client);
            for t in found {
                // A direct conversation found by participant: named by the other party.
                let other = t
                    .target
                    .split_once(' ')
                    .and_then(|(a, b)| (a == me).then_some(b).or((b == me).then_some(a)))
                    .map(str::to_owned);
                let Some(name) = names
                    .iter()
                    .find(|(key, _)| *key == t.target)
                    .map(|(_, name)| name.clone())
                    .or(other)
                else {
                    continue;
                };
                let time = format_ms(t.latest_ms);
                let mut w = LineWriter::new();
                if let Some(batch) = &batch {
                    w.tag("batch", batch);
                }
                w.start(Some(&server), "CHATHISTORY")
                    .param("TARGETS")
                    .param(&name)
                    .param(&time);
                self.send(out, client, Bytes::from(w.finish()));
            }
            if let Some(batch) = &batch {
                let end = server_line(Some(&server), "BATCH", &[&format!("-{batch}")]);
                self.send(out, client, end);
            }
        } else {
            self.reply = Some(Reply::new(client, label));
            self.fail(
                out,
                client,
                "CHATHISTORY",
                "MESSAGE_ERROR",
                &["TARGETS"],
                "History could not be read; try again",
            );
        }
        self.finish_reply(out);
        self.release(out, client);
    }

    /// Hands an account's offline messages to every client logged in to it.
    pub(crate) fn deliver_offline(
        &mut self,
        out: &mut Outbox,
        account: &str,
        outcome: StoreOutcome,
    ) {
        let StoreOutcome::Messages(messages) = outcome else {
            return;
        };
        if messages.is_empty() {
            return;
        }
        for id in self.sessions_of(account) {
            let caps = self.caps_of(id);
            for m in &messages {
                out.deliveries.push((id, replay_line(m, None, caps)));
            }
        }
    }

    fn caps_of(&self, id: ClientId) -> CapSet {
        self.clients.get(&id).map(|c| c.caps).unwrap_or_default()
    }

    /// `BATCH +reference kind...`, with the label of the request it answers, if any.
    fn batch_start(&self, label: Option<&str>, batch: &str, kind: &[&str]) -> Bytes {
        let mut w = LineWriter::new();
        if let Some(label) = label {
            w.tag("label", label);
        }
        w.start(Some(&self.config.server_name), "BATCH")
            .param(&format!("+{batch}"));
        for k in kind {
            w.param(k);
        }
        Bytes::from(w.finish())
    }
}

/// A stored message as it was relayed, with its original time and msgid, and only
/// the tags a client with `caps` takes.
fn replay_line(m: &StoredMessage, batch: Option<&str>, caps: CapSet) -> Bytes {
    let mut w = LineWriter::new();
    if let Some(batch) = batch {
        w.tag("batch", batch);
    }
    if let Some(account) = m.account().filter(|_| caps.has(Cap::AccountTag)) {
        w.tag("account", account);
    }
    if caps.has(Cap::MessageTags) {
        w.tag("msgid", &m.msgid());
        for tag in m.client_tags().split(';').filter(|t| !t.is_empty()) {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            w.tag(key, &natter_proto::unescape_tag_value(value));
        }
    }
    if caps.has(Cap::ServerTime) {
        w.tag("time", &format_ms(m.time_ms()));
    }
    w.start(Some(m.source()), m.command()).param(m.recipient());
    if m.command() != "TAGMSG" {
        w.param(m.text());
    }
    Bytes::from(w.finish())
}

/// `msgid=...`, `timestamp=...` or `*`.
fn parse_selector(raw: &str) -> Option<Selector> {
    if raw == "*" {
        return Some(Selector::Unbounded);
    }
    if let Some(msgid) = raw.strip_prefix("msgid=") {
        return (!msgid.is_empty()).then(|| Selector::Msgid(msgid.to_owned()));
    }
    raw.strip_prefix("timestamp=")
        .and_then(parse_iso)
        .map(Selector::Time)
}

fn parse_time(raw: &str) -> Option<i64> {
    match parse_selector(raw)? {
        Selector::Time(t) => Some(t),
        _ => None,
    }
}

/// An RFC 3339 time as milliseconds since the epoch.
fn parse_iso(raw: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(raw).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// Milliseconds since the epoch in the server-time form.
pub(crate) fn format_ms(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}
