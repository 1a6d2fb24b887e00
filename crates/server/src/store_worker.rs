//! The thread that owns the store. It takes the hub's store jobs in order, commits
//! all the writes waiting at once in one transaction (group commit: one fsync for
//! many messages), and reports each job's outcome back to the hub task.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use natter_hub::{StoreJob, StoreOutcome};
use natter_store::{Store, Write};
use tokio::sync::mpsc;

use crate::event::Event;

/// Writes gathered into one transaction (the last batch taken may pass it): enough to
/// amortize the fsync, few enough that the first message of a group is not kept
/// waiting long.
const MAX_GROUP: usize = 4096;

/// A store job with the ticket the hub will know its outcome by.
pub(crate) struct StoreRequest {
    pub ticket: u64,
    pub job: StoreJob,
}

/// Starts the store thread; jobs sent on the returned channel run in order (the hub
/// task sends the jobs of one batch of events together). The thread ends when the
/// channel closes.
pub(crate) fn spawn(
    mut store: Box<dyn Store>,
    events: mpsc::Sender<Event>,
    retention: Option<Duration>,
) -> std::io::Result<std_mpsc::Sender<Vec<StoreRequest>>> {
    let (tx, rx) = std_mpsc::channel::<Vec<StoreRequest>>();
    std::thread::Builder::new()
        .name("natter-store".into())
        .spawn(move || run(store.as_mut(), &rx, &events, retention))?;
    Ok(tx)
}

/// How often history older than the retention period is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

fn run(
    store: &mut dyn Store,
    rx: &std_mpsc::Receiver<Vec<StoreRequest>>,
    events: &mpsc::Sender<Event>,
    retention: Option<Duration>,
) {
    let mut next_prune = Instant::now();
    // Kept from group to group: a group allocates nothing but what it reports.
    let mut writes: Vec<Write> = Vec::new();
    let mut write_tickets = Vec::new();
    let mut requests: Vec<StoreRequest> = Vec::new();
    loop {
        if let Some(keep) = retention {
            if Instant::now() >= next_prune {
                prune(store, keep);
                next_prune = Instant::now() + PRUNE_EVERY;
            }
        }
        let mut gathered = match rx.recv_timeout(PRUNE_EVERY) {
            Ok(mut first) => {
                let size = group_size(&first);
                requests.append(&mut first);
                size
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // Take everything already waiting: under load that is many messages. Gathered
        // in a buffer kept from group to group, which stops growing once it has held
        // the largest group.
        while gathered < MAX_GROUP {
            match rx.try_recv() {
                Ok(mut more) => {
                    gathered += group_size(&more);
                    requests.append(&mut more);
                }
                Err(_) => break,
            }
        }
        // In the order asked: the writes before a read are committed before it runs,
        // so it sees them, and those after it are not, so it does not. (A read of
        // offline messages run after later writes would take messages queued for an
        // account that has logged out since, and deliver them to nobody.)
        for request in requests.drain(..) {
            match request.job {
                StoreJob::Write(batch) => {
                    writes.extend(batch);
                    write_tickets.push(request.ticket);
                }
                job => {
                    commit(store, events, &mut writes, &mut write_tickets);
                    report(events, request.ticket, read(store, job));
                }
            }
        }
        commit(store, events, &mut writes, &mut write_tickets);
    }
}

/// What `requests` adds to a group: its writes (the hub asks for a batch of events'
/// writes as one job), and one for each other job.
fn group_size(requests: &[StoreRequest]) -> usize {
    requests
        .iter()
        .map(|r| match &r.job {
            StoreJob::Write(writes) => writes.len(),
            _ => 1,
        })
        .sum()
}

/// Commits the writes gathered, if any, in one transaction, and reports the outcome
/// of each of their jobs.
fn commit(
    store: &mut dyn Store,
    events: &mpsc::Sender<Event>,
    writes: &mut Vec<Write>,
    write_tickets: &mut Vec<u64>,
) {
    if write_tickets.is_empty() {
        return;
    }
    let outcome = match store.write(writes) {
        Ok(()) => StoreOutcome::Written,
        Err(e) => {
            tracing::error!("the store could not commit {} writes: {e}", writes.len());
            StoreOutcome::Failed(e.to_string())
        }
    };
    writes.clear();
    // The hub task is gone only at shutdown; nothing is left to tell then.
    let _ = events.blocking_send(Event::StoresDone {
        tickets: std::mem::take(write_tickets),
        outcome,
    });
}

/// Deletes history older than `keep`.
fn prune(store: &mut dyn Store, keep: Duration) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let cutoff = i64::try_from(now_ms.saturating_sub(keep.as_millis())).unwrap_or(0);
    match store.prune(cutoff) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            "retention: deleted {n} messages older than {} days",
            keep.as_secs() / 86_400
        ),
        Err(e) => tracing::error!("retention: could not delete old history: {e}"),
    }
}

fn read(store: &mut dyn Store, job: StoreJob) -> StoreOutcome {
    let outcome = job.run(store);
    if let StoreOutcome::Failed(e) = &outcome {
        tracing::error!("a store read failed: {e}");
    }
    outcome
}

fn report(events: &mpsc::Sender<Event>, ticket: u64, outcome: StoreOutcome) {
    // The hub task is gone only at shutdown; nothing is left to tell then.
    let _ = events.blocking_send(Event::StoreDone { ticket, outcome });
}
