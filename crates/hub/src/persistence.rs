//! The hub's side of the store: what it asks for, what it waits on, and the replies
//! it holds back until what they confirm is kept.
//!
//! The durability contract: a client is told its message was taken (the echo, or
//! the ACK of a labeled command) only after the store has committed it. Delivery to
//! everyone else does not wait. Replies to one client keep the order of its
//! commands: once one reply waits on the store, the replies after it wait behind it.

use bytes::Bytes;
use natter_store::{HistoryQuery, StoredMessage, TargetActivity, Write};

use crate::client::ClientId;
use crate::hub::Hub;
use crate::outbox::{Effect, Outbox};
use crate::time::Now;

/// Work for the server's store thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreJob {
    /// Commit these writes (the server may group several jobs in one transaction).
    Write(Vec<Write>),
    /// Read one conversation's history.
    History { target: String, query: HistoryQuery },
    /// Which of these conversations saw messages between two times.
    Targets {
        targets: Vec<String>,
        /// Also the direct conversations of this identity (folded account or nick).
        participant: Option<String>,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    },
    /// Take (and remove) an account's offline messages.
    TakeOffline { account: String },
    /// Read how far an account has read a conversation.
    ReadMarker { account: String, target: String },
}

impl StoreJob {
    /// Runs the job on `store`: what the server's store thread does with each job.
    /// Writes are run here one job at a time; the store thread groups them instead.
    pub fn run(self, store: &mut dyn natter_store::Store) -> StoreOutcome {
        let result = match self {
            StoreJob::Write(writes) => store.write(&writes).map(|()| StoreOutcome::Written),
            StoreJob::History { target, query } => {
                store.history(&target, &query).map(StoreOutcome::Messages)
            }
            StoreJob::Targets {
                targets,
                participant,
                from_ms,
                to_ms,
                limit,
            } => store
                .active_targets(&targets, participant.as_deref(), from_ms, to_ms, limit)
                .map(StoreOutcome::Targets),
            StoreJob::TakeOffline { account } => {
                store.take_offline(&account).map(StoreOutcome::Messages)
            }
            StoreJob::ReadMarker { account, target } => store
                .read_marker(&account, &target)
                .map(StoreOutcome::Marker),
        };
        result.unwrap_or_else(|e| StoreOutcome::Failed(e.to_string()))
    }
}

/// What the store thread answers, through [`Hub::store_done`].
#[derive(Clone, Debug)]
pub enum StoreOutcome {
    /// The writes are committed.
    Written,
    Messages(Vec<StoredMessage>),
    Targets(Vec<TargetActivity>),
    Marker(Option<i64>),
    /// The job failed; the text says why, for the log and the client.
    Failed(String),
}

/// What the hub does when a store job finishes.
pub(crate) enum PendingStore {
    /// The replies of these clients wait on this commit (a client may be named more
    /// than once).
    Commit { clients: Vec<ClientId> },
    /// A CHATHISTORY query to answer.
    History {
        client: ClientId,
        label: Option<String>,
        /// LATEST, BEFORE, ...: for an error.
        subcommand: String,
        /// The target as the client named it, for the batch.
        target: String,
    },
    /// A CHATHISTORY TARGETS query to answer.
    Targets {
        client: ClientId,
        label: Option<String>,
        /// Conversation key → the name the client knows it by.
        names: Vec<(String, String)>,
    },
    /// Offline messages to hand to an account's clients.
    Offline { account: String },
    /// A read marker to tell a client about.
    Marker {
        client: ClientId,
        label: Option<String>,
        target: String,
        key: (String, String),
        /// What to do once the stored marker is known.
        then: MarkerThen,
    },
    /// A new account is kept: the registering client may log in.
    Register {
        client: ClientId,
        label: Option<String>,
        account: String,
    },
}

/// What a marker read from the store is for.
pub(crate) enum MarkerThen {
    /// Tell the client (MARKREAD with no timestamp).
    Tell,
    /// Apply a MARKREAD that sets this time.
    Set(i64),
    /// Tell the client, then send the NAMES of the room just joined (folded name):
    /// the marker must come before RPL_ENDOFNAMES.
    TellThenNames(String),
}

/// The writes gathered from the commands of one batch of events: one store job, one
/// ticket and one answer for all of them, instead of one each. A batch ends with
/// [`Hub::end_batch`], and before any other store job is asked for, so that jobs
/// reach the store in the order of their tickets (a history query sees the messages
/// sent before it).
#[derive(Debug)]
pub(crate) struct WriteBatch {
    ticket: u64,
    writes: Vec<Write>,
    /// Whose replies wait on the batch, in order, without repeats in a row.
    clients: Vec<ClientId>,
}

/// Replies waiting for a store job to finish.
#[derive(Debug)]
pub(crate) struct Parked {
    pub ticket: Option<u64>,
    pub lines: Vec<Bytes>,
    /// The commands these replies answer. More than one only for commands with no
    /// reply lines (a message from a client without echo-message or a label) waiting
    /// behind the same commit: they are kept as one entry, since a client pipelining
    /// messages would otherwise park one per message, thousands behind a slow commit.
    /// A failed commit still answers each of them.
    pub commands: u32,
}

impl Hub {
    /// Asks the server for a store job; `pending` says what to do with its outcome.
    pub(crate) fn ask_store(
        &mut self,
        out: &mut Outbox,
        job: StoreJob,
        pending: PendingStore,
    ) -> u64 {
        self.end_batch(out);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        out.effects.push(Effect::Store { ticket, job });
        let kept = self.pending_store.insert(ticket, pending);
        debug_assert!(kept.is_ok(), "store tickets only grow");
        ticket
    }

    /// Adds a write of the command being handled to the batch being gathered; the
    /// command's replies wait on that batch. A write made outside a command (no reply
    /// under way) is dropped: nothing would wait on it.
    pub(crate) fn keep_write(&mut self, write: Write) {
        let Some(reply) = &mut self.reply else {
            return;
        };
        let batch = match &mut self.write_batch {
            Some(batch) => batch,
            None => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                self.write_batch.insert(WriteBatch {
                    ticket,
                    writes: Vec::with_capacity(self.last_batch_writes),
                    clients: Vec::new(),
                })
            }
        };
        // A command's writes land in one batch, committed or failed together: no
        // command asks the store for anything else (which ends the batch) between two
        // of its writes. Were one to, its replies would wait on the later batch only.
        debug_assert!(reply.write_ticket.is_none_or(|t| t == batch.ticket));
        batch.writes.push(write);
        if reply.write_ticket != Some(batch.ticket) && batch.clients.last() != Some(&reply.client) {
            batch.clients.push(reply.client);
        }
        reply.write_ticket = Some(batch.ticket);
    }

    /// Asks the store to commit the writes gathered since the last call, if any. The
    /// server calls it after every batch of events it hands the hub: until then, what
    /// the commands of the batch wrote is neither stored nor confirmed.
    pub fn end_batch(&mut self, out: &mut Outbox) {
        let Some(batch) = self.write_batch.take() else {
            return;
        };
        self.last_batch_writes = batch.writes.len();
        out.effects.push(Effect::Store {
            ticket: batch.ticket,
            job: StoreJob::Write(batch.writes),
        });
        let pending = PendingStore::Commit {
            clients: batch.clients,
        };
        let kept = self.pending_store.insert(batch.ticket, pending);
        debug_assert!(kept.is_ok(), "store tickets only grow");
    }

    /// Sends replies to a client now, or parks them behind `ticket` or behind
    /// replies already parked.
    pub(crate) fn deliver_reply(
        &mut self,
        out: &mut Outbox,
        client: ClientId,
        lines: Vec<Bytes>,
        ticket: Option<u64>,
    ) {
        let Some(c) = self.clients.get_mut(&client) else {
            // Gone (QUIT, KILL): what it was owed is sent before the close.
            out.deliveries
                .extend(lines.into_iter().map(|l| (client, l)));
            return;
        };
        if ticket.is_none() && c.parked.is_empty() {
            out.deliveries
                .extend(lines.into_iter().map(|l| (client, l)));
            return;
        }
        if lines.is_empty() {
            if let Some(last) = c.parked.back_mut() {
                if last.ticket.is_some() && last.ticket == ticket && last.lines.is_empty() {
                    last.commands = last.commands.saturating_add(1);
                    return;
                }
            }
        }
        if !lines.is_empty() || ticket.is_some() {
            c.parked.push_back(Parked {
                ticket,
                lines,
                commands: 1,
            });
        }
    }

    /// The store finished job `ticket`.
    pub fn store_done(&mut self, ticket: u64, outcome: StoreOutcome, now: Now, out: &mut Outbox) {
        self.now = now;
        let Some(pending) = self.pending_store.remove(ticket) else {
            return;
        };
        match pending {
            PendingStore::Commit { clients } => {
                for client in clients {
                    self.commit_done(out, client, ticket, &outcome);
                }
            }
            PendingStore::History {
                client,
                label,
                subcommand,
                target,
            } => self.answer_history(out, client, label, &subcommand, &target, outcome),
            PendingStore::Targets {
                client,
                label,
                names,
            } => self.answer_targets(out, client, label, &names, outcome),
            PendingStore::Offline { account } => self.deliver_offline(out, &account, outcome),
            PendingStore::Marker {
                client,
                label,
                target,
                key,
                then,
            } => self.answer_marker(out, client, label, &target, key, then, outcome),
            PendingStore::Register {
                client,
                label,
                account,
            } => self.finish_register(out, client, label, &account, outcome),
        }
    }

    /// The store finished every job in `tickets` with the same outcome (a group of
    /// writes committed in one transaction).
    pub fn stores_done(
        &mut self,
        tickets: &[u64],
        outcome: &StoreOutcome,
        now: Now,
        out: &mut Outbox,
    ) {
        for &ticket in tickets {
            self.store_done(ticket, outcome.clone(), now, out);
        }
    }

    /// A commit finished: the replies waiting on it, and those behind them, go out.
    fn commit_done(
        &mut self,
        out: &mut Outbox,
        client: ClientId,
        ticket: u64,
        outcome: &StoreOutcome,
    ) {
        let failed = matches!(outcome, StoreOutcome::Failed(_));
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        // Parked replies are in ticket order, and commits finish in that order: those
        // waiting on this commit (one per command of the batch) are at the front, or
        // near it.
        let waiting = c
            .parked
            .iter_mut()
            .take_while(|p| p.ticket.is_none_or(|t| t <= ticket))
            .filter(|p| p.ticket == Some(ticket));
        for parked in waiting {
            parked.ticket = None;
            if failed {
                // What the replies would confirm was not kept: say so instead, with
                // the label they carried, so that a labeled command is still answered.
                let label = parked.lines.first().and_then(|l| label_of(l));
                let mut w = natter_proto::LineWriter::new();
                if let Some(label) = &label {
                    w.tag("label", label);
                }
                w.start(Some(&self.config.server_name), "FAIL")
                    .param("*")
                    .param("STORE_FAILED")
                    .param(
                        "Your message reached those online but could not be stored; send it again",
                    );
                let fail = Bytes::from(w.finish());
                parked.lines = vec![fail; parked.commands as usize];
            }
        }
        while c.parked.front().is_some_and(|p| p.ticket.is_none()) {
            if let Some(parked) = c.parked.pop_front() {
                out.deliveries
                    .extend(parked.lines.into_iter().map(|l| (client, l)));
            }
        }
    }
}

/// The `label` tag of a serialized line, if it has one.
fn label_of(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let msg = natter_proto::Message::parse(line).ok()?;
    msg.tag("label").map(str::to_owned)
}
