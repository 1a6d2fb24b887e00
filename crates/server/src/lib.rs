//! natter's runtime: everything around the sans-IO hub that touches sockets, clocks
//! and signals.
//!
//! One task owns the [`natter_hub::Hub`]; connection tasks read, frame and parse
//! lines in parallel and send them to it as events; the hub task delivers what the hub
//! emits into one bounded queue per connection, which that connection's writer drains
//! in coalesced writes. Limits (connections per IP, flood control, send queue) are
//! enforced here, at the edge, so the hub only sees well-behaved traffic.
//!
//! Start a server with [`Server::bind`]; it serves until [`Server::shutdown`] (or a
//! [`ShutdownHandle`], or a signal with [`Server::run_until_signal`]).

mod config;
mod conn_limit;
mod connection;
mod error;
mod event;
mod hub_task;
mod listener;
pub mod open_files;
pub mod password;
mod queued_lines;
mod send_queue;
mod server;
mod store_worker;
mod token_bucket;
mod tracker;
mod udp;

pub use config::{
    default_listen, CaseMappingSetting, ConfigError, LimitsConfig, OperConfig, ServerConfig,
    DEFAULT_MOTD, EXAMPLE_TOML, MIN_SENDQ_BYTES,
};
pub use conn_limit::{ConnectionLimiter, ConnectionPermit, Refusal};
pub use error::StartError;
/// Where the server listens: the URL grammar shared with the client
/// ([`natter_proto::Endpoint`]), also under the names the server has always used.
pub use natter_proto::{
    Endpoint, Endpoint as ListenUrl, EndpointError, EndpointError as ListenUrlError, Host,
    DEFAULT_TCP_PORT, DEFAULT_UDP_PORT,
};
pub use server::{Server, ShutdownHandle, StopSignals, DATABASE_FILE, PID_FILE};
pub use token_bucket::TokenBucket;
pub use udp::UdpStats;
