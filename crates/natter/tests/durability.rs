//! The durability contract, tested as the operator would break it: a pipelined load
//! of room and direct messages, the server killed with SIGKILL at random moments and
//! restarted on the same data directory, three times. Afterwards every message the
//! server acknowledged is in the room's history exactly once and in order, and every
//! acknowledged direct message reaches its offline recipient exactly once.
//!
//! The seed is printed; set NATTER_DURABILITY_SEED to replay a run.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use natter_client::{register, Connection, Registration, Target};
use natter_proto::Message;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(20);
const ROUNDS: usize = 3;
/// Messages each round pipelines at most: enough that the kill, at most 62 ms in,
/// usually comes before the end, however fast the server commits.
const PER_ROUND: usize = 10_000;

/// A small deterministic generator: the kill moments replay from the seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A natter server process on a free loopback port.
struct ServerProcess {
    child: Child,
    port: u16,
}

async fn start(data: &Path) -> ServerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["serve", "--listen", "tcp://127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--flood-burst", "0", "--flood-rate", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("natter starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let port = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on tcp://127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the server says where it listens");
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("ERROR") || line.contains("WARN") || line.contains("panicked") {
                eprintln!("server: {line}");
            }
        }
    });
    ServerProcess { child, port }
}

impl ServerProcess {
    async fn connect(&self, nick: &str, caps: &[&str]) -> Connection {
        let target = Target::Tcp {
            host: "127.0.0.1".into(),
            port: self.port,
        };
        let mut conn = Connection::connect(&target).await.expect("connects");
        register(&mut conn, &Registration::new(nick).caps(caps))
            .await
            .expect("registers");
        conn
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown path runs, exactly like a crash.
        self.child.start_kill().expect("the server can be killed");
    }
}

fn label_of(msg: &Message) -> Option<&str> {
    msg.tag("label")
}

/// Sends `count` labeled messages starting at `first` (alternating room and direct)
/// and returns the numbers whose echo came back, stopping when the connection dies.
/// Sends `count` labeled messages, alternately to the room and to bob, then records
/// each acknowledgement; `two_acked` is told when the second one arrives.
async fn pipeline(
    conn: &mut Connection,
    first: usize,
    count: usize,
    acked: &mut Vec<usize>,
    mut two_acked: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let before = acked.len();
    for n in first..first + count {
        let line = if n % 2 == 0 {
            format!("@label=m{n} PRIVMSG #load :room {n}")
        } else {
            format!("@label=m{n} PRIVMSG bob :direct {n}")
        };
        if conn.send(&line).await.is_err() {
            break;
        }
    }
    loop {
        match conn.recv_within(WAIT, "acknowledgements").await {
            Ok(msg) if msg.command == "PRIVMSG" => {
                if let Some(n) = label_of(&msg)
                    .and_then(|l| l.strip_prefix('m'))
                    .and_then(|n| n.parse().ok())
                {
                    acked.push(n);
                    if acked.len() - before >= 2 {
                        if let Some(tell) = two_acked.take() {
                            let _ = tell.send(());
                        }
                    }
                    if n == first + count - 1 {
                        return;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Pages the room's whole history backwards with CHATHISTORY BEFORE.
async fn room_history(conn: &mut Connection) -> Vec<String> {
    let mut texts = Vec::new();
    let mut before = "timestamp=2999-01-01T00:00:00.000Z".to_owned();
    for _page in 0..1000 {
        conn.send(&format!("CHATHISTORY BEFORE #load {before} 100"))
            .await
            .expect("asks history");
        let mut page = Vec::new();
        let mut oldest = None;
        loop {
            let msg = conn
                .recv_within(WAIT, "history")
                .await
                .expect("history comes");
            match msg.command.as_str() {
                "BATCH" if msg.param(0).is_some_and(|p| p.starts_with('-')) => break,
                "PRIVMSG" => {
                    if oldest.is_none() {
                        oldest = msg.tag("msgid").map(str::to_owned);
                    }
                    page.push(msg.param(1).unwrap_or("").to_owned());
                }
                "FAIL" => panic!("CHATHISTORY failed: {:?}", msg),
                _ => {}
            }
        }
        if page.is_empty() {
            break;
        }
        page.extend(texts);
        texts = page;
        before = format!("msgid={}", oldest.expect("a message id"));
    }
    texts
}

/// Logs in as bob with SASL and collects the direct messages delivered to him,
/// until at least `expected` have come; then one PING round trip, so that anything
/// delivered with them (a duplicate would be) is seen too.
async fn log_in_as_bob(server: &ServerProcess, expected: usize) -> Vec<String> {
    let target = Target::Tcp {
        host: "127.0.0.1".into(),
        port: server.port,
    };
    let mut conn = Connection::connect(&target).await.expect("connects");
    let plain = base64::engine::general_purpose::STANDARD.encode("\0bob\0bob-password");
    for line in [
        "CAP LS 302",
        "CAP REQ :sasl",
        "NICK bob",
        "USER bob 0 * :Bob",
        "AUTHENTICATE PLAIN",
    ] {
        conn.send(line).await.expect("sends");
    }
    conn.wait_for(WAIT, "AUTHENTICATE +", |m| m.command == "AUTHENTICATE")
        .await
        .expect("server asks");
    conn.send(&format!("AUTHENTICATE {plain}"))
        .await
        .expect("sends");
    conn.wait_for(WAIT, "903", |m| m.command == "903")
        .await
        .expect("SASL succeeds");
    conn.send("CAP END").await.expect("sends");
    let mut texts = Vec::new();
    let mut pinged = false;
    loop {
        let msg = conn
            .recv_within(WAIT, "offline messages")
            .await
            .expect("lines come");
        match msg.command.as_str() {
            "PRIVMSG" => texts.push(msg.param(1).unwrap_or("").to_owned()),
            "PONG" if pinged => break,
            _ => {}
        }
        if texts.len() >= expected && !pinged {
            conn.send("PING :offline-done").await.expect("sends");
            pinged = true;
        }
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_exactly_once_and_in_order() {
    let seed = std::env::var("NATTER_DURABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    println!("durability seed: {seed} (NATTER_DURABILITY_SEED={seed} replays it)");
    let mut rng = Lcg(seed);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let caps = [
        "echo-message",
        "labeled-response",
        "batch",
        "message-tags",
        "server-time",
    ];

    // bob owns an account and is offline for the whole load.
    let mut server = start(dir.path()).await;
    {
        let mut bob = server.connect("bob", &[]).await;
        bob.send("REGISTER * - bob-password").await.expect("sends");
        bob.wait_for(WAIT, "REGISTER SUCCESS", |m| {
            m.command == "REGISTER" && m.param(0) == Some("SUCCESS")
        })
        .await
        .expect("bob registers");
        bob.send("QUIT").await.expect("sends");
        // Only once the server has closed the connection is bob offline for certain:
        // messages sent to him before then would go to the closing connection, not
        // to his offline queue.
        tokio::time::timeout(WAIT, async { while let Ok(Some(_)) = bob.recv().await {} })
            .await
            .expect("the server closes bob's connection after his QUIT");
    }

    let mut acked = Vec::new();
    let mut next = 0;
    for round in 0..ROUNDS {
        let mut alice = server.connect("alice", &caps).await;
        alice.send("JOIN #load").await.expect("sends");
        alice
            .wait_for(WAIT, "366", |m| m.command == "366")
            .await
            .expect("joins");
        let count = PER_ROUND;
        // Kill somewhere in the middle of the pipelined load.
        let kill_after = Duration::from_millis(rng.below(60) + 2);
        let before = acked.len();
        // The first round is killed only once a room message and a direct message
        // are acknowledged, so that every run has both to look for afterwards.
        let (two_acked, first_acks) = tokio::sync::oneshot::channel();
        let load = pipeline(
            &mut alice,
            next,
            count,
            &mut acked,
            (round == 0).then_some(two_acked),
        );
        let clock = async {
            if round == 0 {
                let _ = first_acks.await;
            }
            tokio::time::sleep(kill_after).await;
        };
        tokio::select! {
            () = load => {}
            () = clock => {}
        }
        server.kill();
        // What was acknowledged before the kill is on record; read the rest of the
        // acknowledgements that were already on their way.
        pipeline_drain(&mut alice, &mut acked).await;
        println!(
            "round {round}: {} acknowledged before the kill",
            acked.len() - before
        );
        let _ = server.child.wait().await;
        next += count;
        server = start(dir.path()).await;
    }

    let mut reader = server.connect("reader", &caps).await;
    reader.send("JOIN #load").await.expect("sends");
    reader
        .wait_for(WAIT, "366", |m| m.command == "366")
        .await
        .expect("joins");
    let history = room_history(&mut reader).await;
    let expected = acked.iter().filter(|n| *n % 2 == 1).count();
    let offline = log_in_as_bob(&server, expected).await;

    let acked_room: Vec<String> = acked
        .iter()
        .filter(|n| *n % 2 == 0)
        .map(|n| format!("room {n}"))
        .collect();
    let acked_direct: Vec<String> = acked
        .iter()
        .filter(|n| *n % 2 == 1)
        .map(|n| format!("direct {n}"))
        .collect();
    assert!(
        !acked_room.is_empty() && !acked_direct.is_empty(),
        "the load was acknowledged at all (seed {seed})"
    );
    assert_exactly_once_in_order("room history", &history, &acked_room, seed);
    assert_exactly_once_in_order("offline delivery", &offline, &acked_direct, seed);
}

/// Reads acknowledgements until the dead connection ends.
async fn pipeline_drain(conn: &mut Connection, acked: &mut Vec<usize>) {
    while let Ok(msg) = conn
        .recv_within(Duration::from_secs(5), "acknowledgements")
        .await
    {
        if msg.command == "PRIVMSG" {
            if let Some(n) = label_of(&msg)
                .and_then(|l| l.strip_prefix('m'))
                .and_then(|n| n.parse().ok())
            {
                acked.push(n);
            }
        }
    }
}

/// Every acknowledged text appears exactly once; nothing appears twice; what
/// appears is in the order it was sent.
fn assert_exactly_once_in_order(what: &str, seen: &[String], acked: &[String], seed: u64) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for text in seen {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "{what}: duplicates {duplicated:?} (seed {seed})"
    );
    let missing: Vec<_> = acked
        .iter()
        .filter(|t| !counts.contains_key(t.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: acknowledged but lost: {missing:?} (seed {seed})"
    );
    let numbers: Vec<usize> = seen
        .iter()
        .filter_map(|t| t.rsplit(' ').next().and_then(|n| n.parse().ok()))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "{what}: out of order: {numbers:?} (seed {seed})"
    );
}
