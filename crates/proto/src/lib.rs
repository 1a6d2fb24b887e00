//! The IRC wire grammar as natter speaks it: one line type for every transport.
//!
//! Nothing here does I/O. The server frames bytes into lines with [`LineFramer`],
//! parses each once with [`Message::parse`], and serializes replies with
//! [`LineWriter`], which writes straight into a buffer so that one delivered
//! message is encoded once and fanned out as shared bytes. [`Endpoint`] is the URL
//! grammar (`tcp://`, `udp://`, `unix://`) that the server and the client share.

mod casemap;
mod command;
mod endpoint;
mod framing;
mod limits;
mod message;
pub mod numeric;
mod params;
mod tags;
mod validate;
mod writer;

pub use casemap::CaseMapping;
pub use command::Command;
pub use endpoint::{Endpoint, EndpointError, Host, DEFAULT_TCP_PORT, DEFAULT_UDP_PORT};
pub use framing::{FramedLine, LineFramer};
pub use limits::{
    MAX_BODY_BYTES, MAX_CLIENT_TAG_BYTES, MAX_LINE_BYTES, MAX_PARAMS, MAX_SERVER_TAG_BYTES,
};
pub use message::{Message, ParseError, Tag};
pub use params::Params;
pub use tags::{escape_tag_value, unescape_tag_value};
pub use validate::{is_valid_channel, is_valid_nick, is_valid_tag_key};
pub use writer::LineWriter;
