//! natter's client library: a line connection to a natter (or any IRC) server over
//! every transport (`tcp://`, `unix://`, and `udp://` in natter's reliable mode),
//! registration, and sending that waits for the server's word that each line was taken.
//!
//! `natter send`, `natter bench` and the end-to-end tests are built on it.

mod connection;
mod error;
mod registration;
mod send;
mod target;
mod udp;
mod udp_socket;

pub use connection::Connection;
pub use error::ClientError;
pub use registration::{register, Registered, Registration};
pub use send::{send_acknowledged, split_text, MAX_TEXT_BYTES};
pub use target::{Target, TargetError};

/// The reliable session's settings, for [`Connection::connect_with`].
pub use natter_udp::Config as UdpConfig;
pub use udp::{client_config as udp_config, LineSender, LineTaker, CLIENT_INITIAL_RTO};
