//! The `natter` binary as an operator meets it: it starts, says where it listens,
//! serves, stops cleanly on SIGTERM, and its tools print what they promise.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn natter() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_natter"));
    command.env_remove("RUST_LOG").env_remove("NATTER_CONFIG");
    command
}

/// Kills the server if a test fails before stopping it.
struct Running(Option<Child>);

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("still running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts a server command with its log piped: the running server, and its log lines.
fn start_logging(command: &mut Command) -> (Running, mpsc::Receiver<String>) {
    let child = command
        .env_remove("RUST_LOG")
        .env_remove("NATTER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("natter starts");
    let mut server = Running(Some(child));
    let stderr = lines_of(server.child().stderr.take().expect("stderr piped"));
    (server, stderr)
}

/// Lines of a stream, read on a thread so that every wait can be bounded.
fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs a command that should exit by itself; kills it if it does not in time.
fn run_bounded(command: &mut Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("natter runs");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(output) => output.expect("natter's output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("natter did not exit within {WAIT:?}");
        }
    }
}

fn wait_for(lines: &mpsc::Receiver<String>, what: &str, want: impl Fn(&str) -> bool) -> String {
    loop {
        match lines.recv_timeout(WAIT) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no {what} within {WAIT:?}: {e}"),
        }
    }
}

/// Sends the server SIGTERM, as an init system stopping it would.
fn sigterm(server: &mut Running) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child().id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the server to log the end of its shutdown and exit with success.
fn exits_cleanly(mut server: Running, stderr: &mpsc::Receiver<String>) {
    wait_for(stderr, "shutdown log", |l| l.contains("shutdown complete"));
    let (tx, rx) = mpsc::channel();
    let mut child = server.0.take().expect("still running");
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let exit = rx
        .recv_timeout(WAIT)
        .expect("natter exits in time")
        .expect("wait works");
    assert!(exit.success(), "{exit}");
}

#[test]
fn serve_logs_its_address_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (mut server, stderr) = start_logging(
        natter()
            .args(["serve", "--listen", "tcp://127.0.0.1:0", "--data"])
            .arg(&data),
    );

    let listening = wait_for(&stderr, "listening line", |l| l.contains("listening on "));
    let url = listening
        .rsplit("listening on ")
        .next()
        .expect("a URL follows");
    let addr: SocketAddr = url
        .strip_prefix("tcp://")
        .expect("a tcp URL")
        .parse()
        .expect("a socket address");
    assert_ne!(addr.port(), 0, "the real port is logged");
    assert!(data.is_dir(), "the data directory is created");

    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    writer
        .write_all(b"NICK zed\r\nUSER zed 0 * :Zed\r\n")
        .expect("send");
    let replies = lines_of(stream);
    wait_for(&replies, "001", |l| l.contains(" 001 zed "));

    sigterm(&mut server);
    wait_for(&replies, "ERROR", |l| l == "ERROR :Server shutting down");
    exits_cleanly(server, &stderr);
}

/// A SIGTERM that comes as soon as the server says where it listens still stops it
/// cleanly: its handlers are in place before it serves anyone.
#[test]
fn sigterm_while_starting_still_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut server, stderr) = start_logging(
        natter()
            .args(["serve", "--listen", "tcp://127.0.0.1:0", "--data"])
            .arg(dir.path().join("data")),
    );
    wait_for(&stderr, "listening line", |l| l.contains("listening on "));
    sigterm(&mut server);
    exits_cleanly(server, &stderr);
}

#[test]
fn a_bad_listen_url_stops_the_server_with_a_helpful_message() {
    let output = run_bounded(natter().args(["serve", "--listen", "foo://x"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported scheme 'foo'"), "{stderr}");
    assert!(stderr.contains("tcp://"), "{stderr}");
}

#[test]
fn an_unknown_config_key_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("natter.toml");
    std::fs::write(&path, "[limits]\nflood_brust = 3\n").expect("write config");
    let output = run_bounded(natter().args(["serve", "--config"]).arg(&path));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("flood_brust"), "{stderr}");
    assert!(stderr.contains("natter.toml"), "{stderr}");
}

#[test]
fn hash_password_prints_a_hash_that_verifies() {
    let mut child = natter()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("natter runs");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(b"correct horse\n")
        .expect("write password");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx
        .recv_timeout(WAIT)
        .expect("natter exits in time")
        .expect("natter's output");
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).expect("utf-8");
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(natter_server::password::verify_password(
        "correct horse",
        hash
    ));
    assert!(!natter_server::password::verify_password(
        "correct horse\n",
        hash
    ));
}

#[test]
fn config_example_is_a_valid_configuration() {
    let output = run_bounded(natter().arg("config-example"));
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let config = natter_server::ServerConfig::from_toml(&text).expect("parses");
    assert_eq!(config, natter_server::ServerConfig::default());
}

#[test]
fn print_config_shows_flags_merged_over_defaults() {
    let output = run_bounded(natter().args([
        "serve",
        "--print-config",
        "--listen",
        "unix:///tmp/natter-x.sock",
        "--flood-burst",
        "0",
    ]));
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let config = natter_server::ServerConfig::from_toml(&text).expect("parses");
    assert_eq!(config.listen[0].to_string(), "unix:///tmp/natter-x.sock");
    assert_eq!(config.limits.flood_burst, 0);
}

/// Started with a soft open-file limit of 64 (as a shell or service manager may give
/// it), the server raises it for `max_connections` and holds more clients than 64
/// files would allow, instead of failing to accept them ("Too many open files").
#[test]
fn serve_raises_a_low_open_file_limit_to_hold_its_connections() {
    const CLIENTS: usize = 150;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (_server, stderr) = start_logging(
        Command::new("sh")
            .args(["-c", "ulimit -Sn 64 && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_natter"))
            .args([
                "serve",
                "--listen",
                "tcp://127.0.0.1:0",
                "--max-connections",
                "200",
                "--connections-per-ip",
                "0",
                "--flood-burst",
                "0",
                "--data",
            ])
            .arg(&data),
    );
    let raised = wait_for(&stderr, "open-file limit line", |l| {
        l.contains("open-file limit")
    });
    assert!(
        raised.contains("raised the open-file limit from 64 to 264"),
        "{raised}"
    );
    let listening = wait_for(&stderr, "listening line", |l| l.contains("listening on "));
    let addr: SocketAddr = listening
        .rsplit("listening on tcp://")
        .next()
        .expect("a URL follows")
        .parse()
        .expect("a socket address");

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        write!(stream, "NICK fd{i}\r\nUSER fd{i} 0 * :fd\r\n").expect("send");
        clients.push(BufReader::new(stream));
    }
    for (i, reader) in clients.iter_mut().enumerate() {
        let welcome = format!(" 001 fd{i} ");
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .expect("a reply within the timeout");
            assert!(read > 0, "client {i} was closed: {line}");
            assert!(!line.starts_with("ERROR"), "client {i} refused: {line}");
            if line.contains(&welcome) {
                break;
            }
        }
    }
}

/// `natter bench` runs itself again with mimalloc's settings for a load generator
/// (memory committed up front and kept: crates/natter/src/generator_memory.rs), and
/// leaves them alone when the user set any of them.
#[test]
fn bench_takes_the_generators_memory_settings_unless_the_user_set_them() {
    // Nothing listens on a port just given up: the bench ends at once, after mimalloc
    // printed the options it runs with.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let bench = |extra: Option<(&str, &str)>| {
        let mut command = natter();
        command.env("MIMALLOC_VERBOSE", "1");
        if let Some((name, value)) = extra {
            command.env(name, value);
        }
        command.args(["bench", &url, "--scenario", "connect", "--clients", "1"]);
        String::from_utf8_lossy(&run_bounded(&mut command).stderr).into_owned()
    };
    let tuned = bench(None);
    assert!(tuned.contains("option 'arena_eager_commit': 1"), "{tuned}");
    assert!(tuned.contains("option 'purge_delay': -1"), "{tuned}");
    let own = bench(Some(("MIMALLOC_PURGE_DELAY", "250")));
    assert!(own.contains("option 'purge_delay': 250"), "{own}");
    assert!(!own.contains("option 'arena_eager_commit': 1"), "{own}");
}
