//! The reliable session state machine, for both ends.
//!
//! Sans-IO: the owner feeds it datagrams ([`Session::handle_datagram`]) and clock ticks
//! ([`Session::handle_timeout`]) and takes out datagrams ([`Session::poll_transmit`]),
//! lines ([`Session::poll_line`]) and events ([`Session::poll_event`]). It never reads a
//! clock or touches a socket, so the same code runs under tokio in the server, in the
//! client library, and under a simulated lossy network in the tests.
//!
//! The driving loop, on either side:
//!
//! ```text
//! on datagram (from, bytes):  session.handle_datagram(now, from, bytes)
//! on timer expiry:            session.handle_timeout(now)
//! after either, and after send_line / close / poll_line:
//!     while let Some(t) = session.poll_transmit(now) { socket.send_to(t.datagram, t.to) }
//!     while let Some(line) = session.poll_line() { ... }
//!     while let Some(event) = session.poll_event() { ... }
//!     re-arm the timer at session.poll_timeout()
//!     drop the session once session.is_drained()
//! ```
//!
//! One type serves both roles because nearly everything (acks, retransmission, windows,
//! keepalive, close) is symmetric; the handshake and roaming differ and are kept apart by
//! [`Role`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::acks::{AckTracker, Arrival};
use crate::amplification::Budget;
use crate::config::{Config, INITIAL_MAX_OFFSET};
use crate::congestion::Window;
use crate::cookie::{constant_time_eq, Cookie, Cookies, Purpose, RESET_TOKEN_LEN};
use crate::path_mtu::PathMtu;
use crate::recovery::{Recovery, SentPacket, StreamRanges};
use crate::recv_stream::RecvStream;
use crate::rtt::{RttEstimator, GRANULARITY};
use crate::send_stream::{SendError, SendStream, LINE_PREFIX_LEN};
use crate::stats::Stats;
use crate::wire::{
    self, AckFrame, Frame, Packet, MAX_DATAGRAM_SIZE, STREAM_FRAME_OVERHEAD, VERSION,
};

/// Which end of the session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opens the session (Initial), may change address.
    Client,
    /// Accepts sessions; validates a client's new address before moving there.
    Server,
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Client only: Initial sent, no Accept yet. Lines may be queued.
    Connecting,
    /// Open both ways.
    Established,
    /// `close()` was called: queued lines are still delivered, then Close is sent and
    /// the session waits for CloseAck. No new lines may be queued.
    Closing,
    /// The peer's Close was acknowledged; stray datagrams for this session are absorbed
    /// and a repeated Close is answered again, until the linger ends (TCP's TIME_WAIT).
    Lingering,
    /// Over. Nothing more will be sent; the owner may drop the session.
    Closed,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// This end called `close()` and the peer acknowledged.
    Local,
    /// The peer closed, with its reason code (0: normal).
    Peer {
        /// The code from the peer's Close frame.
        code: u8,
    },
    /// Nothing was received for the idle timeout: the peer or the path is gone.
    IdleTimeout,
    /// Client: the handshake did not complete in time.
    HandshakeTimeout,
    /// Client: the server said (with a valid reset token) that it has no such session.
    Reset,
}

/// Something the owner should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Client: the server accepted; the session id is known and lines flow.
    Connected,
    /// Server: the client's new address was validated and the session moved there.
    Migrated {
        /// The previous client address.
        from: SocketAddr,
        /// The new client address.
        to: SocketAddr,
    },
    /// The conversation is over (the session may still linger before it is drained).
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination address.
    pub to: SocketAddr,
    /// The datagram: an Initial is exactly
    /// [`MAX_DATAGRAM_SIZE`](crate::wire::MAX_DATAGRAM_SIZE) bytes, any other at most
    /// [`Session::max_datagram_size`].
    pub datagram: Vec<u8>,
}

/// The longest wait between two Initials. The Initial timer backs off like the RTO, but
/// only up to this: a handshake is one small exchange, and on a lossy path (30% each way
/// makes a round trip fail half the time) uncapped doubling would spend the whole
/// handshake timeout on four or five tries.
pub const MAX_INITIAL_INTERVAL: Duration = Duration::from_secs(3);

/// Path tokens (challenges answered) the client keeps at most; more are dropped.
const MAX_PENDING_RESPONSES: usize = 4;

/// A server session's candidate new client address, before validation.
#[derive(Debug)]
struct PathCandidate {
    addr: SocketAddr,
    /// Anti-amplification accounting toward this unvalidated address.
    budget: Budget,
    last_challenge: Option<Instant>,
}

/// One reliable session. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Session {
    role: Role,
    config: Config,
    state: State,
    /// Where packets go: the server (client side) or the validated client address.
    remote: SocketAddr,
    session_id: Option<u64>,
    nonce: u64,
    reset_token: Option<[u8; RESET_TOKEN_LEN]>,
    /// Server: to validate a roaming client's new address.
    cookies: Option<Cookies>,
    created: Instant,
    last_recv: Instant,

    // Client handshake.
    cookie: Vec<u8>,
    initial_due: bool,
    initials_sent: u32,
    initial_sent_at: Option<Instant>,
    initial_deadline: Option<Instant>,

    // Server handshake.
    accept_pending: bool,
    /// Server: the client has sent a Data packet, so it has our Accept. Until then the
    /// server sends nothing but Accept (anything else would be dropped by a client that
    /// does not know the session id yet) and gives up after the handshake timeout.
    confirmed: bool,
    /// Server, until confirmed: when to send Accept again unasked. The client's
    /// confirming PING may be lost as well as the Accept; repeating the Accept (to an
    /// address already validated) makes the client confirm again.
    accept_deadline: Option<Instant>,

    // Sending.
    next_pn: u64,
    recovery: Recovery,
    rtt: RttEstimator,
    window: Window,
    rto_deadline: Option<Instant>,
    loss_time: Option<Instant>,
    send: SendStream,
    /// How large a datagram the path carries.
    mtu: PathMtu,
    peer_max_offset: u64,
    ping_pending: bool,
    close_pending: bool,
    close_sent: bool,
    close_ack_pending: bool,
    linger_until: Option<Instant>,

    // Receiving.
    acks: AckTracker,
    recv: RecvStream,
    last_advertised_max: u64,
    window_update_pending: bool,

    // Roaming.
    path: Option<PathCandidate>,
    challenge_pending: bool,
    responses: VecDeque<Vec<u8>>,

    events: VecDeque<Event>,
    stats: Stats,
}

impl Session {
    /// Starts a client session toward `server`. `nonce` must be random (it names this
    /// connection attempt and seeds the session id); lines may be queued at once and flow
    /// when the server accepts. The first `poll_transmit` yields the Initial.
    pub fn connect(now: Instant, server: SocketAddr, nonce: u64, config: Config) -> Session {
        let mut s = Session::new(Role::Client, now, server, nonce, config);
        s.state = State::Connecting;
        s.initial_due = true;
        s
    }

    /// A server session for a validated handshake (see [`crate::Accept::into_session`]).
    pub(crate) fn accepted(
        now: Instant,
        peer: SocketAddr,
        nonce: u64,
        session_id: u64,
        cookies: Cookies,
        config: Config,
    ) -> Session {
        let mut s = Session::new(Role::Server, now, peer, nonce, config);
        s.state = State::Established;
        s.session_id = Some(session_id);
        s.reset_token = Some(cookies.reset_token(session_id));
        s.cookies = Some(cookies);
        s
    }

    fn new(role: Role, now: Instant, remote: SocketAddr, nonce: u64, config: Config) -> Session {
        let config = config.normalized();
        Session {
            role,
            state: State::Connecting,
            remote,
            session_id: None,
            nonce,
            reset_token: None,
            cookies: None,
            created: now,
            last_recv: now,
            cookie: Vec::new(),
            initial_due: false,
            initials_sent: 0,
            initial_sent_at: None,
            initial_deadline: None,
            accept_pending: false,
            confirmed: role == Role::Client,
            accept_deadline: None,
            next_pn: 0,
            recovery: Recovery::new(),
            rtt: RttEstimator::new(config.initial_rto, config.min_rto, config.max_rto),
            window: Window::new(config.initial_window, config.min_window, config.max_window),
            rto_deadline: None,
            loss_time: None,
            send: SendStream::new(config.send_buffer),
            mtu: PathMtu::new(config.max_datagram_size),
            peer_max_offset: INITIAL_MAX_OFFSET,
            ping_pending: false,
            close_pending: false,
            close_sent: false,
            close_ack_pending: false,
            linger_until: None,
            acks: AckTracker::new(),
            recv: RecvStream::new(config.recv_window),
            last_advertised_max: 0,
            window_update_pending: false,
            path: None,
            challenge_pending: false,
            responses: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            config,
        }
    }

    // ----- queries -----

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True while open both ways.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// True once the conversation is over (lingering or closed): no more lines either way.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Lingering | State::Closed)
    }

    /// True when the session has nothing left to do, linger included: drop it.
    pub fn is_drained(&self) -> bool {
        self.state == State::Closed
    }

    /// The session id (client: once accepted).
    pub fn session_id(&self) -> Option<u64> {
        self.session_id
    }

    /// The client nonce of the handshake.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// Where packets go: the server, or the client's current validated address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Counters, drops included.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The round-trip estimator (SRTT, RTO).
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Packets that may be in flight now (the congestion window).
    pub fn window(&self) -> u32 {
        self.window.size()
    }

    /// Ack-eliciting packets in flight now.
    pub fn in_flight(&self) -> u32 {
        self.recovery.in_flight()
    }

    /// Bytes `send_line` can still accept (each line costs its length plus 2).
    pub fn send_buffer_available(&self) -> usize {
        self.send.available()
    }

    /// Bytes queued and not yet acknowledged by the peer.
    pub fn send_buffer_used(&self) -> usize {
        self.send.buffered()
    }

    // ----- application side -----

    /// Queues one line (without its CR LF: the length prefix delimits it), copying it
    /// into the send stream. Fails with [`SendError::Full`] when the send buffer is
    /// full: that is the back-pressure signal.
    pub fn send_line(&mut self, line: &[u8]) -> Result<(), SendError> {
        match self.state {
            State::Connecting | State::Established => {
                self.send.push_line_slice(line)?;
                self.stats.lines_sent += 1;
                Ok(())
            }
            _ => Err(SendError::NotOpen),
        }
    }

    /// Whether [`Session::send_line`] would take a line of `len` bytes now rather
    /// than fail with [`SendError::Full`] (it may still fail otherwise: a line too
    /// long, a session not open).
    pub fn has_room_for(&self, len: usize) -> bool {
        len > usize::from(u16::MAX)
            || !matches!(self.state, State::Connecting | State::Established)
            || LINE_PREFIX_LEN + len <= self.send.available()
    }

    /// Queues lines taken from the front of `lines` while the send buffer has room,
    /// each without its line end (CR LF, LF or CR, as IRC lines end); returns how many
    /// were taken and their bytes with their line ends. What stays in `lines` waits
    /// for the peer to acknowledge. When the session is not open for sending, every
    /// line is taken and dropped: nobody will read it. The same as [`Session::send_line`]
    /// for each line, in less work per line.
    pub fn send_lines(&mut self, lines: &mut VecDeque<Bytes>) -> (usize, usize) {
        if !matches!(self.state, State::Connecting | State::Established) {
            let bytes = lines.iter().map(Bytes::len).sum();
            let n = lines.len();
            lines.clear();
            return (n, bytes);
        }
        let (n, bytes) = self.send.push_lines(lines, line_body_len);
        self.stats.lines_sent += n as u64;
        (n, bytes)
    }

    /// Like [`Session::send_lines`], for lines that each end in CR LF and are
    /// `bytes` long in all (line ends included), as a server's are: when they all
    /// fit, they are taken whole without reading any of them; else as
    /// [`Session::send_lines`] takes them. A line with another end, or longer than
    /// 65535 bytes without it, would be framed wrong: give such lines to
    /// [`Session::send_lines`].
    pub fn send_crlf_lines(&mut self, lines: &mut VecDeque<Bytes>, bytes: usize) -> (usize, usize) {
        if matches!(self.state, State::Connecting | State::Established) {
            if let Some((n, bytes)) = self.send.push_crlf_lines(lines, bytes) {
                self.stats.lines_sent += n as u64;
                return (n, bytes);
            }
        }
        self.send_lines(lines)
    }

    /// Queues one line as [`Session::send_line`] does, taking it as `Bytes` (copied
    /// once, with two bytes after it for its framing; a server's lines, which come with
    /// CR LF, go through [`Session::send_crlf_lines`] without a copy). On failure the
    /// line is handed back, so the caller can offer it again later.
    pub fn send_line_bytes(&mut self, line: Bytes) -> Result<(), (SendError, Bytes)> {
        match self.state {
            State::Connecting | State::Established => {
                self.send.push_line(line)?;
                self.stats.lines_sent += 1;
                Ok(())
            }
            _ => Err((SendError::NotOpen, line)),
        }
    }

    /// The next line received, in order, each exactly once. Lines received before the
    /// session closed can still be taken after.
    pub fn poll_line(&mut self) -> Option<Bytes> {
        let line = self.recv.poll_line()?;
        self.stats.lines_received += 1;
        if self.recv.max_offset() >= self.last_advertised_max + self.recv.window() / 2 {
            self.window_update_pending = true;
        }
        Some(line)
    }

    /// Up to `max` lines received, in order, appended to `out`; how many. The same as
    /// calling [`Session::poll_line`] that often, but the lines share one allocation
    /// (each is a slice of it): for a reader that takes lines in bulk.
    pub fn poll_lines(&mut self, max: usize, out: &mut Vec<Bytes>) -> usize {
        self.poll_lines_with(max, out, &mut |_| false)
    }

    /// As [`Session::poll_lines`], but each line is first shown to `take` where it lies
    /// in the receive buffer; those it took (true) are not copied nor appended to
    /// `out`. Returns how many lines were taken out of the session in all. For a
    /// reader that can deal with most lines on the spot, such as a load generator
    /// counting them.
    pub fn poll_lines_with(
        &mut self,
        max: usize,
        out: &mut Vec<Bytes>,
        take: &mut dyn FnMut(&[u8]) -> bool,
    ) -> usize {
        let n = self.recv.poll_lines_with(max, out, take);
        if n > 0 {
            self.stats.lines_received += n as u64;
            if self.recv.max_offset() >= self.last_advertised_max + self.recv.window() / 2 {
                self.window_update_pending = true;
            }
        }
        n
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Starts an orderly close: lines already queued are still delivered and
    /// acknowledged, then Close is sent. A client still connecting closes at once.
    pub fn close(&mut self) {
        match self.state {
            State::Connecting => self.finish(CloseReason::Local),
            State::Established => {
                self.state = State::Closing;
                self.close_pending = true;
            }
            _ => {}
        }
    }

    /// Sends a PING soon: e.g. after the client's local address changed, so that the
    /// server sees the new address (and validates it) without waiting for traffic.
    pub fn ping(&mut self) {
        if matches!(self.state, State::Established | State::Closing) {
            self.ping_pending = true;
        }
    }

    // ----- network side -----

    /// Processes one datagram that arrived from `from`. Anything malformed, misaddressed
    /// or out of place is dropped and counted in [`Stats`]; nothing here can panic.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        if self.state == State::Closed {
            self.stats.late += 1;
            return;
        }
        let packet = match wire::decode(datagram) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match self.role {
            Role::Client => self.client_packet(now, from, packet),
            Role::Server => self.server_packet(now, from, packet, datagram.len()),
        }
        self.update_rto_timer(now);
    }

    fn client_packet(&mut self, now: Instant, from: SocketAddr, packet: Packet<'_>) {
        if from != self.remote {
            self.stats.wrong_address += 1;
            return;
        }
        match packet {
            Packet::Retry {
                version,
                nonce,
                cookie,
            } => {
                if self.state != State::Connecting || nonce != self.nonce || version != VERSION {
                    self.stats.unexpected += 1;
                    return;
                }
                if cookie == self.cookie.as_slice() {
                    // The same cookie again: our Initial with it was lost or is late; the
                    // retransmission timer will resend it. Answering every Retry at once
                    // could loop at network speed.
                    self.stats.duplicates += 1;
                    return;
                }
                self.handshake_rtt_sample(now);
                self.cookie = cookie.to_vec();
                self.initials_sent = 0;
                self.initial_due = true;
                self.last_recv = now;
                self.stats.retries += 1;
            }
            Packet::Accept {
                version,
                nonce,
                session_id,
                reset_token,
            } => {
                if self.state != State::Connecting || nonce != self.nonce || version != VERSION {
                    if self.session_id == Some(session_id) {
                        // The server has not seen our confirmation: confirm again.
                        self.stats.duplicates += 1;
                        self.last_recv = now;
                        self.ping();
                    } else {
                        self.stats.unexpected += 1;
                    }
                    return;
                }
                self.handshake_rtt_sample(now);
                self.session_id = Some(session_id);
                self.reset_token = Some(reset_token);
                self.state = State::Established;
                self.initial_deadline = None;
                self.initial_due = false;
                self.last_recv = now;
                // Confirm at once, so the server may start sending and gets an RTT sample.
                self.ping_pending = true;
                self.events.push_back(Event::Connected);
            }
            Packet::Data {
                session_id,
                packet_number,
                frames,
            } => {
                if self.session_id != Some(session_id) {
                    self.stats.wrong_session += 1;
                    return;
                }
                self.on_data_packet(now, packet_number, &frames);
            }
            Packet::PathChallenge { session_id, token } => {
                if self.session_id != Some(session_id) {
                    self.stats.wrong_session += 1;
                    return;
                }
                if !matches!(self.state, State::Established | State::Closing) {
                    self.stats.late += 1;
                    return;
                }
                self.last_recv = now;
                if self.responses.len() < MAX_PENDING_RESPONSES {
                    self.responses.push_back(token.to_vec());
                }
            }
            Packet::Reset { session_id, token } => {
                let valid = self.session_id == Some(session_id)
                    && self
                        .reset_token
                        .is_some_and(|t| constant_time_eq(&t, &token));
                if valid && !self.is_closed() {
                    self.finish(CloseReason::Reset);
                } else {
                    self.stats.unexpected += 1;
                }
            }
            Packet::Initial { .. } | Packet::PathResponse { .. } => {
                self.stats.unexpected += 1;
            }
        }
    }

    /// An RTT sample from the handshake: valid only if exactly one Initial with the
    /// current cookie went out (Karn: otherwise we cannot tell which one is answered).
    /// Either way, the path has just answered, so the backoff ends.
    fn handshake_rtt_sample(&mut self, now: Instant) {
        match self.initial_sent_at {
            Some(t) if self.initials_sent == 1 => self.rtt.update(now.saturating_duration_since(t)),
            _ => self.rtt.reset_backoff(),
        }
    }

    fn server_packet(&mut self, now: Instant, from: SocketAddr, packet: Packet<'_>, len: usize) {
        match packet {
            Packet::Initial { nonce, .. } => {
                // Routed here by the server after the Listener validated its cookie: the
                // client did not get our Accept. Answer again, once per Initial.
                if nonce == self.nonce
                    && from == self.remote
                    && matches!(self.state, State::Established | State::Closing)
                {
                    self.accept_pending = true;
                } else {
                    self.stats.unexpected += 1;
                }
            }
            Packet::Data {
                session_id,
                packet_number,
                frames,
            } => {
                if self.session_id != Some(session_id) {
                    self.stats.wrong_session += 1;
                    return;
                }
                if from != self.remote {
                    self.on_unvalidated_address(now, from, len);
                }
                self.on_data_packet(now, packet_number, &frames);
            }
            Packet::PathResponse { session_id, token } => {
                if self.session_id != Some(session_id) {
                    self.stats.wrong_session += 1;
                    return;
                }
                let valid = match (&self.cookies, Cookie::from_bytes(token)) {
                    (Some(cookies), Some(c)) => {
                        cookies.verify(now, Purpose::Path, from, &session_id.to_be_bytes(), &c)
                    }
                    _ => false,
                };
                if !valid {
                    self.stats.bad_path_responses += 1;
                    return;
                }
                self.last_recv = now;
                if from != self.remote && matches!(self.state, State::Established | State::Closing)
                {
                    self.migrate(now, from);
                }
            }
            Packet::Retry { .. }
            | Packet::Accept { .. }
            | Packet::PathChallenge { .. }
            | Packet::Reset { .. } => {
                self.stats.unexpected += 1;
            }
        }
    }

    /// A packet for this session came from an address we have not validated: maybe the
    /// client roamed (NAT rebinding, new network), maybe someone forged it. Keep sending
    /// to the old address, and challenge the new one, within the amplification limit.
    fn on_unvalidated_address(&mut self, now: Instant, from: SocketAddr, len: usize) {
        if !matches!(self.state, State::Established | State::Closing) {
            return;
        }
        let candidate = match &mut self.path {
            Some(p) if p.addr == from => p,
            _ => self.path.insert(PathCandidate {
                addr: from,
                budget: Budget::new(),
                last_challenge: None,
            }),
        };
        candidate.budget.on_received(len);
        // One challenge per round trip is enough; more would only echo a flood.
        let interval = self
            .rtt
            .smoothed_or(self.config.initial_rto)
            .max(GRANULARITY);
        if candidate
            .last_challenge
            .is_none_or(|t| now.saturating_duration_since(t) >= interval)
        {
            self.challenge_pending = true;
        }
    }

    fn migrate(&mut self, now: Instant, to: SocketAddr) {
        let from = self.remote;
        self.remote = to;
        self.path = None;
        self.challenge_pending = false;
        self.stats.migrations += 1;
        self.events.push_back(Event::Migrated { from, to });
        // What went to the old address is presumed lost: resend it to the new one now
        // rather than after a timeout. The new path's capacity is unknown: start over.
        self.mtu.on_new_path(now);
        for p in self.recovery.declare_all_lost() {
            self.requeue(&p);
        }
        self.window = Window::new(
            self.config.initial_window,
            self.config.min_window,
            self.config.max_window,
        );
        self.rto_deadline = None;
        self.loss_time = None;
        self.acks.request_immediate(now);
    }

    fn on_data_packet(&mut self, now: Instant, pn: u64, frames: &[Frame<'_>]) {
        if self.state == State::Lingering {
            // The peer did not get our CloseAck if it repeats its Close; anything else is
            // a straggler of the finished conversation.
            self.stats.late += 1;
            if frames.iter().any(|f| matches!(f, Frame::Close { .. })) {
                self.close_ack_pending = true;
            }
            return;
        }
        if !matches!(self.state, State::Established | State::Closing) {
            self.stats.unexpected += 1;
            return;
        }
        let eliciting = frames.iter().any(Frame::is_ack_eliciting);
        if self
            .acks
            .on_packet(pn, now, eliciting, self.config.max_ack_delay)
            == Arrival::Duplicate
        {
            self.stats.duplicates += 1;
            return;
        }
        self.last_recv = now;
        self.confirmed = true;
        for frame in frames {
            match frame {
                Frame::Ack(a) => self.on_ack(now, a),
                Frame::Stream { offset, data } => {
                    if self.recv.on_data(*offset, data).is_err() {
                        self.stats.protocol_violations += 1;
                    }
                }
                Frame::Ping => {}
                Frame::Close { code, final_offset } => {
                    self.on_peer_close(now, *code, *final_offset);
                }
                Frame::CloseAck => {
                    if self.state == State::Closing && self.close_sent {
                        self.finish(CloseReason::Local);
                        return;
                    }
                }
            }
            if self.is_closed() {
                return;
            }
        }
    }

    fn on_ack(&mut self, now: Instant, ack: &AckFrame) {
        let acked = self.recovery.on_ack(&ack.ranges, self.next_pn, now);
        if acked.beyond_sent {
            self.stats.protocol_violations += 1;
        }
        let progress = !acked.packets.is_empty();
        // The cumulative offset first: it frees most of what the packets carried, so
        // only what lies above it is recorded as selectively acknowledged.
        self.send.ack_below(ack.cum_offset);
        for p in &acked.packets {
            if p.probe > 0 {
                self.mtu.on_probe_acked(usize::from(p.probe));
            }
            if p.large {
                self.mtu.on_large_acked();
            }
            if p.in_flight {
                self.window.on_ack(p.time);
            }
            for r in p.stream.iter() {
                self.send.on_acked(r);
            }
        }
        let delay = Duration::from_micros(u64::from(ack.ack_delay_micros));
        let sampled = acked
            .rtt_sample
            .is_some_and(|s| self.rtt.on_ack_sample(s, delay, self.config.max_ack_delay));
        if progress && !sampled {
            // The path delivered; only the timing is unusable (QUIC resets its probe
            // backoff on any new acknowledgement for the same reason).
            self.rtt.reset_backoff();
        }
        self.peer_max_offset = self.peer_max_offset.max(ack.max_offset);
        if progress {
            self.rto_deadline = if self.recovery.in_flight() > 0 {
                Some(now + self.rtt.rto())
            } else {
                None
            };
        }
        self.detect_lost(now);
    }

    fn detect_lost(&mut self, now: Instant) {
        let basis = match (self.rtt.srtt(), self.rtt.latest()) {
            (Some(s), Some(l)) => s.max(l),
            _ => self.config.initial_rto,
        };
        let loss_delay = (basis * 9 / 8).max(GRANULARITY);
        let (lost, next) = self.recovery.detect_lost(now, loss_delay);
        self.loss_time = next;
        for p in lost {
            if p.probe > 0 {
                // Too large for the path, most likely: not congestion.
                self.mtu.on_probe_lost(usize::from(p.probe));
                continue;
            }
            self.window.on_loss(p.time, now);
            self.requeue(&p);
        }
    }

    /// Puts what a lost packet carried back in the queue.
    fn requeue(&mut self, p: &SentPacket) {
        if p.probe > 0 {
            self.mtu.on_probe_lost(usize::from(p.probe));
            return;
        }
        self.stats.packets_lost += 1;
        for r in p.stream.iter() {
            self.send.on_lost(r);
        }
        if matches!(self.state, State::Established | State::Closing) {
            // A lost PING matters only if the peer has not been heard from since it was
            // sent (keepalive) or new data still waits for its window (probe).
            let still_needed =
                self.last_recv < p.time || self.send.blocked_by_flow_control(self.peer_max_offset);
            if p.ping && still_needed {
                self.ping_pending = true;
            }
            if p.close && self.state == State::Closing {
                self.close_pending = true;
            }
        }
    }

    fn on_peer_close(&mut self, now: Instant, code: u8, final_offset: u64) {
        if self.recv.contiguous_end() < final_offset {
            // The peer claims to be done but we lack some of its lines: do not confirm;
            // its retransmissions will fill the gap and it will repeat the Close.
            return;
        }
        self.close_ack_pending = true;
        let linger = (self.rtt.rto() * 3)
            .max(self.config.min_linger)
            .min(self.config.max_rto);
        self.linger_until = Some(now + linger);
        self.state = State::Lingering;
        self.stop_sending();
        self.events.push_back(Event::Closed {
            reason: CloseReason::Peer { code },
        });
    }

    fn stop_sending(&mut self) {
        self.send.clear();
        self.recovery.clear();
        self.ping_pending = false;
        self.close_pending = false;
        self.rto_deadline = None;
        self.loss_time = None;
        self.path = None;
        self.challenge_pending = false;
        self.accept_pending = false;
        self.responses.clear();
    }

    fn finish(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.stop_sending();
        self.close_ack_pending = false;
        self.initial_due = false;
        self.events.push_back(Event::Closed { reason });
    }

    /// Advances timers: call when `now` has reached [`Session::poll_timeout`]. Calling it
    /// early or repeatedly is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => return,
            State::Lingering => {
                if self.linger_until.is_some_and(|t| now >= t) {
                    self.state = State::Closed;
                    self.close_ack_pending = false;
                }
                return;
            }
            State::Connecting => {
                if now >= self.created + self.config.handshake_timeout {
                    self.finish(CloseReason::HandshakeTimeout);
                    return;
                }
                if self.initial_deadline.is_some_and(|t| now >= t) {
                    self.rtt.on_timeout();
                    self.initial_deadline = None;
                    self.initial_due = true;
                }
                return;
            }
            State::Established | State::Closing => {}
        }
        if !self.confirmed && self.accept_deadline.is_some_and(|t| now >= t) {
            self.rtt.on_timeout();
            self.accept_deadline = None;
            self.accept_pending = true;
        }
        if now >= self.idle_deadline() {
            self.finish(CloseReason::IdleTimeout);
            return;
        }
        if self.send.all_acked() {
            // Nothing to send when a timer is due: the last burst is over.
            self.send.release_idle();
        }
        self.recv.release_idle();
        if self.loss_time.is_some_and(|t| now >= t) {
            self.detect_lost(now);
        }
        if self.rto_deadline.is_some_and(|t| now >= t) {
            self.on_rto(now);
        }
        if self.keepalive_deadline().is_some_and(|t| now >= t) {
            self.ping_pending = true;
        }
        self.update_rto_timer(now);
    }

    fn on_rto(&mut self, now: Instant) {
        self.rto_deadline = None;
        self.stats.rto_expirations += 1;
        self.rtt.on_timeout();
        let mut lost = self.recovery.declare_all_lost();
        lost.retain(|p| {
            if p.probe > 0 {
                self.mtu.on_probe_lost(usize::from(p.probe));
            }
            p.probe == 0
        });
        if lost.is_empty() {
            if self.send.has_unacked_sent() && !self.send.has_lost() {
                // Every packet was acknowledged, yet the peer's cumulative offset has not
                // caught up: it acknowledged bytes it does not have. Send them again.
                self.stats.reneges += 1;
                self.send.renege();
            } else if self.send.blocked_by_flow_control(self.peer_max_offset) {
                // The persist timer: new data waits for the peer's window. Probe, so the
                // peer's ACK brings its current window.
                self.ping_pending = true;
            }
            return;
        }
        self.window.on_timeout(now);
        // Nothing in flight arrived: if the packets were larger than the base size,
        // the path may have stopped carrying them.
        self.mtu.on_timeout(now);
        for p in &lost {
            self.requeue(p);
        }
    }

    /// When the peer counts as gone: the idle timeout after the last packet received, or
    /// for a server session the client never confirmed, the handshake timeout.
    fn idle_deadline(&self) -> Instant {
        if self.confirmed {
            self.last_recv + self.config.idle_timeout
        } else {
            self.created + self.config.handshake_timeout
        }
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        if self.state == State::Established
            && self.confirmed
            && self.recovery.in_flight() == 0
            && !self.ping_pending
        {
            Some(self.last_recv + self.config.keepalive)
        } else {
            None
        }
    }

    /// RFC 6298 §5.1–5.2: the timer runs while ack-eliciting packets are in flight (and,
    /// as TCP's persist timer, while new data waits only for the peer's window, or while
    /// sent bytes wait for a cumulative acknowledgement that nothing in flight will bring).
    fn update_rto_timer(&mut self, now: Instant) {
        let needed = match self.state {
            State::Established | State::Closing => {
                self.recovery.in_flight() > 0
                    || self.send.blocked_by_flow_control(self.peer_max_offset)
                    || self.send.has_unacked_sent()
            }
            _ => false,
        };
        if !needed {
            self.rto_deadline = None;
        } else if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rtt.rto());
        }
    }

    /// When [`Session::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Lingering => self.linger_until,
            State::Connecting => {
                let give_up = self.created + self.config.handshake_timeout;
                Some(self.initial_deadline.map_or(give_up, |t| t.min(give_up)))
            }
            State::Established | State::Closing => [
                Some(self.idle_deadline()),
                self.acks.deadline(),
                self.accept_deadline.filter(|_| !self.confirmed),
                self.loss_time,
                self.rto_deadline,
                self.keepalive_deadline(),
            ]
            .into_iter()
            .flatten()
            .min(),
        }
    }

    /// The next datagram to send, if any. Call until it returns `None` after every
    /// input; each datagram goes to [`Transmit::to`].
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let mut datagram = Vec::new();
        let to = self.poll_transmit_into(now, &mut datagram)?;
        Some(Transmit { to, datagram })
    }

    /// Like [`Session::poll_transmit`], but appends the datagram to `out` and returns
    /// where it goes. A sender that batches (GSO: equal-sized datagrams to one
    /// address, back to back in one buffer) builds its batch in place this way, with
    /// no buffer per datagram and no copy to join them.
    pub fn poll_transmit_into(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<SocketAddr> {
        let start = out.len();
        let to = self.next_transmit(now, out);
        if to.is_some() {
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += (out.len() - start) as u64;
        } else {
            out.truncate(start);
        }
        self.update_rto_timer(now);
        to
    }

    fn next_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<SocketAddr> {
        let t = match self.state {
            State::Closed => return None,
            State::Connecting => self.initial(now),
            _ => self.control_packet(now),
        };
        if let Some(t) = t {
            out.extend_from_slice(&t.datagram);
            return Some(t.to);
        }
        if self.state == State::Connecting {
            return None;
        }
        let session_id = self.session_id?;
        if let Some(to) = self.probe_packet(now, session_id, out) {
            return Some(to);
        }
        self.data_packet(now, session_id, out)
    }

    /// Appends a path MTU probe to `out`, if one is due: a PING padded to the size to
    /// try. Probes go only while lines wait to be sent, which is when larger datagrams
    /// pay, and only within the send window.
    fn probe_packet(
        &mut self,
        now: Instant,
        session_id: u64,
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        let ready = self.state == State::Established
            && self.confirmed
            && self.recovery.in_flight() < self.window.size()
            && self.send.has_sendable(self.peer_max_offset);
        if !ready {
            return None;
        }
        let size = self.mtu.probe_due(now)?;
        let probe = u16::try_from(size).ok()?;
        let pn = self.next_pn;
        let start = out.len();
        wire::begin_data(out, session_id, pn);
        Frame::Ping.encode(out);
        // The rest is PADDING frames (zero bytes).
        out.resize(start + size, 0);
        wire::finish_data(out, start);
        self.recovery.on_sent(
            pn,
            SentPacket {
                time: now,
                stream: StreamRanges::default(),
                ping: false,
                close: false,
                probe,
                large: true,
                in_flight: true,
            },
        );
        self.mtu.on_probe_sent(size);
        self.stats.mtu_probes_sent += 1;
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rtt.rto());
        }
        self.next_pn += 1;
        Some(self.remote)
    }

    /// The largest datagram the session builds now: the base size until path MTU
    /// discovery proves a larger one.
    pub fn max_datagram_size(&self) -> usize {
        self.mtu.current()
    }

    /// The next datagram that is not a Data packet (Accept, PathChallenge,
    /// PathResponse), if one is due: rare, so each has a buffer of its own.
    fn control_packet(&mut self, now: Instant) -> Option<Transmit> {
        let session_id = self.session_id?;
        if std::mem::take(&mut self.accept_pending) {
            if let Some(reset_token) = self.reset_token {
                let p = Packet::Accept {
                    version: VERSION,
                    nonce: self.nonce,
                    session_id,
                    reset_token,
                };
                if !self.confirmed {
                    self.accept_deadline = Some(now + self.rtt.rto().min(MAX_INITIAL_INTERVAL));
                }
                return Some(self.transmit(self.remote, p.to_vec()));
            }
        }
        if std::mem::take(&mut self.challenge_pending) {
            if let Some(t) = self.challenge(now, session_id) {
                return Some(t);
            }
        }
        if let Some(token) = self.responses.pop_front() {
            let p = Packet::PathResponse {
                session_id,
                token: &token,
            };
            return Some(self.transmit(self.remote, p.to_vec()));
        }
        None
    }

    fn transmit(&self, to: SocketAddr, datagram: Vec<u8>) -> Transmit {
        Transmit { to, datagram }
    }

    fn initial(&mut self, now: Instant) -> Option<Transmit> {
        if !std::mem::take(&mut self.initial_due) {
            return None;
        }
        let p = Packet::Initial {
            version: VERSION,
            nonce: self.nonce,
            cookie: &self.cookie,
        };
        let datagram = p.to_vec();
        self.initials_sent += 1;
        self.initial_sent_at = Some(now);
        self.initial_deadline = Some(now + self.rtt.rto().min(MAX_INITIAL_INTERVAL));
        Some(self.transmit(self.remote, datagram))
    }

    fn challenge(&mut self, now: Instant, session_id: u64) -> Option<Transmit> {
        let cookies = self.cookies.as_ref()?;
        let candidate = self.path.as_mut()?;
        let token = cookies.issue(
            now,
            Purpose::Path,
            candidate.addr,
            &session_id.to_be_bytes(),
        );
        let datagram = Packet::PathChallenge {
            session_id,
            token: token.as_bytes(),
        }
        .to_vec();
        if !candidate.budget.can_send(datagram.len()) {
            return None;
        }
        candidate.budget.on_sent(datagram.len());
        candidate.last_challenge = Some(now);
        self.stats.path_challenges_sent += 1;
        Some(Transmit {
            to: candidate.addr,
            datagram,
        })
    }

    /// Appends the next Data packet to `out`, if one is due.
    fn data_packet(
        &mut self,
        now: Instant,
        session_id: u64,
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        let open = matches!(self.state, State::Established | State::Closing);
        if std::mem::take(&mut self.window_update_pending) {
            self.acks.request_immediate(now);
        }
        let ack_due = open && self.acks.deadline().is_some_and(|d| d <= now);
        let window_open = self.recovery.in_flight() < self.window.size();
        let close_ready =
            self.state == State::Closing && self.close_pending && self.send.all_acked();
        let want_eliciting = open
            && self.confirmed
            && window_open
            && (self.ping_pending || close_ready || self.send.has_sendable(self.peer_max_offset));
        if !ack_due && !want_eliciting && !self.close_ack_pending {
            return None;
        }

        // The packet is built in place: header first, its length filled in at the end.
        let pn = self.next_pn;
        let start = out.len();
        let size = self.mtu.current();
        out.reserve(size);
        let buf = out;
        wire::begin_data(buf, session_id, pn);
        let limit = start + size;
        // An ACK rides along only when it says something new: a packet arrived since
        // the last one, or the receive window moved. Repeating the same ACK in every
        // packet of a window cost both ends a frame to build, parse and process per
        // packet; a lost ACK is made good by the retransmission it causes, whose
        // duplicate is acknowledged at once.
        let mut wrote_ack = false;
        let ack_news =
            ack_due || self.acks.has_news() || self.recv.max_offset() != self.last_advertised_max;
        if open && self.acks.has_received() && ack_news {
            let max_offset = self.recv.max_offset();
            let frame = self.acks.frame(now, self.recv.contiguous_end(), max_offset);
            Frame::Ack(frame).encode(buf);
            self.acks.on_ack_sent();
            self.last_advertised_max = max_offset;
            wrote_ack = true;
        }
        let mut wrote_close_ack = false;
        if std::mem::take(&mut self.close_ack_pending) {
            Frame::CloseAck.encode(buf);
            wrote_close_ack = true;
        }
        let mut sent = SentPacket {
            time: now,
            stream: StreamRanges::default(),
            ping: false,
            close: false,
            probe: 0,
            large: false,
            in_flight: true,
        };
        if want_eliciting {
            if std::mem::take(&mut self.ping_pending) {
                Frame::Ping.encode(buf);
                sent.ping = true;
            }
            let retransmit_floor = self.send_floor_hint();
            while let Some(room) = limit.checked_sub(buf.len() + STREAM_FRAME_OVERHEAD) {
                if room == 0 {
                    break;
                }
                let Some(chunk) = self.send.next_chunk(room, self.peer_max_offset) else {
                    break;
                };
                let len = chunk.end - chunk.start;
                if chunk.start < retransmit_floor {
                    self.stats.bytes_retransmitted += len;
                }
                // `room` is below the datagram size, so the length fits a u16.
                wire::encode_stream_head(buf, chunk.start, len as u16);
                self.send.write_range(chunk.clone(), buf);
                sent.stream.push(chunk);
            }
            let close_len = 1 + 1 + 8;
            if self.state == State::Closing
                && self.close_pending
                && self.send.all_acked()
                && buf.len() + close_len <= limit
            {
                Frame::Close {
                    code: 0,
                    final_offset: self.send.end(),
                }
                .encode(buf);
                sent.close = true;
                self.close_pending = false;
                self.close_sent = true;
            }
        }
        let eliciting = sent.ping || sent.close || !sent.stream.is_empty();
        if !eliciting && !wrote_ack && !wrote_close_ack {
            buf.truncate(start);
            return None;
        }
        if eliciting {
            sent.large = buf.len() - start > MAX_DATAGRAM_SIZE;
            self.recovery.on_sent(pn, sent);
            if self.rto_deadline.is_none() {
                self.rto_deadline = Some(now + self.rtt.rto());
            }
        }
        self.next_pn += 1;
        wire::finish_data(buf, start);
        Some(self.remote)
    }

    /// Offsets below this have been sent before, so sending them again is a
    /// retransmission (for the statistics only).
    fn send_floor_hint(&self) -> u64 {
        self.send.next_new()
    }
}

/// The length of a line without its line end: CR LF, LF or CR.
fn line_body_len(line: &[u8]) -> usize {
    match line {
        [.., b'\r', b'\n'] => line.len() - 2,
        [.., b'\n'] | [.., b'\r'] => line.len() - 1,
        _ => line.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_stripped_for_the_length_framing() {
        for line in ["PING :x\r\n", "PING :x\n", "PING :x\r", "PING :x"] {
            assert_eq!(line_body_len(line.as_bytes()), b"PING :x".len());
        }
    }

    #[test]
    fn a_client_starts_with_a_padded_initial_and_retransmits_it_with_backoff() {
        let t0 = Instant::now();
        let server: SocketAddr = "192.0.2.1:6667".parse().unwrap();
        let mut c = Session::connect(t0, server, 42, Config::default());
        let t = c.poll_transmit(t0).unwrap();
        assert_eq!(t.to, server);
        assert_eq!(t.datagram.len(), wire::MIN_INITIAL_SIZE);
        assert!(c.poll_transmit(t0).is_none());
        let first = c.poll_timeout().unwrap();
        assert_eq!(first, t0 + Duration::from_secs(1));
        c.handle_timeout(first);
        assert!(c.poll_transmit(first).is_some());
        assert_eq!(c.poll_timeout().unwrap(), first + Duration::from_secs(2));
    }

    #[test]
    fn a_client_that_is_never_answered_gives_up() {
        let t0 = Instant::now();
        let server: SocketAddr = "192.0.2.1:6667".parse().unwrap();
        let mut c = Session::connect(t0, server, 42, Config::default());
        let mut now = t0;
        while let Some(t) = c.poll_timeout() {
            while c.poll_transmit(now).is_some() {}
            now = t;
            c.handle_timeout(now);
        }
        assert!(c.is_drained());
        assert_eq!(
            c.poll_event(),
            Some(Event::Closed {
                reason: CloseReason::HandshakeTimeout
            })
        );
        assert_eq!(now, t0 + Duration::from_secs(30));
    }
}
