//! The scenarios: each sets its clients up, runs, and reports. Every one stops at the
//! plan's deadline whatever the server does.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::args::{Plan, Scenario};
use crate::link::Link;
use crate::progress::Progress;
use crate::report::{Errors, Latency, Report};
use crate::scan::{classify, pong_for, Line};
use crate::sys;
use crate::traffic::{self, new_histogram, Client, Sending, Shared};

/// Bytes read at once by a client of a traffic scenario.
const TRAFFIC_READ: usize = 64 * 1024;
/// The same for an idle client, of which there are thousands.
const IDLE_READ: usize = 2048;

/// Runs the plan's scenario.
pub async fn run(plan: &Plan, progress: Arc<Progress>) -> Result<Report> {
    match plan.scenario {
        Scenario::Fanout | Scenario::FanoutPaced => traffic_run(plan, progress, true).await,
        Scenario::Dm | Scenario::DmPaced => traffic_run(plan, progress, false).await,
        Scenario::Idle => idle(plan, progress).await,
        Scenario::Connect => connect(plan, progress).await,
    }
}

/// Two letters that differ from run to run, so that nicks and rooms of a run that did
/// not end cleanly do not collide with the next run's.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
    let a = (b'a' + (nanos % 26) as u8) as char;
    let b = (b'a' + ((nanos / 26) % 26) as u8) as char;
    format!("{a}{b}")
}

fn empty_report(plan: &Plan) -> Report {
    Report {
        label: plan.label.clone(),
        scenario: plan.scenario.name(),
        parameters: plan.parameters(),
        complete: false,
        elapsed_s: 0.0,
        figures: Vec::new(),
        latency_of: "delivery",
        latency: None,
        errors: Vec::new(),
        load_average: sys::load_average(),
    }
}

/// Opens `n` clients, at most `plan.setup_parallel` at a time, each registered as
/// `nick(i)` and joined to `room`. Every one must succeed.
async fn open_all(
    plan: &Plan,
    n: usize,
    nick: impl Fn(usize) -> String,
    room: Option<&str>,
    progress: &Arc<Progress>,
    deadline: Instant,
) -> Result<Vec<Link>> {
    progress.phase("connecting", n as u64);
    let gate = Arc::new(Semaphore::new(plan.setup_parallel));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (gate, plan, nick, room, progress) = (
            gate.clone(),
            plan.clone(),
            nick(i),
            room.map(str::to_owned),
            progress.clone(),
        );
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut link = Link::open(&plan, i, &nick, TRAFFIC_READ).await?;
            if let Some(room) = room {
                link.join(&room).await?;
            }
            progress.add(1);
            anyhow::Ok((i, link))
        });
    }
    let mut links: Vec<Option<Link>> = (0..n).map(|_| None).collect();
    loop {
        let next = tokio::time::timeout_at(deadline, tasks.join_next()).await;
        match next {
            Err(_) => bail!("setting up {n} clients took longer than the timeout"),
            Ok(None) => break,
            Ok(Some(done)) => {
                let (i, link) = done??;
                links[i] = Some(link);
            }
        }
    }
    Ok(links.into_iter().flatten().collect())
}

/// fanout and dm, pipelined or paced.
async fn traffic_run(plan: &Plan, progress: Arc<Progress>, room: bool) -> Result<Report> {
    let mut report = empty_report(plan);
    let deadline = Instant::now() + plan.timeout;
    let tag = run_tag();
    let m = plan.messages;
    let every = plan
        .scenario
        .is_paced()
        .then(|| Duration::from_secs_f64(1.0 / plan.rate));
    let chunk = if every.is_some() { 1 } else { plan.sample };
    let sending = |target: String| Sending {
        target,
        count: m,
        size: plan.size,
        chunk,
        every,
    };
    let setup_started = Instant::now();
    let (clients, total) = if room {
        let room = format!("#bench{tag}");
        let (c, s) = (plan.members, plan.senders);
        let links = open_all(
            plan,
            c,
            |i| format!("b{tag}{i}"),
            Some(&room),
            &progress,
            deadline,
        )
        .await?;
        let clients: Vec<Client> = links
            .into_iter()
            .enumerate()
            .map(|(i, link)| Client {
                link,
                sending: (i < s).then(|| sending(room.clone())),
                expect: (if i < s { s - 1 } else { s } * m) as u64,
            })
            .collect();
        (clients, (s * m * (c - 1)) as u64)
    } else {
        let n = plan.pairs * 2;
        let links = open_all(plan, n, |i| format!("d{tag}{i}"), None, &progress, deadline).await?;
        let clients: Vec<Client> = links
            .into_iter()
            .enumerate()
            .map(|(i, link)| Client {
                link,
                sending: Some(sending(format!("d{tag}{}", i ^ 1))),
                expect: m as u64,
            })
            .collect();
        (clients, (n * m) as u64)
    };
    let setup_s = setup_started.elapsed().as_secs_f64();
    progress.phase("delivered", total);
    let shared = Arc::new(Shared::new(progress.clone()));
    let (outcomes, started) = traffic::run_all(clients, shared.clone(), deadline).await?;
    let delivered: u64 = outcomes.iter().map(|o| o.received).sum();
    let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
    let complete = delivered >= total && outcomes.iter().all(|o| o.done_at.is_some());
    let end = if complete {
        outcomes
            .iter()
            .filter_map(|o| o.done_at)
            .max()
            .unwrap_or(started)
    } else {
        Instant::now()
    };
    let elapsed = end.duration_since(started).as_secs_f64().max(1e-9);
    let mut latency = new_histogram();
    let mut errors = Errors::default();
    for o in &outcomes {
        for &age in &o.latency_ns {
            let _ = latency.record(age);
        }
        if let Some(e) = &o.error {
            errors.add(e.clone());
        }
    }
    report.complete = complete && errors.total == 0;
    report.elapsed_s = elapsed;
    if room {
        report.figure(
            "deliveries_per_sec",
            "deliveries/s",
            delivered as f64 / elapsed,
        );
    } else {
        report.figure("messages_per_sec", "messages/s", delivered as f64 / elapsed);
    }
    report.figure("delivered", "delivered", delivered as f64);
    report.figure("expected", "expected", total as f64);
    report.figure("sent", "sent", sent as f64);
    report.figure("sent_per_sec", "sent/s", sent as f64 / elapsed);
    report.figure("setup_ms", "setup (ms)", (setup_s * 1000.0).round());
    report.latency = Latency::of(&latency);
    report.errors = errors.into_list();
    traffic::close_all(outcomes).await;
    Ok(report)
}

/// Phases of the idle clients, sent to each over a watch channel.
const HOLD: u8 = 0;
const CHECK: u8 = 1;
const STOP: u8 = 2;

/// What an idle client's holder reports.
enum Held {
    /// It answered our PING (and the server's, if any) until told to stop.
    Alive,
    /// It was told to stop before its PONG came.
    Silent,
    Closed(String),
}

/// N registered clients held open; memory per client; does every one still answer?
async fn idle(plan: &Plan, progress: Arc<Progress>) -> Result<Report> {
    let mut report = empty_report(plan);
    report.latency_of = "registration";
    let deadline = Instant::now() + plan.timeout;
    let n = plan.clients;
    let rss_before = match plan.pid {
        Some(pid) => Some(sys::rss_kib(pid)?),
        None => None,
    };
    let tag = run_tag();
    let (phase_tx, phase_rx) = watch::channel(HOLD);
    let alive = Arc::new(AtomicU64::new(0));
    progress.phase("registered", n as u64);
    let gate = Arc::new(Semaphore::new(plan.setup_parallel));
    let mut setup = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..n {
        let (gate, plan, progress, phase_rx, alive) = (
            gate.clone(),
            plan.clone(),
            progress.clone(),
            phase_rx.clone(),
            alive.clone(),
        );
        let nick = format!("i{tag}{i}");
        setup.spawn(async move {
            let permit = gate.acquire_owned().await?;
            let t = Instant::now();
            let link = Link::open(&plan, i, &nick, IDLE_READ).await?;
            let took = t.elapsed();
            drop(permit);
            progress.add(1);
            let holder = tokio::spawn(hold(link, phase_rx, alive, deadline));
            anyhow::Ok((holder, took))
        });
    }
    let mut holders = Vec::with_capacity(n);
    let mut errors = Errors::default();
    let mut reg_latency = new_histogram();
    loop {
        match tokio::time::timeout_at(deadline, setup.join_next()).await {
            Err(_) => {
                errors.add("registering took longer than the timeout");
                setup.abort_all();
                break;
            }
            Ok(None) => break,
            Ok(Some(Ok(Ok((holder, took))))) => {
                let _ = reg_latency.record((took.as_nanos() as u64).max(1));
                holders.push(holder);
            }
            Ok(Some(Ok(Err(e)))) => errors.add(format!("{e:#}")),
            Ok(Some(Err(e))) => errors.add(e.to_string()),
        }
    }
    let registered = holders.len();
    let setup_s = started.elapsed().as_secs_f64();
    progress.phase("holding", registered as u64);
    let hold_until = (Instant::now() + plan.hold).min(deadline);
    tokio::time::sleep_until(hold_until).await;
    let rss_after = match plan.pid {
        Some(pid) => Some(sys::rss_kib(pid)?),
        None => None,
    };
    progress.phase("answered PING", registered as u64);
    let _ = phase_tx.send(CHECK);
    let check_until = (Instant::now() + Duration::from_secs(30)).min(deadline);
    while Instant::now() < check_until && (alive.load(Ordering::Relaxed) as usize) < registered {
        progress
            .done
            .store(alive.load(Ordering::Relaxed), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = phase_tx.send(STOP);
    let mut answered = 0u64;
    for h in holders {
        match tokio::time::timeout(Duration::from_secs(5), h).await {
            Ok(Ok(Held::Alive)) => answered += 1,
            Ok(Ok(Held::Silent)) => errors.add("no PONG within 30 s"),
            Ok(Ok(Held::Closed(e))) => errors.add(e),
            Ok(Err(e)) => errors.add(e.to_string()),
            Err(_) => errors.add("a client did not stop"),
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.complete = registered == n && answered as usize == registered;
    report.figure("clients", "clients registered", registered as f64);
    report.figure("alive", "clients answering PING", answered as f64);
    report.figure(
        "registrations_per_sec",
        "registrations/s (setup)",
        registered as f64 / setup_s.max(1e-9),
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report.figure("rss_before_kib", "server RSS before (KiB)", before as f64);
        report.figure("rss_after_kib", "server RSS after (KiB)", after as f64);
        let per = after.saturating_sub(before) as f64 / (registered.max(1) as f64);
        report.figure(
            "kib_per_client",
            "KiB per client",
            (per * 100.0).round() / 100.0,
        );
    }
    report.latency = Latency::of(&reg_latency);
    report.errors = errors.into_list();
    Ok(report)
}

/// Holds one idle client: answers the server's PINGs, sends ours when told to check,
/// and returns when told to stop (closing the connection).
async fn hold(
    link: Link,
    mut phase: watch::Receiver<u8>,
    alive: Arc<AtomicU64>,
    deadline: Instant,
) -> Held {
    let mut st = HoldState {
        checking: false,
        answered: false,
        alive,
    };
    let mut pongs = Vec::new();
    match link {
        Link::Tcp {
            mut stream,
            mut scanner,
        } => loop {
            let mut closed = None;
            scanner.lines(|l| {
                closed = st.on_line(l, &mut pongs);
                closed.is_none()
            });
            if let Some(c) = closed {
                return c;
            }
            if !pongs.is_empty() {
                if let Err(e) = stream.write_all(&pongs).await {
                    return Held::Closed(format!("cannot answer PING: {e}"));
                }
                pongs.clear();
            }
            tokio::select! {
                r = stream.read_buf(scanner.read_buffer()) => match r {
                    Ok(0) => return Held::Closed("the server closed the connection".into()),
                    Ok(_) => {}
                    Err(e) => return Held::Closed(format!("read failed: {e}")),
                },
                changed = phase.changed() => {
                    let p = if changed.is_ok() { *phase.borrow_and_update() } else { STOP };
                    if p == STOP {
                        return st.ended();
                    }
                    st.checking = true;
                    if let Err(e) = stream.write_all(b"PING :natterbench\r\n").await {
                        return Held::Closed(format!("cannot send PING: {e}"));
                    }
                },
                _ = tokio::time::sleep_until(deadline) => return st.ended(),
            }
        },
        Link::Udp { mut conn } => loop {
            tokio::select! {
                r = conn.recv_raw() => match r {
                    Ok(Some(line)) => {
                        if let Some(c) = st.on_line(classify(&line), &mut pongs) {
                            return c;
                        }
                        if !pongs.is_empty() {
                            let _ = conn.send_raw(&pongs).await;
                            pongs.clear();
                        }
                    }
                    Ok(None) => return Held::Closed("the server closed the session".into()),
                    Err(e) => return Held::Closed(e.to_string()),
                },
                changed = phase.changed() => {
                    let p = if changed.is_ok() { *phase.borrow_and_update() } else { STOP };
                    if p == STOP {
                        return close_udp(*conn, st.ended()).await;
                    }
                    st.checking = true;
                    if let Err(e) = conn.send_raw(b"PING :natterbench\r\n").await {
                        return Held::Closed(format!("cannot send PING: {e}"));
                    }
                },
                _ = tokio::time::sleep_until(deadline) => return close_udp(*conn, st.ended()).await,
            }
        },
    }
}

/// Closes an idle client's UDP session in order, then reports how it held.
async fn close_udp(conn: natter_client::Connection, held: Held) -> Held {
    traffic::close_session(conn).await;
    held
}

/// An idle client's view of the check.
struct HoldState {
    checking: bool,
    answered: bool,
    alive: Arc<AtomicU64>,
}

impl HoldState {
    fn on_line(&mut self, line: Line<'_>, pongs: &mut Vec<u8>) -> Option<Held> {
        match line {
            Line::Ping { params } => pongs.extend_from_slice(&pong_for(params)),
            Line::Pong if self.checking && !self.answered => {
                self.answered = true;
                self.alive.fetch_add(1, Ordering::Relaxed);
            }
            Line::Error { text } => {
                return Some(Held::Closed(format!(
                    "the server closed the connection: {}",
                    String::from_utf8_lossy(text)
                )))
            }
            _ => {}
        }
        None
    }

    fn ended(&self) -> Held {
        if self.answered {
            Held::Alive
        } else {
            Held::Silent
        }
    }
}

/// Registrations per second: connect, register, QUIT, K at a time.
async fn connect(plan: &Plan, progress: Arc<Progress>) -> Result<Report> {
    let mut report = empty_report(plan);
    report.latency_of = "registration";
    let deadline = Instant::now() + plan.timeout;
    let n = plan.clients;
    let tag = run_tag();
    let next = Arc::new(AtomicUsize::new(0));
    progress.phase("registered", n as u64);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.in_flight.min(n) {
        let (plan, next, progress, tag) =
            (plan.clone(), next.clone(), progress.clone(), tag.clone());
        workers.spawn(async move {
            let mut latency = new_histogram();
            let mut errors = Errors::default();
            let mut done = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.clients {
                    break;
                }
                let t = Instant::now();
                let nick = format!("c{tag}{i}");
                match tokio::time::timeout_at(deadline, Link::open(&plan, i, &nick, IDLE_READ))
                    .await
                {
                    Err(_) => {
                        errors.add("the run's timeout came first");
                        break;
                    }
                    Ok(Ok(mut link)) => {
                        let _ = latency.record((t.elapsed().as_nanos() as u64).max(1));
                        let _ = link.send(b"QUIT :natter bench\r\n").await;
                        done += 1;
                        progress.add(1);
                    }
                    Ok(Err(e)) => errors.add(format!("{e:#}")),
                }
            }
            (done, latency, errors)
        });
    }
    let mut registered = 0u64;
    let mut latency = new_histogram();
    let mut errors = Errors::default();
    while let Some(w) = workers.join_next().await {
        let (done, lat, errs) = w?;
        registered += done;
        let _ = latency.add(&lat);
        for (e, k) in errs.into_list() {
            for _ in 0..k {
                errors.add(e.clone());
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    report.elapsed_s = elapsed;
    report.complete = registered as usize == n;
    report.figure(
        "registrations_per_sec",
        "registrations/s",
        registered as f64 / elapsed,
    );
    report.figure("registrations", "registrations", registered as f64);
    report.figure("failures", "failures", errors.total as f64);
    report.latency = Latency::of(&latency);
    report.errors = errors.into_list();
    Ok(report)
}
