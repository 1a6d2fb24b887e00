//! A client whose address changes keeps its session without losing a line; a forged
//! datagram with a known session id moves nothing unless its address answers the
//! challenge; the server never sends an unvalidated address more than 3x what it got.

mod sim;

use std::net::SocketAddr;

use natter_udp::wire::{self, Frame, Packet};
use natter_udp::{Config, Event};
use sim::{addr, Conversation, Link, Sim};

/// Bytes the server sent to `to` so far.
fn sent_to(sim: &Sim, to: SocketAddr) -> u64 {
    sim.server_sent
        .iter()
        .filter(|s| s.to == to)
        .map(|s| s.len as u64)
        .sum()
}

fn received_from(sim: &Sim, from: SocketAddr) -> u64 {
    sim.server_received_from.get(&from).copied().unwrap_or(0)
}

fn roam_mid_conversation(seed: u64, link: Link, old_path_dies: bool) {
    let mut sim = Sim::new(seed, link, Config::default());
    sim.connect();
    let old = sim.client_addr;
    let new = addr("203.0.113.77:61000");
    let mut conv = Conversation::new(1000);
    let mut migrated = Vec::new();
    let halfway = sim.run_until(200_000, |s| {
        conv.pump(s);
        conv.server_got.len() >= 300 && conv.client_got.len() >= 300
    });
    assert!(halfway);
    // The client's NAT rebinds (or it changes network): same session, new source address.
    sim.client_addr = new;
    sim.client_reachable.insert(new);
    if old_path_dies {
        sim.client_reachable.remove(&old);
    }
    let done = sim.run_until(500_000, |s| {
        conv.pump(s);
        if let Some(server) = s.server() {
            while let Some(e) = server.poll_event() {
                migrated.push(e);
            }
        }
        let validated = s.server().is_some_and(|x| x.remote() == new);
        if !validated {
            // Anti-amplification toward the unvalidated address.
            assert!(
                sent_to(s, new) <= 3 * received_from(s, new),
                "sent {} to an unvalidated address that sent {}",
                sent_to(s, new),
                received_from(s, new)
            );
        }
        conv.complete()
    });
    assert!(
        done,
        "seed {seed}: conversation did not finish after roaming"
    );
    conv.assert_exact();
    let server = sim.server().expect("session survives");
    assert_eq!(server.remote(), new);
    assert!(server.is_established());
    assert_eq!(server.stats().migrations, 1);
    assert!(server.stats().path_challenges_sent >= 1);
    assert_eq!(migrated, vec![Event::Migrated { from: old, to: new }]);
}

#[test]
fn a_client_that_changes_address_keeps_its_session_and_every_line() {
    roam_mid_conversation(100, Link::perfect(), true);
}

#[test]
fn roaming_over_a_lossy_link_loses_nothing() {
    for seed in 101..104 {
        roam_mid_conversation(seed, Link::faulty(0.1), true);
    }
}

#[test]
fn nat_rebinding_with_the_old_path_still_alive_moves_the_session_too() {
    roam_mid_conversation(110, Link::faulty(0.05), false);
}

fn forged_ping(session_id: u64, pn: u64) -> Vec<u8> {
    Packet::Data {
        session_id,
        packet_number: pn,
        frames: vec![Frame::Ping, Frame::Ping, Frame::Ping],
    }
    .to_vec()
}

#[test]
fn a_forged_datagram_from_a_new_address_does_not_move_the_session() {
    let mut sim = Sim::new(200, Link::perfect(), Config::default());
    sim.connect();
    let real = sim.client_addr;
    let attacker = addr("192.0.2.66:4444");
    let id = sim.client.session_id().expect("connected");

    // The attacker knows the session id (it is on the path) and forges from its own
    // address, with a packet number far ahead of the real ones.
    let forged = forged_ping(id, 1_000_000);
    let forged_len = forged.len() as u64;
    let at = sim.now;
    sim.inject_at(at, attacker, sim.server_addr, forged);
    let mut conv = Conversation::new(200);
    let done = sim.run_until(100_000, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(done, "the real conversation goes on");
    conv.assert_exact();

    let server_remote = sim.server().map(|s| s.remote());
    assert_eq!(
        server_remote,
        Some(real),
        "the session stayed with the real client"
    );
    // The only thing the attacker's address got: one challenge, within 3x.
    let to_attacker: Vec<_> = sim
        .stray
        .iter()
        .filter(|(_, to, _)| *to == attacker)
        .collect();
    assert_eq!(to_attacker.len(), 1);
    assert!(to_attacker[0].2.len() as u64 <= 3 * forged_len);
    assert!(matches!(
        wire::decode(&to_attacker[0].2),
        Ok(Packet::PathChallenge { .. })
    ));
    // The honest client's acks of the forged packet number were ignored, not fatal.
    assert!(sim.server().map(|s| s.stats().migrations) == Some(0));
}

#[test]
fn a_path_response_counts_only_from_the_address_that_was_challenged() {
    let mut sim = Sim::new(201, Link::perfect(), Config::default());
    sim.connect();
    let real = sim.client_addr;
    let attacker = addr("192.0.2.66:4444");
    let accomplice = addr("192.0.2.67:5555");
    let id = sim.client.session_id().expect("connected");
    let at = sim.now;
    sim.inject_at(at, attacker, sim.server_addr, forged_ping(id, 500));
    sim.run_until(100, |s| !s.stray.is_empty());
    let challenge = sim.stray[0].2.clone();
    let Ok(Packet::PathChallenge { token, .. }) = wire::decode(&challenge) else {
        panic!("expected a challenge, got {challenge:?}");
    };
    let response = Packet::PathResponse {
        session_id: id,
        token,
    }
    .to_vec();

    // Echoed from another address: rejected.
    let at = sim.now;
    sim.inject_at(at, accomplice, sim.server_addr, response.clone());
    // A made-up token from the attacker's own address: rejected.
    let bogus = Packet::PathResponse {
        session_id: id,
        token: &[0u8; 13],
    }
    .to_vec();
    sim.inject_at(at, attacker, sim.server_addr, bogus);
    sim.run_until(10, |_| false);
    let server = sim.server().expect("session");
    assert_eq!(server.remote(), real);
    assert_eq!(server.stats().bad_path_responses, 2);

    // Answered from the challenged address: that proves reachability there, so the
    // session moves (which is why the id must stay secret from off-path attackers, and
    // why the real client wins it back by simply talking: see the next test).
    let at = sim.now;
    sim.inject_at(at, attacker, sim.server_addr, response);
    let moved = sim.run_until(10, |s| s.server().is_some_and(|x| x.remote() == attacker));
    assert!(moved);
}

#[test]
fn a_hijacked_path_is_won_back_by_the_real_client() {
    let mut sim = Sim::new(202, Link::perfect(), Config::default());
    sim.connect();
    let real = sim.client_addr;
    let attacker = addr("192.0.2.66:4444");
    let id = sim.client.session_id().expect("connected");
    let at = sim.now;
    sim.inject_at(at, attacker, sim.server_addr, forged_ping(id, 500));
    sim.run_until(100, |s| !s.stray.is_empty());
    let challenge = sim.stray[0].2.clone();
    let Ok(Packet::PathChallenge { token, .. }) = wire::decode(&challenge) else {
        panic!()
    };
    let response = Packet::PathResponse {
        session_id: id,
        token,
    }
    .to_vec();
    let at = sim.now;
    sim.inject_at(at, attacker, sim.server_addr, response);
    sim.run_until(10, |s| s.server().is_some_and(|x| x.remote() == attacker));

    let mut conv = Conversation::new(100);
    let done = sim.run_until(100_000, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(done);
    conv.assert_exact();
    assert_eq!(sim.server().map(|s| s.remote()), Some(real));
}
