//! Reliable mode: one `natter_udp::Session` as a hub client.
//!
//! The session is a state machine (datagrams and ticks in, datagrams and lines out); the
//! UDP task drives it. What this adds is the seam to the hub: lines the hub queued for
//! the client move into the session's send buffer only while it has room, so that a
//! client that does not acknowledge makes the hub's bounded queue fill up and the hub
//! drop it with `SendQ exceeded`, exactly as a TCP client that stops reading.

use std::collections::VecDeque;

use bytes::Bytes;
use natter_proto::{Message, ParseError};
use natter_udp::{CloseReason, Session};

use super::plain::Parsed;
use crate::send_queue::Outgoing;

/// A reliable session and the hub queue it drains.
#[derive(Debug)]
pub(crate) struct ReliableConn {
    pub(crate) session: Session,
    /// Lines taken from the hub's queue (all it had, under one lock) that the session
    /// has not taken yet: they go first once the client acknowledges. Their bytes
    /// still count against the queue's budget until then.
    waiting: VecDeque<Bytes>,
    /// The bytes of `waiting`'s lines, as the queue counted them.
    waiting_bytes: usize,
    /// The hub dropped the queue: once everything is in the session, close it.
    queue_ended: bool,
    close_started: bool,
    /// Why the session ended, once it has; the hub is told after the client's last
    /// lines.
    pub(crate) closed: Option<CloseReason>,
}

impl ReliableConn {
    pub(crate) fn new(session: Session) -> ReliableConn {
        ReliableConn {
            session,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            queue_ended: false,
            close_started: false,
            closed: None,
        }
    }

    /// Called when the session's timers find it with nothing to send and everything
    /// acknowledged: its list of waiting lines goes, and with it, at the next look,
    /// the queue's, if the queue is empty (see `Outgoing::take`), so that an idle
    /// session holds neither. Not at every moment the client has caught up: in a
    /// busy room that is between every two bursts, and the queue would grow its list
    /// again from nothing each time, a reallocation and a copy per doubling.
    pub(crate) fn release_idle(&mut self) {
        if self.waiting.is_empty() && self.session.send_buffer_used() == 0 {
            self.waiting = VecDeque::new();
        }
    }

    /// Moves lines from the hub's queue into the session until the queue is empty or
    /// the session's send buffer is full. When the queue has ended (the hub closed the
    /// client) and every line is in, starts an orderly close. Returns whether the
    /// queue has ended.
    pub(crate) fn feed(&mut self, outgoing: &mut Outgoing) -> bool {
        // Bytes the session took since the queue was last told: freed in the queue's
        // budget with the next take, or at the end, one lock for many lines.
        let mut written = 0;
        loop {
            if self.waiting.is_empty() {
                if self.queue_ended {
                    break;
                }
                let taken = outgoing.take(&mut self.waiting, written);
                written = 0;
                self.waiting_bytes = taken.bytes;
                if !taken.open {
                    self.queue_ended = true;
                }
                if self.waiting.is_empty() {
                    break;
                }
            }
            // The session takes what fits, without the hub's line ends (reliable
            // mode frames lines by length; every line the hub builds ends in CR LF);
            // the rest waits for the client's acks.
            let (_, taken) = self
                .session
                .send_crlf_lines(&mut self.waiting, self.waiting_bytes);
            self.waiting_bytes = self.waiting_bytes.saturating_sub(taken);
            written += taken;
            if !self.waiting.is_empty() {
                break;
            }
        }
        if written > 0 {
            outgoing.written(written);
        }
        if self.queue_ended && self.waiting.is_empty() && !self.close_started {
            self.close_started = true;
            self.session.close();
        }
        self.queue_ended
    }

    /// True while lines from the hub's queue wait for room in the session's send
    /// buffer: the client has not acknowledged enough to take what the hub has for it.
    pub(crate) fn is_backlogged(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The next line the client sent, parsed; `None` when there is none yet. Empty
    /// lines are skipped.
    pub(crate) fn next_line(&mut self) -> Option<Parsed> {
        loop {
            let line = self.session.poll_line()?;
            match Message::parse(&line) {
                Err(ParseError::Empty) => continue,
                parsed => return Some(parsed),
            }
        }
    }
}

/// The quit message the rooms see when a session ends from the client's side.
pub(crate) fn quit_reason(reason: CloseReason) -> String {
    match reason {
        CloseReason::Local | CloseReason::Peer { code: 0 } => "Connection closed".into(),
        CloseReason::Peer { code } => format!("Connection closed (code {code})"),
        CloseReason::IdleTimeout => "Connection timed out".into(),
        CloseReason::HandshakeTimeout => "Handshake timed out".into(),
        CloseReason::Reset => "Connection reset".into(),
    }
}
