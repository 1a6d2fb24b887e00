//! What can go wrong talking to a server, each said so that the user knows what to do.

use std::fmt;
use std::io;
use std::time::Duration;

/// A failure of a client operation.
#[derive(Debug)]
pub enum ClientError {
    /// The connection could not be made or broke.
    Io { context: String, source: io::Error },
    /// The server closed the connection, with its `ERROR` text if it sent one.
    Closed { reason: Option<String> },
    /// The server refused something, with the numeric or FAIL it sent.
    Refused { code: String, text: String },
    /// Nothing came back in time.
    TimedOut {
        waiting_for: String,
        after: Duration,
    },
    /// The server sent a line that is not IRC.
    Protocol(String),
}

impl ClientError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ClientError {
        ClientError::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io { context, source } => write!(f, "{context}: {source}"),
            ClientError::Closed { reason: Some(r) } => {
                write!(f, "the server closed the connection: {r}")
            }
            ClientError::Closed { reason: None } => write!(f, "the server closed the connection"),
            ClientError::Refused { code, text } => write!(f, "the server refused ({code}): {text}"),
            ClientError::TimedOut { waiting_for, after } => {
                write!(
                    f,
                    "no {waiting_for} from the server within {} s",
                    after.as_secs_f32()
                )
            }
            ClientError::Protocol(what) => {
                write!(f, "the server sent something that is not IRC: {what}")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
