//! Where the server listens, written as a URL: one scheme per transport, the same
//! spelling the client uses to connect (`tcp://host:6667`, `unix:///path/natter.sock`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// The port a `tcp://` URL means when it names none: the IRC port everyone knows.
pub const DEFAULT_TCP_PORT: u16 = 6667;

/// A host in a URL: an address is used as is, a name is resolved when binding (and may
/// stand for several addresses, as `localhost` does).
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

/// One listening endpoint. Non-exhaustive because transports arrive one by one
/// (`udp://`, `tls://`, `ws://` are next); code matching on it must say what it does
/// with a scheme it does not know yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListenUrl {
    /// `tcp://HOST:PORT`: plain IRC over TCP. Port 0 asks the system for a free port.
    Tcp { host: Host, port: u16 },
    /// `unix:///path/natter.sock`: a local socket; peers are shown as `localhost`.
    Unix { path: PathBuf },
}

impl ListenUrl {
    /// The URL of a TCP socket bound to `addr`: what the server reports once bound.
    pub fn tcp(addr: SocketAddr) -> ListenUrl {
        ListenUrl::Tcp {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }

    /// The URL of a Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> ListenUrl {
        ListenUrl::Unix { path: path.into() }
    }

    /// The socket address, for a TCP URL whose host is an address (as every bound
    /// address the server reports is): what a test connects to.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            ListenUrl::Tcp {
                host: Host::Ip(ip),
                port,
            } => Some(SocketAddr::new(*ip, *port)),
            _ => None,
        }
    }

    /// The socket file, for a Unix URL.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        match self {
            ListenUrl::Unix { path } => Some(path),
            _ => None,
        }
    }

    /// The scheme, as written before `://`.
    pub fn scheme(&self) -> &'static str {
        match self {
            ListenUrl::Tcp { .. } => "tcp",
            ListenUrl::Unix { .. } => "unix",
        }
    }
}

impl fmt::Display for ListenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenUrl::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            ListenUrl::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Why a listen URL was refused; the message quotes the URL and says what to write
/// instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenUrlError {
    url: String,
    problem: String,
}

impl ListenUrlError {
    fn new(url: &str, problem: impl Into<String>) -> ListenUrlError {
        ListenUrlError {
            url: url.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ListenUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid listen URL '{}': {}", self.url, self.problem)
    }
}

impl std::error::Error for ListenUrlError {}

/// Schemes natter will speak but this build does not listen on yet.
const PLANNED_SCHEMES: &[&str] = &["udp", "tls", "ws", "wss"];

const SUPPORTED: &str = "use tcp://HOST:PORT or unix:///path/to/natter.sock";

impl FromStr for ListenUrl {
    type Err = ListenUrlError;

    fn from_str(url: &str) -> Result<ListenUrl, ListenUrlError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            let hint = if url.starts_with('/') {
                format!("write unix://{url} for a Unix socket")
            } else if url.is_empty() {
                SUPPORTED.to_owned()
            } else {
                format!("write tcp://{url} for TCP, or unix:///path for a Unix socket")
            };
            return Err(ListenUrlError::new(url, format!("no scheme: {hint}")));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" => parse_tcp(url, rest),
            "unix" => {
                if rest.is_empty() {
                    return Err(ListenUrlError::new(
                        url,
                        "no socket path: write unix:///path/to/natter.sock",
                    ));
                }
                Ok(ListenUrl::Unix {
                    path: PathBuf::from(rest),
                })
            }
            s if PLANNED_SCHEMES.contains(&s) => Err(ListenUrlError::new(
                url,
                format!("scheme '{s}' is not supported by this version yet: {SUPPORTED}"),
            )),
            s => Err(ListenUrlError::new(
                url,
                format!("unsupported scheme '{s}': {SUPPORTED}"),
            )),
        }
    }
}

/// `HOST:PORT`, `HOST`, `[V6]:PORT` or `[V6]`, with an optional trailing `/`.
fn parse_tcp(url: &str, rest: &str) -> Result<ListenUrl, ListenUrlError> {
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('?') || authority.contains('#') {
        return Err(ListenUrlError::new(
            url,
            "a tcp:// URL has no path: write tcp://HOST:PORT",
        ));
    }
    if authority.contains('@') {
        return Err(ListenUrlError::new(
            url,
            "a listen URL takes no user name: write tcp://HOST:PORT",
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(ListenUrlError::new(
                url,
                "missing ']' after the IPv6 address: write tcp://[::1]:6667",
            ));
        };
        let ip: std::net::Ipv6Addr = inside
            .parse()
            .map_err(|_| ListenUrlError::new(url, format!("'{inside}' is not an IPv6 address")))?;
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => {
                    return Err(ListenUrlError::new(
                        url,
                        "expected ':PORT' after the IPv6 address",
                    ))
                }
            },
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        if authority.matches(':').count() > 1 {
            return Err(ListenUrlError::new(
                url,
                "an IPv6 address needs brackets: write tcp://[::1]:6667",
            ));
        }
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(ListenUrlError::new(
                url,
                "no host: write tcp://0.0.0.0:PORT for every IPv4 address, tcp://[::]:PORT for every IPv6 address",
            ));
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) if is_hostname(host) => Host::Name(host.to_ascii_lowercase()),
            Err(_) => {
                return Err(ListenUrlError::new(
                    url,
                    format!("'{host}' is neither an IP address nor a host name"),
                ))
            }
        };
        (host, port)
    };
    let port = match port {
        None => DEFAULT_TCP_PORT,
        Some(p) => p.parse::<u16>().map_err(|_| {
            ListenUrlError::new(
                url,
                format!("'{p}' is not a port: give a number from 0 to 65535 (0 picks a free port)"),
            )
        })?,
    };
    Ok(ListenUrl::Tcp { host, port })
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

impl serde::Serialize for ListenUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ListenUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ListenUrl, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn parse(s: &str) -> ListenUrl {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn error(s: &str) -> String {
        match s.parse::<ListenUrl>() {
            Ok(u) => panic!("{s} parsed as {u:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tcp_urls_take_ipv4_ipv6_and_host_names() {
        assert_eq!(
            parse("tcp://127.0.0.1:6667"),
            ListenUrl::tcp(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 6667))
        );
        assert_eq!(
            parse("tcp://[::1]:0"),
            ListenUrl::tcp(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0))
        );
        assert_eq!(
            parse("TCP://Irc.Example.org:7000/"),
            ListenUrl::Tcp {
                host: Host::Name("irc.example.org".into()),
                port: 7000
            }
        );
    }

    #[test]
    fn a_tcp_url_without_port_means_6667() {
        assert_eq!(
            parse("tcp://0.0.0.0").socket_addr(),
            Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 6667))
        );
        assert_eq!(
            parse("tcp://[::]").socket_addr(),
            Some(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 6667))
        );
    }

    #[test]
    fn unix_urls_keep_the_path() {
        assert_eq!(
            parse("unix:///run/natter/natter.sock"),
            ListenUrl::unix("/run/natter/natter.sock")
        );
        assert_eq!(parse("unix://natter.sock"), ListenUrl::unix("natter.sock"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp://127.0.0.1:6667",
            "tcp://[::1]:40123",
            "tcp://localhost:6667",
            "unix:///tmp/x.sock",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
    }

    #[test]
    fn errors_say_what_to_write_instead() {
        let e = error("foo://x");
        assert!(e.contains("unsupported scheme 'foo'"), "{e}");
        assert!(e.contains("tcp://") && e.contains("unix://"), "{e}");
        assert!(error("udp://0.0.0.0:6667").contains("not supported by this version yet"));
        assert!(error("127.0.0.1:6667").contains("write tcp://127.0.0.1:6667"));
        assert!(error("/tmp/x.sock").contains("write unix:///tmp/x.sock"));
        assert!(error("tcp://::1:6667").contains("needs brackets"));
        assert!(error("tcp://[::1:6667").contains("missing ']'"));
        assert!(error("tcp://[nope]:1").contains("not an IPv6 address"));
        assert!(error("tcp://127.0.0.1:99999").contains("is not a port"));
        assert!(error("tcp://127.0.0.1:x").contains("is not a port"));
        assert!(error("tcp://:6667").contains("no host"));
        assert!(error("tcp://h:1/path").contains("no path"));
        assert!(error("tcp://bad_host:1").contains("neither an IP address nor a host name"));
        assert!(error("tcp://1.2.3:1").contains("neither"));
        assert!(error("unix://").contains("no socket path"));
    }
}
