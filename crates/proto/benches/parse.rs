//! The parser and serializer on the lines a chat server sees most.
//!
//! `cargo bench -p natter-proto`; throughput in bytes of line.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use natter_proto::{LineWriter, Message};

const LINES: &[(&str, &str)] = &[
    ("privmsg from a client", "PRIVMSG #natter :hello everyone, how is the benchmark going today?"),
    (
        "privmsg with prefix",
        ":alice!alice@127.0.0.1 PRIVMSG #natter :hello everyone, how is the benchmark going today?",
    ),
    (
        "privmsg with tags",
        "@time=2024-05-01T12:00:00.000Z;msgid=AbCdEf123;account=alice :alice!alice@127.0.0.1 PRIVMSG #natter :hello everyone",
    ),
    ("numeric", ":natter.local 353 alice = #natter :alice bob carol dave erin frank"),
    ("ping", "PING :natter.local"),
];

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, line) in LINES {
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| Message::parse(black_box(line.as_bytes())).expect("parses"))
        });
    }
    group.finish();
}

fn serialize(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialize");
    for (name, line) in LINES {
        let msg = Message::parse(line.as_bytes()).expect("parses");
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(format!("{name}, to_line"), |b| {
            b.iter(|| black_box(&msg).to_line())
        });
    }
    let text = "hello everyone, how is the benchmark going today?";
    group.throughput(Throughput::Elements(1));
    group.bench_function("privmsg with tags, LineWriter", |b| {
        b.iter(|| {
            let mut w = LineWriter::new();
            w.tag("time", "2024-05-01T12:00:00.000Z")
                .tag("msgid", "AbCdEf123")
                .start(Some("alice!alice@127.0.0.1"), "PRIVMSG")
                .param("#natter")
                .param(black_box(text));
            w.finish()
        })
    });
    group.finish();
}

criterion_group!(benches, parse, serialize);
criterion_main!(benches);
