//! What connection tasks, the clock and the shutdown path tell the hub task.

use natter_hub::{ClientId, ClientInfo};
use natter_proto::{Message, ParseError};

use crate::send_queue::SendQueue;

/// One input for the hub. Lines arrive parsed: parsing happens on the connection
/// tasks, in parallel, so the single hub task only does the chat logic.
#[derive(Debug)]
pub(crate) enum Event {
    /// A connection was admitted; lines for it go into `queue`.
    Connected {
        id: ClientId,
        info: ClientInfo,
        queue: SendQueue,
    },
    Line(ClientId, Message),
    /// Lines of one client read together, in order, each parsed or not: one place
    /// in the hub's queue and one wake for a burst, where a line each cost a
    /// quarter of what a direct message costs the hub's side of the queue.
    Lines(ClientId, Vec<Result<Message, ParseError>>),
    /// A line that could not be parsed, or was too long to frame.
    BadLine(ClientId, ParseError),
    /// The peer went away, or writing to it failed; `reason` is its quit message.
    Disconnected(ClientId, String),
    /// A password check asked for by the hub finished.
    PasswordChecked {
        ticket: u64,
        ok: bool,
    },
    /// The store finished a job the hub asked for.
    StoreDone {
        ticket: u64,
        outcome: natter_hub::StoreOutcome,
    },
    /// The store finished the write jobs `tickets`, all committed in one transaction
    /// (or none of them): one event for a whole group commit.
    StoresDone {
        tickets: Vec<u64>,
        outcome: natter_hub::StoreOutcome,
    },
    /// A password was hashed for a new account (`None`: hashing failed).
    PasswordHashed {
        ticket: u64,
        hash: Option<String>,
    },
    /// The accounts in the database changed (`natter account`, SIGHUP): read them
    /// again.
    ReloadAccounts,
    /// A second passed.
    Tick,
    /// The server is stopping: tell every client and close.
    Shutdown,
}

impl Event {
    /// How many of the hub's units of work it is: its lines, or one.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Event::Lines(_, lines) => lines.len(),
            _ => 1,
        }
    }
}
