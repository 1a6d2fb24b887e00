//! Where a client connects, written as the same URL the server listens on:
//! `tcp://HOST:PORT`, `udp://HOST:PORT`, `unix:///path/natter.sock`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use natter_proto::{Endpoint, EndpointError, Host};

/// A server endpoint the client can reach.
///
/// `host` is a name or an address; an IPv6 address is kept without its brackets (the
/// URL form adds them back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `tcp://HOST:PORT`: `host` may be a name, resolved on connect.
    Tcp { host: String, port: u16 },
    /// `udp://HOST:PORT`: natter's reliable mode over UDP (see docs/udp.md); `host` may
    /// be a name, resolved on connect.
    Udp { host: String, port: u16 },
    /// `unix:///path/natter.sock`
    Unix { path: PathBuf },
}

impl Target {
    /// The TCP endpoint at `addr`.
    pub fn tcp_addr(addr: SocketAddr) -> Target {
        Target::Tcp {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// The reliable-UDP endpoint at `addr`.
    pub fn udp_addr(addr: SocketAddr) -> Target {
        Target::Udp {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// Parses a URL: `tcp://HOST[:PORT]`, `udp://HOST[:PORT]` (port 6667 when none is
    /// given; an IPv6 address goes in brackets, `udp://[::1]:6667`) or
    /// `unix:///path/natter.sock`. The error quotes the URL and says what to write
    /// instead.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        url.parse()
    }

    /// The scheme, as written before `://`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Target::Tcp { .. } => "tcp",
            Target::Udp { .. } => "udp",
            Target::Unix { .. } => "unix",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { host, port } | Target::Udp { host, port } if host.contains(':') => {
                write!(f, "{}://[{host}]:{port}", self.scheme())
            }
            Target::Tcp { host, port } | Target::Udp { host, port } => {
                write!(f, "{}://{host}:{port}", self.scheme())
            }
            Target::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Why a URL is not a target; the message quotes it and says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
    message: String,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TargetError {}

impl From<EndpointError> for TargetError {
    fn from(e: EndpointError) -> TargetError {
        TargetError {
            message: e.to_string(),
        }
    }
}

impl TryFrom<&Endpoint> for Target {
    type Error = TargetError;

    /// The place to connect to that `endpoint` names. A port of 0 means "any free port"
    /// to a listener and nothing to a client.
    fn try_from(endpoint: &Endpoint) -> Result<Target, TargetError> {
        let host_port = |host: &Host, port: u16| {
            if port == 0 {
                return Err(TargetError {
                    message: format!(
                        "invalid URL '{endpoint}': port 0 picks a free port for a listener; \
                         give the port the server listens on, e.g. {}://HOST:6667",
                        endpoint.scheme()
                    ),
                });
            }
            let host = match host {
                Host::Ip(ip) => ip.to_string(),
                Host::Name(name) => name.clone(),
            };
            Ok((host, port))
        };
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let (host, port) = host_port(host, *port)?;
                Ok(Target::Tcp { host, port })
            }
            Endpoint::Udp { host, port } => {
                let (host, port) = host_port(host, *port)?;
                Ok(Target::Udp { host, port })
            }
            Endpoint::Unix { path } => Ok(Target::Unix { path: path.clone() }),
            other => Err(TargetError {
                message: format!(
                    "invalid URL '{other}': this client does not speak {}:// yet; \
                     use tcp://, udp:// or unix://",
                    other.scheme()
                ),
            }),
        }
    }
}

impl FromStr for Target {
    type Err = TargetError;

    /// The URL grammar is natter-proto's [`Endpoint`], shared with the server's
    /// `--listen`, so both sides spell and explain URLs alike.
    fn from_str(url: &str) -> Result<Target, TargetError> {
        let endpoint: Endpoint = url.parse()?;
        Target::try_from(&endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Target {
        Target::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn error(s: &str) -> String {
        match Target::parse(s) {
            Ok(t) => panic!("{s} parsed as {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_transport_has_a_url() {
        assert_eq!(
            parse("tcp://127.0.0.1:6667"),
            Target::Tcp {
                host: "127.0.0.1".into(),
                port: 6667
            }
        );
        assert_eq!(
            parse("udp://[::1]:7000"),
            Target::Udp {
                host: "::1".into(),
                port: 7000
            }
        );
        assert_eq!(
            parse("UDP://Irc.Example.org/"),
            Target::Udp {
                host: "irc.example.org".into(),
                port: 6667
            }
        );
        assert_eq!(
            parse("unix:///run/natter.sock"),
            Target::Unix {
                path: "/run/natter.sock".into()
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp://127.0.0.1:6667",
            "udp://[::1]:40123",
            "udp://localhost:6667",
            "unix:///tmp/x.sock",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
        let addr: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(Target::udp_addr(addr).to_string(), "udp://[::1]:9");
    }

    #[test]
    fn errors_say_what_to_write_instead() {
        let e = error("foo://x");
        assert!(
            e.contains("unsupported scheme 'foo'") && e.contains("udp://"),
            "{e}"
        );
        assert!(error("tls://h:1").contains("not supported by this version yet"));
        assert!(error("127.0.0.1:6667").contains("write tcp://127.0.0.1:6667"));
        assert!(error("/tmp/x.sock").contains("write unix:///tmp/x.sock"));
        assert!(error("udp://::1:6667").contains("needs brackets"));
        assert!(error("udp://[::1:6667").contains("missing ']'"));
        assert!(error("udp://[nope]:1").contains("not an IPv6 address"));
        assert!(error("udp://[::1]x").contains("expected ':PORT'"));
        assert!(error("udp://127.0.0.1:99999").contains("is not a port"));
        assert!(error("udp://127.0.0.1:0").contains("give the port the server listens on"));
        assert!(error("tcp://:6667").contains("no host"));
        assert!(error("udp://h:1/path").contains("no path"));
        assert!(error("udp://bob@h:1").contains("no user name"));
        assert!(error("tcp://bad_host:1").contains("neither an IP address nor a host name"));
        assert!(error("unix://").contains("no socket path"));
        assert!(error("").contains("no scheme"));
    }
}
