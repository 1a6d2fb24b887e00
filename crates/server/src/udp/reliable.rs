//! Reliable mode: one `natter_udp::Session` as a hub client.
//!
//! The session is a state machine (datagrams and ticks in, datagrams and lines out); the
//! UDP task drives it. What this adds is the seam to the hub: lines the hub queued for
//! the client move into the session's send buffer only while it has room, so that a
//! client that does not acknowledge makes the hub's bounded queue fill up and the hub
//! drop it with `SendQ exceeded`, exactly as a TCP client that stops reading.

use bytes::Bytes;
use natter_proto::{Message, ParseError};
use natter_udp::{CloseReason, SendError, Session};
use tokio::sync::mpsc::error::TryRecvError;

use super::plain::Parsed;
use crate::send_queue::Outgoing;

/// A reliable session and the hub queue it drains.
#[derive(Debug)]
pub(crate) struct ReliableConn {
    pub(crate) session: Session,
    /// A line taken from the hub's queue that the session had no room for: it goes
    /// first once the client acknowledges. Its bytes still count against the queue's
    /// budget until then.
    pending: Option<Bytes>,
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
            pending: None,
            queue_ended: false,
            close_started: false,
            closed: None,
        }
    }

    /// Moves lines from the hub's queue into the session until the queue is empty or
    /// the session's send buffer is full. When the queue has ended (the hub closed the
    /// client) and every line is in, starts an orderly close. Returns whether the
    /// queue has ended.
    pub(crate) fn feed(&mut self, outgoing: &mut Outgoing) -> bool {
        loop {
            let line = match self.pending.take() {
                Some(line) => line,
                None => match outgoing.lines.try_recv() {
                    Ok(line) => line,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.queue_ended = true;
                        break;
                    }
                },
            };
            match self.session.send_line(strip_line_end(&line)) {
                Ok(()) => outgoing.written(line.len()),
                Err(SendError::Full) => {
                    self.pending = Some(line);
                    break;
                }
                // Closing or closed (the client left), or a line no frame can hold:
                // nobody will read it.
                Err(SendError::NotOpen | SendError::TooLong) => outgoing.written(line.len()),
            }
        }
        if self.queue_ended && self.pending.is_none() && !self.close_started {
            self.close_started = true;
            self.session.close();
        }
        self.queue_ended
    }

    /// True while a line from the hub's queue waits for room in the session's send
    /// buffer: the client has not acknowledged enough to take what the hub has for it.
    pub(crate) fn is_backlogged(&self) -> bool {
        self.pending.is_some()
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

/// The hub's lines end in CR LF; reliable mode frames lines by length instead.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_stripped_for_the_length_framing() {
        assert_eq!(strip_line_end(b"PING :x\r\n"), b"PING :x");
        assert_eq!(strip_line_end(b"PING :x\n"), b"PING :x");
        assert_eq!(strip_line_end(b"PING :x"), b"PING :x");
    }
}
