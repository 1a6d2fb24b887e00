//! One client connection: a reader task that frames, parses and paces incoming lines,
//! and a writer task that drains the outgoing queue in as few writes as it can.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natter_hub::{ClientId, ClientInfo};
use natter_proto::{FramedLine, LineFramer, Message, ParseError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::conn_limit::ConnectionPermit;
use crate::event::Event;
use crate::send_queue::{send_queue, Outgoing, StopSignal};
use crate::token_bucket::TokenBucket;
use crate::tracker::{Tracked, Tracker};

/// Bytes taken from the socket per read. Reads land in a buffer shared by the
/// connections of a thread, and only bytes that are not yet a whole line are kept
/// per connection: an idle connection holds no read buffer at all.
const READ_CHUNK: usize = 16 * 1024;

/// A connection's leftover bytes (a partial line) are copied into a right-sized buffer
/// when they hold more room than this, before the connection waits for more.
const KEEP_READ_BYTES: usize = 2048;

thread_local! {
    static READ_SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// The writer copies queued lines into one buffer up to this size, so that a burst of
/// lines costs one system call instead of one per line.
const COALESCE_BYTES: usize = 64 * 1024;

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
    /// Writers still running, which shutdown waits for.
    pub(crate) writers: Tracker,
}

/// Why the reader stopped.
enum ReadEnd {
    /// The peer closed or the read failed: the hub must be told, with this reason.
    Peer(String),
    /// The writer ended or the hub task dropped the client: nothing to tell.
    Stopped,
}

/// Runs a connection to its end: registers it with the hub, reads until the peer
/// leaves or the server closes it, and tells the hub why it ended.
pub(crate) async fn serve<R, W>(
    id: ClientId,
    info: ClientInfo,
    mut reader: R,
    writer: W,
    context: Arc<Context>,
    permit: ConnectionPermit,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (queue, outgoing, stop) = send_queue(context.sendq_bytes);
    let stopped = stop.clone();
    let writer_task = tokio::spawn(write_loop(writer, outgoing, stop, context.writers.track()));
    let host = info.host.clone();
    if context
        .events
        .send(Event::Connected { id, info, queue })
        .await
        .is_err()
    {
        // The hub task is gone (the server is stopping); the queue went with the
        // event, so the writer ends by itself.
        return;
    }
    tracing::debug!(client = id.0, %host, "connected");

    let mut reason = match read_loop(id, &mut reader, &context, &stopped).await {
        ReadEnd::Peer(reason) => Some(reason),
        ReadEnd::Stopped => None,
    };
    let closed_by_server = reason.is_none();
    if let Some(reason) = &reason {
        // The hub forgets the client and drops its queue, which ends the writer.
        let _ = context
            .events
            .send(Event::Disconnected(id, reason.clone()))
            .await;
    }
    match writer_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let why = format!("Write error: {e}");
            if reason.is_none() {
                let _ = context
                    .events
                    .send(Event::Disconnected(id, why.clone()))
                    .await;
            }
            reason.get_or_insert(why);
        }
        Err(e) => {
            tracing::error!(client = id.0, "connection writer failed: {e}");
            if reason.is_none() {
                let _ = context
                    .events
                    .send(Event::Disconnected(id, "Internal error".into()))
                    .await;
            }
        }
    }
    if closed_by_server {
        linger(&mut reader).await;
    }
    tracing::debug!(
        client = id.0,
        reason = reason.as_deref().unwrap_or("closed by server"),
        "disconnected"
    );
    drop(permit);
}

/// Reads lines and hands them to the hub, pausing when the client outruns its flood
/// budget. While paused nothing is read, so the client's own socket buffers fill and
/// it slows down: flood control costs the server no memory.
async fn read_loop<R: AsyncRead + Unpin>(
    id: ClientId,
    reader: &mut R,
    context: &Context,
    stopped: &StopSignal,
) -> ReadEnd {
    let mut framer = LineFramer::default();
    // Nothing is kept until a partial line has to be.
    *framer.buffer_mut() = BytesMut::new();
    let mut bucket = TokenBucket::new(
        context.flood_burst,
        context.flood_rate_per_sec,
        tokio::time::Instant::now().into_std(),
    );
    loop {
        while let Some(framed) = framer.next_line() {
            if let Some(bucket) = bucket.as_mut() {
                while let Some(wait) = bucket.admit(tokio::time::Instant::now().into_std()) {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopped.wait() => return ReadEnd::Stopped,
                    }
                }
            }
            let event = match framed {
                FramedLine::Line(line) => match Message::parse(&line) {
                    Ok(message) => Event::Line(id, message),
                    Err(ParseError::Empty) => continue,
                    Err(error) => Event::BadLine(id, error),
                },
                FramedLine::TooLong => Event::BadLine(id, ParseError::BodyTooLong),
            };
            if context.events.send(event).await.is_err() {
                return ReadEnd::Stopped;
            }
        }
        let read = tokio::select! {
            read = std::future::poll_fn(|cx| poll_read_into(reader, cx, framer.buffer_mut())) => read,
            _ = stopped.wait() => return ReadEnd::Stopped,
        };
        match read {
            Ok(0) => return ReadEnd::Peer("Connection closed".into()),
            Ok(_) => {}
            Err(e) => return ReadEnd::Peer(format!("Read error: {e}")),
        }
    }
}

/// Reads once into the thread's scratch buffer and appends what came to `buf`. While
/// nothing is to be read, `buf` gives up its memory if it holds no partial line, or
/// more room than the partial line needs.
fn poll_read_into<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut TaskContext<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let polled = READ_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => read_scratch(reader, cx, &mut scratch, buf),
        // Not reached (nothing reads from within a read), but never a panic.
        Err(_) => read_scratch(reader, cx, &mut vec![0; READ_CHUNK], buf),
    });
    if polled.is_pending() {
        if buf.is_empty() {
            if buf.capacity() > 0 {
                *buf = BytesMut::new();
            }
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

/// Writes queued lines until the queue is closed (then closes the socket gracefully)
/// or the stop signal is raised (then stops at once). Raises the stop signal when it
/// ends, which stops the reader.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut outgoing: Outgoing,
    stop: StopSignal,
    _running: Tracked,
) -> io::Result<()> {
    let result = tokio::select! {
        biased;
        _ = stop.wait() => Ok(()),
        result = drain(&mut writer, &mut outgoing) => result,
    };
    stop.raise();
    result
}

/// The writer's work, without the stop signal. Takes every queued line at once,
/// writes a lone line as it is and copies a burst into one buffer per write. What it
/// holds while waiting is freed: an idle connection keeps no buffer.
async fn drain<W: AsyncWrite + Unpin>(writer: &mut W, outgoing: &mut Outgoing) -> io::Result<()> {
    let mut batch = VecDeque::new();
    let mut written = 0;
    while outgoing.next_batch(&mut batch, written).await {
        written = 0;
        if batch.len() == 1 {
            if let Some(line) = batch.pop_front() {
                write_bounded(writer, &line).await?;
                written += line.len();
            }
            continue;
        }
        // One buffer per burst, sized to it, freed after it.
        let total: usize = batch.iter().map(Bytes::len).sum();
        let mut buf = Vec::with_capacity(total.min(COALESCE_BYTES));
        while !batch.is_empty() {
            buf.clear();
            while let Some(line) = batch.front() {
                if !buf.is_empty() && buf.len() + line.len() > COALESCE_BYTES {
                    break;
                }
                buf.extend_from_slice(line);
                batch.pop_front();
            }
            write_bounded(writer, &buf).await?;
            written += buf.len();
        }
    }
    match timeout(WRITE_TIMEOUT, writer.shutdown()).await {
        Ok(result) => result,
        Err(_) => Err(timed_out()),
    }
}

async fn write_bounded<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> io::Result<()> {
    match timeout(WRITE_TIMEOUT, writer.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(timed_out()),
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
    use bytes::Bytes;

    #[tokio::test]
    async fn the_writer_coalesces_queued_lines_and_closes_after_the_last() {
        let (queue, outgoing, stop) = send_queue(1 << 20);
        for i in 0..100 {
            queue
                .push(Bytes::from(format!("line {i}\r\n")))
                .expect("within budget");
        }
        drop(queue);
        let (client, server) = tokio::io::duplex(1 << 20);
        let writer = tokio::spawn(write_loop(
            server,
            outgoing,
            stop.clone(),
            Tracker::default().track(),
        ));
        let mut received = String::new();
        let mut client = client;
        timeout(Duration::from_secs(5), client.read_to_string(&mut received))
            .await
            .expect("the writer closes in time")
            .expect("read");
        assert_eq!(received.lines().count(), 100);
        assert!(received.ends_with("line 99\r\n"));
        writer.await.expect("no panic").expect("no error");
        assert!(*stop.borrow(), "the writer raises stop when done");
    }

    #[tokio::test]
    async fn a_killed_writer_stops_without_flushing() {
        let (queue, outgoing, stop) = send_queue(1 << 20);
        // A peer that never reads: the writer blocks on a full pipe.
        let (_client, server) = tokio::io::duplex(16);
        queue
            .push(Bytes::from(vec![b'x'; 1024]))
            .expect("within budget");
        let writer = tokio::spawn(write_loop(
            server,
            outgoing,
            stop,
            Tracker::default().track(),
        ));
        queue.kill();
        timeout(Duration::from_secs(5), writer)
            .await
            .expect("a killed writer ends at once")
            .expect("no panic")
            .expect("no error");
    }
}
