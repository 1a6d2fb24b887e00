//! One client connection, served by one task: it frames, parses and paces incoming
//! lines and hands them to the hub, and drains the outgoing queue to the socket in as
//! few writes as it can. The two halves ([`Inbound`] and [`Outbound`]) are plain
//! state polled side by side rather than a reader task and a writer task: while a
//! connection waits it then holds one small future and nothing else, and memory per
//! idle client is a measured target. What only a busy or misbehaving client needs
//! (a flood-control timer, a write deadline, a wait for room in the hub's queue) is
//! boxed when needed and freed after.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use natter_hub::{ClientId, ClientInfo};
use natter_proto::{FramedLine, LineFramer, Message, ParseError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc::{self, error::TrySendError, OwnedPermit, Permit};
use tokio::time::{timeout, Sleep};

use crate::conn_limit::ConnectionPermit;
use crate::event::Event;
use crate::send_queue::{send_queue, Outgoing, QueueState};
use crate::token_bucket::TokenBucket;
use crate::tracker::{Tracked, Tracker};

/// Bytes taken from the socket per read. A read with nothing kept lands in a buffer
/// shared by the connections of a thread, and only bytes that are not yet a whole
/// line are kept per connection: an idle connection holds no read buffer at all. A
/// read behind a partial line (in a burst, nearly every one) goes straight into that
/// connection's buffer.
const READ_CHUNK: usize = 16 * 1024;

/// A connection's leftover bytes (a partial line) are copied into a right-sized buffer
/// when they hold more room than this, before the connection waits for more.
const KEEP_READ_BYTES: usize = 2048;

thread_local! {
    static READ_SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Queued lines are copied into one buffer up to this size, so that a burst of lines
/// costs one system call instead of one per line.
const COALESCE_BYTES: usize = 64 * 1024;

/// At most this many lines of one client go to the hub as one event: a pipelining
/// client's burst takes one place in the hub's queue and one wake per this many lines.
pub(crate) const LINES_PER_EVENT: usize = 32;

/// A peer that accepts no data for this long is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// After closing, input is read and dropped for at most this long: closing a socket
/// with unread input makes the kernel send a reset, which can destroy the final
/// `ERROR` line before the peer reads it.
const LINGER: Duration = Duration::from_secs(1);

/// What every connection task needs from the server, shared by the accept loops.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) sendq_bytes: usize,
    pub(crate) flood_burst: u32,
    pub(crate) flood_rate_per_sec: f64,
    /// Connections still writing what is queued for them, which shutdown waits for.
    pub(crate) writers: Tracker,
}

/// Runs a connection to its end: registers it with the hub, serves it until the peer
/// leaves or the server closes it, and tells the hub why it ended.
///
/// Not an `async fn`: an async fn's future keeps its arguments apart from what they
/// are moved into, so this sets up the [`Connection`] first and the future holds only
/// that.
pub(crate) fn serve<S>(
    id: ClientId,
    info: ClientInfo,
    stream: S,
    context: Arc<Context>,
    permit: ConnectionPermit,
) -> impl Future<Output = ()> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (queue, outgoing, _stop) = send_queue(context.sendq_bytes);
    tracing::debug!(client = id.0, host = %info.host, "connected");
    let mut conn = Connection::new(id, stream, outgoing, context, permit);
    conn.inbound
        .announce(&conn.context.events, Event::Connected { id, info, queue });
    conn.run()
}

/// Why a connection's main loop ended.
enum End {
    /// The peer closed or a read failed: the hub must be told, with this reason.
    Peer(String),
    /// The writing ended (and with it the connection).
    Written(WriteEnd),
}

/// Why the writing ended.
#[derive(Debug)]
enum WriteEnd {
    /// The hub task closed the queue and everything in it was written: the server
    /// closed the connection.
    Closed,
    /// The hub task raised the stop signal (SendQ exceeded): nothing more is written.
    Stopped,
    /// Writing failed, or the peer accepted no data for [`WRITE_TIMEOUT`].
    Failed(io::Error),
}

/// Why the reading half stopped.
enum ReadEnd {
    /// It read something: it goes on after the writing half has had its turn.
    Read,
    /// The peer closed or the read failed, with the quit reason.
    Peer(String),
    /// The hub task is gone: nothing read could be handled.
    HubGone,
}

/// One connection's state: the socket, and what each half holds between polls.
struct Connection<S> {
    id: ClientId,
    stream: S,
    context: Arc<Context>,
    outgoing: Outgoing,
    inbound: Inbound,
    /// Cleared once reading is over while writing goes on.
    reading: bool,
    outbound: Outbound,
    /// Counts this connection among those shutdown waits for, until its writing ends.
    writing: Option<Tracked>,
    /// The connection's slot under the server's limits, held to the very end.
    _permit: ConnectionPermit,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    fn new(
        id: ClientId,
        stream: S,
        outgoing: Outgoing,
        context: Arc<Context>,
        permit: ConnectionPermit,
    ) -> Self {
        let bucket = TokenBucket::new(
            context.flood_burst,
            context.flood_rate_per_sec,
            tokio::time::Instant::now().into_std(),
        );
        Connection {
            id,
            stream,
            writing: Some(context.writers.track()),
            context,
            outgoing,
            inbound: Inbound::new(bucket),
            reading: true,
            outbound: Outbound::default(),
            _permit: permit,
        }
    }

    /// The connection's life. Not an `async fn`, whose future would hold `self`
    /// twice: as its argument, and as the local it is moved into.
    #[allow(clippy::manual_async_fn)]
    fn run(mut self) -> impl Future<Output = ()> + Send + 'static
    where
        S: Send + 'static,
    {
        async move {
            let end = poll_fn(|cx| self.poll(cx)).await;
            // Boxed: it happens once, at the end, and would otherwise be part of
            // every connection's future all its life.
            Box::pin(self.finish(end)).await;
        }
    }

    /// Tells the hub why the connection ended, if it does not know, writes the last
    /// lines if the peer left first, or lingers if the server closed.
    async fn finish(&mut self, end: End) {
        let id = self.id;
        let reason = match end {
            End::Peer(reason) => {
                // The hub forgets the client and drops its queue: what is queued is
                // still written, then the socket is closed.
                let disconnected = Event::Disconnected(id, reason.clone());
                let _ = self.context.events.send(disconnected).await;
                if let WriteEnd::Failed(e) = poll_fn(|cx| self.poll_write(cx)).await {
                    tracing::debug!(client = id.0, "writing the last lines failed: {e}");
                }
                self.writing = None;
                reason
            }
            End::Written(end) => {
                self.writing = None;
                let reason = match end {
                    WriteEnd::Closed => "closed by server".to_owned(),
                    WriteEnd::Stopped => "stopped by server".to_owned(),
                    WriteEnd::Failed(e) => {
                        let why = format!("Write error: {e}");
                        let disconnected = Event::Disconnected(id, why.clone());
                        let _ = self.context.events.send(disconnected).await;
                        why
                    }
                };
                linger(&mut self.stream).await;
                reason
            }
        };
        tracing::debug!(client = id.0, reason, "disconnected");
    }

    /// Writes what is queued and reads what came, until one of them ends the
    /// connection. The writing half has its turn before every read: a client's
    /// replies need not wait for the lines it sends next, however fast it sends
    /// them. (Both halves spend the task's cooperative budget, so a busy connection
    /// still yields to the others.)
    fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<End> {
        loop {
            if let Poll::Ready(end) = self.poll_write(cx) {
                return Poll::Ready(End::Written(end));
            }
            if !self.reading {
                return Poll::Pending;
            }
            match ready!(self
                .inbound
                .poll(cx, self.id, &mut self.stream, &self.context.events))
            {
                ReadEnd::Read => {}
                ReadEnd::Peer(reason) => return Poll::Ready(End::Peer(reason)),
                // What is queued is still written; the end of the queue follows.
                ReadEnd::HubGone => self.reading = false,
            }
        }
    }

    fn poll_write(&mut self, cx: &mut TaskContext<'_>) -> Poll<WriteEnd> {
        self.outbound.poll(cx, &mut self.outgoing, &mut self.stream)
    }
}

/// The reading half: lines not yet handed to the hub, and what holds them back.
struct Inbound {
    framer: LineFramer,
    /// Flood control, when it is on.
    bucket: Option<TokenBucket>,
    /// The next line's flood-control token is taken: it waits only for room in the
    /// hub's queue.
    admitted: bool,
    /// What reading waits for, one thing at a time: the hub taking the connection,
    /// the client's flood budget, or room in the hub's queue. While it waits nothing
    /// is read, so a client that floods fills its own socket buffers and slows down:
    /// flood control costs the server no memory. Boxed: an idle connection waits for
    /// none of these.
    wait: Option<Pin<Box<Wait>>>,
}

/// A wait of the reading half; see [`Inbound::wait`].
type Wait = dyn Future<Output = Waited> + Send;

/// How a wait of the reading half ended.
enum Waited {
    /// Reading may go on.
    Done,
    /// There is room in the hub's queue for the next line.
    Room(OwnedPermit<Event>),
    /// The hub task is gone.
    HubGone,
}

/// Room for one event in the hub's queue.
enum Room<'a> {
    Free(Permit<'a, Event>),
    Waited(OwnedPermit<Event>),
}

impl Room<'_> {
    fn send(self, event: Event) {
        match self {
            Room::Free(permit) => permit.send(event),
            Room::Waited(permit) => {
                permit.send(event);
            }
        }
    }
}

impl Inbound {
    fn new(bucket: Option<TokenBucket>) -> Inbound {
        let mut framer = LineFramer::default();
        // Nothing is kept until a partial line has to be.
        *framer.buffer_mut() = BytesMut::new();
        Inbound {
            framer,
            bucket,
            admitted: false,
            wait: None,
        }
    }

    /// Sends the event that announces the connection to the hub, first thing: if the
    /// hub's queue is full, reading waits until it is sent.
    fn announce(&mut self, events: &mpsc::Sender<Event>, event: Event) {
        match events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                let events = events.clone();
                self.wait = Some(Box::pin(async move {
                    match events.send(event).await {
                        Ok(()) => Waited::Done,
                        Err(_) => Waited::HubGone,
                    }
                }));
            }
            Err(TrySendError::Closed(_)) => {
                self.wait = Some(Box::pin(std::future::ready(Waited::HubGone)));
            }
        }
    }

    /// Hands every whole line to the hub, within the client's flood budget and as
    /// the hub's queue has room, then reads once.
    fn poll<R: AsyncRead + Unpin>(
        &mut self,
        cx: &mut TaskContext<'_>,
        id: ClientId,
        reader: &mut R,
        events: &mpsc::Sender<Event>,
    ) -> Poll<ReadEnd> {
        'read: loop {
            if let Some(wait) = &mut self.wait {
                let waited = ready!(wait.as_mut().poll(cx));
                self.wait = None;
                match waited {
                    Waited::Done => {}
                    Waited::Room(permit) => self.forward(id, Room::Waited(permit)),
                    Waited::HubGone => return Poll::Ready(ReadEnd::HubGone),
                }
            }
            // A line is taken out of the framer only once it may go: until then it
            // waits there, where it costs nothing more.
            while self.framer.has_line() {
                if !self.admitted {
                    if let Some(bucket) = &mut self.bucket {
                        if let Some(wait) = bucket.admit(tokio::time::Instant::now().into_std()) {
                            self.wait = Some(Box::pin(async move {
                                tokio::time::sleep(wait).await;
                                Waited::Done
                            }));
                            continue 'read;
                        }
                    }
                    self.admitted = true;
                }
                // One unit of the task's cooperative budget per event (a line, or up
                // to `LINES_PER_EVENT` read together), as a waiting send would spend:
                // a client that sends fast then yields to the hub task and everyone
                // else every so many events. A unit per line of a batch made the
                // connection tasks yield four times as often and gave back most of
                // what batching saved (alternated dm runs).
                let progress = ready!(tokio::task::coop::poll_proceed(cx));
                match events.try_reserve() {
                    Ok(permit) => {
                        progress.made_progress();
                        self.forward(id, Room::Free(permit));
                    }
                    Err(TrySendError::Full(())) => {
                        let events = events.clone();
                        self.wait = Some(Box::pin(async move {
                            match events.reserve_owned().await {
                                Ok(permit) => Waited::Room(permit),
                                Err(_) => Waited::HubGone,
                            }
                        }));
                        continue 'read;
                    }
                    Err(TrySendError::Closed(())) => return Poll::Ready(ReadEnd::HubGone),
                }
            }
            return match ready!(poll_read_into(reader, cx, self.framer.buffer_mut())) {
                Ok(0) => Poll::Ready(ReadEnd::Peer("Connection closed".into())),
                Ok(_) => Poll::Ready(ReadEnd::Read),
                Err(e) => Poll::Ready(ReadEnd::Peer(format!("Read error: {e}"))),
            };
        }
    }

    /// Takes the next line, admitted by flood control, and sends it into `room`, with
    /// the lines after it that are already read and admitted, up to
    /// [`LINES_PER_EVENT`].
    fn forward(&mut self, id: ClientId, room: Room<'_>) {
        self.admitted = false;
        let Some(first) = self.next_parsed() else {
            // Nothing but empty lines: the room goes back.
            return;
        };
        if !self.another_admitted() {
            room.send(match first {
                Ok(message) => Event::Line(id, message),
                Err(error) => Event::BadLine(id, error),
            });
            return;
        }
        let mut lines = Vec::with_capacity(LINES_PER_EVENT);
        lines.push(first);
        // A flood-control token is held for the next line at the top of each turn.
        while let Some(line) = self.next_parsed() {
            lines.push(line);
            if lines.len() == LINES_PER_EVENT || !self.another_admitted() {
                break;
            }
        }
        room.send(Event::Lines(id, lines));
    }

    /// The next line, parsed where it lies in the read buffer; empty lines are
    /// skipped.
    fn next_parsed(&mut self) -> Option<Result<Message, ParseError>> {
        loop {
            return match self.framer.next_line_with(Message::parse)? {
                FramedLine::Line(Err(ParseError::Empty)) => continue,
                FramedLine::Line(parsed) => Some(parsed),
                FramedLine::TooLong => Some(Err(ParseError::BodyTooLong)),
            };
        }
    }

    /// Whether another line is already read and may go with the ones before it:
    /// then its flood-control token is taken.
    fn another_admitted(&mut self) -> bool {
        self.framer.has_line() && self.admit_another()
    }

    /// Takes a flood-control token for one more line now, if one is left (always,
    /// with flood control off). Without one, the line waits for the next turn, where
    /// the bucket says how long.
    fn admit_another(&mut self) -> bool {
        match &mut self.bucket {
            None => true,
            Some(bucket) => bucket
                .admit(tokio::time::Instant::now().into_std())
                .is_none(),
        }
    }
}

/// Reads once and appends what came to `buf`: through the thread's scratch buffer when
/// `buf` is empty, straight in behind the partial line it holds otherwise. While
/// nothing is to be read, `buf` gives up its memory if it holds no partial line, or
/// more room than the partial line needs.
fn poll_read_into<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut TaskContext<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let polled = if buf.is_empty() {
        READ_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => read_scratch(reader, cx, &mut scratch, buf),
            // Not reached (nothing reads from within a read), but never a panic.
            Err(_) => read_scratch(reader, cx, &mut vec![0; READ_CHUNK], buf),
        })
    } else {
        // Nearly every read of a burst ends inside a line, and the rest follows at
        // once: read it in place rather than copy every byte from the scratch buffer.
        // (`reserve` moves the partial line back to the front of its allocation when
        // that leaves room, so a burst reuses one allocation.)
        buf.reserve(READ_CHUNK);
        std::pin::pin!(reader.read_buf(buf)).poll(cx)
    };
    if polled.is_pending() {
        if buf.is_empty() {
            // Even with no room left, an empty buffer that lines were cut from still
            // holds the allocation they share (and its reference count): let it go.
            *buf = BytesMut::new();
        } else if buf.capacity() > buf.len().max(KEEP_READ_BYTES) {
            *buf = BytesMut::from(&buf[..]);
        }
    }
    polled
}

fn read_scratch<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut TaskContext<'_>,
    scratch: &mut [u8],
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let mut read = ReadBuf::new(scratch);
    match Pin::new(reader).poll_read(cx, &mut read) {
        Poll::Ready(Ok(())) => {
            buf.extend_from_slice(read.filled());
            Poll::Ready(Ok(read.filled().len()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// The writing half: lines taken from the queue and not yet written. Holds no memory
/// while the queue is empty.
#[derive(Debug, Default)]
struct Outbound {
    /// Taken from the queue all at once; the first may be partly written.
    batch: VecDeque<Bytes>,
    /// The first line of `batch` is partly written: it is not merged with the next.
    front_started: bool,
    /// Bytes written that the queue has not yet counted against the budget.
    written: usize,
    /// Something was written since `deadline` was last set.
    progressed: bool,
    /// Set when the socket first refuses data, and dropped when the queue is empty:
    /// fires when the peer has accepted nothing for [`WRITE_TIMEOUT`].
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Outbound {
    /// Writes what is queued until the queue is empty (Pending), or until the writing
    /// ends: the queue was closed and everything written (the socket is then closed
    /// gracefully), the stop signal was raised, or writing failed.
    fn poll<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut TaskContext<'_>,
        outgoing: &mut Outgoing,
        writer: &mut W,
    ) -> Poll<WriteEnd> {
        loop {
            // Also registers this task for the next line and for the stop signal, so
            // it is done on every poll, even while the socket is full.
            let queue = outgoing.look(
                cx.waker(),
                &mut self.batch,
                std::mem::take(&mut self.written),
            );
            if queue == QueueState::Stopped {
                return Poll::Ready(WriteEnd::Stopped);
            }
            if self.batch.is_empty() {
                if queue == QueueState::Ended {
                    return match Pin::new(&mut *writer).poll_shutdown(cx) {
                        Poll::Ready(Ok(())) => Poll::Ready(WriteEnd::Closed),
                        Poll::Ready(Err(e)) => Poll::Ready(WriteEnd::Failed(e)),
                        Poll::Pending => self.poll_deadline(cx).map(WriteEnd::Failed),
                    };
                }
                if self.batch.capacity() > 0 {
                    self.batch = VecDeque::new();
                }
                self.deadline = None;
                return Poll::Pending;
            }
            if let Err(e) = ready!(self.poll_write_batch(cx, writer)) {
                return Poll::Ready(WriteEnd::Failed(e));
            }
        }
    }

    /// Writes `batch` until it is empty or the socket is full.
    fn poll_write_batch<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut TaskContext<'_>,
        writer: &mut W,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.front_started {
                self.coalesce();
            }
            let Some(front) = self.batch.front_mut() else {
                return Poll::Ready(Ok(()));
            };
            match Pin::new(&mut *writer).poll_write(cx, front) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.progressed = true;
                    if n < front.len() {
                        front.advance(n);
                        self.front_started = true;
                    } else {
                        self.batch.pop_front();
                        self.front_started = false;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.poll_deadline(cx).map(Err),
            }
        }
    }

    /// Merges the first lines of `batch` into one buffer of at most
    /// [`COALESCE_BYTES`], so that a burst costs one write rather than one per line.
    fn coalesce(&mut self) {
        let mut len = 0;
        let mut count = 0;
        for line in &self.batch {
            if count > 0 && len + line.len() > COALESCE_BYTES {
                break;
            }
            len += line.len();
            count += 1;
        }
        if count < 2 {
            return;
        }
        let mut buf = Vec::with_capacity(len);
        for line in self.batch.drain(..count) {
            buf.extend_from_slice(&line);
        }
        self.batch.push_front(Bytes::from(buf));
    }

    /// Called while the socket accepts no data: Ready with an error once it has
    /// accepted none for [`WRITE_TIMEOUT`].
    fn poll_deadline(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Error> {
        let deadline = match &mut self.deadline {
            Some(deadline) => deadline,
            None => {
                self.progressed = false;
                self.deadline
                    .insert(Box::pin(tokio::time::sleep(WRITE_TIMEOUT)))
            }
        };
        loop {
            ready!(deadline.as_mut().poll(cx));
            // Checked only when the timer fires, rather than reset on every write.
            if !std::mem::take(&mut self.progressed) {
                return Poll::Ready(timed_out());
            }
            deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + WRITE_TIMEOUT);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "peer accepted no data for {} seconds",
            WRITE_TIMEOUT.as_secs()
        ),
    )
}

/// Reads and drops input until the peer closes, for at most [`LINGER`].
pub(crate) async fn linger<R: AsyncRead + Unpin>(reader: &mut R) {
    let mut scratch = vec![0u8; 1024];
    let _ = timeout(LINGER, async {
        while let Ok(n) = reader.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Turns away a connection that is over a limit: sends `ERROR :<message>` and closes.
pub(crate) async fn refuse<R, W>(mut reader: R, mut writer: W, message: &str)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let line = format!("ERROR :{message}\r\n");
    let sent = timeout(Duration::from_secs(5), async {
        writer.write_all(line.as_bytes()).await?;
        writer.shutdown().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        linger(&mut reader).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send_queue::StopSignal;

    /// Writes `outgoing` to `socket` as a connection does, until the writing ends.
    async fn write_all_queued<W: AsyncWrite + Unpin>(
        mut socket: W,
        mut outgoing: Outgoing,
    ) -> WriteEnd {
        let mut outbound = Outbound::default();
        poll_fn(|cx| outbound.poll(cx, &mut outgoing, &mut socket)).await
    }

    #[tokio::test]
    async fn a_read_behind_a_partial_line_completes_it_and_idle_gives_the_room_back() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let mut buf = BytesMut::new();
        client.write_all(b"PRIVMSG bob :hel").await.expect("write");
        let read = poll_fn(|cx| poll_read_into(&mut server, cx, &mut buf)).await;
        assert_eq!(read.expect("read"), 16);
        // The rest arrives behind the partial line, in the same buffer.
        client
            .write_all(b"lo\r\nPING x\r\nPRIV")
            .await
            .expect("write");
        let read = poll_fn(|cx| poll_read_into(&mut server, cx, &mut buf)).await;
        assert_eq!(read.expect("read"), 16);
        assert_eq!(&buf[..], b"PRIVMSG bob :hello\r\nPING x\r\nPRIV");
        // Nothing more to read: only what the bytes kept need is held while waiting.
        let waiting = poll_fn(|cx| Poll::Ready(poll_read_into(&mut server, cx, &mut buf))).await;
        assert!(waiting.is_pending());
        assert_eq!(&buf[..], b"PRIVMSG bob :hello\r\nPING x\r\nPRIV");
        assert!(buf.capacity() <= KEEP_READ_BYTES, "{}", buf.capacity());
    }

    #[tokio::test]
    async fn the_writer_coalesces_queued_lines_and_closes_after_the_last() {
        let (queue, outgoing, _stop) = send_queue(1 << 20);
        for i in 0..100 {
            queue
                .push(Bytes::from(format!("line {i}\r\n")))
                .expect("within budget");
        }
        drop(queue);
        let (client, server) = tokio::io::duplex(1 << 20);
        let writer = tokio::spawn(write_all_queued(server, outgoing));
        let mut received = String::new();
        let mut client = client;
        timeout(Duration::from_secs(5), client.read_to_string(&mut received))
            .await
            .expect("the writer closes in time")
            .expect("read");
        assert_eq!(received.lines().count(), 100);
        assert!(received.ends_with("line 99\r\n"));
        let end = writer.await.expect("no panic");
        assert!(matches!(end, WriteEnd::Closed), "{end:?}");
    }

    #[tokio::test]
    async fn a_killed_writer_stops_without_flushing() {
        let (queue, outgoing, stop): (_, _, StopSignal) = send_queue(1 << 20);
        // A peer that never reads: the writer blocks on a full pipe.
        let (_client, server) = tokio::io::duplex(16);
        queue
            .push(Bytes::from(vec![b'x'; 1024]))
            .expect("within budget");
        let writer = tokio::spawn(write_all_queued(server, outgoing));
        tokio::task::yield_now().await;
        queue.kill();
        assert!(*stop.borrow());
        let end = timeout(Duration::from_secs(5), writer)
            .await
            .expect("a killed writer ends at once")
            .expect("no panic");
        assert!(matches!(end, WriteEnd::Stopped), "{end:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_accepts_nothing_times_out_and_one_that_reads_slowly_does_not() {
        let (queue, outgoing, _stop) = send_queue(1 << 20);
        let (mut client, server) = tokio::io::duplex(16);
        queue
            .push(Bytes::from(vec![b'x'; 4096]))
            .expect("within budget");
        let writer = tokio::spawn(write_all_queued(server, outgoing));
        // Sixteen bytes read every 50 seconds: slow, but never silent for a minute.
        let mut chunk = [0u8; 16];
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            client.read_exact(&mut chunk).await.expect("read");
            assert!(!writer.is_finished());
        }
        tokio::time::sleep(WRITE_TIMEOUT * 2).await;
        let end = writer.await.expect("no panic");
        assert!(
            matches!(&end, WriteEnd::Failed(e) if e.kind() == io::ErrorKind::TimedOut),
            "{end:?}"
        );
        drop(queue);
    }

    /// A connection served as client 1 on one end of an in-memory pipe, flood control
    /// off, its events going into a hub queue with room for `hub_room`: the pipe's
    /// other end, the hub's receiver, the context and the serving task.
    fn served_connection(
        hub_room: usize,
    ) -> (
        tokio::io::DuplexStream,
        mpsc::Receiver<Event>,
        Arc<Context>,
        tokio::task::JoinHandle<()>,
    ) {
        let (events, hub) = mpsc::channel(hub_room);
        let context = Arc::new(Context {
            events,
            sendq_bytes: 1 << 20,
            flood_burst: 0,
            flood_rate_per_sec: 0.0,
            writers: Tracker::default(),
        });
        let permit = crate::conn_limit::ConnectionLimiter::new(0, 0)
            .try_acquire(None)
            .expect("no limit");
        let (client, server) = tokio::io::duplex(1 << 16);
        let info = ClientInfo {
            host: "localhost".into(),
            transport: natter_hub::Transport::Unix,
        };
        let served = tokio::spawn(serve(
            ClientId(1),
            info,
            server,
            Arc::clone(&context),
            permit,
        ));
        (client, hub, context, served)
    }

    #[tokio::test]
    async fn lines_reach_the_hub_in_order_and_replies_reach_the_peer() {
        let (mut client, mut hub, context, served) = served_connection(1);
        // A hub queue of one: every line after the first waits for room.
        client
            .write_all(b"PING a\r\nPING b\nPING c\r\n")
            .await
            .expect("write");
        let Some(Event::Connected { queue, .. }) = hub.recv().await else {
            panic!("Connected first");
        };
        // One event per line or several lines in one: in order either way.
        let mut got = Vec::new();
        while got.len() < 3 {
            match hub.recv().await {
                Some(Event::Line(ClientId(1), message)) => got.push(message),
                Some(Event::Lines(ClientId(1), lines)) => {
                    got.extend(lines.into_iter().map(|l| l.expect("parsed")));
                }
                other => panic!("expected lines, got {other:?}"),
            }
        }
        let params: Vec<_> = got.iter().map(|m| m.param(0)).collect();
        assert_eq!(params, [Some("a"), Some("b"), Some("c")]);
        queue.push(Bytes::from_static(b"PONG\r\n")).expect("fits");
        let mut reply = [0u8; 6];
        client.read_exact(&mut reply).await.expect("read");
        assert_eq!(&reply, b"PONG\r\n");
        drop(client);
        match hub.recv().await {
            Some(Event::Disconnected(ClientId(1), reason)) => {
                assert_eq!(reason, "Connection closed");
            }
            other => panic!("expected the end, got {other:?}"),
        }
        drop(queue);
        timeout(Duration::from_secs(5), served)
            .await
            .expect("the connection ends once its queue is dropped")
            .expect("no panic");
        timeout(Duration::from_secs(5), context.writers.idle())
            .await
            .expect("no writer left");
    }

    #[tokio::test]
    async fn a_burst_reaches_the_hub_in_batches_in_order_with_its_bad_lines_in_place() {
        let (mut client, mut hub, _context, served) = served_connection(16);
        // 70 lines in one write, the 40th with no command: more than one event holds.
        let mut burst = Vec::new();
        for i in 0..70 {
            if i == 40 {
                burst.extend_from_slice(b":source-only\r\n\r\n");
            } else {
                burst.extend_from_slice(format!("PING {i}\r\n").as_bytes());
            }
        }
        client.write_all(&burst).await.expect("write");
        let Some(Event::Connected { queue, .. }) = hub.recv().await else {
            panic!("Connected first");
        };
        let mut got: Vec<Result<String, ParseError>> = Vec::new();
        let mut events = 0;
        while got.len() < 70 {
            let event = hub.recv().await;
            events += 1;
            match event {
                Some(Event::Line(ClientId(1), m)) => got.push(Ok(m.param(0).unwrap_or("").into())),
                Some(Event::BadLine(ClientId(1), e)) => got.push(Err(e)),
                Some(Event::Lines(ClientId(1), lines)) => {
                    assert!(lines.len() <= LINES_PER_EVENT);
                    got.extend(
                        lines
                            .into_iter()
                            .map(|l| l.map(|m| m.param(0).unwrap_or("").to_string())),
                    );
                }
                other => panic!("expected lines, got {other:?}"),
            }
        }
        let expected: Vec<Result<String, ParseError>> = (0..70)
            .map(|i| {
                if i == 40 {
                    Err(ParseError::NoCommand)
                } else {
                    Ok(i.to_string())
                }
            })
            .collect();
        assert_eq!(got, expected, "in order, the empty line skipped");
        assert!(
            events <= 35,
            "lines read together share events ({events} events)"
        );
        drop(client);
        drop(queue);
        timeout(Duration::from_secs(5), served)
            .await
            .expect("the connection ends")
            .expect("no panic");
    }
}
