//! Hostile datagrams (truncated at every length, for the wrong session, random bytes)
//! are dropped and counted, never a panic, and the real conversation goes on.

mod sim;

use std::time::Instant;

use natter_udp::wire::{self, AckFrame, Frame, Packet};
use natter_udp::{Config, Cookies, Incoming, Listener, Session};
use proptest::prelude::*;
use sim::{addr, Conversation, Link, Rng, Sim};

#[test]
fn every_truncation_of_real_datagrams_is_dropped_or_harmless_mid_conversation() {
    let mut sim = Sim::new(12, Link::perfect(), Config::default());
    sim.log = Some(Vec::new());
    let mut conv = Conversation::new(300);
    let halfway = sim.run_until(100_000, |s| {
        conv.pump(s);
        conv.server_got.len() >= 100 && conv.client_got.len() >= 100
    });
    assert!(halfway);
    let captured = sim.log.take().unwrap_or_default();
    assert!(captured.len() > 10);
    let (server_addr, client_addr, now) = (sim.server_addr, sim.client_addr, sim.now);
    let mut fed = 0u64;
    for d in &captured {
        for cut in 0..d.len() {
            let piece = &d[..cut];
            sim.client.handle_datagram(now, server_addr, piece);
            sim.server_receive(client_addr, piece);
            fed += 1;
        }
    }
    let c = sim.client.stats().clone();
    // Every piece was dropped and counted: malformed, or (a cut Initial still decodes,
    // its padding being optional) a packet kind a connected client does not take.
    assert_eq!(c.malformed + c.unexpected, fed, "{c:?}");
    assert_eq!(c.duplicates, 0, "no piece passed for a real packet");
    let l = sim.listener.stats();
    assert!(l.malformed > 0 && l.too_small > 0, "{l:?}");
    let server = sim.server().map(|s| s.stats().clone()).unwrap_or_default();
    assert_eq!(server.duplicates, 0);
    assert!(server.malformed > 0);
    let done = sim.run_until(100_000, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(done);
    conv.assert_exact();
}

#[test]
fn a_forged_copy_that_beats_the_real_packet_delays_but_loses_no_line() {
    let mut sim = Sim::new(15, Link::perfect(), Config::default());
    sim.connect();
    sim.log = Some(Vec::new());
    let mut conv = Conversation::new(300);
    conv.pump(&mut sim);
    sim.flush(); // on the wire, not yet delivered
                 // The newest client Data packet carrying lines is still on the wire. Someone on the
                 // path forges a copy with its packet number and no lines, and gets it there first.
    let log = sim.log.take().unwrap_or_default();
    let id = sim.client.session_id().unwrap();
    let real = log
        .iter()
        .rev()
        .find_map(|d| match wire::decode(d) {
            Ok(Packet::Data {
                session_id,
                packet_number,
                frames,
            }) if session_id == id && frames.iter().any(|f| matches!(f, Frame::Stream { .. })) => {
                Some(packet_number)
            }
            _ => None,
        })
        .expect("a data packet in flight");
    let forged = Packet::Data {
        session_id: id,
        packet_number: real,
        frames: vec![Frame::Ping],
    }
    .to_vec();
    let from = sim.client_addr;
    sim.server_receive(from, &forged);
    let done = sim.run_until(100_000, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(
        done,
        "the lines of the shadowed packet were sent again: {} {} {:?} {:?} {:?}",
        conv.server_got.len(),
        conv.client_got.len(),
        sim.client.stats(),
        sim.elapsed(),
        sim.client.poll_timeout().map(|t| t - sim.now)
    );
    conv.assert_exact();
    assert!(sim.server().is_some_and(|s| s.stats().duplicates >= 1));
    assert!(sim.client.stats().reneges >= 1, "{:?}", sim.client.stats());
}

#[test]
fn datagrams_for_another_session_are_counted_and_ignored() {
    let mut sim = Sim::new(13, Link::perfect(), Config::default());
    sim.connect();
    let id = sim.client.session_id().unwrap();
    let wrong = Packet::Data {
        session_id: id ^ 1,
        packet_number: 0,
        frames: vec![Frame::Stream {
            offset: 0,
            data: b"\x00\x04evil",
        }],
    }
    .to_vec();
    let (server_addr, now) = (sim.server_addr, sim.now);
    sim.client.handle_datagram(now, server_addr, &wrong);
    assert_eq!(sim.client.stats().wrong_session, 1);
    assert!(sim.client.poll_line().is_none());
    // The same bytes from a stranger's address reach the client: wrong address.
    sim.client
        .handle_datagram(now, addr("192.0.2.99:1"), &wrong);
    assert_eq!(sim.client.stats().wrong_address, 1);
}

#[test]
fn random_bytes_never_panic_and_are_all_counted() {
    let mut rng = Rng::new(99);
    let mut sim = Sim::new(14, Link::perfect(), Config::default());
    sim.connect();
    let (server_addr, client_addr, now) = (sim.server_addr, sim.client_addr, sim.now);
    let id = sim.client.session_id().unwrap();
    for i in 0..20_000 {
        let len = rng.below(1300) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        match (i % 4, d.first_mut()) {
            // Reliable-range first byte, so the decoder gets past the first check.
            (0, Some(b)) => *b = 0xF8 + (rng.below(8) as u8),
            // A Data header with the real session id and random frames.
            (1, _) if len > 17 => {
                d[0] = 0xFB;
                d[1..9].copy_from_slice(&id.to_be_bytes());
            }
            _ => {}
        }
        sim.client.handle_datagram(now, server_addr, &d);
        sim.server_receive(client_addr, &d);
    }
    let c = sim.client.stats();
    assert!(c.malformed > 5_000, "{c:?}");
    assert!(
        sim.client.is_established(),
        "random bytes did not end the session"
    );
    let mut conv = Conversation::new(100);
    let done = sim.run_until(100_000, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(done);
}

/// Generated parts of a frame: kind, two offsets, a delay/code, ack ranges as
/// (gap, length), stream data.
type FrameParts = (u8, u64, u64, u32, Vec<(u64, u64)>, Vec<u8>);

fn arb_frame() -> impl Strategy<Value = FrameParts> {
    (
        0u8..5,
        0u64..(1 << 40),
        0u64..(1 << 40),
        any::<u32>(),
        proptest::collection::vec((0u64..1000, 0u64..1000), 0..16),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
}

/// Builds a frame from generated parts; ack ranges are made valid (descending, gaps).
fn frame_from(parts: &FrameParts) -> Frame<'_> {
    let (kind, a, b, delay, ranges, data) = parts;
    match kind {
        0 => {
            let mut top = 1u64 << 50;
            let mut rs = Vec::new();
            for (gap, len) in ranges {
                let end = top - gap - 2;
                let start = end - len;
                rs.push(start..=end);
                top = start;
            }
            Frame::Ack(AckFrame {
                cum_offset: *a,
                max_offset: *b,
                ack_delay_micros: *delay,
                ranges: rs,
            })
        }
        1 => Frame::Stream { offset: *a, data },
        2 => Frame::Ping,
        3 => Frame::Close {
            code: *delay as u8,
            final_offset: *b,
        },
        _ => Frame::CloseAck,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The decoder's contract: any bytes at all give a packet or an error.
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = wire::decode(&bytes);
        let _ = wire::peek_session_id(&bytes);
        let _ = natter_udp::route(&bytes);
    }

    /// The same with a reliable first byte, so every packet body parser is exercised.
    #[test]
    fn decode_never_panics_past_the_first_byte(
        ty in 0xF8u8..=0xFF,
        body in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let mut bytes = vec![ty];
        bytes.extend_from_slice(&body);
        if let Ok(p) = wire::decode(&bytes) {
            // Whatever decodes re-encodes to something that decodes to the same packet.
            let again = p.to_vec();
            prop_assert_eq!(wire::decode(&again), Ok(p));
        }
    }

    /// Encoding then decoding a Data packet gives it back.
    #[test]
    fn data_packets_round_trip(
        session_id in any::<u64>(),
        packet_number in any::<u64>(),
        parts in proptest::collection::vec(arb_frame(), 0..6),
    ) {
        let frames: Vec<Frame<'_>> = parts.iter().map(frame_from).collect();
        let p = Packet::Data { session_id, packet_number, frames };
        let bytes = p.to_vec();
        prop_assert_eq!(wire::decode(&bytes), Ok(p));
    }

    /// Sessions and the listener swallow anything without panicking.
    #[test]
    fn sessions_and_listener_never_panic(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1300), 1..20),
        first in proptest::collection::vec(0xF8u8..=0xFE, 1..20),
    ) {
        let t0 = Instant::now();
        let server = addr("192.0.2.1:6667");
        let peer = addr("198.51.100.1:5000");
        let cookies = Cookies::new([5; 32], t0);
        let mut listener = Listener::new(cookies.clone());
        let mut client = Session::connect(t0, server, 7, Config::default());
        let _ = client.poll_transmit(t0);
        let mut server_sessions: Vec<Session> = Vec::new();
        for (mut d, f) in datagrams.into_iter().zip(first.into_iter().cycle()) {
            if let Some(b) = d.first_mut() {
                *b = f;
            }
            client.handle_datagram(t0, server, &d);
            if let Incoming::Accept(a) = listener.handle(t0, peer, &d) {
                server_sessions.push(a.into_session(t0, Config::default()));
            }
            for s in &mut server_sessions {
                s.handle_datagram(t0, peer, &d);
                while s.poll_transmit(t0).is_some() {}
            }
            while client.poll_transmit(t0).is_some() {}
            client.handle_timeout(t0);
        }
        // A random datagram cannot carry a valid cookie.
        prop_assert!(server_sessions.is_empty());
    }
}
