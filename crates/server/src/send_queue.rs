//! One connection's outgoing queue: bounded in bytes, so that a client that stops
//! reading costs at most its budget before it is dropped with `SendQ exceeded`,
//! instead of growing the server's memory without end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use natter_hub::ClientId;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, Notify};

/// Raised on a connection to end it: by the hub task to drop a client at once
/// (SendQ exceeded), and by the writer when it is done, which stops the reader.
/// Lives in the queue's shared state: it costs a connection no allocation of its own.
#[derive(Clone, Debug)]
pub(crate) struct StopSignal(Arc<Shared>);

/// Whether a [`StopSignal`] was raised, as read by [`StopSignal::borrow`].
pub(crate) struct Raised(bool);

impl std::ops::Deref for Raised {
    type Target = bool;
    fn deref(&self) -> &bool {
        &self.0
    }
}

impl StopSignal {
    /// Raises the signal and wakes everyone waiting on it. Raising twice is harmless.
    pub(crate) fn raise(&self) {
        self.0.raise_stop();
    }

    /// Whether the signal has been raised.
    pub(crate) fn borrow(&self) -> Raised {
        Raised(self.0.stopped.load(Ordering::Acquire))
    }

    /// Waits until the signal is raised (at once if it already is).
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.0.stop_wake.notified();
            tokio::pin!(notified);
            // Registered before the flag is read: a raise in between still wakes it.
            notified.as_mut().enable();
            if self.0.stopped.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// The queue was over its byte budget: the line was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

/// What both ends of a queue share: the lines under one uncontended lock (the hub
/// task pushes, the writer takes everything queued at once), and the writer's wake.
/// An idle queue holds no allocation but this.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer when the queue goes from empty to not, and at its end.
    ready: Notify,
    /// The [`StopSignal`].
    stopped: AtomicBool,
    stop_wake: Notify,
}

#[derive(Debug, Default)]
struct State {
    lines: VecDeque<Bytes>,
    /// Bytes queued or taken by the writer and not yet written: what the budget bounds.
    queued: usize,
    /// The hub task's end is gone: no more lines will come.
    closed: bool,
    /// The writer's end is gone: lines would never be written.
    abandoned: bool,
}

impl Shared {
    fn raise_stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop_wake.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned queue is still sound.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The hub task's end of a queue. Dropping it closes the connection gracefully: the
/// writer sends what is queued, then closes the socket.
#[derive(Debug)]
pub(crate) struct SendQueue {
    shared: Arc<Shared>,
    budget: usize,
    /// Set for a queue drained by the UDP task rather than by a writer task of its
    /// own. Declared last so that it drops last: its final wake comes after the queue
    /// has closed, so the woken task sees the end of the queue.
    waker: Option<QueueWaker>,
}

/// Tells the UDP task that a queue it drains needs attention (a line, a kill, or the
/// end of the queue). One task serves every UDP peer, so instead of one writer task
/// per peer waiting on its own channel, each queue names itself on a shared channel,
/// at most once until the task has looked (`scheduled`): a burst of lines to one peer
/// costs one wake, and an idle peer costs nothing.
#[derive(Debug)]
pub(crate) struct QueueWaker {
    id: ClientId,
    scheduled: Arc<AtomicBool>,
    wakes: mpsc::UnboundedSender<ClientId>,
}

impl QueueWaker {
    /// A waker naming `id` on `wakes`; the task clears `scheduled` before it drains.
    pub(crate) fn new(
        id: ClientId,
        scheduled: Arc<AtomicBool>,
        wakes: mpsc::UnboundedSender<ClientId>,
    ) -> QueueWaker {
        QueueWaker {
            id,
            scheduled,
            wakes,
        }
    }

    fn wake(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            let _ = self.wakes.send(self.id);
        }
    }
}

impl Drop for QueueWaker {
    /// The queue is gone: always wake, even if a wake is pending, so that the task
    /// never misses the end of a queue it already drained.
    fn drop(&mut self) {
        let _ = self.wakes.send(self.id);
    }
}

/// The writer's end of a queue.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Line by line, for the UDP task; a writer task takes whole bursts with
    /// [`Outgoing::take`].
    pub(crate) lines: Lines,
}

/// Takes queued lines one at a time, as a channel receiver would.
#[derive(Debug)]
pub(crate) struct Lines {
    shared: Arc<Shared>,
}

impl Lines {
    /// The oldest queued line; `Disconnected` once the queue has ended and is empty.
    pub(crate) fn try_recv(&mut self) -> Result<Bytes, TryRecvError> {
        let mut state = self.shared.lock();
        match state.lines.pop_front() {
            Some(line) => Ok(line),
            None if state.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

/// A queue holding at most `budget` bytes not yet written, and the stop signal the
/// connection's tasks share.
pub(crate) fn send_queue(budget: usize) -> (SendQueue, Outgoing, StopSignal) {
    send_queue_with_waker(budget, None)
}

/// A queue as [`send_queue`] makes, whose pushes, kill and end also call `waker`:
/// for the UDP task, which drains many queues itself.
pub(crate) fn send_queue_with_waker(
    budget: usize,
    waker: Option<QueueWaker>,
) -> (SendQueue, Outgoing, StopSignal) {
    let shared = Arc::new(Shared::default());
    let stop = StopSignal(Arc::clone(&shared));
    (
        SendQueue {
            shared: Arc::clone(&shared),
            budget,
            waker,
        },
        Outgoing {
            lines: Lines { shared },
        },
        stop,
    )
}

impl SendQueue {
    /// Queues a line without waiting: the hub task never waits on one slow client.
    /// A line for a writer that has already ended is dropped quietly: its reader
    /// reports the end of the connection.
    pub(crate) fn push(&self, line: Bytes) -> Result<(), Overflow> {
        let len = line.len();
        let was_empty = {
            let mut state = self.shared.lock();
            if state.abandoned {
                return Ok(());
            }
            let queued = state.queued.saturating_add(len);
            if queued > self.budget {
                return Err(Overflow);
            }
            state.queued = queued;
            let was_empty = state.lines.is_empty();
            state.lines.push_back(line);
            was_empty
        };
        // A writer that finds the queue empty waits for this; one that has not yet
        // taken what is queued will take this line with it.
        if was_empty {
            self.shared.ready.notify_one();
        }
        if let Some(waker) = &self.waker {
            waker.wake();
        }
        Ok(())
    }

    /// Ends the connection now, dropping what is queued.
    pub(crate) fn kill(&self) {
        self.shared.raise_stop();
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }
}

impl Drop for SendQueue {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
    }
}

impl Outgoing {
    /// Counts `bytes` as written, freeing that much of the budget.
    pub(crate) fn written(&self, bytes: usize) {
        let mut state = self.lines.shared.lock();
        state.queued = state.queued.saturating_sub(bytes);
    }

    /// Counts `written` bytes as written and moves every queued line into `batch`
    /// (which must be empty), under one lock. Returns `false` when the queue has
    /// ended and nothing is left. An empty queue gives up its memory.
    pub(crate) fn take(&mut self, batch: &mut VecDeque<Bytes>, written: usize) -> bool {
        let mut state = self.lines.shared.lock();
        state.queued = state.queued.saturating_sub(written);
        if state.lines.is_empty() {
            if state.lines.capacity() > 0 {
                state.lines = VecDeque::new();
            }
            return !state.closed;
        }
        std::mem::swap(&mut state.lines, batch);
        true
    }

    /// Waits until lines are queued, then moves them all into `batch` (which must be
    /// empty), first counting `written` bytes as written. Returns `false` once the
    /// queue has ended and every line was taken. Keeps no memory while it waits.
    pub(crate) async fn next_batch(
        &mut self,
        batch: &mut VecDeque<Bytes>,
        mut written: usize,
    ) -> bool {
        loop {
            if !self.take(batch, written) {
                return false;
            }
            if !batch.is_empty() {
                return true;
            }
            written = 0;
            if batch.capacity() > 0 {
                *batch = VecDeque::new();
            }
            self.lines.shared.ready.notified().await;
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let mut state = self.lines.shared.lock();
        state.abandoned = true;
        state.lines = VecDeque::new();
        state.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_bytes_until_they_are_written() {
        let (queue, mut outgoing, _stop) = send_queue(10);
        assert_eq!(queue.push(Bytes::from_static(b"12345")), Ok(()));
        assert_eq!(queue.push(Bytes::from_static(b"12345")), Ok(()));
        assert_eq!(queue.push(Bytes::from_static(b"1")), Err(Overflow));
        let line = outgoing.lines.try_recv().expect("queued");
        outgoing.written(line.len());
        assert_eq!(queue.push(Bytes::from_static(b"1")), Ok(()));
    }

    #[test]
    fn a_waking_queue_wakes_once_until_looked_at_and_again_at_its_end() {
        let (wakes, mut woken) = mpsc::unbounded_channel();
        let scheduled = Arc::new(AtomicBool::new(false));
        let waker = QueueWaker::new(ClientId(7), Arc::clone(&scheduled), wakes);
        let (queue, mut outgoing, _stop) = send_queue_with_waker(100, Some(waker));
        queue.push(Bytes::from_static(b"a")).expect("fits");
        queue.push(Bytes::from_static(b"b")).expect("fits");
        assert_eq!(woken.try_recv(), Ok(ClientId(7)));
        assert!(woken.try_recv().is_err(), "one wake for a burst");
        scheduled.store(false, Ordering::Release);
        while outgoing.lines.try_recv().is_ok() {}
        queue.push(Bytes::from_static(b"c")).expect("fits");
        assert_eq!(woken.try_recv(), Ok(ClientId(7)));
        drop(queue);
        assert_eq!(woken.try_recv(), Ok(ClientId(7)), "the end wakes too");
        assert_eq!(outgoing.lines.try_recv(), Ok(Bytes::from_static(b"c")));
        assert!(matches!(
            outgoing.lines.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn kill_raises_the_stop_signal() {
        let (queue, _outgoing, stop) = send_queue(10);
        assert!(!*stop.borrow());
        queue.kill();
        assert!(*stop.borrow());
    }
}
