//! The durability contract: a sender is told its message was taken (the echo, the
//! labeled ACK) only once the store has committed it; everyone else gets it at once;
//! and the replies to a client keep the order of its commands, so that whatever it
//! asks after a message is answered after that message's echo.

mod support;

use natter_hub::{ClientId, Outbox, StoreJob, StoreOutcome, Write};
use support::*;

const ALICE_CAPS: [&str; 3] = ["echo-message", "labeled-response", "batch"];

const STORE_FAILED: &str =
    "FAIL * STORE_FAILED :Your message reached those online but could not be stored; send it again";

/// alice (echo-message, labeled-response) and bob (no capabilities) in #room, with
/// store jobs held back from now on.
fn room() -> (TestHub, ClientId, ClientId) {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &ALICE_CAPS);
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.hold_store = true;
    (t, a, b)
}

/// Tells the hub a held job finished, and returns what it sent.
fn finish(t: &mut TestHub, ticket: u64, outcome: StoreOutcome) -> Outbox {
    let mut out = Outbox::new();
    t.hub.store_done(ticket, outcome, t.now, &mut out);
    out
}

/// The messages a held write job asks the store to keep.
fn written(job: &StoreJob) -> Vec<(String, String, Vec<String>)> {
    match job {
        StoreJob::Write(writes) => writes
            .iter()
            .map(|w| match w {
                Write::Message {
                    message,
                    offline_for,
                } => (
                    message.target().to_owned(),
                    message.text().to_owned(),
                    offline_for.clone(),
                ),
                other => panic!("not a message: {other:?}"),
            })
            .collect(),
        other => panic!("not a write: {other:?}"),
    }
}

#[test]
fn a_room_message_reaches_others_at_once_and_its_echo_after_the_commit() {
    let (mut t, a, b) = room();
    t.send(a, "PRIVMSG #room :hello");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 PRIVMSG #room :hello"]);
    t.assert_silent(a);
    assert_eq!(t.held_jobs.len(), 1);
    assert_eq!(
        written(&t.held_jobs[0].1),
        [("#room".to_owned(), "hello".to_owned(), vec![])]
    );
    t.run_store();
    assert_eq!(t.take(a), [":alice!alice@127.0.0.1 PRIVMSG #room :hello"]);
    t.assert_silent(b);
}

#[test]
fn a_labeled_message_is_acknowledged_after_the_commit() {
    let (mut t, a, b) = room();
    t.send(a, "@label=m1 PRIVMSG #room :hello");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 PRIVMSG #room :hello"]);
    t.assert_silent(a);
    t.run_store();
    assert_eq!(
        t.take(a),
        ["@label=m1 :alice!alice@127.0.0.1 PRIVMSG #room :hello"]
    );
}

#[test]
fn without_echo_message_the_labeled_ack_waits_for_the_commit() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["labeled-response", "batch"]);
    let b = t.connect("bob");
    t.hold_store = true;
    t.send(a, "@label=d1 PRIVMSG bob :psst");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 PRIVMSG bob :psst"]);
    t.assert_silent(a);
    t.run_store();
    assert_eq!(t.take(a), [format!("@label=d1 :{SERVER} ACK")]);
}

#[test]
fn a_dm_reaches_its_recipient_at_once_and_its_echo_after_the_commit() {
    let (mut t, a, b) = room();
    t.send(a, "PRIVMSG bob :psst");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 PRIVMSG bob :psst"]);
    t.assert_silent(a);
    assert_eq!(
        written(&t.held_jobs[0].1),
        [("alice bob".to_owned(), "psst".to_owned(), vec![])]
    );
    t.run_store();
    assert_eq!(t.take(a), [":alice!alice@127.0.0.1 PRIVMSG bob :psst"]);
}

#[test]
fn a_notice_is_kept_like_a_privmsg() {
    let (mut t, a, b) = room();
    t.send(a, "NOTICE #room :heads up");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 NOTICE #room :heads up"]);
    t.assert_silent(a);
    t.run_store();
    assert_eq!(t.take(a), [":alice!alice@127.0.0.1 NOTICE #room :heads up"]);
}

#[test]
fn a_ping_after_a_message_is_answered_after_its_echo() {
    let (mut t, a, _b) = room();
    t.send(a, "PRIVMSG #room :first");
    t.send(a, "PING :second");
    t.assert_silent(a);
    t.run_store();
    assert_eq!(
        t.take(a),
        [
            ":alice!alice@127.0.0.1 PRIVMSG #room :first".to_owned(),
            format!(":{SERVER} PONG {SERVER} :second"),
        ]
    );
}

#[test]
fn replies_wait_for_the_oldest_commit_even_when_a_later_one_finishes_first() {
    let (mut t, a, _b) = room();
    t.send(a, "PRIVMSG #room :one");
    t.send(a, "PRIVMSG #room :two");
    t.send(a, "PING :three");
    let jobs = std::mem::take(&mut t.held_jobs);
    assert_eq!(jobs.len(), 2);
    let second = finish(&mut t, jobs[1].0, StoreOutcome::Written);
    assert_eq!(second.lines_for(a), Vec::<String>::new());
    let first = finish(&mut t, jobs[0].0, StoreOutcome::Written);
    assert_eq!(
        first.lines_for(a),
        [
            ":alice!alice@127.0.0.1 PRIVMSG #room :one".to_owned(),
            ":alice!alice@127.0.0.1 PRIVMSG #room :two".to_owned(),
            format!(":{SERVER} PONG {SERVER} :three"),
        ]
    );
}

#[test]
fn each_echo_goes_out_as_soon_as_its_own_commit_and_those_before_it_are_done() {
    let (mut t, a, _b) = room();
    t.send(a, "PRIVMSG #room :one");
    t.send(a, "PRIVMSG #room :two");
    let jobs = std::mem::take(&mut t.held_jobs);
    let first = finish(&mut t, jobs[0].0, StoreOutcome::Written);
    assert_eq!(
        first.lines_for(a),
        [":alice!alice@127.0.0.1 PRIVMSG #room :one"]
    );
    let second = finish(&mut t, jobs[1].0, StoreOutcome::Written);
    assert_eq!(
        second.lines_for(a),
        [":alice!alice@127.0.0.1 PRIVMSG #room :two"]
    );
}

#[test]
fn a_command_that_stores_nothing_is_answered_at_once_when_nothing_waits() {
    let (mut t, a, _b) = room();
    assert_eq!(
        t.ask(a, "PING :now"),
        [format!(":{SERVER} PONG {SERVER} :now")]
    );
    assert_eq!(
        t.ask(a, "PRIVMSG ghost :hi"),
        [format!(":{SERVER} 401 alice ghost :No such nick/channel")]
    );
    assert!(t.held_jobs.is_empty());
}

#[test]
fn a_refused_message_stores_nothing_and_its_error_is_not_held() {
    let (mut t, a, _b) = room();
    // alice made the room: moderated, and no longer its operator, she may not speak.
    t.hold_store = false;
    t.send(a, "MODE #room +m");
    t.send(a, "MODE #room -o alice");
    t.clear();
    t.hold_store = true;
    assert_eq!(
        t.ask(a, "PRIVMSG #room :hi"),
        [format!(":{SERVER} 404 alice #room :Cannot send to channel")]
    );
    assert!(t.held_jobs.is_empty());
}

#[test]
fn a_tagmsg_is_not_kept_so_its_echo_is_not_held() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["echo-message", "message-tags"]);
    let b = t.connect_with_caps("bob", &["message-tags"]);
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.hold_store = true;
    t.send(a, "@+typing=active TAGMSG #room");
    assert!(t.held_jobs.is_empty());
    let echo = t.take(a);
    assert_eq!(echo.len(), 1, "{echo:#?}");
    assert!(
        untagged(&echo[0]) == ":alice!alice@127.0.0.1 TAGMSG :#room",
        "{echo:#?}"
    );
    assert_eq!(t.take(b).len(), 1);
}

#[test]
fn a_failed_commit_gives_a_fail_instead_of_the_echo_and_keeps_the_order() {
    let (mut t, a, b) = room();
    t.send(a, "PRIVMSG #room :lost");
    t.send(a, "PING :after");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 PRIVMSG #room :lost"]);
    let (ticket, _) = t.held_jobs.remove(0);
    let out = finish(&mut t, ticket, StoreOutcome::Failed("disk full".into()));
    assert_eq!(
        out.lines_for(a),
        [
            format!(":{SERVER} {STORE_FAILED}"),
            format!(":{SERVER} PONG {SERVER} :after"),
        ]
    );
    assert!(out.lines_for(b).is_empty());
}

#[test]
fn a_failed_commit_of_a_labeled_message_answers_the_label() {
    let (mut t, a, _b) = room();
    t.send(a, "@label=x1 PRIVMSG #room :lost");
    let (ticket, _) = t.held_jobs.remove(0);
    let out = finish(&mut t, ticket, StoreOutcome::Failed("disk full".into()));
    assert_eq!(
        out.lines_for(a),
        [format!("@label=x1 :{SERVER} {STORE_FAILED}")]
    );
}

#[test]
fn a_failed_commit_without_echo_message_still_tells_the_sender() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.hold_store = true;
    t.send(a, "PRIVMSG bob :lost");
    t.send(a, "PING :after");
    t.take(b);
    t.assert_silent(a);
    let (ticket, _) = t.held_jobs.remove(0);
    let out = finish(&mut t, ticket, StoreOutcome::Failed("disk full".into()));
    assert_eq!(
        out.lines_for(a),
        [
            format!(":{SERVER} {STORE_FAILED}"),
            format!(":{SERVER} PONG {SERVER} :after"),
        ]
    );
}

#[test]
fn what_is_stored_is_what_was_delivered() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["echo-message", "message-tags", "server-time"]);
    let b = t.connect_with_caps("bob", &["message-tags", "server-time"]);
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.advance_secs(5);
    t.send(a, "@+draft/reply=abc PRIVMSG #Room :hello there");
    let seen = t.take(b);
    let echo = t.take(a);
    assert_eq!(seen, echo);
    let msgid = tag(&seen[0], "msgid").expect("a msgid");
    let stored = natter_store::Store::history(
        &mut t.store,
        "#room",
        &natter_hub::HistoryQuery::Latest {
            after: natter_hub::Selector::Unbounded,
            limit: 10,
        },
    )
    .unwrap();
    let seq = natter_store::Seq::from_msgid(&msgid).expect("a msgid the store numbers by");
    assert_eq!(seq.time_ms(), (START_UNIX as i64 + 5) * 1000);
    assert_eq!(
        stored,
        [natter_hub::StoredMessage::new(
            seq,
            natter_hub::MessageParts {
                msgid: Some(&msgid),
                target: "#room",
                command: "PRIVMSG",
                source: "alice!alice@127.0.0.1",
                account: None,
                recipient: "#Room",
                text: "hello there",
                client_tags: "+draft/reply=abc",
            }
        )]
    );
    assert_eq!(
        tag(&seen[0], "time").as_deref(),
        Some("2023-11-14T22:13:25.000Z")
    );
}

#[test]
fn one_message_to_several_targets_is_one_commit() {
    let (mut t, a, b) = room();
    let c = t.connect("carol");
    t.clear();
    t.send(a, "PRIVMSG #room,carol :both");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 PRIVMSG #room :both"]);
    assert_eq!(t.take(c), [":alice!alice@127.0.0.1 PRIVMSG carol :both"]);
    t.assert_silent(a);
    assert_eq!(t.held_jobs.len(), 1);
    assert_eq!(
        written(&t.held_jobs[0].1),
        [
            ("#room".to_owned(), "both".to_owned(), vec![]),
            ("alice carol".to_owned(), "both".to_owned(), vec![]),
        ]
    );
    t.run_store();
    assert_eq!(
        t.take(a),
        [
            ":alice!alice@127.0.0.1 PRIVMSG #room :both",
            ":alice!alice@127.0.0.1 PRIVMSG carol :both",
        ]
    );
}

#[test]
fn others_keep_talking_to_a_client_whose_echo_waits() {
    let (mut t, a, b) = room();
    t.send(a, "PRIVMSG #room :mine");
    t.send(b, "PRIVMSG #room :theirs");
    // Delivery to alice does not wait for alice's own commit.
    assert_eq!(t.take(a), [":bob!bob@127.0.0.1 PRIVMSG #room :theirs"]);
    t.run_store();
    assert_eq!(t.take(a), [":alice!alice@127.0.0.1 PRIVMSG #room :mine"]);
}

#[test]
fn a_history_query_after_a_message_is_answered_after_its_echo_and_holds_it() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["echo-message", "batch", "draft/chathistory"]);
    t.join(a, "#room");
    t.hold_store = true;
    t.send(a, "PRIVMSG #room :remember me");
    t.send(a, "CHATHISTORY LATEST #room * 10");
    t.assert_silent(a);
    // The write runs before the query: the query sees it.
    t.run_store();
    let lines = t.take(a);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[0],
        ":alice!alice@127.0.0.1 PRIVMSG #room :remember me"
    );
    assert!(
        lines[1].starts_with(&format!(":{SERVER} BATCH +")),
        "{lines:#?}"
    );
    assert!(
        lines[2].ends_with(":alice!alice@127.0.0.1 PRIVMSG #room :remember me"),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with(&format!(":{SERVER} BATCH :-")),
        "{lines:#?}"
    );
}

#[test]
fn a_dm_to_an_offline_account_is_written_to_its_queue_in_the_same_commit() {
    let mut t = TestHub::new();
    t.hub.load_accounts(vec![natter_store::Account {
        name: "bob".into(),
        display_name: "Bob".into(),
        password_hash: "fake$pw".into(),
        created_ms: 0,
    }]);
    let a = t.connect_with_caps("alice", &ALICE_CAPS);
    t.hold_store = true;
    t.send(a, "PRIVMSG Bob :are you there?");
    t.assert_silent(a);
    assert_eq!(
        written(&t.held_jobs[0].1),
        [(
            "alice bob".to_owned(),
            "are you there?".to_owned(),
            vec!["bob".to_owned()]
        )]
    );
    t.run_store();
    assert_eq!(
        t.take(a),
        [":alice!alice@127.0.0.1 PRIVMSG Bob :are you there?"]
    );
}

/// The lines of one batch of events, handed to the hub the way the server does: every
/// line, then the end of the batch.
fn one_batch(t: &mut TestHub, lines: &[(ClientId, &str)]) -> Outbox {
    let mut out = Outbox::new();
    for (id, raw) in lines {
        t.hub.line(*id, parse(raw), t.now, &mut out);
    }
    t.hub.end_batch(&mut out);
    out
}

/// The store jobs a batch asked for, in order.
fn store_jobs(out: &mut Outbox) -> Vec<(u64, StoreJob)> {
    std::mem::take(&mut out.effects)
        .into_iter()
        .filter_map(|e| match e {
            natter_hub::Effect::Store { ticket, job } => Some((ticket, job)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_writes_of_one_batch_are_one_commit_and_each_sender_hears_after_it() {
    let (mut t, a, b) = room();
    let c = t.connect_with_caps("carol", &ALICE_CAPS);
    t.join(c, "#room");
    t.clear();
    let mut out = one_batch(
        &mut t,
        &[
            (a, "PRIVMSG #room :one"),
            (c, "PRIVMSG #room :two"),
            (a, "PRIVMSG #room :three"),
        ],
    );
    let jobs = store_jobs(&mut out);
    assert_eq!(jobs.len(), 1, "one job for the batch: {jobs:?}");
    let kept: Vec<String> = written(&jobs[0].1).into_iter().map(|w| w.1).collect();
    assert_eq!(kept, ["one", "two", "three"]);
    let texts = |lines: Vec<String>| -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                untagged(l)
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    // Everyone hears the others at once; no sender hears its own message yet.
    assert_eq!(texts(out.lines_for(b)), ["one", "two", "three"]);
    assert_eq!(texts(out.lines_for(a)), ["two"]);
    assert_eq!(texts(out.lines_for(c)), ["one", "three"]);
    let out = finish(&mut t, jobs[0].0, StoreOutcome::Written);
    assert_eq!(texts(out.lines_for(a)), ["one", "three"]);
    assert_eq!(texts(out.lines_for(c)), ["two"]);
    assert!(out.lines_for(b).is_empty());
}

#[test]
fn a_failed_batch_fails_every_message_in_it_once() {
    let (mut t, a, b) = room();
    let mut out = one_batch(
        &mut t,
        &[
            (a, "PRIVMSG #room :one"),
            (b, "PRIVMSG #room :two"),
            (a, "PRIVMSG #room :three"),
        ],
    );
    let jobs = store_jobs(&mut out);
    assert_eq!(jobs.len(), 1);
    let out = finish(&mut t, jobs[0].0, StoreOutcome::Failed("disk full".into()));
    let fails = |lines: Vec<String>| {
        lines
            .iter()
            .filter(|l| untagged(l).ends_with(STORE_FAILED))
            .count()
    };
    assert_eq!(fails(out.lines_for(a)), 2, "{:?}", out.lines_for(a));
    assert_eq!(fails(out.lines_for(b)), 1, "{:?}", out.lines_for(b));
}

/// A client without echo-message that pipelines messages gets no reply to them, but
/// what it sends next still waits for their commit; if the commit fails, each message
/// gets its own FAIL, before the reply to what followed.
#[test]
fn messages_without_replies_in_one_batch_each_fail_and_keep_what_follows_behind() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.clear();
    let mut out = one_batch(
        &mut t,
        &[
            (a, "PRIVMSG bob :one"),
            (a, "PRIVMSG bob :two"),
            (a, "PRIVMSG bob :three"),
            (a, "PING :after"),
        ],
    );
    assert_eq!(
        out.lines_for(b),
        [
            ":alice!alice@127.0.0.1 PRIVMSG bob :one",
            ":alice!alice@127.0.0.1 PRIVMSG bob :two",
            ":alice!alice@127.0.0.1 PRIVMSG bob :three",
        ]
    );
    assert!(out.lines_for(a).is_empty(), "the PONG waits for the commit");
    let jobs = store_jobs(&mut out);
    assert_eq!(jobs.len(), 1);
    let out = finish(&mut t, jobs[0].0, StoreOutcome::Failed("disk full".into()));
    assert_eq!(
        out.lines_for(a),
        [
            format!(":{SERVER} {STORE_FAILED}"),
            format!(":{SERVER} {STORE_FAILED}"),
            format!(":{SERVER} {STORE_FAILED}"),
            format!(":{SERVER} PONG {SERVER} :after"),
        ]
    );

    // The next batch's messages wait on their own commit, not the failed one's.
    let mut out = one_batch(&mut t, &[(a, "PRIVMSG bob :four"), (a, "PING :later")]);
    let jobs = store_jobs(&mut out);
    let out = finish(&mut t, jobs[0].0, StoreOutcome::Written);
    assert_eq!(
        out.lines_for(a),
        [format!(":{SERVER} PONG {SERVER} :later")]
    );
}

#[test]
fn a_history_query_after_a_message_in_the_same_batch_is_asked_after_its_commit() {
    let (mut t, a, _b) = room();
    let mut out = one_batch(
        &mut t,
        &[
            (a, "PRIVMSG #room :hello"),
            (a, "CHATHISTORY LATEST #room * 10"),
        ],
    );
    let jobs = store_jobs(&mut out);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(matches!(jobs[0].1, StoreJob::Write(_)), "{jobs:?}");
    assert!(matches!(jobs[1].1, StoreJob::History { .. }), "{jobs:?}");
    assert!(
        jobs[0].0 < jobs[1].0,
        "tickets in the order the jobs are asked"
    );
}
