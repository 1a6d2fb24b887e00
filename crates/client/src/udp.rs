//! The `udp://` transport: natter's reliable mode (docs/udp.md) under a [`Connection`].
//!
//! The reliable session (`natter_udp::Session`) is a state machine with no clock and no
//! socket. A background task owns both, plus the session: it feeds the session the
//! datagrams that arrive and the timer expiries it asks for, sends what it has to send,
//! and moves lines between the session and two bounded channels. Bounded both ways, so
//! that back-pressure reaches each end: a [`Connection`] that sends faster than the path
//! carries waits in `send` (the task stops taking lines while the session's send buffer
//! is full, and never drops one), and one that stops reading stops the task taking lines
//! out of the session, whose receive window then closes and slows the server.
//!
//! Everything is done in batches, because a busy room brings tens of thousands of
//! datagrams a second: the task takes every datagram waiting on the socket (see
//! [`BatchSocket`]) before it asks the session what to send, so one ACK answers a whole
//! burst; it takes every line the connection queued, so lines share datagrams; and it
//! hands received lines over a batch at a time, so the channel costs one message per
//! batch, not per line.
//!
//! [`Connection`]: crate::Connection

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use natter_proto::{FramedLine, LineFramer};
use natter_udp::{CloseReason, Config, Event, SendError, Session, State};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::udp_socket::BatchSocket;

/// Lines queued from the connection to its task. Enough to keep the session's send
/// buffer full; the session's own buffers hold the rest.
const CHANNEL_LINES: usize = 256;

/// Batches of received lines queued from the task to the connection, and the most
/// lines in one batch: at most 512 lines wait in the channel, and the session's
/// receive window holds the rest.
const CHANNEL_BATCHES: usize = 8;
const BATCH_LINES: usize = 64;

/// Most receive system calls the task makes before it looks at anything else: it
/// stops earlier when the socket is empty. A bound, so that a flood of datagrams
/// cannot keep it from sending its ACKs and lines for long.
const RECV_CALLS_PER_TURN: usize = 16;

/// Longest a closing session may take to deliver what is queued, exchange Close and
/// CloseAck (or linger after the server's Close) before the task gives up and drops it.
/// A lost CloseAck then costs the server its idle timeout, nothing more.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// The RTO before the first round-trip sample, on the client side. natter-udp's default
/// is RFC 6298's conservative 1 s; a chat client does better to start lower, like QUIC
/// (333 ms initial RTT): on a lossy path each early loss before a sample doubles the
/// timer, so 1 s becomes 1 + 2 + 4 + 8 s of silence after a few unlucky datagrams
/// (measured through the 30%-loss proxy: handshake plus registration took 5.4 s on
/// average and up to 17 s at 1 s, 3.1 s and 11 s at 300 ms). On a path slower than
/// this, the cost is an Initial or two sent again and a few early retransmissions
/// until the first sample sets the real RTO.
pub const CLIENT_INITIAL_RTO: Duration = Duration::from_millis(300);

/// The reliable session's settings `Connection::connect` uses for `udp://`: natter-udp's
/// defaults, with a [`CLIENT_INITIAL_RTO`] initial RTO.
pub fn client_config() -> Config {
    Config {
        initial_rto: CLIENT_INITIAL_RTO,
        ..Config::default()
    }
}

/// Longest line the reliable mode frames (its length prefix is a u16).
const MAX_LINE: usize = u16::MAX as usize;

/// Takes lines where they arrive, in the session's task, before they are copied out
/// for the connection: returns true for a line it dealt with (it then goes no
/// further), false for one the connection should see. See
/// [`crate::Connection::take_lines_with`].
pub type LineTaker = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// Where the connection puts a [`LineTaker`] for its task to use.
type TakerSlot = Arc<std::sync::Mutex<Option<LineTaker>>>;

/// What the task hands the connection.
enum Incoming {
    /// Lines received, in order (never empty).
    Lines(Vec<Bytes>),
    /// The session is over: `Ok` for an orderly close by either side, else why not.
    Ended(io::Result<()>),
}

/// The connection's end of a reliable UDP session.
pub(crate) struct UdpTransport {
    /// `None` once the connection asked to close: the task sees the channel end, sends
    /// what is queued, then closes the session.
    outgoing: Option<mpsc::Sender<Bytes>>,
    incoming: mpsc::Receiver<Incoming>,
    /// The rest of the batch of lines being handed out.
    lines: std::vec::IntoIter<Bytes>,
    /// What was read off `incoming` while closing, still to be handed out.
    drained: VecDeque<Incoming>,
    /// Cuts what `send_raw` is given into lines; keeps a partial last line.
    framer: LineFramer,
    task: Option<JoinHandle<()>>,
    /// The session's end was reported: from now on `recv_line` says end of stream.
    ended: bool,
    /// Shared with the task, which shows each line to the taker in it, if any.
    taker: TakerSlot,
}

/// Aborts the task if `connect` is abandoned (timed out, cancelled) before it returns.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl UdpTransport {
    /// Opens a reliable session with the server at `host:port` and returns once the
    /// server accepted it. Each resolved address is tried in turn while the system says
    /// nothing listens there (ICMP port unreachable); the handshake's own timeout
    /// (`config.handshake_timeout`, 30 s by default) bounds the wait at one that is
    /// silent.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        config: Config,
    ) -> Result<UdpTransport, io::Error> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
        let mut last_error = None;
        for addr in addrs {
            match UdpTransport::connect_addr(addr, config.clone()).await {
                Ok(t) => return Ok(t),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} resolves to no address"),
            )
        }))
    }

    async fn connect_addr(server: SocketAddr, config: Config) -> Result<UdpTransport, io::Error> {
        let local: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        // A connected socket takes datagrams from the server only (the session would
        // drop the others anyway) and hears the system's "nothing listens there".
        socket.connect(server).await?;
        let socket = BatchSocket::new(socket)?;
        let (out_tx, out_rx) = mpsc::channel(CHANNEL_LINES);
        let (in_tx, in_rx) = mpsc::channel(CHANNEL_BATCHES);
        let (connected_tx, connected_rx) = oneshot::channel();
        let session = Session::connect(Instant::now(), server, random_nonce(), config);
        let taker = TakerSlot::default();
        let driver = Driver {
            taker: taker.clone(),
            socket,
            server,
            session,
            outgoing: out_rx,
            outgoing_open: true,
            pending_out: None,
            incoming: Some(in_tx),
            held_in: None,
            end: None,
            connected: Some(connected_tx),
            close_deadline: None,
            failure: None,
        };
        let mut guard = AbortOnDrop(Some(tokio::spawn(driver.run())));
        match connected_rx.await {
            Ok(Ok(())) => Ok(UdpTransport {
                outgoing: Some(out_tx),
                incoming: in_rx,
                lines: Vec::new().into_iter(),
                drained: VecDeque::new(),
                framer: LineFramer::new(MAX_LINE),
                task: guard.0.take(),
                ended: false,
                taker,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other(
                "the UDP session task ended before the handshake did",
            )),
        }
    }

    /// Queues the complete lines in `bytes` (cut at CR, LF or CR LF; empty lines are
    /// skipped, since the reliable mode frames lines itself); a partial last line waits
    /// for the rest. Waits while the session's send buffer is full.
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        queue_lines(&mut self.framer, self.outgoing.as_ref(), bytes).await
    }

    /// A second way into the session's send buffer, for another task; `None` once the
    /// connection asked to close.
    pub(crate) fn line_sender(&self) -> Option<LineSender> {
        Some(LineSender {
            outgoing: self.outgoing.clone()?,
            framer: LineFramer::new(MAX_LINE),
        })
    }

    /// From now on, shows every line to `taker` in the session's task first; only the
    /// lines it does not take reach `recv_line`. Lines already handed over are not
    /// shown to it.
    pub(crate) fn take_lines_with(&self, taker: LineTaker) {
        if let Ok(mut slot) = self.taker.lock() {
            *slot = Some(taker);
        }
    }

    /// The next line from the server; `Ok(None)` once the session ended in order.
    pub(crate) async fn recv_line(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if let Some(line) = self.lines.next() {
                return Ok(Some(line));
            }
            if self.ended {
                return Ok(None);
            }
            let next = match self.drained.pop_front() {
                Some(item) => Some(item),
                None => self.incoming.recv().await,
            };
            match next {
                Some(Incoming::Lines(lines)) => self.lines = lines.into_iter(),
                Some(Incoming::Ended(result)) => {
                    self.ended = true;
                    return result.map(|()| None);
                }
                // The task is gone without a word: it gave up on a close that did not
                // finish.
                None => {
                    self.ended = true;
                    return Ok(None);
                }
            }
        }
    }

    /// The next line from the server if one has already arrived, without waiting:
    /// a reader that drains what is there this way pays for one wake per batch of
    /// lines, not one per line. `None` also at the end of the session (which
    /// [`UdpTransport::recv_line`] then reports).
    pub(crate) fn try_recv_line(&mut self) -> Option<Bytes> {
        loop {
            if let Some(line) = self.lines.next() {
                return Some(line);
            }
            if self.ended {
                return None;
            }
            let next = match self.drained.front() {
                Some(Incoming::Lines(_)) => self.drained.pop_front(),
                Some(Incoming::Ended(_)) => return None,
                None => self.incoming.try_recv().ok(),
            };
            match next {
                Some(Incoming::Lines(lines)) => self.lines = lines.into_iter(),
                Some(end @ Incoming::Ended(_)) => {
                    // Kept for recv_line, which reports how the session ended.
                    self.drained.push_front(end);
                    return None;
                }
                None => return None,
            }
        }
    }

    /// Orderly close: lines already queued are delivered, then Close and CloseAck are
    /// exchanged; returns when that is done or after [`CLOSE_LIMIT`]. Lines that arrive
    /// meanwhile can still be read.
    pub(crate) async fn close(&mut self) {
        self.outgoing = None;
        let Some(mut task) = self.task.take() else {
            return;
        };
        let limit = tokio::time::sleep(CLOSE_LIMIT + Duration::from_secs(1));
        tokio::pin!(limit);
        let mut reading = true;
        loop {
            tokio::select! {
                _ = &mut task => break,
                item = self.incoming.recv(), if reading => match item {
                    Some(item) => self.drained.push_back(item),
                    // The end was reported; the task may linger a little longer, to
                    // answer a repeated Close (TCP's TIME_WAIT).
                    None => reading = false,
                },
                () = &mut limit => {
                    task.abort();
                    break;
                }
            }
        }
    }
}

impl Drop for UdpTransport {
    fn drop(&mut self) {
        // The task closes the session in order by itself once `outgoing` is dropped, and
        // ends within CLOSE_LIMIT: nothing to wait for here.
        self.task.take();
    }
}

/// A nonce for the handshake: it must be unpredictable to others (it seeds the session
/// id) but need not be cryptographic. std's `RandomState` is keyed from the system's
/// randomness; the time, the process and a counter make every call different.
fn random_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(since_epoch);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// Sends lines into a reliable UDP session from a task other than the one reading it
/// (see [`Connection::line_sender`](crate::Connection::line_sender)): a client that
/// pipelines many lines must keep reading while it waits for room to send, or the
/// server, holding the lines the client has not read, stops reading its lines too.
/// The session closes only once every sender is dropped and the connection asked to.
pub struct LineSender {
    outgoing: mpsc::Sender<Bytes>,
    framer: LineFramer,
}

impl LineSender {
    /// Queues the complete lines in `bytes`, as [`Connection::send_raw`] does; waits
    /// while the session's send buffer is full.
    ///
    /// [`Connection::send_raw`]: crate::Connection::send_raw
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        queue_lines(&mut self.framer, Some(&self.outgoing), bytes).await
    }
}

/// Cuts `bytes` into lines with `framer` and queues each complete one on `outgoing`,
/// waiting while the channel is full.
async fn queue_lines(
    framer: &mut LineFramer,
    outgoing: Option<&mpsc::Sender<Bytes>>,
    bytes: &[u8],
) -> io::Result<()> {
    framer.extend(bytes);
    while let Some(framed) = framer.next_line() {
        let FramedLine::Line(line) = framed else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a line longer than 65535 bytes cannot be sent over UDP",
            ));
        };
        let closed = || {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the UDP session is closed: reconnect to send more",
            )
        };
        let sender = outgoing.ok_or_else(closed)?;
        sender.send(line).await.map_err(|_| closed())?;
    }
    Ok(())
}

/// The background task: one socket, one session, two channels.
struct Driver {
    socket: BatchSocket,
    server: SocketAddr,
    session: Session,
    outgoing: mpsc::Receiver<Bytes>,
    /// False once the connection dropped its sender: time to close.
    outgoing_open: bool,
    /// A line taken from `outgoing` that the session's full send buffer refused; no
    /// more are taken until it is queued.
    pending_out: Option<Bytes>,
    /// `None` once the connection is gone or the end was reported.
    incoming: Option<mpsc::Sender<Incoming>>,
    /// What the full `incoming` channel could not take yet.
    held_in: Option<Incoming>,
    /// How the session ended, to report after the lines received before the end.
    end: Option<io::Result<()>>,
    /// Answers `connect` once the handshake ends, either way.
    connected: Option<oneshot::Sender<io::Result<()>>>,
    /// Set when the close starts: the task ends by then whatever the session's state.
    close_deadline: Option<Instant>,
    /// A socket error that fails the handshake.
    failure: Option<io::Error>,
    /// The connection's [`LineTaker`], if it gave one.
    taker: TakerSlot,
}

impl Driver {
    async fn run(mut self) {
        loop {
            let now = Instant::now();
            self.feed_outgoing(now);
            self.take_events();
            // Lines first, then transmit: taking lines out of the session may owe the
            // server a window update (`poll_line` flags it), and nothing else would wake
            // this task to send it while the server waits for that window: the server's
            // persist timer (an RTO, backing off) would be all that moves the stream.
            self.deliver_lines();
            self.transmit(now).await;
            if self.finished(now) {
                return;
            }
            let wake = [self.session.poll_timeout(), self.close_deadline]
                .into_iter()
                .flatten()
                .min();
            let held = self.held_in.is_some() && self.incoming.is_some();
            let take_out = self.outgoing_open && self.pending_out.is_none();
            tokio::select! {
                ready = self.socket.readable() => match ready {
                    Ok(()) => self.receive(),
                    Err(e) => self.socket_error(e),
                },
                () = sleep_until(wake) => self.session.handle_timeout(Instant::now()),
                line = self.outgoing.recv(), if take_out => match line {
                    Some(line) => self.pending_out = Some(line),
                    None => self.outgoing_open = false,
                },
                permit = reserve(self.incoming.clone()), if held => {
                    let delivered = match permit {
                        Ok(permit) => {
                            let item = self.held_in.take();
                            let was_end = matches!(item, Some(Incoming::Ended(_)));
                            if let Some(item) = item {
                                permit.send(item);
                            }
                            !was_end
                        }
                        Err(_) => false,
                    };
                    if !delivered {
                        self.incoming = None;
                        self.held_in = None;
                    }
                }
            }
        }
    }

    /// Takes every datagram waiting on the socket (within [`RECV_CALLS_PER_TURN`]
    /// system calls) into the session, all at one instant: the caller then asks the
    /// session what to send once for the lot.
    fn receive(&mut self) {
        let now = Instant::now();
        let (session, from) = (&mut self.session, self.server);
        for _ in 0..RECV_CALLS_PER_TURN {
            match self
                .socket
                .try_recv(|datagram| session.handle_datagram(now, from, datagram))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.socket_error(e);
                    return;
                }
            }
        }
    }

    /// Hands the session the lines the connection queued, as long as its send buffer
    /// has room, and starts the close once the connection asked for it and every line
    /// it sent is queued.
    fn feed_outgoing(&mut self, now: Instant) {
        loop {
            let line = match self.pending_out.take() {
                Some(line) => line,
                None if self.outgoing_open => match self.outgoing.try_recv() {
                    Ok(line) => line,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.outgoing_open = false;
                        break;
                    }
                },
                None => break,
            };
            // A line that does not fit is handed back, to be offered again.
            match self.session.send_line_bytes(line) {
                Ok(()) => {}
                Err((SendError::Full, line)) => {
                    self.pending_out = Some(line);
                    break;
                }
                // TooLong cannot happen (the connection framed it within the limit);
                // NotOpen: the session ended, and the end is reported to the connection.
                Err((SendError::TooLong | SendError::NotOpen, _)) => {}
            }
        }
        if !self.outgoing_open && self.pending_out.is_none() && self.close_deadline.is_none() {
            self.session.close();
            self.close_deadline = Some(now + CLOSE_LIMIT);
        }
    }

    async fn transmit(&mut self, now: Instant) {
        while let Some(t) = self.session.poll_transmit(now) {
            let sent = if t.to == self.server {
                self.socket.send(&t.datagram).await
            } else {
                self.socket.send_to(&t.datagram, t.to).await
            };
            if let Err(e) = sent {
                self.socket_error(e);
            }
        }
    }

    /// A failed send or receive. "Nothing listens there" before the session is
    /// established fails the connect at once; anything else is as good as a lost
    /// datagram, which the session recovers from (or times out on).
    fn socket_error(&mut self, e: io::Error) {
        if self.session.state() == State::Connecting && e.kind() == io::ErrorKind::ConnectionRefused
        {
            self.failure = Some(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "nothing listens on UDP {} ({e}): is natter serving udp:// there?",
                    self.server
                ),
            ));
        }
    }

    fn take_events(&mut self) {
        if let Some(e) = self.failure.take() {
            if let Some(tx) = self.connected.take() {
                let _ = tx.send(Err(e));
            }
            self.incoming = None;
            self.session.close();
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connected => {
                    if let Some(tx) = self.connected.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Event::Closed { reason } => {
                    let result = close_result(reason, self.server);
                    if let Some(tx) = self.connected.take() {
                        // Ended before it was established: `connect` fails.
                        let e = result
                            .err()
                            .unwrap_or_else(|| io::Error::other("closed during the handshake"));
                        let _ = tx.send(Err(e));
                        self.incoming = None;
                    } else {
                        self.end = Some(result);
                    }
                }
                Event::Migrated { .. } => {}
            }
        }
    }

    /// Moves received lines into the channel, a batch at a time, while it has room;
    /// then the end.
    fn deliver_lines(&mut self) {
        while self.held_in.is_none() {
            let Some(tx) = &self.incoming else {
                // Nobody reads: keep the session's receive window open regardless.
                while self.session.poll_line().is_some() {}
                self.end = None;
                return;
            };
            let mut lines = Vec::new();
            let taken = match self.taker.lock().as_deref_mut() {
                Ok(Some(taker)) => self.session.poll_lines_with(BATCH_LINES, &mut lines, taker),
                _ => self.session.poll_lines(BATCH_LINES, &mut lines),
            };
            if taken > 0 && lines.is_empty() {
                // Every line was taken where it lay: look for more.
                continue;
            }
            let item = if !lines.is_empty() {
                Incoming::Lines(lines)
            } else {
                match self.end.take() {
                    Some(end) => Incoming::Ended(end),
                    None => return,
                }
            };
            let was_end = matches!(item, Incoming::Ended(_));
            match tx.try_send(item) {
                Ok(()) if was_end => self.incoming = None,
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(item)) => self.held_in = Some(item),
                Err(mpsc::error::TrySendError::Closed(_)) => self.incoming = None,
            }
        }
    }

    /// Whether the task is done: the session is over (linger included) and its end
    /// reported, or the close took too long.
    fn finished(&self, now: Instant) -> bool {
        if self.close_deadline.is_some_and(|t| now >= t) {
            return true;
        }
        self.session.is_drained()
            && self.incoming.is_none()
            && self.held_in.is_none()
            && self.end.is_none()
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Room for one item in the channel. Owned, so that the select's outcome does not
/// borrow the driver its handler changes.
async fn reserve(
    sender: Option<mpsc::Sender<Incoming>>,
) -> Result<mpsc::OwnedPermit<Incoming>, mpsc::error::SendError<()>> {
    match sender {
        Some(s) => s.reserve_owned().await,
        None => std::future::pending().await,
    }
}

/// How a session that ended after it was established ended, for the connection.
fn close_result(reason: CloseReason, server: SocketAddr) -> io::Result<()> {
    match reason {
        CloseReason::Local | CloseReason::Peer { .. } => Ok(()),
        CloseReason::IdleTimeout => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the server at {server} stopped answering (no datagram for the idle timeout)"),
        )),
        CloseReason::HandshakeTimeout => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no answer from {server}: the reliable-UDP handshake timed out \
                 (is natter serving udp:// there, and does the path let UDP through?)"
            ),
        )),
        CloseReason::Reset => Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "the server no longer knows this session (it restarted or expired it): reconnect",
        )),
    }
}
