//! natter's UDP layer, sans-IO: datagrams and clock ticks in, datagrams and lines out.
//!
//! UDP carries IRC in two modes on one socket (see `docs/udp.md` for the wire format):
//!
//! - **Plain mode**, for any client (`nc -u`, a five-line script): each datagram holds
//!   IRC lines and the source address is the session. This crate supplies its stateless
//!   address check ([`Cookies::plain_token`]), its anti-amplification rule
//!   ([`amplification::reply_limit`], [`pack_reply`]) and datagram packing ([`pack_lines`], [`pack_next`]);
//!   the server does the rest.
//! - **Reliable mode**, for natter's own client: a [`Session`] with a stateless,
//!   cookie-validated handshake ([`Listener`]), acknowledgements and retransmission on an
//!   RFC 6298 timer ([`rtt`]), in-order exactly-once lines, a send window, keepalive,
//!   orderly close with a linger, and roaming to a new client address after validating it.
//!
//! Nothing here opens a socket, reads a clock or draws a random number: the owner passes
//! in `Instant`s, datagrams, the cookie key and the client nonce. That makes every
//! behaviour testable deterministically, and lets one state machine serve the tokio
//! server, the client library and the simulated lossy network of the tests.
//!
//! Server outline:
//!
//! ```text
//! match natter_udp::route(&buf) {
//!     Route::Plain => plain_mode(from, &buf),
//!     Route::Session(id) if sessions.contains_key(&id) => sessions[id].handle_datagram(now, from, &buf),
//!     _ => match listener.handle(now, from, &buf) {
//!         Incoming::Reply(t) => socket.send_to(&t.datagram, t.to),
//!         Incoming::Accept(a) => sessions.entry(a.session_id())
//!             .or_insert_with(|| a.into_session(now, config.clone()))
//!             .handle_datagram(now, from, &buf),
//!         Incoming::Drop(_) => {}
//!     },
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acks;
pub mod amplification;
mod config;
mod congestion;
pub mod cookie;
mod line_batches;
mod listener;
mod path_mtu;
mod ranges;
mod recovery;
mod recv_stream;
pub mod rtt;
mod send_stream;
mod session;
mod stats;
pub mod wire;

pub use amplification::{pack_lines, pack_next, pack_reply, Budget, Reply};
pub use config::{Config, INITIAL_MAX_OFFSET};
pub use cookie::{Cookie, Cookies, Purpose};
pub use listener::{route, Accept, DropReason, Incoming, Listener, Route};
pub use rtt::RttEstimator;
pub use send_stream::SendError;
pub use session::{CloseReason, Event, Role, Session, State, Transmit, MAX_INITIAL_INTERVAL};
pub use stats::{ListenerStats, Stats};
