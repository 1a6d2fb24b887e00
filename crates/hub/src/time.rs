//! The hub's only source of time: the moment each event happened, given by its caller.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// When an event happened: a monotonic instant for timeouts, and the wall clock for
/// what users see (server-time tags, topic times, WHOIS signon).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Now {
    /// The current time, for the server. Tests build their own `Now`s instead.
    pub fn system() -> Now {
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// This moment moved forward by `by`, on both clocks.
    pub fn after(self, by: Duration) -> Now {
        Now {
            mono: self.mono + by,
            wall: self.wall + by,
        }
    }

    /// Seconds since the Unix epoch, as IRC numerics give times.
    pub fn unix_secs(self) -> u64 {
        unix_secs(self.wall)
    }

    /// The IRCv3 server-time form: `2026-11-27T07:12:13.123Z`.
    pub fn server_time(self) -> String {
        humantime::format_rfc3339_millis(self.wall).to_string()
    }
}

/// Seconds since the Unix epoch of a wall-clock time.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
