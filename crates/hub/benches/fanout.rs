//! The hub's routing of one room message to 1000 members, and of one direct message:
//! the work behind the fan-out and direct-message benchmarks, with no sockets.
//!
//! The hub stores each room message before it acknowledges it, so the benchmark plays
//! the store: every `Effect::Store` is answered with `StoreOutcome::Written` at once,
//! and the outbox is emptied after each message, as the server does.
//!
//! `cargo bench -p natter-hub`; throughput in deliveries, and in messages.

use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use natter_hub::{
    ClientId, ClientInfo, Effect, Hub, HubConfig, Now, Outbox, StoreOutcome, Transport,
};
use natter_proto::Message;

const MEMBERS: u64 = 1000;

struct Bench {
    hub: Hub,
    now: Now,
    out: Outbox,
}

impl Bench {
    fn new() -> Bench {
        let now = Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        };
        let mut b = Bench {
            hub: Hub::new(HubConfig::default(), now),
            now,
            out: Outbox::new(),
        };
        for id in 1..=MEMBERS {
            let info = ClientInfo {
                host: "127.0.0.1".into(),
                transport: Transport::Tcp,
            };
            b.hub.connect(ClientId(id), info, b.now, &mut b.out);
            b.line(id, &format!("NICK m{id}"));
            b.line(id, &format!("USER m{id} 0 * :member {id}"));
            b.line(id, "JOIN #room");
        }
        b.settle();
        b
    }

    fn line(&mut self, id: u64, text: &str) {
        let msg = Message::parse(text.as_bytes()).expect("a valid line");
        self.hub.line(ClientId(id), msg, self.now, &mut self.out);
        self.settle();
    }

    /// Answers store jobs as a store that commits at once, and drops the deliveries.
    fn settle(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            delivered += self.out.deliveries.len();
            let effects = std::mem::take(&mut self.out.effects);
            self.out.deliveries.clear();
            let mut more = false;
            for effect in effects {
                if let Effect::Store { ticket, .. } = effect {
                    self.hub
                        .store_done(ticket, StoreOutcome::Written, self.now, &mut self.out);
                    more = true;
                }
            }
            if !more {
                return delivered;
            }
        }
    }
}

fn route_to_room(c: &mut Criterion) {
    let mut b = Bench::new();
    let msg = Message::parse(b"PRIVMSG #room :hello everyone, a line of about sixty-four bytes!")
        .expect("a valid line");
    // Check the setup: one message reaches every other member.
    b.hub.line(ClientId(1), msg.clone(), b.now, &mut b.out);
    let delivered = b.settle();
    assert!(
        delivered >= (MEMBERS - 1) as usize,
        "one message reached {delivered} members, not {}",
        MEMBERS - 1
    );
    bench_line(c, "PRIVMSG to a room of 1000", MEMBERS - 1, &mut b, &msg);
    // Time moves on between runs, as it does on a server.
    b.now = b.now.after(Duration::from_secs(1));
}

/// A direct message from one member to another: the work behind every message of the
/// direct-message benchmark (routing, the stored message, the reply parked behind
/// its commit), with the store played as above.
fn route_to_nick(c: &mut Criterion) {
    let mut b = Bench::new();
    let msg = Message::parse(b"PRIVMSG m2 :hello there, a direct line of about sixty-four bytes")
        .expect("a valid line");
    b.hub.line(ClientId(1), msg.clone(), b.now, &mut b.out);
    assert_eq!(b.settle(), 1, "one message reaches its one recipient");
    bench_line(c, "PRIVMSG to a nick", 1, &mut b, &msg);
}

/// Measures member 1 sending `msg` again and again, `deliveries` lines delivered each
/// time, the store played as above.
fn bench_line(c: &mut Criterion, name: &str, deliveries: u64, b: &mut Bench, msg: &Message) {
    let mut group = c.benchmark_group("hub");
    group.throughput(Throughput::Elements(deliveries));
    group.bench_function(name, |bench| {
        bench.iter_batched(
            || msg.clone(),
            |m| {
                b.hub.line(ClientId(1), m, b.now, &mut b.out);
                b.settle()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, route_to_room, route_to_nick);
criterion_main!(benches);
