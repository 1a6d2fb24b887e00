//! A scripted IRC client for tests: send lines, then expect what comes back.
//!
//! Every wait is bounded ([`DEFAULT_TIMEOUT`] unless changed) and ends on an event: a
//! matching message, the `PONG` to a `PING` the client sent, or the end of the
//! connection. A failed expectation panics with what the client saw instead, so that
//! a failing test explains itself.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use natter_client::{register, ClientError, Connection, Registered, Registration, Target};
use natter_proto::Message;
use tokio::time::{timeout, timeout_at, Instant};

use crate::server::TestServer;

/// How long any single expectation waits unless the test says otherwise. Generous
/// for a loaded CI machine; a passing test never waits for it, since every wait ends
/// on an event.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines quoted in a failure message, at most: the last ones before the failure are
/// the ones that explain it, and a flood must not bury the message.
const QUOTED_LINES: usize = 40;

/// Makes every `PING` token unique across the test process, so that a `PONG` cannot be
/// mistaken for the answer to another client's (or another test's) `PING`.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Accessors that make predicates on messages short.
pub trait MessageExt {
    /// The nick in the source (`nick` of `nick!user@host`), if the message has one.
    fn source_nick(&self) -> Option<&str>;
    /// Whether the message comes from `nick` (ASCII case-insensitively, as natter's
    /// default casemapping compares).
    fn is_from(&self, nick: &str) -> bool;
    /// The last parameter (the text of a PRIVMSG, the reason of a QUIT), or `""`.
    fn text(&self) -> &str;
    /// The message as the wire line it was, without CR LF, for failure messages.
    fn line(&self) -> String;
}

impl MessageExt for Message {
    fn source_nick(&self) -> Option<&str> {
        let source = self.source.as_deref()?;
        Some(source.split('!').next().unwrap_or(source))
    }

    fn is_from(&self, nick: &str) -> bool {
        self.source_nick()
            .is_some_and(|n| n.eq_ignore_ascii_case(nick))
    }

    fn text(&self) -> &str {
        self.params.last().unwrap_or("")
    }

    fn line(&self) -> String {
        String::from_utf8_lossy(&self.to_line())
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    }
}

/// What one read produced.
enum Next {
    Line(Message, String),
    /// End of file, or a broken connection (with the error).
    Closed(Option<String>),
    TimedOut,
}

/// Lines received while waiting for something else: quoted when the wait fails.
#[derive(Default)]
struct Seen {
    last: VecDeque<String>,
    total: usize,
}

impl Seen {
    fn push(&mut self, line: String) {
        self.total += 1;
        if self.last.len() == QUOTED_LINES {
            self.last.pop_front();
        }
        self.last.push_back(line);
    }

    fn describe(&self) -> String {
        if self.total == 0 {
            return "nothing was received".to_owned();
        }
        let mut text = format!("received instead ({} lines", self.total);
        if self.total > self.last.len() {
            text.push_str(&format!(", the last {} shown", self.last.len()));
        }
        text.push_str("):");
        for line in &self.last {
            text.push_str("\n    ");
            text.push_str(line);
        }
        text
    }
}

/// A client connection driven by a test. Failures panic with an explanation: this is
/// test support, and a panic with the right message is the most useful failure.
pub struct TestClient {
    conn: Connection,
    /// Who this is in failure messages: the nick once registered.
    label: String,
    timeout: Duration,
    registered: Option<Registered>,
}

impl TestClient {
    /// Connects to `target`.
    pub async fn connect(target: Target) -> TestClient {
        let conn = match timeout(DEFAULT_TIMEOUT, Connection::connect(&target)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!(
                "connecting to {target} took more than {} s",
                DEFAULT_TIMEOUT.as_secs()
            ),
        };
        TestClient {
            conn,
            label: format!("client on {target}"),
            timeout: DEFAULT_TIMEOUT,
            registered: None,
        }
    }

    /// Connects to the server's IPv4 TCP listener.
    pub async fn connect_tcp(server: &TestServer) -> TestClient {
        TestClient::connect(server.tcp_target()).await
    }

    /// Connects to the server's IPv6 TCP listener (`[::1]`).
    pub async fn connect_v6(server: &TestServer) -> TestClient {
        TestClient::connect(server.v6_target()).await
    }

    /// Connects to the server's Unix socket.
    pub async fn connect_unix(server: &TestServer) -> TestClient {
        TestClient::connect(server.unix_target()).await
    }

    /// Changes how long each expectation waits.
    pub fn with_timeout(mut self, within: Duration) -> TestClient {
        self.timeout = within;
        self
    }

    /// Changes how long each expectation waits.
    pub fn set_timeout(&mut self, within: Duration) {
        self.timeout = within;
    }

    /// The registered nick, or a description of the connection before registration.
    pub fn nick(&self) -> &str {
        &self.label
    }

    /// What registration returned (nick, capabilities, ISUPPORT), once registered.
    pub fn registered(&self) -> Option<&Registered> {
        self.registered.as_ref()
    }

    /// The connection underneath, for what these helpers do not cover.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Registers as `nick` without capabilities, up to the end of the MOTD.
    #[track_caller]
    pub fn register(&mut self, nick: &str) -> impl Future<Output = Registered> + '_ {
        let at = Location::caller();
        self.register_at(at, Registration::new(nick))
    }

    /// Registers as `nick` asking for `caps`; fails unless every one is acknowledged.
    #[track_caller]
    pub fn register_with_caps<'a>(
        &'a mut self,
        nick: &'a str,
        caps: &'a [&'a str],
    ) -> impl Future<Output = Registered> + 'a {
        let at = Location::caller();
        self.register_with_caps_at(at, nick, caps)
    }

    /// The body of [`TestClient::register_with_caps`].
    pub(crate) async fn register_with_caps_at(
        &mut self,
        at: &'static Location<'static>,
        nick: &str,
        caps: &[&str],
    ) -> Registered {
        let registered = self
            .register_at(at, Registration::new(nick).caps(caps))
            .await;
        let missing: Vec<&str> = caps
            .iter()
            .copied()
            .filter(|c| !registered.caps.iter().any(|a| a == c))
            .collect();
        assert!(
            missing.is_empty(),
            "{at}: {nick}: the server did not acknowledge {missing:?} (acknowledged: {:?})",
            registered.caps
        );
        registered
    }

    /// Registers as `registration` says; fails the test if the server refuses.
    #[track_caller]
    pub fn register_as(
        &mut self,
        registration: Registration,
    ) -> impl Future<Output = Registered> + '_ {
        let at = Location::caller();
        self.register_at(at, registration)
    }

    /// The body of every `register*`: registers, or fails saying where.
    pub(crate) async fn register_at(
        &mut self,
        at: &'static Location<'static>,
        registration: Registration,
    ) -> Registered {
        let nick = registration.nick.clone();
        match self.try_register(registration).await {
            Ok(registered) => registered,
            Err(e) => panic!("{at}: {}: registering as {nick} failed: {e}", self.label),
        }
    }

    /// Registers as `registration` says, returning the refusal if there is one.
    pub async fn try_register(
        &mut self,
        mut registration: Registration,
    ) -> Result<Registered, ClientError> {
        registration.timeout = self.timeout;
        let registered = register(&mut self.conn, &registration).await?;
        self.label = registered.nick.clone();
        self.registered = Some(registered.clone());
        Ok(registered)
    }

    /// Sends one line (CR LF is added).
    #[track_caller]
    pub fn send<'a>(&'a mut self, line: &'a str) -> impl Future<Output = ()> + 'a {
        let at = Location::caller();
        self.send_at(at, line)
    }

    /// Sends bytes exactly as given: several lines at once, or deliberately bad input.
    #[track_caller]
    pub fn send_raw<'a>(&'a mut self, bytes: &'a [u8]) -> impl Future<Output = ()> + 'a {
        let at = Location::caller();
        async move {
            if let Err(e) = self.try_send_raw(bytes).await {
                panic!(
                    "{at}: {}: cannot send {} raw bytes: {e}",
                    self.label,
                    bytes.len()
                );
            }
        }
    }

    /// Sends bytes, returning a failure rather than panicking; a send that cannot
    /// complete within the timeout (a server that stopped reading) is a failure too.
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match timeout(self.timeout, self.conn.send_raw(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::TimedOut {
                waiting_for: "the server to take what was sent".into(),
                after: self.timeout,
            }),
        }
    }

    /// The next message, whatever it is.
    #[track_caller]
    pub fn recv(&mut self) -> impl Future<Output = Message> + '_ {
        let at = Location::caller();
        self.expect_at(at, "any message".into(), |_| true)
    }

    /// Reads until a message satisfies `wanted` and returns it; messages before it are
    /// consumed. Fails on timeout or close, quoting what was received instead.
    #[track_caller]
    pub fn expect<'a>(
        &'a mut self,
        wanted: impl FnMut(&Message) -> bool + 'a,
    ) -> impl Future<Output = Message> + 'a {
        let at = Location::caller();
        self.expect_at(at, "a message matching the test's condition".into(), wanted)
    }

    /// [`TestClient::expect`] with a description of what is awaited, for the failure
    /// message.
    #[track_caller]
    pub fn expect_that<'a>(
        &'a mut self,
        what: &str,
        wanted: impl FnMut(&Message) -> bool + 'a,
    ) -> impl Future<Output = Message> + 'a {
        let at = Location::caller();
        self.expect_at(at, what.to_owned(), wanted)
    }

    /// The first reply with numeric `code` (`"433"`).
    #[track_caller]
    pub fn expect_numeric<'a>(&'a mut self, code: &'a str) -> impl Future<Output = Message> + 'a {
        let at = Location::caller();
        self.expect_at(at, format!("numeric {code}"), move |m| m.command == code)
    }

    /// The first message with `command` (`"PRIVMSG"`, `"JOIN"`).
    #[track_caller]
    pub fn expect_command(&mut self, command: &str) -> impl Future<Output = Message> + '_ {
        let at = Location::caller();
        let command = command.to_ascii_uppercase();
        self.expect_at(at, format!("a {command}"), move |m| m.command == command)
    }

    /// The first `PRIVMSG` from `from` to `to` saying exactly `text`.
    #[track_caller]
    pub fn expect_privmsg<'a>(
        &'a mut self,
        from: &'a str,
        to: &'a str,
        text: &'a str,
    ) -> impl Future<Output = Message> + 'a {
        let at = Location::caller();
        self.expect_at(at, format!(":{from} PRIVMSG {to} :{text}"), move |m| {
            m.command == "PRIVMSG"
                && m.is_from(from)
                && m.param(0).is_some_and(|t| t.eq_ignore_ascii_case(to))
                && m.text() == text
        })
    }

    /// Reads until the server closes the connection and returns everything received
    /// before (typically ending with an `ERROR`). A reset counts as a close.
    #[track_caller]
    pub fn expect_closed(&mut self) -> impl Future<Output = Vec<Message>> + '_ {
        let at = Location::caller();
        self.expect_closed_at(at)
    }

    /// Everything the server sends before it answers a `PING` with a fresh token. The
    /// server handles a client's lines in order, so what it meant to send in answer to
    /// earlier lines has arrived by then. The server's own keepalive `PING`s are
    /// answered and left out.
    #[track_caller]
    pub fn collect_until_pong(&mut self) -> impl Future<Output = Vec<Message>> + '_ {
        let at = Location::caller();
        self.collect_until_pong_at(at)
    }

    /// Asserts that the server has nothing more for this client right now: nothing
    /// arrives before the answer to a fresh `PING` (keepalive `PING`s aside).
    #[track_caller]
    pub fn assert_nothing_more(&mut self) -> impl Future<Output = ()> + '_ {
        let at = Location::caller();
        async move {
            let extra = self.collect_until_pong_at(at).await;
            if !extra.is_empty() {
                let lines: Vec<String> =
                    extra.iter().map(|m| format!("    {}", m.line())).collect();
                panic!(
                    "{at}: {}: expected nothing more, but received {} lines:\n{}",
                    self.label,
                    extra.len(),
                    lines.join("\n")
                );
            }
        }
    }

    /// Joins `room` and waits for the end of its member list (366), the last line of a
    /// join; returns everything the join brought (JOIN, topic, NAMES).
    #[track_caller]
    pub fn join<'a>(&'a mut self, room: &'a str) -> impl Future<Output = Vec<Message>> + 'a {
        let at = Location::caller();
        async move {
            self.send_at(at, &format!("JOIN {room}")).await;
            let mut got = Vec::new();
            self.expect_at(at, format!("the end of NAMES (366) for {room}"), |m| {
                got.push(m.clone());
                m.command == "366" && m.param(1).is_some_and(|r| r.eq_ignore_ascii_case(room))
            })
            .await;
            got
        }
    }

    /// Sends `QUIT :reason` and waits until the server closes the connection.
    #[track_caller]
    pub fn quit(mut self, reason: &str) -> impl Future<Output = Vec<Message>> + '_ {
        let at = Location::caller();
        async move {
            self.send_at(at, &format!("QUIT :{reason}")).await;
            self.expect_closed_at(at).await
        }
    }

    /// Sends a line, or fails saying where.
    async fn send_at(&mut self, at: &'static Location<'static>, line: &str) {
        if let Err(e) = self.try_send_raw(format!("{line}\r\n").as_bytes()).await {
            panic!("{at}: {}: cannot send {line:?}: {e}", self.label);
        }
    }

    /// The body of [`TestClient::expect_closed`].
    async fn expect_closed_at(&mut self, at: &'static Location<'static>) -> Vec<Message> {
        let deadline = Instant::now() + self.timeout;
        let mut got = Vec::new();
        let mut seen = Seen::default();
        loop {
            match self.next(at, deadline).await {
                Next::Line(msg, raw) => {
                    seen.push(raw);
                    got.push(msg);
                }
                Next::Closed(_) => return got,
                Next::TimedOut => panic!(
                    "{at}: {}: the server did not close the connection within {} s; {}",
                    self.label,
                    self.timeout.as_secs_f32(),
                    seen.describe()
                ),
            }
        }
    }

    /// The body of every `expect_*`: reads until `wanted`, or fails saying where.
    async fn expect_at(
        &mut self,
        at: &'static Location<'static>,
        what: String,
        mut wanted: impl FnMut(&Message) -> bool,
    ) -> Message {
        let deadline = Instant::now() + self.timeout;
        let mut seen = Seen::default();
        loop {
            match self.next(at, deadline).await {
                Next::Line(msg, raw) => {
                    if wanted(&msg) {
                        return msg;
                    }
                    seen.push(raw);
                }
                Next::Closed(why) => panic!(
                    "{at}: {}: waiting for {what}, the connection closed ({}); {}",
                    self.label,
                    why.as_deref().unwrap_or("end of file"),
                    seen.describe()
                ),
                Next::TimedOut => panic!(
                    "{at}: {}: waited {} s for {what} in vain; {}",
                    self.label,
                    self.timeout.as_secs_f32(),
                    seen.describe()
                ),
            }
        }
    }

    async fn collect_until_pong_at(&mut self, at: &'static Location<'static>) -> Vec<Message> {
        let token = format!("testkit-{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        self.send_at(at, &format!("PING :{token}")).await;
        let deadline = Instant::now() + self.timeout;
        let mut got = Vec::new();
        let mut seen = Seen::default();
        loop {
            match self.next(at, deadline).await {
                Next::Line(msg, _) if msg.command == "PONG" && msg.text() == token => return got,
                // Keepalive, answered on the way: not something the server said to
                // this client about the chat.
                Next::Line(msg, _) if msg.command == "PING" => {}
                Next::Line(msg, raw) => {
                    seen.push(raw);
                    got.push(msg);
                }
                Next::Closed(why) => panic!(
                    "{at}: {}: waiting for PONG {token}, the connection closed ({}); {}",
                    self.label,
                    why.as_deref().unwrap_or("end of file"),
                    seen.describe()
                ),
                Next::TimedOut => panic!(
                    "{at}: {}: no PONG {token} within {} s; {}",
                    self.label,
                    self.timeout.as_secs_f32(),
                    seen.describe()
                ),
            }
        }
    }

    /// Reads one line, answering a server `PING` on the way.
    async fn next(&mut self, at: &'static Location<'static>, deadline: Instant) -> Next {
        let line = match timeout_at(deadline, self.conn.recv_raw()).await {
            Err(_) => return Next::TimedOut,
            Ok(Ok(None)) => return Next::Closed(None),
            Ok(Err(e)) => return Next::Closed(Some(e.to_string())),
            Ok(Ok(Some(line))) => line,
        };
        let raw = String::from_utf8_lossy(&line).into_owned();
        let msg = Message::parse(&line).unwrap_or_else(|e| {
            panic!(
                "{at}: {}: the server sent a line that does not parse ({e}): {raw:?}",
                self.label
            )
        });
        if msg.command == "PING" {
            let token = msg.text().to_owned();
            // A failed answer shows up as a close on the next read.
            let _ = self
                .try_send_raw(format!("PONG :{token}\r\n").as_bytes())
                .await;
        }
        Next::Line(msg, raw)
    }
}
