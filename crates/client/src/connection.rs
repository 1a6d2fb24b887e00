//! A connection that carries IRC lines, whatever the transport underneath.

use std::time::Duration;

use bytes::Bytes;
use natter_proto::{FramedLine, LineFramer, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ClientError;
use crate::target::Target;
use crate::udp::UdpTransport;

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// An open connection to a server: send lines, receive parsed messages. The same
/// methods work over every transport; over `udp://` the lines travel in natter's
/// reliable mode (in order, exactly once, surviving loss and a change of address).
pub struct Connection {
    target: Target,
    transport: Transport,
    /// The server's `ERROR` text, kept to explain a close.
    last_error: Option<String>,
}

/// How the lines travel.
enum Transport {
    /// A byte stream (TCP, Unix socket), cut into lines here.
    Stream {
        reader: Reader,
        writer: Writer,
        framer: LineFramer,
    },
    /// A reliable UDP session, which carries lines as such.
    Udp(UdpTransport),
}

impl Connection {
    /// Connects to `target`. Over `udp://` this includes the reliable-mode handshake
    /// (bounded by its 30 s timeout; a port where nothing listens fails at once).
    pub async fn connect(target: &Target) -> Result<Connection, ClientError> {
        Connection::connect_with(target, crate::udp::client_config()).await
    }

    /// Like [`Connection::connect`], with the reliable session's settings for a
    /// `udp://` target (start from [`crate::udp_config`] and change, say, the handshake
    /// timeout); other transports ignore them.
    pub async fn connect_with(
        target: &Target,
        udp: natter_udp::Config,
    ) -> Result<Connection, ClientError> {
        let context = || format!("cannot connect to {target}");
        let (reader, writer): (Reader, Writer) = match target {
            Target::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| ClientError::io(context(), e))?;
                // Chat lines are small and latency matters more than packet count.
                let _ = stream.set_nodelay(true);
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Target::Unix { path } => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| ClientError::io(context(), e))?;
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Target::Udp { host, port } => {
                let udp = UdpTransport::connect(host, *port, udp)
                    .await
                    .map_err(|e| ClientError::io(context(), e))?;
                return Ok(Connection {
                    target: target.clone(),
                    transport: Transport::Udp(udp),
                    last_error: None,
                });
            }
        };
        Ok(Connection {
            target: target.clone(),
            transport: Transport::Stream {
                reader,
                writer,
                framer: LineFramer::new(64 * 1024),
            },
            last_error: None,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends one line; CR LF is added.
    pub async fn send(&mut self, line: &str) -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(line.len() + 2);
        buf.extend_from_slice(line.as_bytes());
        buf.extend_from_slice(b"\r\n");
        self.send_raw(&buf).await
    }

    /// Sends bytes as they are: several lines at once, or deliberately bad input.
    /// Over `udp://`, complete lines are sent and a partial last line waits for the
    /// rest (the reliable mode carries lines, not bytes).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let target = &self.target;
        let sent = match &mut self.transport {
            Transport::Stream { writer, .. } => writer.write_all(bytes).await,
            Transport::Udp(udp) => udp.send_raw(bytes).await,
        };
        sent.map_err(|e| ClientError::io(format!("cannot send to {target}"), e))
    }

    /// Over `udp://`, a handle that sends lines from another task while this one
    /// keeps reading; `None` over other transports (split their streams instead) and
    /// once the connection is closing.
    pub fn line_sender(&self) -> Option<crate::LineSender> {
        match &self.transport {
            Transport::Udp(udp) => udp.line_sender(),
            Transport::Stream { .. } => None,
        }
    }

    /// Over `udp://`, shows every line from now on to `taker` in the session's own
    /// task, where the line lies in the receive buffer: a line it takes (true) is
    /// neither copied nor seen by [`Connection::recv_raw`]; the others are, in order.
    /// For a reader that can deal with most lines on the spot (`natter bench` counts
    /// deliveries this way). False over other transports, where nothing changes.
    pub fn take_lines_with(&self, taker: crate::LineTaker) -> bool {
        match &self.transport {
            Transport::Udp(udp) => {
                udp.take_lines_with(taker);
                true
            }
            Transport::Stream { .. } => false,
        }
    }

    /// The next line from the server, as raw bytes; `None` once the server closed.
    pub async fn recv_raw(&mut self) -> Result<Option<Bytes>, ClientError> {
        let (reader, framer) = match &mut self.transport {
            Transport::Stream { reader, framer, .. } => (reader, framer),
            Transport::Udp(udp) => {
                return udp.recv_line().await.map_err(|e| {
                    ClientError::io(format!("the session with {} ended", self.target), e)
                })
            }
        };
        loop {
            match framer.next_line() {
                Some(FramedLine::Line(line)) => return Ok(Some(line)),
                Some(FramedLine::TooLong) => {
                    return Err(ClientError::Protocol("a line longer than 64 KiB".into()))
                }
                None => {}
            }
            let n = reader
                .read_buf(framer.buffer_mut())
                .await
                .map_err(|e| ClientError::io(format!("cannot read from {}", self.target), e))?;
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// The next line from the server if one has already arrived, without waiting for
    /// the network; `None` when there is none yet (or the connection has ended: then
    /// [`Connection::recv_raw`] says how). After `recv_raw` returned a line, draining
    /// the rest of what arrived with it this way saves a wake-up per line.
    pub fn try_recv_raw(&mut self) -> Result<Option<Bytes>, ClientError> {
        match &mut self.transport {
            Transport::Stream { framer, .. } => match framer.next_line() {
                Some(FramedLine::Line(line)) => Ok(Some(line)),
                Some(FramedLine::TooLong) => {
                    Err(ClientError::Protocol("a line longer than 64 KiB".into()))
                }
                None => Ok(None),
            },
            Transport::Udp(udp) => Ok(udp.try_recv_line()),
        }
    }

    /// The next message from the server. A `PING` is answered on the way; an `ERROR`
    /// is remembered so that the close can be explained.
    pub async fn recv(&mut self) -> Result<Option<Message>, ClientError> {
        let Some(line) = self.recv_raw().await? else {
            return Ok(None);
        };
        let msg = Message::parse(&line).map_err(|e| {
            ClientError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&line)))
        })?;
        if msg.command == "PING" {
            let token = msg.param(0).unwrap_or("").to_owned();
            self.send(&format!("PONG :{token}")).await?;
        }
        if msg.command == "ERROR" {
            self.last_error = msg.param(0).map(str::to_owned);
        }
        Ok(Some(msg))
    }

    /// Like [`Connection::recv`], but a close is an error and so is silence longer
    /// than `within`.
    pub async fn recv_within(
        &mut self,
        within: Duration,
        waiting_for: &str,
    ) -> Result<Message, ClientError> {
        match tokio::time::timeout(within, self.recv()).await {
            Ok(Ok(Some(msg))) => Ok(msg),
            Ok(Ok(None)) => Err(ClientError::Closed {
                reason: self.last_error.clone(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::TimedOut {
                waiting_for: waiting_for.to_owned(),
                after: within,
            }),
        }
    }

    /// Reads messages until one satisfies `wanted`, returning it; messages before it
    /// are dropped. Fails on close or after `within` in all.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        waiting_for: &str,
        mut wanted: impl FnMut(&Message) -> bool,
    ) -> Result<Message, ClientError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.recv_within(left, waiting_for).await?;
            if wanted(&msg) {
                return Ok(msg);
            }
        }
    }

    /// Closes the sending half, so the server sees end of file. Over `udp://` it is an
    /// orderly close of the whole session (the reliable mode has no half-close): what
    /// was sent is delivered first, then Close and CloseAck are exchanged, and this
    /// returns when they were, or after a few seconds. Lines that arrived before the end
    /// can still be read.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        match &mut self.transport {
            Transport::Stream { writer, .. } => writer
                .shutdown()
                .await
                .map_err(|e| ClientError::io("cannot close the connection", e)),
            Transport::Udp(udp) => {
                udp.close().await;
                Ok(())
            }
        }
    }
}
