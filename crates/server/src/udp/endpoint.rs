//! The task that serves one UDP socket: every plain and reliable session on it.
//!
//! One task, no locks: it owns the session tables, so a datagram is routed and handled
//! without contention, and the hub's queues wake it (see
//! [`QueueWaker`](crate::send_queue::QueueWaker)) rather than a writer task per peer.
//! It waits on four things: the socket, a queue wake, the earliest session timer, and
//! shutdown. After each, it sends everything queued in one batch. A batch of
//! datagrams is fed to the sessions first and each session is run once after it, so
//! that a burst of ACKs from one client costs one pass over its queue and window.
//! Reliable senders are slowed while receivers catch up (see [`InputGate`]).

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use foldhash::HashMap;
use natter_hub::{ClientId, ClientInfo, Transport};
use natter_proto::Endpoint as ListenUrl;
use natter_udp::{pack_next, Config, Cookies, Incoming, Listener, Route, Stats};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, watch};

use super::input_gate::InputGate;
use super::plain::{Parsed, PlainMode, Registered, Stranger};
use super::reliable::{quit_reason, ReliableConn};
use super::route_mtu::route_payload_limit;
use super::socket::{BatchSocket, Outbox, RecvBatch};
use super::UdpStats;
use crate::conn_limit::{ConnectionPermit, Refusal};
use crate::event::Event;
use crate::listener::Acceptor;
use crate::send_queue::{send_queue_with_waker, Outgoing, QueueWaker, SendQueue, StopSignal};
use crate::token_bucket::TokenBucket;
use crate::tracker::Tracked;

/// Replies to validated peers are packed into datagrams of at most this many bytes,
/// at line boundaries: it fits the minimum IPv6 MTU, so nothing is fragmented.
const MAX_DATAGRAM: usize = natter_udp::wire::MAX_DATAGRAM_SIZE;

/// Datagrams built in a round are sent once they hold this many bytes, not only at the
/// round's end. A round of a busy fan-out builds every session's window, megabytes,
/// and by the time the last were built the first had left the cache for the kernel to
/// copy from; sending after about one session's window (at most its 128 KiB send buffer)
/// keeps them warm and costs no more system calls, since each session's datagrams
/// go in calls of their own anyway. Ten alternated UDP fan-outs: 3.42M against
/// 3.21M deliveries/s, server CPU 595 against 629 ms (16 KiB and 256 KiB did less).
const OUTBOX_SEND_BYTES: usize = 64 * 1024;

/// Lines of a plain-mode session that may wait for flood control; beyond this they
/// are dropped (and counted): plain mode is best effort, and a plain peer cannot be
/// slowed down any other way. Reliable sessions wait instead (their lines stay in the
/// session, whose receive window then closes).
const PLAIN_BACKLOG: usize = 256;

/// The quit message of a plain session closed to make room for a newer one.
const EVICTED: &str = "Replaced by a newer UDP session from the same host";

/// After shutdown is asked for, how long the task keeps running to deliver the last
/// lines (`ERROR :Server shutting down`) and close reliable sessions in order. Below
/// the server's own flush timeout, which it waits for.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// One UDP session, either mode.
#[derive(Debug)]
struct Conn {
    kind: Kind,
    /// The hub's queue for this client.
    outgoing: Outgoing,
    /// Raised by the hub to drop the client at once (SendQ exceeded).
    stop: StopSignal,
    /// Cleared before the queue is drained; see `QueueWaker`.
    scheduled: Arc<AtomicBool>,
    /// Flood control: `None` when off.
    bucket: Option<TokenBucket>,
    /// Lines waiting for flood control before they go to the hub.
    backlog: VecDeque<Parsed>,
    /// When flood control next allows a line.
    hold_until: Option<Instant>,
    /// The entry in the timer set, if any.
    timer: Option<Instant>,
    /// The hub no longer has this client (it closed it, or was told it left).
    hub_gone: bool,
    /// Where the peer's datagrams arrive, to answer from the same address.
    local: Option<IpAddr>,
    /// When the peer last sent a datagram.
    last_heard: Instant,
    /// Reliable: since when its send buffer is full with lines still in the hub's
    /// queue (see [`InputGate`]).
    behind_since: Option<Instant>,
    /// Reliable: lines it sent are held back by the [`InputGate`].
    held: bool,
    /// Reliable: datagrams arrived in this batch; run it once the batch is read.
    dirty: bool,
    _permit: ConnectionPermit,
}

#[derive(Debug)]
enum Kind {
    Plain {
        peer: SocketAddr,
        registered: Registered,
    },
    Reliable(Box<ReliableConn>),
}

/// What woke the task.
enum Woke {
    Shutdown,
    Readable(std::io::Result<()>),
    Queue(ClientId),
    Timer,
    GraceOver,
}

/// The UDP socket's task.
#[derive(Debug)]
pub(crate) struct UdpEndpoint {
    url: ListenUrl,
    io: BatchSocket,
    batch: RecvBatch,
    outbox: Outbox,
    listener: Listener,
    plain: PlainMode,
    session_config: Config,
    acceptor: Arc<Acceptor>,
    events: mpsc::Sender<Event>,
    conns: HashMap<ClientId, Conn>,
    by_addr: HashMap<SocketAddr, ClientId>,
    by_session: HashMap<u64, ClientId>,
    timers: BTreeSet<(Instant, ClientId)>,
    gate: InputGate,
    /// Sessions that received datagrams in the batch being read.
    dirty: Vec<ClientId>,
    wake_tx: mpsc::UnboundedSender<ClientId>,
    wakes: mpsc::UnboundedReceiver<ClientId>,
    stats: UdpStats,
    published: Arc<Mutex<UdpStats>>,
    closing: bool,
}

impl UdpEndpoint {
    /// A task for `io`, handing its sessions to the hub through `acceptor`'s context.
    /// `published` receives its counters.
    pub(crate) fn new(
        url: ListenUrl,
        io: BatchSocket,
        cookies: Cookies,
        server_name: String,
        acceptor: Arc<Acceptor>,
        published: Arc<Mutex<UdpStats>>,
    ) -> UdpEndpoint {
        let (wake_tx, wakes) = mpsc::unbounded_channel();
        UdpEndpoint {
            url,
            io,
            batch: RecvBatch::default(),
            outbox: Outbox::default(),
            listener: Listener::new(cookies.clone()),
            plain: PlainMode::new(cookies, server_name),
            session_config: Config {
                // A full congestion window in flight (64 datagrams of 1200 bytes, at
                // the base size) and more than half a window queued behind it: lines beyond
                // that wait in the hub's queue, whose budget counts them, rather
                // than in a session's buffer, which would only grow (a copy per
                // doubling, in fresh pages) to hold lines it cannot send yet.
                send_buffer: 128 * 1024,
                ..Config::default()
            },
            events: acceptor.context.events.clone(),
            acceptor,
            conns: HashMap::default(),
            by_addr: HashMap::default(),
            by_session: HashMap::default(),
            timers: BTreeSet::new(),
            gate: InputGate::default(),
            dirty: Vec::new(),
            wake_tx,
            wakes,
            stats: UdpStats::default(),
            published,
            closing: false,
        }
    }

    /// Serves until shutdown, then until every session has delivered its last lines
    /// (or the grace period is over).
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>, _running: Tracked) {
        let mut grace_over: Option<tokio::time::Instant> = None;
        loop {
            let timer = self
                .timers
                .first()
                .map(|(t, _)| *t)
                .into_iter()
                .chain(self.gate.recheck_at(Instant::now()))
                .min()
                .map(tokio::time::Instant::from_std);
            // Unbiased: under load, datagrams, queue wakes and timers all get turns.
            let woke = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop), if grace_over.is_none() => Woke::Shutdown,
                _ = sleep_until(grace_over), if grace_over.is_some() => Woke::GraceOver,
                ready = self.io.readable() => Woke::Readable(ready),
                Some(id) = self.wakes.recv() => Woke::Queue(id),
                _ = sleep_until(timer), if timer.is_some() => Woke::Timer,
            };
            let now = tokio::time::Instant::now().into_std();
            match woke {
                Woke::Shutdown => {
                    self.closing = true;
                    grace_over = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                }
                Woke::GraceOver => break,
                Woke::Readable(Ok(())) => self.receive(now).await,
                Woke::Readable(Err(e)) => {
                    // Only when the runtime is going away.
                    tracing::warn!("receiving on {} failed: {e}", self.url);
                    break;
                }
                Woke::Queue(id) => {
                    self.on_queue(id, now).await;
                    while let Ok(id) = self.wakes.try_recv() {
                        self.on_queue(id, now).await;
                    }
                }
                Woke::Timer => self.on_timers(now).await,
            }
            self.release_held(now).await;
            self.flush().await;
            if self.closing && self.conns.is_empty() {
                break;
            }
        }
        self.flush().await;
        tracing::debug!("{} closed", self.url);
    }

    // ----- input -----

    /// Takes one batch of datagrams off the socket and handles each.
    async fn receive(&mut self, now: Instant) {
        let mut batch = std::mem::take(&mut self.batch);
        match self.io.try_recv(&mut batch) {
            Ok(_) => {
                for (from, local, data) in batch.datagrams() {
                    self.on_datagram(now, from, local, data).await;
                }
                for id in std::mem::take(&mut self.dirty) {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.dirty = false;
                        self.pump_reliable(id, now).await;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::debug!("receiving on {} failed: {e}", self.url),
        }
        self.batch = batch;
    }

    async fn on_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: Option<IpAddr>,
        data: &[u8],
    ) {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        let from = canonical(from);
        let local = self.io.reply_source(local);
        match natter_udp::route(data) {
            Route::Plain => self.on_plain(now, from, local, data).await,
            Route::Session(id) => match self.by_session.get(&id).copied() {
                Some(client) => {
                    self.on_session_datagram(client, now, from, local, data)
                        .await
                }
                None => self.on_handshake(now, from, local, data).await,
            },
            Route::Listener => self.on_handshake(now, from, local, data).await,
        }
    }

    async fn on_plain(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: Option<IpAddr>,
        data: &[u8],
    ) {
        if let Some(id) = self.by_addr.get(&from).copied() {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let Kind::Plain { registered, .. } = &mut conn.kind else {
                return;
            };
            conn.local = local;
            conn.last_heard = now;
            let lines = self.plain.session_lines(now, from, data, registered);
            self.deliver(id, lines, now).await;
            return;
        }
        if self.closing {
            return;
        }
        self.stats.plain_from_strangers += 1;
        match self.plain.stranger(now, from, data) {
            Stranger::Ignore => {
                self.stats.plain_ignored += 1;
                tracing::debug!(%from, len = data.len(), "ignored a UDP datagram holding no line");
            }
            Stranger::Challenge { datagram, bad_pong } => {
                self.stats.plain_challenges += 1;
                if bad_pong {
                    self.stats.plain_bad_pongs += 1;
                    tracing::debug!(%from, "a PONG with a token that does not verify");
                }
                self.send(from, local, datagram);
            }
            Stranger::Open { lines, registered } => {
                self.open_plain(now, from, local, lines, registered).await;
            }
        }
    }

    /// A stranger proved its address: it becomes a hub client.
    async fn open_plain(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        local: Option<IpAddr>,
        lines: Vec<Parsed>,
        registered: Registered,
    ) {
        let mut acquired = self.acceptor.limiter.try_acquire(Some(peer.ip()));
        if matches!(acquired, Err(Refusal::TooManyFromIp)) {
            // Plain-mode peers seldom say goodbye (a script just exits), so the
            // slots of a host fill with sessions nobody reads. The one heard from
            // longest ago makes way for the proven newcomer.
            if let Some(stalest) = self.stalest_plain(peer.ip()) {
                self.evict(stalest).await;
                acquired = self.acceptor.limiter.try_acquire(Some(peer.ip()));
            }
        }
        let permit = match acquired {
            Ok(permit) => permit,
            Err(refusal) => {
                self.stats.refused += 1;
                tracing::info!("refusing UDP session from {peer}: {}", refusal.message());
                let line = format!("ERROR :{}\r\n", refusal.message());
                self.send(peer, local, line.into_bytes());
                return;
            }
        };
        let kind = Kind::Plain { peer, registered };
        let Some(id) = self.open(now, peer, local, kind, permit).await else {
            return;
        };
        self.by_addr.insert(peer, id);
        self.stats.plain_sessions_opened += 1;
        tracing::debug!(client = id.0, %peer, "plain UDP session opened");
        if !registered.nick {
            let notice = format!(
                ":{} NOTICE * :*** Address confirmed. Now register: NICK <nick> and USER <user> 0 * :<real name>\r\n",
                self.plain_server_name()
            );
            self.send(peer, local, notice.into_bytes());
        }
        self.deliver(id, lines, now).await;
    }

    fn plain_server_name(&self) -> &str {
        self.plain.server_name()
    }

    /// The plain session from `ip` heard from longest ago.
    fn stalest_plain(&self, ip: IpAddr) -> Option<ClientId> {
        self.by_addr
            .iter()
            .filter(|(addr, _)| addr.ip() == ip)
            .filter_map(|(_, id)| self.conns.get(id).map(|c| (c.last_heard, *id)))
            .min()
            .map(|(_, id)| id)
    }

    /// Closes a plain session to free its slot: it is told, and its rooms see it quit.
    async fn evict(&mut self, id: ClientId) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let Kind::Plain { peer, .. } = conn.kind else {
            return;
        };
        let local = conn.local;
        self.stats.evicted += 1;
        tracing::info!(client = id.0, %peer, "closing the stalest UDP session of its host for a new one");
        self.send(
            peer,
            local,
            format!("ERROR :Closing link: {EVICTED}\r\n").into_bytes(),
        );
        self.remove(id, EVICTED).await;
    }

    /// A reliable-mode datagram no session took: the stateless handshake.
    async fn on_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: Option<IpAddr>,
        data: &[u8],
    ) {
        let before = self.listener.stats().clone();
        let incoming = self.listener.handle(now, from, data);
        let after = self.listener.stats();
        self.stats.handshake_retries += after.retries_sent - before.retries_sent;
        self.stats.reliable_malformed += (after.malformed - before.malformed)
            + (after.too_small - before.too_small)
            + (after.bad_version - before.bad_version)
            + (after.unexpected - before.unexpected);
        self.stats.reliable_unknown_session += (after.unknown_session - before.unknown_session)
            + (after.resets_sent - before.resets_sent);
        self.stats.resets_sent += after.resets_sent - before.resets_sent;
        match incoming {
            Incoming::Reply(t) => self.send(t.to, local, t.datagram),
            Incoming::Drop(reason) => {
                tracing::debug!(%from, len = data.len(), ?reason, "dropped a reliable-mode UDP datagram");
            }
            Incoming::Accept(accept) => {
                if let Some(id) = self.by_session.get(&accept.session_id()).copied() {
                    // A retransmitted Initial: the session answers with Accept again.
                    self.on_session_datagram(id, now, from, local, data).await;
                    return;
                }
                if self.closing {
                    return;
                }
                let peer = accept.peer();
                let permit = match self.acceptor.limiter.try_acquire(Some(peer.ip())) {
                    Ok(permit) => permit,
                    Err(refusal) => {
                        // Not answered: the client's handshake times out.
                        self.stats.refused += 1;
                        tracing::info!("refusing UDP session from {peer}: {}", refusal.message());
                        return;
                    }
                };
                let session_id = accept.session_id();
                // Path MTU discovery may try up to what the route's first hop carries.
                let config = Config {
                    max_datagram_size: route_payload_limit(peer).unwrap_or(0),
                    ..self.session_config.clone()
                };
                let session = accept.into_session(now, config);
                let kind = Kind::Reliable(Box::new(ReliableConn::new(session)));
                let Some(id) = self.open(now, peer, local, kind, permit).await else {
                    return;
                };
                self.by_session.insert(session_id, id);
                self.stats.reliable_sessions_opened += 1;
                tracing::debug!(client = id.0, %peer, "reliable UDP session opened");
                self.on_session_datagram(id, now, from, local, data).await;
            }
        }
    }

    async fn on_session_datagram(
        &mut self,
        id: ClientId,
        now: Instant,
        from: SocketAddr,
        local: Option<IpAddr>,
        data: &[u8],
    ) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.last_heard = now;
        let Kind::Reliable(r) = &mut conn.kind else {
            return;
        };
        let before = session_drops(r.session.stats());
        r.session.handle_datagram(now, from, data);
        let (malformed, dropped) = session_drops(r.session.stats());
        if (malformed, dropped) != before {
            tracing::debug!(client = id.0, %from, len = data.len(), "a session dropped a UDP datagram");
        }
        self.stats.reliable_malformed += malformed - before.0;
        self.stats.reliable_dropped += dropped - before.1;
        if from == r.session.remote() {
            conn.local = local;
        }
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Registers a new session with the hub. `None` if the hub is gone (shutting down).
    async fn open(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        local: Option<IpAddr>,
        kind: Kind,
        permit: ConnectionPermit,
    ) -> Option<ClientId> {
        let id = self.acceptor.next_id();
        let scheduled = Arc::new(AtomicBool::new(false));
        let waker = QueueWaker::new(id, Arc::clone(&scheduled), self.wake_tx.clone());
        let context = &self.acceptor.context;
        let (queue, outgoing, stop): (SendQueue, Outgoing, StopSignal) =
            send_queue_with_waker(context.sendq_bytes, Some(waker));
        let conn = Conn {
            kind,
            outgoing,
            stop,
            scheduled,
            bucket: TokenBucket::new(context.flood_burst, context.flood_rate_per_sec, now),
            backlog: VecDeque::new(),
            hold_until: None,
            timer: None,
            hub_gone: false,
            local,
            last_heard: now,
            behind_since: None,
            held: false,
            dirty: false,
            _permit: permit,
        };
        let info = ClientInfo {
            host: peer.ip().to_string(),
            transport: Transport::Udp,
        };
        self.events
            .send(Event::Connected { id, info, queue })
            .await
            .ok()?;
        match conn.kind {
            Kind::Plain { .. } => self.stats.plain_sessions += 1,
            Kind::Reliable(_) => self.stats.reliable_sessions += 1,
        }
        self.conns.insert(id, conn);
        Some(id)
    }

    /// Hands lines to the hub, in order, as flood control allows; the rest wait (plain
    /// mode: up to [`PLAIN_BACKLOG`] lines, then dropped).
    async fn deliver(&mut self, id: ClientId, lines: Vec<Parsed>, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        for line in lines {
            if conn.backlog.len() >= PLAIN_BACKLOG {
                self.stats.plain_lines_dropped += 1;
            } else {
                conn.backlog.push_back(line);
            }
        }
        self.release_backlog(id, now).await;
        self.reschedule(id);
    }

    /// Passes waiting lines to the hub while flood control allows.
    async fn release_backlog(&mut self, id: ClientId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.hub_gone {
            conn.backlog.clear();
            return;
        }
        conn.hold_until = None;
        while !conn.backlog.is_empty() {
            if let Some(wait) = conn.bucket.as_mut().and_then(|b| b.admit(now)) {
                conn.hold_until = Some(now + wait);
                return;
            }
            let Some(line) = conn.backlog.pop_front() else {
                return;
            };
            let event = match line {
                Ok(message) => Event::Line(id, message),
                Err(error) => Event::BadLine(id, error),
            };
            if self.events.send(event).await.is_err() {
                return;
            }
        }
    }

    // ----- the hub's side -----

    /// A queue woke the task: lines to send, a kill, or the end of the queue.
    async fn on_queue(&mut self, id: ClientId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.scheduled.store(false, Ordering::Release);
        match conn.kind {
            Kind::Plain { .. } => self.drain_plain(id).await,
            Kind::Reliable(_) => self.pump_reliable(id, now).await,
        }
    }

    /// Sends what the hub queued for a plain session, packed into datagrams of at most
    /// [`MAX_DATAGRAM`] bytes; removes the session once the hub has closed it.
    async fn drain_plain(&mut self, id: ClientId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Kind::Plain { peer, .. } = conn.kind else {
            return;
        };
        if *conn.stop.borrow() {
            conn.hub_gone = true;
            self.remove(id, "").await;
            return;
        }
        let mut lines = Vec::new();
        let mut bytes = 0;
        let mut ended = false;
        loop {
            match conn.outgoing.lines.try_recv() {
                Ok(line) => {
                    bytes += line.len();
                    lines.push(line);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        conn.outgoing.written(bytes);
        let local = conn.local;
        let mut packing = lines.iter().peekable();
        self.io.gather(local, &mut self.outbox, |buf| {
            pack_next(&mut packing, MAX_DATAGRAM, buf).then_some(peer)
        });
        if ended {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.hub_gone = true;
            }
            self.remove(id, "").await;
        }
    }

    /// Everything a reliable session may do after any input: take the hub's lines
    /// (while it has room), give the hub the client's lines (as flood control allows),
    /// report its end, send its datagrams, and set its timer; removes it once drained.
    async fn pump_reliable(&mut self, id: ClientId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if *conn.stop.borrow() {
            // Dropped by the hub (SendQ exceeded): no orderly close; the client's next
            // datagram gets a Reset.
            conn.hub_gone = true;
            self.remove(id, "").await;
            return;
        }
        let Kind::Reliable(r) = &mut conn.kind else {
            return;
        };
        if r.feed(&mut conn.outgoing) {
            conn.hub_gone = true;
        }
        self.gate
            .set_behind(id, &mut conn.behind_since, r.is_backlogged(), now);
        // The client's lines, one at a time through flood control and the input gate:
        // while either holds them they stay in the session, whose receive window then
        // closes.
        conn.hold_until = None;
        let mut all_read = false;
        loop {
            if conn.hub_gone {
                conn.backlog.clear();
                while r.next_line().is_some() {}
                all_read = true;
                break;
            }
            if conn.backlog.is_empty() {
                match r.next_line() {
                    Some(line) => conn.backlog.push_back(line),
                    None => {
                        all_read = true;
                        break;
                    }
                }
            }
            let hub_backlog = self.events.max_capacity() - self.events.capacity();
            if !self.gate.is_open(now, hub_backlog) {
                self.gate.hold(id, &mut conn.held);
                break;
            }
            if let Some(wait) = conn.bucket.as_mut().and_then(|b| b.admit(now)) {
                conn.hold_until = Some(now + wait);
                break;
            }
            let Some(line) = conn.backlog.pop_front() else {
                break;
            };
            let event = match line {
                Ok(message) => Event::Line(id, message),
                Err(error) => Event::BadLine(id, error),
            };
            if self.events.send(event).await.is_err() {
                break;
            }
        }
        while let Some(event) = r.session.poll_event() {
            match event {
                natter_udp::Event::Closed { reason } => {
                    tracing::debug!(client = id.0, ?reason, "reliable UDP session closed");
                    r.closed = Some(reason);
                }
                natter_udp::Event::Migrated { from, to } => {
                    self.stats.migrations += 1;
                    tracing::debug!(client = id.0, %from, %to, "reliable UDP session moved");
                }
                natter_udp::Event::Connected => {}
            }
        }
        // The hub hears that the client left only after every line it sent before.
        if let Some(reason) = r.closed.filter(|_| all_read && !conn.hub_gone) {
            conn.hub_gone = true;
            let _ = self
                .events
                .send(Event::Disconnected(id, quit_reason(reason)))
                .await;
        }
        let session = &mut r.session;
        self.io.gather(conn.local, &mut self.outbox, |buf| {
            session.poll_transmit_into(now, buf)
        });
        let drained = r.session.is_drained();
        self.send_if_full().await;
        if drained && all_read {
            self.remove(id, "Connection closed").await;
        } else {
            self.reschedule(id);
        }
    }

    /// Gives the sessions whose lines the input gate held back their turn, oldest
    /// first, while the gate is open.
    async fn release_held(&mut self, now: Instant) {
        // One turn each for the sessions held now: one may be held again at once.
        let mut turns = self.gate.held_count();
        while turns > 0 {
            turns -= 1;
            let hub_backlog = self.events.max_capacity() - self.events.capacity();
            if !self.gate.is_open(now, hub_backlog) {
                return;
            }
            let Some(id) = self.gate.next_held() else {
                return;
            };
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.held = false;
                self.pump_reliable(id, now).await;
            }
        }
    }

    // ----- timers -----

    async fn on_timers(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            conn.timer = None;
            match &mut conn.kind {
                Kind::Plain { .. } => {
                    self.release_backlog(id, now).await;
                    self.reschedule(id);
                }
                Kind::Reliable(r) => {
                    r.session.handle_timeout(now);
                    r.release_idle();
                    self.pump_reliable(id, now).await;
                }
            }
        }
    }

    /// Sets a session's timer to the earliest thing it waits for: its protocol timers
    /// (reliable) and flood control.
    fn reschedule(&mut self, id: ClientId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let protocol = match &conn.kind {
            Kind::Reliable(r) => r.session.poll_timeout(),
            Kind::Plain { .. } => None,
        };
        let want = match (protocol, conn.hold_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if conn.timer != want {
            if let Some(old) = conn.timer.take() {
                self.timers.remove(&(old, id));
            }
            if let Some(at) = want {
                self.timers.insert((at, id));
            }
            conn.timer = want;
        }
    }

    // ----- output -----

    fn send(&mut self, to: SocketAddr, from: Option<IpAddr>, data: Vec<u8>) {
        self.outbox.push(to, from, &data);
    }

    /// Publishes the counters, then sends what is queued: a peer that has its answer
    /// can already read counters that include whatever caused it.
    async fn flush(&mut self) {
        self.count_sent();
        self.publish();
        self.send_outbox().await;
    }

    /// Sends what is queued once it holds [`OUTBOX_SEND_BYTES`], without waiting for
    /// the end of the round (the counters are published then, with the rest).
    async fn send_if_full(&mut self) {
        if self.outbox.byte_count() >= OUTBOX_SEND_BYTES {
            self.count_sent();
            self.send_outbox().await;
        }
    }

    /// Counts what is queued as sent.
    fn count_sent(&mut self) {
        self.stats.datagrams_sent += self.outbox.datagram_count() as u64;
        self.stats.bytes_sent += self.outbox.byte_count() as u64;
    }

    async fn send_outbox(&mut self) {
        if !self.outbox.is_empty() {
            self.io.send_all(&self.outbox).await;
            self.outbox.clear();
        }
    }

    /// Forgets a session. The hub is told it left (with `reason`) unless it already
    /// knows.
    async fn remove(&mut self, id: ClientId, reason: &str) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        if let Some(at) = conn.timer {
            self.timers.remove(&(at, id));
        }
        let mut behind_since = conn.behind_since;
        self.gate
            .set_behind(id, &mut behind_since, false, conn.last_heard);
        match &conn.kind {
            Kind::Plain { peer, .. } => {
                self.stats.plain_sessions -= 1;
                self.by_addr.remove(peer);
            }
            Kind::Reliable(r) => {
                self.stats.reliable_sessions -= 1;
                if let Some(session_id) = r.session.session_id() {
                    self.by_session.remove(&session_id);
                }
                let s = r.session.stats();
                tracing::debug!(
                    client = id.0,
                    datagrams_sent = s.datagrams_sent,
                    datagrams_received = s.datagrams_received,
                    packets_lost = s.packets_lost,
                    bytes_retransmitted = s.bytes_retransmitted,
                    rto_expirations = s.rto_expirations,
                    reneges = s.reneges,
                    duplicates = s.duplicates,
                    "reliable UDP session's counters"
                );
            }
        }
        if !conn.hub_gone {
            let _ = self
                .events
                .send(Event::Disconnected(id, reason.to_owned()))
                .await;
        }
        tracing::debug!(client = id.0, "UDP session removed");
    }

    /// Copies the counters where [`crate::Server::udp_stats`] reads them.
    fn publish(&mut self) {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        published.clone_from(&self.stats);
    }
}

/// A session's drop counters: (malformed, out of place).
fn session_drops(stats: &Stats) -> (u64, u64) {
    (
        stats.malformed,
        stats.wrong_session + stats.unexpected + stats.late + stats.wrong_address,
    )
}

/// A peer seen as `::ffff:1.2.3.4` is `1.2.3.4`: one session per real address.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
