//! One connection's outgoing queue: bounded in bytes, so that a client that stops
//! reading costs at most its budget (and one more batch of lines) before it is
//! dropped with `SendQ exceeded`, instead of growing the server's memory without end.
//!
//! The bound is checked before lines are added, not after: a batch of lines is
//! refused only when the queue already holds more than the budget that its connection
//! has not written. A client that keeps up takes any one burst, however large (a long
//! reply, a busy moment in a room), since its connection writes it to the socket as
//! soon as it runs; counting the burst first would drop a client for lines it was
//! about to read, only because the hub task handed them over before the connection
//! task had its turn. A client that does not read is dropped at the next batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use natter_hub::ClientId;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use crate::queued_lines::QueuedLines;

/// Raised on a connection to end it at once, dropping what is queued: by the hub task
/// when a client exceeds its SendQ. Lives in the queue's shared state: it costs a
/// connection no allocation of its own.
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
    /// Whether the signal has been raised.
    pub(crate) fn borrow(&self) -> Raised {
        Raised(self.0.stopped.load(Ordering::Acquire))
    }
}

/// The queue was over its byte budget: the line was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

/// What both ends of a queue share: the lines under one uncontended lock (the hub
/// task pushes, the connection takes everything queued at once), and the stop flag.
/// An idle queue holds no allocation but this.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bytes that may be queued and not yet written. Four bytes, not eight: with the
    /// count of the queue's front lines beside the lines, an eight-byte budget took
    /// this block (one per client, idle or not) into the allocator's next size class.
    /// A budget above 4 GiB is 4 GiB.
    budget: u32,
    /// The [`StopSignal`].
    stopped: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    lines: QueuedLines,
    /// Bytes queued or taken by the connection and not yet written: what the budget
    /// bounds.
    queued: usize,
    /// The connection task that last looked at the queue: woken by the next line, the
    /// stop signal and the end of the queue. One slot rather than a `Notify` per
    /// event: a task is all there is to wake, and a slot is the smallest way to
    /// remember it.
    waker: Option<Waker>,
    /// The hub task's end is gone: no more lines will come.
    closed: bool,
    /// The connection's end is gone: lines would never be written.
    abandoned: bool,
}

impl Shared {
    fn raise_stop(&self) {
        self.stopped.store(true, Ordering::Release);
        // Taken under the lock that `Outgoing::look` registers under: a task that
        // looked before the flag was set is woken, one that looks after sees it.
        let waker = self.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned queue is still sound.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The hub task's end of a queue. Dropping it closes the connection gracefully: the
/// connection sends what is queued, then closes the socket. Kept small: the hub task
/// holds one per client.
#[derive(Debug)]
pub(crate) struct SendQueue {
    shared: Arc<Shared>,
    /// Lines delivered while the hub task handles a batch of events, handed to the
    /// queue together by [`SendQueue::flush`] at the end of the batch: one lock and at
    /// most one wake per client per batch. A lock per line cost a fan-out to a room of
    /// a hundred more than routing the line did (the lock's atomic instructions wait
    /// for every store before them, and each store lands in another client's queue).
    staged: Vec<Bytes>,
    /// The bytes of `staged`, counted as they come rather than read back at the flush
    /// from lines by then out of the cache.
    staged_bytes: usize,
    /// Set for a queue drained by the UDP task rather than by a connection task of its
    /// own (boxed: a TCP client, the common case, then pays one pointer for it).
    /// Declared last so that it drops last: its final wake comes after the queue has
    /// closed, so the woken task sees the end of the queue.
    waker: Option<Box<QueueWaker>>,
}

/// Empty staging buffers, lent to the queues that receive lines during a batch of
/// events and given back when they are flushed: a busy room's members stage lines
/// every batch without allocating, and an idle client holds no buffer.
#[derive(Debug, Default)]
pub(crate) struct StagingBuffers(Vec<Vec<Bytes>>);

/// Most buffers kept, and the largest kept (in lines): bounds what a past burst
/// leaves behind.
const SPARE_BUFFERS: usize = 4096;
const SPARE_LINES: usize = 1024;

impl StagingBuffers {
    fn take(&mut self) -> Vec<Bytes> {
        self.0.pop().unwrap_or_default()
    }

    fn give(&mut self, buffer: Vec<Bytes>) {
        if buffer.capacity() > 0 && buffer.capacity() <= SPARE_LINES && self.0.len() < SPARE_BUFFERS
        {
            self.0.push(buffer);
        }
    }
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
        // A plain load first: under load the flag is mostly already set, and a load
        // costs far less than the locked swap. A stale `true` is harmless: the task
        // clears the flag before it takes the queue's lock, and this line was queued
        // under that lock, so either the task's take sees the line or this load sees
        // the flag cleared.
        if !self.scheduled.load(Ordering::Acquire) && !self.scheduled.swap(true, Ordering::AcqRel) {
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

/// What [`Outgoing::take`] moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    /// False once the queue has ended and nothing is left in it.
    pub(crate) open: bool,
    /// The bytes of the lines moved, line ends included.
    pub(crate) bytes: usize,
}

/// The connection's end of a queue.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Line by line, as a channel receiver would (plain UDP); a reliable UDP session
    /// takes bursts with [`Outgoing::take`], a connection task with
    /// [`Outgoing::look`].
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

/// What a connection task found when it looked at its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueState {
    /// More lines may come.
    Open,
    /// The hub task closed the queue and every line has been taken.
    Ended,
    /// The stop signal was raised: what is queued is not to be written.
    Stopped,
}

/// A queue holding at most `budget` bytes not yet written, and its stop signal.
pub(crate) fn send_queue(budget: usize) -> (SendQueue, Outgoing, StopSignal) {
    send_queue_with_waker(budget, None)
}

/// A queue as [`send_queue`] makes, whose pushes, kill and end also call `waker`:
/// for the UDP task, which drains many queues itself.
pub(crate) fn send_queue_with_waker(
    budget: usize,
    waker: Option<QueueWaker>,
) -> (SendQueue, Outgoing, StopSignal) {
    let shared = Arc::new(Shared {
        state: Mutex::default(),
        budget: u32::try_from(budget).unwrap_or(u32::MAX),
        stopped: AtomicBool::new(false),
    });
    let stop = StopSignal(Arc::clone(&shared));
    (
        SendQueue {
            shared: Arc::clone(&shared),
            staged: Vec::new(),
            staged_bytes: 0,
            waker: waker.map(Box::new),
        },
        Outgoing {
            lines: Lines { shared },
        },
        stop,
    )
}

impl SendQueue {
    /// Queues a line without waiting: the hub task never waits on one slow client.
    /// A line for a connection that has already ended is dropped quietly: the
    /// connection reports its own end.
    #[cfg(test)]
    pub(crate) fn push(&self, line: Bytes) -> Result<(), Overflow> {
        let len = line.len();
        self.hand_over(len, |lines| lines.push_back(line))
    }

    /// Keeps `line` for the next [`SendQueue::flush`]. True for the first line staged
    /// since the last flush: the caller then has this queue to flush.
    pub(crate) fn stage(&mut self, line: Bytes, spare: &mut StagingBuffers) -> bool {
        let first = self.staged.is_empty();
        if first && self.staged.capacity() == 0 {
            self.staged = spare.take();
        }
        self.staged_bytes += line.len();
        self.staged.push(line);
        first
    }

    /// Queues every staged line without waiting, under one lock. When the queue already
    /// holds more than its budget, none is queued: the caller drops the client (SendQ
    /// exceeded). Lines for a connection that has already ended are dropped quietly.
    pub(crate) fn flush(&mut self, spare: &mut StagingBuffers) -> Result<(), Overflow> {
        let mut staged = std::mem::take(&mut self.staged);
        let bytes = std::mem::take(&mut self.staged_bytes);
        // The queue may keep the buffer and give back another.
        let handed = self.hand_over(bytes, |lines| lines.append(&mut staged, bytes));
        staged.clear();
        spare.give(staged);
        handed
    }

    /// Adds `bytes` of lines to the queue with `add`, unless it already holds more than
    /// its budget, and wakes whoever drains it.
    fn hand_over(&self, bytes: usize, add: impl FnOnce(&mut QueuedLines)) -> Result<(), Overflow> {
        let waker = {
            let mut state = self.shared.lock();
            if state.abandoned {
                return Ok(());
            }
            if state.queued > self.shared.budget as usize {
                return Err(Overflow);
            }
            state.queued = state.queued.saturating_add(bytes);
            add(&mut state.lines);
            // Taken: the task looks again before it waits, so a burst of lines costs
            // one wake.
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
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
        // Lines staged in the batch that closed the client go before the end, within
        // the budget like any others.
        if !self.staged.is_empty() {
            let _ = self.flush(&mut StagingBuffers::default());
        }
        let waker = {
            let mut state = self.shared.lock();
            state.closed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Outgoing {
    /// Counts `bytes` as written, freeing that much of the budget.
    pub(crate) fn written(&self, bytes: usize) {
        let mut state = self.lines.shared.lock();
        state.queued = state.queued.saturating_sub(bytes);
    }

    /// For the UDP task, which drains many queues itself: counts `written` bytes as
    /// written and moves the oldest queued lines into `batch` (which must be empty),
    /// under one lock. Says how many bytes it moved, and whether the queue is still
    /// open (it is not once it has ended and nothing is left).
    ///
    /// The queue and `batch` trade buffers, so a busy queue grows none. An empty queue
    /// gives up its memory only once `batch` has none (the reader found its peer
    /// quiet and let its own go): were it given up at every empty look, the next
    /// burst would grow the queue from nothing again, a reallocation and a copy per
    /// doubling, for every peer of a busy room.
    pub(crate) fn take(&mut self, batch: &mut VecDeque<Bytes>, written: usize) -> Taken {
        let mut state = self.lines.shared.lock();
        state.queued = state.queued.saturating_sub(written);
        if state.lines.is_empty() {
            if batch.capacity() == 0 {
                state.lines.release();
            }
            return Taken {
                open: !state.closed,
                bytes: 0,
            };
        }
        let bytes = state.lines.take_front(batch);
        Taken { open: true, bytes }
    }

    /// Looks at the queue for the connection task woken by `waker`, under one lock:
    /// counts `written` bytes as written, remembers `waker` for the next line, the
    /// stop signal or the end of the queue, and moves the oldest queued lines into
    /// `batch` if `batch` is empty. An empty queue gives up its memory.
    pub(crate) fn look(
        &mut self,
        waker: &Waker,
        batch: &mut VecDeque<Bytes>,
        written: usize,
    ) -> QueueState {
        let mut state = self.lines.shared.lock();
        state.queued = state.queued.saturating_sub(written);
        match &state.waker {
            Some(known) if known.will_wake(waker) => {}
            _ => state.waker = Some(waker.clone()),
        }
        // Read under the lock that `raise_stop` takes after setting it: see there.
        if self.lines.shared.stopped.load(Ordering::Acquire) {
            return QueueState::Stopped;
        }
        if batch.is_empty() {
            if state.lines.is_empty() {
                state.lines.release();
            } else {
                state.lines.take_front(batch);
            }
        }
        if state.closed && state.lines.is_empty() {
            QueueState::Ended
        } else {
            QueueState::Open
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let mut state = self.lines.shared.lock();
        state.abandoned = true;
        state.lines = QueuedLines::default();
        state.queued = 0;
        // The task that held this end is done: its memory need not wait for the hub
        // task to drop the other end.
        state.waker = None;
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
        assert_eq!(
            queue.push(Bytes::from_static(b"1")),
            Ok(()),
            "at the budget"
        );
        assert_eq!(queue.push(Bytes::from_static(b"1")), Err(Overflow));
        let line = outgoing.lines.try_recv().expect("queued");
        outgoing.written(line.len());
        assert_eq!(queue.push(Bytes::from_static(b"1")), Ok(()));
    }

    #[test]
    fn a_burst_larger_than_the_budget_goes_into_a_queue_that_keeps_up() {
        let (mut queue, mut outgoing, _stop) = send_queue(10);
        let mut spare = StagingBuffers::default();
        for line in [&b"123456"[..], b"7890", b"abcdef"] {
            queue.stage(Bytes::from_static(line), &mut spare);
        }
        assert_eq!(
            queue.flush(&mut spare),
            Ok(()),
            "16 bytes into an empty queue"
        );
        queue.stage(Bytes::from_static(b"more"), &mut spare);
        assert_eq!(
            queue.flush(&mut spare),
            Err(Overflow),
            "nothing more while the burst is unwritten"
        );
        let mut batch = VecDeque::new();
        let waker = Waker::noop();
        assert_eq!(outgoing.look(waker, &mut batch, 0), QueueState::Open);
        assert_eq!(batch.len(), 3);
        // The connection wrote the three lines.
        assert_eq!(
            outgoing.look(waker, &mut VecDeque::new(), 16),
            QueueState::Open
        );
        queue.stage(Bytes::from_static(b"more"), &mut spare);
        assert_eq!(queue.flush(&mut spare), Ok(()), "once it was written");
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
    fn the_connection_is_woken_once_per_burst_and_by_kill_and_end() {
        let counter = Arc::new(WakeCounter::default());
        let waker = Waker::from(Arc::clone(&counter));
        let (queue, mut outgoing, _stop) = send_queue(100);
        let mut batch = VecDeque::new();
        assert_eq!(outgoing.look(&waker, &mut batch, 0), QueueState::Open);
        queue.push(Bytes::from_static(b"a")).expect("fits");
        queue.push(Bytes::from_static(b"b")).expect("fits");
        assert_eq!(counter.wakes(), 1, "one wake for a burst");
        assert_eq!(outgoing.look(&waker, &mut batch, 0), QueueState::Open);
        assert_eq!(batch.len(), 2, "every queued line is taken at once");
        queue.kill();
        assert_eq!(counter.wakes(), 2, "kill wakes");
        assert_eq!(outgoing.look(&waker, &mut batch, 2), QueueState::Stopped);
        drop(queue);
        assert_eq!(counter.wakes(), 3, "the end wakes");
    }

    #[test]
    fn a_closed_queue_ends_once_every_line_is_taken() {
        let waker = Waker::from(Arc::new(WakeCounter::default()));
        let (queue, mut outgoing, _stop) = send_queue(100);
        queue.push(Bytes::from_static(b"last")).expect("fits");
        drop(queue);
        let mut batch = VecDeque::new();
        assert_eq!(outgoing.look(&waker, &mut batch, 0), QueueState::Ended);
        assert_eq!(batch.pop_front(), Some(Bytes::from_static(b"last")));
    }

    #[test]
    fn staged_lines_arrive_together_at_the_flush_with_one_wake() {
        let counter = Arc::new(WakeCounter::default());
        let waker = Waker::from(Arc::clone(&counter));
        let (mut queue, mut outgoing, _stop) = send_queue(100);
        let mut spare = StagingBuffers::default();
        let mut batch = VecDeque::new();
        assert_eq!(outgoing.look(&waker, &mut batch, 0), QueueState::Open);
        assert!(
            queue.stage(Bytes::from_static(b"a"), &mut spare),
            "the first line"
        );
        assert!(!queue.stage(Bytes::from_static(b"b"), &mut spare));
        assert_eq!(
            counter.wakes(),
            0,
            "nothing is handed over before the flush"
        );
        assert_eq!(outgoing.look(&waker, &mut batch, 0), QueueState::Open);
        assert!(batch.is_empty());
        assert_eq!(queue.flush(&mut spare), Ok(()));
        assert_eq!(counter.wakes(), 1, "one wake for the batch");
        assert_eq!(outgoing.look(&waker, &mut batch, 0), QueueState::Open);
        assert_eq!(batch, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert!(
            queue.stage(Bytes::from_static(b"c"), &mut spare),
            "the first line again after a flush"
        );
    }

    #[test]
    fn a_flush_into_a_queue_over_the_budget_queues_nothing() {
        let (mut queue, mut outgoing, _stop) = send_queue(10);
        let mut spare = StagingBuffers::default();
        queue.stage(Bytes::from_static(b"12345678901"), &mut spare);
        assert_eq!(queue.flush(&mut spare), Ok(()));
        queue.stage(Bytes::from_static(b"1234"), &mut spare);
        queue.stage(Bytes::from_static(b"5"), &mut spare);
        assert_eq!(queue.flush(&mut spare), Err(Overflow));
        assert_eq!(
            outgoing.lines.try_recv(),
            Ok(Bytes::from_static(b"12345678901"))
        );
        assert!(
            outgoing.lines.try_recv().is_err(),
            "the batch over the budget is not queued"
        );
    }

    #[test]
    fn closing_a_queue_hands_over_its_staged_lines_first() {
        let (mut queue, mut outgoing, _stop) = send_queue(100);
        let mut spare = StagingBuffers::default();
        queue.stage(Bytes::from_static(b"bye"), &mut spare);
        drop(queue);
        assert_eq!(outgoing.lines.try_recv(), Ok(Bytes::from_static(b"bye")));
        assert!(matches!(
            outgoing.lines.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[derive(Default)]
    struct WakeCounter(std::sync::atomic::AtomicUsize);

    impl WakeCounter {
        fn wakes(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl std::task::Wake for WakeCounter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn kill_raises_the_stop_signal() {
        let (queue, _outgoing, stop) = send_queue(10);
        assert!(!*stop.borrow());
        queue.kill();
        assert!(*stop.borrow());
    }

    #[test]
    fn the_block_every_client_holds_stays_in_its_size_class() {
        // Every client, idle or not, holds one of these behind an `Arc` (two counts,
        // 16 bytes): 96 + 16 is mimalloc's 112-byte class, and 8 bytes more would be
        // 128 for each of 10,000 idle clients (memory per idle client is a target of
        // docs/performance.md).
        assert!(
            std::mem::size_of::<Shared>() <= 96,
            "{}",
            std::mem::size_of::<Shared>()
        );
    }
}
