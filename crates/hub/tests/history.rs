//! History: CHATHISTORY (draft/chathistory) replays stored messages exactly as they
//! were relayed, in a `chathistory` batch; and a DM to a registered account with no
//! client connected waits for its next login, to be delivered once.

mod support;

use base64::Engine;
use natter_hub::ClientId;
use support::*;

const CAPS: [&str; 4] = ["batch", "server-time", "message-tags", "draft/chathistory"];

/// The `server-time` of the fake clock `secs` seconds after the start.
fn ts(secs: u64) -> String {
    assert!(secs < 40);
    format!("2023-11-14T22:13:{:02}.000Z", 20 + secs)
}

/// Checks `lines` are exactly one `chathistory` batch for `target` and returns the
/// lines inside it without their batch tag.
fn unbatch(lines: &[String], target: &str) -> Vec<String> {
    unbatch_type(lines, &["chathistory", target])
}

fn unbatch_type(lines: &[String], kind: &[&str]) -> Vec<String> {
    assert!(lines.len() >= 2, "{lines:#?}");
    let start = parse(&lines[0]);
    assert_eq!(start.source.as_deref(), Some(SERVER), "{}", lines[0]);
    assert_eq!(start.command, "BATCH", "{lines:#?}");
    assert_eq!(start.params.strs()[1..], *kind, "{}", lines[0]);
    let reference = start.params[0]
        .strip_prefix('+')
        .expect("a batch start is +ref")
        .to_owned();
    let end = parse(lines.last().unwrap());
    assert_eq!(end.command, "BATCH");
    assert_eq!(end.params, [format!("-{reference}")]);
    assert!(end.tags.is_empty(), "{lines:#?}");
    lines[1..lines.len() - 1]
        .iter()
        .map(|line| {
            let msg = parse(line);
            let batches = msg.tags.iter().filter(|t| t.key == "batch").count();
            assert_eq!(batches, 1, "one batch tag: {line}");
            assert_eq!(msg.tag("batch"), Some(reference.as_str()), "{line}");
            let tag = format!("batch={reference}");
            let rest = line.strip_prefix('@').unwrap();
            let (tags, body) = rest.split_once(' ').unwrap();
            let others: Vec<&str> = tags.split(';').filter(|t| *t != tag).collect();
            if others.is_empty() {
                body.to_owned()
            } else {
                format!("@{} {body}", others.join(";"))
            }
        })
        .collect()
}

/// alice and bob (both with `CAPS`) in #room; alice says `m1` .. `mN`, one a second
/// (`mI` at `ts(I)`). Returns the lines bob received, one per message.
fn chat(n: usize) -> (TestHub, ClientId, ClientId, Vec<String>) {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let b = t.connect_with_caps("bob", &CAPS);
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    let mut seen = Vec::new();
    for i in 1..=n {
        t.advance_secs(1);
        t.send(a, &format!("PRIVMSG #room m{i}"));
        let got = t.take(b);
        assert_eq!(got.len(), 1, "{got:#?}");
        seen.push(got.into_iter().next().unwrap());
    }
    (t, a, b, seen)
}

fn msgid(line: &str) -> String {
    tag(line, "msgid").expect("a msgid")
}

fn account(t: &mut TestHub, name: &str) {
    t.hub.load_accounts(vec![natter_store::Account {
        name: name.to_lowercase(),
        display_name: name.into(),
        password_hash: format!("{FAKE_HASH_PREFIX}pw"),
        created_ms: 0,
    }]);
}

/// Connects `nick` logged in to `account` with SASL during registration, asking for
/// `caps` too, and returns the lines it got after the password check (the 900, 903,
/// the welcome, and anything after).
fn connect_sasl(
    t: &mut TestHub,
    nick: &str,
    account: &str,
    caps: &[&str],
) -> (ClientId, Vec<String>) {
    let c = t.open();
    t.send(c, "CAP LS 302");
    let mut wanted = vec!["sasl"];
    wanted.extend_from_slice(caps);
    t.send(c, &format!("CAP REQ :{}", wanted.join(" ")));
    t.send(c, &format!("NICK {nick}"));
    t.send(c, &format!("USER {nick} 0 * :Real {nick}"));
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
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
    (c, lines)
}

/// What came after the end of the MOTD.
fn after_welcome(lines: &[String]) -> Vec<String> {
    let end = lines
        .iter()
        .position(|l| numeric_of(l) == Some("376") || numeric_of(l) == Some("422"))
        .expect("a welcome burst");
    lines[end + 1..].to_vec()
}

// ---- selecting messages -------------------------------------------------------------

#[test]
fn latest_star_gives_the_most_recent_messages_oldest_first() {
    let (mut t, a, _b, seen) = chat(5);
    let lines = t.ask(a, "CHATHISTORY LATEST #room * 3");
    assert_eq!(unbatch(&lines, "#room"), seen[2..5]);
    // The replay is the relayed line: same source, msgid and time.
    assert_eq!(
        untagged(&seen[2]),
        ":alice!alice@127.0.0.1 PRIVMSG #room :m3"
    );
    assert_eq!(tag(&seen[2], "time"), Some(ts(3)));
}

#[test]
fn the_batch_names_the_target_as_the_client_did() {
    let (mut t, a, _b, seen) = chat(2);
    let lines = t.ask(a, "CHATHISTORY LATEST #ROOM * 10");
    assert_eq!(unbatch(&lines, "#ROOM"), seen);
}

#[test]
fn latest_after_a_msgid_or_a_timestamp_excludes_it() {
    let (mut t, a, _b, seen) = chat(5);
    let by_id = t.ask(
        a,
        &format!("CHATHISTORY LATEST #room msgid={} 10", msgid(&seen[1])),
    );
    assert_eq!(unbatch(&by_id, "#room"), seen[2..5]);
    let by_time = t.ask(
        a,
        &format!("CHATHISTORY LATEST #room timestamp={} 10", ts(4)),
    );
    assert_eq!(unbatch(&by_time, "#room"), seen[4..5]);
    // The latest ones when there are more than the limit.
    let capped = t.ask(
        a,
        &format!("CHATHISTORY LATEST #room msgid={} 2", msgid(&seen[0])),
    );
    assert_eq!(unbatch(&capped, "#room"), seen[3..5]);
}

#[test]
fn before_a_msgid_or_a_timestamp_gives_the_closest_older_messages() {
    let (mut t, a, _b, seen) = chat(5);
    let by_id = t.ask(
        a,
        &format!("CHATHISTORY BEFORE #room msgid={} 2", msgid(&seen[3])),
    );
    assert_eq!(unbatch(&by_id, "#room"), seen[1..3]);
    let by_time = t.ask(
        a,
        &format!("CHATHISTORY BEFORE #room timestamp={} 10", ts(4)),
    );
    assert_eq!(unbatch(&by_time, "#room"), seen[0..3]);
}

#[test]
fn after_a_msgid_or_a_timestamp_gives_the_closest_newer_messages() {
    let (mut t, a, _b, seen) = chat(5);
    let by_id = t.ask(
        a,
        &format!("CHATHISTORY AFTER #room msgid={} 2", msgid(&seen[1])),
    );
    assert_eq!(unbatch(&by_id, "#room"), seen[2..4]);
    let by_time = t.ask(
        a,
        &format!("CHATHISTORY AFTER #room timestamp={} 10", ts(2)),
    );
    assert_eq!(unbatch(&by_time, "#room"), seen[2..5]);
}

#[test]
fn around_a_msgid_includes_it_and_its_neighbours() {
    let (mut t, a, _b, seen) = chat(5);
    let middle = t.ask(
        a,
        &format!("CHATHISTORY AROUND #room msgid={} 3", msgid(&seen[2])),
    );
    assert_eq!(unbatch(&middle, "#room"), seen[1..4]);
    // At the start there is nothing before: the rest comes from after.
    let first = t.ask(
        a,
        &format!("CHATHISTORY AROUND #room msgid={} 3", msgid(&seen[0])),
    );
    assert_eq!(unbatch(&first, "#room"), seen[0..3]);
}

#[test]
fn around_a_timestamp_between_messages_takes_from_both_sides() {
    let (mut t, a, _b, seen) = chat(5);
    // 22:13:22.500 falls between m2 and m3.
    let lines = t.ask(
        a,
        "CHATHISTORY AROUND #room timestamp=2023-11-14T22:13:22.500Z 4",
    );
    assert_eq!(unbatch(&lines, "#room"), seen[0..4]);
}

#[test]
fn around_a_timestamp_includes_the_message_at_that_time() {
    let (mut t, a, _b, seen) = chat(5);
    let lines = t.ask(
        a,
        &format!("CHATHISTORY AROUND #room timestamp={} 3", ts(3)),
    );
    assert_eq!(unbatch(&lines, "#room"), seen[1..4]);
}

#[test]
fn between_two_msgids_excludes_both_ends_forwards_or_backwards() {
    let (mut t, a, _b, seen) = chat(5);
    let (first, last) = (msgid(&seen[0]), msgid(&seen[4]));
    let forwards = t.ask(
        a,
        &format!("CHATHISTORY BETWEEN #room msgid={first} msgid={last} 10"),
    );
    assert_eq!(unbatch(&forwards, "#room"), seen[1..4]);
    // Counted from the first selector: forwards the oldest, backwards the newest.
    let forwards = t.ask(
        a,
        &format!("CHATHISTORY BETWEEN #room msgid={first} msgid={last} 2"),
    );
    assert_eq!(unbatch(&forwards, "#room"), seen[1..3]);
    let backwards = t.ask(
        a,
        &format!("CHATHISTORY BETWEEN #room msgid={last} msgid={first} 2"),
    );
    assert_eq!(unbatch(&backwards, "#room"), seen[2..4]);
}

#[test]
fn between_two_timestamps_excludes_both_ends() {
    let (mut t, a, _b, seen) = chat(5);
    let forwards = t.ask(
        a,
        &format!(
            "CHATHISTORY BETWEEN #room timestamp={} timestamp={} 10",
            ts(1),
            ts(5)
        ),
    );
    assert_eq!(unbatch(&forwards, "#room"), seen[1..4]);
    let backwards = t.ask(
        a,
        &format!(
            "CHATHISTORY BETWEEN #room timestamp={} timestamp={} 2",
            ts(5),
            ts(1)
        ),
    );
    assert_eq!(unbatch(&backwards, "#room"), seen[2..4]);
    let mixed = t.ask(
        a,
        &format!(
            "CHATHISTORY BETWEEN #room msgid={} timestamp={} 10",
            msgid(&seen[0]),
            ts(4)
        ),
    );
    assert_eq!(unbatch(&mixed, "#room"), seen[1..3]);
}

#[test]
fn an_unknown_msgid_gives_an_empty_batch() {
    let (mut t, a, _b, _seen) = chat(3);
    let lines = t.ask(a, "CHATHISTORY BEFORE #room msgid=nosuchid 10");
    assert_eq!(unbatch(&lines, "#room"), Vec::<String>::new());
}

#[test]
fn a_room_without_history_gives_an_empty_batch() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let lines = t.ask(a, "CHATHISTORY LATEST #quiet * 10");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(unbatch(&lines, "#quiet"), Vec::<String>::new());
}

#[test]
fn the_limit_is_capped_at_the_advertised_chathistory_value() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "CAP LS 302");
    t.send(a, &format!("CAP REQ :{}", CAPS.join(" ")));
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :A");
    t.send(a, "CAP END");
    let burst = t.take(a);
    let advertised: usize = burst
        .iter()
        .filter(|l| numeric_of(l) == Some("005"))
        .flat_map(|l| l.split(' '))
        .find_map(|token| token.strip_prefix("CHATHISTORY="))
        .expect("CHATHISTORY in ISUPPORT")
        .parse()
        .unwrap();
    assert_eq!(advertised, 100);
    t.join(a, "#room");
    for i in 1..=advertised + 5 {
        t.advance(std::time::Duration::from_millis(10));
        t.send(a, &format!("PRIVMSG #room :n{i}"));
    }
    let lines = t.ask(a, "CHATHISTORY LATEST #room * 1000");
    let inner = unbatch(&lines, "#room");
    assert_eq!(inner.len(), advertised);
    assert!(inner[0].ends_with(" PRIVMSG #room :n6"), "{}", inner[0]);
    assert!(inner.last().unwrap().ends_with(" PRIVMSG #room :n105"));
    let before = t.ask(
        a,
        "CHATHISTORY BEFORE #room timestamp=2030-01-01T00:00:00.000Z 101",
    );
    assert_eq!(unbatch(&before, "#room").len(), advertised);
}

#[test]
fn client_tags_and_the_account_are_replayed_as_relayed() {
    let mut t = TestHub::new();
    let caps = [
        "batch",
        "server-time",
        "message-tags",
        "account-tag",
        "draft/chathistory",
    ];
    let a = t.connect_with_caps("alice", &caps);
    let b = t.connect_with_caps("bob", &caps);
    t.send(a, "REGISTER * * pw");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.advance_secs(1);
    t.send(
        a,
        "@+example.org/note=a\\sb;+draft/reply=x PRIVMSG #room :tagged",
    );
    let seen = t.take(b);
    assert_eq!(seen.len(), 1);
    assert_eq!(tag(&seen[0], "account").as_deref(), Some("alice"));
    assert_eq!(tag(&seen[0], "+example.org/note").as_deref(), Some("a b"));
    let lines = t.ask(b, "CHATHISTORY LATEST #room * 10");
    assert_eq!(unbatch(&lines, "#room"), seen);
}

#[test]
fn tagmsgs_are_not_in_history() {
    let (mut t, a, _b, seen) = chat(1);
    t.send(a, "@+typing=active TAGMSG #room");
    let lines = t.ask(a, "CHATHISTORY LATEST #room * 10");
    assert_eq!(unbatch(&lines, "#room"), seen);
}

// ---- direct messages -----------------------------------------------------------------

#[test]
fn dm_history_is_the_same_conversation_from_both_sides() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let b = t.connect_with_caps("bob", &CAPS);
    t.advance_secs(1);
    t.send(a, "PRIVMSG bob :hi bob");
    let first = t.take(b);
    t.advance_secs(1);
    t.send(b, "PRIVMSG alice :hi alice");
    let second = t.take(a);
    let both: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(
        both.iter().map(|l| untagged(l)).collect::<Vec<_>>(),
        [
            ":alice!alice@127.0.0.1 PRIVMSG bob :hi bob",
            ":bob!bob@127.0.0.1 PRIVMSG alice :hi alice",
        ]
    );
    let from_alice = t.ask(a, "CHATHISTORY LATEST bob * 10");
    assert_eq!(unbatch(&from_alice, "bob"), both);
    let from_bob = t.ask(b, "CHATHISTORY LATEST Alice * 10");
    assert_eq!(unbatch(&from_bob, "Alice"), both);
    // A third party has no part in it.
    let c = t.connect_with_caps("carol", &CAPS);
    let from_carol = t.ask(c, "CHATHISTORY LATEST bob * 10");
    assert_eq!(unbatch(&from_carol, "bob"), Vec::<String>::new());
}

#[test]
fn dm_history_follows_the_account_across_clients_and_nicks() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let (laptop, _) = connect_sasl(&mut t, "alice", "alice", &CAPS);
    let b = t.connect_with_caps("bob", &CAPS);
    t.advance_secs(1);
    t.send(laptop, "PRIVMSG bob :from the laptop");
    let said = t.take(b);
    t.send(laptop, "QUIT");
    let (phone, _) = connect_sasl(&mut t, "alice_phone", "alice", &CAPS);
    let lines = t.ask(phone, "CHATHISTORY LATEST bob * 10");
    assert_eq!(unbatch(&lines, "bob"), said);
    // bob asks by the nick alice uses now.
    let lines = t.ask(b, "CHATHISTORY LATEST alice_phone * 10");
    assert_eq!(unbatch(&lines, "alice_phone"), said);
}

#[test]
fn someone_using_a_registered_nick_without_logging_in_cannot_read_its_dms() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let (a, _) = connect_sasl(&mut t, "alice", "alice", &CAPS);
    let b = t.connect_with_caps("bob", &CAPS);
    t.send(a, "PRIVMSG bob :a secret");
    t.send(b, "PRIVMSG alice :another secret");
    t.send(a, "QUIT");
    t.clear();
    // mallory takes the nick; she has a grace period to log in, but no access.
    let m = t.connect_with_caps("alice", &CAPS);
    let lines = t.ask(m, "CHATHISTORY LATEST bob * 10");
    assert_eq!(unbatch(&lines, "bob"), Vec::<String>::new());
    // Nor does what is said to her in the meantime join alice's conversation.
    t.send(b, "PRIVMSG alice :are you really alice?");
    t.take(m);
    let (phone, _) = connect_sasl(&mut t, "alice_phone", "alice", &CAPS);
    let lines = t.ask(phone, "CHATHISTORY LATEST bob * 10");
    let texts: Vec<String> = unbatch(&lines, "bob")
        .iter()
        .map(|l| parse(l).params[1].to_owned())
        .collect();
    assert_eq!(texts, ["a secret", "another secret"]);
}

// ---- TARGETS --------------------------------------------------------------------------

#[test]
fn targets_lists_conversations_with_messages_between_two_times_latest_first() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let b = t.connect_with_caps("bob", &CAPS);
    let c = t.connect_with_caps("carol", &CAPS);
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.join(a, "#Other");
    t.advance_secs(1);
    t.send(b, "PRIVMSG #room :one");
    t.advance_secs(1);
    t.send(b, "PRIVMSG alice :two");
    t.advance_secs(1);
    t.send(a, "PRIVMSG #Other :three");
    t.advance_secs(1);
    t.send(b, "PRIVMSG #room :four");
    t.clear();
    let lines = t.ask(
        a,
        &format!(
            "CHATHISTORY TARGETS timestamp={} timestamp={} 10",
            ts(0),
            ts(10)
        ),
    );
    assert_eq!(
        unbatch_type(&lines, &["draft/chathistory-targets"]),
        [
            format!(":{SERVER} CHATHISTORY TARGETS #room :{}", ts(4)),
            format!(":{SERVER} CHATHISTORY TARGETS #Other :{}", ts(3)),
            format!(":{SERVER} CHATHISTORY TARGETS bob :{}", ts(2)),
        ]
    );
    // The window and the limit bound the answer; either order of the two times.
    let lines = t.ask(
        a,
        &format!(
            "CHATHISTORY TARGETS timestamp={} timestamp={} 10",
            ts(3),
            ts(1)
        ),
    );
    assert_eq!(
        unbatch_type(&lines, &["draft/chathistory-targets"]),
        [format!(":{SERVER} CHATHISTORY TARGETS bob :{}", ts(2))]
    );
    let lines = t.ask(
        a,
        &format!(
            "CHATHISTORY TARGETS timestamp={} timestamp={} 1",
            ts(0),
            ts(10)
        ),
    );
    assert_eq!(
        unbatch_type(&lines, &["draft/chathistory-targets"]),
        [format!(":{SERVER} CHATHISTORY TARGETS #room :{}", ts(4))]
    );
}

#[test]
fn targets_lists_a_dm_partner_who_is_no_longer_online() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let (a, _) = connect_sasl(&mut t, "alice", "alice", &CAPS);
    let b = t.connect_with_caps("bob", &CAPS);
    t.advance_secs(1);
    t.send(b, "PRIVMSG alice :catch you later");
    t.send(b, "QUIT");
    t.clear();
    let lines = t.ask(
        a,
        &format!(
            "CHATHISTORY TARGETS timestamp={} timestamp={} 10",
            ts(0),
            ts(10)
        ),
    );
    assert_eq!(
        unbatch_type(&lines, &["draft/chathistory-targets"]),
        [format!(":{SERVER} CHATHISTORY TARGETS bob :{}", ts(1))]
    );
}

#[test]
fn targets_needs_two_timestamps() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    assert_eq!(
        t.ask(a, "CHATHISTORY TARGETS * * 10"),
        [format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_PARAMS TARGETS :Give two timestamps and a limit"
        )]
    );
}

// ---- errors -----------------------------------------------------------------------------

#[test]
fn malformed_requests_are_invalid_params() {
    let (mut t, a, _b, _seen) = chat(1);
    let invalid = |sub: &str| {
        format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_PARAMS {sub} :Invalid message reference or limit"
        )
    };
    for (request, sub) in [
        ("CHATHISTORY LATEST #room bogus 10", "LATEST"),
        ("CHATHISTORY LATEST #room * many", "LATEST"),
        ("CHATHISTORY LATEST #room *", "LATEST"),
        ("CHATHISTORY BEFORE #room * 10", "BEFORE"),
        ("CHATHISTORY AFTER #room msgid= 10", "AFTER"),
        ("CHATHISTORY AROUND #room timestamp=yesterday 10", "AROUND"),
        ("CHATHISTORY BETWEEN #room * * 10", "BETWEEN"),
        ("CHATHISTORY BETWEEN #room msgid=a 10", "BETWEEN"),
    ] {
        assert_eq!(t.ask(a, request), [invalid(sub)], "{request}");
    }
    assert_eq!(
        t.ask(a, "CHATHISTORY FROB #room * 10"),
        [format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_PARAMS FROB :Unknown subcommand"
        )]
    );
}

#[test]
fn a_secret_room_is_closed_to_those_outside_it() {
    let (mut t, a, _b, seen) = chat(2);
    t.send(a, "MODE #room +s");
    t.clear();
    let c = t.connect_with_caps("carol", &CAPS);
    assert_eq!(
        t.ask(c, "CHATHISTORY LATEST #room * 10"),
        [format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST #room :You may not read that history"
        )]
    );
    // Members may.
    let lines = t.ask(a, "CHATHISTORY LATEST #room * 10");
    assert_eq!(unbatch(&lines, "#room"), seen);
}

#[test]
fn invite_only_and_keyed_rooms_are_closed_to_those_outside_them() {
    let (mut t, a, _b, _seen) = chat(1);
    let c = t.connect_with_caps("carol", &CAPS);
    let refused = format!(
        ":{SERVER} FAIL CHATHISTORY INVALID_TARGET BEFORE #room :You may not read that history"
    );
    let request = format!("CHATHISTORY BEFORE #room timestamp={} 10", ts(30));
    t.send(a, "MODE #room +i");
    assert_eq!(t.ask(c, &request), [refused.as_str()]);
    t.send(a, "MODE #room -i+k sesame");
    assert_eq!(t.ask(c, &request), [refused]);
}

#[test]
fn an_open_room_is_readable_from_outside() {
    let (mut t, _a, _b, seen) = chat(2);
    let c = t.connect_with_caps("carol", &CAPS);
    let lines = t.ask(c, "CHATHISTORY LATEST #room * 10");
    assert_eq!(unbatch(&lines, "#room"), seen);
}

#[test]
fn a_room_is_closed_to_those_banned_from_it() {
    let (mut t, a, _b, _seen) = chat(2);
    t.send(a, "MODE #room +b carol!*@*");
    let c = t.connect_with_caps("carol", &CAPS);
    assert_eq!(
        t.ask(c, "CHATHISTORY LATEST #room * 10"),
        [format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST #room :You may not read that history"
        )]
    );
}

/// alice and bob in #room, which alice makes secret before she says `secret` in it.
fn secret_chat() -> (TestHub, ClientId, ClientId) {
    let (mut t, a, b, _seen) = chat(1);
    t.send(a, "MODE #room +s");
    t.advance_secs(1);
    t.send(a, "PRIVMSG #room secret");
    t.clear();
    (t, a, b)
}

/// The texts of the messages a CHATHISTORY LATEST of #room gives `id`.
fn room_history(t: &mut TestHub, id: ClientId) -> Vec<String> {
    let lines = t.ask(id, "CHATHISTORY LATEST #room * 10");
    unbatch(&lines, "#room")
        .iter()
        .map(|line| parse(line).params[1].to_owned())
        .collect()
}

#[test]
fn a_closed_rooms_history_is_replayed_to_its_members() {
    let (mut t, _a, b) = secret_chat();
    assert_eq!(room_history(&mut t, b), ["m1", "secret"]);
}

#[test]
fn what_a_closed_room_said_stays_closed_after_everyone_left() {
    for mode in ["+s", "+i", "+k key"] {
        let (mut t, a, b, _seen) = chat(1);
        t.send(a, &format!("MODE #room {mode}"));
        t.advance_secs(1);
        t.send(a, "PRIVMSG #room closed");
        t.send(a, "PART #room");
        t.send(b, "PART #room");
        let c = t.connect_with_caps("carol", &CAPS);
        t.clear();
        // What was said while the room was open stays readable; the rest does not,
        // whether asked from outside or after joining the room again under its name.
        assert_eq!(room_history(&mut t, c), ["m1"], "{mode}");
        t.join(c, "#room");
        t.clear();
        assert_eq!(room_history(&mut t, c), ["m1"], "{mode}");
        t.send(c, "MODE #room +s");
        t.clear();
        assert_eq!(room_history(&mut t, c), ["m1"], "{mode}");
    }
}

#[test]
fn a_member_who_left_a_closed_room_no_longer_reads_what_it_said() {
    let (mut t, _a, b) = secret_chat();
    t.send(b, "PART #room");
    t.clear();
    let lines = t.ask(b, "CHATHISTORY LATEST #room * 10");
    assert_eq!(parse(&lines[0]).command, "FAIL", "{lines:#?}");
}

#[test]
fn what_a_room_says_once_it_is_open_again_is_open() {
    let (mut t, a, _b) = secret_chat();
    t.send(a, "MODE #room -s");
    t.advance_secs(1);
    t.send(a, "PRIVMSG #room :open again");
    let c = t.connect_with_caps("carol", &CAPS);
    t.clear();
    assert_eq!(room_history(&mut t, c), ["m1", "open again"]);
}

#[test]
fn what_a_closed_room_said_stays_closed_after_a_restart() {
    let (mut t, _a, _b) = secret_chat();
    // A new hub on the same store, as after a restart; its rooms start empty.
    let last = natter_store::Store::last_seq(&mut t.store)
        .unwrap()
        .expect("messages were kept");
    t.hub = natter_hub::Hub::new(natter_hub::HubConfig::default(), t.now);
    t.hub.continue_history(last);
    let (a2, b2) = (
        t.connect_with_caps("alice", &CAPS),
        t.connect_with_caps("bob", &CAPS),
    );
    t.join(a2, "#room");
    t.join(b2, "#room");
    t.clear();
    assert_eq!(room_history(&mut t, b2), ["m1"]);
}

#[test]
fn a_store_failure_is_message_error() {
    let (mut t, a, _b, _seen) = chat(1);
    t.hold_store = true;
    t.send(a, "CHATHISTORY LATEST #room * 10");
    t.send(a, "PING :after");
    let (ticket, _) = t.held_jobs.remove(0);
    let mut out = natter_hub::Outbox::new();
    t.hub.store_done(
        ticket,
        natter_hub::StoreOutcome::Failed("disk on fire".into()),
        t.now,
        &mut out,
    );
    assert_eq!(
        out.lines_for(a),
        [
            format!(":{SERVER} FAIL CHATHISTORY MESSAGE_ERROR LATEST #room :History could not be read; try again"),
            format!(":{SERVER} PONG {SERVER} :after"),
        ]
    );
}

// ---- how the answer is framed ------------------------------------------------------------

#[test]
fn a_labeled_request_labels_the_history_batch() {
    let mut t = TestHub::new();
    let caps = [
        "batch",
        "server-time",
        "message-tags",
        "draft/chathistory",
        "labeled-response",
    ];
    let a = t.connect_with_caps("alice", &caps);
    let b = t.connect_with_caps("bob", &caps);
    t.join(a, "#room");
    t.join(b, "#room");
    t.send(a, "PRIVMSG #room :one");
    t.send(a, "PRIVMSG #room :two");
    let seen = t.take(b);
    t.clear();
    let lines = t.ask(a, "@label=h1 CHATHISTORY LATEST #room * 10");
    let start = parse(&lines[0]);
    assert_eq!(start.tag("label"), Some("h1"), "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.contains("label=")).count(), 1);
    assert_eq!(unbatch(&lines, "#room"), seen);
    // An empty answer too is one labeled batch.
    let empty = t.ask(a, "@label=h2 CHATHISTORY LATEST #nothing * 10");
    assert_eq!(parse(&empty[0]).tag("label"), Some("h2"));
    assert_eq!(unbatch(&empty, "#nothing"), Vec::<String>::new());
}

#[test]
fn a_labeled_targets_request_labels_its_batch() {
    let mut t = TestHub::new();
    let caps = [
        "batch",
        "server-time",
        "message-tags",
        "draft/chathistory",
        "labeled-response",
    ];
    let a = t.connect_with_caps("alice", &caps);
    t.join(a, "#room");
    t.advance_secs(1);
    t.send(a, "PRIVMSG #room :one");
    let lines = t.ask(
        a,
        &format!(
            "@label=t1 CHATHISTORY TARGETS timestamp={} timestamp={} 10",
            ts(0),
            ts(10)
        ),
    );
    assert_eq!(parse(&lines[0]).tag("label"), Some("t1"), "{lines:#?}");
    assert_eq!(
        unbatch_type(&lines, &["draft/chathistory-targets"]),
        [format!(":{SERVER} CHATHISTORY TARGETS #room :{}", ts(1))]
    );
}

#[test]
fn a_labeled_error_carries_the_label() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["batch", "labeled-response", "draft/chathistory"]);
    assert_eq!(
        t.ask(a, "@label=e1 CHATHISTORY LATEST #room bogus 10"),
        [format!(
            "@label=e1 :{SERVER} FAIL CHATHISTORY INVALID_PARAMS LATEST :Invalid message reference or limit"
        )]
    );
}

#[test]
fn a_client_without_batch_or_tags_gets_plain_lines() {
    let (mut t, _a, _b, _seen) = chat(2);
    let c = t.connect_with_caps("carol", &["draft/chathistory"]);
    assert_eq!(
        t.ask(c, "CHATHISTORY LATEST #room * 10"),
        [
            ":alice!alice@127.0.0.1 PRIVMSG #room :m1",
            ":alice!alice@127.0.0.1 PRIVMSG #room :m2",
        ]
    );
}

#[test]
fn a_client_gets_only_the_tags_it_asked_for() {
    let (mut t, _a, _b, seen) = chat(1);
    let c = t.connect_with_caps("carol", &["batch", "server-time", "draft/chathistory"]);
    let lines = t.ask(c, "CHATHISTORY LATEST #room * 10");
    assert_eq!(
        unbatch(&lines, "#room"),
        [format!(
            "@time={} :alice!alice@127.0.0.1 PRIVMSG #room :m1",
            ts(1)
        )]
    );
    assert_eq!(tag(&seen[0], "time"), Some(ts(1)));
}

// ---- offline messages ------------------------------------------------------------------------

#[test]
fn a_dm_to_an_offline_account_is_kept_and_delivered_once_at_its_next_login() {
    let mut t = TestHub::new();
    account(&mut t, "bob");
    let a = t.connect_with_caps("alice", &["echo-message", "message-tags", "server-time"]);
    t.advance_secs(3);
    // Not 401: bob exists, he is just not here.
    let echo = t.ask(a, "PRIVMSG bob :are you there?");
    assert_eq!(echo.len(), 1, "{echo:#?}");
    assert_eq!(
        untagged(&echo[0]),
        ":alice!alice@127.0.0.1 PRIVMSG bob :are you there?"
    );
    let id = msgid(&echo[0]);
    t.advance_secs(60);
    let (b, lines) = connect_sasl(&mut t, "bob", "bob", &["message-tags", "server-time"]);
    assert_eq!(
        after_welcome(&lines),
        [format!(
            "@msgid={id};time={} :alice!alice@127.0.0.1 PRIVMSG bob :are you there?",
            ts(3)
        )]
    );
    t.assert_silent(b);
    // A second client, and a later login, get nothing more.
    let (_phone, lines) =
        connect_sasl(&mut t, "bob_phone", "bob", &["message-tags", "server-time"]);
    assert_eq!(after_welcome(&lines), Vec::<String>::new());
    t.send(b, "QUIT");
    let (_again, lines) = connect_sasl(&mut t, "bob", "bob", &["message-tags", "server-time"]);
    assert_eq!(after_welcome(&lines), Vec::<String>::new());
}

#[test]
fn offline_messages_keep_their_order_and_senders() {
    let mut t = TestHub::new();
    account(&mut t, "bob");
    let a = t.connect("alice");
    let c = t.connect("carol");
    t.send(a, "PRIVMSG bob :first");
    t.send(c, "NOTICE bob :second");
    t.send(a, "PRIVMSG bob :third");
    let (_b, lines) = connect_sasl(&mut t, "bob", "bob", &[]);
    assert_eq!(
        after_welcome(&lines),
        [
            ":alice!alice@127.0.0.1 PRIVMSG bob :first",
            ":carol!carol@127.0.0.1 NOTICE bob :second",
            ":alice!alice@127.0.0.1 PRIVMSG bob :third",
        ]
    );
}

#[test]
fn a_login_after_registration_delivers_offline_messages_too() {
    let mut t = TestHub::new();
    account(&mut t, "bob");
    let a = t.connect("alice");
    t.send(a, "PRIVMSG bob :hello later");
    let b = t.connect("bobby");
    t.send(b, "AUTHENTICATE PLAIN");
    let response = base64::engine::general_purpose::STANDARD.encode("\0bob\0pw");
    t.send(b, &format!("AUTHENTICATE {response}"));
    let lines = t.take(b);
    assert_eq!(
        lines.last().unwrap(),
        ":alice!alice@127.0.0.1 PRIVMSG bob :hello later"
    );
    assert_eq!(numerics(&lines), ["900", "903"]);
}

#[test]
fn a_dm_to_an_online_account_is_not_queued() {
    let mut t = TestHub::new();
    account(&mut t, "bob");
    let (b, _) = connect_sasl(&mut t, "bob", "bob", &[]);
    let a = t.connect("alice");
    t.send(a, "PRIVMSG bob :live");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 PRIVMSG bob :live"]);
    t.send(b, "QUIT");
    let (_b2, lines) = connect_sasl(&mut t, "bob", "bob", &[]);
    assert_eq!(after_welcome(&lines), Vec::<String>::new());
}

#[test]
fn a_dm_to_an_unknown_offline_nick_is_still_401() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "PRIVMSG nobody :hello?"),
        [format!(":{SERVER} 401 alice nobody :No such nick/channel")]
    );
}

#[test]
fn an_offline_dm_is_in_both_parties_history() {
    let mut t = TestHub::new();
    account(&mut t, "bob");
    let a = t.connect_with_caps("alice", &CAPS);
    t.send(a, "PRIVMSG bob :while you were out");
    let (b, _) = connect_sasl(&mut t, "bob", "bob", &CAPS);
    let from_bob = t.ask(b, "CHATHISTORY LATEST alice * 10");
    let from_alice = t.ask(a, "CHATHISTORY LATEST bob * 10");
    let from_bob = unbatch(&from_bob, "alice");
    assert_eq!(from_bob, unbatch(&from_alice, "bob"));
    assert_eq!(from_bob.len(), 1);
    assert!(from_bob[0].ends_with(":alice!alice@127.0.0.1 PRIVMSG bob :while you were out"));
}

#[test]
fn offline_messages_reach_a_client_without_tags_without_tags() {
    let mut t = TestHub::new();
    account(&mut t, "bob");
    let a = t.connect_with_caps("alice", &["message-tags"]);
    t.send(a, "@+draft/reply=x PRIVMSG bob :plain please");
    let (_b, lines) = connect_sasl(&mut t, "bob", "bob", &[]);
    assert_eq!(
        after_welcome(&lines),
        [":alice!alice@127.0.0.1 PRIVMSG bob :plain please"]
    );
}
