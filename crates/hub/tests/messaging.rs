//! PRIVMSG, NOTICE and TAGMSG: who receives what, with which tags, and which errors
//! the sender gets.

mod support;

use std::collections::HashSet;

use support::*;

/// alice (op), bob and carol in #room.
fn room_of_three(t: &mut TestHub) -> [natter_hub::ClientId; 3] {
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    [a, b, c]
}

#[test]
fn privmsg_to_a_nick_reaches_only_that_nick() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.send(a, "PRIVMSG bob :hello bob");
    assert_eq!(
        t.take(b),
        [format!(":{} PRIVMSG bob :hello bob", source("alice"))]
    );
    t.assert_silent(a);
    t.assert_silent(c);
}

#[test]
fn a_nick_target_is_case_insensitive_but_delivered_as_written() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send(a, "PRIVMSG BOB :hi");
    assert_eq!(t.take(b), [format!(":{} PRIVMSG BOB :hi", source("alice"))]);
}

#[test]
fn privmsg_to_a_room_reaches_every_member_but_the_sender() {
    let mut t = TestHub::new();
    let [a, b, c] = room_of_three(&mut t);
    let outsider = t.connect("dave");
    t.send(a, "PRIVMSG #room :hello room");
    let expected = [format!(":{} PRIVMSG #room :hello room", source("alice"))];
    assert_eq!(t.take(b), expected);
    assert_eq!(t.take(c), expected);
    t.assert_silent(a);
    t.assert_silent(outsider);
}

#[test]
fn notice_is_delivered_like_privmsg() {
    let mut t = TestHub::new();
    let [a, b, c] = room_of_three(&mut t);
    t.send(a, "NOTICE #room :heads up");
    let expected = [format!(":{} NOTICE #room :heads up", source("alice"))];
    assert_eq!(t.take(b), expected);
    assert_eq!(t.take(c), expected);
    t.send(b, "NOTICE alice :psst");
    assert_eq!(
        t.take(a),
        [format!(":{} NOTICE alice :psst", source("bob"))]
    );
}

#[test]
fn several_targets_each_get_their_own_copy() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#room");
    t.join(c, "#room");
    t.clear();
    t.send(a, "PRIVMSG bob,#room :to you all");
    assert_eq!(
        t.take(b),
        [format!(":{} PRIVMSG bob :to you all", source("alice"))]
    );
    assert_eq!(
        t.take(c),
        [format!(":{} PRIVMSG #room :to you all", source("alice"))]
    );
    t.assert_silent(a);
}

#[test]
fn an_unknown_target_is_401_and_the_other_targets_still_get_it() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    assert_reply(
        &t.ask(a, "PRIVMSG ghost,bob :hi"),
        "401 alice ghost :No such nick/channel",
    );
    assert_eq!(t.take(b), [format!(":{} PRIVMSG bob :hi", source("alice"))]);
    assert_reply(
        &t.ask(a, "PRIVMSG #nowhere :hi"),
        "401 alice #nowhere :No such nick/channel",
    );
}

#[test]
fn no_recipient_is_411_and_no_text_is_412() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let _b = t.connect("bob");
    assert_reply(
        &t.ask(a, "PRIVMSG"),
        "411 alice :No recipient given (PRIVMSG)",
    );
    assert_reply(&t.ask(a, "PRIVMSG bob"), "412 alice :No text to send");
    assert_reply(&t.ask(a, "PRIVMSG bob :"), "412 alice :No text to send");
}

#[test]
fn more_targets_than_targmax_is_407_and_nobody_gets_it() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let nine = "bob,c2,c3,c4,c5,c6,c7,c8,c9";
    assert_reply(
        &t.ask(a, &format!("PRIVMSG {nine} :spam")),
        "407 alice bob :Too many recipients",
    );
    t.assert_silent(b);
    // Eight is the limit, and allowed.
    let eight = "bob,c2,c3,c4,c5,c6,c7,c8";
    assert_eq!(
        numerics(&t.ask(a, &format!("PRIVMSG {eight} :ok"))),
        ["401"; 7]
    );
    assert_eq!(t.take(b), [format!(":{} PRIVMSG bob :ok", source("alice"))]);
}

#[test]
fn notice_never_gets_an_error_reply() {
    // RFC 2812, 3.3.2: servers "MUST NOT send any error reply back to the client on
    // receipt of a notice".
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(b, "#room");
    t.clear();
    for line in [
        "NOTICE",
        "NOTICE bob",
        "NOTICE ghost :hi",
        "NOTICE #nowhere :hi",
        "NOTICE #room :from outside",
        "NOTICE c1,c2,c3,c4,c5,c6,c7,c8,c9 :hi",
    ] {
        t.send(a, line);
        t.assert_silent(a);
    }
    t.assert_silent(b);
}

// ---- who may speak in a room ------------------------------------------------------

#[test]
fn a_no_external_messages_room_refuses_outsiders_with_404() {
    let mut t = TestHub::new();
    let [a, b, c] = room_of_three(&mut t);
    let d = t.connect("dave");
    assert_reply(
        &t.ask(d, "PRIVMSG #room :let me in"),
        "404 dave #room :Cannot send to channel",
    );
    for id in [a, b, c] {
        t.assert_silent(id);
    }
    // Once -n, outsiders may speak.
    t.send(a, "MODE #room -n");
    t.clear();
    t.send(d, "PRIVMSG #room :from outside");
    let expected = [format!(":{} PRIVMSG #room :from outside", source("dave"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
    t.assert_silent(d);
}

#[test]
fn a_moderated_room_lets_only_voiced_members_and_ops_speak() {
    let mut t = TestHub::new();
    let [a, b, c] = room_of_three(&mut t);
    t.send(a, "MODE #room +m");
    t.clear();
    assert_reply(
        &t.ask(b, "PRIVMSG #room :hello?"),
        "404 bob #room :Cannot send to channel",
    );
    t.assert_silent(c);
    t.send(a, "PRIVMSG #room :ops may");
    assert_eq!(
        t.take(c),
        [format!(":{} PRIVMSG #room :ops may", source("alice"))]
    );
    t.send(a, "MODE #room +v bob");
    t.clear();
    t.send(b, "PRIVMSG #room :now I may");
    assert_eq!(
        t.take(c),
        [format!(":{} PRIVMSG #room :now I may", source("bob"))]
    );
    t.assert_silent(b);
}

#[test]
fn a_banned_member_cannot_speak_unless_voiced() {
    let mut t = TestHub::new();
    let [a, b, c] = room_of_three(&mut t);
    t.send(a, "MODE #room +b bob!*@*");
    t.clear();
    assert_reply(
        &t.ask(b, "PRIVMSG #room :hello?"),
        "404 bob #room :Cannot send to channel",
    );
    t.assert_silent(c);
    t.send(a, "MODE #room +v bob");
    t.clear();
    t.send(b, "PRIVMSG #room :voice beats ban");
    assert_eq!(
        t.take(c),
        [format!(":{} PRIVMSG #room :voice beats ban", source("bob"))]
    );
}

#[test]
fn statusmsg_reaches_only_the_ops() {
    let mut t = TestHub::new();
    let [a, b, c] = room_of_three(&mut t);
    t.send(a, "MODE #room +o bob");
    t.clear();
    t.send(c, "NOTICE @#room :ops only");
    assert_eq!(
        t.take(a),
        [format!(":{} NOTICE @#room :ops only", source("carol"))]
    );
    assert_eq!(
        t.take(b),
        [format!(":{} NOTICE @#room :ops only", source("carol"))]
    );
    t.assert_silent(c);
}

// ---- away --------------------------------------------------------------------------

#[test]
fn privmsg_to_an_away_nick_gets_301_but_notice_does_not() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send(b, "AWAY :out to lunch");
    t.clear();
    assert_reply(&t.ask(a, "PRIVMSG bob :hi"), "301 alice bob :out to lunch");
    assert_eq!(t.take(b), [format!(":{} PRIVMSG bob :hi", source("alice"))]);
    t.send(a, "NOTICE bob :hi");
    t.assert_silent(a);
}

// ---- echo-message -------------------------------------------------------------------

#[test]
fn echo_message_sends_the_sender_its_own_message_to_a_room() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["echo-message"]);
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.send(a, "PRIVMSG #room :hi all");
    let expected = [format!(":{} PRIVMSG #room :hi all", source("alice"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
}

#[test]
fn echo_message_works_for_nicks_notices_and_outsiders() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["echo-message"]);
    let b = t.connect("bob");
    t.join(b, "#open");
    t.send(b, "MODE #open -n");
    t.clear();
    t.send(a, "NOTICE bob :psst");
    let expected = [format!(":{} NOTICE bob :psst", source("alice"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
    t.send(a, "PRIVMSG #open :from outside");
    let expected = [format!(":{} PRIVMSG #open :from outside", source("alice"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
}

#[test]
fn echo_message_to_oneself_arrives_as_delivered_and_as_echoed() {
    // labeled-response: "When a client sends a private message to its own nick,
    // echo-message will result in duplicate messages being sent by the server".
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["echo-message"]);
    let line = format!(":{} PRIVMSG alice :note to self", source("alice"));
    assert_eq!(
        t.ask(a, "PRIVMSG alice :note to self"),
        [line.clone(), line]
    );
}

#[test]
fn without_echo_message_a_message_to_oneself_still_arrives() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "PRIVMSG alice :note to self"),
        [format!(":{} PRIVMSG alice :note to self", source("alice"))]
    );
}

#[test]
fn a_refused_message_is_not_echoed() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect_with_caps("bob", &["echo-message"]);
    t.join(a, "#room");
    t.clear();
    assert_reply(
        &t.ask(b, "PRIVMSG #room :let me in"),
        "404 bob #room :Cannot send to channel",
    );
}

// ---- message-tags, msgid, server-time ------------------------------------------------

#[test]
fn msgid_and_time_tags_go_only_to_clients_that_asked_for_them() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let tags = t.connect_with_caps("bob", &["message-tags", "server-time"]);
    let time_only = t.connect_with_caps("carol", &["server-time"]);
    let plain = t.connect("dave");
    for id in [a, tags, time_only, plain] {
        t.join(id, "#room");
    }
    t.clear();
    t.send(a, "PRIVMSG #room :tagged?");
    let body = format!(":{} PRIVMSG #room :tagged?", source("alice"));

    let with_tags = t.take(tags);
    assert_eq!(with_tags.len(), 1);
    assert_eq!(tag_keys(&with_tags[0]), ["msgid", "time"]);
    assert!(!tag(&with_tags[0], "msgid").unwrap().is_empty());
    assert_eq!(tag(&with_tags[0], "time").unwrap(), START_TIME_TAG);
    assert_eq!(untagged(&with_tags[0]), body);

    assert_eq!(
        t.take(time_only),
        [format!("@time={START_TIME_TAG} {body}")]
    );
    assert_eq!(t.take(plain), [body]);
}

#[test]
fn each_message_has_its_own_msgid_shared_by_all_its_recipients() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["message-tags", "echo-message"]);
    let b = t.connect_with_caps("bob", &["message-tags"]);
    let c = t.connect_with_caps("carol", &["message-tags"]);
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    let mut ids = HashSet::new();
    for n in 0..3 {
        t.send(a, &format!("PRIVMSG #room :message {n}"));
        let echoed = tag(&t.take(a)[0], "msgid").unwrap();
        assert_eq!(tag(&t.take(b)[0], "msgid").unwrap(), echoed);
        assert_eq!(tag(&t.take(c)[0], "msgid").unwrap(), echoed);
        ids.insert(echoed);
    }
    assert_eq!(ids.len(), 3);
}

#[test]
fn client_only_tags_are_relayed_to_message_tags_clients_only() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["message-tags"]);
    let b = t.connect_with_caps("bob", &["message-tags"]);
    let c = t.connect("carol");
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    t.send(
        a,
        "@+draft/reply=abc123;+example.org/x=a\\sb;not-client=1 PRIVMSG #room :reply",
    );
    let got = t.take(b);
    assert_eq!(got.len(), 1);
    assert_eq!(
        tag_keys(&got[0]),
        ["msgid", "+draft/reply", "+example.org/x"]
    );
    assert_eq!(tag(&got[0], "+draft/reply").unwrap(), "abc123");
    assert_eq!(tag(&got[0], "+example.org/x").unwrap(), "a b");
    assert_eq!(
        untagged(&got[0]),
        format!(":{} PRIVMSG #room :reply", source("alice"))
    );
    assert_eq!(
        t.take(c),
        [format!(":{} PRIVMSG #room :reply", source("alice"))]
    );
}

#[test]
fn tagmsg_reaches_only_message_tags_clients() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["message-tags"]);
    let b = t.connect_with_caps("bob", &["message-tags"]);
    let c = t.connect("carol");
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    t.send(a, "@+typing=active TAGMSG #room");
    let got = t.take(b);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(tag_keys(&got[0]), ["msgid", "+typing"]);
    assert_eq!(tag(&got[0], "+typing").unwrap(), "active");
    let msg = parse(&got[0]);
    assert_eq!(msg.source, Some(source("alice")));
    assert_eq!(msg.command, "TAGMSG");
    assert_eq!(msg.params, ["#room"]);
    t.assert_silent(c);
    t.assert_silent(a);
    // To a nick without message-tags: nothing arrives, and no error either.
    t.send(a, "@+typing=active TAGMSG carol");
    t.assert_silent(c);
    t.assert_silent(a);
}

#[test]
fn tagmsg_is_echoed_to_a_message_tags_sender_with_echo_message() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["message-tags", "echo-message"]);
    let b = t.connect_with_caps("bob", &["message-tags"]);
    t.send(a, "@+react=👍 TAGMSG bob");
    let mine = t.take(a);
    let theirs = t.take(b);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine, theirs);
    assert_eq!(tag(&mine[0], "+react").unwrap(), "👍");
}
