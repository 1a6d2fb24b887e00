//! Starting and stopping a server: the public face of this crate, used by the binary
//! and by tests that run a server in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use natter_hub::{Hub, Now};
use natter_proto::Endpoint as ListenUrl;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{default_listen, ServerConfig};
use crate::conn_limit::ConnectionLimiter;
use crate::connection::Context;
use crate::error::StartError;
use crate::event::Event;
use crate::hub_task::HubTask;
use crate::listener::{accept_loop, bind_all, Acceptor, BoundSocket};
use crate::tracker::Tracker;
use crate::udp::{UdpEndpoint, UdpStats};

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "natter.db";
/// Events that may wait for the hub task. When it falls behind, connection readers
/// wait too, which pushes back on the clients instead of growing a queue. An event
/// holds at most `LINES_PER_EVENT` (32) lines of one client, so at most 65,536 parsed
/// lines wait (about 16 MB of 64-byte messages). 8192 events made no more messages a
/// second of the dm scenario and could hold four times the lines; 1024 made a tenth
/// fewer (connections wait for room more often, each wait a boxed future and a wake).
const EVENT_QUEUE: usize = 2048;

/// How long shutdown waits for writers to deliver the last lines (`ERROR :Server
/// shutting down`) before giving up on slow peers.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the hub is told that time passed (for PINGs and timeouts).
const TICK: Duration = Duration::from_secs(1);

/// Asks a running server to shut down gracefully. Cheap to clone; any clone may ask,
/// and asking twice is harmless.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    requested: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Starts a graceful shutdown: listeners close, every client is sent
    /// `ERROR :Server shutting down`, writers get a bounded time to flush.
    pub fn shutdown(&self) {
        self.requested.send_replace(true);
    }

    /// Whether shutdown was asked for.
    pub fn is_requested(&self) -> bool {
        *self.requested.borrow()
    }
}

/// A running server. It serves from the moment [`Server::bind`] returns.
/// Dropping it starts a shutdown in the background; [`Server::shutdown`] does the
/// same and waits for it to finish.
#[derive(Debug)]
pub struct Server {
    /// To ask the hub task to re-read accounts (SIGHUP).
    reload: mpsc::Sender<Event>,
    _pid_file: Option<PidFile>,
    local_addrs: Vec<ListenUrl>,
    /// Each UDP socket's counters.
    udp_stats: Vec<Arc<Mutex<UdpStats>>>,
    shutdown: ShutdownHandle,
    stopped: Option<JoinHandle<()>>,
}

impl Server {
    /// Validates `config`, creates the data directory, binds every listener and starts
    /// serving. Logs `listening on URL` once per listener, with the address really
    /// bound. Must be called within a tokio runtime.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use natter_server::{Server, ServerConfig};
    /// let config = ServerConfig {
    ///     listen: vec!["tcp://127.0.0.1:0".parse()?],
    ///     data_dir: "/tmp/natter-test".into(),
    ///     ..ServerConfig::default()
    /// };
    /// let server = Server::bind(config).await?;
    /// let addr = server.tcp_addrs()[0]; // connect here
    /// server.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn bind(config: ServerConfig) -> Result<Server, StartError> {
        config.validate()?;
        let hub_config = config.hub_config()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        crate::open_files::make_room_for(config.limits.max_connections);
        let tolerate_missing_ipv6 = config.listen == default_listen();
        let bound = bind_all(&config.listen, tolerate_missing_ipv6).await?;
        let local_addrs: Vec<ListenUrl> = bound.iter().map(|b| b.url.clone()).collect();

        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let db_path = config.data_dir.join(DATABASE_FILE);
        let mut store =
            natter_store::SqliteStore::open(&db_path).map_err(|e| StartError::Store {
                path: db_path.clone(),
                message: e.to_string(),
            })?;
        let accounts =
            natter_store::Store::accounts(&mut store).map_err(|e| StartError::Store {
                path: db_path.clone(),
                message: e.to_string(),
            })?;
        let last_seq =
            natter_store::Store::last_seq(&mut store).map_err(|e| StartError::Store {
                path: db_path.clone(),
                message: e.to_string(),
            })?;
        let mut hub = Hub::new(hub_config, Now::system());
        hub.load_accounts(accounts);
        if let Some(last) = last_seq {
            hub.continue_history(last);
        }
        let retention = (config.history_retention_days > 0)
            .then(|| std::time::Duration::from_secs(config.history_retention_days * 86_400));
        let (store, store_reports) = crate::store_worker::spawn(Box::new(store), retention)
            .map_err(|e| StartError::Store {
                path: db_path.clone(),
                message: format!("cannot start the store thread: {e}"),
            })?;
        let hub_task = tokio::spawn(
            HubTask::new(hub, events.clone(), store, db_path.clone()).run(events_rx, store_reports),
        );
        let pid_file = PidFile::write(&config.data_dir);
        let reload = events.clone();

        let writers = Tracker::default();
        let limits = &config.limits;
        let acceptor = Arc::new(Acceptor {
            context: Arc::new(Context {
                events: events.clone(),
                sendq_bytes: limits.sendq_bytes,
                flood_burst: limits.flood_burst,
                flood_rate_per_sec: limits.flood_rate_per_sec,
                writers: writers.clone(),
            }),
            limiter: ConnectionLimiter::new(limits.max_connections, limits.connections_per_ip),
            next_id: AtomicU64::new(1),
        });

        let (requested, shutdown_rx) = watch::channel(false);
        let mut accept_loops: Vec<JoinHandle<()>> = Vec::new();
        let mut udp_stats = Vec::new();
        // One key for every UDP socket, kept in the data directory (see udp::cookie_key).
        let cookies = natter_udp::Cookies::new(
            crate::udp::cookie_key(&config.data_dir),
            std::time::Instant::now(),
        );
        for b in bound {
            match b.socket {
                BoundSocket::Stream(listener) => accept_loops.push(tokio::spawn(accept_loop(
                    b.url,
                    listener,
                    Arc::clone(&acceptor),
                    shutdown_rx.clone(),
                ))),
                BoundSocket::Datagram(socket) => {
                    let stats = Arc::new(Mutex::new(UdpStats::default()));
                    udp_stats.push(Arc::clone(&stats));
                    let endpoint = UdpEndpoint::new(
                        b.url,
                        socket,
                        cookies.clone(),
                        config.server_name.clone(),
                        Arc::clone(&acceptor),
                        stats,
                    );
                    // Not awaited at shutdown like the accept loops: it must keep
                    // serving until the hub has said goodbye to its sessions. Tracked
                    // with the writers instead, which shutdown waits for.
                    tokio::spawn(endpoint.run(shutdown_rx.clone(), writers.track()));
                }
            }
        }
        drop(acceptor);
        let ticker = tokio::spawn(tick(events.clone(), shutdown_rx.clone()));
        let stopped = tokio::spawn(stop_when_asked(
            shutdown_rx,
            accept_loops,
            ticker,
            events,
            hub_task,
            writers,
        ));
        // Logged once everything is up, so a start that fails later (the store)
        // never claims to be listening.
        for url in &local_addrs {
            tracing::info!("listening on {url}");
        }
        Ok(Server {
            reload,
            _pid_file: pid_file,
            local_addrs,
            udp_stats,
            shutdown: ShutdownHandle {
                requested: Arc::new(requested),
            },
            stopped: Some(stopped),
        })
    }

    /// Every address listened on, as URLs with the real ports: `tcp://127.0.0.1:40123`,
    /// `tcp://[::1]:40124`, `udp://127.0.0.1:40125`, `unix:///tmp/x/natter.sock`.
    pub fn local_addrs(&self) -> &[ListenUrl] {
        &self.local_addrs
    }

    /// The TCP addresses listened on, in the order of `listen`.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs
            .iter()
            .filter(|u| matches!(u, ListenUrl::Tcp { .. }))
            .filter_map(ListenUrl::socket_addr)
            .collect()
    }

    /// The UDP addresses listened on, in the order of `listen`.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs
            .iter()
            .filter(|u| matches!(u, ListenUrl::Udp { .. }))
            .filter_map(ListenUrl::socket_addr)
            .collect()
    }

    /// What the UDP sockets did so far, summed over all of them: sessions, and every
    /// datagram dropped or answered before a peer proved its address. Updated after
    /// each batch of datagrams the server handles.
    pub fn udp_stats(&self) -> UdpStats {
        let mut total = UdpStats::default();
        for stats in &self.udp_stats {
            total.add(&stats.lock().unwrap_or_else(PoisonError::into_inner));
        }
        total
    }

    /// The Unix socket paths listened on.
    pub fn unix_paths(&self) -> Vec<PathBuf> {
        self.local_addrs
            .iter()
            .filter_map(|u| u.unix_path().map(|p| p.to_owned()))
            .collect()
    }

    /// A handle to shut the server down from elsewhere (a signal handler, a test).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Waits until the server has shut down (asked by a [`ShutdownHandle`]).
    pub async fn wait(mut self) {
        if let Some(stopped) = self.stopped.take() {
            if let Err(e) = stopped.await {
                tracing::error!("the shutdown task failed: {e}");
            }
        }
    }

    /// Shuts down gracefully and waits until done.
    pub async fn shutdown(self) {
        self.shutdown.shutdown();
        self.wait().await;
    }

    /// Serves until SIGINT or SIGTERM (or a [`ShutdownHandle`]), then shuts down
    /// gracefully; SIGHUP reloads the accounts. What `natter serve` runs, with
    /// `signals` installed before the server was bound.
    pub async fn run_until_signal(self, mut signals: StopSignals) {
        let mut requested = self.shutdown.requested.subscribe();
        loop {
            tokio::select! {
                _ = signals.terminate.recv() => tracing::info!("received SIGTERM, shutting down"),
                _ = signals.interrupt.recv() => tracing::info!("received SIGINT, shutting down"),
                _ = signals.hangup.recv() => {
                    tracing::info!("received SIGHUP, reloading accounts");
                    let _ = self.reload.send(Event::ReloadAccounts).await;
                    continue;
                }
                _ = requested.wait_for(|stop| *stop) => {}
            }
            break;
        }
        self.shutdown().await;
    }
}

/// SIGTERM, SIGINT and SIGHUP, caught from the moment this is made. Made before the
/// server is bound: a signal that came between the first client being served and
/// the handlers being installed would otherwise kill the process with its default
/// action, and the clients would never be told.
#[derive(Debug)]
pub struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers. Needs a running Tokio runtime with I/O enabled.
    pub fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// Tells the hub that a second passed, until shutdown.
async fn tick(events: mpsc::Sender<Event>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = interval.tick() => {}
        }
        if events.send(Event::Tick).await.is_err() {
            return;
        }
    }
}

/// The shutdown sequence, in order: stop accepting, let the hub tell every client,
/// give the writers a bounded time to deliver that, done.
async fn stop_when_asked(
    mut shutdown: watch::Receiver<bool>,
    accept_loops: Vec<JoinHandle<()>>,
    ticker: JoinHandle<()>,
    events: mpsc::Sender<Event>,
    hub_task: JoinHandle<()>,
    writers: Tracker,
) {
    let _ = shutdown.wait_for(|stop| *stop).await;
    tracing::info!("shutting down: closing listeners and telling clients");
    for accept_loop in accept_loops {
        let _ = accept_loop.await;
    }
    let _ = ticker.await;
    let _ = events.send(Event::Shutdown).await;
    drop(events);
    if let Err(e) = hub_task.await {
        tracing::error!("the hub task failed: {e}");
    }
    if tokio::time::timeout(FLUSH_TIMEOUT, writers.idle())
        .await
        .is_err()
    {
        tracing::warn!(
            "some clients did not take their last lines within {} s; closing anyway",
            FLUSH_TIMEOUT.as_secs()
        );
    }
    tracing::info!("shutdown complete");
}

/// `natter.pid` in the data directory while the server runs: `natter account` reads
/// it to tell a running server (SIGHUP) that accounts changed. Removed on drop.
#[derive(Debug)]
struct PidFile {
    path: std::path::PathBuf,
}

/// The name of the pid file in the data directory.
pub const PID_FILE: &str = "natter.pid";

impl PidFile {
    fn write(data_dir: &std::path::Path) -> Option<PidFile> {
        let path = data_dir.join(PID_FILE);
        match std::fs::write(&path, format!("{}\n", std::process::id())) {
            Ok(()) => Some(PidFile { path }),
            Err(e) => {
                tracing::warn!(
                    "cannot write {}: {e}; `natter account` will not reach this server",
                    path.display()
                );
                None
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
