//! A connection that carries IRC lines, whatever the transport underneath.

use std::time::Duration;

use bytes::Bytes;
use natter_proto::{FramedLine, LineFramer, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ClientError;
use crate::target::Target;

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// An open connection to a server: send lines, receive parsed messages.
pub struct Connection {
    target: Target,
    reader: Reader,
    writer: Writer,
    framer: LineFramer,
    /// The server's `ERROR` text, kept to explain a close.
    last_error: Option<String>,
}

impl Connection {
    /// Connects to `target`.
    pub async fn connect(target: &Target) -> Result<Connection, ClientError> {
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
        };
        Ok(Connection {
            target: target.clone(),
            reader,
            writer,
            framer: LineFramer::new(64 * 1024),
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
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let target = &self.target;
        self.writer
            .write_all(bytes)
            .await
            .map_err(|e| ClientError::io(format!("cannot send to {target}"), e))
    }

    /// The next line from the server, as raw bytes; `None` once the server closed.
    pub async fn recv_raw(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.framer.next_line() {
                Some(FramedLine::Line(line)) => return Ok(Some(line)),
                Some(FramedLine::TooLong) => {
                    return Err(ClientError::Protocol("a line longer than 64 KiB".into()))
                }
                None => {}
            }
            let n = self
                .reader
                .read_buf(self.framer.buffer_mut())
                .await
                .map_err(|e| ClientError::io(format!("cannot read from {}", self.target), e))?;
            if n == 0 {
                return Ok(None);
            }
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

    /// Closes the sending half, so the server sees end of file.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        self.writer
            .shutdown()
            .await
            .map_err(|e| ClientError::io("cannot close the connection", e))
    }
}
