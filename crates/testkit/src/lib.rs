//! End-to-end test support for natter: a real server in-process, listening on real
//! sockets (TCP over IPv4 and IPv6, and a Unix socket), and a scripted client whose
//! every wait is bounded and waits on an event, never on a sleep.
//!
//! ```no_run
//! # async fn example() {
//! use natter_testkit::{TestClient, TestServer};
//! let server = TestServer::start().await;
//! let mut alice = server.user("alice").await;
//! let mut bob = TestClient::connect_unix(&server).await;
//! bob.register("bob").await;
//! alice.send("PRIVMSG bob :hi").await;
//! bob.expect_command("PRIVMSG").await;
//! alice.assert_nothing_more().await;
//! # }
//! ```
//!
//! Absence is asserted the event-based way: [`TestClient::assert_nothing_more`] sends a
//! `PING` with a unique token; the server answers in order, so anything it meant to
//! send before has arrived by the time the `PONG` does.

mod client;
pub mod lossy_proxy;
mod server;

pub use client::{MessageExt, TestClient, DEFAULT_TIMEOUT};
pub use natter_client::{ClientError, Registered, Registration, Target};
pub use natter_proto::Message;
pub use natter_server::{LimitsConfig, ServerConfig};
pub use server::TestServer;

/// The server name every test server answers as (the default configuration's).
pub const SERVER_NAME: &str = "natter.local";
