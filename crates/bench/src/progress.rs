//! The progress line: one line on standard error, rewritten in place four times a
//! second on a terminal (a line every five seconds when redirected), cleared at the end.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the run is doing, updated by the scenario, read by the display task.
#[derive(Debug)]
pub struct Progress {
    phase: Mutex<&'static str>,
    pub done: AtomicU64,
    pub total: AtomicU64,
    started: Instant,
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress {
            phase: Mutex::new("starting"),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// A new phase, counting from 0 to `total`.
    pub fn phase(&self, name: &'static str, total: u64) {
        if let Ok(mut p) = self.phase.lock() {
            *p = name;
        }
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    fn line(&self, last: &mut (Instant, u64)) -> String {
        let phase = self.phase.lock().map(|p| *p).unwrap_or("");
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let now = Instant::now();
        let dt = now.duration_since(last.0).as_secs_f64();
        let rate = if dt > 0.0 && done >= last.1 {
            (done - last.1) as f64 / dt
        } else {
            0.0
        };
        *last = (now, done);
        format!(
            "[{:>6.1} s] {phase}: {}/{} ({}/s)",
            self.started.elapsed().as_secs_f64(),
            crate::report::format_number(done as f64),
            crate::report::format_number(total as f64),
            crate::report::format_number(rate.round()),
        )
    }

    /// Shows the line until the returned guard is dropped; nothing when `quiet`.
    pub fn show(self: &Arc<Progress>, quiet: bool) -> Option<ShowGuard> {
        if quiet {
            return None;
        }
        let tty = std::io::stderr().is_terminal();
        let every = if tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        let me = self.clone();
        let task = tokio::spawn(async move {
            let mut last = (Instant::now(), 0);
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let line = me.line(&mut last);
                let mut err = std::io::stderr().lock();
                let _ = if tty {
                    write!(err, "\r\x1b[2K{line}")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
            }
        });
        Some(ShowGuard { task, tty })
    }
}

/// Stops the display and clears its line.
pub struct ShowGuard {
    task: tokio::task::JoinHandle<()>,
    tty: bool,
}

impl Drop for ShowGuard {
    fn drop(&mut self) {
        self.task.abort();
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
