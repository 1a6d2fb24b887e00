//! Bad input gets the error it deserves and the client keeps working; limits hold.

mod support;

use natter_proto::ParseError;
use support::*;

#[test]
fn an_over_long_line_is_417_and_the_client_keeps_working() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send_bad(a, ParseError::BodyTooLong);
    assert_reply(&t.take(a), "417 alice :Input line was too long");
    t.send_bad(a, ParseError::TagsTooLong);
    assert_reply(&t.take(a), "417 alice :Input line was too long");
    assert!(t.take_effects().is_empty());
    t.send(a, "PRIVMSG bob :still here");
    assert_eq!(
        t.take(b),
        [format!(":{} PRIVMSG bob :still here", source("alice"))]
    );
}

#[test]
fn a_line_parsed_as_too_long_is_417_not_relayed() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let body = format!("PRIVMSG bob :{}", "x".repeat(500));
    assert_reply(&t.ask(a, &body), "417 alice :Input line was too long");
    t.assert_silent(b);
    let tags = format!("@+a={} PRIVMSG bob :hi", "v".repeat(4100));
    assert_reply(&t.ask(a, &tags), "417 alice :Input line was too long");
    t.assert_silent(b);
}

#[test]
fn invalid_utf8_is_a_fail_naming_the_command_and_is_never_relayed() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send_bytes(a, b"PRIVMSG bob :caf\xe9");
    assert_eq!(
        t.take(a),
        [format!(
            ":{SERVER} FAIL PRIVMSG INVALID_UTF8 :Message rejected: it is not valid UTF-8"
        )]
    );
    t.assert_silent(b);
    t.send_bytes(a, b"\xff\xfe");
    assert_eq!(
        t.take(a),
        [format!(
            ":{SERVER} FAIL * INVALID_UTF8 :Message rejected: it is not valid UTF-8"
        )]
    );
    t.send(a, "PING :ok");
    assert_eq!(t.take(a), [format!(":{SERVER} PONG {SERVER} :ok")]);
}

#[test]
fn a_nul_byte_is_refused_and_not_relayed() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send_bytes(a, b"PRIVMSG bob :a\0b");
    assert_reply(
        &t.take(a),
        "400 alice PRIVMSG :Message rejected: it holds a NUL or control byte",
    );
    t.assert_silent(b);
}

#[test]
fn an_empty_line_is_ignored() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "   ");
    t.assert_silent(a);
}

#[test]
fn an_unknown_command_is_421() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_reply(
        &t.ask(a, "FROBNICATE now"),
        "421 alice FROBNICATE :Unknown command",
    );
    assert_reply(
        &t.ask(a, "frobnicate"),
        "421 alice FROBNICATE :Unknown command",
    );
    assert_reply(&t.ask(a, ":src"), "421 alice * :Unknown command");
}

#[test]
fn disabled_rfc_commands_are_446() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_reply(
        &t.ask(a, "USERS"),
        "446 alice USERS :This command has been disabled",
    );
}

#[test]
fn joining_more_rooms_than_chanlimit_is_405() {
    let mut t = TestHub::with(|c| c.limits.channels_per_client = 2);
    let a = t.connect("alice");
    let lines = t.ask(a, "JOIN #a,#b,#c");
    assert_eq!(
        lines.last().unwrap(),
        &format!(":{SERVER} 405 alice #c :You have joined too many channels")
    );
    assert_eq!(lines.iter().filter(|l| l.contains(" JOIN ")).count(), 2);
    t.send(a, "PART #a");
    t.take(a);
    t.join(a, "#c");
}

#[test]
fn chanlimit_and_nicklen_are_advertised_as_configured() {
    let mut t = TestHub::with(|c| {
        c.limits.channels_per_client = 2;
        c.limits.nick_len = 9;
    });
    let a = t.open();
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :A");
    let isupport: String = t
        .take(a)
        .iter()
        .filter(|l| numeric_of(l) == Some("005"))
        .cloned()
        .collect();
    assert!(isupport.contains(" CHANLIMIT=#:2 "), "{isupport}");
    assert!(isupport.contains(" NICKLEN=9 "), "{isupport}");
}

#[test]
fn a_nick_longer_than_nicklen_is_432() {
    let mut t = TestHub::with(|c| c.limits.nick_len = 9);
    let a = t.open();
    assert_reply(
        &t.ask(a, "NICK abcdefghij"),
        "432 * abcdefghij :Erroneous nickname",
    );
    t.send(a, "NICK abcdefghi");
    t.send(a, "USER x 0 * :X");
    assert_eq!(numerics(&t.take(a))[0], "001");
}

#[test]
fn too_many_rooms_in_one_join_is_407() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let lines = t.ask(a, "JOIN #1,#2,#3,#4,#5,#6,#7,#8,#9,#10");
    assert_eq!(lines.iter().filter(|l| l.contains(" JOIN ")).count(), 8);
    assert_eq!(
        lines.last().unwrap(),
        &format!(":{SERVER} 407 alice #9 :Too many targets")
    );
}

#[test]
fn a_long_away_message_is_cut_to_awaylen() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send(b, &format!("AWAY :{}", "z".repeat(450)));
    t.take(b);
    let lines = t.ask(a, "WHOIS bob");
    assert_eq!(parse(the_numeric(&lines, "301")).params[2].len(), 390);
}

#[test]
fn a_long_realname_is_cut_at_registration() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "NICK alice");
    t.send(a, &format!("USER alice 0 * :{}", "é".repeat(100)));
    t.take(a);
    let lines = t.ask(a, "WHOIS alice");
    let realname = parse(the_numeric(&lines, "311")).params[5].to_owned();
    // 128 bytes at most, cut at a character boundary.
    assert_eq!(realname, "é".repeat(64));
}

#[test]
fn a_username_is_cleaned_of_characters_that_break_masks() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "NICK alice");
    t.send(a, "USER a!b@c:d 0 * :A");
    let lines = t.take(a);
    assert_eq!(
        lines[0],
        format!(":{SERVER} 001 alice :Welcome to the natter IRC Network, alice!abcd@{HOST}")
    );
}

/// Parameters a client chose must never break the structure of a reply: a middle
/// parameter that is empty, holds a space or starts with `:` would shift every
/// parameter after it (and panics the line writer's debug check).
#[test]
fn hostile_parameters_never_break_a_reply() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.open();
    for (client, line, code) in [
        (b, "NICK :bad nick", "432"),
        (b, "NICK ::colon", "432"),
        (b, "CAP :", "410"),
        (b, "CAP :L S", "410"),
        (a, "TOPIC :#no such", "403"),
        (a, "PART :#no such", "403"),
        (a, "JOIN :#no such", "403"),
        (a, "NAMES :#no such", "366"),
        (a, "MODE :", "401"),
        (a, "MODE :no one", "401"),
        (a, "INVITE alice :", "403"),
        (a, "WHOIS :no one", "401"),
        (a, "WHOWAS :no one", "406"),
        (a, "TAGMSG :no one", "401"),
    ] {
        let lines = t.ask(client, line);
        let reply = the_numeric(&lines, code);
        let msg = parse(reply);
        // Every parameter but the last is one non-empty word not starting with `:`.
        let params = msg.params.strs();
        let (last, middle) = params.split_last().unwrap();
        for p in middle {
            assert!(
                !p.is_empty() && !p.contains(' ') && !p.starts_with(':'),
                "{line:?} gave {reply:?}"
            );
        }
        assert!(!last.is_empty(), "{line:?} gave {reply:?}");
    }
}
