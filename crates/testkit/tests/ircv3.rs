//! IRCv3 over the wire: CAP 302 negotiation, echo-message, server-time, msgid,
//! message-tags with TAGMSG, and labeled-response with its batch.

use std::time::{SystemTime, UNIX_EPOCH};

use natter_testkit::{Message, MessageExt, TestClient, TestServer};

/// What docs/protocol.md says `CAP LS 302` lists.
const DOCUMENTED_CAPS: &[&str] = &[
    "account-notify",
    "account-tag",
    "away-notify",
    "batch",
    "cap-notify",
    "chghost",
    "draft/account-registration",
    "draft/chathistory",
    "draft/read-marker",
    "echo-message",
    "extended-join",
    "invite-notify",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "sasl",
    "server-time",
    "setname",
    "userhost-in-names",
];

/// `alice` and `bob`, with the given capabilities, in `#room`.
async fn pair(
    server: &TestServer,
    alice_caps: &[&str],
    bob_caps: &[&str],
) -> (TestClient, TestClient) {
    let mut alice = server.user_with_caps("alice", alice_caps).await;
    let mut bob = server.user_with_caps("bob", bob_caps).await;
    alice.join("#room").await;
    bob.join("#room").await;
    alice.expect_command("JOIN").await;
    (alice, bob)
}

/// Seconds since the epoch of an IRCv3 `time` tag (`2026-11-27T07:12:13.123Z`),
/// checking its exact shape on the way.
fn parse_server_time(value: &str) -> f64 {
    let b = value.as_bytes();
    let shape_ok = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(
        shape_ok,
        "time tag {value:?} is not YYYY-MM-DDThh:mm:ss.sssZ"
    );
    let num = |from: usize, to: usize| -> i64 { value[from..to].parse().expect("digits") };
    let (y, m, d) = (num(0, 4), num(5, 7), num(8, 10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + num(11, 13) * 3600 + num(14, 16) * 60 + num(17, 19);
    secs as f64 + num(20, 23) as f64 / 1000.0
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[tokio::test]
async fn cap_ls_302_offers_every_documented_capability() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(&server).await;
    client.send("CAP LS 302").await;
    let ls = client.expect_command("CAP").await;
    assert_eq!(ls.param(1), Some("LS"), "{}", ls.line());
    let offered: Vec<&str> = ls
        .text()
        .split(' ')
        .map(|c| c.split('=').next().unwrap_or(c))
        .collect();
    // The server may offer more than the page documents, never less.
    let missing: Vec<&str> = DOCUMENTED_CAPS
        .iter()
        .copied()
        .filter(|c| !offered.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "not offered: {missing:?} in {}",
        ls.line()
    );
    client.assert_nothing_more().await;
}

#[tokio::test]
async fn cap_req_is_all_or_nothing() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(&server).await;
    client.send("CAP LS 302").await;
    client.expect_command("CAP").await;
    client.send("CAP REQ :echo-message no-such-cap").await;
    let nak = client.expect_command("CAP").await;
    assert_eq!(
        nak.params.strs()[1..],
        ["NAK", "echo-message no-such-cap"],
        "{}",
        nak.line()
    );
    client.send("CAP LIST").await;
    let list = client.expect_command("CAP").await;
    assert!(!list.text().contains("echo-message"), "{}", list.line());
    client.send("CAP REQ :echo-message server-time").await;
    let ack = client.expect_command("CAP").await;
    assert_eq!(
        ack.params.strs()[1..],
        ["ACK", "echo-message server-time"],
        "{}",
        ack.line()
    );
    client.send("CAP LIST").await;
    let list = client.expect_command("CAP").await;
    let mut enabled: Vec<&str> = list.text().split(' ').collect();
    enabled.sort_unstable();
    assert_eq!(
        enabled,
        ["cap-notify", "echo-message", "server-time"],
        "{}",
        list.line()
    );
    client.send("NICK capper").await;
    client.send("USER capper 0 * :Capper").await;
    client.send("CAP END").await;
    client.expect_numeric("001").await;
}

#[tokio::test]
async fn echo_message_returns_the_senders_message_with_the_msgid_others_see() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(
        &server,
        &["echo-message", "message-tags"],
        &["message-tags"],
    )
    .await;
    alice.send("PRIVMSG #room :echoed").await;
    let echo = alice.expect_privmsg("alice", "#room", "echoed").await;
    let relayed = bob.expect_privmsg("alice", "#room", "echoed").await;
    let msgid = echo
        .tag("msgid")
        .unwrap_or_else(|| panic!("no msgid on the echo: {}", echo.line()));
    assert_eq!(relayed.tag("msgid"), Some(msgid), "{}", relayed.line());
    // A direct message is echoed too.
    alice.send("PRIVMSG bob :just you").await;
    alice.expect_privmsg("alice", "bob", "just you").await;
    bob.expect_privmsg("alice", "bob", "just you").await;
    alice.assert_nothing_more().await;
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn server_time_stamps_relayed_lines_with_the_current_utc_time() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(&server, &[], &["server-time"]).await;
    alice.send("PRIVMSG #room :what time is it?").await;
    let msg = bob
        .expect_privmsg("alice", "#room", "what time is it?")
        .await;
    let time = msg
        .tag("time")
        .unwrap_or_else(|| panic!("no time tag: {}", msg.line()));
    let skew = (parse_server_time(time) - now_unix()).abs();
    assert!(skew < 60.0, "time tag {time} is {skew} s off the clock");
    // Without the capability, no tags at all.
    bob.send("PRIVMSG #room :and without?").await;
    let plain = alice.expect_privmsg("bob", "#room", "and without?").await;
    assert!(plain.tags.is_empty(), "{}", plain.line());
}

#[tokio::test]
async fn each_message_gets_its_own_msgid() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(&server, &[], &["message-tags"]).await;
    alice.send("PRIVMSG #room :one").await;
    alice.send("PRIVMSG #room :two").await;
    alice.send("PRIVMSG bob :three").await;
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let msg = bob
            .expect(|m| m.command == "PRIVMSG" && m.text() == text)
            .await;
        let id = msg
            .tag("msgid")
            .unwrap_or_else(|| panic!("no msgid: {}", msg.line()))
            .to_owned();
        assert!(!id.is_empty());
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "msgids repeat: {ids:?}");
}

#[tokio::test]
async fn tagmsg_with_client_tags_reaches_only_message_tags_clients() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(&server, &["message-tags"], &["message-tags"]).await;
    let mut carol = server.user("carol").await;
    carol.join("#room").await;
    alice.expect_command("JOIN").await;
    bob.expect_command("JOIN").await;
    alice.send("@+typing=active TAGMSG #room").await;
    let tagmsg = bob.expect_command("TAGMSG").await;
    assert!(tagmsg.is_from("alice"), "{}", tagmsg.line());
    assert_eq!(tagmsg.params, ["#room"]);
    assert_eq!(tagmsg.tag("+typing"), Some("active"), "{}", tagmsg.line());
    assert!(tagmsg.tag("msgid").is_some(), "{}", tagmsg.line());
    carol.assert_nothing_more().await;
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn client_tags_on_a_privmsg_are_relayed_only_to_message_tags_clients() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(&server, &["message-tags"], &["message-tags"]).await;
    let mut carol = server.user("carol").await;
    carol.join("#room").await;
    alice.expect_command("JOIN").await;
    bob.expect_command("JOIN").await;
    alice
        .send("@+draft/reply=abc;+example.com/emoji=\\s:)\\s;label=nope PRIVMSG #room :tagged")
        .await;
    let tagged = bob.expect_privmsg("alice", "#room", "tagged").await;
    assert_eq!(tagged.tag("+draft/reply"), Some("abc"), "{}", tagged.line());
    assert_eq!(
        tagged.tag("+example.com/emoji"),
        Some(" :) "),
        "{}",
        tagged.line()
    );
    assert_eq!(
        tagged.tag("label"),
        None,
        "server tags from a client are not relayed"
    );
    let plain = carol.expect_privmsg("alice", "#room", "tagged").await;
    assert!(plain.tags.is_empty(), "{}", plain.line());
}

/// What a labeled command came back as: its lines, with the batch unwrapped.
async fn labeled(client: &mut TestClient, label: &str, line: &str) -> Vec<Message> {
    client.send(&format!("@label={label} {line}")).await;
    let first = client
        .expect(|m| m.tag("label").is_some() || m.command == "BATCH")
        .await;
    assert_eq!(first.tag("label"), Some(label), "{}", first.line());
    if first.command != "BATCH" {
        return vec![first];
    }
    let reference = first.param(0).unwrap_or("");
    let id = reference
        .strip_prefix('+')
        .unwrap_or_else(|| panic!("a batch that does not open: {}", first.line()));
    assert_eq!(first.param(1), Some("labeled-response"), "{}", first.line());
    let mut inside = Vec::new();
    loop {
        let msg = client.recv().await;
        if msg.command == "BATCH" && msg.param(0) == Some(&format!("-{id}")) {
            return inside;
        }
        assert_eq!(
            msg.tag("batch"),
            Some(id),
            "a line outside the batch: {}",
            msg.line()
        );
        inside.push(msg);
    }
}

#[tokio::test]
async fn labeled_response_answers_one_reply_alone_several_in_a_batch_and_none_with_ack() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = pair(&server, &["labeled-response", "batch"], &[]).await;

    let one = labeled(&mut alice, "ping1", "PING :token").await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].command, "PONG", "{}", one[0].line());
    assert_eq!(one[0].text(), "token");

    let names = labeled(&mut alice, "names2", "NAMES #room").await;
    let commands: Vec<&str> = names.iter().map(|m| m.command.as_str()).collect();
    assert_eq!(
        commands,
        ["353", "366"],
        "{:?}",
        names.iter().map(MessageExt::line).collect::<Vec<_>>()
    );

    let none = labeled(&mut alice, "pm3", "PRIVMSG #room :no echo, so no reply").await;
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].command, "ACK", "{}", none[0].line());

    let error = labeled(&mut alice, "err4", "PRIVMSG nobody :hi").await;
    assert_eq!(error[0].command, "401", "{}", error[0].line());
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn a_labeled_message_is_acknowledged_by_its_labeled_echo() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(
        &server,
        &["labeled-response", "batch", "echo-message", "message-tags"],
        &["message-tags"],
    )
    .await;
    let echo = labeled(&mut alice, "m1", "PRIVMSG #room :acknowledged").await;
    assert_eq!(echo.len(), 1);
    assert_eq!(echo[0].command, "PRIVMSG", "{}", echo[0].line());
    assert_eq!(echo[0].text(), "acknowledged");
    let relayed = bob.expect_privmsg("alice", "#room", "acknowledged").await;
    assert_eq!(
        relayed.tag("label"),
        None,
        "the label is the sender's alone: {}",
        relayed.line()
    );
    assert_eq!(relayed.tag("msgid"), echo[0].tag("msgid"));
}
