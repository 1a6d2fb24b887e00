//! Where a client connects.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A server endpoint the client can reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `tcp://HOST:PORT`: `host` may be a name, resolved on connect.
    Tcp { host: String, port: u16 },
    /// `unix:///path/natter.sock`
    Unix { path: PathBuf },
}

impl Target {
    pub fn tcp_addr(addr: SocketAddr) -> Target {
        Target::Tcp {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Target::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}
