//! Back-pressure from a UDP socket's receivers to its senders.
//!
//! A line handed to the hub can become a line for every member of a room at once. Over
//! TCP the kernel's socket buffers (megabytes on loopback) absorb such bursts; a
//! reliable UDP session has only its send buffer, and what does not fit waits in the
//! hub's bounded queue, which drops the client (`SendQ exceeded`) when full. Reliable
//! senders can be slowed down without losing anything (their lines stay in their
//! session, whose receive window then closes), so the socket's task holds their lines
//! back while its receivers have not caught up:
//!
//! - while some reliable session is *behind*: its send buffer is full and the hub's
//!   queue still has lines for it. A session counts for [`MAX_BEHIND`] at most: one
//!   that stays behind that long is slow in its own right (a client that stopped
//!   reading, a bad path), and holding everyone else back for it would let one client
//!   stall every other; it is then left to its queue's budget, as over TCP, until it
//!   catches up.
//! - while more than [`HUB_BACKLOG`] events wait for the hub: lines handed over but not
//!   yet fanned out, whose deliveries are still to come. Without this bound a burst of
//!   held lines, released at once, would reach every member's queue before the task
//!   could move any of it on.
//!
//! Plain-mode peers cannot be slowed down; their lines are never held here.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use natter_hub::ClientId;

/// Longest a session that is behind holds the other sessions' lines back.
pub(crate) const MAX_BEHIND: Duration = Duration::from_secs(2);

/// Events waiting for the hub beyond which no more lines are handed over: enough to
/// keep the hub busy, few enough that their deliveries fit every member's queue
/// (512 room lines are about 60 KiB for each member).
pub(crate) const HUB_BACKLOG: usize = 512;

/// How soon to look again while lines are held only for the hub's backlog: the hub's
/// deliveries to this socket's sessions usually wake the task before that.
const HUB_RECHECK: Duration = Duration::from_millis(2);

/// Which sessions are behind, and whose lines wait for them.
#[derive(Debug, Default)]
pub(crate) struct InputGate {
    /// (behind since, session), for every session behind now.
    behind: BTreeSet<(Instant, ClientId)>,
    /// Sessions with lines held back, in the order they were held.
    held: VecDeque<ClientId>,
}

impl InputGate {
    /// Records whether session `id` is behind now; `since` is its entry (kept by the
    /// caller with the session).
    pub(crate) fn set_behind(
        &mut self,
        id: ClientId,
        since: &mut Option<Instant>,
        behind: bool,
        now: Instant,
    ) {
        match (*since, behind) {
            (None, true) => {
                self.behind.insert((now, id));
                *since = Some(now);
            }
            (Some(at), false) => {
                self.behind.remove(&(at, id));
                *since = None;
            }
            _ => {}
        }
    }

    /// Whether reliable sessions may hand lines to the hub now, with `hub_backlog`
    /// events waiting for it.
    pub(crate) fn is_open(&self, now: Instant, hub_backlog: usize) -> bool {
        hub_backlog <= HUB_BACKLOG && !self.waiting_for_behind(now)
    }

    fn waiting_for_behind(&self, now: Instant) -> bool {
        // The session behind most recently is the last to stop counting.
        self.behind
            .last()
            .is_some_and(|(since, _)| now.saturating_duration_since(*since) < MAX_BEHIND)
    }

    /// Session `id` has lines held back; `held` is its flag (kept with the session), so
    /// that it is listed once.
    pub(crate) fn hold(&mut self, id: ClientId, held: &mut bool) {
        if !*held {
            *held = true;
            self.held.push_back(id);
        }
    }

    /// The next session with lines held back, oldest first: it should be given its
    /// turn (and clear its flag). Sessions that are gone may be listed.
    pub(crate) fn next_held(&mut self) -> Option<ClientId> {
        self.held.pop_front()
    }

    /// How many sessions are listed as having lines held back.
    pub(crate) fn held_count(&self) -> usize {
        self.held.len()
    }

    /// While lines are held, when to look again even if nothing else wakes the task:
    /// when the session behind most recently stops counting, or soon if only the
    /// hub's backlog holds them.
    pub(crate) fn recheck_at(&self, now: Instant) -> Option<Instant> {
        if self.held.is_empty() {
            return None;
        }
        match self.behind.last() {
            Some((since, _)) if now.saturating_duration_since(*since) < MAX_BEHIND => {
                Some(*since + MAX_BEHIND)
            }
            _ => Some(now + HUB_RECHECK),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_behind_closes_the_gate_until_it_catches_up_or_for_max_behind() {
        let t0 = Instant::now();
        let mut gate = InputGate::default();
        let (a, b) = (ClientId(1), ClientId(2));
        let (mut since_a, mut since_b) = (None, None);
        assert!(gate.is_open(t0, 0));
        gate.set_behind(a, &mut since_a, true, t0);
        assert!(!gate.is_open(t0, 0));
        let t1 = t0 + MAX_BEHIND / 2;
        gate.set_behind(b, &mut since_b, true, t1);
        gate.set_behind(a, &mut since_a, true, t1);
        assert_eq!(since_a, Some(t0), "behind since it first fell behind");
        gate.set_behind(b, &mut since_b, false, t1);
        assert!(!gate.is_open(t1, 0), "a is still behind");
        assert!(gate.is_open(t0 + MAX_BEHIND, 0), "a stops counting");
        gate.set_behind(a, &mut since_a, false, t1);
        assert!(gate.is_open(t1, 0));
        assert!(
            !gate.is_open(t1, HUB_BACKLOG + 1),
            "the hub's backlog closes it"
        );
    }

    #[test]
    fn held_sessions_are_listed_once_and_rechecked() {
        let t0 = Instant::now();
        let mut gate = InputGate::default();
        let mut held = false;
        assert_eq!(gate.recheck_at(t0), None);
        gate.hold(ClientId(1), &mut held);
        gate.hold(ClientId(1), &mut held);
        assert_eq!(gate.recheck_at(t0), Some(t0 + HUB_RECHECK));
        let mut since = None;
        gate.set_behind(ClientId(2), &mut since, true, t0);
        assert_eq!(gate.recheck_at(t0), Some(t0 + MAX_BEHIND));
        assert_eq!(gate.next_held(), Some(ClientId(1)));
        assert_eq!(gate.next_held(), None);
        assert_eq!(gate.held_count(), 0);
    }
}
