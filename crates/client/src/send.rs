//! Sending messages and waiting until the server has taken each one.
//!
//! Each PRIVMSG goes out with a label (IRCv3 labeled-response). The server answers
//! every label: with the echoed message (echo-message), an `ACK`, or an error. On
//! natter the echo leaves the server only once the message is stored, so an answered
//! label is a message that will not be lost. A server without labeled-response is
//! asked for a `PONG` after the last line instead: weaker, but the best it offers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use natter_proto::Message;

use crate::connection::Connection;
use crate::error::ClientError;
use crate::registration::{refused, Registered};

/// Text longer than this is sent as several messages, so that the relayed line
/// (with the sender's `nick!user@host` in front) still fits in 512 bytes.
pub const MAX_TEXT_BYTES: usize = 400;

/// Lines sent but not yet answered, at most: enough to keep a long link busy,
/// few enough that the server's flood control and queues are not the limit.
const IN_FLIGHT: usize = 64;

/// Splits text into pieces of at most [`MAX_TEXT_BYTES`], at character boundaries.
pub fn split_text(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > MAX_TEXT_BYTES {
        let mut cut = MAX_TEXT_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        // Prefer to cut at a space when there is one in the second half.
        if let Some(space) = rest[..cut].rfind(' ').filter(|s| *s > cut / 2) {
            cut = space + 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Sends each text to `to` as a PRIVMSG and returns once the server has answered
/// them all; the first refusal (no such nick, cannot send to channel, ...) fails.
/// Returns how many messages were sent.
pub async fn send_acknowledged(
    conn: &mut Connection,
    registered: &Registered,
    to: &str,
    texts: &[String],
    timeout: Duration,
) -> Result<usize, ClientError> {
    let pieces: Vec<&str> = texts
        .iter()
        .flat_map(|t| split_text(t))
        .filter(|p| !p.is_empty())
        .collect();
    let labeled = registered.caps.iter().any(|c| c == "labeled-response");
    if !labeled {
        for piece in &pieces {
            conn.send(&format!("PRIVMSG {to} :{piece}")).await?;
        }
        conn.send("PING :natter-send-done").await?;
        conn.wait_for(timeout, "PONG", |m| {
            if m.command == "PONG" {
                return m.params.last().is_some_and(|t| t == "natter-send-done");
            }
            false
        })
        .await?;
        return Ok(pieces.len());
    }
    let mut waiting: HashSet<String> = HashSet::new();
    let mut batches: HashMap<String, String> = HashMap::new();
    let mut next = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    while next < pieces.len() || !waiting.is_empty() {
        while next < pieces.len() && waiting.len() < IN_FLIGHT {
            let label = format!("s{next}");
            conn.send(&format!("@label={label} PRIVMSG {to} :{}", pieces[next]))
                .await?;
            waiting.insert(label);
            next += 1;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = conn.recv_within(left, "acknowledgement").await?;
        let label = msg
            .tag("label")
            .map(str::to_owned)
            .or_else(|| msg.tag("batch").and_then(|b| batches.get(b).cloned()));
        if msg.command == "BATCH" {
            let reference = msg.param(0).unwrap_or("");
            if let (Some(id), Some(label)) = (reference.strip_prefix('+'), &label) {
                batches.insert(id.to_owned(), label.clone());
            } else if let Some(id) = reference.strip_prefix('-') {
                if let Some(label) = batches.remove(id) {
                    waiting.remove(&label);
                }
            }
            continue;
        }
        let Some(label) = label else {
            continue;
        };
        if is_refusal(&msg) {
            return Err(refused(&msg));
        }
        if msg.tag("batch").is_none() {
            waiting.remove(&label);
        }
    }
    Ok(pieces.len())
}

/// An error numeric (4xx, 5xx) or a FAIL standard reply.
fn is_refusal(msg: &Message) -> bool {
    msg.command == "FAIL"
        || (msg.command.len() == 3
            && (msg.command.starts_with('4') || msg.command.starts_with('5')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_split_at_character_boundaries() {
        let text = "é".repeat(300);
        let pieces = split_text(&text);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.len() <= MAX_TEXT_BYTES));
        assert_eq!(split_text("short"), vec!["short"]);
        assert!(split_text("").is_empty());
    }
}
