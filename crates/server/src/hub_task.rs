//! The one task that owns the hub: it turns events into hub calls and carries out
//! what the hub puts in its outbox. Being the only owner, it needs no lock.

use std::sync::Arc;

use natter_hub::{ClientId, Effect, Hub, Map, Now, Outbox};
use tokio::sync::{mpsc, Semaphore};

use crate::connection::LINES_PER_EVENT;
use crate::event::Event;
use crate::send_queue::{SendQueue, StagingBuffers};
use crate::store_worker::{StoreInbox, StoreReports, StoreRequest};

/// Events taken per wakeup: under load the task handles many events per trip
/// through the scheduler, and their lines and writes go out together (one hand-over
/// per client, one store job); when idle it handles each as it comes. 1024 rather
/// than 256 gained a few percent in fan-out (alternated runs) with no change in
/// latency below saturation.
const EVENT_BATCH: usize = 1024;

/// A batch of fewer events than this yields to the other tasks once before it is
/// handled (see [`HubTask::run`]). Under load batches are far larger and never wait.
const LONE_EVENTS: usize = 4;

/// The quit reason of a client dropped because it does not read what it is sent.
const SENDQ_EXCEEDED: &str = "SendQ exceeded";

pub(crate) struct HubTask {
    hub: Hub,
    /// Looked up once per line delivered: hashed with the hub's fast hasher.
    queues: Map<ClientId, SendQueue>,
    out: Outbox,
    /// Clients with lines staged in this batch of events, to flush at its end.
    staged: Vec<ClientId>,
    staging: StagingBuffers,
    /// Clients whose queue overflowed when flushed.
    overflowed: Vec<ClientId>,
    /// For password checks to report back.
    events: mpsc::Sender<Event>,
    /// Bounds how many Argon2 checks run at once: each takes tens of milliseconds and
    /// megabytes of memory, and OPER attempts must not starve the blocking pool.
    password_slots: Arc<Semaphore>,
    /// The store thread's inbox: the jobs of a batch of events go as one message.
    store: StoreInbox,
    /// Store jobs asked for by the events handled so far in this batch.
    store_jobs: Vec<StoreRequest>,
    /// The database, for re-reading accounts on [`Event::ReloadAccounts`].
    db_path: std::path::PathBuf,
}

impl HubTask {
    pub(crate) fn new(
        hub: Hub,
        events: mpsc::Sender<Event>,
        store: StoreInbox,
        db_path: std::path::PathBuf,
    ) -> HubTask {
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        HubTask {
            hub,
            queues: Map::default(),
            out: Outbox::new(),
            staged: Vec::new(),
            staging: StagingBuffers::default(),
            overflowed: Vec::new(),
            events,
            password_slots: Arc::new(Semaphore::new(parallel)),
            store,
            store_jobs: Vec::new(),
            db_path,
        }
    }

    /// Handles events, and the store's reports, until [`Event::Shutdown`].
    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut reports: StoreReports,
    ) {
        let mut batch = Vec::with_capacity(EVENT_BATCH);
        let mut done = Vec::new();
        let mut store_running = true;
        loop {
            tokio::select! {
                // The store's reports first: each releases replies waiting on it.
                biased;
                taken = reports.recv_many(&mut done, EVENT_BATCH), if store_running => {
                    // Only if the store thread died; its jobs' replies never come.
                    store_running = taken > 0;
                }
                taken = events.recv_many(&mut batch, EVENT_BATCH / LINES_PER_EVENT) => {
                    if taken == 0 {
                        return;
                    }
                }
            }
            // A lone event yields once first: Tokio runs a yielded task again only
            // after polling the I/O driver, so lines that came at the same moment
            // (senders pacing to the same clock, a burst split over several reads)
            // are read by their connections and join this batch, and each member
            // gets them in one write rather than one each. Alternated paced fan-outs
            // (4 x 100 messages/s into a room of 100): p50 1.03-1.27 ms against
            // 1.32-1.59, p99 lower in 9 of 13 rounds.
            // Lines count as one each, a client's burst by its lines.
            let mut weight: usize = batch.iter().map(Event::weight).sum();
            if weight + done.len() < LONE_EVENTS {
                tokio::task::yield_now().await;
            }
            // What else is waiting joins the batch, up to its size.
            while done.len() < EVENT_BATCH {
                let Ok(report) = reports.try_recv() else {
                    break;
                };
                done.push(report);
            }
            // Up to EVENT_BATCH lines.
            while weight < EVENT_BATCH {
                let Ok(event) = events.try_recv() else { break };
                weight += event.weight();
                batch.push(event);
            }
            let now = Now::system();
            for event in done.drain(..).chain(batch.drain(..)) {
                if !self.handle(event, now) {
                    self.send_store_jobs().await;
                    return;
                }
            }
            self.end_batch();
            self.flush_queues(now);
            // One message and one wake for the store thread per batch of events, so
            // that it commits the writes of many messages in one transaction. Waits
            // while the store is too far behind (`StoreInbox::send`).
            self.send_store_jobs().await;
        }
    }

    async fn send_store_jobs(&mut self) {
        if self.store_jobs.is_empty() {
            return;
        }
        // The next batch likely asks as much: room for it at once, not by doublings.
        let room = self.store_jobs.len();
        let jobs = std::mem::replace(&mut self.store_jobs, Vec::with_capacity(room));
        if !self.store.send(jobs).await {
            tracing::error!("the store thread has stopped; store jobs are lost");
        }
    }

    /// Handles one event; `false` once the server has shut down.
    fn handle(&mut self, event: Event, now: Now) -> bool {
        match event {
            Event::Connected { id, info, queue } => {
                self.queues.insert(id, queue);
                self.hub.connect(id, info, now, &mut self.out);
            }
            Event::Line(id, message) => self.hub.line(id, message, now, &mut self.out),
            Event::Lines(id, lines) => {
                for line in lines {
                    match line {
                        Ok(message) => self.hub.line(id, message, now, &mut self.out),
                        Err(error) => self.hub.bad_line(id, error, now, &mut self.out),
                    }
                    // Each line's deliveries are staged while they are in the cache.
                    self.carry_out();
                }
            }
            Event::BadLine(id, error) => self.hub.bad_line(id, error, now, &mut self.out),
            Event::Disconnected(id, reason) => {
                self.hub.disconnect(id, &reason, now, &mut self.out);
                self.carry_out();
                // Dropping the queue ends the writer once it has sent what is queued.
                self.queues.remove(&id);
                return true;
            }
            Event::PasswordChecked { ticket, ok } => {
                self.hub.password_checked(ticket, ok, now, &mut self.out);
            }
            Event::StoreDone { ticket, outcome } => {
                self.hub.store_done(ticket, outcome, now, &mut self.out);
            }
            Event::StoresDone { tickets, outcome } => {
                self.hub.stores_done(&tickets, &outcome, now, &mut self.out);
            }
            Event::PasswordHashed { ticket, hash } => {
                self.hub.password_hashed(ticket, hash, now, &mut self.out);
            }
            Event::ReloadAccounts => self.reload_accounts(),
            Event::Tick => self.hub.tick(now, &mut self.out),
            Event::Shutdown => {
                self.hub.shutdown(now, &mut self.out);
                self.end_batch();
                self.queues.clear();
                return false;
            }
        }
        self.carry_out();
        true
    }

    /// Reads the accounts table again through a second connection: the table is
    /// small and this happens only when an operator asks.
    fn reload_accounts(&mut self) {
        let loaded = natter_store::SqliteStore::open(&self.db_path)
            .and_then(|mut store| natter_store::Store::accounts(&mut store));
        match loaded {
            Ok(accounts) => {
                tracing::info!("reloaded {} accounts", accounts.len());
                self.hub.replace_accounts(accounts);
            }
            Err(e) => tracing::error!("could not reload accounts: {e}"),
        }
    }

    /// Stages the outbox's lines in their clients' queues (handed over at the end of
    /// the batch of events, see [`HubTask::flush_queues`]), then carries out its
    /// effects.
    fn carry_out(&mut self) {
        for (id, line) in self.out.deliveries.drain(..) {
            let Some(queue) = self.queues.get_mut(&id) else {
                continue;
            };
            if queue.stage(line, &mut self.staging) {
                self.staged.push(id);
            }
        }
        for effect in self.out.effects.drain(..) {
            match effect {
                Effect::Close { client } => {
                    // Dropping the queue hands over its staged lines first.
                    self.queues.remove(&client);
                }
                Effect::VerifyPassword {
                    client: _,
                    ticket,
                    password,
                    hash,
                } => verify_password(&self.events, &self.password_slots, ticket, password, hash),
                Effect::HashPassword { ticket, password } => {
                    hash_password(&self.events, &self.password_slots, ticket, password)
                }
                Effect::Store { ticket, job } => {
                    self.store_jobs.push(StoreRequest { ticket, job });
                }
            }
        }
    }

    /// Asks the store for the writes of the events handled so far, as one job, and
    /// carries out what that and the last event put in the outbox.
    fn end_batch(&mut self) {
        self.hub.end_batch(&mut self.out);
        self.carry_out();
    }

    /// Hands every staged line to its queue. A client whose queue overflows is dropped
    /// at once, and the hub is told, which may deliver more lines (its QUIT to the
    /// rooms it was in): hence the loop.
    fn flush_queues(&mut self, now: Now) {
        while !self.staged.is_empty() {
            let mut staged = std::mem::take(&mut self.staged);
            for id in staged.drain(..) {
                let Some(queue) = self.queues.get_mut(&id) else {
                    continue;
                };
                if queue.flush(&mut self.staging).is_err() {
                    queue.kill();
                    self.queues.remove(&id);
                    self.overflowed.push(id);
                }
            }
            self.staged = staged;
            for id in std::mem::take(&mut self.overflowed) {
                tracing::info!(client = id.0, "dropping client: {SENDQ_EXCEEDED}");
                self.hub.disconnect(id, SENDQ_EXCEEDED, now, &mut self.out);
                self.end_batch();
            }
        }
    }
}

/// Checks a password on the blocking pool and reports back as an event.
fn verify_password(
    events: &mpsc::Sender<Event>,
    slots: &Arc<Semaphore>,
    ticket: u64,
    password: String,
    hash: String,
) {
    let events = events.clone();
    let slots = Arc::clone(slots);
    tokio::spawn(async move {
        let ok = match slots.acquire_owned().await {
            Ok(slot) => tokio::task::spawn_blocking(move || {
                let _slot = slot;
                crate::password::verify_password(&password, &hash)
            })
            .await
            .unwrap_or(false),
            Err(_) => false,
        };
        let _ = events.send(Event::PasswordChecked { ticket, ok }).await;
    });
}

/// Hashes a new account's password on the blocking pool and reports back.
fn hash_password(
    events: &mpsc::Sender<Event>,
    slots: &Arc<Semaphore>,
    ticket: u64,
    password: String,
) {
    let events = events.clone();
    let slots = Arc::clone(slots);
    tokio::spawn(async move {
        let hash = match slots.acquire_owned().await {
            Ok(slot) => tokio::task::spawn_blocking(move || {
                let _slot = slot;
                crate::password::hash_password(&password).ok()
            })
            .await
            .ok()
            .flatten(),
            Err(_) => None,
        };
        let _ = events.send(Event::PasswordHashed { ticket, hash }).await;
    });
}
