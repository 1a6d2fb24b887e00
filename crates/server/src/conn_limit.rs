//! Admission of new connections: a cap on the total, and one per IP address, so that a
//! single host cannot take every slot (or every file descriptor) of the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was turned away; the text is what the peer is sent in `ERROR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    ServerFull,
    TooManyFromIp,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::ServerFull => "Server is full, try again later",
            Refusal::TooManyFromIp => "Too many connections from your IP",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections, shared by every accept loop. The lock is held only for a
/// counter update, never across an await.
#[derive(Clone, Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimiter {
    /// `0` turns a limit off.
    pub fn new(max_total: usize, max_per_ip: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            max_total,
            max_per_ip,
            counts: Arc::default(),
        }
    }

    /// Admits a connection from `ip` (`None` for a Unix-socket peer, which has no IP and
    /// is counted only in the total), or says why not. The slot is held until the
    /// returned permit is dropped.
    pub fn try_acquire(&self, ip: Option<IpAddr>) -> Result<ConnectionPermit, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.max_total != 0 && counts.total >= self.max_total {
            return Err(Refusal::ServerFull);
        }
        if let Some(ip) = ip {
            let n = counts.per_ip.entry(ip).or_insert(0);
            if self.max_per_ip != 0 && *n >= self.max_per_ip {
                return Err(Refusal::TooManyFromIp);
            }
            *n += 1;
        }
        counts.total += 1;
        Ok(ConnectionPermit {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One admitted connection's slot, given back when the connection's tasks are done.
#[derive(Debug)]
pub struct ConnectionPermit {
    ip: Option<IpAddr>,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(n) = counts.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn each_ip_gets_its_own_quota_and_slots_come_back() {
        let limiter = ConnectionLimiter::new(0, 2);
        let a1 = limiter.try_acquire(ip("10.0.0.1")).expect("first");
        let _a2 = limiter.try_acquire(ip("10.0.0.1")).expect("second");
        assert_eq!(
            limiter.try_acquire(ip("10.0.0.1")).err(),
            Some(Refusal::TooManyFromIp)
        );
        let _b = limiter.try_acquire(ip("10.0.0.2")).expect("another IP");
        drop(a1);
        let _a3 = limiter.try_acquire(ip("10.0.0.1")).expect("slot came back");
        assert_eq!(limiter.open(), 3);
    }

    #[test]
    fn the_total_counts_unix_peers_too() {
        let limiter = ConnectionLimiter::new(2, 1);
        let _u1 = limiter
            .try_acquire(None)
            .expect("unix peers have no IP quota");
        let _u2 = limiter
            .try_acquire(None)
            .expect("unix peers have no IP quota");
        assert_eq!(
            limiter.try_acquire(ip("::1")).err(),
            Some(Refusal::ServerFull)
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = ConnectionLimiter::new(0, 0);
        let permits: Vec<_> = (0..1000)
            .map(|_| limiter.try_acquire(ip("127.0.0.1")).expect("no limit"))
            .collect();
        assert_eq!(limiter.open(), permits.len());
        drop(permits);
        assert_eq!(limiter.open(), 0);
    }
}
