//! A pipelined room fan-out over reliable UDP, as `natter bench --scenario fanout` runs
//! it: many natter-client `udp://` members, a few of them sending as fast as the server
//! takes their lines. Every member must get every line exactly once and in order, and
//! no session may be dropped (no `SendQ exceeded`, no Reset) on the default send queue.
//!
//! Each member gets several receive windows' worth of lines, so its window closes and
//! reopens many times: a window update the client holds back leaves the server's
//! session waiting for its persist timer (an RTO, backing off), and the hub's queue for
//! that member fills until it is dropped. Every wait is bounded and ends on an event.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_client::{register, Connection, Registration, Target};
use natter_testkit::TestServer;

/// Members of the room, senders included.
const MEMBERS: usize = 50;
/// Members that send.
const SENDERS: usize = 2;
/// Lines each sender pipelines.
const LINES: usize = 2000;
/// Text of each line after its number: with the prefix the server adds, about 150 bytes
/// a delivery, so each member gets about 600 KB, more than two receive windows.
const PAD: usize = 100;

/// Bound of the whole exchange: it takes well under a second on an idle machine.
const WAIT: Duration = Duration::from_secs(30);

const ROOM: &str = "#fan";

async fn member(udp: SocketAddr, nick: String) -> Connection {
    let target = Target::Udp {
        host: udp.ip().to_string(),
        port: udp.port(),
    };
    let mut conn = tokio::time::timeout(WAIT, Connection::connect(&target))
        .await
        .unwrap_or_else(|_| panic!("{nick}: no UDP handshake within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{nick}: {e}"));
    let registration = Registration {
        timeout: WAIT,
        ..Registration::new(&nick)
    };
    register(&mut conn, &registration)
        .await
        .unwrap_or_else(|e| panic!("{nick} cannot register over UDP: {e}"));
    conn.send(&format!("JOIN {ROOM}"))
        .await
        .unwrap_or_else(|e| panic!("{nick}: {e}"));
    conn.wait_for(WAIT, "the end of NAMES", |m| m.command == "366")
        .await
        .unwrap_or_else(|e| panic!("{nick} cannot join {ROOM}: {e}"));
    conn
}

/// Reads until `expected` lines from each sender other than `me` have arrived, checking
/// that each sender's lines come exactly once and in order. Returns how many arrived.
async fn receive(conn: &mut Connection, me: usize, deadline: tokio::time::Instant) -> usize {
    let mut next = [0usize; SENDERS];
    let want: usize = (0..SENDERS).filter(|&s| s != me).map(|_| LINES).sum();
    let mut got = 0;
    while got < want {
        let line = match tokio::time::timeout_at(deadline, conn.recv_raw()).await {
            Err(_) => panic!("member {me}: {got} of {want} lines within {WAIT:?}"),
            Ok(Err(e)) => panic!("member {me}: the session broke after {got} lines: {e}"),
            Ok(Ok(None)) => panic!("member {me}: the session ended after {got} lines"),
            Ok(Ok(Some(line))) => line,
        };
        let text = String::from_utf8_lossy(&line);
        assert!(
            !text.starts_with("ERROR"),
            "member {me} dropped after {got} lines: {text}"
        );
        let Some(body) = text.split_once(" PRIVMSG ").map(|(_, b)| b) else {
            continue;
        };
        let mut words = body.trim_end().splitn(3, ' ');
        let (_, Some(from), Some(number)) = (words.next(), words.next(), words.next()) else {
            panic!("member {me}: unexpected line {text}");
        };
        let from: usize = from.trim_start_matches(':').parse().expect("sender index");
        let number: usize = number
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("line number");
        assert_ne!(from, me, "member {me} got its own line back");
        assert_eq!(
            number, next[from],
            "member {me}: from sender {from}, line {number} where {} was due (lost, repeated or reordered)",
            next[from]
        );
        next[from] += 1;
        got += 1;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_fanout_over_reliable_udp_reaches_every_member_exactly_once() {
    let server = TestServer::start_with(|config| {
        config.limits.flood_burst = 0;
        config.limits.flood_rate_per_sec = 0.0;
        config.limits.connections_per_ip = 0;
    })
    .await;
    let udp = server.udp_addr();
    let mut members = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        members.push(member(udp, format!("m{i}")).await);
    }

    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tasks = tokio::task::JoinSet::new();
    let all_sent = std::sync::Arc::new(tokio::sync::Barrier::new(MEMBERS));
    for (i, mut conn) in members.into_iter().enumerate() {
        let all_sent = all_sent.clone();
        tasks.spawn(async move {
            if i < SENDERS {
                // Pipelined: every line at once, as fast as the session takes them; the
                // lines name their sender and number: `<sender> <n> <padding>`.
                let pad = "x".repeat(PAD);
                let mut burst = String::new();
                for n in 0..LINES {
                    burst.push_str(&format!("PRIVMSG {ROOM} :{i} {n} {pad}\r\n"));
                }
                // 2000 lines of about 120 bytes fit the session's send buffer, so the
                // sender need not read while it sends.
                conn.send_raw(burst.as_bytes())
                    .await
                    .unwrap_or_else(|e| panic!("sender {i}: {e}"));
            }
            // Nobody reads until every line is sent: each member's receive window fills
            // and closes, and must reopen many times as it reads.
            all_sent.wait().await;
            let got = receive(&mut conn, i, deadline).await;
            (i, got, conn)
        });
    }
    let mut done = Vec::new();
    while let Some(result) = tasks.join_next().await {
        done.push(result.expect("a member panicked"));
    }
    let took = started.elapsed();
    eprintln!("{MEMBERS} members, {SENDERS} senders × {LINES} lines: delivered in {took:?}");

    let stats = server.udp_stats();
    assert_eq!(stats.reliable_sessions_opened, MEMBERS as u64);
    assert_eq!(stats.resets_sent, 0, "no session was dropped: {stats:?}");
    server.stop().await;
}
