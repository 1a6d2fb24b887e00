//! A natter server running inside the test process, on real sockets.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::Location;
use std::path::{Path, PathBuf};

use natter_client::{Registration, Target};
use natter_server::{ListenUrl, Server, ServerConfig};
use tempfile::TempDir;

use crate::client::TestClient;

/// A server listening on `127.0.0.1`, `[::1]` (when the host has IPv6) and a Unix
/// socket, each on a free port or a fresh path, and on UDP at `127.0.0.1`, with its
/// data in a temporary directory. It stops when dropped, or with [`TestServer::stop`]
/// to wait until it has.
///
/// Every test gets its own server, so tests run in parallel without sharing state.
pub struct TestServer {
    /// `None` once stopped.
    server: Option<Server>,
    config: ServerConfig,
    v4: Option<SocketAddr>,
    v6: Option<SocketAddr>,
    unix: Option<PathBuf>,
    udp: Option<SocketAddr>,
    /// Holds the Unix socket and the data directory; removed on drop, after the
    /// server (fields drop in order).
    dir: TempDir,
}

impl TestServer {
    /// Starts a server with the default configuration (apart from where it listens and
    /// keeps its data).
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `configure` may change first: limits,
    /// MOTD, password, even the listeners.
    ///
    /// ```no_run
    /// # async fn example() {
    /// let server = natter_testkit::TestServer::start_with(|cfg| {
    ///     cfg.limits.registration_timeout = 1;
    /// })
    /// .await;
    /// # }
    /// ```
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("natter-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for the server: {e}"));
        let mut listen = vec![ListenUrl::tcp(SocketAddr::new(
            Ipv4Addr::LOCALHOST.into(),
            0,
        ))];
        if has_ipv6_loopback() {
            listen.push(ListenUrl::tcp(SocketAddr::new(
                Ipv6Addr::LOCALHOST.into(),
                0,
            )));
        }
        listen.push(ListenUrl::unix(dir.path().join("natter.sock")));
        listen.push(ListenUrl::udp(SocketAddr::new(
            Ipv4Addr::LOCALHOST.into(),
            0,
        )));
        let mut config = ServerConfig {
            listen,
            data_dir: dir.path().join("data"),
            ..ServerConfig::default()
        };
        configure(&mut config);
        let server = Server::bind(config.clone())
            .await
            .unwrap_or_else(|e| panic!("the test server did not start: {e}"));
        let tcp = server.tcp_addrs();
        let v4 = tcp.iter().copied().find(|a| a.is_ipv4());
        let v6 = tcp.iter().copied().find(|a| a.is_ipv6());
        let unix = server.unix_paths().into_iter().next();
        let udp = server.udp_addrs().into_iter().next();
        TestServer {
            server: Some(server),
            config,
            v4,
            v6,
            unix,
            udp,
            dir,
        }
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Where the server keeps its files.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// A temporary directory that lives as long as the server, for a test's own files.
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The IPv4 TCP address (`127.0.0.1:port`).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.v4
            .unwrap_or_else(|| panic!("the test server has no IPv4 TCP listener"))
    }

    /// The IPv6 TCP address (`[::1]:port`). Fails the test on a host without IPv6
    /// loopback, with a message saying so.
    pub fn v6_addr(&self) -> SocketAddr {
        self.v6.unwrap_or_else(|| {
            panic!(
                "the test server has no IPv6 listener: this host cannot bind [::1] \
                 (enable IPv6 on the loopback interface to run this test)"
            )
        })
    }

    /// The Unix socket's path.
    pub fn unix_path(&self) -> &Path {
        self.unix
            .as_deref()
            .unwrap_or_else(|| panic!("the test server has no Unix socket listener"))
    }

    /// The UDP address (`127.0.0.1:port`): plain and reliable mode (docs/udp.md).
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
            .unwrap_or_else(|| panic!("the test server has no UDP listener"))
    }

    /// What the server's UDP sockets did so far (sessions, drops).
    pub fn udp_stats(&self) -> natter_server::UdpStats {
        self.server
            .as_ref()
            .map(Server::udp_stats)
            .unwrap_or_default()
    }

    /// Where a client reaches the IPv4 listener.
    pub fn tcp_target(&self) -> Target {
        Target::tcp_addr(self.tcp_addr())
    }

    /// Where a client reaches the IPv6 listener.
    pub fn v6_target(&self) -> Target {
        Target::tcp_addr(self.v6_addr())
    }

    /// Where a client reaches the Unix socket.
    pub fn unix_target(&self) -> Target {
        Target::Unix {
            path: self.unix_path().to_owned(),
        }
    }

    /// A client connected over IPv4 TCP and registered as `nick`, without capabilities:
    /// the usual cast member of a test.
    #[track_caller]
    pub fn user<'a>(&'a self, nick: &'a str) -> impl Future<Output = TestClient> + 'a {
        let at = Location::caller();
        async move {
            let mut client = TestClient::connect_tcp(self).await;
            client.register_at(at, Registration::new(nick)).await;
            client
        }
    }

    /// A client connected over IPv4 TCP and registered as `nick` with `caps`, every one
    /// of which must be acknowledged.
    #[track_caller]
    pub fn user_with_caps<'a>(
        &'a self,
        nick: &'a str,
        caps: &'a [&'a str],
    ) -> impl Future<Output = TestClient> + 'a {
        let at = Location::caller();
        async move {
            let mut client = TestClient::connect_tcp(self).await;
            client.register_with_caps_at(at, nick, caps).await;
            client
        }
    }

    /// Shuts the server down gracefully and waits until it has: every client is sent
    /// `ERROR :Server shutting down` and the listeners are closed when this returns.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Dropping the server starts its shutdown; nothing here can wait for it.
        self.server.take();
    }
}

/// Whether this host can listen on `[::1]`: containers and CI machines sometimes
/// have IPv6 turned off, and the IPv4 and Unix tests should still run there.
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0)).is_ok()
}
