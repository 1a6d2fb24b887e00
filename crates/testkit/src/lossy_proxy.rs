//! A fault-injecting UDP proxy: put it between a UDP client and the server, and it
//! loses, duplicates, reorders and delays datagrams, each at a rate and each way on its
//! own, and can move the client to a new source port in mid-conversation.
//!
//! ```text
//!  client ──▶ proxy.addr() ──[to_server faults]──▶ upstream socket ──▶ server
//!  client ◀── proxy.addr() ◀──[to_client faults]── upstream socket ◀── server
//! ```
//!
//! Every client address seen on [`LossyProxy::addr`] gets its own upstream socket (as
//! a NAT gives each inside address its own mapping), so the server sees one address per
//! client, and [`LossyProxy::rebind`] gives each a new one: that is how a client's
//! change of address (a laptop changing network, a NAT rebinding) is tested through the
//! proxy, without the client knowing.
//!
//! Every decision comes from a seeded generator (SplitMix64), one per client and
//! direction, and the seed is printed when the proxy starts: set `NATTER_PROXY_SEED` to
//! replay a failure with the same decisions for the same sequence of datagrams (real
//! timers still vary a little, so a replay is close, not always exact).
//!
//! ```no_run
//! # async fn example(server: std::net::SocketAddr) {
//! use natter_testkit::lossy_proxy::{Faults, LossyProxy, ProxyConfig};
//! let proxy = LossyProxy::start(server, ProxyConfig::new(Faults::lossy(0.1)).seed(42)).await;
//! // connect a client to proxy.target() ... then, in mid-conversation:
//! proxy.rebind().await;
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natter_client::Target;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The environment variable whose value, when set, replaces every proxy's seed.
pub const SEED_VAR: &str = "NATTER_PROXY_SEED";

/// Longest a reordered datagram is held back when no later datagram comes to pass it.
const HOLD_MAX: Duration = Duration::from_millis(20);

/// Most datagrams held back at once in one direction of one client.
const MAX_HELD: usize = 8;

/// What happens to the datagrams going one way. Each rate is a probability in [0, 1],
/// drawn independently for each datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// The datagram is dropped.
    pub loss: f64,
    /// The datagram is delivered twice (each copy then meets reordering and delay on
    /// its own).
    pub duplicate: f64,
    /// The datagram is held back and released after the next one to three datagrams
    /// (or after 20 ms if none come), so it arrives after datagrams sent later.
    pub reorder: f64,
    /// The datagram is delayed by a uniform time up to `max_delay`.
    pub delay: f64,
    /// The longest delay.
    pub max_delay: Duration,
}

impl Faults {
    /// A perfect link.
    pub const NONE: Faults = Faults {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        delay: 0.0,
        max_delay: Duration::ZERO,
    };

    /// `loss`, plus duplication, reordering and delay at 10% each (delays up to 20 ms):
    /// the link the reliable-mode tests run over.
    pub fn lossy(loss: f64) -> Faults {
        Faults {
            loss,
            duplicate: 0.1,
            reorder: 0.1,
            delay: 0.1,
            max_delay: Duration::from_millis(20),
        }
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {:.0}%, duplicate {:.0}%, reorder {:.0}%, delay {:.0}% (≤ {} ms)",
            self.loss * 100.0,
            self.duplicate * 100.0,
            self.reorder * 100.0,
            self.delay * 100.0,
            self.max_delay.as_millis()
        )
    }
}

/// How a proxy misbehaves, each way, and the seed of its decisions.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub seed: u64,
    /// Client to server.
    pub to_server: Faults,
    /// Server to client.
    pub to_client: Faults,
}

impl ProxyConfig {
    /// The same `faults` both ways, with a fresh random seed (printed on start).
    pub fn new(faults: Faults) -> ProxyConfig {
        ProxyConfig {
            seed: random_seed(),
            to_server: faults,
            to_client: faults,
        }
    }

    /// A fixed seed (still overridden by `NATTER_PROXY_SEED` when that is set).
    pub fn seed(mut self, seed: u64) -> ProxyConfig {
        self.seed = seed;
        self
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams that came in.
    pub received: u64,
    /// Datagrams sent on (copies included).
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub delayed: u64,
}

/// What the proxy did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub to_server: DirectionStats,
    pub to_client: DirectionStats,
    /// Clients seen (distinct source addresses on the proxy's address).
    pub clients: u64,
    pub rebinds: u64,
    /// Reliable-mode Data packets (first byte `0xFB`) from the server that reached the
    /// newest upstream port since the last rebind. The server sends Data only to an
    /// address it has validated, so a non-zero count after [`LossyProxy::rebind`] means
    /// it moved the session to the new port.
    pub server_data_at_new_port: u64,
}

enum Command {
    Rebind {
        abrupt: bool,
        reply: oneshot::Sender<Vec<SocketAddr>>,
    },
    SetFaults {
        to_server: Faults,
        to_client: Faults,
        reply: oneshot::Sender<()>,
    },
}

/// A running proxy; it stops when dropped.
pub struct LossyProxy {
    addr: SocketAddr,
    server: SocketAddr,
    seed: u64,
    commands: mpsc::Sender<Command>,
    stats: Arc<Mutex<ProxyStats>>,
    task: JoinHandle<()>,
}

impl LossyProxy {
    /// Starts a proxy in front of the UDP server at `server`, listening on a free port
    /// of the loopback address of the same family. Prints its seed and faults.
    pub async fn start(server: SocketAddr, config: ProxyConfig) -> LossyProxy {
        let seed = match std::env::var(SEED_VAR) {
            Ok(s) => s.trim().parse().unwrap_or_else(|_| {
                panic!("{SEED_VAR}={s:?} is not a seed: give a number from 0 to 2^64-1")
            }),
            Err(_) => config.seed,
        };
        let front = UdpSocket::bind(SocketAddr::new(loopback_like(server.ip()), 0))
            .await
            .unwrap_or_else(|e| panic!("the lossy proxy cannot bind a UDP socket: {e}"));
        let addr = front
            .local_addr()
            .unwrap_or_else(|e| panic!("the lossy proxy has no address: {e}"));
        eprintln!(
            "lossy proxy {addr} -> {server}: seed {seed} (replay with {SEED_VAR}={seed}); \
             to server: {}; to client: {}",
            config.to_server, config.to_client
        );
        let stats = Arc::new(Mutex::new(ProxyStats::default()));
        let (commands, command_rx) = mpsc::channel(8);
        let (up_tx, up_rx) = mpsc::channel(1024);
        let proxy = Proxy {
            front,
            server,
            seed,
            to_server: config.to_server,
            to_client: config.to_client,
            flows: Vec::new(),
            by_client: HashMap::new(),
            scheduled: Vec::new(),
            up_tx,
            stats: stats.clone(),
        };
        let task = tokio::spawn(proxy.run(command_rx, up_rx));
        LossyProxy {
            addr,
            server,
            seed,
            commands,
            stats,
            task,
        }
    }

    /// Where clients send: the proxy's client-facing address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy as a `udp://` target for natter's client.
    pub fn target(&self) -> Target {
        Target::udp_addr(self.addr)
    }

    /// The server the proxy forwards to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The seed in use (after `NATTER_PROXY_SEED`).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Counters so far.
    pub fn stats(&self) -> ProxyStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves every client to a new upstream port: from now on the server sees its
    /// datagrams come from a new address. The old port still passes what the server
    /// sends there on to the client, as a NAT's old mapping does until it expires, so
    /// the server can keep talking while it validates the new address. Returns the new
    /// upstream addresses.
    pub async fn rebind(&self) -> Vec<SocketAddr> {
        self.command_rebind(false).await
    }

    /// Like [`LossyProxy::rebind`], but the old port is closed at once: whatever the
    /// server sends there is lost, as when a laptop leaves a network.
    pub async fn rebind_abruptly(&self) -> Vec<SocketAddr> {
        self.command_rebind(true).await
    }

    async fn command_rebind(&self, abrupt: bool) -> Vec<SocketAddr> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Rebind { abrupt, reply }).await;
        answer
            .await
            .unwrap_or_else(|_| panic!("the lossy proxy stopped"))
    }

    /// Changes the faults from now on (say, a clean handshake, then loss).
    pub async fn set_faults(&self, to_server: Faults, to_client: Faults) {
        let (reply, answer) = oneshot::channel();
        self.command(Command::SetFaults {
            to_server,
            to_client,
            reply,
        })
        .await;
        answer
            .await
            .unwrap_or_else(|_| panic!("the lossy proxy stopped"));
    }

    async fn command(&self, command: Command) {
        if self.commands.send(command).await.is_err() {
            panic!("the lossy proxy stopped");
        }
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The loopback address of `ip`'s family, or the unspecified one for a remote server.
fn loopback_like(ip: IpAddr) -> IpAddr {
    match (ip.is_loopback(), ip) {
        (true, IpAddr::V4(_)) => Ipv4Addr::LOCALHOST.into(),
        (true, IpAddr::V6(_)) => Ipv6Addr::LOCALHOST.into(),
        (false, IpAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
        (false, IpAddr::V6(_)) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// SplitMix64: tiny, fast, and good enough to make network faults.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// A datagram held back to be reordered.
struct Held {
    datagram: Vec<u8>,
    /// Released once this many later datagrams have passed it.
    after: u64,
    deadline: Instant,
}

/// One direction of one client: the faults and the datagrams held back.
struct Pipe {
    rng: Rng,
    held: Vec<Held>,
}

/// What to do with a datagram and any it let go.
#[derive(Default)]
struct Verdict {
    /// To send now, in this order.
    now: Vec<Vec<u8>>,
    /// To send at the given time.
    later: Vec<(Instant, Vec<u8>)>,
}

impl Pipe {
    fn new(seed: u64) -> Pipe {
        Pipe {
            rng: Rng(seed),
            held: Vec::new(),
        }
    }

    fn admit(
        &mut self,
        now: Instant,
        datagram: Vec<u8>,
        faults: &Faults,
        stats: &mut DirectionStats,
    ) -> Verdict {
        stats.received += 1;
        let mut verdict = Verdict::default();
        if self.rng.chance(faults.loss) {
            stats.dropped += 1;
            return verdict;
        }
        let copies = if self.rng.chance(faults.duplicate) {
            stats.duplicated += 1;
            vec![datagram.clone(), datagram]
        } else {
            vec![datagram]
        };
        for copy in copies {
            if self.held.len() < MAX_HELD && self.rng.chance(faults.reorder) {
                stats.reordered += 1;
                let after = 1 + self.rng.below(3);
                self.held.push(Held {
                    datagram: copy,
                    after,
                    deadline: now + HOLD_MAX,
                });
            } else if self.rng.chance(faults.delay) {
                stats.delayed += 1;
                let nanos = self.rng.below(faults.max_delay.as_nanos() as u64 + 1);
                verdict
                    .later
                    .push((now + Duration::from_nanos(nanos), copy));
            } else {
                verdict.now.push(copy);
            }
        }
        // The datagrams going now pass those held back, which go once enough have.
        let passing = verdict.now.len() as u64;
        if passing > 0 {
            for held in &mut self.held {
                held.after = held.after.saturating_sub(passing);
            }
            verdict.now.extend(self.release(|h| h.after == 0));
        }
        verdict
    }

    /// Held datagrams whose wait is over.
    fn expire(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.release(|h| h.deadline <= now)
    }

    fn release(&mut self, due: impl Fn(&Held) -> bool) -> Vec<Vec<u8>> {
        let (go, stay): (Vec<Held>, Vec<Held>) = self.held.drain(..).partition(|h| due(h));
        self.held = stay;
        go.into_iter().map(|h| h.datagram).collect()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.held.iter().map(|h| h.deadline).min()
    }
}

/// The proxy's state for one client address.
struct Flow {
    client: SocketAddr,
    upstream: Arc<UdpSocket>,
    /// Increases with each rebind; datagrams read from older sockets carry older ones.
    generation: u64,
    /// Reader tasks of the current upstream socket and of older ones still passing on.
    readers: Vec<JoinHandle<()>>,
    to_server: Pipe,
    to_client: Pipe,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

/// A datagram from the server, read on a flow's upstream socket.
struct FromServer {
    flow: usize,
    generation: u64,
    datagram: Vec<u8>,
}

struct Proxy {
    front: UdpSocket,
    server: SocketAddr,
    seed: u64,
    to_server: Faults,
    to_client: Faults,
    flows: Vec<Flow>,
    by_client: HashMap<SocketAddr, usize>,
    /// Delayed datagrams: (due, flow, direction, datagram).
    scheduled: Vec<(Instant, usize, Direction, Vec<u8>)>,
    up_tx: mpsc::Sender<FromServer>,
    stats: Arc<Mutex<ProxyStats>>,
}

impl Proxy {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut from_server: mpsc::Receiver<FromServer>,
    ) {
        let mut buf = vec![0u8; 65536];
        loop {
            let wake = self
                .flows
                .iter()
                .flat_map(|f| [f.to_server.next_deadline(), f.to_client.next_deadline()])
                .flatten()
                .chain(self.scheduled.iter().map(|s| s.0))
                .min();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.front.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        let datagram = buf[..n].to_vec();
                        self.on_client_datagram(from, datagram).await;
                    }
                }
                Some(up) = from_server.recv() => self.on_server_datagram(up).await,
                command = commands.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => break,
                },
                () = sleep => self.release_due().await,
            }
        }
        for flow in &self.flows {
            for reader in &flow.readers {
                reader.abort();
            }
        }
    }

    async fn on_client_datagram(&mut self, from: SocketAddr, datagram: Vec<u8>) {
        let flow = match self.by_client.get(&from) {
            Some(&flow) => flow,
            None => match self.new_flow(from).await {
                Some(flow) => flow,
                None => return,
            },
        };
        let faults = self.to_server;
        let verdict = {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            self.flows[flow].to_server.admit(
                Instant::now(),
                datagram,
                &faults,
                &mut stats.to_server,
            )
        };
        self.apply(flow, Direction::ToServer, verdict).await;
    }

    async fn on_server_datagram(&mut self, up: FromServer) {
        let Some(flow) = self.flows.get_mut(up.flow) else {
            return;
        };
        let faults = self.to_client;
        let verdict = {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            if up.generation == flow.generation && up.datagram.first() == Some(&0xFB) {
                stats.server_data_at_new_port += 1;
            }
            flow.to_client
                .admit(Instant::now(), up.datagram, &faults, &mut stats.to_client)
        };
        self.apply(up.flow, Direction::ToClient, verdict).await;
    }

    async fn apply(&mut self, flow: usize, direction: Direction, verdict: Verdict) {
        for datagram in verdict.now {
            self.send(flow, direction, &datagram).await;
        }
        for (due, datagram) in verdict.later {
            self.scheduled.push((due, flow, direction, datagram));
        }
    }

    async fn send(&self, flow: usize, direction: Direction, datagram: &[u8]) {
        let Some(f) = self.flows.get(flow) else {
            return;
        };
        let sent = match direction {
            Direction::ToServer => f.upstream.send_to(datagram, self.server).await,
            Direction::ToClient => self.front.send_to(datagram, f.client).await,
        };
        if sent.is_ok() {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            match direction {
                Direction::ToServer => stats.to_server.forwarded += 1,
                Direction::ToClient => stats.to_client.forwarded += 1,
            }
        }
    }

    async fn release_due(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (i, flow) in self.flows.iter_mut().enumerate() {
            for d in flow.to_server.expire(now) {
                due.push((i, Direction::ToServer, d));
            }
            for d in flow.to_client.expire(now) {
                due.push((i, Direction::ToClient, d));
            }
        }
        self.scheduled.sort_by_key(|s| s.0);
        let later = self.scheduled.split_off(
            self.scheduled
                .iter()
                .position(|s| s.0 > now)
                .unwrap_or(self.scheduled.len()),
        );
        for (_, flow, direction, d) in std::mem::replace(&mut self.scheduled, later) {
            due.push((flow, direction, d));
        }
        for (flow, direction, d) in due {
            self.send(flow, direction, &d).await;
        }
    }

    async fn new_flow(&mut self, client: SocketAddr) -> Option<usize> {
        let index = self.flows.len();
        let (upstream, reader) = self.open_upstream(index, 0).await?;
        let base = self.seed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
        self.flows.push(Flow {
            client,
            upstream,
            generation: 0,
            readers: vec![reader],
            to_server: Pipe::new(base),
            to_client: Pipe::new(base ^ 0x5555_5555_5555_5555),
        });
        self.by_client.insert(client, index);
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clients += 1;
        Some(index)
    }

    /// A new upstream socket for `flow`, and the task that passes on what the server
    /// sends to it.
    async fn open_upstream(
        &self,
        flow: usize,
        generation: u64,
    ) -> Option<(Arc<UdpSocket>, JoinHandle<()>)> {
        let socket =
            match UdpSocket::bind(SocketAddr::new(loopback_like(self.server.ip()), 0)).await {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    eprintln!("lossy proxy: cannot bind an upstream socket: {e}");
                    return None;
                }
            };
        let reader = {
            let socket = socket.clone();
            let server = self.server;
            let tx = self.up_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                        continue;
                    };
                    if from != server {
                        continue;
                    }
                    let up = FromServer {
                        flow,
                        generation,
                        datagram: buf[..n].to_vec(),
                    };
                    if tx.send(up).await.is_err() {
                        return;
                    }
                }
            })
        };
        Some((socket, reader))
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Rebind { abrupt, reply } => {
                let mut addrs = Vec::new();
                for index in 0..self.flows.len() {
                    let generation = self.flows[index].generation + 1;
                    let Some((socket, reader)) = self.open_upstream(index, generation).await else {
                        continue;
                    };
                    if let Ok(addr) = socket.local_addr() {
                        addrs.push(addr);
                    }
                    let flow = &mut self.flows[index];
                    if abrupt {
                        for old in flow.readers.drain(..) {
                            old.abort();
                        }
                    }
                    flow.readers.push(reader);
                    flow.upstream = socket;
                    flow.generation = generation;
                }
                {
                    let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
                    stats.rebinds += 1;
                    stats.server_data_at_new_port = 0;
                }
                let _ = reply.send(addrs);
            }
            Command::SetFaults {
                to_server,
                to_client,
                reply,
            } => {
                self.to_server = to_server;
                self.to_client = to_client;
                let _ = reply.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, faults: Faults, n: usize) -> (Vec<Vec<u8>>, DirectionStats) {
        let mut pipe = Pipe::new(seed);
        let mut stats = DirectionStats::default();
        let mut out = Vec::new();
        let start = Instant::now();
        for i in 0..n {
            let v = pipe.admit(
                start,
                (i as u32).to_be_bytes().to_vec(),
                &faults,
                &mut stats,
            );
            out.extend(v.now);
            out.extend(v.later.into_iter().map(|(_, d)| d));
        }
        out.extend(pipe.expire(start + HOLD_MAX));
        (out, stats)
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let faults = Faults::lossy(0.3);
        assert_eq!(run(7, faults, 200), run(7, faults, 200));
        assert_ne!(run(7, faults, 200).0, run(8, faults, 200).0);
    }

    #[test]
    fn rates_are_roughly_what_was_asked() {
        let faults = Faults {
            loss: 0.3,
            duplicate: 0.1,
            reorder: 0.1,
            delay: 0.0,
            max_delay: Duration::ZERO,
        };
        let (out, stats) = run(1, faults, 10_000);
        assert!((2700..3300).contains(&stats.dropped), "{stats:?}");
        assert!((500..900).contains(&stats.duplicated), "{stats:?}");
        assert!(stats.reordered > 500, "{stats:?}");
        assert_eq!(
            out.len() as u64,
            stats.received - stats.dropped + stats.duplicated
        );
        // Reordering happened: some datagram comes after a later one.
        assert!(out.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn a_perfect_link_passes_everything_in_order() {
        let (out, stats) = run(3, Faults::NONE, 300);
        assert_eq!(out.len(), 300);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(stats.dropped + stats.duplicated + stats.reordered, 0);
    }
}
