//! `natter send` as a script meets it: over reliable UDP through a lossy proxy that
//! also moves it to a new port in mid-stream (closing the old one), every line arrives once and in order at a
//! TCP client and the command exits 0; a nick that does not exist and a server that is
//! not there make it exit 1 with a message saying what failed.
//!
//! The proxy prints its seed; `NATTER_PROXY_SEED=<seed>` replays its decisions.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use natter_testkit::lossy_proxy::{Faults, LossyProxy, ProxyConfig};
use natter_testkit::{MessageExt, TestClient, TestServer};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// Bound of every wait; a passing test ends each on an event long before.
const WAIT: Duration = Duration::from_secs(20);

/// A server (the test server listens on UDP at 127.0.0.1 too) with flood control
/// off, and its UDP address.
async fn udp_server() -> (TestServer, SocketAddr) {
    let server = TestServer::start_with(|config| {
        config.limits.flood_burst = 0;
        config.limits.flood_rate_per_sec = 0.0;
    })
    .await;
    let udp = server.udp_addr();
    (server, udp)
}

fn natter_send(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_natter"));
    command
        .arg("send")
        .arg(url)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a `natter send` that is given all its input up front; returns its status and
/// standard error.
async fn run(mut command: Command, stdin: &str) -> (ExitStatus, String) {
    let mut child = command.stdin(Stdio::piped()).spawn().expect("natter runs");
    feed(&mut child, stdin).await;
    finish(child).await
}

async fn feed(child: &mut Child, input: &str) {
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    // Written on the side, so a large input cannot block the test while natter is
    // busy; dropping the pipe at the end is natter's end of input.
    tokio::spawn(async move {
        let _ = stdin.write_all(input.as_bytes()).await;
    });
}

async fn finish(child: Child) -> (ExitStatus, String) {
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("natter send exits in time")
        .expect("natter send ran");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn natter_send_over_lossy_udp_with_a_rebind_delivers_every_line_once_in_order() {
    let (server, udp) = udp_server().await;
    let proxy = LossyProxy::start(udp, ProxyConfig::new(Faults::lossy(0.1)).seed(5)).await;
    let seed = proxy.seed();
    let mut bob = TestClient::connect_tcp(&server).await.with_timeout(WAIT);
    bob.register("bob").await;
    bob.join("#ops").await;

    let count = 1000;
    let lines: Vec<String> = (0..count).map(|i| format!("alert {i:04}")).collect();
    let started = Instant::now();
    let url = format!("udp://{}", proxy.addr());
    let mut child = natter_send(&url, &["--nick", "alerts", "--to", "#ops"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("natter runs");
    feed(&mut child, &(lines.join("\n") + "\n")).await;

    bob.expect_that("the sender's JOIN", |m| {
        m.command == "JOIN" && m.is_from("alerts")
    })
    .await;
    for (i, want) in lines.iter().enumerate() {
        // A third of the way in, the sender's address changes under it, and its old
        // port closes: what the server sends there is lost.
        if i == count / 3 {
            proxy.rebind_abruptly().await;
        }
        let msg = bob
            .expect_that(&format!("PRIVMSG {want} (seed {seed})"), |m| {
                m.command == "PRIVMSG" || m.is_from("alerts")
            })
            .await;
        assert_eq!(
            msg.command,
            "PRIVMSG",
            "the sender left before line {i}: {} (seed {seed})",
            msg.line()
        );
        assert_eq!(
            msg.text(),
            want,
            "line {i} missing, duplicated or out of order (seed {seed})"
        );
    }
    let (status, stderr) = finish(child).await;
    assert!(
        status.success(),
        "natter send failed ({status}): {stderr} (seed {seed})"
    );
    // It leaves the room when it is done, and nothing else arrives: no duplicates.
    let part = bob
        .expect_that("the sender's QUIT", |m| m.is_from("alerts"))
        .await;
    assert_eq!(part.command, "QUIT", "{}", part.line());
    bob.assert_nothing_more().await;
    let stats = proxy.stats();
    assert_eq!(stats.rebinds, 1);
    assert!(
        stats.server_data_at_new_port > 0,
        "the server never moved the session to the new port: {stats:?} (seed {seed})"
    );
    eprintln!(
        "natter send: {count} lines through {}, one rebind, in {:?}; {stats:?}",
        Faults::lossy(0.1),
        started.elapsed()
    );
}

#[tokio::test]
async fn natter_send_with_a_message_argument_sends_it_to_a_nick() {
    let (server, udp) = udp_server().await;
    let mut bob = server.user("bob").await;
    let (status, stderr) = run(
        natter_send(
            &format!("udp://{udp}"),
            &["--nick", "ci", "--to", "bob", "build", "42", "passed"],
        ),
        "",
    )
    .await;
    assert!(status.success(), "{status}: {stderr}");
    bob.expect_privmsg("ci", "bob", "build 42 passed").await;
}

#[tokio::test]
async fn natter_send_to_a_nick_that_does_not_exist_fails_saying_so() {
    let (_server, udp) = udp_server().await;
    let (status, stderr) = run(
        natter_send(&format!("udp://{udp}"), &["--nick", "ci", "--to", "nobody"]),
        "hello\n",
    )
    .await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("natter send: nobody: No such nick/channel (401)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn natter_send_to_a_port_where_nothing_listens_fails_at_once() {
    let port = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("addr").port()
    };
    let url = format!("udp://127.0.0.1:{port}");
    let started = Instant::now();
    let (status, stderr) = run(natter_send(&url, &["--nick", "ci", "--to", "bob"]), "hi\n").await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("natter send: cannot connect to {url}")),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn natter_send_to_a_silent_server_gives_up_after_its_timeout() {
    // Bound, so the system does not answer for it, and never answering.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let url = format!("udp://{}", silent.local_addr().expect("addr"));
    let (status, stderr) = run(
        natter_send(&url, &["--nick", "ci", "--to", "bob", "--timeout", "1"]),
        "hi\n",
    )
    .await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("natter send: cannot connect to {url}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn natter_send_refuses_a_bad_url_before_connecting() {
    let (status, stderr) = run(natter_send("udp://", &["--nick", "ci", "--to", "bob"]), "").await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid URL 'udp://'"), "{stderr}");
}
