//! The lossy proxy itself, with natter's reliable-UDP client on one side and a bare
//! echo server built from the natter-udp state machine on the other: the faults it
//! promises happen, the reliable mode gets every line through them, and a rebind makes
//! the server see (and move the session to) a new client address.
//!
//! The chat server behind the proxy is tested in `udp_reliable.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_client::Connection;
use natter_testkit::lossy_proxy::{Faults, LossyProxy, ProxyConfig};
use natter_udp::{route, Config, Cookies, Event, Incoming, Listener, Route, Session};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(15);

/// What the echo server saw.
#[derive(Default)]
struct EchoStats {
    migrations: AtomicU64,
    sessions: AtomicU64,
}

/// A reliable-mode server answering each line `L` with `:echo NOTICE * :L`.
async fn echo_server() -> (SocketAddr, Arc<EchoStats>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("local addr");
    let stats = Arc::new(EchoStats::default());
    let seen = stats.clone();
    tokio::spawn(async move {
        let mut listener = Listener::new(Cookies::new([9; 32], Instant::now()));
        let mut sessions: HashMap<u64, (Session, Vec<Vec<u8>>)> = HashMap::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let wake = sessions
                .values()
                .filter_map(|(s, _)| s.poll_timeout())
                .min();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let (now, datagram) = (Instant::now(), &buf[..n]);
                    match route(datagram) {
                        Route::Session(id) if sessions.contains_key(&id) => {
                            if let Some((s, _)) = sessions.get_mut(&id) {
                                s.handle_datagram(now, from, datagram);
                            }
                        }
                        _ => match listener.handle(now, from, datagram) {
                            Incoming::Reply(t) => {
                                let _ = socket.send_to(&t.datagram, t.to).await;
                            }
                            Incoming::Accept(a) => {
                                let (s, _) = sessions.entry(a.session_id()).or_insert_with(|| {
                                    seen.sessions.fetch_add(1, Ordering::Relaxed);
                                    (a.into_session(now, Config::default()), Vec::new())
                                });
                                s.handle_datagram(now, from, datagram);
                            }
                            Incoming::Drop(_) => {}
                        },
                    }
                }
                () = sleep => {
                    let now = Instant::now();
                    for (s, _) in sessions.values_mut() {
                        s.handle_timeout(now);
                    }
                }
            }
            let now = Instant::now();
            for (s, queue) in sessions.values_mut() {
                while let Some(line) = s.poll_line() {
                    let mut echo = b":echo NOTICE * :".to_vec();
                    echo.extend_from_slice(&line);
                    queue.push(echo);
                }
                let sent = queue.iter().take_while(|l| s.send_line(l).is_ok()).count();
                queue.drain(..sent);
                while let Some(t) = s.poll_transmit(now) {
                    let _ = socket.send_to(&t.datagram, t.to).await;
                }
                while let Some(event) = s.poll_event() {
                    if let Event::Migrated { .. } = event {
                        seen.migrations.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            sessions.retain(|_, (s, _)| !s.is_drained());
        }
    });
    (addr, stats)
}

/// When to move the client to a new port, and how.
#[derive(Clone, Copy, PartialEq)]
enum Rebind {
    Never,
    /// After this many lines; the old port still passes datagrams on.
    After(usize),
    /// After this many lines; the old port is closed.
    AbruptlyAfter(usize),
}

/// Sends `count` numbered lines through `proxy`, rebinding it as asked, and checks
/// that every echo comes back once and in order.
async fn echo_through(proxy: &LossyProxy, count: usize, rebind: Rebind) {
    let mut conn = tokio::time::timeout(WAIT, Connection::connect(&proxy.target()))
        .await
        .unwrap_or_else(|_| panic!("no handshake in time (seed {})", proxy.seed()))
        .expect("connects");
    let started = Instant::now();
    let mut next_echo = 0;
    for i in 0..count {
        conn.send(&format!("PRIVMSG echo :line {i}"))
            .await
            .expect("send");
        if rebind == Rebind::After(i) {
            proxy.rebind().await;
        }
        if rebind == Rebind::AbruptlyAfter(i) {
            proxy.rebind_abruptly().await;
        }
        // Read as we go, to keep the test's memory and the server's queue small.
        while i + 1 - next_echo > 200 {
            expect_echo(&mut conn, next_echo, proxy.seed()).await;
            next_echo += 1;
        }
    }
    while next_echo < count {
        expect_echo(&mut conn, next_echo, proxy.seed()).await;
        next_echo += 1;
    }
    eprintln!(
        "{count} lines echoed in {:?}; proxy: {:?}",
        started.elapsed(),
        proxy.stats()
    );
    conn.shutdown().await.expect("close");
}

async fn expect_echo(conn: &mut Connection, i: usize, seed: u64) {
    let msg = conn
        .recv_within(WAIT, "echo")
        .await
        .unwrap_or_else(|e| panic!("echo {i}: {e} (proxy seed {seed})"));
    assert_eq!(
        msg.params.last(),
        Some(format!("PRIVMSG echo :line {i}").as_str()),
        "echo {i} out of order or missing (proxy seed {seed})"
    );
}

#[tokio::test]
async fn a_perfect_proxy_passes_everything_once() {
    let (server, _) = echo_server().await;
    let proxy = LossyProxy::start(server, ProxyConfig::new(Faults::NONE).seed(1)).await;
    echo_through(&proxy, 500, Rebind::Never).await;
    let stats = proxy.stats();
    assert_eq!(stats.clients, 1);
    assert_eq!(stats.to_server.forwarded, stats.to_server.received);
    assert_eq!(stats.to_client.forwarded, stats.to_client.received);
    assert_eq!(stats.to_server.dropped + stats.to_client.dropped, 0);
}

#[tokio::test]
async fn reliable_lines_survive_30_percent_loss_with_duplication_and_reordering() {
    let (server, _) = echo_server().await;
    let proxy = LossyProxy::start(server, ProxyConfig::new(Faults::lossy(0.3)).seed(30)).await;
    echo_through(&proxy, 1000, Rebind::Never).await;
    let stats = proxy.stats();
    for dir in [stats.to_server, stats.to_client] {
        assert!(
            dir.dropped > 0 && dir.duplicated > 0 && dir.reordered > 0,
            "{stats:?}"
        );
    }
}

#[tokio::test]
async fn a_rebind_moves_the_session_to_the_new_port_without_losing_a_line() {
    let (server, echo) = echo_server().await;
    let proxy = LossyProxy::start(server, ProxyConfig::new(Faults::lossy(0.1)).seed(11)).await;
    echo_through(&proxy, 1000, Rebind::After(400)).await;
    let stats = proxy.stats();
    assert_eq!(stats.rebinds, 1);
    assert!(stats.server_data_at_new_port > 0, "{stats:?}");
    assert_eq!(echo.migrations.load(Ordering::Relaxed), 1);
    assert_eq!(
        echo.sessions.load(Ordering::Relaxed),
        1,
        "one session throughout"
    );
}

#[tokio::test]
async fn an_abrupt_rebind_loses_what_went_to_the_old_port_but_no_line() {
    let (server, echo) = echo_server().await;
    let proxy = LossyProxy::start(server, ProxyConfig::new(Faults::NONE).seed(12)).await;
    echo_through(&proxy, 600, Rebind::AbruptlyAfter(300)).await;
    assert_eq!(echo.migrations.load(Ordering::Relaxed), 1);
    assert!(proxy.stats().server_data_at_new_port > 0);
}
