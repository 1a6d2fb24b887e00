//! A deterministic simulated network between one client session and a server made of a
//! `Listener` and a session table, wired exactly as the real server is meant to be.
//!
//! Time is simulated (no sleeps), and loss, duplication, reordering and delay are drawn
//! from a seeded generator, so any failure replays exactly from its seed.

#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_udp::{route, Config, Cookies, Incoming, Listener, Route, Session};

/// SplitMix64: tiny, fast, and good enough to make network faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    pub fn duration_up_to(&mut self, d: Duration) -> Duration {
        Duration::from_nanos(self.below(d.as_nanos() as u64 + 1))
    }
}

/// Fault rates and delays of the simulated link (the same both ways).
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back (delivered after later ones).
    pub reorder: f64,
    /// One-way base delay.
    pub delay: Duration,
    /// Uniform extra delay in [0, jitter].
    pub jitter: Duration,
    /// Largest datagram the path carries (UDP payload); larger ones are dropped, as a
    /// router drops a packet too large to forward when fragmenting is forbidden.
    pub mtu: usize,
}

impl Link {
    pub fn perfect() -> Link {
        Link {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
            mtu: usize::MAX,
        }
    }

    pub fn faulty(loss: f64) -> Link {
        Link {
            loss,
            duplicate: 0.05,
            reorder: 0.1,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            mtu: usize::MAX,
        }
    }
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on (time, sequence).
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A datagram the server sent, for amplification checks.
#[derive(Debug, Clone)]
pub struct Sent {
    pub to: SocketAddr,
    pub len: usize,
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub rng: Rng,
    pub link: Link,
    pub config: Config,
    pub server_addr: SocketAddr,
    /// The source address the client's datagrams carry now.
    pub client_addr: SocketAddr,
    /// Addresses at which datagrams still reach the client.
    pub client_reachable: HashSet<SocketAddr>,
    pub client: Session,
    pub listener: Listener,
    pub sessions: HashMap<u64, Session>,
    /// Sessions removed after draining.
    pub drained: u64,
    /// Every datagram the server sent, in order.
    pub server_sent: Vec<Sent>,
    /// Bytes the server received from each address.
    pub server_received_from: HashMap<SocketAddr, u64>,
    /// Datagrams the simulated network dropped.
    pub dropped: u64,
    /// Datagrams larger than the link's MTU, dropped.
    pub too_large: u64,
    /// When set, every datagram put on the wire is also recorded here.
    pub log: Option<Vec<Vec<u8>>>,
    /// Datagrams delivered to addresses nobody listens at: (from, to, bytes).
    pub stray: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    pub steps: u64,
    queue: BinaryHeap<InFlight>,
    seq: u64,
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

impl Sim {
    pub fn new(seed: u64, link: Link, config: Config) -> Sim {
        let t0 = Instant::now();
        let mut rng = Rng::new(seed);
        let server_addr = addr("192.0.2.1:6667");
        let client_addr = addr("198.51.100.10:50000");
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
        }
        let nonce = rng.next_u64();
        let client = Session::connect(t0, server_addr, nonce, config.clone());
        Sim {
            t0,
            now: t0,
            rng,
            link,
            config,
            server_addr,
            client_addr,
            client_reachable: HashSet::from([client_addr]),
            client,
            listener: Listener::new(Cookies::new(key, t0)),
            sessions: HashMap::new(),
            drained: 0,
            server_sent: Vec::new(),
            server_received_from: HashMap::new(),
            dropped: 0,
            too_large: 0,
            log: None,
            stray: Vec::new(),
            steps: 0,
            queue: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// The server's session for our client (there is only one in these tests).
    pub fn server(&mut self) -> Option<&mut Session> {
        self.sessions.values_mut().next()
    }

    /// Puts a datagram on the wire, subject to the link's faults.
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if let Some(log) = &mut self.log {
            log.push(bytes.clone());
        }
        if bytes.len() > self.link.mtu {
            self.too_large += 1;
            return;
        }
        let copies = if self.rng.chance(self.link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.rng.chance(self.link.loss) {
                self.dropped += 1;
                continue;
            }
            let mut delay = self.link.delay + self.rng.duration_up_to(self.link.jitter);
            if self.rng.chance(self.link.reorder) {
                delay += self.link.delay + self.rng.duration_up_to(self.link.delay * 3);
            }
            self.inject_at(self.now + delay, from, to, bytes.clone());
        }
    }

    /// Schedules a datagram with no faults (for forged or hand-made datagrams).
    pub fn inject_at(&mut self, at: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.seq += 1;
        self.queue.push(InFlight {
            at,
            seq: self.seq,
            from,
            to,
            bytes,
        });
    }

    /// Drains every endpoint's outgoing datagrams onto the wire, checking on every
    /// datagram that a packet joining those in flight found the send window open.
    pub fn flush(&mut self) {
        while let Some(t) = transmit_within_window(&mut self.client, self.now) {
            let from = self.client_addr;
            self.send(from, t.to, t.datagram);
        }
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            while let Some(t) = self
                .sessions
                .get_mut(&id)
                .and_then(|s| transmit_within_window(s, self.now))
            {
                self.server_sent.push(Sent {
                    to: t.to,
                    len: t.datagram.len(),
                });
                let from = self.server_addr;
                self.send(from, t.to, t.datagram);
            }
        }
    }

    /// What the real server does with a datagram on its socket.
    pub fn server_receive(&mut self, from: SocketAddr, bytes: &[u8]) {
        *self.server_received_from.entry(from).or_default() += bytes.len() as u64;
        let now = self.now;
        if let Route::Session(id) = route(bytes) {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.handle_datagram(now, from, bytes);
                return;
            }
        }
        match self.listener.handle(now, from, bytes) {
            Incoming::Reply(t) => {
                self.server_sent.push(Sent {
                    to: t.to,
                    len: t.datagram.len(),
                });
                let src = self.server_addr;
                self.send(src, t.to, t.datagram);
            }
            Incoming::Accept(a) => {
                let config = self.config.clone();
                self.sessions
                    .entry(a.session_id())
                    .or_insert_with(|| a.into_session(now, config))
                    .handle_datagram(now, from, bytes);
            }
            Incoming::Drop(_) => {}
        }
    }

    fn deliver(&mut self, d: InFlight) {
        if d.to == self.server_addr {
            self.server_receive(d.from, &d.bytes);
        } else if self.client_reachable.contains(&d.to) {
            self.client.handle_datagram(self.now, d.from, &d.bytes);
        } else {
            self.stray.push((d.from, d.to, d.bytes));
        }
    }

    pub fn next_event(&self) -> Option<Instant> {
        let mut t = self.queue.peek().map(|d| d.at);
        let timers = std::iter::once(self.client.poll_timeout())
            .chain(self.sessions.values().map(Session::poll_timeout))
            .flatten();
        for x in timers {
            t = Some(t.map_or(x, |t| t.min(x)));
        }
        t
    }

    /// One step: advance the clock to the next event, deliver and fire what is due.
    /// Returns false when nothing will ever happen again.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(t) = self.next_event() else {
            return false;
        };
        self.now = self.now.max(t);
        while self.queue.peek().is_some_and(|d| d.at <= self.now) {
            if let Some(d) = self.queue.pop() {
                self.deliver(d);
            }
        }
        let now = self.now;
        if self.client.poll_timeout().is_some_and(|x| x <= now) {
            self.client.handle_timeout(now);
        }
        for s in self.sessions.values_mut() {
            if s.poll_timeout().is_some_and(|x| x <= now) {
                s.handle_timeout(now);
            }
        }
        let before = self.sessions.len();
        self.sessions.retain(|_, s| !s.is_drained());
        self.drained += (before - self.sessions.len()) as u64;
        self.flush();
        self.steps += 1;
        true
    }

    /// Steps until `done` holds (true) or `max_steps` pass or nothing is left (false).
    pub fn run_until(&mut self, max_steps: u64, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let limit = self.steps + max_steps;
        while self.steps < limit {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        done(self)
    }

    /// Runs until the client is connected and the server has its session.
    pub fn connect(&mut self) {
        let ok = self.run_until(10_000, |s| {
            s.client.is_established() && !s.sessions.is_empty()
        });
        assert!(ok, "handshake did not complete");
    }

    /// Simulated time elapsed.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }
}

/// `poll_transmit`, asserting the send-window invariant: a datagram that adds a packet
/// to those in flight was sent while fewer than a window's worth were in flight.
fn transmit_within_window(s: &mut Session, now: Instant) -> Option<natter_udp::Transmit> {
    let (in_flight, window) = (s.in_flight(), s.window());
    let t = s.poll_transmit(now)?;
    if s.in_flight() > in_flight {
        assert!(
            in_flight < window,
            "sent with {in_flight} in flight and a window of {window}"
        );
    }
    Some(t)
}

/// Line `i` of a conversation; every 97th is long enough to span several datagrams.
pub fn line(who: &str, i: usize) -> Vec<u8> {
    let mut l = format!("PRIVMSG #room :{who} line {i}").into_bytes();
    if i.is_multiple_of(97) {
        l.extend(std::iter::repeat_n(b'x', 3000 + i));
    }
    l
}

/// Both directions of a conversation: what to send and what has arrived.
pub struct Conversation {
    pub total: usize,
    pub client_next: usize,
    pub server_next: usize,
    pub client_got: Vec<Vec<u8>>,
    pub server_got: Vec<Vec<u8>>,
}

impl Conversation {
    pub fn new(total: usize) -> Conversation {
        Conversation {
            total,
            client_next: 0,
            server_next: 0,
            client_got: Vec::new(),
            server_got: Vec::new(),
        }
    }

    /// Queues what fits (respecting back-pressure) and collects what arrived.
    pub fn pump(&mut self, sim: &mut Sim) {
        while self.client_next < self.total {
            if sim
                .client
                .send_line(&line("client", self.client_next))
                .is_err()
            {
                break;
            }
            self.client_next += 1;
        }
        while let Some(l) = sim.client.poll_line() {
            self.client_got.push(l.to_vec());
        }
        if let Some(s) = sim.sessions.values_mut().next() {
            while self.server_next < self.total {
                if s.send_line(&line("server", self.server_next)).is_err() {
                    break;
                }
                self.server_next += 1;
            }
            while let Some(l) = s.poll_line() {
                self.server_got.push(l.to_vec());
            }
        }
    }

    pub fn complete(&self) -> bool {
        self.client_got.len() >= self.total && self.server_got.len() >= self.total
    }

    /// Every line arrived exactly once and in order, both ways.
    pub fn assert_exact(&self) {
        assert_eq!(
            self.client_got.len(),
            self.total,
            "client got a wrong count"
        );
        assert_eq!(
            self.server_got.len(),
            self.total,
            "server got a wrong count"
        );
        for i in 0..self.total {
            assert_eq!(self.server_got[i], line("client", i), "server line {i}");
            assert_eq!(self.client_got[i], line("server", i), "client line {i}");
        }
    }
}
