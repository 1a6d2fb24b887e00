//! The reliable session's cost per datagram: an established pair exchanges chat lines
//! with no socket in between, so what is measured is `Session::handle_datagram` and
//! `Session::poll_transmit` (plus the acks they cause), nothing else.
//!
//! `cargo bench -p natter-udp`; the throughput is in datagrams (both ways).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use natter_udp::{route, Config, Cookies, Incoming, Listener, Route, Session};

const SERVER: &str = "127.0.0.1:6667";
const CLIENT: &str = "127.0.0.1:40000";

/// A client and a server session that finished their handshake.
struct Pair {
    client: Session,
    server: Session,
    now: Instant,
    server_addr: SocketAddr,
    client_addr: SocketAddr,
}

impl Pair {
    fn established() -> Pair {
        let t0 = Instant::now();
        let server_addr: SocketAddr = SERVER.parse().expect("address");
        let client_addr: SocketAddr = CLIENT.parse().expect("address");
        let mut client = Session::connect(t0, server_addr, 7, Config::default());
        let mut listener = Listener::new(Cookies::new([7; 32], t0));
        let mut server: Option<Session> = None;
        for _ in 0..100 {
            while let Some(t) = client.poll_transmit(t0) {
                let to_session =
                    matches!(route(&t.datagram), Route::Session(_)) && server.is_some();
                if to_session {
                    if let Some(s) = server.as_mut() {
                        s.handle_datagram(t0, client_addr, &t.datagram);
                    }
                    continue;
                }
                match listener.handle(t0, client_addr, &t.datagram) {
                    Incoming::Reply(r) => client.handle_datagram(t0, server_addr, &r.datagram),
                    Incoming::Accept(a) => {
                        let s = server.get_or_insert_with(|| a.into_session(t0, Config::default()));
                        s.handle_datagram(t0, client_addr, &t.datagram);
                    }
                    Incoming::Drop(why) => panic!("handshake datagram dropped: {why:?}"),
                }
            }
            if let Some(s) = server.as_mut() {
                while let Some(t) = s.poll_transmit(t0) {
                    client.handle_datagram(t0, server_addr, &t.datagram);
                }
            }
            if client.is_established() && server.as_ref().is_some_and(Session::is_established) {
                break;
            }
        }
        let server = server.expect("the server accepted");
        assert!(
            client.is_established() && server.is_established(),
            "handshake"
        );
        Pair {
            client,
            server,
            now: t0,
            server_addr,
            client_addr,
        }
    }

    /// Moves datagrams both ways until neither side has anything to send; returns how
    /// many moved. Lines that arrive are taken out, as the server and client tasks do.
    fn pump(&mut self) -> u64 {
        let mut moved = 0;
        loop {
            let mut any = false;
            while let Some(t) = self.server.poll_transmit(self.now) {
                self.client
                    .handle_datagram(self.now, self.server_addr, &t.datagram);
                moved += 1;
                any = true;
            }
            while self.client.poll_line().is_some() {}
            while let Some(t) = self.client.poll_transmit(self.now) {
                self.server
                    .handle_datagram(self.now, self.client_addr, &t.datagram);
                moved += 1;
                any = true;
            }
            while self.server.poll_line().is_some() {}
            if !any {
                return moved;
            }
        }
    }

    /// One round: the server sends `lines` lines, a millisecond passes (timers such as
    /// delayed acks fire), and everything is carried across.
    fn round(&mut self, line: &Bytes, lines: usize) -> u64 {
        // The lines as the hub hands them to the server: shared `Bytes`, ending in
        // CR LF, all a round's at once.
        let mut queued: VecDeque<Bytes> = (0..lines).map(|_| line.clone()).collect();
        self.server.send_lines(&mut queued);
        let mut moved = self.pump();
        self.now += Duration::from_millis(1);
        for s in [&mut self.client, &mut self.server] {
            if s.poll_timeout().is_some_and(|t| t <= self.now) {
                s.handle_timeout(self.now);
            }
        }
        moved += self.pump();
        moved
    }
}

fn datagrams(c: &mut Criterion) {
    let mut group = c.benchmark_group("udp session");
    for (name, size, lines) in [
        ("64-byte lines, 32 a round", 64usize, 32usize),
        ("1000-byte lines, 8 a round", 1000, 8),
    ] {
        let mut line = vec![b'x'; size];
        line.extend_from_slice(b"\r\n");
        let line = Bytes::from(line);
        let mut pair = Pair::established();
        // Warm the windows up, then count the datagrams of one round for the throughput.
        for _ in 0..100 {
            pair.round(&line, lines);
        }
        let per_round = pair.round(&line, lines).max(1);
        group.throughput(Throughput::Elements(per_round));
        group.bench_function(name, |b| b.iter(|| pair.round(&line, lines)));
    }
    group.finish();
}

criterion_group!(benches, datagrams);
criterion_main!(benches);
