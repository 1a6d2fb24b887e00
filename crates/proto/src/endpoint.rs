//! Where natter talks, written as a URL: one scheme per transport, the same spelling
//! on both sides (`natter serve --listen tcp://0.0.0.0:6667`, and a client connecting
//! to `tcp://chat.example.org:6667`). Parsing only: no name is resolved and no socket
//! is opened here, so the server and the client share one grammar and one set of
//! error messages.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The port a `tcp://` URL means when it names none: the IRC port everyone knows.
pub const DEFAULT_TCP_PORT: u16 = 6667;

/// The port a `udp://` URL means when it names none: the same number as TCP, so that
/// one port number serves both transports.
pub const DEFAULT_UDP_PORT: u16 = 6667;

/// A host in a URL: an address is used as is, a name is resolved when binding or
/// connecting (and may stand for several addresses, as `localhost` does).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// One endpoint: where a server listens or where a client connects. Non-exhaustive
/// because transports arrive one by one (`tls://`, `ws://` are next); code matching on
/// it must say what it does with a scheme it does not know yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `tcp://HOST:PORT`: plain IRC over TCP. Port 0 asks the system for a free port.
    Tcp { host: Host, port: u16 },
    /// `udp://HOST:PORT`: IRC lines in datagrams, plain or reliable mode (docs/udp.md).
    /// Port 0 asks the system for a free port.
    Udp { host: Host, port: u16 },
    /// `unix:///path/natter.sock`: a local socket; peers are shown as `localhost`.
    Unix { path: PathBuf },
}

impl Endpoint {
    /// The URL of a TCP socket at `addr`: what the server reports once bound.
    pub fn tcp(addr: SocketAddr) -> Endpoint {
        Endpoint::Tcp {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }

    /// The URL of a UDP socket at `addr`.
    pub fn udp(addr: SocketAddr) -> Endpoint {
        Endpoint::Udp {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }

    /// The URL of a Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Endpoint {
        Endpoint::Unix { path: path.into() }
    }

    /// The socket address, for a TCP or UDP URL whose host is an address (as every
    /// bound address the server reports is): what a test connects to. `None` for a
    /// host name (resolve it first) and for a Unix socket.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp {
                host: Host::Ip(ip),
                port,
            }
            | Endpoint::Udp {
                host: Host::Ip(ip),
                port,
            } => Some(SocketAddr::new(*ip, *port)),
            _ => None,
        }
    }

    /// The host and port, for a TCP or UDP URL.
    pub fn host_port(&self) -> Option<(&Host, u16)> {
        match self {
            Endpoint::Tcp { host, port } | Endpoint::Udp { host, port } => Some((host, *port)),
            Endpoint::Unix { .. } => None,
        }
    }

    /// The socket file, for a Unix URL.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix { path } => Some(path),
            _ => None,
        }
    }

    /// The scheme, as written before `://`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Tcp { .. } => "tcp",
            Endpoint::Udp { .. } => "udp",
            Endpoint::Unix { .. } => "unix",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Udp { host, port } => write!(f, "udp://{host}:{port}"),
            Endpoint::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Why a URL was refused; the message quotes the URL and says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointError {
    url: String,
    problem: String,
}

impl EndpointError {
    fn new(url: &str, problem: impl Into<String>) -> EndpointError {
        EndpointError {
            url: url.to_owned(),
            problem: problem.into(),
        }
    }

    /// The URL as it was given.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid URL '{}': {}", self.url, self.problem)
    }
}

impl std::error::Error for EndpointError {}

/// Schemes natter will speak but this build does not yet.
const PLANNED_SCHEMES: &[&str] = &["tls", "ws", "wss"];

const SUPPORTED: &str = "use tcp://HOST:PORT, udp://HOST:PORT or unix:///path/to/natter.sock";

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(url: &str) -> Result<Endpoint, EndpointError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            let hint = if url.starts_with('/') {
                format!("write unix://{url} for a Unix socket")
            } else if url.is_empty() {
                SUPPORTED.to_owned()
            } else {
                format!(
                    "write tcp://{url} for TCP, udp://{url} for UDP, or unix:///path for a Unix socket"
                )
            };
            return Err(EndpointError::new(url, format!("no scheme: {hint}")));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" => {
                let (host, port) = parse_authority(url, "tcp", rest, DEFAULT_TCP_PORT)?;
                Ok(Endpoint::Tcp { host, port })
            }
            "udp" => {
                let (host, port) = parse_authority(url, "udp", rest, DEFAULT_UDP_PORT)?;
                Ok(Endpoint::Udp { host, port })
            }
            "unix" => {
                if rest.is_empty() {
                    return Err(EndpointError::new(
                        url,
                        "no socket path: write unix:///path/to/natter.sock",
                    ));
                }
                Ok(Endpoint::Unix {
                    path: PathBuf::from(rest),
                })
            }
            s if PLANNED_SCHEMES.contains(&s) => Err(EndpointError::new(
                url,
                format!("scheme '{s}' is not supported by this version yet: {SUPPORTED}"),
            )),
            s => Err(EndpointError::new(
                url,
                format!("unsupported scheme '{s}': {SUPPORTED}"),
            )),
        }
    }
}

/// `HOST:PORT`, `HOST`, `[V6]:PORT` or `[V6]`, with an optional trailing `/`.
fn parse_authority(
    url: &str,
    scheme: &str,
    rest: &str,
    default_port: u16,
) -> Result<(Host, u16), EndpointError> {
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('?') || authority.contains('#') {
        return Err(EndpointError::new(
            url,
            format!("a {scheme}:// URL has no path: write {scheme}://HOST:PORT"),
        ));
    }
    if authority.contains('@') {
        return Err(EndpointError::new(
            url,
            format!("a natter URL takes no user name: write {scheme}://HOST:PORT"),
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(EndpointError::new(
                url,
                format!("missing ']' after the IPv6 address: write {scheme}://[::1]:6667"),
            ));
        };
        let ip: std::net::Ipv6Addr = inside
            .parse()
            .map_err(|_| EndpointError::new(url, format!("'{inside}' is not an IPv6 address")))?;
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => {
                    return Err(EndpointError::new(
                        url,
                        "expected ':PORT' after the IPv6 address",
                    ))
                }
            },
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        if authority.matches(':').count() > 1 {
            return Err(EndpointError::new(
                url,
                format!("an IPv6 address needs brackets: write {scheme}://[::1]:6667"),
            ));
        }
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(EndpointError::new(
                url,
                format!(
                    "no host: write {scheme}://0.0.0.0:PORT for every IPv4 address, {scheme}://[::]:PORT for every IPv6 address"
                ),
            ));
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) if is_hostname(host) => Host::Name(host.to_ascii_lowercase()),
            Err(_) => {
                return Err(EndpointError::new(
                    url,
                    format!("'{host}' is neither an IP address nor a host name"),
                ))
            }
        };
        (host, port)
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().map_err(|_| {
            EndpointError::new(
                url,
                format!("'{p}' is not a port: give a number from 0 to 65535 (0 picks a free port)"),
            )
        })?,
    };
    Ok((host, port))
}

/// Letters, digits, `-` and `.` in labels of 1 to 63 bytes (RFC 1123), and not all
/// digits and dots (that would be a malformed IPv4 address).
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// As a string, the URL itself: what a configuration file holds.
#[cfg(feature = "serde")]
impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Endpoint, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn parse(s: &str) -> Endpoint {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn error(s: &str) -> String {
        match s.parse::<Endpoint>() {
            Ok(u) => panic!("{s} parsed as {u:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tcp_urls_take_ipv4_ipv6_and_host_names() {
        assert_eq!(
            parse("tcp://127.0.0.1:6667"),
            Endpoint::tcp(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 6667))
        );
        assert_eq!(
            parse("tcp://[::1]:0"),
            Endpoint::tcp(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0))
        );
        assert_eq!(
            parse("TCP://Irc.Example.org:7000/"),
            Endpoint::Tcp {
                host: Host::Name("irc.example.org".into()),
                port: 7000
            }
        );
    }

    #[test]
    fn udp_urls_take_the_same_hosts_as_tcp() {
        assert_eq!(
            parse("udp://127.0.0.1:6667"),
            Endpoint::udp(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 6667))
        );
        assert_eq!(
            parse("udp://[::1]:0").socket_addr(),
            Some(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0))
        );
        assert_eq!(
            parse("UDP://LocalHost"),
            Endpoint::Udp {
                host: Host::Name("localhost".into()),
                port: DEFAULT_UDP_PORT
            }
        );
        assert_eq!(parse("udp://[::]:1").scheme(), "udp");
        assert_ne!(parse("udp://1.2.3.4:5"), parse("tcp://1.2.3.4:5"));
    }

    #[test]
    fn a_url_without_port_means_6667() {
        assert_eq!(
            parse("tcp://0.0.0.0").socket_addr(),
            Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 6667))
        );
        assert_eq!(
            parse("tcp://[::]").socket_addr(),
            Some(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 6667))
        );
        assert_eq!(
            parse("udp://0.0.0.0").socket_addr(),
            Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 6667))
        );
    }

    #[test]
    fn unix_urls_keep_the_path() {
        assert_eq!(
            parse("unix:///run/natter/natter.sock"),
            Endpoint::unix("/run/natter/natter.sock")
        );
        assert_eq!(parse("unix://natter.sock"), Endpoint::unix("natter.sock"));
        assert_eq!(parse("unix://natter.sock").socket_addr(), None);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp://127.0.0.1:6667",
            "tcp://[::1]:40123",
            "tcp://localhost:6667",
            "udp://127.0.0.1:6667",
            "udp://[::1]:40123",
            "unix:///tmp/x.sock",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
    }

    #[test]
    fn errors_say_what_to_write_instead() {
        let e = error("foo://x");
        assert!(e.contains("unsupported scheme 'foo'"), "{e}");
        assert!(e.contains("invalid URL 'foo://x'"), "{e}");
        assert!(
            e.contains("tcp://") && e.contains("udp://") && e.contains("unix://"),
            "{e}"
        );
        assert!(error("tls://0.0.0.0:6697").contains("not supported by this version yet"));
        assert!(error("ws://0.0.0.0:8080").contains("not supported by this version yet"));
        assert!(error("wss://0.0.0.0:8443").contains("not supported by this version yet"));
        assert!(error("127.0.0.1:6667").contains("write tcp://127.0.0.1:6667"));
        assert!(error("127.0.0.1:6667").contains("udp://127.0.0.1:6667"));
        assert!(error("/tmp/x.sock").contains("write unix:///tmp/x.sock"));
        assert!(error("tcp://::1:6667").contains("needs brackets"));
        assert!(error("udp://::1:6667").contains("write udp://[::1]:6667"));
        assert!(error("tcp://[::1:6667").contains("missing ']'"));
        assert!(error("tcp://[nope]:1").contains("not an IPv6 address"));
        assert!(error("tcp://127.0.0.1:99999").contains("is not a port"));
        assert!(error("udp://127.0.0.1:x").contains("is not a port"));
        assert!(error("tcp://:6667").contains("no host"));
        assert!(error("udp://h:1/path").contains("a udp:// URL has no path"));
        assert!(error("tcp://u@h:1").contains("no user name"));
        assert!(error("tcp://bad_host:1").contains("neither an IP address nor a host name"));
        assert!(error("tcp://1.2.3:1").contains("neither"));
        assert!(error("unix://").contains("no socket path"));
        assert!(error("").contains("use tcp://"));
    }
}
