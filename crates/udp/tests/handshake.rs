//! The handshake: stateless until the cookie comes back, idempotent after, and never an
//! amplifier.

mod sim;

use std::time::{Duration, Instant};

use natter_udp::wire::{self, Packet, MIN_INITIAL_SIZE};
use natter_udp::{CloseReason, Config, Cookies, Event, Incoming, Listener, Role, Session, State};
use sim::{addr, Link, Sim};

#[test]
fn a_handshake_that_is_never_answered_costs_the_server_no_session() {
    let mut sim = Sim::new(1, Link::perfect(), Config::default());
    // The client's address is forged: the Retry goes somewhere nobody answers from.
    sim.client_reachable.clear();
    let done = sim.run_until(10_000, |s| s.client.is_drained());
    assert!(done);
    assert!(sim.sessions.is_empty());
    assert_eq!(sim.drained, 0, "no session ever existed");
    let stats = sim.listener.stats();
    assert!(stats.initials >= 3, "the client retried: {stats:?}");
    assert_eq!(stats.retries_sent, stats.initials);
    assert_eq!(stats.accepted, 0);
    assert_eq!(
        sim.client.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::HandshakeTimeout
        })
    );
}

#[test]
fn a_flood_of_initials_from_forged_addresses_allocates_nothing_and_never_amplifies() {
    let t0 = Instant::now();
    let mut listener = Listener::new(Cookies::new([9; 32], t0));
    let mut sent = 0usize;
    let mut received = 0usize;
    for i in 0..10_000u32 {
        let from =
            std::net::SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1000));
        let initial = Packet::Initial {
            version: wire::VERSION,
            nonce: u64::from(i),
            cookie: &[],
        }
        .to_vec();
        received += initial.len();
        match listener.handle(t0, from, &initial) {
            Incoming::Reply(t) => {
                assert!(t.datagram.len() * 3 <= initial.len());
                sent += t.datagram.len();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(sent * 3 <= received);
    // The listener is a key and counters: the flood left nothing behind to grow.
    assert!(std::mem::size_of::<Listener>() < 256);
    assert_eq!(listener.stats().accepted, 0);
}

#[test]
fn an_unpadded_initial_gets_no_answer() {
    let t0 = Instant::now();
    let mut listener = Listener::new(Cookies::new([9; 32], t0));
    let initial = Packet::Initial {
        version: wire::VERSION,
        nonce: 1,
        cookie: &[],
    }
    .to_vec();
    for len in 0..MIN_INITIAL_SIZE {
        assert!(matches!(
            listener.handle(t0, addr("192.0.2.9:9"), &initial[..len]),
            Incoming::Drop(_)
        ));
    }
}

#[test]
fn a_lost_accept_is_repeated_for_the_retransmitted_initial_without_a_second_session() {
    let t0 = Instant::now();
    let server_addr = addr("192.0.2.1:6667");
    let client_addr = addr("198.51.100.1:5000");
    let mut listener = Listener::new(Cookies::new([1; 32], t0));
    let mut client = Session::connect(t0, server_addr, 0xabcdef, Config::default());
    let mut sessions = std::collections::HashMap::new();

    let mut deliver_to_server = |now: Instant,
                                 bytes: &[u8],
                                 sessions: &mut std::collections::HashMap<u64, Session>|
     -> Vec<Vec<u8>> {
        match listener.handle(now, client_addr, bytes) {
            Incoming::Reply(t) => vec![t.datagram],
            Incoming::Accept(a) => {
                let s = sessions
                    .entry(a.session_id())
                    .or_insert_with(|| a.into_session(now, Config::default()));
                s.handle_datagram(now, client_addr, bytes);
                std::iter::from_fn(|| s.poll_transmit(now).map(|t| t.datagram)).collect()
            }
            Incoming::Drop(r) => panic!("dropped: {r:?}"),
        }
    };

    let i1 = client.poll_transmit(t0).unwrap().datagram;
    let retry = deliver_to_server(t0, &i1, &mut sessions);
    assert_eq!(retry.len(), 1);
    client.handle_datagram(t0, server_addr, &retry[0]);
    let i2 = client.poll_transmit(t0).unwrap().datagram;
    let accept = deliver_to_server(t0, &i2, &mut sessions);
    assert_eq!(sessions.len(), 1);
    assert!(matches!(
        wire::decode(&accept[0]),
        Ok(Packet::Accept { .. })
    ));
    // The Accept is lost. The client times out and sends its Initial again.
    let t1 = client.poll_timeout().unwrap();
    client.handle_timeout(t1);
    let i3 = client.poll_transmit(t1).unwrap().datagram;
    assert_eq!(i3, i2, "same nonce, same cookie");
    let accept2 = deliver_to_server(t1, &i3, &mut sessions);
    assert_eq!(sessions.len(), 1, "still one session");
    assert_eq!(accept2, accept);
    client.handle_datagram(t1, server_addr, &accept2[0]);
    assert!(client.is_established());
    assert_eq!(client.poll_event(), Some(Event::Connected));
    assert_eq!(client.session_id(), sessions.keys().next().copied());
    assert_eq!(client.role(), Role::Client);
    assert_eq!(client.state(), State::Established);
}

#[test]
fn a_server_that_forgot_the_session_resets_the_client() {
    let mut sim = Sim::new(3, Link::perfect(), Config::default());
    sim.connect();
    // The server restarts with the same key (or expired the session).
    sim.sessions.clear();
    sim.client
        .send_line(b"PRIVMSG #room :anyone there?")
        .unwrap();
    let done = sim.run_until(1000, |s| s.client.is_drained());
    assert!(done);
    let events: Vec<_> = std::iter::from_fn(|| sim.client.poll_event()).collect();
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            reason: CloseReason::Reset
        })
    );
    assert_eq!(sim.listener.stats().resets_sent, 1);
}

#[test]
fn a_reset_with_the_wrong_token_is_ignored() {
    let mut sim = Sim::new(4, Link::perfect(), Config::default());
    sim.connect();
    let id = sim.client.session_id().unwrap();
    let reset = Packet::Reset {
        session_id: id,
        token: [0; 16],
    }
    .to_vec();
    let now = sim.now;
    let server = sim.server_addr;
    sim.client.handle_datagram(now, server, &reset);
    assert!(sim.client.is_established());
    assert_eq!(sim.client.stats().unexpected, 1);
}

#[test]
fn the_handshake_completes_over_a_lossy_link() {
    for seed in 0..20 {
        let mut sim = Sim::new(seed, Link::faulty(0.3), Config::default());
        let ok = sim.run_until(10_000, |s| s.client.is_established());
        assert!(
            ok,
            "seed {seed}: {:?} {:?} {:?} {:?}",
            sim.client.state(),
            sim.client.stats(),
            sim.listener.stats(),
            sim.elapsed()
        );
        assert!(sim.elapsed() < Duration::from_secs(30));
        // Whatever was lost or duplicated, there is one session.
        sim.run_until(50, |_| false);
        assert_eq!(
            sim.sessions.len(),
            1,
            "seed {seed}: {:?} {:?} {:?} drained {}",
            sim.elapsed(),
            sim.client.state(),
            sim.client.stats(),
            sim.drained
        );
    }
}

#[test]
fn a_server_session_whose_client_never_confirms_is_dropped_after_the_handshake_timeout() {
    let t0 = Instant::now();
    let client_addr = addr("198.51.100.1:5000");
    let cookies = Cookies::new([2; 32], t0);
    let mut listener = Listener::new(cookies.clone());
    let cookie = cookies.issue(
        t0,
        natter_udp::Purpose::Handshake,
        client_addr,
        &7u64.to_be_bytes(),
    );
    let initial = Packet::Initial {
        version: wire::VERSION,
        nonce: 7,
        cookie: cookie.as_bytes(),
    }
    .to_vec();
    let Incoming::Accept(a) = listener.handle(t0, client_addr, &initial) else {
        panic!("valid cookie");
    };
    let mut s = a.into_session(t0, Config::default());
    s.handle_datagram(t0, client_addr, &initial);
    let mut accepts = 0;
    let mut now = t0;
    while !s.is_drained() {
        while let Some(t) = s.poll_transmit(now) {
            assert!(matches!(
                wire::decode(&t.datagram),
                Ok(Packet::Accept { .. })
            ));
            assert_eq!(t.to, client_addr);
            accepts += 1;
        }
        now = s.poll_timeout().expect("a timer while alive");
        s.handle_timeout(now);
    }
    assert_eq!(now - t0, Duration::from_secs(30));
    assert!(
        (5..=15).contains(&accepts),
        "{accepts} Accepts, at most 3 s apart"
    );
}
