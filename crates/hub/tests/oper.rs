//! Server operators: OPER against configured accounts (the hash is checked outside the
//! hub), KILL and WALLOPS.

mod support;

use natter_hub::{Effect, OperAccount};
use support::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$ZmFrZQ";

fn hub_with_oper() -> TestHub {
    TestHub::with(|c| {
        c.opers.push(OperAccount {
            name: "admin".into(),
            password_hash: HASH.into(),
        })
    })
}

#[test]
fn oper_with_an_unknown_account_is_464_and_checks_nothing() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    assert_reply(
        &t.ask(a, "OPER root hunter2"),
        "464 alice :Password incorrect",
    );
    assert!(t.take_effects().is_empty());
    assert_reply(
        &t.ask(a, "OPER admin"),
        "461 alice OPER :Not enough parameters",
    );
}

#[test]
fn oper_asks_the_server_to_verify_the_password_and_success_grants_plus_o() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    t.send(a, "OPER admin hunter2");
    t.assert_silent(a);
    let effects = t.take_effects();
    let ticket = match effects.as_slice() {
        [Effect::VerifyPassword {
            client,
            ticket,
            password,
            hash,
        }] => {
            assert_eq!(*client, a);
            assert_eq!(password, "hunter2");
            assert_eq!(hash, HASH);
            *ticket
        }
        other => panic!("expected one VerifyPassword, got {other:?}"),
    };
    t.password_checked(ticket, true);
    assert_eq!(
        t.take(a),
        [
            format!(":{SERVER} 381 alice :You are now an IRC operator"),
            ":alice MODE alice :+o".to_owned(),
        ]
    );
    assert_reply(&t.ask(a, "MODE alice"), "221 alice :+o");
    let lines = t.ask(a, "LUSERS");
    assert_eq!(
        the_numeric(&lines, "252"),
        format!(":{SERVER} 252 alice 1 :operator(s) online")
    );
    // A ticket is used once.
    t.password_checked(ticket, true);
    t.assert_silent(a);
}

#[test]
fn a_failed_password_check_is_464() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    t.send(a, "OPER admin wrong");
    let ticket = match t.take_effects().as_slice() {
        [Effect::VerifyPassword { ticket, .. }] => *ticket,
        other => panic!("{other:?}"),
    };
    t.password_checked(ticket, false);
    assert_reply(&t.take(a), "464 alice :Password incorrect");
    assert_reply(&t.ask(a, "MODE alice"), "221 alice :+");
}

#[test]
fn a_check_that_finishes_after_the_client_left_is_dropped() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    t.send(a, "OPER admin hunter2");
    let ticket = match t.take_effects().as_slice() {
        [Effect::VerifyPassword { ticket, .. }] => *ticket,
        other => panic!("{other:?}"),
    };
    t.disconnect(a, "Connection reset by peer");
    t.take(a);
    t.take_effects();
    t.password_checked(ticket, true);
    t.assert_silent(a);
    assert!(t.take_effects().is_empty());
}

#[test]
fn lines_sent_during_a_password_check_are_answered_after_it_in_order() {
    let mut t = hub_with_oper();
    let a = t.connect_with_caps("alice", &["labeled-response", "batch"]);
    t.send(a, "@label=op OPER admin hunter2");
    let ticket = match t.take_effects().as_slice() {
        [Effect::VerifyPassword { ticket, .. }] => *ticket,
        other => panic!("{other:?}"),
    };
    t.send(a, "PING :after-oper");
    t.assert_silent(a);
    t.password_checked(ticket, true);
    let lines = t.take(a);
    let pong = lines
        .iter()
        .position(|l| l.contains("PONG"))
        .expect("the PING is answered");
    let welcome = lines
        .iter()
        .position(|l| l.contains(" 381 "))
        .expect("381 arrives");
    assert!(
        welcome < pong,
        "the OPER reply comes before the PONG: {lines:#?}"
    );
    assert!(
        lines[..pong].iter().any(|l| l.contains("label=op")),
        "the OPER reply carries its label: {lines:#?}"
    );
}

#[test]
fn an_operator_may_drop_plus_o() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    t.make_oper(a, "admin");
    assert_eq!(t.ask(a, "MODE alice -o"), [":alice MODE alice :-o"]);
    assert_reply(&t.ask(a, "MODE alice"), "221 alice :+");
}

#[test]
fn kill_by_a_non_operator_is_481() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    let b = t.connect("bob");
    assert_reply(
        &t.ask(a, "KILL bob :go away"),
        "481 alice :Permission Denied- You're not an IRC operator",
    );
    t.assert_silent(b);
    assert!(t.take_effects().is_empty());
}

#[test]
fn kill_by_an_operator_closes_the_target_and_its_rooms_see_a_quit() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.make_oper(a, "admin");
    t.join(b, "#room");
    t.join(c, "#room");
    t.clear();
    t.send(a, "KILL bob :spamming");
    t.assert_silent(a);
    assert_eq!(
        t.take(b),
        [format!(
            "ERROR :Closing Link: {HOST} (Killed (alice (spamming)))"
        )]
    );
    assert_eq!(t.take_effects(), [Effect::Close { client: b }]);
    assert_eq!(
        t.take(c),
        [format!(
            ":{} QUIT :Killed (alice (spamming))",
            source("bob")
        )]
    );
    assert_reply(&t.ask(a, "KILL bob"), "401 alice bob :No such nick/channel");
}

#[test]
fn wallops_reaches_operators_and_plus_w_users() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.make_oper(a, "admin");
    t.send(b, "MODE bob +w");
    t.clear();
    t.send(a, "WALLOPS :maintenance at noon");
    let expected = [format!(":{} WALLOPS :maintenance at noon", source("alice"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
    t.assert_silent(c);
}

#[test]
fn wallops_by_a_non_operator_is_481() {
    let mut t = hub_with_oper();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send(b, "MODE bob +w");
    t.clear();
    assert_reply(
        &t.ask(a, "WALLOPS :hello"),
        "481 alice :Permission Denied- You're not an IRC operator",
    );
    t.assert_silent(b);
    assert_reply(
        &t.ask(a, "WALLOPS"),
        "461 alice WALLOPS :Not enough parameters",
    );
}
