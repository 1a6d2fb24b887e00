//! Bad input never hurts anyone else: over-long lines, invalid UTF-8, NUL bytes and
//! random garbage each get their error (or are dropped) without being relayed, the
//! sender's connection keeps working, and other clients keep being served. Clients
//! that cost too much are limited: a reader too slow is dropped, a sender too fast
//! is slowed down, and one address may hold only so many connections.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use natter_testkit::{ClientError, MessageExt, Registration, TestClient, TestServer};

/// Makes the nicks of each pair of witnesses unique within a server.
static WITNESSES: AtomicU32 = AtomicU32::new(0);

/// Two fresh clients exchange a direct message: the server still serves others.
async fn others_still_chat(server: &TestServer) {
    let n = WITNESSES.fetch_add(1, Ordering::Relaxed);
    let (a, b) = (format!("witness{n}a"), format!("witness{n}b"));
    let mut first = server.user(&a).await;
    let mut second = server.user(&b).await;
    first.send(&format!("PRIVMSG {b} :still served?")).await;
    second.expect_privmsg(&a, &b, "still served?").await;
    second.send(&format!("PRIVMSG {a} :yes")).await;
    first.expect_privmsg(&b, &a, "yes").await;
}

/// `alice` (who will misbehave) and `bob` in `#room`.
async fn alice_and_bob(server: &TestServer) -> (TestClient, TestClient) {
    let mut alice = server.user("alice").await;
    alice.join("#room").await;
    let mut bob = server.user("bob").await;
    bob.join("#room").await;
    alice.expect_command("JOIN").await;
    (alice, bob)
}

/// `alice` can still talk to `bob` in the room, and `bob` got nothing else before.
async fn alice_still_talks_to_bob(alice: &mut TestClient, bob: &mut TestClient) {
    alice.send("PRIVMSG #room :back to normal").await;
    let next = bob.recv().await;
    assert!(
        next.command == "PRIVMSG" && next.is_from("alice") && next.text() == "back to normal",
        "bob got {} before the normal message",
        next.line()
    );
    bob.assert_nothing_more().await;
}

/// A deterministic stream of garbage: the same bytes on every run, so that a failure
/// can be reproduced. Newlines are frequent enough to make many short lines.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            // Knuth's MMIX linear congruential generator; the high byte is the best.
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let byte = (seed >> 56) as u8;
            // One byte in 28 ends a line.
            if byte < 9 {
                b'\n'
            } else {
                byte
            }
        })
        .collect()
}

#[tokio::test]
async fn a_600_byte_line_gets_417_and_is_not_relayed() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let line = format!("PRIVMSG #room :{}", "x".repeat(583));
    assert_eq!(line.len() + 2, 600);
    alice.send(&line).await;
    let reply = alice.expect_numeric("417").await;
    assert_eq!(reply.param(0), Some("alice"), "{}", reply.line());
    alice.assert_nothing_more().await;
    alice_still_talks_to_bob(&mut alice, &mut bob).await;
    others_still_chat(&server).await;
}

#[tokio::test]
async fn a_10000_byte_line_without_newline_gets_one_417_and_its_tail_is_dropped() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let long = format!("PRIVMSG #room :{}", "y".repeat(10_000 - 15));
    assert_eq!(long.len(), 10_000);
    alice.send_raw(long.as_bytes()).await;
    // The server answers before the line even ends: it will not buffer it.
    alice.expect_numeric("417").await;
    // What follows up to the newline is still the same line, and must not be taken
    // for a command of its own.
    alice.send_raw(b" PRIVMSG #room :the tail\r\n").await;
    let after = alice.collect_until_pong().await;
    assert!(
        after.is_empty(),
        "after the first 417: {:?}",
        after.iter().map(MessageExt::line).collect::<Vec<_>>()
    );
    alice_still_talks_to_bob(&mut alice, &mut bob).await;
    others_still_chat(&server).await;
}

#[tokio::test]
async fn tags_longer_than_4096_bytes_get_417_and_are_not_relayed() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice
        .send(&format!("@+big={} PRIVMSG #room :hi", "v".repeat(4500)))
        .await;
    alice.expect_numeric("417").await;
    alice_still_talks_to_bob(&mut alice, &mut bob).await;
}

#[tokio::test]
async fn invalid_utf8_gets_fail_invalid_utf8_and_is_never_relayed() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_raw(b"PRIVMSG #room :caf\xe9 au lait\r\n").await;
    let fail = alice.expect_command("FAIL").await;
    assert_eq!(
        fail.params.iter().take(2).collect::<Vec<_>>(),
        ["PRIVMSG", "INVALID_UTF8"],
        "{}",
        fail.line()
    );
    alice.send_raw(b"PRIVMSG bob :\xff\xfe\xfd\r\n").await;
    alice.expect_command("FAIL").await;
    alice.assert_nothing_more().await;
    alice_still_talks_to_bob(&mut alice, &mut bob).await;
    others_still_chat(&server).await;
}

#[tokio::test]
async fn a_nul_byte_is_rejected_with_400_and_never_relayed() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_raw(b"PRIVMSG #room :before\0after\r\n").await;
    let reply = alice.expect_numeric("400").await;
    assert_eq!(reply.param(1), Some("PRIVMSG"), "{}", reply.line());
    alice.send_raw(b"NICK al\0ice\r\n").await;
    alice.expect_numeric("400").await;
    alice.assert_nothing_more().await;
    alice_still_talks_to_bob(&mut alice, &mut bob).await;
    others_still_chat(&server).await;
}

#[tokio::test]
async fn random_garbage_from_a_member_is_never_relayed_and_hurts_no_one() {
    // Flood control would only make this slow: the garbage holds a few thousand lines.
    let server = TestServer::start_with(|cfg| cfg.limits.flood_burst = 0).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    for seed in 1..=4 {
        alice.send_raw(&garbage(64 * 1024, seed)).await;
        // End whatever line the garbage left open, then check alice is served.
        alice.send_raw(b"\r\n").await;
        let replies = alice.collect_until_pong().await;
        assert!(
            !replies.iter().any(|m| m.command == "ERROR"),
            "seed {seed}: garbage closed the connection"
        );
    }
    alice_still_talks_to_bob(&mut alice, &mut bob).await;
    others_still_chat(&server).await;
}

#[tokio::test]
async fn random_garbage_before_registration_hurts_no_one() {
    let server = TestServer::start_with(|cfg| cfg.limits.flood_burst = 0).await;
    let mut bob = server.user("bob").await;
    let mut stranger = TestClient::connect_tcp(&server).await;
    stranger.send_raw(&garbage(64 * 1024, 42)).await;
    stranger.send_raw(b"\r\n").await;
    stranger.collect_until_pong().await;
    stranger.register("stranger").await;
    stranger.send("PRIVMSG bob :sorry about that").await;
    let next = bob.recv().await;
    assert_eq!(next.text(), "sorry about that", "{}", next.line());
    others_still_chat(&server).await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_with_sendq_exceeded_while_others_chat() {
    // Room for a few bursts (one batch of the flood is 43 KB), far less than the
    // kernel buffers of a connection that is never read.
    const SENDQ: usize = 256 * 1024;
    let server = TestServer::start_with(|cfg| {
        cfg.limits.sendq_bytes = SENDQ;
        // The flooder must not be slowed: the point is to outrun the sleeper.
        cfg.limits.flood_burst = 0;
    })
    .await;
    // Over the Unix socket, the kernel holds a few hundred kilobytes for a peer that
    // does not read, where loopback TCP grows its buffers to megabytes: the same
    // test, ten times faster.
    let mut sleeper = TestClient::connect_unix(&server).await;
    sleeper.register("sleeper").await;
    let mut flooder = server.user("flooder").await;
    let mut reader = server.user("reader").await;
    let mut watcher = server.user("watcher").await;
    // The sleeper shares #flood with the flooder and a reader who keeps up, and
    // #watch with the watcher, who sees the sleeper go without reading the flood.
    sleeper.join("#flood").await;
    sleeper.join("#watch").await;
    flooder.join("#flood").await;
    reader.join("#flood").await;
    watcher.join("#watch").await;
    flooder.expect_command("JOIN").await;
    // From here on the sleeper never reads; the reader reads everything, at its pace.
    let reading = tokio::spawn(async move {
        let mut lines = 0usize;
        loop {
            let msg = reader
                .expect(|m| m.command == "PRIVMSG" || m.command == "QUIT")
                .await;
            if msg.command == "QUIT" {
                return (reader, msg, lines);
            }
            lines += 1;
        }
    });

    let text = "z".repeat(400);
    let batch: String = (0..100)
        .map(|_| format!("PRIVMSG #flood :{text}\r\n"))
        .collect();
    // Kernel buffers take some megabytes at most before the send queue fills.
    const MAX_BATCHES: usize = 500;
    let mut dropped = None;
    for sent in 1..=MAX_BATCHES {
        flooder.send_raw(batch.as_bytes()).await;
        // The PONG paces the flooder to the server's speed: no sleeps, no backlog.
        let seen = flooder.collect_until_pong().await;
        if let Some(quit) = seen.into_iter().find(|m| m.command == "QUIT") {
            dropped = Some((quit, sent));
            break;
        }
    }
    let (quit, batches) = dropped.unwrap_or_else(|| {
        panic!(
            "the sleeper was not dropped after {MAX_BATCHES} batches of 100 lines ({} MB)",
            MAX_BATCHES * batch.len() / 1_000_000
        )
    });
    eprintln!("the sleeper was dropped after {batches} batches of 100 lines");
    assert!(
        quit.is_from("sleeper"),
        "the wrong one was dropped: {}",
        quit.line()
    );
    assert_eq!(
        quit.text(),
        "SendQ exceeded",
        "after {batches} batches: {}",
        quit.line()
    );
    let seen_by_watcher = watcher
        .expect(|m| m.command == "QUIT" && m.is_from("sleeper"))
        .await;
    assert_eq!(
        seen_by_watcher.text(),
        "SendQ exceeded",
        "{}",
        seen_by_watcher.line()
    );
    // The reader kept up, so it is still here and got every line before the QUIT.
    let (mut reader, reader_quit, lines) = reading.await.expect("the reader did not fail");
    assert!(reader_quit.is_from("sleeper"), "{}", reader_quit.line());
    assert!(
        lines >= (batches - 1) * 100,
        "the reader got {lines} of the {} lines sent before the drop",
        (batches - 1) * 100
    );
    // The sleeper's connection is over: what was already in flight, then the end.
    sleeper.set_timeout(Duration::from_secs(10));
    sleeper.expect_closed().await;
    // The others keep chatting.
    flooder.send("PRIVMSG #flood :that was me").await;
    reader
        .expect_privmsg("flooder", "#flood", "that was me")
        .await;
    reader.send("PRIVMSG watcher :did you see that?").await;
    watcher
        .expect_privmsg("reader", "watcher", "did you see that?")
        .await;
    watcher.assert_nothing_more().await;
    others_still_chat(&server).await;
}

#[tokio::test]
async fn a_flooding_client_is_slowed_down_not_disconnected() {
    let server = TestServer::start_with(|cfg| {
        cfg.limits.flood_burst = 5;
        cfg.limits.flood_rate_per_sec = 20.0;
    })
    .await;
    let mut flooder = server.user("flooder").await;
    let mut bob = server.user("bob").await;
    const LINES: usize = 25;
    let lines: String = (0..LINES)
        .map(|i| format!("PRIVMSG bob :line {i}\r\n"))
        .collect();
    let started = Instant::now();
    flooder.send_raw(lines.as_bytes()).await;
    for i in 0..LINES {
        let msg = bob.expect_command("PRIVMSG").await;
        assert_eq!(
            msg.text(),
            format!("line {i}"),
            "out of order: {}",
            msg.line()
        );
    }
    let took = started.elapsed();
    // 5 lines at once, then 20 a second: the last 20 lines take about a second.
    // Allow for timer slack, but a flood that went through at once was not slowed.
    assert!(
        took >= Duration::from_millis(800),
        "{LINES} lines arrived in {took:?}: flood control did not slow them"
    );
    // Still connected, nothing but the answers it asked for.
    flooder.assert_nothing_more().await;
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn connections_beyond_the_per_ip_limit_are_refused_with_error() {
    let server = TestServer::start_with(|cfg| cfg.limits.connections_per_ip = 2).await;
    let mut first = server.user("first").await;
    let mut second = server.user("second").await;

    let mut third = TestClient::connect_tcp(&server).await;
    let lines = third.expect_closed().await;
    let error = lines
        .iter()
        .find(|m| m.command == "ERROR")
        .unwrap_or_else(|| panic!("refused without an ERROR: {lines:?}"));
    assert_eq!(error.text(), "Too many connections from your IP");

    // Other addresses are counted apart, and Unix-socket peers not at all.
    let mut six = TestClient::connect_v6(&server).await;
    six.register("six").await;
    let mut local = TestClient::connect_unix(&server).await;
    local.register("local").await;

    first.send("PRIVMSG second :we are fine").await;
    second
        .expect_privmsg("first", "second", "we are fine")
        .await;

    // A slot given back can be taken again. The server frees it just after closing,
    // so a refusal in between is possible: retry, paced, a bounded number of times.
    first.quit("making room").await;
    let mut attempts = Vec::new();
    let mut admitted = None;
    for attempt in 0..40 {
        let mut again = TestClient::connect_tcp(&server).await;
        match again.try_register(Registration::new("again")).await {
            Ok(_) => {
                admitted = Some(again);
                break;
            }
            Err(ClientError::Closed { reason }) => attempts.push(reason),
            Err(e) => panic!("attempt {attempt}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut again =
        admitted.unwrap_or_else(|| panic!("the freed slot was never given back: {attempts:?}"));
    again.send("PRIVMSG second :I got in").await;
    second.expect_privmsg("again", "second", "I got in").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_client_is_not_dropped_by_one_burst_larger_than_its_sendq() {
    // The smallest send queue the configuration allows is one line; 16 KiB is 37 of
    // these lines. A client reading as fast as it can, with empty socket buffers, is
    // not a slow reader: a burst of 100 lines should reach it, as it would on a
    // server that writes to the socket before counting what is left.
    let server = TestServer::start_with(|cfg| {
        cfg.limits.sendq_bytes = 16 * 1024;
        cfg.limits.flood_burst = 0;
    })
    .await;
    let mut flooder = server.user("flooder").await;
    let mut reader = server.user("reader").await;
    let text = "z".repeat(400);
    let burst: String = (0..100)
        .map(|i| format!("PRIVMSG reader :{i} {text}\r\n"))
        .collect();
    flooder.send_raw(burst.as_bytes()).await;
    for i in 0..100 {
        let msg = reader.expect_command("PRIVMSG").await;
        assert!(msg.text().starts_with(&format!("{i} ")), "{}", msg.line());
    }
    reader.assert_nothing_more().await;
}
