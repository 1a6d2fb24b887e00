//! Finding out about people: WHO, WHOIS, WHOWAS, ISON, USERHOST; and saying things
//! about oneself: AWAY, SETNAME.

mod support;

use natter_hub::{OperAccount, Transport};
use support::*;

fn who_row(me: &str, room: &str, nick: &str, flags: &str) -> String {
    format!(":{SERVER} 352 {me} {room} {nick} {HOST} {SERVER} {nick} {flags} :0 Real {nick}")
}

// ---- WHO ----------------------------------------------------------------------------

#[test]
fn who_on_a_room_lists_its_members_with_flags() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.join(a, "#room");
    t.join(b, "#room");
    t.send(b, "AWAY :brb");
    t.clear();
    assert_eq!(
        t.ask(c, "WHO #room"),
        [
            who_row("carol", "#room", "alice", "H@"),
            who_row("carol", "#room", "bob", "G"),
            format!(":{SERVER} 315 carol #room :End of WHO list"),
        ]
    );
}

#[test]
fn who_on_a_nick_gives_one_row_and_a_room_they_are_in() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    assert_eq!(
        t.ask(a, "WHO bob"),
        [
            who_row("alice", "*", "bob", "H"),
            format!(":{SERVER} 315 alice bob :End of WHO list"),
        ]
    );
    t.join(b, "#room");
    t.send(a, "MODE alice +i");
    t.clear();
    assert_eq!(
        t.ask(a, "WHO BOB"),
        [
            who_row("alice", "#room", "bob", "H@"),
            format!(":{SERVER} 315 alice BOB :End of WHO list"),
        ]
    );
}

#[test]
fn who_shows_operators_with_a_star_and_can_list_only_them() {
    let mut t = TestHub::with(|c| {
        c.opers.push(OperAccount {
            name: "admin".into(),
            password_hash: "$argon2id$fake".into(),
        })
    });
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.make_oper(a, "admin");
    assert_eq!(
        t.ask(b, "WHO * o"),
        [
            who_row("bob", "*", "alice", "H*"),
            format!(":{SERVER} 315 bob * :End of WHO list"),
        ]
    );
}

#[test]
fn who_hides_invisible_users_from_those_who_share_no_room() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.send(b, "MODE bob +i");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    assert_eq!(
        t.ask(c, "WHO #room"),
        [
            who_row("carol", "#room", "alice", "H@"),
            format!(":{SERVER} 315 carol #room :End of WHO list"),
        ]
    );
    assert_eq!(
        t.ask(c, "WHO b*"),
        [format!(":{SERVER} 315 carol b* :End of WHO list")]
    );
    assert_eq!(
        t.ask(a, "WHO b*"),
        [
            who_row("alice", "#room", "bob", "H"),
            format!(":{SERVER} 315 alice b* :End of WHO list"),
        ]
    );
}

// ---- WHOIS --------------------------------------------------------------------------

#[test]
fn whois_gives_user_rooms_server_idle_and_end() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.join(b, "#another");
    t.advance_secs(42);
    t.clear();
    assert_eq!(
        t.ask(a, "WHOIS bob"),
        [
            format!(":{SERVER} 311 alice bob bob {HOST} * :Real bob"),
            format!(":{SERVER} 319 alice bob :#room @#another"),
            format!(":{SERVER} 312 alice bob {SERVER} :natter chat server"),
            format!(":{SERVER} 317 alice bob 42 {START_UNIX} :seconds idle, signon time"),
            format!(":{SERVER} 318 alice bob :End of /WHOIS list"),
        ]
    );
}

#[test]
fn speaking_resets_the_whois_idle_time() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.advance_secs(100);
    t.send(b, "PRIVMSG alice :hi");
    t.advance_secs(7);
    t.clear();
    let lines = t.ask(a, "WHOIS bob");
    assert_eq!(
        the_numeric(&lines, "317"),
        format!(":{SERVER} 317 alice bob 7 {START_UNIX} :seconds idle, signon time")
    );
}

#[test]
fn whois_says_when_someone_is_away_or_an_operator() {
    let mut t = TestHub::with(|c| {
        c.opers.push(OperAccount {
            name: "admin".into(),
            password_hash: "$argon2id$fake".into(),
        })
    });
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.make_oper(b, "admin");
    t.send(b, "AWAY :gone");
    t.clear();
    assert_eq!(
        numerics(&t.ask(a, "WHOIS bob")),
        ["311", "312", "301", "313", "317", "318"]
    );
    let lines = t.ask(a, "WHOIS bob");
    assert_eq!(
        the_numeric(&lines, "301"),
        format!(":{SERVER} 301 alice bob :gone")
    );
    assert_eq!(
        the_numeric(&lines, "313"),
        format!(":{SERVER} 313 alice bob :is an IRC operator")
    );
}

#[test]
fn whois_of_nobody_is_401_then_318() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "WHOIS ghost"),
        [
            format!(":{SERVER} 401 alice ghost :No such nick/channel"),
            format!(":{SERVER} 318 alice ghost :End of /WHOIS list"),
        ]
    );
    assert_reply(&t.ask(a, "WHOIS"), "431 alice :No nickname given");
}

#[test]
fn whois_with_a_server_parameter_asks_about_the_last_one() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let _b = t.connect("bob");
    let lines = t.ask(a, &format!("WHOIS {SERVER} bob"));
    assert_eq!(numerics(&lines), ["311", "312", "317", "318"]);
}

#[test]
fn whois_hides_secret_rooms_from_outsiders() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.join(b, "#secret");
    t.send(b, "MODE #secret +s");
    t.clear();
    assert!(!numerics(&t.ask(a, "WHOIS bob")).contains(&"319"));
    let lines = t.ask(b, "WHOIS bob");
    assert_eq!(
        the_numeric(&lines, "319"),
        format!(":{SERVER} 319 bob bob :@#secret")
    );
}

#[test]
fn an_ipv6_host_never_starts_a_parameter_with_a_colon() {
    // `::1` as a middle parameter would read as the start of the trailing one; servers
    // show it as `0::1` (as InspIRCd and charybdis do).
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.open_from("::1", Transport::Tcp);
    t.send(b, "NICK bob");
    t.send(b, "USER bob 0 * :Bob");
    t.take(b);
    let lines = t.ask(a, "WHOIS bob");
    let whois = parse(the_numeric(&lines, "311"));
    assert_eq!(whois.params, ["alice", "bob", "bob", "0::1", "*", "Bob"]);
    let lines = t.ask(a, "WHO bob");
    let who = parse(the_numeric(&lines, "352"));
    assert_eq!(&who.params[3], "0::1");
    assert_eq!(who.params.len(), 8);
}

// ---- WHOWAS -------------------------------------------------------------------------

#[test]
fn whowas_remembers_who_left() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send(b, "QUIT :bye");
    assert_eq!(
        t.ask(a, "WHOWAS bob"),
        [
            format!(":{SERVER} 314 alice bob bob {HOST} * :Real bob"),
            format!(":{SERVER} 312 alice bob {SERVER} :2023-11-14T22:13:20Z"),
            format!(":{SERVER} 369 alice bob :End of WHOWAS"),
        ]
    );
}

#[test]
fn whowas_remembers_old_nicks_too_newest_first() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send(b, "NICK robert");
    t.advance_secs(60);
    t.send(b, "NICK bob");
    t.advance_secs(60);
    t.send(b, "QUIT");
    let lines = t.ask(a, "WHOWAS bob");
    assert_eq!(numerics(&lines), ["314", "312", "314", "312", "369"]);
    assert!(lines[1].ends_with(":2023-11-14T22:15:20Z"), "{}", lines[1]);
    assert!(lines[3].ends_with(":2023-11-14T22:13:20Z"), "{}", lines[3]);
    assert_eq!(numerics(&t.ask(a, "WHOWAS bob 1")), ["314", "312", "369"]);
    assert_eq!(numerics(&t.ask(a, "WHOWAS robert")), ["314", "312", "369"]);
}

#[test]
fn whowas_of_someone_never_seen_is_406_then_369() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "WHOWAS ghost"),
        [
            format!(":{SERVER} 406 alice ghost :There was no such nickname"),
            format!(":{SERVER} 369 alice ghost :End of WHOWAS"),
        ]
    );
    assert_reply(&t.ask(a, "WHOWAS"), "431 alice :No nickname given");
}

// ---- ISON, USERHOST ---------------------------------------------------------------------

#[test]
fn ison_lists_who_is_online_as_they_spell_their_nicks() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let _b = t.connect("bob");
    let _c = t.connect("Carol");
    assert_reply(&t.ask(a, "ISON bob ghost carol"), "303 alice :bob Carol");
    assert_reply(&t.ask(a, "ISON :ghost"), "303 alice :");
    assert_reply(&t.ask(a, "ISON"), "461 alice ISON :Not enough parameters");
}

#[test]
fn userhost_gives_nick_oper_away_and_mask() {
    let mut t = TestHub::with(|c| {
        c.opers.push(OperAccount {
            name: "admin".into(),
            password_hash: "$argon2id$fake".into(),
        })
    });
    let a = t.connect("alice");
    let b = t.connect("bob");
    let c = t.connect("carol");
    t.make_oper(b, "admin");
    t.send(c, "AWAY :out");
    t.clear();
    assert_reply(
        &t.ask(a, "USERHOST alice bob carol ghost"),
        &format!("302 alice :alice=+alice@{HOST} bob*=+bob@{HOST} carol=-carol@{HOST}"),
    );
}

// ---- AWAY ---------------------------------------------------------------------------

#[test]
fn away_is_305_and_306_and_neighbours_with_away_notify_are_told() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["away-notify"]);
    let notified = t.connect_with_caps("bob", &["away-notify"]);
    let plain = t.connect("carol");
    let stranger = t.connect_with_caps("dave", &["away-notify"]);
    for id in [a, notified, plain] {
        t.join(id, "#room");
    }
    t.clear();
    assert_reply(
        &t.ask(a, "AWAY :at lunch"),
        "306 alice :You have been marked as being away",
    );
    assert_eq!(
        t.take(notified),
        [format!(":{} AWAY :at lunch", source("alice"))]
    );
    t.assert_silent(plain);
    t.assert_silent(stranger);
    assert_reply(
        &t.ask(a, "AWAY"),
        "305 alice :You are no longer marked as being away",
    );
    assert_eq!(t.take(notified), [format!(":{} AWAY", source("alice"))]);
    t.assert_silent(plain);
    t.assert_silent(stranger);
}

#[test]
fn an_away_user_joining_is_announced_to_away_notify_members() {
    // away-notify: "clients will be sent an AWAY message ... when a user joins and has
    // an away message set".
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["away-notify"]);
    let plain = t.connect("carol");
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(plain, "#room");
    t.send(b, "AWAY :not here");
    t.clear();
    t.send(b, "JOIN #room");
    assert_eq!(
        t.take(a),
        [
            format!(":{} JOIN :#room", source("bob")),
            format!(":{} AWAY :not here", source("bob")),
        ]
    );
    assert_eq!(t.take(plain), [format!(":{} JOIN :#room", source("bob"))]);
    assert!(t.take(b).iter().all(|l| !l.contains(" AWAY")));
}

// ---- SETNAME ------------------------------------------------------------------------

#[test]
fn setname_changes_the_realname_and_tells_those_with_the_cap() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["setname"]);
    let b = t.connect_with_caps("bob", &["setname"]);
    let c = t.connect("carol");
    let stranger = t.connect_with_caps("dave", &["setname"]);
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    let expected = [format!(":{} SETNAME :Alice Liddell", source("alice"))];
    assert_eq!(t.ask(a, "SETNAME :Alice Liddell"), expected);
    assert_eq!(t.take(b), expected);
    t.assert_silent(c);
    t.assert_silent(stranger);
    let lines = t.ask(c, "WHOIS alice");
    assert_eq!(
        the_numeric(&lines, "311"),
        format!(":{SERVER} 311 carol alice alice {HOST} * :Alice Liddell")
    );
}

#[test]
fn an_empty_or_too_long_realname_is_a_fail() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["setname"]);
    assert_eq!(
        t.ask(a, "SETNAME :"),
        [format!(
            ":{SERVER} FAIL SETNAME INVALID_REALNAME :Realname cannot be empty"
        )]
    );
    assert_eq!(
        t.ask(a, &format!("SETNAME :{}", "r".repeat(129))),
        [format!(
            ":{SERVER} FAIL SETNAME INVALID_REALNAME :Realname is too long"
        )]
    );
}

#[test]
fn setname_without_the_cap_works_silently() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "SETNAME :Quiet Change");
    t.assert_silent(a);
    let lines = t.ask(a, "WHOIS alice");
    assert!(
        the_numeric(&lines, "311").ends_with(":Quiet Change"),
        "{lines:#?}"
    );
}

// ---- server queries -----------------------------------------------------------------

#[test]
fn version_time_admin_and_info_answer() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let version = t.hub.config().version.clone();
    let lines = t.ask(a, "VERSION");
    assert_eq!(
        lines[0],
        format!(":{SERVER} 351 alice {version} {SERVER} :natter IRC server")
    );
    assert_eq!(&numerics(&lines)[1..], ["005", "005"]);
    assert_reply(
        &t.ask(a, "TIME"),
        &format!("391 alice {SERVER} :2023-11-14T22:13:20Z"),
    );
    assert_eq!(numerics(&t.ask(a, "ADMIN")), ["256", "257", "258", "259"]);
    assert_eq!(numerics(&t.ask(a, "INFO")), ["371", "374"]);
}
