//! The `udp://` transport of `Connection`, against a small echo server built from the
//! same natter-udp state machine the real server uses: lines go both ways in order,
//! back-pressure holds lines instead of dropping them, an unreachable server fails
//! fast and clearly, and a close is orderly.
//!
//! The real server's UDP listener is exercised end to end in natter-testkit's tests.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_client::{ClientError, Connection, Target, UdpConfig};
use natter_udp::{route, Config, Cookies, Incoming, Listener, Route, Session};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(10);

/// A reliable-mode server that answers every line with the same line, prefixed by
/// `:echo NOTICE * :`. Runs until the test ends.
async fn echo_server() -> SocketAddr {
    echo_server_on("127.0.0.1:0".parse().expect("address")).await
}

async fn echo_server_on(bind: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind(bind).await.expect("bind");
    let addr = socket.local_addr().expect("local addr");
    tokio::spawn(async move {
        let epoch = Instant::now();
        let mut listener = Listener::new(Cookies::new([7; 32], epoch));
        let mut sessions: HashMap<u64, (Session, VecDeque<Vec<u8>>)> = HashMap::new();
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
                    let now = Instant::now();
                    let datagram = &buf[..n];
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
                                let (s, _) = sessions
                                    .entry(a.session_id())
                                    .or_insert_with(|| (a.into_session(now, Config::default()), VecDeque::new()));
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
                    queue.push_back(echo);
                }
                while let Some(line) = queue.front() {
                    if s.send_line(line).is_err() {
                        break;
                    }
                    queue.pop_front();
                }
                if s.is_closed() {
                    queue.clear();
                }
                while let Some(t) = s.poll_transmit(now) {
                    let _ = socket.send_to(&t.datagram, t.to).await;
                }
                while s.poll_event().is_some() {}
            }
            sessions.retain(|_, (s, _)| !s.is_drained());
        }
    });
    addr
}

#[tokio::test]
async fn lines_go_both_ways_in_order() {
    let server = echo_server().await;
    let target = Target::udp_addr(server);
    let mut conn = tokio::time::timeout(WAIT, Connection::connect(&target))
        .await
        .expect("connects in time")
        .expect("connects");
    // Far more than the session's send buffer and the channel hold (256 KiB and 256
    // lines), sent without reading: `send` waits for room instead of losing a line.
    let count = 3000;
    let text = "x".repeat(200);
    for i in 0..count {
        tokio::time::timeout(WAIT, conn.send(&format!("PRIVMSG echo :{i} {text}")))
            .await
            .expect("send makes progress")
            .expect("send");
    }
    for i in 0..count {
        let msg = conn.recv_within(WAIT, "echo").await.expect("echo");
        assert_eq!(msg.command, "NOTICE");
        assert_eq!(&msg.params[1], format!("PRIVMSG echo :{i} {text}"));
    }
    tokio::time::timeout(WAIT, conn.shutdown())
        .await
        .expect("the close ends in time")
        .expect("orderly close");
    // The session is over: nothing more arrives, and saying so is not an error.
    assert!(conn.recv().await.expect("end of stream").is_none());
}

/// A taker sees every line where it arrives, in order; what it takes never reaches
/// `recv`, and the rest still does, in order.
#[tokio::test]
async fn lines_taken_in_the_session_task_skip_the_reader_and_the_rest_still_come() {
    let server = echo_server().await;
    let mut conn = tokio::time::timeout(WAIT, Connection::connect(&Target::udp_addr(server)))
        .await
        .expect("connects in time")
        .expect("connects");
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let installed = conn.take_lines_with(Box::new(move |line| {
        let text = String::from_utf8_lossy(line).into_owned();
        let take = text.contains(":take ");
        let _ = seen_tx.send(text);
        take
    }));
    assert!(installed);
    let count = 1000;
    for i in 0..count {
        let word = if i % 10 == 0 { "keep" } else { "take" };
        tokio::time::timeout(WAIT, conn.send(&format!("PRIVMSG echo :{word} {i}")))
            .await
            .expect("send makes progress")
            .expect("send");
    }
    for i in (0..count).step_by(10) {
        let msg = conn.recv_within(WAIT, "a kept echo").await.expect("echo");
        assert_eq!(&msg.params[1], format!("PRIVMSG echo :keep {i}"));
    }
    for i in 0..count {
        let seen = tokio::time::timeout(WAIT, seen_rx.recv())
            .await
            .expect("the taker saw every line in time")
            .expect("a line");
        assert!(seen.ends_with(&format!(" {i}")), "{seen} for {i}");
    }
    tokio::time::timeout(WAIT, conn.shutdown())
        .await
        .expect("the close ends in time")
        .expect("orderly close");
    assert!(conn.recv().await.expect("end of stream").is_none());
}

#[tokio::test]
async fn ipv6_works_with_the_address_in_brackets() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: this host has no IPv6 loopback");
        return;
    }
    let server = echo_server_on("[::1]:0".parse().expect("address")).await;
    let target = Target::parse(&format!("udp://[::1]:{}", server.port())).expect("url");
    assert_eq!(target.to_string(), format!("udp://[::1]:{}", server.port()));
    let mut conn = tokio::time::timeout(WAIT, Connection::connect(&target))
        .await
        .expect("connects in time")
        .expect("connects");
    conn.send("PING :six").await.expect("send");
    let echo = conn.recv_within(WAIT, "echo").await.expect("echo");
    assert_eq!(&echo.params[1], "PING :six");
    conn.shutdown().await.expect("orderly close");
}

#[tokio::test]
async fn a_partial_line_waits_for_its_end() {
    let server = echo_server().await;
    let mut conn = Connection::connect(&Target::udp_addr(server))
        .await
        .expect("connects");
    conn.send_raw(b"PING :a\r\nPING :b").await.expect("send");
    let first = conn.recv_within(WAIT, "echo").await.expect("echo");
    assert_eq!(&first.params[1], "PING :a");
    conn.send_raw(b"c\r\n").await.expect("send");
    let second = conn.recv_within(WAIT, "echo").await.expect("echo");
    assert_eq!(&second.params[1], "PING :bc");
    conn.shutdown().await.expect("orderly close");
}

#[tokio::test]
async fn nothing_listening_fails_at_once_and_says_so() {
    // A port that was just free: the system answers "port unreachable".
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    };
    let target = Target::parse(&format!("udp://127.0.0.1:{port}")).expect("url");
    let started = Instant::now();
    let err = match Connection::connect(&target).await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => e,
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("cannot connect to udp://127.0.0.1:{port}"))
            && text.contains("is natter serving udp:// there?"),
        "{text}"
    );
    assert!(matches!(err, ClientError::Io { .. }));
}

#[tokio::test]
async fn a_silent_server_fails_after_the_handshake_timeout() {
    // Bound but never answering: only the handshake timeout can tell.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let target = Target::udp_addr(silent.local_addr().expect("addr"));
    let config = UdpConfig {
        handshake_timeout: Duration::from_millis(600),
        ..UdpConfig::default()
    };
    let err = match tokio::time::timeout(WAIT, Connection::connect_with(&target, config)).await {
        Ok(Ok(_)) => panic!("connected to a silent socket"),
        Ok(Err(e)) => e,
        Err(_) => panic!("the handshake timeout did not end the connect"),
    };
    assert!(err.to_string().contains("handshake timed out"), "{err}");
}
