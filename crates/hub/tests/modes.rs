//! MODE on rooms (+o +v +t +n +m +i +s +k +l +b) and on oneself (+i +w).

mod support;

use support::*;

/// alice (op) and bob in #room, with nothing received yet.
fn room_of_two(t: &mut TestHub) -> (natter_hub::ClientId, natter_hub::ClientId) {
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    (a, b)
}

/// Asserts both members saw exactly `line` from alice.
fn both_see(t: &mut TestHub, ids: (natter_hub::ClientId, natter_hub::ClientId), rest: &str) {
    let expected = [format!(":{} {rest}", source("alice"))];
    assert_eq!(t.take(ids.0), expected, "alice");
    assert_eq!(t.take(ids.1), expected, "bob");
}

#[test]
fn a_new_room_is_plus_nt_and_mode_shows_modes_and_creation_time() {
    let mut t = TestHub::new();
    let (a, _) = room_of_two(&mut t);
    assert_eq!(
        t.ask(a, "MODE #room"),
        [
            format!(":{SERVER} 324 alice #room :+nt"),
            format!(":{SERVER} 329 alice #room :{START_UNIX}"),
        ]
    );
}

#[test]
fn op_and_voice_are_given_and_taken() {
    let mut t = TestHub::new();
    let ids @ (a, b) = room_of_two(&mut t);
    t.send(a, "MODE #room +o bob");
    both_see(&mut t, ids, "MODE #room +o :bob");
    assert_eq!(&parse(&t.ask(a, "NAMES #room")[0]).params[3], "@alice @bob");
    t.send(a, "MODE #room -o bob");
    both_see(&mut t, ids, "MODE #room -o :bob");
    t.send(a, "MODE #room +v bob");
    both_see(&mut t, ids, "MODE #room +v :bob");
    assert_eq!(&parse(&t.ask(b, "NAMES #room")[0]).params[3], "+bob @alice");
    t.send(a, "MODE #room -v bob");
    both_see(&mut t, ids, "MODE #room -v :bob");
    // Giving what is already there changes nothing and says nothing.
    t.send(a, "MODE #room +o alice");
    t.assert_silent(a);
    t.assert_silent(b);
}

#[test]
fn several_changes_in_one_line_are_announced_in_one_line() {
    let mut t = TestHub::new();
    let ids @ (a, _) = room_of_two(&mut t);
    t.send(a, "MODE #room +mv-t bob");
    both_see(&mut t, ids, "MODE #room +mv-t :bob");
    assert_eq!(&parse(&t.ask(a, "MODE #room")[0]).params[2], "+mn");
}

#[test]
fn flag_modes_are_set_and_removed() {
    let mut t = TestHub::new();
    let ids @ (a, _) = room_of_two(&mut t);
    for (mode, shown) in [
        ("-t", "-t"),
        ("+t", "+t"),
        ("-n", "-n"),
        ("+n", "+n"),
        ("+m", "+m"),
        ("-m", "-m"),
        ("+i", "+i"),
        ("-i", "-i"),
        ("+s", "+s"),
        ("-s", "-s"),
    ] {
        t.send(a, &format!("MODE #room {mode}"));
        both_see(&mut t, ids, &format!("MODE #room :{shown}"));
    }
    assert_eq!(&parse(&t.ask(a, "MODE #room")[0]).params[2], "+nt");
}

#[test]
fn a_key_is_set_shown_to_members_only_and_removed() {
    let mut t = TestHub::new();
    let ids @ (a, _) = room_of_two(&mut t);
    let outsider = t.connect("carol");
    t.send(a, "MODE #room +k sesame");
    both_see(&mut t, ids, "MODE #room +k :sesame");
    assert_eq!(
        t.ask(a, "MODE #room")[0],
        format!(":{SERVER} 324 alice #room +ntk :sesame")
    );
    assert_eq!(
        t.ask(outsider, "MODE #room")[0],
        format!(":{SERVER} 324 carol #room +ntk :*")
    );
    t.send(a, "MODE #room -k sesame");
    both_see(&mut t, ids, "MODE #room -k :*");
    assert_eq!(&parse(&t.ask(a, "MODE #room")[0]).params[2], "+nt");
}

#[test]
fn a_malformed_key_is_525() {
    let mut t = TestHub::new();
    let (a, b) = room_of_two(&mut t);
    let long = "k".repeat(33);
    assert_reply(
        &t.ask(a, &format!("MODE #room +k {long}")),
        "525 alice #room :Key is not well-formed",
    );
    t.assert_silent(b);
}

#[test]
fn a_limit_is_set_and_removed() {
    let mut t = TestHub::new();
    let ids @ (a, _) = room_of_two(&mut t);
    t.send(a, "MODE #room +l 5");
    both_see(&mut t, ids, "MODE #room +l :5");
    assert_eq!(
        t.ask(a, "MODE #room")[0],
        format!(":{SERVER} 324 alice #room +ntl :5")
    );
    t.send(a, "MODE #room -l");
    both_see(&mut t, ids, "MODE #room :-l");
    assert_reply(
        &t.ask(a, "MODE #room +l zero"),
        "696 alice #room l zero :Invalid limit",
    );
    assert_reply(
        &t.ask(a, "MODE #room +l"),
        "696 alice #room +l * :You must specify a parameter for this mode",
    );
}

#[test]
fn bans_are_completed_listed_and_removed() {
    let mut t = TestHub::new();
    let ids @ (a, b) = room_of_two(&mut t);
    t.send(a, "MODE #room +b carol");
    both_see(&mut t, ids, "MODE #room +b :carol!*@*");
    t.advance_secs(10);
    t.send(a, "MODE #room +b *@10.0.0.*");
    both_see(&mut t, ids, "MODE #room +b :*!*@10.0.0.*");
    // Anyone in the room may read the list.
    assert_eq!(
        t.ask(b, "MODE #room +b"),
        [
            format!(
                ":{SERVER} 367 bob #room carol!*@* {} :{START_UNIX}",
                source("alice")
            ),
            format!(
                ":{SERVER} 367 bob #room *!*@10.0.0.* {} :{}",
                source("alice"),
                START_UNIX + 10
            ),
            format!(":{SERVER} 368 bob #room :End of channel ban list"),
        ]
    );
    t.send(a, "MODE #room -b carol!*@*");
    both_see(&mut t, ids, "MODE #room -b :carol!*@*");
    // Removing a ban that is not there says nothing.
    t.send(a, "MODE #room -b carol!*@*");
    t.assert_silent(a);
    assert_eq!(
        t.ask(a, "MODE #room b").len(),
        2,
        "one ban left and the end"
    );
}

#[test]
fn an_unknown_mode_letter_is_472_and_the_rest_still_applies() {
    let mut t = TestHub::new();
    let ids @ (a, _) = room_of_two(&mut t);
    t.send(a, "MODE #room +xm");
    assert_eq!(
        t.take(a),
        [
            format!(":{SERVER} 472 alice x :is unknown mode char to me"),
            format!(":{} MODE #room :+m", source("alice")),
        ]
    );
    assert_eq!(
        t.take(ids.1),
        [format!(":{} MODE #room :+m", source("alice"))]
    );
}

#[test]
fn a_member_who_is_not_an_op_gets_482_once() {
    let mut t = TestHub::new();
    let (a, b) = room_of_two(&mut t);
    assert_reply(
        &t.ask(b, "MODE #room +mi"),
        "482 bob #room :You're not channel operator",
    );
    assert_reply(
        &t.ask(b, "MODE #room +o bob"),
        "482 bob #room :You're not channel operator",
    );
    t.assert_silent(a);
    assert_eq!(&parse(&t.ask(b, "MODE #room")[0]).params[2], "+nt");
}

#[test]
fn op_or_voice_for_someone_not_in_the_room_is_441_or_401() {
    let mut t = TestHub::new();
    let (a, b) = room_of_two(&mut t);
    let _c = t.connect("carol");
    assert_reply(
        &t.ask(a, "MODE #room +o carol"),
        "441 alice carol #room :They aren't on that channel",
    );
    assert_reply(
        &t.ask(a, "MODE #room +v ghost"),
        "401 alice ghost :No such nick/channel",
    );
    t.assert_silent(b);
}

#[test]
fn mode_on_a_room_that_does_not_exist_is_403() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_reply(
        &t.ask(a, "MODE #nowhere"),
        "403 alice #nowhere :No such channel",
    );
    assert_reply(&t.ask(a, "MODE"), "461 alice MODE :Not enough parameters");
}

// ---- user modes ---------------------------------------------------------------------

#[test]
fn user_modes_invisible_and_wallops_are_set_queried_and_removed() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_reply(&t.ask(a, "MODE alice"), "221 alice :+");
    assert_eq!(t.ask(a, "MODE alice +i"), [":alice MODE alice :+i"]);
    assert_eq!(t.ask(a, "MODE alice +w"), [":alice MODE alice :+w"]);
    assert_reply(&t.ask(a, "MODE alice"), "221 alice :+iw");
    assert_eq!(t.ask(a, "MODE alice -iw"), [":alice MODE alice :-iw"]);
    assert_reply(&t.ask(a, "MODE ALICE"), "221 alice :+");
    // Setting what is set says nothing.
    t.send(a, "MODE alice -i");
    t.assert_silent(a);
}

#[test]
fn nobody_makes_themselves_an_operator_with_mode() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "MODE alice +o");
    t.assert_silent(a);
    assert_reply(&t.ask(a, "MODE alice"), "221 alice :+");
}

#[test]
fn user_mode_of_someone_else_is_502_and_of_nobody_401() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    assert_reply(
        &t.ask(a, "MODE bob +i"),
        "502 alice :Cant change mode for other users",
    );
    assert_reply(
        &t.ask(a, "MODE bob"),
        "502 alice :Cant change mode for other users",
    );
    assert_reply(
        &t.ask(a, "MODE ghost"),
        "401 alice ghost :No such nick/channel",
    );
    assert_reply(&t.ask(b, "MODE bob"), "221 bob :+");
}

#[test]
fn an_unknown_user_mode_is_501() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "MODE alice +xi"),
        [
            format!(":{SERVER} 501 alice :Unknown MODE flag"),
            ":alice MODE alice :+i".to_owned(),
        ]
    );
}

#[test]
fn a_ban_mask_holding_a_space_is_ignored() {
    // Only a trailing parameter can hold a space; as a ban it could never match, and
    // shown in the middle of a MODE line it would shift the parameters after it.
    let mut t = TestHub::new();
    let ids @ (a, _) = room_of_two(&mut t);
    t.send(a, "MODE #room +k sesame");
    t.clear();
    t.send(a, "MODE #room +b-k :a b");
    both_see(&mut t, ids, "MODE #room -k :*");
    t.send(a, "MODE #room +k sesame");
    t.clear();
    t.send(a, "MODE #room +b-k ::x");
    both_see(&mut t, ids, "MODE #room -k :*");
    assert_reply(
        &t.ask(a, "MODE #room +b"),
        "368 alice #room :End of channel ban list",
    );
}
