//! Why the server could not start, worded so the operator knows what to do next.

use std::fmt;
use std::io;
use std::path::PathBuf;

use natter_proto::Endpoint as ListenUrl;

use crate::config::ConfigError;

/// A failure to start: nothing is listening when this is returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    Config(ConfigError),
    /// The data directory could not be created.
    DataDir {
        path: PathBuf,
        source: io::Error,
    },
    /// A host name in a listen URL did not resolve.
    Resolve {
        url: ListenUrl,
        source: io::Error,
    },
    /// A socket could not be bound.
    Bind {
        url: ListenUrl,
        source: io::Error,
    },
    /// A live server already listens on this Unix socket.
    UnixSocketInUse {
        path: PathBuf,
    },
    /// The Unix socket path holds something that is not a socket; natter will not
    /// delete it.
    NotASocket {
        path: PathBuf,
    },
    /// The URL parses, but this build cannot listen on its scheme yet.
    Unsupported {
        url: ListenUrl,
    },
    /// No listener could be bound at all.
    NoListener,
    /// The database in the data directory could not be opened or read.
    Store {
        path: PathBuf,
        message: String,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::DataDir { path, source } => write!(
                f,
                "cannot create the data directory {}: {source} (choose another with --data DIR)",
                path.display()
            ),
            StartError::Resolve { url, source } => write!(
                f,
                "cannot listen on {url}: the host name does not resolve ({source}); give an IP address instead"
            ),
            StartError::Bind { url, source } => {
                write!(f, "cannot listen on {url}: {source}")?;
                match source.kind() {
                    io::ErrorKind::AddrInUse => write!(
                        f,
                        " (another program, perhaps another natter, holds this port: stop it or choose another port with --listen)"
                    ),
                    io::ErrorKind::PermissionDenied => write!(
                        f,
                        " (ports below 1024 and some socket directories need privileges: choose a port above 1024 or another path)"
                    ),
                    io::ErrorKind::AddrNotAvailable => write!(
                        f,
                        " (this machine has no such address: use 0.0.0.0 or [::] for every address, or one of this machine's addresses)"
                    ),
                    io::ErrorKind::NotFound => {
                        write!(f, " (create the socket's directory first)")
                    }
                    _ => Ok(()),
                }
            }
            StartError::UnixSocketInUse { path } => write!(
                f,
                "cannot listen on unix://{}: another server is listening there (stop it or choose another path)",
                path.display()
            ),
            StartError::NotASocket { path } => write!(
                f,
                "cannot listen on unix://{}: the path exists and is not a socket (natter will not delete it; choose another path)",
                path.display()
            ),
            StartError::Store { path, message } => write!(
                f,
                "cannot use the database {}: {message} (check the data directory's permissions and free space, or choose another with --data DIR)",
                path.display()
            ),
            StartError::Unsupported { url } => write!(
                f,
                "cannot listen on {url}: this version does not serve {}:// yet (use tcp://, udp:// or unix://)",
                url.scheme()
            ),
            StartError::NoListener => {
                write!(f, "no listener could be started: give one with --listen")
            }
        }
    }
}

/// The message already holds the underlying error, worded for the operator, so no
/// `source` is given: printing the chain would repeat it.
impl std::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}
