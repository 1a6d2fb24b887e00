//! draft/read-marker: MARKREAD keeps the clients of one account agreed on how far
//! each conversation has been read. Markers only move forward, survive restarts
//! (they are stored), and are told to a client when it joins a room.

mod support;

use base64::Engine;
use natter_hub::{ClientId, Write};
use natter_store::Store;
use support::*;

const CAP: &str = "draft/read-marker";

/// The `server-time` of the fake clock `secs` seconds after the start.
fn ts(secs: u64) -> String {
    assert!(secs < 40);
    format!("2023-11-14T22:13:{:02}.000Z", 20 + secs)
}

fn ms(secs: u64) -> i64 {
    (START_UNIX + secs) as i64 * 1000
}

fn marker(target: &str, secs: u64) -> String {
    format!(":{SERVER} MARKREAD {target} :timestamp={}", ts(secs))
}

fn no_marker(target: &str) -> String {
    format!(":{SERVER} MARKREAD {target} :*")
}

fn account(t: &mut TestHub, name: &str) {
    t.hub.load_accounts(vec![natter_store::Account {
        name: name.into(),
        display_name: name.into(),
        password_hash: format!("{FAKE_HASH_PREFIX}pw"),
        created_ms: 0,
    }]);
}

/// Connects `nick` logged in to `account` with SASL, asking for `caps` too.
fn connect_sasl(t: &mut TestHub, nick: &str, account: &str, caps: &[&str]) -> ClientId {
    let c = t.open();
    t.send(c, "CAP LS 302");
    let mut wanted = vec!["sasl"];
    wanted.extend_from_slice(caps);
    t.send(c, &format!("CAP REQ :{}", wanted.join(" ")));
    t.send(c, &format!("NICK {nick}"));
    t.send(c, &format!("USER {nick} 0 * :Real {nick}"));
    t.send(c, "AUTHENTICATE PLAIN");
    let response = base64::engine::general_purpose::STANDARD.encode(format!("\0{account}\0pw"));
    t.send(c, &format!("AUTHENTICATE {response}"));
    t.send(c, "CAP END");
    let lines = t.take(c);
    assert!(
        lines.iter().any(|l| numeric_of(l) == Some("903")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| numeric_of(l) == Some("001")),
        "{lines:#?}"
    );
    c
}

/// alice logged in three times: laptop and phone with the capability, an old
/// client without it.
fn alice_thrice() -> (TestHub, ClientId, ClientId, ClientId) {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let laptop = connect_sasl(&mut t, "alice", "alice", &[CAP]);
    let phone = connect_sasl(&mut t, "alice_phone", "alice", &[CAP]);
    let old = connect_sasl(&mut t, "alice_old", "alice", &[]);
    (t, laptop, phone, old)
}

#[test]
fn setting_a_marker_answers_and_tells_the_accounts_other_clients_with_the_cap() {
    let (mut t, laptop, phone, old) = alice_thrice();
    assert_eq!(
        t.ask(laptop, &format!("MARKREAD #room timestamp={}", ts(5))),
        [marker("#room", 5)]
    );
    assert_eq!(t.take(phone), [marker("#room", 5)]);
    t.assert_silent(old);
    // A client without the capability may still ask.
    assert_eq!(t.ask(old, "MARKREAD #room"), [marker("#room", 5)]);
    assert_eq!(t.ask(phone, "MARKREAD #ROOM"), [marker("#ROOM", 5)]);
    // It is kept.
    assert_eq!(t.store.read_marker("alice", "#room").unwrap(), Some(ms(5)));
}

#[test]
fn getting_a_marker_never_set_is_a_star() {
    let (mut t, laptop, _phone, _old) = alice_thrice();
    assert_eq!(t.ask(laptop, "MARKREAD #room"), [no_marker("#room")]);
}

#[test]
fn markers_only_move_forward() {
    let (mut t, laptop, phone, _old) = alice_thrice();
    t.send(laptop, &format!("MARKREAD #room timestamp={}", ts(5)));
    t.clear();
    // Older, or the same: the client is told the newer one, and no one else hears.
    assert_eq!(
        t.ask(phone, &format!("MARKREAD #room timestamp={}", ts(3))),
        [marker("#room", 5)]
    );
    t.assert_silent(laptop);
    assert_eq!(
        t.ask(phone, &format!("MARKREAD #room timestamp={}", ts(5))),
        [marker("#room", 5)]
    );
    t.assert_silent(laptop);
    assert_eq!(t.store.read_marker("alice", "#room").unwrap(), Some(ms(5)));
    // Newer moves it.
    assert_eq!(
        t.ask(phone, &format!("MARKREAD #room timestamp={}", ts(7))),
        [marker("#room", 7)]
    );
    assert_eq!(t.take(laptop), [marker("#room", 7)]);
    assert_eq!(t.store.read_marker("alice", "#room").unwrap(), Some(ms(7)));
}

#[test]
fn markers_are_per_conversation_and_per_account() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    account(&mut t, "bob");
    let a = connect_sasl(&mut t, "alice", "alice", &[CAP]);
    let b = connect_sasl(&mut t, "bob", "bob", &[CAP]);
    t.send(a, &format!("MARKREAD #room timestamp={}", ts(5)));
    t.send(a, &format!("MARKREAD bob timestamp={}", ts(6)));
    t.clear();
    assert_eq!(t.ask(a, "MARKREAD #other"), [no_marker("#other")]);
    assert_eq!(t.ask(a, "MARKREAD Bob"), [marker("Bob", 6)]);
    // bob reads on his own.
    assert_eq!(t.ask(b, "MARKREAD #room"), [no_marker("#room")]);
    assert_eq!(t.ask(b, "MARKREAD alice"), [no_marker("alice")]);
}

#[test]
fn a_client_without_an_account_has_no_markers() {
    let mut t = TestHub::new();
    let c = t.connect_with_caps("carol", &[CAP]);
    assert_eq!(t.ask(c, "MARKREAD #room"), [no_marker("#room")]);
    assert_eq!(
        t.ask(c, &format!("MARKREAD #room timestamp={}", ts(5))),
        [no_marker("#room")]
    );
}

#[test]
fn malformed_requests_fail() {
    let (mut t, laptop, _phone, _old) = alice_thrice();
    assert_eq!(
        t.ask(laptop, "MARKREAD"),
        [format!(
            ":{SERVER} FAIL MARKREAD NEED_MORE_PARAMS :Missing target"
        )]
    );
    let invalid = format!(
        ":{SERVER} FAIL MARKREAD INVALID_PARAMS #room :Give timestamp=YYYY-MM-DDThh:mm:ss.sssZ"
    );
    for request in [
        "MARKREAD #room yesterday",
        "MARKREAD #room *",
        "MARKREAD #room timestamp=notatime",
    ] {
        assert_eq!(t.ask(laptop, request), [invalid.as_str()], "{request}");
    }
}

#[test]
fn a_new_marker_is_confirmed_once_it_is_stored() {
    let (mut t, laptop, phone, _old) = alice_thrice();
    t.send(laptop, &format!("MARKREAD #room timestamp={}", ts(2)));
    t.clear();
    t.hold_store = true;
    t.send(laptop, &format!("MARKREAD #room timestamp={}", ts(5)));
    t.send(laptop, "PING :after");
    t.assert_silent(laptop);
    // The account's other clients are told at once.
    assert_eq!(t.take(phone), [marker("#room", 5)]);
    t.run_store();
    assert_eq!(
        t.take(laptop),
        [
            marker("#room", 5),
            format!(":{SERVER} PONG {SERVER} :after")
        ]
    );
    assert_eq!(t.store.read_marker("alice", "#room").unwrap(), Some(ms(5)));
}

#[test]
fn the_first_marker_waits_for_the_stored_one_then_for_its_commit() {
    let (mut t, laptop, phone, _old) = alice_thrice();
    t.hold_store = true;
    t.send(laptop, &format!("MARKREAD #room timestamp={}", ts(5)));
    t.send(laptop, "PING :after");
    t.assert_silent(laptop);
    t.assert_silent(phone);
    assert_eq!(t.held_jobs.len(), 1);
    // The read: the marker moves, the phone hears of it, the commit is asked for.
    let (ticket, job) = t.held_jobs.remove(0);
    assert!(
        matches!(job, natter_hub::StoreJob::ReadMarker { .. }),
        "{job:?}"
    );
    let mut out = natter_hub::Outbox::new();
    t.hub.store_done(
        ticket,
        natter_hub::StoreOutcome::Marker(None),
        t.now,
        &mut out,
    );
    t.hub.end_batch(&mut out);
    assert!(out.lines_for(laptop).is_empty());
    assert_eq!(out.lines_for(phone), [marker("#room", 5)]);
    t.held_jobs.extend(out.effects.into_iter().map(|e| match e {
        natter_hub::Effect::Store { ticket, job } => (ticket, job),
        other => panic!("{other:?}"),
    }));
    t.run_store();
    assert_eq!(
        t.take(laptop),
        [
            marker("#room", 5),
            format!(":{SERVER} PONG {SERVER} :after")
        ]
    );
    assert_eq!(t.store.read_marker("alice", "#room").unwrap(), Some(ms(5)));
}

#[test]
fn markers_are_read_from_the_store_when_not_in_memory() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    t.store
        .write(&[Write::ReadMarker {
            account: "alice".into(),
            target: "#room".into(),
            time_ms: ms(8),
        }])
        .unwrap();
    let a = connect_sasl(&mut t, "alice", "alice", &[CAP]);
    assert_eq!(t.ask(a, "MARKREAD #Room"), [marker("#Room", 8)]);
}

#[test]
fn an_older_marker_than_the_stored_one_is_answered_with_the_stored_one() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    // Kept before a restart: the hub has never seen it.
    t.store
        .write(&[Write::ReadMarker {
            account: "alice".into(),
            target: "#room".into(),
            time_ms: ms(8),
        }])
        .unwrap();
    let a = connect_sasl(&mut t, "alice", "alice", &[CAP]);
    let phone = connect_sasl(&mut t, "alice_phone", "alice", &[CAP]);
    assert_eq!(
        t.ask(a, &format!("MARKREAD #room timestamp={}", ts(3))),
        [marker("#room", 8)]
    );
    t.assert_silent(phone);
    assert_eq!(t.ask(a, "MARKREAD #room"), [marker("#room", 8)]);
    // A newer one still moves it.
    assert_eq!(
        t.ask(a, &format!("MARKREAD #room timestamp={}", ts(9))),
        [marker("#room", 9)]
    );
    assert_eq!(t.take(phone), [marker("#room", 9)]);
    assert_eq!(t.store.read_marker("alice", "#room").unwrap(), Some(ms(9)));
}

#[test]
fn lines_sent_while_a_marker_is_read_from_the_store_wait_their_turn() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let a = connect_sasl(&mut t, "alice", "alice", &[CAP]);
    t.hold_store = true;
    t.send(a, "MARKREAD #room");
    t.send(a, "PING :after");
    t.assert_silent(a);
    t.run_store();
    assert_eq!(
        t.take(a),
        [
            no_marker("#room"),
            format!(":{SERVER} PONG {SERVER} :after")
        ]
    );
}

// ---- on JOIN ---------------------------------------------------------------------------

#[test]
fn joining_tells_a_read_marker_client_its_marker() {
    let (mut t, laptop, phone, old) = alice_thrice();
    t.send(laptop, &format!("MARKREAD #room timestamp={}", ts(5)));
    t.clear();
    let lines = t.ask(phone, "JOIN #Room");
    let markers: Vec<&String> = lines.iter().filter(|l| l.contains(" MARKREAD ")).collect();
    assert_eq!(markers, [&marker("#Room", 5)], "{lines:#?}");
    // Without the capability: no MARKREAD.
    let lines = t.ask(old, "JOIN #room");
    assert!(
        !lines.iter().any(|l| l.contains(" MARKREAD ")),
        "{lines:#?}"
    );
}

#[test]
fn joining_without_a_marker_or_an_account_is_a_star() {
    let (mut t, laptop, _phone, _old) = alice_thrice();
    let lines = t.ask(laptop, "JOIN #room");
    let markers: Vec<&String> = lines.iter().filter(|l| l.contains(" MARKREAD ")).collect();
    assert_eq!(markers, [&no_marker("#room")], "{lines:#?}");
    let c = t.connect_with_caps("carol", &[CAP]);
    let lines = t.ask(c, "JOIN #room");
    let markers: Vec<&String> = lines.iter().filter(|l| l.contains(" MARKREAD ")).collect();
    assert_eq!(markers, [&no_marker("#room")], "{lines:#?}");
}

#[test]
fn joining_reads_the_marker_from_the_store_after_a_restart() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    t.store
        .write(&[Write::ReadMarker {
            account: "alice".into(),
            target: "#room".into(),
            time_ms: ms(4),
        }])
        .unwrap();
    let a = connect_sasl(&mut t, "alice", "alice", &[CAP]);
    let lines = t.ask(a, "JOIN #room");
    let markers: Vec<&String> = lines.iter().filter(|l| l.contains(" MARKREAD ")).collect();
    assert_eq!(markers, [&marker("#room", 4)], "{lines:#?}");
}

#[test]
fn the_marker_on_join_comes_before_the_end_of_names() {
    let (mut t, laptop, phone, _old) = alice_thrice();
    t.send(laptop, &format!("MARKREAD #room timestamp={}", ts(5)));
    t.clear();
    let lines = t.ask(phone, "JOIN #room");
    let at_marker = lines.iter().position(|l| l.contains(" MARKREAD ")).unwrap();
    let at_end = lines
        .iter()
        .position(|l| numeric_of(l) == Some("366"))
        .unwrap();
    assert!(at_marker < at_end, "{lines:#?}");
}
