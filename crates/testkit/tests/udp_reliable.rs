//! natter's reliable UDP mode, end to end: a natter-client `udp://` connection talks to
//! the real server through the lossy proxy, and a TCP client counts what arrives.
//!
//! Every line must arrive exactly once and in order whatever the proxy does (loss,
//! duplication, reordering, delay), and a client whose address changes in mid-stream
//! keeps its session (no QUIT, no new registration) without losing a line. Each test
//! prints the proxy's seed; `NATTER_PROXY_SEED=<seed>` replays its decisions.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_client::{
    register, send_acknowledged, udp_config, Connection, Registered, Registration, UdpConfig,
};
use natter_testkit::lossy_proxy::{Faults, LossyProxy, ProxyConfig};
use natter_testkit::{MessageExt, TestClient, TestServer};

/// Lines per test, as the issue asks.
const LINES: usize = 1000;

/// Bound of every wait in these tests; a passing test ends each wait on an event long
/// before.
const WAIT: Duration = Duration::from_secs(20);

const CAPS: &[&str] = &["echo-message", "labeled-response", "batch", "message-tags"];

/// A server (the test server listens on UDP at 127.0.0.1 too) with flood control off (these tests send
/// a thousand lines at once on purpose), and its UDP address.
async fn udp_server() -> (TestServer, SocketAddr) {
    let server = TestServer::start_with(|config| {
        config.limits.flood_burst = 0;
        config.limits.flood_rate_per_sec = 0.0;
    })
    .await;
    let udp = server.udp_addr();
    (server, udp)
}

/// A natter-client connection over reliable UDP through `proxy`, registered as `nick`.
async fn udp_user(proxy: &LossyProxy, nick: &str) -> (Connection, Registered) {
    let seed = proxy.seed();
    let mut conn = tokio::time::timeout(WAIT, Connection::connect(&proxy.target()))
        .await
        .unwrap_or_else(|_| panic!("{nick}: no UDP handshake within {WAIT:?} (seed {seed})"))
        .unwrap_or_else(|e| panic!("{nick}: {e} (seed {seed})"));
    let registration = Registration {
        timeout: WAIT,
        ..Registration::new(nick).caps(CAPS)
    };
    let registered = register(&mut conn, &registration)
        .await
        .unwrap_or_else(|e| panic!("{nick} cannot register over UDP: {e} (seed {seed})"));
    for cap in CAPS {
        assert!(
            registered.caps.iter().any(|c| c == cap),
            "{cap} not acknowledged: {:?}",
            registered.caps
        );
    }
    (conn, registered)
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line {i:04}")).collect()
}

/// Reads PRIVMSGs from `sender` to `to` until `expected` have arrived, and checks they
/// are exactly `expected`, in order. Any QUIT or JOIN from the sender means its session
/// broke and it came back: a failure here.
async fn expect_lines(
    receiver: &mut TestClient,
    sender: &str,
    to: &str,
    expected: &[String],
    seed: u64,
) {
    for (i, want) in expected.iter().enumerate() {
        let msg = receiver
            .expect_that(
                &format!("PRIVMSG {want} from {sender} (seed {seed})"),
                |m| m.command == "PRIVMSG" || m.is_from(sender),
            )
            .await;
        assert_eq!(
            msg.command,
            "PRIVMSG",
            "{sender} left and came back before line {i}: {} (seed {seed})",
            msg.line()
        );
        assert!(msg.is_from(sender), "{} (seed {seed})", msg.line());
        assert!(msg.param(0).is_some_and(|t| t.eq_ignore_ascii_case(to)));
        assert_eq!(
            msg.text(),
            want,
            "line {i} missing, duplicated or out of order (seed {seed})"
        );
    }
    // Nothing more: no duplicate trails behind the last line.
    receiver.assert_nothing_more().await;
}

/// 1000 lines from a UDP client through `faults`, to a TCP client in a room.
///
/// The faults start once the client has registered and joined: what is measured here
/// is the lines. (At 30% loss each way, a handshake and registration alone take from
/// a few hundred milliseconds to over ten seconds, as retransmission timers back off
/// before the first round-trip sample; the test below and `natter send`'s run through
/// loss from the first datagram.)
async fn thousand_lines_through(faults: Faults, seed: u64) {
    let (server, udp) = udp_server().await;
    let config = ProxyConfig {
        to_server: Faults::NONE,
        to_client: Faults::NONE,
        ..ProxyConfig::new(faults).seed(seed)
    };
    let proxy = LossyProxy::start(udp, config).await;
    let seed = proxy.seed();
    let mut bob = TestClient::connect_tcp(&server).await.with_timeout(WAIT);
    bob.register("bob").await;
    bob.join("#loss").await;
    let (mut alice, registered) = udp_user(&proxy, "alice").await;
    alice.send("JOIN #loss").await.expect("join");
    alice
        .wait_for(WAIT, "JOIN", |m| m.command == "JOIN")
        .await
        .unwrap_or_else(|e| panic!("alice cannot join: {e} (seed {seed})"));
    bob.expect_that("alice's JOIN", |m| {
        m.command == "JOIN" && m.is_from("alice")
    })
    .await;

    proxy.set_faults(faults, faults).await;
    let lines = numbered(0..LINES);
    let started = Instant::now();
    let sent = send_acknowledged(&mut alice, &registered, "#loss", &lines, WAIT)
        .await
        .unwrap_or_else(|e| panic!("not every line was acknowledged: {e} (seed {seed})"));
    assert_eq!(sent, LINES);
    let acknowledged = started.elapsed();
    expect_lines(&mut bob, "alice", "#loss", &lines, seed).await;
    eprintln!(
        "{LINES} lines through {faults}: acknowledged in {acknowledged:?}, all at bob in {:?}; {:?}",
        started.elapsed(),
        proxy.stats()
    );
    let _ = alice.shutdown().await;
}

#[tokio::test]
async fn a_thousand_lines_arrive_once_and_in_order_over_a_perfect_path() {
    thousand_lines_through(Faults::NONE, 1).await;
}

#[tokio::test]
async fn a_thousand_lines_arrive_once_and_in_order_through_10_percent_loss() {
    thousand_lines_through(Faults::lossy(0.10), 10).await;
}

#[tokio::test]
async fn a_thousand_lines_arrive_once_and_in_order_through_30_percent_loss() {
    thousand_lines_through(Faults::lossy(0.30), 30).await;
}

#[tokio::test]
async fn registration_and_a_message_get_through_30_percent_loss_from_the_first_datagram() {
    let (server, udp) = udp_server().await;
    let proxy = LossyProxy::start(udp, ProxyConfig::new(Faults::lossy(0.30)).seed(31)).await;
    let seed = proxy.seed();
    let mut bob = server.user("bob").await;
    let started = Instant::now();
    let (mut alice, registered) = udp_user(&proxy, "alice").await;
    let registered_after = started.elapsed();
    send_acknowledged(&mut alice, &registered, "bob", &numbered(0..10), WAIT)
        .await
        .unwrap_or_else(|e| panic!("not acknowledged: {e} (seed {seed})"));
    bob.set_timeout(WAIT);
    expect_lines(&mut bob, "alice", "bob", &numbered(0..10), seed).await;
    eprintln!(
        "through 30% loss: registered in {registered_after:?}, 10 lines at bob in {:?}; {:?}",
        started.elapsed(),
        proxy.stats()
    );
    let _ = alice.shutdown().await;
}

/// A client whose address changes keeps its session: `abrupt` closes the old port at
/// once (what the server sends there is lost), else it still passes datagrams on.
async fn roaming_keeps_the_session(abrupt: bool, seed: u64) {
    let (server, udp) = udp_server().await;
    let proxy = LossyProxy::start(udp, ProxyConfig::new(Faults::lossy(0.1)).seed(seed)).await;
    let seed = proxy.seed();
    let mut bob = TestClient::connect_tcp(&server).await.with_timeout(WAIT);
    bob.register("bob").await;
    let (mut alice, registered) = udp_user(&proxy, "alice").await;

    let lines = numbered(0..LINES);
    let started = Instant::now();
    // A third of the way in, the client's address changes: a third before and after
    // the first rebind, then a second one.
    for (n, chunk) in lines.chunks(LINES / 3 + 1).enumerate() {
        if n > 0 {
            if abrupt {
                proxy.rebind_abruptly().await;
            } else {
                proxy.rebind().await;
            }
        }
        send_acknowledged(&mut alice, &registered, "bob", chunk, WAIT)
            .await
            .unwrap_or_else(|e| {
                panic!("after {n} rebinds, not every line was acknowledged: {e} (seed {seed})")
            });
    }
    let stats = proxy.stats();
    assert_eq!(stats.rebinds, 2);
    assert!(
        stats.server_data_at_new_port > 0,
        "the server never moved the session to the new port: {stats:?} (seed {seed})"
    );
    expect_lines(&mut bob, "alice", "bob", &lines, seed).await;
    // Same session, same registration: alice is still alice, and answers.
    alice.send("PING :still-here").await.expect("ping");
    alice
        .wait_for(WAIT, "PONG", |m| {
            m.command == "PONG" && m.params.last().is_some_and(|t| t == "still-here")
        })
        .await
        .unwrap_or_else(|e| panic!("the session did not survive: {e} (seed {seed})"));
    eprintln!(
        "{LINES} lines with 2 rebinds (abrupt: {abrupt}) in {:?}; {stats:?}",
        started.elapsed()
    );
    let _ = alice.shutdown().await;
}

#[tokio::test]
async fn a_client_whose_address_changes_keeps_its_session_and_every_line() {
    roaming_keeps_the_session(false, 21).await;
}

#[tokio::test]
async fn a_client_that_leaves_its_old_address_at_once_keeps_its_session_and_every_line() {
    roaming_keeps_the_session(true, 22).await;
}

/// A UDP user and a TCP user talk both ways: the server's lines reach the UDP client
/// through loss as reliably as the client's reach the server.
#[tokio::test]
async fn lines_to_a_udp_client_arrive_once_and_in_order_through_loss() {
    let (server, udp) = udp_server().await;
    let proxy = LossyProxy::start(udp, ProxyConfig::new(Faults::lossy(0.2)).seed(7)).await;
    let seed = proxy.seed();
    let (mut alice, _) = udp_user(&proxy, "alice").await;
    let mut bob = server
        .user_with_caps("bob", &["echo-message", "labeled-response", "batch"])
        .await;
    let bob_registered = bob.registered().cloned().expect("registered");
    let lines = numbered(0..LINES);
    send_acknowledged(bob.connection(), &bob_registered, "alice", &lines, WAIT)
        .await
        .expect("bob's lines acknowledged");
    for (i, want) in lines.iter().enumerate() {
        let msg = alice
            .wait_for(WAIT, "PRIVMSG", |m| m.command == "PRIVMSG")
            .await
            .unwrap_or_else(|e| panic!("line {i}: {e} (seed {seed})"));
        assert_eq!(msg.text(), want, "line {i} (seed {seed})");
    }
    let _ = alice.shutdown().await;
}

/// A client that is only waiting (nothing in flight) when its address changes cannot
/// know it: the server's lines go to the old address until the client's next datagram,
/// its keepalive PING, shows the new one. So the keepalive bounds how long it goes
/// deaf; `natter send` uses 1 s for that reason.
#[tokio::test]
async fn a_waiting_client_whose_address_changes_hears_again_within_its_keepalive() {
    let (server, udp) = udp_server().await;
    let proxy = LossyProxy::start(udp, ProxyConfig::new(Faults::NONE).seed(40)).await;
    let keepalive = Duration::from_secs(1);
    let config = UdpConfig {
        keepalive,
        ..udp_config()
    };
    let mut alice = tokio::time::timeout(WAIT, Connection::connect_with(&proxy.target(), config))
        .await
        .expect("handshake in time")
        .expect("connects");
    register(&mut alice, &Registration::new("alice"))
        .await
        .expect("registers");
    let mut bob = server.user("bob").await;
    // The old port closes: what the server sends there is lost.
    proxy.rebind_abruptly().await;
    let moved = Instant::now();
    bob.send("PRIVMSG alice :after the move").await;
    let msg = alice
        .wait_for(WAIT, "bob's PRIVMSG", |m| m.command == "PRIVMSG")
        .await
        .expect("the line arrives after the move");
    assert_eq!(msg.text(), "after the move");
    let deaf = moved.elapsed();
    assert!(
        deaf < keepalive * 4,
        "deaf for {deaf:?} with a {keepalive:?} keepalive"
    );
    assert!(proxy.stats().server_data_at_new_port > 0);
    let _ = alice.shutdown().await;
}
