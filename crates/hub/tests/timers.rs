//! What time alone does: quiet clients are PINGed, silent ones dropped, and
//! connections that never register are closed.

mod support;

use natter_hub::Effect;
use support::*;

#[test]
fn a_quiet_client_is_pinged_after_ping_interval_and_not_before() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.advance_secs(119);
    t.tick();
    t.assert_silent(a);
    t.advance_secs(1);
    t.tick();
    assert_eq!(t.take(a), [format!("PING :{SERVER}")]);
    // Only once while the PING is unanswered.
    t.advance_secs(30);
    t.tick();
    t.assert_silent(a);
    assert!(t.take_effects().is_empty());
}

#[test]
fn any_line_from_the_client_counts_as_an_answer() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.advance_secs(120);
    t.tick();
    assert_eq!(t.take(a), [format!("PING :{SERVER}")]);
    t.advance_secs(59);
    t.send(a, format!("PONG :{SERVER}").as_str());
    t.assert_silent(a);
    // The next PING comes a full interval after the answer.
    t.advance_secs(119);
    t.tick();
    t.assert_silent(a);
    assert!(t.take_effects().is_empty());
    t.advance_secs(1);
    t.tick();
    assert_eq!(t.take(a), [format!("PING :{SERVER}")]);
}

#[test]
fn a_client_that_keeps_talking_is_never_pinged() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    for _ in 0..10 {
        t.advance_secs(100);
        t.send(a, "PING :keepalive");
        t.tick();
        assert_eq!(t.take(a), [format!(":{SERVER} PONG {SERVER} :keepalive")]);
    }
}

#[test]
fn no_answer_within_ping_timeout_closes_and_the_rooms_see_a_quit() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    // bob keeps talking, alice does not.
    t.advance_secs(100);
    t.send(b, "PING :x");
    t.advance_secs(20);
    t.tick();
    t.clear();
    t.advance_secs(59);
    t.send(b, "PING :x");
    t.tick();
    t.assert_silent(a);
    t.advance_secs(1);
    t.tick();
    assert_eq!(
        t.take(a),
        [format!(
            "ERROR :Closing Link: {HOST} (Ping timeout: 60 seconds)"
        )]
    );
    assert_eq!(t.take_effects(), [Effect::Close { client: a }]);
    assert_eq!(
        t.take(b),
        [
            format!(":{SERVER} PONG {SERVER} :x"),
            format!(":{} QUIT :Ping timeout: 60 seconds", source("alice")),
        ]
    );
    let lines = t.ask(b, "WHOWAS alice");
    assert_eq!(numerics(&lines)[0], "314");
}

#[test]
fn timeouts_follow_the_configuration() {
    let mut t = TestHub::with(|c| {
        c.limits.ping_interval = std::time::Duration::from_secs(10);
        c.limits.ping_timeout = std::time::Duration::from_secs(5);
    });
    let a = t.connect("alice");
    t.advance_secs(10);
    t.tick();
    assert_eq!(t.take(a), [format!("PING :{SERVER}")]);
    t.advance_secs(5);
    t.tick();
    assert_eq!(
        t.take(a),
        [format!(
            "ERROR :Closing Link: {HOST} (Ping timeout: 5 seconds)"
        )]
    );
}

#[test]
fn a_connection_that_does_not_register_in_time_is_closed() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "NICK alice");
    t.advance_secs(59);
    t.tick();
    t.assert_silent(a);
    t.advance_secs(1);
    t.tick();
    assert_eq!(
        t.take(a),
        [format!(
            "ERROR :Closing Link: {HOST} (Registration timed out)"
        )]
    );
    assert_eq!(t.take_effects(), [Effect::Close { client: a }]);
    assert_eq!(t.hub.client_count(), 0);
    // The nick it asked for was never taken.
    let b = t.connect("alice");
    t.assert_silent(b);
}

#[test]
fn talking_does_not_extend_the_registration_deadline() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "CAP LS 302");
    t.take(a);
    for _ in 0..6 {
        t.advance_secs(10);
        t.send(a, "PING :still negotiating");
        t.take(a);
        t.tick();
    }
    assert_eq!(
        t.take(a),
        [format!(
            "ERROR :Closing Link: {HOST} (Registration timed out)"
        )]
    );
}

#[test]
fn registered_clients_are_not_subject_to_the_registration_timeout() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.advance_secs(61);
    t.send(a, "PING :x");
    t.take(a);
    t.tick();
    t.assert_silent(a);
    assert!(t.take_effects().is_empty());
}
