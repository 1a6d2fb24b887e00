//! One connection's outgoing queue: bounded in bytes, so that a client that stops
//! reading costs at most its budget before it is dropped with `SendQ exceeded`,
//! instead of growing the server's memory without end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

/// Raised on a connection to end it: by the hub task to drop a client at once
/// (SendQ exceeded), and by the writer when it is done, which stops the reader.
pub(crate) type StopSignal = Arc<watch::Sender<bool>>;

/// The queue was over its byte budget: the line was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

/// The hub task's end of a queue. Dropping it closes the connection gracefully: the
/// writer sends what is queued, then closes the socket.
#[derive(Debug)]
pub(crate) struct SendQueue {
    lines: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    budget: usize,
    stop: StopSignal,
}

/// The writer's end of a queue.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) lines: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

/// A queue holding at most `budget` bytes not yet written, and the stop signal the
/// connection's tasks share.
pub(crate) fn send_queue(budget: usize) -> (SendQueue, Outgoing, StopSignal) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(watch::Sender::new(false));
    (
        SendQueue {
            lines: tx,
            queued: Arc::clone(&queued),
            budget,
            stop: Arc::clone(&stop),
        },
        Outgoing { lines: rx, queued },
        stop,
    )
}

impl SendQueue {
    /// Queues a line without waiting: the hub task never waits on one slow client.
    /// A line for a writer that has already ended is dropped quietly: its reader
    /// reports the end of the connection.
    pub(crate) fn push(&self, line: Bytes) -> Result<(), Overflow> {
        let len = line.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > self.budget {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(Overflow);
        }
        if self.lines.send(line).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Ends the connection now, dropping what is queued.
    pub(crate) fn kill(&self) {
        self.stop.send_replace(true);
    }
}

impl Outgoing {
    /// Counts `bytes` as written, freeing that much of the budget.
    pub(crate) fn written(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
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
    fn kill_raises_the_stop_signal() {
        let (queue, _outgoing, stop) = send_queue(10);
        let rx = stop.subscribe();
        assert!(!*rx.borrow());
        queue.kill();
        assert!(*rx.borrow());
    }
}
