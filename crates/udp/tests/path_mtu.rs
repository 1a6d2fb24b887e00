//! Path MTU discovery between two sessions over simulated links: sessions allowed larger
//! datagrams find what the path carries and build their packets that large, a path that
//! carries less costs no line, and a path that shrinks mid-conversation (a black hole)
//! sends them back to the base size without losing a line.

mod sim;

use natter_udp::wire::MAX_DATAGRAM_SIZE;
use natter_udp::Config;
use sim::{Conversation, Link, Sim};

/// What the sessions may try: a jumbo frame's payload.
const ALLOWED: usize = 8952;

/// UDP payload of a 1500-byte Ethernet path under IPv4.
const ETHERNET: usize = 1472;

fn config() -> Config {
    Config {
        max_datagram_size: ALLOWED,
        ..Config::default()
    }
}

/// Runs a conversation to its end, every line arrived once and in order both ways.
fn converse(sim: &mut Sim, conv: &mut Conversation) {
    let done = sim.run_until(200_000, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(
        done,
        "only {} / {} lines to the server, {} / {} to the client",
        conv.server_got.len(),
        conv.total,
        conv.client_got.len(),
        conv.total
    );
    conv.assert_exact();
}

#[test]
fn sessions_build_packets_as_large_as_the_path_carries() {
    let mut sim = Sim::new(1, Link::perfect(), config());
    let mut conv = Conversation::new(2000);
    converse(&mut sim, &mut conv);
    assert_eq!(sim.client.max_datagram_size(), ALLOWED);
    let server = sim.server().expect("the server's session");
    assert_eq!(server.max_datagram_size(), ALLOWED);
    let probes = server.stats().mtu_probes_sent;
    assert!(probes >= 1);
    let large = sim.server_sent.iter().filter(|d| d.len > MAX_DATAGRAM_SIZE);
    let large = large.count() as u64;
    assert!(
        large > probes + 5,
        "the server's data went in large datagrams: {large} large, {probes} probes"
    );
}

#[test]
fn a_smaller_path_is_found_and_costs_no_line() {
    let link = Link {
        mtu: ETHERNET,
        ..Link::faulty(0.05)
    };
    let mut sim = Sim::new(2, link, config());
    let mut conv = Conversation::new(1000);
    converse(&mut sim, &mut conv);
    assert!(sim.too_large > 0, "the largest probes were dropped");
    for (who, size) in [
        ("client", sim.client.max_datagram_size()),
        (
            "server",
            sim.server().expect("its session").max_datagram_size(),
        ),
    ] {
        assert!(size <= ETHERNET, "{who}: {size}");
        // Random loss may take a probe that would have fitted: the search then ends
        // lower, never above what the path carries.
        assert!(size > MAX_DATAGRAM_SIZE, "{who}: still at the base size");
    }
}

#[test]
fn without_a_larger_size_allowed_no_probe_is_sent() {
    let mut sim = Sim::new(3, Link::perfect(), Config::default());
    let mut conv = Conversation::new(300);
    converse(&mut sim, &mut conv);
    assert_eq!(sim.client.stats().mtu_probes_sent, 0);
    assert!(sim.server_sent.iter().all(|d| d.len <= MAX_DATAGRAM_SIZE));
}

#[test]
fn a_path_that_shrinks_sends_the_sessions_back_to_the_base_size_without_losing_a_line() {
    let mut sim = Sim::new(4, Link::perfect(), config());
    let mut conv = Conversation::new(300);
    converse(&mut sim, &mut conv);
    assert_eq!(sim.client.max_datagram_size(), ALLOWED);

    // A tunnel comes up: large datagrams vanish from now on.
    sim.link.mtu = ETHERNET;
    // The same sessions go on with a second conversation's worth of lines.
    let mut more = Conversation::new(600);
    converse(&mut sim, &mut more);
    assert!(sim.too_large > 0);
    assert!(
        sim.client.stats().rto_expirations > 0,
        "the black hole showed as a timeout"
    );
    assert!(sim.client.max_datagram_size() <= ETHERNET);
    assert!(sim.server().expect("its session").max_datagram_size() <= ETHERNET);
}

#[test]
fn timeouts_on_a_lossy_path_that_carries_large_datagrams_keep_them() {
    let mut sim = Sim::new(5, Link::faulty(0.1), config());
    let mut conv = Conversation::new(3000);
    converse(&mut sim, &mut conv);
    let timeouts = sim.client.stats().rto_expirations
        + sim.server().expect("its session").stats().rto_expirations;
    assert!(timeouts > 0, "the loss made some retransmission timer fire");
    assert_eq!(sim.client.max_datagram_size(), ALLOWED);
    assert_eq!(
        sim.server().expect("its session").max_datagram_size(),
        ALLOWED
    );
}
