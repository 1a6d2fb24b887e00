//! 1000 lines each way over a link that loses, duplicates, reorders and delays datagrams
//! arrive exactly once, in order, within a bounded number of simulated steps.

mod sim;

use std::time::Duration;

use natter_udp::Config;
use sim::{Conversation, Link, Sim};

fn converse(seed: u64, link: Link, lines: usize, max_steps: u64) -> (Sim, Conversation) {
    let mut sim = Sim::new(seed, link, Config::default());
    let mut conv = Conversation::new(lines);
    let done = sim.run_until(max_steps, |s| {
        conv.pump(s);
        conv.complete()
    });
    assert!(
        done,
        "seed {seed}: only {} / {} lines to the server, {} / {} to the client after {} steps ({:?} simulated)",
        conv.server_got.len(),
        lines,
        conv.client_got.len(),
        lines,
        sim.steps,
        sim.elapsed()
    );
    conv.assert_exact();
    eprintln!(
        "seed {seed} loss {}: {} steps, {:?} simulated, client {:?}, srtt {:?} rto {:?} window {}",
        link.loss,
        sim.steps,
        sim.elapsed(),
        sim.client.stats(),
        sim.client.rtt().srtt(),
        sim.client.rtt().rto(),
        sim.client.window()
    );
    (sim, conv)
}

#[test]
fn a_thousand_lines_each_way_over_a_perfect_link() {
    let (sim, _) = converse(1, Link::perfect(), 1000, 20_000);
    let s = sim.client.stats();
    assert_eq!(s.packets_lost, 0);
    assert_eq!(s.bytes_retransmitted, 0);
    assert!(
        sim.elapsed() < Duration::from_secs(10),
        "{:?}",
        sim.elapsed()
    );
}

#[test]
fn a_thousand_lines_each_way_at_zero_loss_with_duplication_and_reordering() {
    for seed in 10..16 {
        let (sim, _) = converse(seed, Link::faulty(0.0), 1000, 50_000);
        assert!(
            sim.client.stats().duplicates > 0
                || sim.sessions.values().any(|s| s.stats().duplicates > 0)
        );
    }
}

#[test]
fn a_thousand_lines_each_way_at_ten_percent_loss() {
    for seed in 20..26 {
        let (sim, _) = converse(seed, Link::faulty(0.10), 1000, 200_000);
        assert!(
            sim.client.stats().packets_lost > 0,
            "seed {seed}: loss must have happened"
        );
        assert!(
            sim.elapsed() < Duration::from_secs(600),
            "seed {seed}: {:?}",
            sim.elapsed()
        );
    }
}

#[test]
fn a_thousand_lines_each_way_at_thirty_percent_loss() {
    for seed in 30..36 {
        let (sim, _) = converse(seed, Link::faulty(0.30), 1000, 500_000);
        assert!(sim.client.stats().bytes_retransmitted > 0);
        assert!(
            sim.elapsed() < Duration::from_secs(1800),
            "seed {seed}: {:?}",
            sim.elapsed()
        );
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let (a, _) = converse(7, Link::faulty(0.2), 200, 200_000);
    let (b, _) = converse(7, Link::faulty(0.2), 200, 200_000);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.elapsed(), b.elapsed());
    assert_eq!(a.client.stats(), b.client.stats());
}
