//! Many seeds at 30% loss: run with `cargo test --release -p natter-udp --test soak --
//! --ignored --nocapture` when touching the state machine. Ignored by default: the
//! lossy_link tests cover a few seeds of each rate on every run.

mod sim;

use natter_udp::Config;
use sim::{Conversation, Link, Sim};

#[test]
#[ignore]
fn handshakes_and_conversations_over_many_seeds_at_thirty_percent_loss() {
    let mut handshake_failures = Vec::new();
    for seed in 0..1000 {
        let mut sim = Sim::new(seed, Link::faulty(0.3), Config::default());
        let ok = sim.run_until(10_000, |s| s.client.is_established());
        sim.run_until(200, |_| false);
        if !ok || sim.sessions.len() != 1 {
            handshake_failures.push(seed);
        }
    }
    eprintln!("handshake failures: {handshake_failures:?} of 1000");
    // 30% loss each way fails a round trip half the time; ten tries in 30 s still
    // leave a fraction of a percent of clients to retry.
    assert!(handshake_failures.len() <= 5);
    for seed in 0..100 {
        let mut sim = Sim::new(seed, Link::faulty(0.3), Config::default());
        converse_1000_lines(&mut sim, seed);
    }
}

/// The same conversations with path MTU discovery searching a path that carries 1472
/// bytes of the 8952 allowed: probes lost to the path and to the loss alike, and
/// sessions that fall back, must cost no line.
#[test]
#[ignore]
fn conversations_with_path_mtu_discovery_over_many_seeds_at_thirty_percent_loss() {
    let config = Config {
        max_datagram_size: 8952,
        ..Config::default()
    };
    for seed in 0..100 {
        let link = Link {
            mtu: 1472,
            ..Link::faulty(0.3)
        };
        let mut sim = Sim::new(seed, link, config.clone());
        converse_1000_lines(&mut sim, seed);
        assert!(sim.client.max_datagram_size() <= 1472, "seed {seed}");
    }
}

/// Exchanges 1000 lines each way, every one arrived once and in order.
fn converse_1000_lines(sim: &mut Sim, seed: u64) {
    let mut conv = Conversation::new(1000);
    let ok = sim.run_until(500_000, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(ok, "seed {seed}");
    conv.assert_exact();
}
