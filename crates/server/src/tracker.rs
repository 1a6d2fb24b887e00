//! Knowing when every connection writer has finished, so that shutdown can wait for
//! the last `ERROR` lines to reach their clients, and no longer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Counts running tasks of one kind. Cheap to clone; each task holds a [`Tracked`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Tracker {
    inner: Arc<Inner>,
}

/// Held by a tracked task for as long as it runs.
#[derive(Debug)]
pub(crate) struct Tracked {
    inner: Arc<Inner>,
}

impl Tracker {
    pub(crate) fn track(&self) -> Tracked {
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        Tracked {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Returns once no tracked task runs.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a task ending in between still wakes us.
            notified.as_mut().enable();
            if self.inner.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.inner.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_returns_when_the_last_task_ends() {
        let tracker = Tracker::default();
        tracker.idle().await;
        let a = tracker.track();
        let b = tracker.track();
        let waiter = tokio::spawn({
            let tracker = tracker.clone();
            async move { tracker.idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("idle in time")
            .expect("no panic");
    }
}
