//! Rooms: JOIN and what it answers, the ways a JOIN is refused, INVITE, PART, TOPIC,
//! KICK, NICK and QUIT as neighbours see them, LIST and NAMES.

mod support;

use natter_hub::Effect;
use support::*;

fn names_reply(me: &str, room: &str, names: &str) -> [String; 2] {
    [
        format!(":{SERVER} 353 {me} = {room} :{names}"),
        format!(":{SERVER} 366 {me} {room} :End of /NAMES list"),
    ]
}

// ---- JOIN ---------------------------------------------------------------------------

#[test]
fn the_first_to_join_creates_the_room_and_is_its_operator() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let mut expected = vec![format!(":{} JOIN :#room", source("alice"))];
    expected.extend(names_reply("alice", "#room", "@alice"));
    assert_eq!(t.ask(a, "JOIN #room"), expected);
}

#[test]
fn a_later_joiner_sees_the_members_and_the_members_see_the_join() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    let mut expected = vec![format!(":{} JOIN :#room", source("bob"))];
    expected.extend(names_reply("bob", "#room", "@alice bob"));
    assert_eq!(t.ask(b, "JOIN #room"), expected);
    assert_eq!(t.take(a), [format!(":{} JOIN :#room", source("bob"))]);
}

#[test]
fn room_names_are_case_insensitive_and_keep_the_creators_spelling() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#Room");
    let lines = t.ask(b, "JOIN #ROOM");
    assert_eq!(lines[0], format!(":{} JOIN :#Room", source("bob")));
    // Joining again changes nothing.
    t.send(b, "JOIN #room");
    t.assert_silent(b);
}

#[test]
fn join_takes_several_rooms_with_their_keys() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#a");
    t.join(a, "#b");
    t.send(a, "MODE #a +k keyA");
    t.send(a, "MODE #b +k keyB");
    t.send(a, "JOIN #c");
    t.clear();
    let lines = t.ask(b, "JOIN #a,#b,#c keyA,keyB");
    let joins: Vec<&String> = lines.iter().filter(|l| l.contains(" JOIN ")).collect();
    assert_eq!(
        joins,
        [
            &format!(":{} JOIN :#a", source("bob")),
            &format!(":{} JOIN :#b", source("bob")),
            &format!(":{} JOIN :#c", source("bob")),
        ]
    );
}

#[test]
fn a_wrong_or_missing_key_is_475() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.send(a, "MODE #room +k sesame");
    t.clear();
    assert_reply(
        &t.ask(b, "JOIN #room guess"),
        "475 bob #room :Cannot join channel (+k)",
    );
    assert_reply(
        &t.ask(b, "JOIN #room"),
        "475 bob #room :Cannot join channel (+k)",
    );
    t.assert_silent(a);
    assert_eq!(
        t.ask(b, "JOIN #room sesame")[0],
        format!(":{} JOIN :#room", source("bob"))
    );
}

#[test]
fn an_invite_only_room_is_473_without_an_invitation() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.send(a, "MODE #room +i");
    t.clear();
    assert_reply(
        &t.ask(b, "JOIN #room"),
        "473 bob #room :Cannot join channel (+i)",
    );
    t.assert_silent(a);
}

#[test]
fn a_full_room_is_471() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#room");
    t.send(a, "MODE #room +l 2");
    t.join(b, "#room");
    t.clear();
    assert_reply(
        &t.ask(c, "JOIN #room"),
        "471 carol #room :Cannot join channel (+l)",
    );
}

#[test]
fn a_banned_user_is_474() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.send(a, "MODE #room +b *!bob@*");
    t.clear();
    assert_reply(
        &t.ask(b, "JOIN #room"),
        "474 bob #room :Cannot join channel (+b)",
    );
}

#[test]
fn an_invalid_room_name_is_403() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_reply(&t.ask(a, "JOIN room"), "403 alice room :No such channel");
    assert_reply(&t.ask(a, "JOIN #"), "403 alice # :No such channel");
    let long = format!("#{}", "x".repeat(64));
    assert_reply(
        &t.ask(a, &format!("JOIN {long}")),
        &format!("403 alice {long} :No such channel"),
    );
}

#[test]
fn join_without_a_room_is_461() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_reply(&t.ask(a, "JOIN"), "461 alice JOIN :Not enough parameters");
}

#[test]
fn joining_a_room_with_a_topic_shows_it_before_the_names() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.send(a, "TOPIC #room :all about rooms");
    t.advance_secs(5);
    t.clear();
    let mut expected = vec![
        format!(":{} JOIN :#room", source("bob")),
        format!(":{SERVER} 332 bob #room :all about rooms"),
        format!(":{SERVER} 333 bob #room {} :{START_UNIX}", source("alice")),
    ];
    expected.extend(names_reply("bob", "#room", "@alice bob"));
    assert_eq!(t.ask(b, "JOIN #room"), expected);
}

#[test]
fn extended_join_adds_account_and_realname_for_those_who_asked() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["extended-join"]);
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.send(c, "JOIN #room");
    assert_eq!(
        t.take(a),
        [format!(":{} JOIN #room * :Real carol", source("carol"))]
    );
    assert_eq!(t.take(b), [format!(":{} JOIN :#room", source("carol"))]);
}

// ---- INVITE -------------------------------------------------------------------------

#[test]
fn invite_lets_the_invited_through_invite_only_and_tells_ops_with_invite_notify() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let op = t.connect_with_caps("carol", &["invite-notify"]);
    let member = t.connect_with_caps("dave", &["invite-notify"]);
    t.join(a, "#room");
    t.join(op, "#room");
    t.join(member, "#room");
    t.send(a, "MODE #room +i");
    t.send(a, "MODE #room +o carol");
    t.clear();

    assert_reply(&t.ask(a, "INVITE bob #room"), "341 alice bob :#room");
    let invite = format!(":{} INVITE bob :#room", source("alice"));
    assert_eq!(t.take(b), std::slice::from_ref(&invite));
    assert_eq!(t.take(op), [invite]);
    t.assert_silent(member);

    let lines = t.ask(b, "JOIN #room");
    assert_eq!(lines[0], format!(":{} JOIN :#room", source("bob")));
    // The invitation is used up by joining.
    t.send(b, "PART #room");
    t.clear();
    assert_reply(
        &t.ask(b, "JOIN #room"),
        "473 bob #room :Cannot join channel (+i)",
    );
}

#[test]
fn any_member_may_invite_to_a_room_that_is_not_invite_only() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    assert_reply(&t.ask(b, "INVITE carol #room"), "341 bob carol :#room");
    assert_eq!(
        t.take(c),
        [format!(":{} INVITE carol :#room", source("bob"))]
    );
    t.assert_silent(a);
}

#[test]
fn inviting_a_member_is_443() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    assert_reply(
        &t.ask(a, "INVITE bob #room"),
        "443 alice bob #room :is already on channel",
    );
    t.assert_silent(b);
}

#[test]
fn only_ops_invite_to_an_invite_only_room_and_only_members_invite_at_all() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#room");
    t.join(b, "#room");
    t.send(a, "MODE #room +i");
    t.clear();
    assert_reply(
        &t.ask(b, "INVITE carol #room"),
        "482 bob #room :You're not channel operator",
    );
    assert_reply(
        &t.ask(c, "INVITE carol #room"),
        "442 carol #room :You're not on that channel",
    );
    assert_reply(
        &t.ask(a, "INVITE ghost #room"),
        "401 alice ghost :No such nick/channel",
    );
    assert_reply(
        &t.ask(a, "INVITE carol #nowhere"),
        "403 alice #nowhere :No such channel",
    );
    t.assert_silent(c);
}

#[test]
fn inviting_an_away_user_also_says_they_are_away() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.send(b, "AWAY :busy");
    t.clear();
    assert_eq!(
        t.ask(a, "INVITE bob #room"),
        [
            format!(":{SERVER} 341 alice bob :#room"),
            format!(":{SERVER} 301 alice bob :busy"),
        ]
    );
}

// ---- PART ---------------------------------------------------------------------------

#[test]
fn part_with_a_reason_is_seen_by_every_member_and_the_leaver() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.send(b, "PART #room :see you");
    let expected = [format!(":{} PART #room :see you", source("bob"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
    // bob is gone: his messages no longer reach the (+n) room.
    assert_eq!(numerics(&t.ask(b, "PRIVMSG #room :hi")), ["404"]);
}

#[test]
fn part_without_a_reason() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.join(a, "#room");
    assert_eq!(
        t.ask(a, "PART #room"),
        [format!(":{} PART :#room", source("alice"))]
    );
}

#[test]
fn part_of_a_room_one_is_not_in_is_442_and_of_no_room_403() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.clear();
    assert_reply(
        &t.ask(b, "PART #room"),
        "442 bob #room :You're not on that channel",
    );
    assert_reply(
        &t.ask(b, "PART #nowhere"),
        "403 bob #nowhere :No such channel",
    );
    assert_reply(&t.ask(b, "PART"), "461 bob PART :Not enough parameters");
    t.assert_silent(a);
}

#[test]
fn join_0_leaves_every_room() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    for room in ["#a", "#b"] {
        t.join(a, room);
        t.join(b, room);
    }
    t.clear();
    t.send(a, "JOIN 0");
    let expected = vec![
        format!(":{} PART :#a", source("alice")),
        format!(":{} PART :#b", source("alice")),
    ];
    assert_eq!(sorted(t.take(a)), expected);
    assert_eq!(sorted(t.take(b)), expected);
    let whois = t.ask(a, "WHOIS alice");
    assert!(!numerics(&whois).contains(&"319"), "{whois:#?}");
}

#[test]
fn an_empty_room_disappears_and_a_new_one_starts_fresh() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.send(a, "TOPIC #room :old topic");
    t.send(a, "MODE #room +i");
    t.send(a, "PART #room");
    t.clear();
    assert_eq!(
        t.ask(b, "LIST"),
        [
            format!(":{SERVER} 321 bob Channel :Users  Name"),
            format!(":{SERVER} 323 bob :End of /LIST"),
        ]
    );
    // Not invite-only any more, no topic, and bob is its operator.
    let mut expected = vec![format!(":{} JOIN :#room", source("bob"))];
    expected.extend(names_reply("bob", "#room", "@bob"));
    assert_eq!(t.ask(b, "JOIN #room"), expected);
}

// ---- TOPIC --------------------------------------------------------------------------

#[test]
fn topic_is_set_for_everyone_and_queried_with_who_and_when() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let outsider = t.connect("carol");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    assert_reply(&t.ask(b, "TOPIC #room"), "331 bob #room :No topic is set");
    t.send(a, "TOPIC #room :the plan");
    let expected = [format!(":{} TOPIC #room :the plan", source("alice"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
    t.assert_silent(outsider);
    // Anyone may read the topic of a room that is not secret.
    assert_eq!(
        t.ask(outsider, "TOPIC #room"),
        [
            format!(":{SERVER} 332 carol #room :the plan"),
            format!(
                ":{SERVER} 333 carol #room {} :{START_UNIX}",
                source("alice")
            ),
        ]
    );
    // An empty topic clears it.
    t.send(a, "TOPIC #room :");
    assert_eq!(t.take(b), [format!(":{} TOPIC #room :", source("alice"))]);
    assert_reply(&t.ask(b, "TOPIC #room"), "331 bob #room :No topic is set");
}

#[test]
fn only_ops_set_the_topic_of_a_t_room() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    assert_reply(
        &t.ask(b, "TOPIC #room :mine now"),
        "482 bob #room :You're not channel operator",
    );
    t.assert_silent(a);
    t.send(a, "MODE #room -t");
    t.clear();
    t.send(b, "TOPIC #room :mine now");
    assert_eq!(
        t.take(a),
        [format!(":{} TOPIC #room :mine now", source("bob"))]
    );
}

#[test]
fn topic_errors() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.clear();
    assert_reply(
        &t.ask(b, "TOPIC #room :from outside"),
        "442 bob #room :You're not on that channel",
    );
    assert_reply(
        &t.ask(b, "TOPIC #nowhere"),
        "403 bob #nowhere :No such channel",
    );
    assert_reply(&t.ask(b, "TOPIC"), "461 bob TOPIC :Not enough parameters");
}

#[test]
fn a_long_topic_is_cut_to_topiclen() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.join(a, "#room");
    let long = "x".repeat(400);
    let lines = t.ask(a, &format!("TOPIC #room :{long}"));
    assert_eq!(parse(&lines[0]).params[1].len(), 390);
}

// ---- KICK ---------------------------------------------------------------------------

#[test]
fn kick_removes_the_member_and_everyone_sees_it() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    t.send(a, "KICK #room bob :behave");
    let expected = [format!(":{} KICK #room bob :behave", source("alice"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
    assert_eq!(t.take(c), expected);
    t.send(c, "PRIVMSG #room :still here");
    t.assert_silent(b);
    let mut names = vec![];
    names.extend(names_reply("carol", "#room", "@alice carol"));
    assert_eq!(t.ask(c, "NAMES #room"), names);
}

#[test]
fn kick_takes_several_nicks() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    t.send(a, "KICK #room bob,carol :both of you");
    assert_eq!(
        t.take(a),
        [
            format!(":{} KICK #room bob :both of you", source("alice")),
            format!(":{} KICK #room carol :both of you", source("alice")),
        ]
    );
    assert_eq!(
        t.take(c),
        [
            format!(":{} KICK #room bob :both of you", source("alice")),
            format!(":{} KICK #room carol :both of you", source("alice")),
        ]
    );
    assert_eq!(
        t.take(b),
        [format!(":{} KICK #room bob :both of you", source("alice"))]
    );
    assert_eq!(
        t.ask(a, "NAMES #room"),
        names_reply("alice", "#room", "@alice")
    );
}

#[test]
fn kick_without_a_reason_gives_the_kickers_nick() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.send(a, "KICK #room bob");
    assert_eq!(
        t.take(b),
        [format!(":{} KICK #room bob :alice", source("alice"))]
    );
}

#[test]
fn kick_errors() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    assert_reply(
        &t.ask(a, "KICK #room carol"),
        "441 alice carol #room :They aren't on that channel",
    );
    assert_reply(
        &t.ask(b, "KICK #room alice"),
        "482 bob #room :You're not channel operator",
    );
    assert_reply(
        &t.ask(c, "KICK #room bob"),
        "442 carol #room :You're not on that channel",
    );
    assert_reply(
        &t.ask(a, "KICK #room ghost"),
        "401 alice ghost :No such nick/channel",
    );
    assert_reply(
        &t.ask(a, "KICK #nowhere bob"),
        "403 alice #nowhere :No such channel",
    );
    assert_reply(
        &t.ask(a, "KICK #room"),
        "461 alice KICK :Not enough parameters",
    );
    t.assert_silent(b);
}

// ---- NICK, QUIT and disconnects as neighbours see them -----------------------------

#[test]
fn a_nick_change_is_seen_exactly_once_by_each_neighbour() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    let stranger = t.connect("dave");
    for room in ["#one", "#two"] {
        t.join(a, room);
        t.join(b, room);
    }
    t.join(c, "#two");
    t.clear();
    t.send(a, "NICK alicia");
    let expected = [format!(":{} NICK :alicia", source("alice"))];
    assert_eq!(t.take(a), expected);
    assert_eq!(t.take(b), expected);
    assert_eq!(t.take(c), expected);
    t.assert_silent(stranger);
    // The rooms know her by her new name.
    assert_eq!(
        t.ask(b, "NAMES #one"),
        names_reply("bob", "#one", "@alicia bob")
    );
    t.assert_silent(stranger);
}

#[test]
fn quit_is_seen_once_by_each_neighbour_with_its_reason() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    let stranger = t.connect("dave");
    for room in ["#one", "#two"] {
        t.join(a, room);
        t.join(b, room);
    }
    t.join(c, "#two");
    t.clear();
    t.send(a, "QUIT :off to bed");
    let expected = [format!(":{} QUIT :Quit: off to bed", source("alice"))];
    assert_eq!(t.take(b), expected);
    assert_eq!(t.take(c), expected);
    t.assert_silent(stranger);
    assert_eq!(t.ask(b, "NAMES #one"), names_reply("bob", "#one", "bob"));
}

#[test]
fn a_dropped_connection_is_a_quit_with_the_servers_reason() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.disconnect(a, "Connection reset by peer");
    assert_eq!(
        t.take(b),
        [format!(
            ":{} QUIT :Connection reset by peer",
            source("alice")
        )]
    );
    assert_eq!(t.take_effects(), [Effect::Close { client: a }]);
}

// ---- LIST and NAMES -----------------------------------------------------------------

#[test]
fn list_shows_rooms_with_member_counts_and_topics_but_not_secret_ones() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#busy");
    t.join(b, "#busy");
    t.send(a, "TOPIC #busy :a busy room");
    t.join(c, "#quiet");
    t.join(c, "#hidden");
    t.send(c, "MODE #hidden +s");
    t.clear();
    assert_eq!(
        t.ask(a, "LIST"),
        [
            format!(":{SERVER} 321 alice Channel :Users  Name"),
            format!(":{SERVER} 322 alice #busy 2 :a busy room"),
            format!(":{SERVER} 322 alice #quiet 1 :"),
            format!(":{SERVER} 323 alice :End of /LIST"),
        ]
    );
    // Members see their secret room; LIST can be asked about given rooms.
    assert_eq!(
        t.ask(c, "LIST #hidden,#busy"),
        [
            format!(":{SERVER} 321 carol Channel :Users  Name"),
            format!(":{SERVER} 322 carol #busy 2 :a busy room"),
            format!(":{SERVER} 322 carol #hidden 1 :"),
            format!(":{SERVER} 323 carol :End of /LIST"),
        ]
    );
}

#[test]
fn names_shows_the_highest_prefix_or_all_of_them_with_multi_prefix() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let plain = t.connect("bob");
    let multi = t.connect_with_caps("carol", &["multi-prefix"]);
    for id in [a, plain, multi] {
        t.join(id, "#room");
    }
    t.send(a, "MODE #room +v alice");
    t.send(a, "MODE #room +v bob");
    t.clear();
    assert_eq!(
        t.ask(plain, "NAMES #room"),
        names_reply("bob", "#room", "+bob @alice carol")
    );
    assert_eq!(
        t.ask(multi, "NAMES #room"),
        names_reply("carol", "#room", "+bob @+alice carol")
    );
}

#[test]
fn names_with_userhost_in_names_gives_full_masks() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect_with_caps("bob", &["userhost-in-names"]);
    t.join(a, "#room");
    let lines = t.ask(b, "JOIN #room");
    assert_eq!(
        lines[1..],
        names_reply(
            "bob",
            "#room",
            &format!("@{} {}", source("alice"), source("bob"))
        )
    );
}

#[test]
fn names_hides_invisible_users_and_secret_rooms_from_outsiders() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let outsider = t.connect("carol");
    t.send(b, "MODE bob +i");
    t.join(a, "#room");
    t.join(b, "#room");
    t.join(a, "#secret");
    t.send(a, "MODE #secret +s");
    t.clear();
    assert_eq!(
        t.ask(outsider, "NAMES #room"),
        names_reply("carol", "#room", "@alice")
    );
    assert_eq!(
        t.ask(a, "NAMES #room"),
        names_reply("alice", "#room", "@alice bob")
    );
    assert_reply(
        &t.ask(outsider, "NAMES #secret"),
        "366 carol #secret :End of /NAMES list",
    );
    assert_eq!(
        t.ask(a, "NAMES #secret"),
        [
            format!(":{SERVER} 353 alice @ #secret :@alice"),
            format!(":{SERVER} 366 alice #secret :End of /NAMES list"),
        ]
    );
    assert_reply(&t.ask(a, "NAMES"), "366 alice * :End of /NAMES list");
}

#[test]
fn a_big_room_splits_names_over_lines_that_fit_in_512_bytes() {
    let mut t = TestHub::new();
    let mut ids = Vec::new();
    for n in 0..80 {
        let id = t.connect(&format!("member_with_a_long_nick{n:02}"));
        t.join(id, "#big");
        ids.push(id);
    }
    t.clear();
    let lines = t.ask(ids[0], "NAMES #big");
    let (names, end) = lines.split_at(lines.len() - 1);
    assert_eq!(numerics(end), ["366"]);
    assert!(names.len() > 1);
    let mut seen = 0;
    for line in names {
        assert_eq!(numeric_of(line), Some("353"));
        assert!(line.len() + 2 <= 512, "{} bytes: {line}", line.len());
        seen += parse(line).params[3].split(' ').count();
    }
    assert_eq!(seen, 80);
}
