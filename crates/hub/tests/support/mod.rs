//! A test harness that drives the [`Hub`] directly: no sockets, a clock that only moves
//! when a test says so, and an inbox per client holding the lines it was sent.
//!
//! Each test file includes this module with `mod support;`; not every file uses every
//! helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use natter_hub::{
    ClientId, ClientInfo, Effect, Hub, HubConfig, Now, Outbox, StoreJob, StoreOutcome, Transport,
};
use natter_proto::{Message, ParseError};
use natter_store::SqliteStore;

/// The server name every numeric comes from (the default configuration's).
pub const SERVER: &str = "natter.local";

/// The wall-clock second the fake clock starts at: 2023-11-14T22:13:20Z.
pub const START_UNIX: u64 = 1_700_000_000;

/// `START_UNIX` as an IRCv3 `server-time` value.
pub const START_TIME_TAG: &str = "2023-11-14T22:13:20.000Z";

/// The host every test client connects from.
pub const HOST: &str = "127.0.0.1";

/// A hub, a fake clock, and what each client has received but the test not yet read.
pub struct TestHub {
    pub hub: Hub,
    pub now: Now,
    next_id: u64,
    inbox: HashMap<ClientId, Vec<String>>,
    effects: Vec<Effect>,
    /// A real store, in memory: store jobs run as soon as the hub asks, unless
    /// `hold_store` is set, when they wait in `held_jobs` for [`TestHub::run_store`].
    pub store: SqliteStore,
    pub hold_store: bool,
    pub held_jobs: Vec<(u64, StoreJob)>,
}

/// Password hashes the harness makes and checks itself: `fake$` and the password.
pub const FAKE_HASH_PREFIX: &str = "fake$";

impl Default for TestHub {
    fn default() -> Self {
        TestHub::new()
    }
}

impl TestHub {
    /// A hub with the default configuration.
    pub fn new() -> TestHub {
        TestHub::with_config(HubConfig::default())
    }

    /// A hub with the default configuration changed by `change`.
    pub fn with(change: impl FnOnce(&mut HubConfig)) -> TestHub {
        let mut config = HubConfig::default();
        change(&mut config);
        TestHub::with_config(config)
    }

    pub fn with_config(config: HubConfig) -> TestHub {
        let now = Now {
            mono: Instant::now(),
            wall: UNIX_EPOCH + Duration::from_secs(START_UNIX),
        };
        TestHub {
            hub: Hub::new(config, now),
            now,
            next_id: 1,
            inbox: HashMap::new(),
            effects: Vec::new(),
            store: SqliteStore::in_memory().expect("an in-memory store opens"),
            hold_store: false,
            held_jobs: Vec::new(),
        }
    }

    // ---- the clock ---------------------------------------------------------

    /// Moves the clock forward. Nothing happens until the next event or [`TestHub::tick`].
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.after(by);
    }

    /// Moves the clock forward by whole seconds.
    pub fn advance_secs(&mut self, secs: u64) {
        self.advance(Duration::from_secs(secs));
    }

    /// Seconds since the Unix epoch on the fake wall clock.
    pub fn unix_now(&self) -> u64 {
        self.now
            .wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// Lets the hub see that time passed.
    pub fn tick(&mut self) {
        let mut out = Outbox::new();
        self.hub.tick(self.now, &mut out);
        self.collect(out);
    }

    // ---- events ------------------------------------------------------------

    /// Opens a connection from [`HOST`] over TCP without registering it.
    pub fn open(&mut self) -> ClientId {
        self.open_from(HOST, Transport::Tcp)
    }

    /// Opens a connection from `host` over `transport` without registering it.
    pub fn open_from(&mut self, host: &str, transport: Transport) -> ClientId {
        let id = ClientId(self.next_id);
        self.next_id += 1;
        let info = ClientInfo {
            host: host.to_owned(),
            transport,
        };
        let mut out = Outbox::new();
        self.hub.connect(id, info, self.now, &mut out);
        self.inbox.entry(id).or_default();
        self.collect(out);
        id
    }

    /// Connects and registers `nick` (user `nick`, realname `Real <nick>`), checks the
    /// welcome arrived, and throws the welcome burst away.
    pub fn connect(&mut self, nick: &str) -> ClientId {
        self.connect_with_caps(nick, &[])
    }

    /// As [`TestHub::connect`], negotiating `caps` first with `CAP LS 302` and `CAP REQ`.
    pub fn connect_with_caps(&mut self, nick: &str, caps: &[&str]) -> ClientId {
        let id = self.open();
        if !caps.is_empty() {
            self.send(id, "CAP LS 302");
            self.send(id, &format!("CAP REQ :{}", caps.join(" ")));
        }
        self.send(id, &format!("NICK {nick}"));
        self.send(id, &format!("USER {nick} 0 * :Real {nick}"));
        if !caps.is_empty() {
            self.send(id, "CAP END");
        }
        let burst = self.take(id);
        assert!(
            burst.iter().any(|l| numeric_of(l) == Some("001")),
            "{nick} did not register; got {burst:#?}"
        );
        if !caps.is_empty() {
            let ack = format!(":{SERVER} CAP * ACK :{}", caps.join(" "));
            assert!(burst.contains(&ack), "{nick}: no `{ack}` in {burst:#?}");
        }
        id
    }

    /// A line from a client, as raw text. A line the parser refuses goes to
    /// [`Hub::bad_line`], as the server would send it.
    pub fn send(&mut self, id: ClientId, raw: &str) {
        self.send_bytes(id, raw.as_bytes());
    }

    /// A line from a client, as raw bytes (for invalid UTF-8 and the like).
    pub fn send_bytes(&mut self, id: ClientId, raw: &[u8]) {
        let mut out = Outbox::new();
        match Message::parse(raw) {
            Ok(msg) => self.hub.line(id, msg, self.now, &mut out),
            Err(error) => self.hub.bad_line(id, error, self.now, &mut out),
        }
        self.collect(out);
    }

    /// A line the server could not parse (as the framer reports over-long lines).
    pub fn send_bad(&mut self, id: ClientId, error: ParseError) {
        let mut out = Outbox::new();
        self.hub.bad_line(id, error, self.now, &mut out);
        self.collect(out);
    }

    /// The connection dropped on its own.
    pub fn disconnect(&mut self, id: ClientId, reason: &str) {
        let mut out = Outbox::new();
        self.hub.disconnect(id, reason, self.now, &mut out);
        self.collect(out);
    }

    /// The server is stopping.
    pub fn shutdown(&mut self) {
        let mut out = Outbox::new();
        self.hub.shutdown(self.now, &mut out);
        self.collect(out);
    }

    /// The server finished a password check the hub asked for.
    pub fn password_checked(&mut self, ticket: u64, ok: bool) {
        let mut out = Outbox::new();
        self.hub.password_checked(ticket, ok, self.now, &mut out);
        self.collect(out);
    }

    // ---- what came out -----------------------------------------------------

    /// The lines `id` received since the last `take`, without their CR LF.
    pub fn take(&mut self, id: ClientId) -> Vec<String> {
        self.inbox
            .get_mut(&id)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Drops whatever every client received so far.
    pub fn clear(&mut self) {
        for lines in self.inbox.values_mut() {
            lines.clear();
        }
        self.effects.clear();
    }

    /// The effects asked for since the last `take_effects`.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Sends a line and returns exactly what the sender received in reply.
    pub fn ask(&mut self, id: ClientId, raw: &str) -> Vec<String> {
        self.send(id, raw);
        self.take(id)
    }

    /// Asserts that `id` received nothing since the last `take`.
    pub fn assert_silent(&mut self, id: ClientId) {
        let lines = self.take(id);
        assert!(lines.is_empty(), "expected silence, got {lines:#?}");
    }

    /// Takes in what the hub put out for one call, as the server does at the end of
    /// a batch of events: its writes are asked of the store first.
    fn collect(&mut self, mut out: Outbox) {
        self.hub.end_batch(&mut out);
        for (to, bytes) in out.deliveries {
            let text = String::from_utf8(bytes.to_vec()).expect("the hub sent invalid UTF-8");
            let line = text
                .strip_suffix("\r\n")
                .unwrap_or_else(|| panic!("line without CR LF: {text:?}"));
            assert!(
                !line.contains('\r') && !line.contains('\n'),
                "a line holds a line break: {line:?}"
            );
            assert!(
                line.len() <= 8191 + 512,
                "line longer than IRC allows: {line:?}"
            );
            self.inbox.entry(to).or_default().push(line.to_owned());
        }
        for effect in out.effects {
            match effect {
                Effect::Store { ticket, job } if self.hold_store => {
                    self.held_jobs.push((ticket, job))
                }
                Effect::Store { ticket, job } => self.finish_job(ticket, job),
                Effect::HashPassword { ticket, password } => {
                    let mut out = Outbox::new();
                    let hash = format!("{FAKE_HASH_PREFIX}{password}");
                    self.hub
                        .password_hashed(ticket, Some(hash), self.now, &mut out);
                    self.collect(out);
                }
                Effect::VerifyPassword {
                    ticket,
                    password,
                    hash,
                    ..
                } if hash.starts_with(FAKE_HASH_PREFIX) => {
                    let ok = hash == format!("{FAKE_HASH_PREFIX}{password}");
                    self.password_checked(ticket, ok);
                }
                other => self.effects.push(other),
            }
        }
    }

    /// Runs a store job on the in-memory store and tells the hub.
    fn finish_job(&mut self, ticket: u64, job: StoreJob) {
        let is_read = !matches!(job, StoreJob::Write(_));
        let outcome = job.run(&mut self.store);
        // A failed read is a bug in the store or in what the hub asked of it.
        if let (true, StoreOutcome::Failed(why)) = (is_read, &outcome) {
            panic!("a store read failed: {why}");
        }
        let mut out = Outbox::new();
        self.hub.store_done(ticket, outcome, self.now, &mut out);
        self.collect(out);
    }

    /// Runs the store jobs held back while `hold_store` was set, in order.
    pub fn run_store(&mut self) {
        for (ticket, job) in std::mem::take(&mut self.held_jobs) {
            self.finish_job(ticket, job);
        }
    }

    // ---- shortcuts ---------------------------------------------------------

    /// Joins `room` and throws the JOIN, topic and NAMES replies away; everyone
    /// already in the room keeps the JOIN they saw.
    pub fn join(&mut self, id: ClientId, room: &str) {
        self.send(id, &format!("JOIN {room}"));
        let lines = self.take(id);
        assert!(
            lines.iter().any(|l| l.contains(" JOIN ")),
            "join of {room} failed: {lines:#?}"
        );
    }

    /// Runs OPER with a configured account and lets the (fake) hash check succeed.
    pub fn make_oper(&mut self, id: ClientId, account: &str) {
        self.send(id, &format!("OPER {account} secret"));
        let ticket = match self.take_effects().as_slice() {
            [Effect::VerifyPassword { ticket, .. }] => *ticket,
            other => panic!("expected one VerifyPassword, got {other:?}"),
        };
        self.password_checked(ticket, true);
        let lines = self.take(id);
        assert!(
            lines.iter().any(|l| numeric_of(l) == Some("381")),
            "{lines:#?}"
        );
    }
}

// ---- reading lines ---------------------------------------------------------

/// `nick!nick@127.0.0.1`: the source of what a client registered by
/// [`TestHub::connect`] says.
pub fn source(nick: &str) -> String {
    format!("{nick}!{nick}@{HOST}")
}

/// The line parsed back into a message (tags, source, command, params).
pub fn parse(line: &str) -> Message {
    Message::parse(line.as_bytes()).unwrap_or_else(|e| panic!("unparsable {line:?}: {e}"))
}

/// The line without its tags.
pub fn untagged(line: &str) -> &str {
    match line.strip_prefix('@') {
        Some(rest) => rest.split_once(' ').map(|(_, r)| r).unwrap_or(""),
        None => line,
    }
}

/// The value of one tag of a line, if it has it.
pub fn tag(line: &str, key: &str) -> Option<String> {
    parse(line).tag(key).map(str::to_owned)
}

/// The tag keys of a line, in order.
pub fn tag_keys(line: &str) -> Vec<String> {
    parse(line).tags.into_iter().map(|t| t.key).collect()
}

/// The numeric of a server reply (`001`), if the line is one.
pub fn numeric_of(line: &str) -> Option<&str> {
    let mut words = untagged(line).split(' ');
    let first = words.next()?;
    let command = if first.starts_with(':') {
        words.next()?
    } else {
        first
    };
    (command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit())).then_some(command)
}

/// The numerics among `lines`, in order.
pub fn numerics(lines: &[String]) -> Vec<&str> {
    lines.iter().filter_map(|l| numeric_of(l)).collect()
}

/// The one line carrying numeric `code`; fails if there is none or several.
pub fn the_numeric<'a>(lines: &'a [String], code: &str) -> &'a str {
    let found: Vec<&String> = lines
        .iter()
        .filter(|l| numeric_of(l) == Some(code))
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!("expected exactly one {code}, got {lines:#?}"),
    }
}

/// Asserts `lines` hold exactly the one server reply `:natter.local <rest>`.
pub fn assert_reply(lines: &[String], rest: &str) {
    assert_eq!(lines, [format!(":{SERVER} {rest}")]);
}

/// Lines sorted, for replies whose order the protocol does not fix.
pub fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// The wall-clock time a `SystemTime` stands for, as Unix seconds.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
