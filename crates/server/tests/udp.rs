//! IRC over UDP, as its users meet it: a person with a few lines of `sendto` and
//! `recvfrom` (the style of the classic UDP chat exercise), a TCP user in the same room,
//! and the hostile rest of the network. Plain-mode clients here are bare
//! `std::net::UdpSocket`s; the reliable-mode client is `natter_udp::Session` driven by
//! hand. Every wait is a read with a timeout; nothing sleeps to wait.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use natter_server::{Server, ServerConfig};
use natter_udp::wire::{self, Packet};
use natter_udp::{Config, Session};

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

/// The largest datagram the server may send a plain-mode peer (docs/udp.md).
const MAX_DATAGRAM: usize = 1200;

// ----- a server -----

fn config(listen: &[String], data: &Path) -> ServerConfig {
    ServerConfig {
        listen: listen
            .iter()
            .map(|u| u.parse().expect("valid listen URL"))
            .collect(),
        data_dir: data.join("data"),
        ..ServerConfig::default()
    }
}

/// A server on UDP and TCP at `ip` (free ports), with `configure` applied.
async fn start(dir: &Path, ip: &str, configure: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut config = config(&[format!("udp://{ip}:0"), format!("tcp://{ip}:0")], dir);
    configure(&mut config);
    tokio::time::timeout(WAIT, Server::bind(config))
        .await
        .expect("bind in time")
        .expect("server starts")
}

async fn stop(server: Server) {
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown in time");
}

/// Runs blocking client code (std sockets, as a script would use) off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("no panic")
}

// ----- a plain-mode user: sendto and recvfrom -----

/// A person's UDP script: one socket, lines out, datagrams in.
struct PlainUser {
    socket: UdpSocket,
    server: SocketAddr,
    lines: VecDeque<String>,
}

impl PlainUser {
    fn new(server: SocketAddr) -> PlainUser {
        let local = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let socket = UdpSocket::bind(local).expect("bind a client socket");
        socket.set_read_timeout(Some(WAIT)).expect("timeout");
        PlainUser {
            socket,
            server,
            lines: VecDeque::new(),
        }
    }

    fn send(&self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    fn send_bytes(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).expect("sendto");
    }

    /// The next datagram from the server. Every one is at most 1200 bytes.
    fn datagram(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 65536];
        let (n, from) = self
            .socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no datagram within {WAIT:?}: {e}"));
        assert_eq!(
            from, self.server,
            "datagrams come from the server's address"
        );
        assert!(n <= MAX_DATAGRAM, "a {n}-byte datagram");
        buf.truncate(n);
        buf
    }

    /// The next line, across datagrams.
    fn line(&mut self) -> String {
        loop {
            if let Some(line) = self.lines.pop_front() {
                return line;
            }
            let d = self.datagram();
            let text = String::from_utf8(d).expect("the server sends UTF-8");
            assert!(text.ends_with("\r\n"), "whole lines only: {text:?}");
            self.lines.extend(
                text.split("\r\n")
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
        }
    }

    fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let line = self.line();
            if want(&line) {
                return line;
            }
        }
        panic!("no {what} within {WAIT:?}");
    }

    /// What a person does: NICK and USER, answer the PING, wait for the welcome.
    fn register(&mut self, nick: &str) {
        self.send(&format!(
            "NICK {nick}\r\nUSER {nick} 0 * :{nick} over UDP\r\n"
        ));
        let ping = self.until("PING", |l| l.starts_with("PING "));
        let token = ping.split(':').nth(1).expect("PING :<token>");
        self.send(&format!("PONG :{token}\r\n"));
        let welcome = self.until("001", |l| command(l) == Some("001"));
        assert!(welcome.contains(nick), "{welcome}");
    }
}

// ----- a TCP user -----

struct TcpUser {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl TcpUser {
    fn connect(addr: SocketAddr, nick: &str) -> TcpUser {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut user = TcpUser {
            reader: BufReader::new(stream),
            writer,
        };
        user.send(&format!("NICK {nick}"));
        user.send(&format!("USER {nick} 0 * :{nick} over TCP"));
        user.until("001", |l| command(l) == Some("001"));
        user
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }

    fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("no {what} within {WAIT:?}: {e}"));
            assert!(n > 0, "connection closed while waiting for {what}");
            let line = line.trim_end();
            if want(line) {
                return line.to_owned();
            }
        }
    }
}

/// The command or numeric of a server line: `:server 001 nick :Welcome` → `001`.
fn command(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix(':')
        .map_or(line, |l| l.split_once(' ').map_or("", |(_, rest)| rest));
    rest.split(' ').next()
}

// ----- the tests -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_udp_user_and_a_tcp_user_chat_both_ways() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    assert!(server.local_addrs()[0]
        .to_string()
        .starts_with("udp://127.0.0.1:"));
    blocking(move || {
        let mut bob = TcpUser::connect(tcp, "bob");
        bob.send("JOIN #room");
        bob.until("bob's JOIN", |l| l.contains("JOIN") && l.contains("#room"));

        // The exercise's way: one socket, sendto and recvfrom, a few lines.
        let mut alice = PlainUser::new(udp);
        alice.register("alice");
        alice.send("JOIN #room\r\nPRIVMSG #room :hello from UDP\r\n");
        alice.until("NAMES", |l| command(l) == Some("353") && l.contains("bob"));

        let heard = bob.until("alice's message", |l| l.contains("PRIVMSG #room"));
        assert!(heard.starts_with(":alice!"), "{heard}");
        assert!(heard.ends_with(":hello from UDP"), "{heard}");

        bob.send("PRIVMSG #room :hello from TCP");
        let heard = alice.until("bob's message", |l| l.contains("PRIVMSG #room"));
        assert!(heard.ends_with(":hello from TCP"), "{heard}");

        bob.send("PRIVMSG alice :just for you");
        let dm = alice.until("bob's direct message", |l| l.contains("PRIVMSG alice"));
        assert!(
            dm.starts_with(":bob!") && dm.ends_with(":just for you"),
            "{dm}"
        );

        alice.send("PRIVMSG bob :and back\r\n");
        let dm = bob.until("alice's direct message", |l| l.contains("PRIVMSG bob"));
        assert!(dm.ends_with(":and back"), "{dm}");

        alice.send("WHOIS alice\r\n");
        let whois = alice.until("WHOIS", |l| command(l) == Some("311"));
        assert!(whois.contains("127.0.0.1"), "{whois}");
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.plain_sessions_opened, 1, "{stats:?}");
    assert_eq!(stats.plain_sessions, 1, "{stats:?}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nick_and_user_in_two_datagrams_then_the_first_ping_answered_registers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let udp = server.udp_addrs()[0];
    blocking(move || {
        let mut carol = PlainUser::new(udp);
        carol.send("NICK carol\r\n");
        carol.send("USER carol 0 * :Carol\r\n");
        // The first datagram back answers the NICK.
        let ping = carol.line();
        let token = ping.strip_prefix("PING :").expect("a PING first");
        // The PONG and the first commands in one datagram, as a script might.
        carol.send(&format!("PONG :{token}\r\nJOIN #r\r\n"));
        let welcome = carol.until("001", |l| command(l) == Some("001"));
        assert!(welcome.contains("carol"), "{welcome}");
        carol.until("JOIN", |l| l.starts_with(":carol!") && l.contains("JOIN"));
    })
    .await;
    stop(server).await;
}

/// A datagram that gets a recognisable answer: a PONG with a token that is not one.
const MARKER: &[u8] = b"PONG :this-is-no-token-only-a-marker-for-the-test\r\n";

fn is_marker_reply(d: &[u8]) -> bool {
    String::from_utf8_lossy(d).contains("wrong or expired")
}

/// Everything the server sends back to `datagram` from a fresh address: the datagrams
/// that arrive before the answer to a marker sent right after it (the server answers
/// in order, and loopback keeps the order).
fn replies_to(udp: SocketAddr, datagram: &[u8]) -> Vec<Vec<u8>> {
    let user = PlainUser::new(udp);
    user.send_bytes(datagram);
    user.send_bytes(MARKER);
    let mut replies = Vec::new();
    loop {
        let d = user.datagram();
        if is_marker_reply(&d) {
            return replies;
        }
        replies.push(d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_at_most_one_datagram_of_at_most_three_times_its_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let udp = server.udp_addrs()[0];
    blocking(move || {
        let answered: Vec<Vec<u8>> = vec![
            b"NICK a\n".to_vec(),
            b"NICK alice\r\n".to_vec(),
            b"NICK alice".to_vec(),
            b"NICK alice\r\nUSER alice 0 * :Alice\r\n".to_vec(),
            b"PASS secret\r\nNICK n\r\nUSER u 0 * :Real Name\r\n".to_vec(),
            b"JOIN #room\r\nPRIVMSG #room :hi\r\n".to_vec(),
            b"CAP LS 302\r\n".to_vec(),
            format!("PRIVMSG #x :{}\r\n", "y".repeat(480)).into_bytes(),
            format!(
                "NICK {}\r\nUSER u 0 * :{}\r\n",
                "n".repeat(40),
                "r".repeat(300)
            )
            .into_bytes(),
            b"QUIT\r\nQUIT\r\nQUIT\r\nQUIT\r\n".repeat(100),
        ];
        for d in &answered {
            let replies = replies_to(udp, d);
            assert_eq!(
                replies.len(),
                1,
                "one answer to {:?}",
                String::from_utf8_lossy(d)
            );
            let reply = &replies[0];
            assert!(
                reply.len() <= 3 * d.len() && reply.len() <= MAX_DATAGRAM,
                "{} bytes for {}",
                reply.len(),
                d.len()
            );
            assert!(
                reply.starts_with(b"PING :"),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
        let silent: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\r\n".to_vec(),
            b"   \r\n\n".to_vec(),
            b"\xff\xfe\xfd\xfc".to_vec(),
            b"\x00\x01\x02\x03NICK".to_vec(),
            b"12345 :x\r\n".to_vec(),
            b"LIST\n".to_vec(),
            vec![0x80; 1400],
        ];
        for d in &silent {
            assert!(
                replies_to(udp, d).is_empty(),
                "no answer to {:?}",
                String::from_utf8_lossy(d)
            );
        }
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.plain_sessions_opened, 0, "{stats:?}");
    assert_eq!(
        stats.plain_challenges,
        10 + 18,
        "answers and markers: {stats:?}"
    );
    assert_eq!(stats.plain_ignored, 7, "{stats:?}");
    assert_eq!(
        stats.reliable_malformed, 1,
        "the one starting 0xFF: {stats:?}"
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_foreign_pong_opens_no_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let udp = server.udp_addrs()[0];
    blocking(move || {
        // A real token, echoed from another address.
        let victim = PlainUser::new(udp);
        victim.send("NICK victim\r\nUSER v 0 * :V\r\n");
        let ping = String::from_utf8(victim.datagram()).expect("utf-8");
        let token = ping
            .strip_prefix("PING :")
            .and_then(|p| p.split("\r\n").next())
            .expect("PING first")
            .to_owned();
        let mut thief = PlainUser::new(udp);
        thief.send(&format!("PONG :{token}\r\nJOIN #stolen\r\n"));
        let answer = thief.line();
        assert!(
            answer.starts_with("PING :"),
            "a fresh challenge, not a session: {answer}"
        );
        assert_ne!(answer, format!("PING :{token}"));
        // Made-up tokens, right or wrong in every way.
        for forged in [
            "AAAAAAAAAAA",
            "",
            "x",
            &"A".repeat(400),
            "%%%%",
            &token[1..],
        ] {
            let mut forger = PlainUser::new(udp);
            forger.send(&format!(
                "PONG :{forged}\r\nNICK forger\r\nUSER f 0 * :F\r\n"
            ));
            let answer = forger.line();
            assert!(answer.starts_with("PING :"), "{forged:?}: {answer}");
        }
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.plain_sessions_opened, 0, "{stats:?}");
    assert_eq!(stats.plain_sessions, 0, "{stats:?}");
    assert_eq!(stats.plain_bad_pongs, 7, "{stats:?}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_never_answered_costs_the_server_no_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let udp = server.udp_addrs()[0];
    blocking(move || {
        // Plain mode: NICK and USER, the PING read, never answered.
        for i in 0..20 {
            let user = PlainUser::new(udp);
            user.send(&format!("NICK lurker{i}\r\nUSER l 0 * :L\r\n"));
            assert!(user.datagram().starts_with(b"PING :"));
        }
        // Reliable mode: an Initial, the Retry read, never answered.
        for nonce in 0..20u64 {
            let user = PlainUser::new(udp);
            user.send_bytes(&initial(nonce, &[]));
            let retry = user.datagram();
            assert!(retry.len() < 40, "a Retry is small: {} bytes", retry.len());
            assert!(matches!(
                wire::decode(&retry),
                Ok(Packet::Retry { nonce: n, .. }) if n == nonce
            ));
        }
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.sessions(), 0, "{stats:?}");
    assert_eq!(stats.plain_sessions_opened, 0, "{stats:?}");
    assert_eq!(stats.reliable_sessions_opened, 0, "{stats:?}");
    assert_eq!(stats.plain_challenges, 20, "{stats:?}");
    assert_eq!(stats.handshake_retries, 20, "{stats:?}");
    stop(server).await;
}

/// A reliable-mode Initial, padded to 1200 bytes as the wire format requires.
fn initial(nonce: u64, cookie: &[u8]) -> Vec<u8> {
    Packet::Initial {
        version: wire::VERSION,
        nonce,
        cookie,
    }
    .to_vec()
}

// ----- a reliable-mode client, by hand -----

/// natter's reliable mode over a std socket, driven by hand: what the client library
/// does, in a form a test can interleave with hostile datagrams and address changes.
struct ReliableUser {
    socket: UdpSocket,
    session: Session,
    lines: VecDeque<String>,
}

impl ReliableUser {
    fn connect(server: SocketAddr, nonce: u64) -> ReliableUser {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let session = Session::connect(Instant::now(), server, nonce, Config::default());
        let mut user = ReliableUser {
            socket,
            session,
            lines: VecDeque::new(),
        };
        let deadline = Instant::now() + WAIT;
        while !user.session.is_established() {
            user.step("the handshake", deadline);
        }
        user
    }

    /// One round: send what is due, then take one datagram (or run the timer, if it
    /// is due first), and collect the lines received.
    fn step(&mut self, what: &str, deadline: Instant) {
        let now = Instant::now();
        assert!(now < deadline, "no {what} within {WAIT:?}");
        assert!(
            !self.session.is_closed(),
            "the session closed while waiting for {what}"
        );
        while let Some(t) = self.session.poll_transmit(now) {
            self.socket.send_to(&t.datagram, t.to).expect("send");
        }
        let wake = self
            .session
            .poll_timeout()
            .unwrap_or(deadline)
            .min(deadline);
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = [0u8; 2048];
        match self.socket.recv_from(&mut buf) {
            Ok((n, from)) => self
                .session
                .handle_datagram(Instant::now(), from, &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                self.session.handle_timeout(Instant::now())
            }
            Err(e) => panic!("recv: {e}"),
        }
        while let Some(line) = self.session.poll_line() {
            self.lines
                .push_back(String::from_utf8_lossy(&line).into_owned());
        }
        let now = Instant::now();
        while let Some(t) = self.session.poll_transmit(now) {
            self.socket.send_to(&t.datagram, t.to).expect("send");
        }
    }

    /// Queues a line and sends what the session lets go now (later steps resend it
    /// if it is lost).
    fn send(&mut self, line: &str) {
        self.session
            .send_line(line.as_bytes())
            .expect("room to send");
        let now = Instant::now();
        while let Some(t) = self.session.poll_transmit(now) {
            self.socket.send_to(&t.datagram, t.to).expect("send");
        }
    }

    fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(line) = self.lines.pop_front() {
                if want(&line) {
                    return line;
                }
            }
            self.step(what, deadline);
        }
    }

    fn register(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :{nick} reliably"));
        let welcome = self.until("001", |l| command(l) == Some("001"));
        assert!(welcome.contains(nick), "{welcome}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reliable_datagrams_are_dropped_and_counted_and_serving_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    let (mut bob, mut rel) = blocking(move || {
        let mut bob = TcpUser::connect(tcp, "bob");
        bob.send("JOIN #room");
        bob.until("bob's JOIN", |l| l.contains("JOIN"));
        let mut rel = ReliableUser::connect(udp, 0x5eed);
        rel.register("rel");
        rel.send("JOIN #room");
        rel.until("rel's JOIN", |l| {
            l.starts_with(":rel!") && l.contains("JOIN")
        });
        (bob, rel)
    })
    .await;
    let before = server.udp_stats();
    assert_eq!(before.reliable_sessions, 1, "{before:?}");
    let session_id = rel.session.session_id().expect("a session id");

    blocking(move || {
        let attacker = PlainUser::new(udp);
        let mut data = Vec::new();
        wire::encode_data(&mut data, session_id, 1000, &[3; 40]);
        let mut hostile: Vec<Vec<u8>> = vec![
            // Truncated Data for the real session: the session drops them.
            data[..data.len() - 1].to_vec(),
            data[..12].to_vec(),
            // Truncated before the session id, a reserved type, a short Initial.
            data[..5].to_vec(),
            vec![0xFF; 50],
            initial(7, &[])[..100].to_vec(),
        ];
        // Packets a server never takes, for the real session.
        hostile.push(
            Packet::PathChallenge {
                session_id,
                token: &[1; 13],
            }
            .to_vec(),
        );
        // Another session id: too short to answer, and long enough for a Reset.
        let mut unknown_short = Vec::new();
        wire::encode_data(&mut unknown_short, session_id ^ 1, 0, &[]);
        hostile.push(unknown_short);
        // Random bytes in both ranges.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50 {
            let len = (next(&mut seed) % 1300) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next(&mut seed) as u8).collect();
            if let Some(first) = d.first_mut() {
                if next(&mut seed) & 1 == 0 {
                    *first = 0xF8 + (*first % 8);
                }
            }
            hostile.push(d);
        }
        for d in &hostile {
            attacker.send_bytes(d);
        }
        // The last one is answered (a Reset): everything before it has been handled.
        let mut unknown_long = Vec::new();
        wire::encode_data(&mut unknown_long, session_id ^ 2, 0, &[3; 40]);
        attacker.send_bytes(&unknown_long);
        loop {
            let d = attacker.datagram();
            if matches!(wire::decode(&d), Ok(Packet::Reset { session_id: id, .. }) if id == session_id ^ 2)
            {
                break;
            }
        }
    })
    .await;
    let after = server.udp_stats();
    assert!(
        after.reliable_malformed >= before.reliable_malformed + 5,
        "{before:?}\n{after:?}"
    );
    assert!(
        after.reliable_dropped > before.reliable_dropped,
        "{after:?}"
    );
    assert!(
        after.reliable_unknown_session >= before.reliable_unknown_session + 2,
        "{after:?}"
    );
    assert!(after.resets_sent > before.resets_sent, "{after:?}");
    assert_eq!(
        after.reliable_sessions, 1,
        "the session lives on: {after:?}"
    );
    assert_eq!(after.reliable_sessions_opened, 1, "{after:?}");

    blocking(move || {
        rel.send("PRIVMSG #room :still here");
        let heard = bob.until("rel's message", |l| l.contains("PRIVMSG #room"));
        assert!(
            heard.starts_with(":rel!") && heard.ends_with(":still here"),
            "{heard}"
        );
        bob.send("PRIVMSG rel :and so am I");
        let dm = rel.until("bob's message", |l| l.contains("PRIVMSG rel"));
        assert!(dm.ends_with(":and so am I"), "{dm}");
    })
    .await;
    stop(server).await;
}

/// xorshift64*: reproducible bytes for hostile input.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_session_moves_to_a_new_client_address_after_validating_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    blocking(move || {
        let mut bob = TcpUser::connect(tcp, "bob");
        let mut rel = ReliableUser::connect(udp, 42);
        rel.register("roamer");
        rel.send("PRIVMSG bob :from my first address");
        bob.until("the first message", |l| {
            l.ends_with(":from my first address")
        });

        // The laptop changes network: same session, new address.
        rel.socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rel.session.ping();
        rel.send("PRIVMSG bob :from my second address");
        bob.until("the second message", |l| {
            l.ends_with(":from my second address")
        });
        bob.send("PRIVMSG roamer :found you");
        let dm = rel.until("bob's answer at the new address", |l| {
            l.ends_with(":found you")
        });
        assert!(dm.starts_with(":bob!"), "{dm}");
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.migrations, 1, "{stats:?}");
    assert_eq!(stats.reliable_sessions_opened, 1, "{stats:?}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_plain_session_is_pinged_then_dropped_and_its_room_sees_it_quit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |c| {
        c.limits.ping_interval = 1;
        c.limits.ping_timeout = 1;
    })
    .await;
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    blocking(move || {
        let mut dave = PlainUser::new(udp);
        dave.register("dave");
        dave.send("JOIN #quiet\r\n");
        dave.until("JOIN", |l| l.starts_with(":dave!") && l.contains("JOIN"));
        let mut bob = TcpUser::connect(tcp, "bob");
        bob.send("JOIN #quiet");
        bob.until("bob's JOIN", |l| {
            l.starts_with(":bob!") && l.contains("JOIN")
        });
        // Bob answers his PINGs; dave's script has stopped reading and answering.
        let quit = loop {
            let line = bob.until("dave's QUIT", |l| {
                l.starts_with("PING") || (l.starts_with(":dave!") && l.contains("QUIT"))
            });
            match line.strip_prefix("PING ") {
                Some(token) => bob.send(&format!("PONG {token}")),
                None => break line,
            }
        };
        assert!(quit.contains("Ping timeout"), "{quit}");
        // What dave's socket got: the server's PING, then the end.
        dave.until("the PING", |l| l.starts_with("PING"));
        let error = dave.until("ERROR", |l| l.starts_with("ERROR"));
        assert!(error.contains("Ping timeout"), "{error}");
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.plain_sessions_opened, 1, "{stats:?}");
    assert_eq!(stats.plain_sessions, 0, "the session is gone: {stats:?}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_mode_works_over_ipv6() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "[::1]", |_| {}).await;
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    assert!(udp.is_ipv6(), "{udp}");
    assert!(server.local_addrs()[0]
        .to_string()
        .starts_with("udp://[::1]:"));
    blocking(move || {
        let mut erin = PlainUser::new(udp);
        erin.register("erin");
        let mut bob = TcpUser::connect(tcp, "bob");
        bob.send("PRIVMSG erin :over IPv6");
        let dm = erin.until("bob's message", |l| l.contains("PRIVMSG erin"));
        assert!(dm.ends_with(":over IPv6"), "{dm}");
        erin.send("WHOIS erin\r\n");
        let whois = erin.until("WHOIS", |l| command(l) == Some("311"));
        assert!(whois.contains("0::1"), "{whois}");
    })
    .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_datagrams_never_stop_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), "127.0.0.1", |_| {}).await;
    let udp = server.udp_addrs()[0];
    blocking(move || {
        let noise = PlainUser::new(udp);
        let mut seed = 0x1234_5678_9abc_def1u64;
        let pieces: [&[u8]; 8] = [
            b"NICK ",
            b"PONG :",
            b"\r\n",
            b"\n",
            b"USER x 0 * :",
            b"\xff",
            b"\xf8",
            b":",
        ];
        for _ in 0..500 {
            let mut d = Vec::new();
            for _ in 0..(next(&mut seed) % 12) {
                if matches!(next(&mut seed) % 3, 0) {
                    d.extend_from_slice(pieces[(next(&mut seed) % 8) as usize]);
                } else {
                    let len = next(&mut seed) % 40;
                    d.extend((0..len).map(|_| next(&mut seed) as u8));
                }
            }
            noise.send_bytes(&d);
        }
        // Still serving: a person registers as usual.
        let mut frank = PlainUser::new(udp);
        frank.register("frank");
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.plain_sessions_opened, 1, "frank's alone: {stats:?}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_at_its_limit_gets_a_new_plain_session_in_place_of_its_stalest() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Bob over TCP and two plain sessions fill 127.0.0.1's three slots.
    let server = start(dir.path(), "127.0.0.1", |c| c.limits.connections_per_ip = 3).await;
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    blocking(move || {
        let mut bob = TcpUser::connect(tcp, "bob");
        bob.send("JOIN #room");
        bob.until("bob's JOIN", |l| l.contains("JOIN"));
        let mut gone = PlainUser::new(udp);
        gone.register("gone");
        gone.send("JOIN #room\r\n");
        bob.until("gone's JOIN", |l| {
            l.starts_with(":gone!") && l.contains("JOIN")
        });
        let mut active = PlainUser::new(udp);
        active.register("active");

        let mut newcomer = PlainUser::new(udp);
        newcomer.register("newcomer");
        let quit = bob.until("gone's QUIT", |l| {
            l.starts_with(":gone!") && l.contains("QUIT")
        });
        assert!(quit.contains("Replaced by a newer UDP session"), "{quit}");
        let error = gone.until("ERROR", |l| l.starts_with("ERROR"));
        assert!(error.contains("Replaced"), "{error}");
        active.send("PRIVMSG bob :still connected\r\n");
        bob.until("active's message", |l| l.ends_with(":still connected"));
    })
    .await;
    let stats = server.udp_stats();
    assert_eq!(stats.evicted, 1, "{stats:?}");
    assert_eq!(stats.plain_sessions, 2, "{stats:?}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_client_that_closes_at_once_still_has_every_line_delivered_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Flood control holds most lines back for a while after the client has closed.
    let server = start(dir.path(), "127.0.0.1", |c| {
        c.limits.flood_burst = 5;
        c.limits.flood_rate_per_sec = 100.0;
    })
    .await;
    let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
    blocking(move || {
        let mut bob = TcpUser::connect(tcp, "bob");
        bob.send("JOIN #room");
        bob.until("bob's JOIN", |l| l.contains("JOIN"));
        let mut rel = ReliableUser::connect(udp, 7);
        rel.register("sender");
        rel.send("JOIN #room");
        rel.until("the JOIN", |l| {
            l.starts_with(":sender!") && l.contains("JOIN")
        });
        for i in 0..60 {
            rel.send(&format!("PRIVMSG bob :message {i}"));
        }
        rel.session.close();
        let deadline = Instant::now() + WAIT;
        while !rel.session.is_closed() {
            rel.step("the close", deadline);
        }
        for i in 0..60 {
            let line = bob.until("a message", |l| {
                l.contains("PRIVMSG bob") || l.contains("QUIT")
            });
            assert!(
                line.ends_with(&format!(":message {i}")),
                "message {i}: {line}"
            );
        }
        let quit = bob.until("the QUIT", |l| {
            l.starts_with(":sender!") && l.contains("QUIT")
        });
        assert!(quit.contains("Connection closed"), "{quit}");
    })
    .await;
    stop(server).await;
}
