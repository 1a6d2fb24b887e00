//! MONITOR: a client's watch list of nicknames, and the 730/731 notices it gets when
//! one of them comes online or goes away.

mod support;

use support::*;

/// The comma-separated targets of a 730-733 line, sorted.
fn targets_of(line: &str) -> Vec<String> {
    let msg = parse(line);
    let mut targets: Vec<String> = msg
        .params
        .last()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    targets.sort();
    targets
}

#[test]
fn isupport_advertises_the_monitor_limit() {
    let mut t = TestHub::with(|c| c.limits.monitor = 42);
    let c = t.open();
    t.send(c, "NICK alice");
    t.send(c, "USER alice 0 * :A");
    let burst = t.take(c);
    assert!(
        burst
            .iter()
            .filter(|l| numeric_of(l) == Some("005"))
            .any(|l| l.split(' ').any(|token| token == "MONITOR=42")),
        "{burst:#?}"
    );
}

#[test]
fn adding_targets_reports_who_is_online_and_who_is_not() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let _b = t.connect("bob");
    assert_eq!(
        t.ask(a, "MONITOR + bob,carol"),
        [
            format!(":{SERVER} 730 alice :bob!bob@127.0.0.1"),
            format!(":{SERVER} 731 alice :carol"),
        ]
    );
}

#[test]
fn online_targets_are_found_whatever_their_case() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let _b = t.connect("Bob");
    assert_eq!(
        t.ask(a, "MONITOR + BOB"),
        [format!(":{SERVER} 730 alice :Bob!Bob@127.0.0.1")]
    );
}

#[test]
fn several_online_and_offline_targets_share_one_line_each() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let _b = t.connect("bob");
    let _c = t.connect("carol");
    let lines = t.ask(a, "MONITOR + bob,dave,carol,erin");
    assert_eq!(numerics(&lines), ["730", "731"]);
    assert_eq!(
        targets_of(&lines[0]),
        ["bob!bob@127.0.0.1", "carol!carol@127.0.0.1"]
    );
    assert_eq!(targets_of(&lines[1]), ["dave", "erin"]);
}

#[test]
fn a_target_already_watched_is_not_added_again() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob");
    t.take(a);
    assert_eq!(t.ask(a, "MONITOR + Bob"), Vec::<String>::new());
    assert_eq!(
        t.ask(a, "MONITOR L"),
        [
            format!(":{SERVER} 732 alice :bob"),
            format!(":{SERVER} 733 alice :End of MONITOR list"),
        ]
    );
}

#[test]
fn invalid_nicks_are_not_watched() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "MONITOR + #room,bob"),
        [format!(":{SERVER} 731 alice :bob")]
    );
    assert_eq!(
        t.ask(a, "MONITOR L"),
        [
            format!(":{SERVER} 732 alice :bob"),
            format!(":{SERVER} 733 alice :End of MONITOR list"),
        ]
    );
}

#[test]
fn list_shows_the_targets_as_written_then_the_end() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + Carol,bob");
    t.take(a);
    assert_eq!(
        t.ask(a, "MONITOR L"),
        [
            format!(":{SERVER} 732 alice :Carol,bob"),
            format!(":{SERVER} 733 alice :End of MONITOR list"),
        ]
    );
}

#[test]
fn an_empty_list_is_just_the_end() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "MONITOR L"),
        [format!(":{SERVER} 733 alice :End of MONITOR list")]
    );
}

#[test]
fn removing_targets_is_silent_and_stops_notifications() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob,carol");
    t.take(a);
    assert_eq!(t.ask(a, "MONITOR - BOB"), Vec::<String>::new());
    assert_eq!(
        t.ask(a, "MONITOR L"),
        [
            format!(":{SERVER} 732 alice :carol"),
            format!(":{SERVER} 733 alice :End of MONITOR list"),
        ]
    );
    let _b = t.connect("bob");
    t.assert_silent(a);
    let _c = t.connect("carol");
    assert_eq!(
        t.take(a),
        [format!(":{SERVER} 730 alice :carol!carol@127.0.0.1")]
    );
}

#[test]
fn clearing_is_silent_and_empties_the_list() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob,carol");
    t.take(a);
    assert_eq!(t.ask(a, "MONITOR C"), Vec::<String>::new());
    assert_eq!(
        t.ask(a, "MONITOR L"),
        [format!(":{SERVER} 733 alice :End of MONITOR list")]
    );
    let _b = t.connect("bob");
    t.assert_silent(a);
}

#[test]
fn status_reports_every_target() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob,carol,dave");
    t.take(a);
    let _b = t.connect("bob");
    t.take(a);
    let lines = t.ask(a, "MONITOR S");
    assert_eq!(numerics(&lines), ["730", "731"]);
    assert_eq!(lines[0], format!(":{SERVER} 730 alice :bob!bob@127.0.0.1"));
    assert_eq!(targets_of(&lines[1]), ["carol", "dave"]);
}

#[test]
fn status_of_an_empty_list_is_nothing() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(t.ask(a, "MONITOR S"), Vec::<String>::new());
}

#[test]
fn a_full_list_refuses_the_rest_with_734() {
    let mut t = TestHub::with(|c| c.limits.monitor = 2);
    let a = t.connect("alice");
    let lines = t.ask(a, "MONITOR + bob,carol,dave,erin");
    assert_eq!(
        lines,
        [
            format!(":{SERVER} 734 alice 2 dave,erin :Monitor list is full."),
            format!(":{SERVER} 731 alice :bob,carol"),
        ]
    );
    assert_eq!(
        t.ask(a, "MONITOR + frank"),
        [format!(
            ":{SERVER} 734 alice 2 frank :Monitor list is full."
        )]
    );
    // Removing one makes room again.
    t.send(a, "MONITOR - bob");
    assert_eq!(
        t.ask(a, "MONITOR + frank"),
        [format!(":{SERVER} 731 alice :frank")]
    );
}

#[test]
fn a_missing_or_unknown_modifier_is_461() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    for request in ["MONITOR", "MONITOR X bob"] {
        assert_eq!(
            t.ask(a, request),
            [format!(
                ":{SERVER} 461 alice MONITOR :Not enough parameters"
            )],
            "{request}"
        );
    }
}

// ---- notifications ---------------------------------------------------------------------

#[test]
fn a_watched_nick_registering_is_730() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob");
    t.take(a);
    // Not online until registration completes.
    let b = t.open();
    t.send(b, "NICK bob");
    t.assert_silent(a);
    t.send(b, "USER bobby 0 * :Bob");
    assert_eq!(
        t.take(a),
        [format!(":{SERVER} 730 alice :bob!bobby@127.0.0.1")]
    );
}

#[test]
fn a_connection_that_never_registers_is_never_reported() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob");
    t.take(a);
    let b = t.open();
    t.send(b, "NICK bob");
    t.disconnect(b, "gone");
    t.assert_silent(a);
}

#[test]
fn a_watched_nick_quitting_is_731() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("Bob");
    t.send(a, "MONITOR + bob");
    t.take(a);
    t.send(b, "QUIT :bye");
    assert_eq!(t.take(a), [format!(":{SERVER} 731 alice :Bob")]);
    // Dropped connections too.
    let b = t.connect("bob");
    t.take(a);
    t.disconnect(b, "Connection reset");
    assert_eq!(t.take(a), [format!(":{SERVER} 731 alice :bob")]);
}

#[test]
fn a_watched_nick_changing_is_731_for_the_old_and_730_for_the_new() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let c = t.connect("carol");
    let b = t.connect("bob");
    t.send(a, "MONITOR + bob,robert");
    t.send(c, "MONITOR + robert");
    t.take(a);
    t.take(c);
    t.send(b, "NICK robert");
    assert_eq!(
        t.take(a),
        [
            format!(":{SERVER} 731 alice :bob"),
            format!(":{SERVER} 730 alice :robert!bob@127.0.0.1"),
        ]
    );
    assert_eq!(
        t.take(c),
        [format!(":{SERVER} 730 carol :robert!bob@127.0.0.1")]
    );
}

#[test]
fn every_watcher_is_told() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let c = t.connect("carol");
    t.send(a, "MONITOR + bob");
    t.send(c, "MONITOR + BOB");
    t.take(a);
    t.take(c);
    let _b = t.connect("bob");
    assert_eq!(
        t.take(a),
        [format!(":{SERVER} 730 alice :bob!bob@127.0.0.1")]
    );
    assert_eq!(
        t.take(c),
        [format!(":{SERVER} 730 carol :bob!bob@127.0.0.1")]
    );
}

#[test]
fn a_forced_rename_of_a_watched_nick_is_reported() {
    let mut t = TestHub::new();
    t.hub.load_accounts(vec![natter_store::Account {
        name: "bob".into(),
        display_name: "bob".into(),
        password_hash: "fake$pw".into(),
        created_ms: 0,
    }]);
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob");
    t.take(a);
    let _impostor = t.connect("bob");
    t.take(a);
    t.advance_secs(30);
    t.tick();
    assert_eq!(t.take(a), [format!(":{SERVER} 731 alice :bob")]);
}

#[test]
fn a_watcher_that_leaves_is_forgotten() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MONITOR + bob");
    t.take(a);
    t.send(a, "QUIT");
    let closing = t.take(a);
    assert!(closing[0].starts_with("ERROR "), "{closing:#?}");
    let _b = t.connect("bob");
    t.assert_silent(a);
}

#[test]
fn a_watcher_is_told_about_itself_too() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "MONITOR + alice"),
        [format!(":{SERVER} 730 alice :alice!alice@127.0.0.1")]
    );
    assert_eq!(
        t.ask(a, "NICK alicia"),
        [
            ":alice!alice@127.0.0.1 NICK :alicia".to_owned(),
            format!(":{SERVER} 731 alicia :alice"),
        ]
    );
}
