//! Listening sockets: binding each listen URL, and the accept loop that admits
//! connections (or turns them away) and starts their tasks.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use natter_hub::{ClientId, ClientInfo, Transport};
use natter_proto::{Endpoint as ListenUrl, Host};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::conn_limit::ConnectionLimiter;
use crate::connection::{self, Context};
use crate::error::StartError;
use crate::udp::BatchSocket;

/// Pending connections the kernel may hold for us: enough for a burst of clients
/// (a benchmark, or everyone reconnecting after a restart).
const BACKLOG: i32 = 1024;

/// After a failed accept (often: out of file descriptors) the loop waits this long,
/// rather than spinning on an error that will not clear by itself at once.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A bound stream socket, ready to accept.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        /// Held only to remove the file when the listener goes.
        _file: SocketFile,
    },
}

/// A Unix socket file this server created: removed when the listener closes, so the
/// next start finds no stale file.
#[derive(Debug)]
pub(crate) struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("could not remove {}: {e}", self.0.display());
            }
        }
    }
}

/// A socket and the URL of the address it is really bound to (with the port the
/// system picked, when port 0 was asked for).
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) url: ListenUrl,
    pub(crate) socket: BoundSocket,
}

/// A bound socket: one that accepts connections, or a UDP socket, served by a task of
/// its own (`crate::udp`).
#[derive(Debug)]
pub(crate) enum BoundSocket {
    Stream(Listener),
    Datagram(BatchSocket),
}

/// Binds every URL. `tolerate_missing_ipv6` is set for the default listeners: a host
/// without IPv6 still starts, with a warning, on IPv4 alone.
pub(crate) async fn bind_all(
    urls: &[ListenUrl],
    tolerate_missing_ipv6: bool,
) -> Result<Vec<Bound>, StartError> {
    let mut bound = Vec::new();
    for url in urls {
        match url {
            ListenUrl::Tcp { host, port } | ListenUrl::Udp { host, port } => {
                let udp = matches!(url, ListenUrl::Udp { .. });
                let url_of = |addr: SocketAddr| {
                    if udp {
                        ListenUrl::udp(addr)
                    } else {
                        ListenUrl::tcp(addr)
                    }
                };
                for addr in resolve(url, host, *port).await? {
                    let result = if udp {
                        BatchSocket::bind(addr).map(|s| (s.local_addr(), BoundSocket::Datagram(s)))
                    } else {
                        bind_tcp(addr).map(|l| {
                            let local = l.local_addr().unwrap_or(addr);
                            (local, BoundSocket::Stream(Listener::Tcp(l)))
                        })
                    };
                    match result {
                        Ok((local, socket)) => bound.push(Bound {
                            url: url_of(local),
                            socket,
                        }),
                        Err(e)
                            if tolerate_missing_ipv6
                                && addr.is_ipv6()
                                && !matches!(
                                    e.kind(),
                                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                                ) =>
                        {
                            tracing::warn!(
                                "not listening on {}: {e} (this host seems to have no IPv6; serving IPv4 only)",
                                url_of(addr)
                            );
                        }
                        Err(source) => {
                            return Err(StartError::Bind {
                                url: url_of(addr),
                                source,
                            })
                        }
                    }
                }
            }
            ListenUrl::Unix { path } => {
                let (listener, file) = bind_unix(path).await?;
                bound.push(Bound {
                    url: url.clone(),
                    socket: BoundSocket::Stream(Listener::Unix {
                        listener,
                        _file: file,
                    }),
                });
            }
            other => return Err(StartError::Unsupported { url: other.clone() }),
        }
    }
    if bound.is_empty() {
        return Err(StartError::NoListener);
    }
    Ok(bound)
}

/// The addresses a URL's host stands for: itself, or what its name resolves to
/// (without repeats).
async fn resolve(url: &ListenUrl, host: &Host, port: u16) -> Result<Vec<SocketAddr>, StartError> {
    match host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Name(name) => {
            let resolved = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|source| StartError::Resolve {
                    url: url.clone(),
                    source,
                })?;
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for addr in resolved {
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            Ok(addrs)
        }
    }
}

/// A TCP listener on `addr`. An IPv6 socket is IPv6-only, so that `[::]` and
/// `0.0.0.0` can share a port and IPv4 peers keep their plain addresses.
/// SO_REUSEADDR lets a restarted server bind while old connections linger in
/// TIME_WAIT (it does not let two servers share a port).
fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A Unix listener at `path`. A socket file left by a server that died is removed
/// first; a live server's socket, or a file that is not a socket, is left alone.
async fn bind_unix(path: &Path) -> Result<(UnixListener, SocketFile), StartError> {
    use std::os::unix::fs::FileTypeExt;

    let url = || ListenUrl::unix(path);
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            let probe = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::UnixStream::connect(path),
            )
            .await;
            match probe {
                Err(_) | Ok(Ok(_)) => {
                    return Err(StartError::UnixSocketInUse {
                        path: path.to_owned(),
                    })
                }
                Ok(Err(_)) => {
                    tracing::info!("removing stale socket file {}", path.display());
                    std::fs::remove_file(path)
                        .map_err(|source| StartError::Bind { url: url(), source })?;
                }
            }
        }
        Ok(_) => {
            return Err(StartError::NotASocket {
                path: path.to_owned(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(StartError::Bind { url: url(), source }),
    }
    let listener =
        UnixListener::bind(path).map_err(|source| StartError::Bind { url: url(), source })?;
    Ok((listener, SocketFile(path.to_owned())))
}

/// What the accept loops share.
#[derive(Debug)]
pub(crate) struct Acceptor {
    pub(crate) context: Arc<Context>,
    pub(crate) limiter: ConnectionLimiter,
    /// Client ids are never reused, so a late event about a closed connection can
    /// never be taken for a new one.
    pub(crate) next_id: AtomicU64,
}

impl Acceptor {
    pub(crate) fn next_id(&self) -> ClientId {
        ClientId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

/// Accepts connections on one listener until shutdown is signalled. Returning drops
/// the listener (and removes a Unix socket file).
pub(crate) async fn accept_loop(
    url: ListenUrl,
    listener: Listener,
    acceptor: Arc<Acceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(stream) => admit(&acceptor, stream),
            Err(e) => {
                tracing::warn!("accepting a connection on {url} failed: {e}");
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
}

/// An accepted connection, whatever its transport.
enum Stream {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> io::Result<Stream> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, peer)| Stream::Tcp(s, peer)),
        Listener::Unix { listener: l, .. } => l.accept().await.map(|(s, _)| Stream::Unix(s)),
    }
}

/// Admits a connection within the limits and starts its task, or turns it away
/// with an `ERROR` line.
fn admit(acceptor: &Arc<Acceptor>, stream: Stream) {
    let ip = match &stream {
        Stream::Tcp(_, peer) => Some(peer.ip().to_canonical()),
        Stream::Unix(_) => None,
    };
    let permit = match acceptor.limiter.try_acquire(ip) {
        Ok(permit) => permit,
        Err(refusal) => {
            let from = ip.map_or_else(|| "a Unix socket peer".to_owned(), |ip| ip.to_string());
            tracing::info!("refusing connection from {from}: {}", refusal.message());
            match stream {
                Stream::Tcp(s, _) => {
                    let (r, w) = s.into_split();
                    tokio::spawn(async move { connection::refuse(r, w, refusal.message()).await });
                }
                Stream::Unix(s) => {
                    let (r, w) = s.into_split();
                    tokio::spawn(async move { connection::refuse(r, w, refusal.message()).await });
                }
            }
            return;
        }
    };
    let id = acceptor.next_id();
    let context = Arc::clone(&acceptor.context);
    match stream {
        Stream::Tcp(s, _) => {
            // The writer coalesces lines itself; Nagle would only add latency.
            let _ = s.set_nodelay(true);
            let info = ClientInfo {
                host: ip.map_or_else(|| "localhost".to_owned(), |ip| ip.to_string()),
                transport: Transport::Tcp,
            };
            tokio::spawn(connection::serve(id, info, s, context, permit));
        }
        Stream::Unix(s) => {
            let info = ClientInfo {
                host: "localhost".to_owned(),
                transport: Transport::Unix,
            };
            tokio::spawn(connection::serve(id, info, s, context, permit));
        }
    }
}
