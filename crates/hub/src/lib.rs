//! The hub: natter's whole chat state (nicknames, sessions, rooms, modes, presence)
//! as a state machine with no I/O.
//!
//! The server feeds it events ([`Hub::connect`], [`Hub::line`], [`Hub::disconnect`],
//! [`Hub::tick`]) stamped with the time ([`Now`]), and carries out what it puts in the
//! [`Outbox`]: lines to deliver to clients and [`Effect`]s such as closing a
//! connection. Tests drive it directly and assert on the outbox.

mod accounts;
mod caps;
mod channel;
mod client;
mod config;
mod fanout;
mod history;
mod hub;
mod maps;
mod mask;
mod messaging;
mod modes;
mod monitor;
mod names;
mod oper;
mod outbox;
mod persistence;
mod queries;
mod read_marker;
mod registration;
mod rooms;
mod tickets;
mod time;

pub use caps::Cap;
pub use client::{ClientId, ClientInfo, Transport};
pub use config::{HubConfig, Limits, OperAccount};
pub use hub::Hub;
pub use maps::{Map, Set};
pub use natter_store::{
    Account, HistoryQuery, MessageParts, Selector, StoredMessage, TargetActivity, Write,
};
pub use outbox::{Effect, Outbox};
pub use persistence::{StoreJob, StoreOutcome};
pub use time::Now;
