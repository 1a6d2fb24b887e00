//! Close with linger, idle timeout, keepalive, the send window and flow control.

mod sim;

use std::time::Duration;

use natter_udp::wire::{Frame, Packet};
use natter_udp::{CloseReason, Config, Event, SendError, State};
use sim::{line, Link, Sim};

fn events(sim: &mut Sim) -> (Vec<Event>, Vec<Event>) {
    let client = std::iter::from_fn(|| sim.client.poll_event()).collect();
    let server = sim
        .server()
        .map(|s| std::iter::from_fn(|| s.poll_event()).collect())
        .unwrap_or_default();
    (client, server)
}

#[test]
fn close_delivers_every_queued_line_then_the_closer_finishes_and_the_peer_lingers() {
    let mut sim = Sim::new(1, Link::perfect(), Config::default());
    sim.connect();
    let _ = events(&mut sim);
    for i in 0..50 {
        sim.client.send_line(&line("client", i)).unwrap();
    }
    sim.client.close();
    assert_eq!(sim.client.state(), State::Closing);
    assert_eq!(sim.client.send_line(b"too late"), Err(SendError::NotOpen));
    let mut got = Vec::new();
    let mut server_events = Vec::new();
    sim.run_until(1000, |s| {
        if let Some(srv) = s.server() {
            while let Some(l) = srv.poll_line() {
                got.push(l.to_vec());
            }
            while let Some(e) = srv.poll_event() {
                server_events.push(e);
            }
        }
        s.client.is_drained()
    });
    assert_eq!(got.len(), 50);
    for (i, l) in got.iter().enumerate() {
        assert_eq!(l, &line("client", i));
    }
    assert_eq!(
        sim.client.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::Local
        })
    );
    assert_eq!(
        server_events,
        vec![Event::Closed {
            reason: CloseReason::Peer { code: 0 }
        }]
    );
    // The server lingers: its session still exists, closed, absorbing stragglers.
    let closed_at = sim.now;
    let server = sim.server().expect("lingering session");
    assert_eq!(server.state(), State::Lingering);
    assert!(server.is_closed() && !server.is_drained());
    let linger_end = server.poll_timeout().expect("linger timer");
    assert!(linger_end - closed_at >= Duration::from_millis(900));
    assert!(linger_end - closed_at <= Duration::from_secs(60));

    // A late duplicate of the client's data lands in the lingering session: absorbed,
    // not taken for a new session and not answered with a Reset.
    let id = sim.client.session_id().unwrap();
    let straggler = Packet::Data {
        session_id: id,
        packet_number: 3,
        frames: vec![Frame::Stream {
            offset: 0,
            data: b"\x00\x03old",
        }],
    }
    .to_vec();
    let from = sim.client_addr;
    sim.server_receive(from, &straggler);
    sim.flush();
    let late = sim.server().map(|s| s.stats().late);
    assert_eq!(late, Some(1));
    assert_eq!(sim.listener.stats().resets_sent, 0);

    // Then the linger ends and the session goes away.
    let gone = sim.run_until(1000, |s| s.sessions.is_empty());
    assert!(gone);
    assert!(sim.now >= linger_end);
    assert_eq!(sim.drained, 1);
}

#[test]
fn a_repeated_close_during_the_linger_is_acknowledged_again() {
    let mut sim = Sim::new(2, Link::perfect(), Config::default());
    sim.connect();
    sim.client.close();
    sim.run_until(1000, |s| s.client.is_drained());
    let id = sim.client.session_id().unwrap();
    // The client's Close again (as if our CloseAck had been lost).
    let close = Packet::Data {
        session_id: id,
        packet_number: 1000,
        frames: vec![Frame::Close {
            code: 0,
            final_offset: 0,
        }],
    }
    .to_vec();
    let (from, to, now) = (sim.client_addr, sim.server_addr, sim.now);
    let before = sim.server_sent.len();
    sim.inject_at(now, from, to, close);
    sim.run_until(3, |_| false);
    let answers: Vec<_> = sim.server_sent[before..].to_vec();
    assert_eq!(answers.len(), 1);
}

#[test]
fn the_server_can_close_too_and_the_client_gets_every_line_first() {
    let mut sim = Sim::new(3, Link::faulty(0.1), Config::default());
    sim.connect();
    let server = sim.server().unwrap();
    for i in 0..100 {
        server.send_line(&line("server", i)).unwrap();
    }
    server.close();
    let mut got = Vec::new();
    let done = sim.run_until(100_000, |s| {
        while let Some(l) = s.client.poll_line() {
            got.push(l.to_vec());
        }
        s.client.is_drained() && s.sessions.is_empty()
    });
    assert!(done);
    assert_eq!(got.len(), 100);
    let events: Vec<_> = std::iter::from_fn(|| sim.client.poll_event()).collect();
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            reason: CloseReason::Peer { code: 0 }
        })
    );
}

#[test]
fn close_completes_over_a_lossy_link() {
    for seed in 0..20 {
        let mut sim = Sim::new(seed, Link::faulty(0.3), Config::default());
        sim.connect();
        for i in 0..20 {
            sim.client.send_line(&line("client", i)).unwrap();
        }
        sim.client.close();
        let mut got = 0;
        let done = sim.run_until(100_000, |s| {
            if let Some(srv) = s.server() {
                while srv.poll_line().is_some() {
                    got += 1;
                }
            }
            s.client.is_drained() && s.sessions.is_empty()
        });
        assert!(done, "seed {seed}");
        assert_eq!(got, 20, "seed {seed}");
        let reason = std::iter::from_fn(|| sim.client.poll_event()).last();
        // Usually CloseAck arrives; if every CloseAck and retransmitted Close is lost,
        // the idle timeout ends it. Either way, nothing hangs.
        assert!(
            matches!(
                reason,
                Some(Event::Closed {
                    reason: CloseReason::Local | CloseReason::IdleTimeout
                })
            ),
            "seed {seed}: {reason:?}"
        );
    }
}

#[test]
fn a_silent_peer_is_declared_gone_after_the_idle_timeout() {
    let mut sim = Sim::new(4, Link::perfect(), Config::default());
    sim.connect();
    let last_heard = sim.now;
    // The network dies both ways.
    sim.link.loss = 1.0;
    let done = sim.run_until(100_000, |s| s.client.is_drained() && s.sessions.is_empty());
    assert!(done);
    let (client, _) = events(&mut sim);
    assert_eq!(
        client.last(),
        Some(&Event::Closed {
            reason: CloseReason::IdleTimeout
        })
    );
    let idle = sim.now - last_heard;
    assert!(
        idle >= Duration::from_secs(60) && idle < Duration::from_secs(61),
        "{idle:?}"
    );
}

#[test]
fn keepalive_holds_a_quiet_session_open_indefinitely() {
    let mut sim = Sim::new(5, Link::perfect(), Config::default());
    sim.connect();
    let start = sim.now;
    let sent_before = sim.client.stats().datagrams_sent;
    sim.run_until(1_000_000, |s| s.now - start >= Duration::from_secs(600));
    assert!(sim.client.is_established());
    assert!(sim.server().is_some_and(|s| s.is_established()));
    // About one PING (and its ACK) per 15 s, not a flood.
    let pings = sim.client.stats().datagrams_sent - sent_before;
    assert!(
        (20..=100).contains(&pings),
        "{pings} datagrams in 10 minutes"
    );
}

#[test]
fn the_send_window_bounds_packets_in_flight() {
    let config = Config {
        initial_window: 4,
        max_window: 8,
        ..Config::default()
    };
    let mut sim = Sim::new(6, Link::faulty(0.05), config);
    sim.connect();
    let mut sent = 0;
    let mut got = 0;
    let mut max_seen = 0;
    let done = sim.run_until(200_000, |s| {
        while sent < 3000 && s.client.send_line(&line("client", sent)).is_ok() {
            sent += 1;
        }
        if let Some(srv) = s.server() {
            while srv.poll_line().is_some() {
                got += 1;
            }
        }
        // Sim::flush asserts that every packet was sent into an open window.
        let in_flight = s.client.in_flight();
        assert!(in_flight <= 8 && s.client.window() <= 8);
        max_seen = max_seen.max(in_flight);
        got == 3000
    });
    assert!(done);
    assert!(max_seen >= 4, "the window was used: {max_seen}");
}

#[test]
fn a_reader_that_stops_reading_stops_the_sender_without_losing_anything() {
    let mut sim = Sim::new(7, Link::perfect(), Config::default());
    sim.connect();
    let mut sent = 0usize;
    let mut saw_full = false;
    // The server application reads nothing for a while.
    sim.run_until(2000, |s| {
        loop {
            match s.client.send_line(&line("client", sent)) {
                Ok(()) => sent += 1,
                Err(SendError::Full) => {
                    saw_full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        s.now - s.t0 > Duration::from_secs(30)
    });
    assert!(saw_full, "back-pressure reached the sender");
    let server = sim.server().unwrap();
    assert_eq!(
        server.stats().protocol_violations,
        0,
        "nothing beyond the window"
    );
    assert!(server.is_established() && sim.client.is_established());
    // Now it reads; everything arrives, in order.
    let mut got = Vec::new();
    let total = sent;
    let done = sim.run_until(100_000, |s| {
        if let Some(srv) = s.server() {
            while let Some(l) = srv.poll_line() {
                got.push(l);
            }
        }
        got.len() == total
    });
    assert!(done);
    for (i, l) in got.iter().enumerate() {
        assert_eq!(l.as_ref(), line("client", i).as_slice());
    }
}

#[test]
fn lines_queued_while_connecting_flow_once_connected() {
    let mut sim = Sim::new(8, Link::perfect(), Config::default());
    sim.client.send_line(b"NICK early").unwrap();
    sim.client.send_line(b"USER early 0 * :Early Bird").unwrap();
    let mut got = Vec::new();
    sim.run_until(1000, |s| {
        if let Some(srv) = s.server() {
            while let Some(l) = srv.poll_line() {
                got.push(l);
            }
        }
        got.len() == 2
    });
    assert_eq!(got[0].as_ref(), b"NICK early");
    assert_eq!(got[1].as_ref(), b"USER early 0 * :Early Bird");
}

#[test]
fn a_line_too_long_for_its_length_prefix_is_refused() {
    let mut sim = Sim::new(9, Link::perfect(), Config::default());
    sim.connect();
    assert_eq!(
        sim.client.send_line(&vec![b'x'; 70_000]),
        Err(SendError::TooLong)
    );
    sim.client.send_line(&vec![b'y'; 65_535]).unwrap();
    let mut got = None;
    sim.run_until(1000, |s| {
        got = s.server().and_then(|srv| srv.poll_line());
        got.is_some()
    });
    assert_eq!(got.map(|l| l.len()), Some(65_535));
}
