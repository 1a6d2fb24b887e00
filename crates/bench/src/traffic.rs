//! Message traffic between registered clients: each may send a stream of messages to one
//! target (a room or a nick), pipelined or paced, and each counts what it receives until
//! it has what it expects.
//!
//! Pipelined senders write prebuilt chunks of [`Plan::sample`] lines in one `write`
//! each; the first line of each chunk carries the send time, patched in just before the
//! write. Paced senders stamp every message. Receivers count deliveries with
//! [`crate::scan`] and keep each timestamp's age, put into one HDR histogram at the
//! end; over reliable UDP they count in the session's own task, where the lines
//! arrive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;
use tokio::time::{Instant, MissedTickBehavior};

use crate::link::Link;
use crate::progress::Progress;
use crate::scan::{classify, pong_for, write_stamp, Line, STAMP_LEN};

/// Counters every client adds to, read by the progress line.
#[derive(Debug)]
pub struct Shared {
    /// The generator's clock: timestamps are nanoseconds since this.
    pub epoch: std::time::Instant,
    /// Deliveries so far are its `done`.
    pub progress: Arc<Progress>,
    pub sent: AtomicU64,
}

impl Shared {
    pub fn new(progress: Arc<Progress>) -> Shared {
        Shared {
            epoch: std::time::Instant::now(),
            progress,
            sent: AtomicU64::new(0),
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// What one client sends.
#[derive(Clone, Debug)]
pub struct Sending {
    /// `#room` or a nick.
    pub target: String,
    pub count: usize,
    /// Bytes of text per message.
    pub size: usize,
    /// Pipelined: lines per write, the first stamped. Ignored when paced.
    pub chunk: usize,
    /// Paced: the time between two messages.
    pub every: Option<Duration>,
}

/// A client ready for traffic.
pub struct Client {
    pub link: Link,
    pub sending: Option<Sending>,
    /// Deliveries after which it is done.
    pub expect: u64,
}

/// A client's connection, held until the run is over.
pub enum Kept {
    /// A TCP stream's halves: dropping them closes it.
    Stream(Box<dyn std::any::Any + Send>),
    /// A reliable UDP session, which has to be closed in order: dropped, it would
    /// leave the server retransmitting to a closed port until its idle timeout.
    Udp(Box<natter_client::Connection>),
}

/// Longest a UDP session may take to close in order.
const UDP_CLOSE: Duration = Duration::from_secs(2);

/// Closes a reliable UDP session in order (Close and CloseAck with the server) within
/// [`UDP_CLOSE`]: dropped, it would leave the server retransmitting to a closed port
/// until its idle timeout.
pub async fn close_session(mut conn: natter_client::Connection) {
    let _ = tokio::time::timeout(UDP_CLOSE, conn.shutdown()).await;
}

/// Closes what the clients of a run kept open: UDP sessions in order, all at once.
pub async fn close_all(outcomes: Vec<Outcome>) {
    let mut closing = tokio::task::JoinSet::new();
    for kept in outcomes.into_iter().filter_map(|o| o.keep) {
        if let Kept::Udp(conn) = kept {
            closing.spawn(close_session(*conn));
        }
    }
    while closing.join_next().await.is_some() {}
}

/// What one client saw.
pub struct Outcome {
    pub received: u64,
    pub sent: u64,
    /// When it had all it expected.
    pub done_at: Option<Instant>,
    /// The age in nanoseconds of every timestamped line it received. Kept as a list
    /// and put into one histogram when the run is over: a histogram per client (about
    /// 250 KiB at this range and precision) cost a fan-out's hundred receivers some
    /// 25 MiB of memory to zero, for a few hundred samples each.
    pub latency_ns: Vec<u64>,
    pub error: Option<String>,
    /// The connection, kept open until the whole run is over: closing it early would
    /// send QUITs into the measurement.
    pub keep: Option<Kept>,
}

impl Outcome {
    /// Before a client has sent or received anything.
    fn nothing_yet() -> Outcome {
        Outcome {
            received: 0,
            sent: 0,
            done_at: None,
            latency_ns: Vec::new(),
            error: None,
            keep: None,
        }
    }
}

/// A histogram of nanoseconds from 1 ns to 10 minutes at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// The bytes of `count` messages to `target`, each of `size` bytes of text, the first
/// with room for a timestamp: the buffer and where the timestamp goes.
pub fn build_chunk(target: &str, size: usize, count: usize) -> (Vec<u8>, usize) {
    let head = format!("PRIVMSG {target} :");
    let mut buf = Vec::with_capacity(count * (head.len() + size + 2));
    let stamp_at = head.len();
    for i in 0..count {
        buf.extend_from_slice(head.as_bytes());
        if i == 0 {
            buf.extend_from_slice(&[b'0'; STAMP_LEN]);
            buf.push(b' ');
            buf.resize(buf.len() + size.saturating_sub(STAMP_LEN + 1), b'x');
        } else {
            buf.resize(buf.len() + size, b'x');
        }
        buf.extend_from_slice(b"\r\n");
    }
    (buf, stamp_at)
}

/// Runs one client until it received `expect` and sent all it had to, or `deadline`.
pub async fn run(client: Client, shared: Arc<Shared>, deadline: Instant) -> Outcome {
    let Client {
        link,
        sending,
        expect,
    } = client;
    match link {
        Link::Tcp { stream, scanner } => {
            let (mut rd, wr) = stream.into_split();
            let wr = Arc::new(Mutex::new(wr));
            let writer =
                sending.map(|s| spawn_sender(Sink::Tcp(wr.clone()), s, shared.clone(), deadline));
            let mut scanner = scanner;
            let mut out = Outcome::nothing_yet();
            let mut pongs = Vec::new();
            // Lines that came with the end of registration or the join count too.
            loop {
                let mut n = 0u64;
                scanner.lines(|line| {
                    on_line(line, &shared, &mut n, &mut out, &mut pongs);
                    true
                });
                out.received += n;
                shared.progress.add(n);
                if !pongs.is_empty() {
                    let _ = wr.lock().await.write_all(&pongs).await;
                    pongs.clear();
                }
                if out.received >= expect {
                    out.done_at = Some(Instant::now());
                    break;
                }
                match tokio::time::timeout_at(deadline, rd.read_buf(scanner.read_buffer())).await {
                    Err(_) => break,
                    Ok(Ok(0)) => {
                        out.error
                            .get_or_insert_with(|| "the server closed the connection".into());
                        break;
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        out.error.get_or_insert_with(|| format!("read failed: {e}"));
                        break;
                    }
                }
            }
            join_sender(writer, &mut out).await;
            out.keep = Some(Kept::Stream(Box::new((rd, wr))));
            out
        }
        Link::Udp { conn } => run_udp(*conn, sending, expect, shared, deadline).await,
    }
}

fn on_line(line: Line<'_>, shared: &Shared, n: &mut u64, out: &mut Outcome, pongs: &mut Vec<u8>) {
    match line {
        Line::Privmsg { stamp } => {
            *n += 1;
            if let Some(sent) = stamp {
                let age = shared.now_ns().saturating_sub(sent).max(1);
                out.latency_ns.push(age);
            }
        }
        Line::Ping { params } => pongs.extend_from_slice(&pong_for(params)),
        Line::Error { text } => {
            out.error = Some(format!(
                "the server closed the connection: {}",
                String::from_utf8_lossy(text)
            ))
        }
        Line::Pong | Line::Other { .. } => {}
    }
}

/// Where a sender writes: the write half of a TCP stream (shared with the reader, which
/// answers PINGs), or a second handle into a reliable UDP session.
enum Sink {
    Tcp(Arc<Mutex<OwnedWriteHalf>>),
    Udp(natter_client::LineSender),
}

impl Sink {
    async fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Tcp(wr) => wr.lock().await.write_all(buf).await,
            Sink::Udp(lines) => lines.send_raw(buf).await,
        }
    }
}

/// Sends all of `s` on a task of its own, so that the client's reader keeps reading
/// while the sender waits for room: a client that stops reading while it pipelines makes
/// the server hold its lines back, and over reliable UDP then its input too.
fn spawn_sender(
    mut sink: Sink,
    s: Sending,
    shared: Arc<Shared>,
    deadline: Instant,
) -> tokio::task::JoinHandle<(u64, Option<String>)> {
    tokio::spawn(async move {
        tokio::time::timeout_at(deadline, send_lines(&mut sink, &s, &shared))
            .await
            .unwrap_or_else(|_| (0, Some("sending timed out".into())))
    })
}

/// Waits for the sender, if the client had one, and records what it sent.
async fn join_sender(
    writer: Option<tokio::task::JoinHandle<(u64, Option<String>)>>,
    out: &mut Outcome,
) {
    let Some(writer) = writer else {
        return;
    };
    match writer.await {
        Ok((sent, error)) => {
            out.sent = sent;
            if out.error.is_none() {
                out.error = error;
            }
        }
        Err(e) => out.error = Some(format!("sender failed: {e}")),
    }
}

/// Sends all of `s`; returns how many were sent, and why it stopped early.
async fn send_lines(sink: &mut Sink, s: &Sending, shared: &Shared) -> (u64, Option<String>) {
    let mut sent = 0u64;
    if let Some(every) = s.every {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut buf, at) = build_chunk(&s.target, s.size, 1);
        for _ in 0..s.count {
            tick.tick().await;
            write_stamp(&mut buf[at..at + STAMP_LEN], shared.now_ns());
            if let Err(e) = sink.write(&buf).await {
                return (sent, Some(format!("send failed: {e}")));
            }
            sent += 1;
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
        return (sent, None);
    }
    let chunk = s.chunk.clamp(1, s.count.max(1));
    let (mut full, at) = build_chunk(&s.target, s.size, chunk);
    let rest = s.count % chunk;
    let (mut tail, _) = build_chunk(&s.target, s.size, rest.max(1));
    let mut left = s.count;
    while left > 0 {
        let (buf, n) = if left >= chunk {
            (&mut full, chunk)
        } else {
            (&mut tail, left)
        };
        write_stamp(&mut buf[at..at + STAMP_LEN], shared.now_ns());
        if let Err(e) = sink.write(buf).await {
            return (sent, Some(format!("send failed: {e}")));
        }
        left -= n;
        sent += n as u64;
        shared.sent.fetch_add(n as u64, Ordering::Relaxed);
    }
    (sent, None)
}

/// What a reliable UDP client's session task counts for it: the deliveries it took
/// where they arrived, with their latency samples.
#[derive(Default)]
struct UdpTally {
    received: AtomicU64,
    latency_ns: std::sync::Mutex<Vec<u64>>,
    /// When `received` reached what the client expects, taken right then: the task
    /// told (`done`) wakes a little later.
    done_at: std::sync::Mutex<Option<Instant>>,
    done: tokio::sync::Notify,
}

/// The same over natter's reliable UDP: the sender writes through a second handle into
/// the session while this task reads. Deliveries are counted in the session's own task
/// as they arrive (`Connection::take_lines_with`), where they lie in its receive
/// buffer: copying each line out and handing it to this task cost the generator about
/// as much CPU per delivery as the server spent, so the generator set the UDP figure.
/// What else comes (PING, ERROR) reaches this task as before.
async fn run_udp(
    mut conn: natter_client::Connection,
    sending: Option<Sending>,
    expect: u64,
    shared: Arc<Shared>,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::nothing_yet();
    let tally = Arc::new(UdpTally::default());
    let counting = tally.clone();
    let clock = shared.clone();
    conn.take_lines_with(Box::new(move |line| {
        let Line::Privmsg { stamp } = classify(line) else {
            return false;
        };
        if let Some(sent) = stamp {
            let age = clock.now_ns().saturating_sub(sent).max(1);
            if let Ok(mut samples) = counting.latency_ns.lock() {
                samples.push(age);
            }
        }
        clock.progress.add(1);
        if counting.received.fetch_add(1, Ordering::Relaxed) + 1 == expect {
            if let Ok(mut done_at) = counting.done_at.lock() {
                *done_at = Some(Instant::now());
            }
            counting.done.notify_one();
        }
        true
    }));
    let writer = match sending {
        Some(s) => match conn.line_sender() {
            Some(lines) => Some(spawn_sender(Sink::Udp(lines), s, shared.clone(), deadline)),
            None => {
                out.error = Some("the UDP session closed before sending".into());
                None
            }
        },
        None => None,
    };
    let mut pongs = Vec::new();
    let stop = tokio::time::sleep_until(deadline);
    tokio::pin!(stop);
    while tally.received.load(Ordering::Relaxed) < expect {
        tokio::select! {
            () = tally.done.notified() => {}
            line = conn.recv_raw() => match line {
                Ok(Some(line)) => {
                    // Lines the session task did not take (and any delivery that
                    // arrived before it was told to take them): this one and every one
                    // that arrived with it, for one wake.
                    let mut n = 0;
                    on_line(classify(&line), &shared, &mut n, &mut out, &mut pongs);
                    while let Ok(Some(line)) = conn.try_recv_raw() {
                        on_line(classify(&line), &shared, &mut n, &mut out, &mut pongs);
                    }
                    tally.received.fetch_add(n, Ordering::Relaxed);
                    shared.progress.add(n);
                    if !pongs.is_empty() {
                        let _ = conn.send_raw(&pongs).await;
                        pongs.clear();
                    }
                }
                Ok(None) => {
                    out.error.get_or_insert_with(|| "the server closed the session".into());
                    break;
                }
                Err(e) => {
                    out.error.get_or_insert_with(|| e.to_string());
                    break;
                }
            },
            () = &mut stop => break,
        }
    }
    out.received = tally.received.load(Ordering::Relaxed);
    if out.received >= expect {
        let taken_at = tally.done_at.lock().ok().and_then(|at| *at);
        out.done_at = Some(taken_at.unwrap_or_else(Instant::now));
    }
    if let Ok(mut samples) = tally.latency_ns.lock() {
        out.latency_ns.append(&mut samples);
    }
    join_sender(writer, &mut out).await;
    out.keep = Some(Kept::Udp(Box::new(conn)));
    out
}

/// Runs every client at once; returns their outcomes and when the traffic started.
pub async fn run_all(
    clients: Vec<Client>,
    shared: Arc<Shared>,
    deadline: Instant,
) -> Result<(Vec<Outcome>, Instant)> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        tasks.spawn(run(client, shared.clone(), deadline));
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done?);
    }
    Ok((outcomes, started))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Scanner;

    #[test]
    fn a_chunk_is_whole_lines_of_the_asked_size_with_one_stamp() {
        let (mut buf, at) = build_chunk("#room", 64, 3);
        write_stamp(&mut buf[at..at + STAMP_LEN], 42);
        let mut s = Scanner::new(1024);
        s.extend(&buf);
        let mut stamps = Vec::new();
        s.lines(|l| {
            if let Line::Privmsg { stamp } = l {
                stamps.push(stamp);
            }
            true
        });
        assert_eq!(stamps, vec![Some(42), None, None]);
        let line = buf.split(|&b| b == b'\n').next().expect("a line");
        assert_eq!(line.len(), "PRIVMSG #room :".len() + 64 + 1);
        assert_eq!(buf.len(), 3 * ("PRIVMSG #room :".len() + 64 + 2));
    }
}
