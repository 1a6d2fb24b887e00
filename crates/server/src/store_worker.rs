//! The thread that owns the store. It takes the hub's store jobs in order, commits
//! all the writes waiting at once in one transaction (group commit: one fsync for
//! many messages), and reports each job's outcome back to the hub task.
//!
//! The hub task hands over at most [`MAX_BACKLOG`] writes not yet committed, and waits
//! for commits beyond that; the store thread never waits on the hub task (its reports
//! go through a channel of their own, which is never full), so neither can hold the
//! other up for good.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use natter_hub::{StoreJob, StoreOutcome};
use natter_store::{Store, Write};
use tokio::sync::{mpsc, Semaphore};

use crate::event::Event;

/// Writes gathered into one transaction (the last batch taken may pass it): enough to
/// amortize the fsync, few enough that the first message of a group is not kept
/// waiting long.
const MAX_GROUP: usize = 4096;

/// Writes handed to the store thread and not yet committed, at most: past this, the
/// hub task waits for commits before it takes more events, and so, once its event
/// queue is full, do the connections' reads. Delivery does not wait for commits, so
/// without a bound a store slower than the traffic (a slow disk, a flood) would hold
/// ever more messages in memory; this bounds it to some tens of megabytes while
/// letting a burst be delivered at once.
pub(crate) const MAX_BACKLOG: u32 = 16 * MAX_GROUP as u32;

/// A store job with the ticket the hub will know its outcome by.
pub(crate) struct StoreRequest {
    pub ticket: u64,
    pub job: StoreJob,
}

/// The jobs of one batch of events, and the backlog permits their writes took.
struct StoreBatch {
    requests: Vec<StoreRequest>,
    permits: u32,
}

/// The hub task's way to the store thread.
pub(crate) struct StoreInbox {
    tx: std_mpsc::Sender<StoreBatch>,
    /// A permit per write handed over and not yet committed.
    backlog: Arc<Semaphore>,
}

/// The store thread's reports ([`Event::StoreDone`], [`Event::StoresDone`]).
pub(crate) type StoreReports = mpsc::UnboundedReceiver<Event>;

impl StoreInbox {
    /// Hands `requests` to the store thread, to run in order, once the backlog has
    /// room for their writes. `false` if the store thread is gone.
    pub(crate) async fn send(&self, requests: Vec<StoreRequest>) -> bool {
        let writes: usize = requests.iter().filter_map(|r| writes_in(&r.job)).sum();
        let permits = u32::try_from(writes).unwrap_or(u32::MAX).min(MAX_BACKLOG);
        // The permits come back once the store thread has committed these writes.
        // Closed only when that thread has ended: then nothing is waited for, and the
        // send below fails.
        if let Ok(taken) = self.backlog.acquire_many(permits).await {
            taken.forget();
        }
        let sent = self.tx.send(StoreBatch { requests, permits }).is_ok();
        if !sent {
            self.backlog.add_permits(permits as usize);
        }
        sent
    }
}

/// Starts the store thread; jobs sent through the returned inbox run in order (the
/// hub task sends the jobs of one batch of events together), and each one's outcome
/// comes back through the returned reports. The thread ends when the inbox is dropped.
pub(crate) fn spawn(
    mut store: Box<dyn Store>,
    retention: Option<Duration>,
) -> std::io::Result<(StoreInbox, StoreReports)> {
    let (tx, rx) = std_mpsc::channel::<StoreBatch>();
    let (reports, reports_rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Semaphore::new(MAX_BACKLOG as usize));
    let returned = Arc::clone(&backlog);
    std::thread::Builder::new()
        .name("natter-store".into())
        .spawn(move || {
            // However the thread ends, even by a panic, the hub task stops waiting on it.
            let _closes = CloseOnExit(Arc::clone(&returned));
            run_as_batch_work();
            run(store.as_mut(), &rx, &reports, &returned, retention)
        })?;
    Ok((StoreInbox { tx, backlog }, reports_rx))
}

/// Tells the scheduler the calling thread is batch work (Linux's `SCHED_BATCH`): it
/// keeps its fair share of the CPU, but its waking no longer preempts the threads
/// that deliver. Where a core is free for it, nothing changes. Where the store thread
/// shares a busy core, it used to run at each batch of events the hub task handed
/// over, committing a few hundred messages at a time; it now runs at the scheduler's
/// next turn, and commits what came meanwhile at once: under a reliable-UDP fan-out,
/// 30 commits instead of 140, and half the store's CPU (bench/notes.md). Commits still
/// come before acknowledgements, and the backlog bound still holds the hub task back
/// when the store is too far behind.
fn run_as_batch_work() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: a system call about the calling thread (pid 0), given a valid
        // parameter it only reads.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            tracing::debug!(
                "the store thread keeps the normal scheduling policy: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// How often history older than the retention period is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

fn run(
    store: &mut dyn Store,
    rx: &std_mpsc::Receiver<StoreBatch>,
    events: &mpsc::UnboundedSender<Event>,
    backlog: &Semaphore,
    retention: Option<Duration>,
) {
    let mut next_prune = Instant::now();
    // The group's batches of writes as the hub sent them: committed as they are,
    // without moving every write into one list first.
    let mut batches: Vec<Vec<Write>> = Vec::new();
    let mut write_tickets = Vec::new();
    let mut requests: Vec<StoreRequest> = Vec::new();
    loop {
        if let Some(keep) = retention {
            if Instant::now() >= next_prune {
                prune(store, keep);
                next_prune = Instant::now() + PRUNE_EVERY;
            }
        }
        let (mut gathered, mut permits) = match rx.recv_timeout(PRUNE_EVERY) {
            Ok(mut first) => {
                let size = group_size(&first.requests);
                requests.append(&mut first.requests);
                (size, first.permits)
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
                    gathered += group_size(&more.requests);
                    permits += more.permits;
                    requests.append(&mut more.requests);
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
                    batches.push(batch);
                    write_tickets.push(request.ticket);
                }
                job => {
                    commit(store, events, &mut batches, &mut write_tickets);
                    report(events, request.ticket, read(store, job));
                }
            }
        }
        commit(store, events, &mut batches, &mut write_tickets);
        // Committed or failed, the group's writes no longer wait.
        backlog.add_permits(permits as usize);
    }
}

/// Closes the backlog when dropped: the store thread holds one for as long as it runs.
struct CloseOnExit(Arc<Semaphore>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// How many writes a job asks for; `None` for a job that is not a write.
fn writes_in(job: &StoreJob) -> Option<usize> {
    match job {
        StoreJob::Write(writes) => Some(writes.len()),
        _ => None,
    }
}

/// What `requests` adds to a group: its writes (the hub asks for a batch of events'
/// writes as one job), and one for each other job.
fn group_size(requests: &[StoreRequest]) -> usize {
    requests
        .iter()
        .map(|r| writes_in(&r.job).unwrap_or(1))
        .sum()
}

/// Commits the writes gathered, if any, in one transaction, and reports the outcome
/// of each of their jobs.
fn commit(
    store: &mut dyn Store,
    events: &mpsc::UnboundedSender<Event>,
    batches: &mut Vec<Vec<Write>>,
    write_tickets: &mut Vec<u64>,
) {
    if write_tickets.is_empty() {
        return;
    }
    let slices: Vec<&[Write]> = batches.iter().map(Vec::as_slice).collect();
    let outcome = match store.write_all(&slices) {
        Ok(()) => StoreOutcome::Written,
        Err(e) => {
            let writes: usize = slices.iter().map(|batch| batch.len()).sum();
            tracing::error!("the store could not commit {writes} writes: {e}");
            StoreOutcome::Failed(e.to_string())
        }
    };
    batches.clear();
    // The hub task is gone only at shutdown; nothing is left to tell then.
    let _ = events.send(Event::StoresDone {
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

fn report(events: &mpsc::UnboundedSender<Event>, ticket: u64, outcome: StoreOutcome) {
    // The hub task is gone only at shutdown; nothing is left to tell then.
    let _ = events.send(Event::StoreDone { ticket, outcome });
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_store::{Account, HistoryQuery, Seq, StoreError, StoredMessage, TargetActivity};

    const WAIT: Duration = Duration::from_secs(10);

    /// A store whose commits each wait for a word from the test.
    struct GatedStore {
        gate: std_mpsc::Receiver<()>,
    }

    impl Store for GatedStore {
        fn write_all(&mut self, _: &[&[Write]]) -> Result<(), StoreError> {
            let _ = self.gate.recv_timeout(WAIT);
            Ok(())
        }
        fn history(&mut self, _: &str, _: &HistoryQuery) -> Result<Vec<StoredMessage>, StoreError> {
            Ok(Vec::new())
        }
        fn active_targets(
            &mut self,
            _: &[String],
            _: Option<&str>,
            _: i64,
            _: i64,
            _: usize,
        ) -> Result<Vec<TargetActivity>, StoreError> {
            Ok(Vec::new())
        }
        fn take_offline(&mut self, _: &str) -> Result<Vec<StoredMessage>, StoreError> {
            Ok(Vec::new())
        }
        fn create_account(&mut self, _: &Account) -> Result<bool, StoreError> {
            Ok(true)
        }
        fn account(&mut self, _: &str) -> Result<Option<Account>, StoreError> {
            Ok(None)
        }
        fn set_password(&mut self, _: &str, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn delete_account(&mut self, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn accounts(&mut self) -> Result<Vec<Account>, StoreError> {
            Ok(Vec::new())
        }
        fn read_marker(&mut self, _: &str, _: &str) -> Result<Option<i64>, StoreError> {
            Ok(None)
        }
        fn last_seq(&mut self) -> Result<Option<Seq>, StoreError> {
            Ok(None)
        }
        fn prune(&mut self, _: i64) -> Result<usize, StoreError> {
            Ok(0)
        }
    }

    fn writes(ticket: u64, n: usize) -> Vec<StoreRequest> {
        let markers = (0..n).map(|i| Write::ReadMarker {
            account: "alice".into(),
            target: format!("#room{i}"),
            time_ms: 1,
        });
        vec![StoreRequest {
            ticket,
            job: StoreJob::Write(markers.collect()),
        }]
    }

    /// The hub task waits while the store is a full backlog behind, and goes on as
    /// soon as a commit makes room; every permit taken comes back, once.
    #[tokio::test]
    async fn writes_wait_for_room_in_the_backlog_and_commits_make_it() {
        let (gate, gate_rx) = std_mpsc::channel();
        let (inbox, mut reports) =
            spawn(Box::new(GatedStore { gate: gate_rx }), None).expect("the store thread starts");
        let inbox = Arc::new(inbox);
        assert!(inbox.send(writes(1, MAX_BACKLOG as usize)).await);
        assert_eq!(inbox.backlog.available_permits(), 0);

        let waiting = {
            let inbox = Arc::clone(&inbox);
            tokio::spawn(async move { inbox.send(writes(2, 10)).await })
        };
        gate.send(()).expect("the store waits");
        let first = tokio::time::timeout(WAIT, reports.recv())
            .await
            .expect("a report");
        assert!(matches!(first, Some(Event::StoresDone { ref tickets, .. }) if tickets == &[1]));
        let sent = tokio::time::timeout(WAIT, waiting)
            .await
            .expect("room was made");
        assert!(sent.expect("the send task ends"));

        gate.send(()).expect("the store waits");
        let second = tokio::time::timeout(WAIT, reports.recv())
            .await
            .expect("a report");
        assert!(matches!(second, Some(Event::StoresDone { ref tickets, .. }) if tickets == &[2]));
        let all = tokio::time::timeout(WAIT, inbox.backlog.acquire_many(MAX_BACKLOG))
            .await
            .expect("every permit comes back")
            .expect("the backlog is never closed");
        assert_eq!(
            inbox.backlog.available_permits(),
            0,
            "no permit came back twice"
        );
        drop(all);
    }

    /// The store thread runs as batch work, so that it does not preempt delivery on a
    /// shared core.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_store_thread_runs_as_batch_work() {
        let (gate, gate_rx) = std_mpsc::channel();
        let (inbox, mut reports) =
            spawn(Box::new(GatedStore { gate: gate_rx }), None).expect("the store thread starts");
        // One commit and its report: the thread has long set its policy by then.
        assert!(inbox.send(writes(1, 1)).await);
        gate.send(()).expect("the store waits");
        tokio::time::timeout(WAIT, reports.recv())
            .await
            .expect("a report")
            .expect("the store thread runs");
        let policies: Vec<i32> = std::fs::read_dir("/proc/self/task")
            .expect("the process's threads are listed")
            .filter_map(|task| {
                let task = task.ok()?.path();
                let comm = std::fs::read_to_string(task.join("comm")).ok()?;
                let tid: libc::pid_t = task.file_name()?.to_str()?.parse().ok()?;
                // SAFETY: a query about one thread of this process.
                (comm.trim() == "natter-store").then(|| unsafe { libc::sched_getscheduler(tid) })
            })
            .collect();
        assert!(
            policies.contains(&libc::SCHED_BATCH),
            "store threads' policies: {policies:?}"
        );
    }
}
