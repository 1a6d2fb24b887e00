//! One benchmark client's connection: opened, registered and joined, over TCP (any IRC
//! server) or natter's reliable UDP.
//!
//! Over TCP the generator speaks raw bytes (no parsing on the hot path, see
//! [`crate::scan`]), and registers the way every server it is compared with accepts:
//! `NICK` and `USER` in one write, `PING` answered at any time (ircd-hybrid and InspIRCd
//! may send a cookie that must come back before `001`), done at the end of the MOTD
//! (`376`) or its absence (`422`) after `001`. Over UDP it uses natter's client library,
//! which carries the reliable mode.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use natter_client::{Connection, Registration, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::args::Plan;
use crate::scan::{pong_for, Line, Scanner};

/// Longest one client may take to connect and register, or to join.
pub const SETUP_LIMIT: Duration = Duration::from_secs(30);

/// An open, registered connection.
pub enum Link {
    Tcp { stream: TcpStream, scanner: Scanner },
    Udp { conn: Box<Connection> },
}

/// Replies that end a registration in failure, with what they mean.
const REFUSALS: &[&[u8]] = &[b"432", b"433", b"436", b"437", b"463", b"464", b"465"];
/// Replies that end a JOIN in failure.
const JOIN_REFUSALS: &[&[u8]] = &[
    b"403", b"405", b"471", b"473", b"474", b"475", b"476", b"477", b"479", b"489",
];

impl Link {
    /// Connects as client `index` of the run (which picks the source address) and
    /// registers as `nick`, reading with buffers of `read_size` bytes.
    pub async fn open(plan: &Plan, index: usize, nick: &str, read_size: usize) -> Result<Link> {
        let deadline = Instant::now() + SETUP_LIMIT;
        match &plan.target {
            Target::Udp { .. } => {
                let mut conn = tokio::time::timeout_at(
                    deadline,
                    Connection::connect_with(&plan.target, natter_client::UdpConfig::default()),
                )
                .await
                .map_err(|_| anyhow!("no answer from {} within {SETUP_LIMIT:?}", plan.url))??;
                let mut reg = Registration::new(nick);
                reg.timeout = deadline.saturating_duration_since(Instant::now());
                natter_client::register(&mut conn, &reg)
                    .await
                    .with_context(|| format!("{nick} cannot register"))?;
                Ok(Link::Udp {
                    conn: Box::new(conn),
                })
            }
            _ => {
                let stream = tokio::time::timeout_at(
                    deadline,
                    connect_tcp(plan.addr, plan.source_ip(index).map(|ip| (ip, 0).into())),
                )
                .await
                .map_err(|_| anyhow!("no answer from {} within {SETUP_LIMIT:?}", plan.url))?
                .with_context(|| format!("cannot connect to {}", plan.url))?;
                let mut link = Link::Tcp {
                    stream,
                    scanner: Scanner::new(read_size),
                };
                let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :natter bench\r\n");
                link.send(hello.as_bytes()).await?;
                let mut welcomed = false;
                link.wait_tcp(deadline, "the end of the welcome (376 or 422)", |cmd| {
                    if cmd == b"001" {
                        welcomed = true;
                    }
                    if welcomed && (cmd == b"376" || cmd == b"422") {
                        return Some(Ok(()));
                    }
                    REFUSALS.contains(&cmd).then_some(Err(()))
                })
                .await
                .with_context(|| format!("{nick} cannot register"))?;
                Ok(link)
            }
        }
    }

    /// Joins `room`, returning at the end of its NAMES list (`366`).
    pub async fn join(&mut self, room: &str) -> Result<()> {
        let deadline = Instant::now() + SETUP_LIMIT;
        self.send(format!("JOIN {room}\r\n").as_bytes()).await?;
        let what = format!("the end of {room}'s NAMES (366)");
        match self {
            Link::Udp { conn } => {
                let msg = conn
                    .wait_for(SETUP_LIMIT, &what, |m| {
                        m.command == "366"
                            || JOIN_REFUSALS.contains(&m.command.as_bytes())
                            || m.command == "ERROR"
                    })
                    .await?;
                if msg.command != "366" {
                    bail!(
                        "cannot join {room}: {} {}",
                        msg.command,
                        msg.params.to_vec().join(" ")
                    );
                }
                Ok(())
            }
            Link::Tcp { .. } => self
                .wait_tcp(deadline, &what, |cmd| {
                    if cmd == b"366" {
                        return Some(Ok(()));
                    }
                    JOIN_REFUSALS.contains(&cmd).then_some(Err(()))
                })
                .await
                .with_context(|| format!("cannot join {room}")),
        }
    }

    /// Sends bytes (whole lines).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Link::Tcp { stream, .. } => stream.write_all(bytes).await?,
            Link::Udp { conn } => conn.send_raw(bytes).await?,
        }
        Ok(())
    }

    /// Reads (answering PING) until `decide` returns `Some` for a line's command:
    /// `Ok` ends the wait, `Err` fails it quoting the line. Lines after that one stay
    /// in the scanner.
    async fn wait_tcp(
        &mut self,
        deadline: Instant,
        what: &str,
        mut decide: impl FnMut(&[u8]) -> Option<Result<(), ()>>,
    ) -> Result<()> {
        let Link::Tcp { stream, scanner } = self else {
            bail!("not a TCP link");
        };
        let mut pongs = Vec::new();
        loop {
            let mut outcome: Option<Result<(), String>> = None;
            scanner.lines(|line| {
                match line {
                    Line::Ping { params } => pongs.extend_from_slice(&pong_for(params)),
                    Line::Error { text } => {
                        outcome = Some(Err(format!(
                            "the server closed the connection: {}",
                            String::from_utf8_lossy(text)
                        )))
                    }
                    Line::Other { command, params } => {
                        outcome = decide(command).map(|r| {
                            r.map_err(|()| {
                                format!(
                                    "the server refused ({}): {}",
                                    String::from_utf8_lossy(command),
                                    String::from_utf8_lossy(params)
                                )
                            })
                        })
                    }
                    Line::Privmsg { .. } | Line::Pong => {}
                }
                outcome.is_none()
            });
            if !pongs.is_empty() {
                stream.write_all(&pongs).await?;
                pongs.clear();
            }
            match outcome {
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) => bail!("{e}"),
                None => {}
            }
            let read = tokio::time::timeout_at(deadline, stream.read_buf(scanner.read_buffer()))
                .await
                .map_err(|_| anyhow!("no {what} within {SETUP_LIMIT:?}"))?;
            if read? == 0 {
                bail!("the server closed the connection while waiting for {what}");
            }
        }
    }
}

/// A TCP connection with Nagle off (benchmark lines are small and latency counts), from
/// `source` if given.
pub async fn connect_tcp(addr: SocketAddr, source: Option<SocketAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket.bind(source)?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
