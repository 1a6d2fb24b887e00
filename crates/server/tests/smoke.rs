//! The server's own concerns, over real sockets: it listens where it is told, a client
//! can register over every transport, limits hold, and shutdown tells clients.
//! (The chat itself is specified by the end-to-end tests and the hub's own tests.)

use std::path::Path;
use std::time::{Duration, Instant};

use natter_server::{ListenUrl, Server, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::timeout;

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

type Reader = BufReader<Box<dyn AsyncRead + Unpin + Send>>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// A line-oriented test client over TCP or a Unix socket.
struct Client {
    reader: Reader,
    writer: Writer,
}

impl Client {
    async fn tcp(addr: std::net::SocketAddr) -> Client {
        let stream = timeout(WAIT, tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (r, w) = stream.into_split();
        Client {
            reader: BufReader::new(Box::new(r)),
            writer: Box::new(w),
        }
    }

    async fn unix(path: &Path) -> Client {
        let stream = timeout(WAIT, tokio::net::UnixStream::connect(path))
            .await
            .expect("connect in time")
            .expect("connect");
        let (r, w) = stream.into_split();
        Client {
            reader: BufReader::new(Box::new(r)),
            writer: Box::new(w),
        }
    }

    async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("send");
    }

    /// The next line, without its terminator; `None` at end of stream.
    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = timeout(WAIT, self.reader.read_line(&mut line))
            .await
            .expect("a line in time")
            .ok()?;
        (n > 0).then(|| line.trim_end().to_owned())
    }

    /// Reads until a line satisfies `want`, and returns it.
    async fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        loop {
            match self.line().await {
                Some(line) if want(&line) => return line,
                Some(_) => {}
                None => panic!("connection closed while waiting for {what}"),
            }
        }
    }

    async fn register(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.send(&format!("USER {nick} 0 * :Test {nick}")).await;
        let welcome = self.until("001", |l| numeric(l) == Some("001")).await;
        assert!(welcome.contains(nick), "{welcome}");
    }

    /// Reads until the server closes the connection; returns the lines read.
    async fn until_closed(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.line().await {
            lines.push(line);
        }
        lines
    }
}

/// The command or numeric of a server line: `:server 001 nick :Welcome` → `001`.
fn numeric(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix(':')
        .map_or(line, |l| l.split_once(' ').map_or("", |(_, rest)| rest));
    rest.split(' ').next()
}

/// A configuration for a test server on `listen`, with its data under `data`.
fn config(listen: &[&str], data: &Path) -> ServerConfig {
    ServerConfig {
        listen: listen
            .iter()
            .map(|u| u.parse().expect("valid listen URL"))
            .collect(),
        data_dir: data.join("data"),
        ..ServerConfig::default()
    }
}

async fn start(config: ServerConfig) -> Server {
    timeout(WAIT, Server::bind(config))
        .await
        .expect("bind in time")
        .expect("server starts")
}

/// Why a server did not start.
async fn start_error(config: ServerConfig) -> String {
    match timeout(WAIT, Server::bind(config)).await {
        Ok(Ok(_)) => panic!("the server started"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => panic!("bind did not return in time"),
    }
}

/// Shuts a server down gracefully, in bounded time.
async fn stop(server: Server) {
    timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown completes in time");
}

#[tokio::test]
async fn a_client_registers_over_ipv4_tcp_on_a_picked_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(config(&["tcp://127.0.0.1:0"], dir.path())).await;
    let addr = server.tcp_addrs()[0];
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert_eq!(server.local_addrs()[0], ListenUrl::tcp(addr));
    assert!(dir.path().join("data").is_dir(), "the data dir is created");

    let mut client = Client::tcp(addr).await;
    client.register("alice").await;
    stop(server).await;
}

#[tokio::test]
async fn a_client_registers_over_ipv6_tcp() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(config(&["tcp://[::1]:0"], dir.path())).await;
    let addr = server.tcp_addrs()[0];
    assert!(addr.is_ipv6(), "{addr}");
    assert!(server.local_addrs()[0]
        .to_string()
        .starts_with("tcp://[::1]:"));

    let mut client = Client::tcp(addr).await;
    client.register("bob").await;
    stop(server).await;
}

#[tokio::test]
async fn a_client_registers_over_a_unix_socket_and_the_file_goes_with_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("natter.sock");
    // A socket file left behind by a server that died.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    assert!(path.exists());

    let url = format!("unix://{}", path.display());
    let server = start(config(&[&url], dir.path())).await;
    assert_eq!(server.unix_paths(), vec![path.clone()]);
    assert_eq!(server.local_addrs()[0].to_string(), url);

    let mut client = Client::unix(&path).await;
    client.register("carol").await;
    client.send("WHOIS carol").await;
    let whois = client.until("311", |l| numeric(l) == Some("311")).await;
    assert!(
        whois.contains("localhost"),
        "unix peers are localhost: {whois}"
    );

    stop(server).await;
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn a_second_server_does_not_steal_a_live_unix_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("unix://{}", dir.path().join("natter.sock").display());
    let first = start(config(&[&url], dir.path())).await;
    let error = start_error(config(&[&url], dir.path())).await;
    assert!(error.contains("another server is listening"), "{error}");
    stop(first).await;
}

#[tokio::test]
async fn a_taken_port_is_reported_with_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = start(config(&["tcp://127.0.0.1:0"], dir.path())).await;
    let taken = first.local_addrs()[0].to_string();
    let message = start_error(config(&[&taken], dir.path())).await;
    assert!(
        message.contains(&taken) && message.contains("--listen"),
        "{message}"
    );
    stop(first).await;
}

#[tokio::test]
async fn a_connection_over_the_per_ip_limit_gets_an_error_and_is_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(&["tcp://127.0.0.1:0"], dir.path());
    config.limits.connections_per_ip = 2;
    let server = start(config).await;
    let addr = server.tcp_addrs()[0];

    let mut first = Client::tcp(addr).await;
    first.register("first").await;
    let mut second = Client::tcp(addr).await;
    second.register("second").await;

    let mut third = Client::tcp(addr).await;
    let lines = third.until_closed().await;
    assert_eq!(lines, vec!["ERROR :Too many connections from your IP"]);

    // The admitted clients are untouched.
    first.send("PING :still-here").await;
    first.until("PONG", |l| l.contains("still-here")).await;
    stop(server).await;
}

#[tokio::test]
async fn shutdown_tells_every_client_and_closes_the_listeners() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(config(&["tcp://127.0.0.1:0"], dir.path())).await;
    let addr = server.tcp_addrs()[0];
    let mut registered = Client::tcp(addr).await;
    registered.register("dave").await;
    let mut unregistered = Client::tcp(addr).await;
    unregistered.send("NICK eve").await;
    // A round trip, so the server has surely seen this client before shutdown.
    unregistered.send("PING :sync").await;
    unregistered.until("PONG", |l| l.contains("sync")).await;

    let handle = server.shutdown_handle();
    let stopped = tokio::spawn(server.wait());
    handle.shutdown();

    for client in [&mut registered, &mut unregistered] {
        let lines = client.until_closed().await;
        assert_eq!(
            lines.last().map(String::as_str),
            Some("ERROR :Server shutting down"),
            "{lines:?}"
        );
    }
    timeout(WAIT, stopped)
        .await
        .expect("shutdown completes in time")
        .expect("no panic");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn flood_control_delays_lines_but_keeps_the_client() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(&["tcp://127.0.0.1:0"], dir.path());
    config.limits.flood_burst = 2;
    config.limits.flood_rate_per_sec = 20.0;
    let server = start(config).await;
    let mut client = Client::tcp(server.tcp_addrs()[0]).await;

    let started = Instant::now();
    let burst: String = (0..6).map(|i| format!("PING :n{i}\r\n")).collect();
    client
        .writer
        .write_all(burst.as_bytes())
        .await
        .expect("send");
    for i in 0..6 {
        client.until("PONG", |l| l.contains(&format!("n{i}"))).await;
    }
    // Two lines pass at once, the other four wait 50 ms each.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    stop(server).await;
}

#[tokio::test]
async fn an_overlong_line_is_refused_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(config(&["tcp://127.0.0.1:0"], dir.path())).await;
    let mut client = Client::tcp(server.tcp_addrs()[0]).await;
    client.register("frank").await;
    client
        .send(&format!("PRIVMSG frank :{}", "x".repeat(20_000)))
        .await;
    client.until("417", |l| numeric(l) == Some("417")).await;
    client.send("PING :after").await;
    client.until("PONG", |l| l.contains("after")).await;
    stop(server).await;
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_with_sendq_exceeded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(&["tcp://127.0.0.1:0"], dir.path());
    config.limits.sendq_bytes = natter_server::MIN_SENDQ_BYTES;
    config.limits.flood_burst = 0;
    let server = start(config).await;
    let addr = server.tcp_addrs()[0];

    let mut observer = Client::tcp(addr).await;
    observer.register("watcher").await;
    observer.send("JOIN #room").await;
    observer
        .until("JOIN", |l| l.contains("JOIN") && l.contains("#room"))
        .await;

    let mut flooder = Client::tcp(addr).await;
    flooder.register("sink").await;
    flooder.send("JOIN #room").await;
    flooder
        .until("JOIN", |l| l.contains("JOIN") && l.contains("#room"))
        .await;
    observer
        .until("sink's JOIN", |l| l.starts_with(":sink!"))
        .await;

    // Ask for far more replies than socket buffers and the send queue hold, and read
    // none of them. Bounded: 40 MB of replies at most.
    let token = "y".repeat(400);
    let mut writer = flooder.writer;
    let flood = tokio::spawn(async move {
        let chunk: String = (0..100).map(|_| format!("PING :{token}\r\n")).collect();
        for _ in 0..1000 {
            if writer.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        writer
    });

    let quit = observer
        .until("sink's QUIT", |l| {
            l.starts_with(":sink!") && l.contains("QUIT")
        })
        .await;
    assert!(quit.contains("SendQ exceeded"), "{quit}");
    flood.abort();
    stop(server).await;
}
