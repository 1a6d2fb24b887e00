//! Messages between people: direct messages, room fan-out, notices, several targets.

use natter_testkit::{MessageExt, TestServer};

#[tokio::test]
async fn a_direct_message_reaches_its_target_and_no_one_else() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    alice.send("PRIVMSG bob :hello bob").await;
    let msg = bob.expect_privmsg("alice", "bob", "hello bob").await;
    assert!(
        msg.source
            .as_deref()
            .is_some_and(|s| s.starts_with("alice!")),
        "the source names the sender in full: {}",
        msg.line()
    );
    bob.assert_nothing_more().await;
    carol.assert_nothing_more().await;
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn a_direct_message_finds_its_target_case_insensitively() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("Bob").await;
    alice.send("PRIVMSG bOB :hi").await;
    bob.expect_privmsg("alice", "bOB", "hi").await;
}

#[tokio::test]
async fn a_room_message_reaches_every_other_member_once() {
    let server = TestServer::start().await;
    let mut members = Vec::new();
    for nick in ["alice", "bob", "carol", "dave"] {
        let mut member = server.user(nick).await;
        member.join("#team").await;
        members.push(member);
    }
    // Everyone sees the joins of those after them; take them before the message.
    for (i, member) in members.iter_mut().enumerate() {
        for _ in i + 1..4 {
            member.expect_command("JOIN").await;
        }
    }
    let mut outsider = server.user("eve").await;
    members[0].send("PRIVMSG #team :hello team").await;
    for member in &mut members[1..] {
        member.expect_privmsg("alice", "#team", "hello team").await;
        member.assert_nothing_more().await;
    }
    members[0].assert_nothing_more().await;
    outsider.assert_nothing_more().await;
}

#[tokio::test]
async fn a_notice_to_a_room_is_relayed_as_a_notice() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice.join("#room").await;
    bob.join("#room").await;
    alice.send("NOTICE #room :heads up").await;
    let notice = bob.expect_command("NOTICE").await;
    assert!(notice.is_from("alice"), "{}", notice.line());
    assert_eq!(notice.params, ["#room", "heads up"]);
}

#[tokio::test]
async fn one_message_to_several_targets_reaches_each_once() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    carol.join("#room").await;
    alice.send("PRIVMSG bob,#room :to you both").await;
    bob.expect_privmsg("alice", "bob", "to you both").await;
    // Outside a +n room the room part is refused; carol gets nothing.
    alice.expect_numeric("404").await;
    bob.assert_nothing_more().await;
    carol.assert_nothing_more().await;
}

#[tokio::test]
async fn messages_from_one_sender_arrive_in_the_order_sent() {
    let server = TestServer::start_with(|cfg| cfg.limits.flood_burst = 0).await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let lines: String = (0..200)
        .map(|i| format!("PRIVMSG bob :message {i}\r\n"))
        .collect();
    alice.send_raw(lines.as_bytes()).await;
    for i in 0..200 {
        let msg = bob.expect_command("PRIVMSG").await;
        assert_eq!(msg.text(), format!("message {i}"), "{}", msg.line());
    }
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn a_message_to_an_away_user_is_delivered_and_the_sender_told_301() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    bob.send("AWAY :lunch").await;
    bob.expect_numeric("306").await;
    alice.send("PRIVMSG bob :are you there?").await;
    let away = alice.expect_numeric("301").await;
    assert_eq!(away.params.strs()[1..], ["bob", "lunch"], "{}", away.line());
    bob.expect_privmsg("alice", "bob", "are you there?").await;
}

#[tokio::test]
async fn a_message_to_room_operators_reaches_only_operators() {
    let server = TestServer::start().await;
    let mut op = server.user("op").await;
    op.join("#room").await;
    let mut bob = server.user("bob").await;
    bob.join("#room").await;
    op.expect_command("JOIN").await;
    let mut carol = server.user("carol").await;
    carol.join("#room").await;
    op.expect_command("JOIN").await;
    bob.expect_command("JOIN").await;
    carol.send("PRIVMSG @#room :ops only").await;
    op.expect_privmsg("carol", "@#room", "ops only").await;
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn the_longest_message_a_client_may_send_is_relayed_within_512_bytes() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice.join("#room").await;
    bob.join("#room").await;
    alice.expect_command("JOIN").await;
    for target in ["bob", "#room"] {
        let text = "x".repeat(510 - "PRIVMSG  :".len() - target.len());
        let line = format!("PRIVMSG {target} :{text}");
        assert_eq!(line.len(), 510, "the longest body a client may send");
        alice.send(&line).await;
        // A line over 512 bytes does not even parse: the wait fails quoting it.
        let relayed = bob.expect_command("PRIVMSG").await;
        assert!(
            relayed.line().len() + 2 <= 512,
            "{} bytes relayed",
            relayed.line().len() + 2
        );
        assert!(relayed.is_from("alice"), "{}", relayed.line());
        assert!(
            !relayed.text().is_empty() && text.starts_with(relayed.text()),
            "the text may be cut, not changed: {}",
            relayed.line()
        );
    }
    alice.assert_nothing_more().await;
}
