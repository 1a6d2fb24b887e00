//! Registration (NICK, USER, PASS), the welcome burst, CAP negotiation, PING and QUIT.

mod support;

use natter_hub::{Effect, Transport};
use support::*;

#[test]
fn nick_and_user_register_and_the_welcome_is_001_to_005_then_lusers_then_motd() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "NICK alice");
    t.assert_silent(a);
    t.send(a, "USER alice 0 * :Alice Liddell");
    let lines = t.take(a);
    assert_eq!(
        numerics(&lines),
        [
            "001", "002", "003", "004", "005", "005", "251", "252", "253", "254", "255", "265",
            "266", "375", "372", "376"
        ]
    );
    assert_eq!(
        numerics(&lines).len(),
        lines.len(),
        "only numerics: {lines:#?}"
    );
    let version = t.hub.config().version.clone();
    assert_eq!(
        lines[0],
        format!(":{SERVER} 001 alice :Welcome to the natter IRC Network, alice!alice@{HOST}")
    );
    assert_eq!(
        lines[1],
        format!(":{SERVER} 002 alice :Your host is {SERVER}, running version {version}")
    );
    assert_eq!(
        lines[3],
        format!(":{SERVER} 004 alice {SERVER} {version} iow biklmnst :bklov")
    );
    assert_eq!(
        lines[6],
        format!(":{SERVER} 251 alice :There are 1 users and 0 invisible on 1 servers")
    );
    assert_eq!(
        lines[13],
        format!(":{SERVER} 375 alice :- {SERVER} Message of the day - ")
    );
    assert_eq!(
        lines[14],
        format!(":{SERVER} 372 alice :- Welcome to natter.")
    );
    assert_eq!(
        lines[15],
        format!(":{SERVER} 376 alice :End of /MOTD command.")
    );
}

#[test]
fn user_before_nick_registers_too() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "USER alice 0 * :Alice");
    t.assert_silent(a);
    t.send(a, "NICK alice");
    assert_eq!(numerics(&t.take(a))[0], "001");
}

#[test]
fn isupport_advertises_the_tokens_clients_rely_on() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :Alice");
    let lines = t.take(a);
    let mut tokens = Vec::new();
    for line in lines.iter().filter(|l| numeric_of(l) == Some("005")) {
        let msg = parse(line);
        assert_eq!(msg.params.first(), Some("alice"));
        assert_eq!(msg.params.last(), Some("are supported by this server"));
        // At most 13 tokens per line, as clients expect.
        assert!(msg.params.len() - 2 <= 13, "{line}");
        tokens.extend(
            msg.params.strs()[1..msg.params.len() - 1]
                .iter()
                .map(|t| t.to_string()),
        );
    }
    for expected in [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        "PREFIX=(ov)@+",
        "CHANMODES=b,k,l,imnst",
        "NICKLEN=30",
        "CHANNELLEN=64",
        "TOPICLEN=390",
        "LINELEN=512",
        "NETWORK=natter",
    ] {
        assert!(
            tokens.iter().any(|t| t == expected),
            "{expected} in {tokens:?}"
        );
    }
    let targmax = tokens
        .iter()
        .find(|t| t.starts_with("TARGMAX="))
        .expect("TARGMAX");
    assert!(targmax.contains("PRIVMSG:8"), "{targmax}");
    assert!(targmax.contains("JOIN:8"), "{targmax}");
}

#[test]
fn lusers_counts_users_unknown_connections_and_rooms() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.send(b, "MODE bob +i");
    t.join(a, "#room");
    let _unregistered = t.open();
    let lines = t.ask(a, "LUSERS");
    assert_eq!(
        lines,
        [
            format!(":{SERVER} 251 alice :There are 1 users and 1 invisible on 1 servers"),
            format!(":{SERVER} 252 alice 0 :operator(s) online"),
            format!(":{SERVER} 253 alice 1 :unknown connection(s)"),
            format!(":{SERVER} 254 alice 1 :channels formed"),
            format!(":{SERVER} 255 alice :I have 2 clients and 0 servers"),
            format!(":{SERVER} 265 alice 2 2 :Current local users 2, max 2"),
            format!(":{SERVER} 266 alice 2 2 :Current global users 2, max 2"),
        ]
    );
}

#[test]
fn an_empty_motd_is_422() {
    let mut t = TestHub::with(|c| c.motd.clear());
    let a = t.connect("alice");
    assert_reply(&t.ask(a, "MOTD"), "422 alice :MOTD File is missing");
}

// ---- CAP ---------------------------------------------------------------------

#[test]
fn cap_ls_302_lists_every_capability_and_holds_registration_until_cap_end() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_eq!(
        t.ask(a, "CAP LS 302"),
        [format!(
            ":{SERVER} CAP * LS :account-notify draft/account-registration=before-connect \
             account-tag away-notify batch cap-notify draft/chathistory chghost echo-message \
             extended-join invite-notify labeled-response message-tags multi-prefix \
             draft/read-marker sasl=PLAIN server-time setname userhost-in-names"
        )]
    );
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :Alice");
    t.assert_silent(a);
    assert_eq!(
        t.ask(a, "CAP REQ :multi-prefix server-time"),
        [format!(":{SERVER} CAP * ACK :multi-prefix server-time")]
    );
    t.assert_silent(a);
    let lines = t.ask(a, "CAP END");
    assert_eq!(numerics(&lines)[0], "001");
    // CAP 302 implies cap-notify.
    assert_eq!(
        t.ask(a, "CAP LIST"),
        [format!(
            ":{SERVER} CAP alice LIST :cap-notify multi-prefix server-time"
        )]
    );
}

#[test]
fn cap_req_without_ls_also_holds_registration() {
    let mut t = TestHub::new();
    let a = t.open();
    t.send(a, "CAP REQ :echo-message");
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :Alice");
    assert_eq!(t.take(a), [format!(":{SERVER} CAP * ACK :echo-message")]);
    assert_eq!(numerics(&t.ask(a, "CAP END"))[0], "001");
    assert_eq!(
        t.ask(a, "CAP LIST"),
        [format!(":{SERVER} CAP alice LIST :echo-message")]
    );
}

#[test]
fn cap_req_is_all_or_nothing() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "CAP REQ :multi-prefix no-such-cap"),
        [format!(":{SERVER} CAP alice NAK :multi-prefix no-such-cap")]
    );
    assert_eq!(
        t.ask(a, "CAP LIST"),
        [format!(":{SERVER} CAP alice LIST :")]
    );
    assert_eq!(
        t.ask(a, "CAP REQ :multi-prefix away-notify"),
        [format!(":{SERVER} CAP alice ACK :multi-prefix away-notify")]
    );
    assert_eq!(
        t.ask(a, "CAP REQ :-multi-prefix"),
        [format!(":{SERVER} CAP alice ACK :-multi-prefix")]
    );
    assert_eq!(
        t.ask(a, "CAP LIST"),
        [format!(":{SERVER} CAP alice LIST :away-notify")]
    );
}

#[test]
fn cap_end_after_registration_is_ignored() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "CAP END");
    t.assert_silent(a);
}

#[test]
fn an_unknown_cap_subcommand_is_410() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_reply(&t.ask(a, "CAP FOO"), "410 * FOO :Invalid CAP command");
}

// ---- NICK --------------------------------------------------------------------

#[test]
fn a_nick_in_use_is_433_whatever_its_case() {
    let mut t = TestHub::new();
    let _a = t.connect("alice");
    let b = t.open();
    assert_reply(
        &t.ask(b, "NICK ALICE"),
        "433 * ALICE :Nickname is already in use",
    );
    t.send(b, "USER alice 0 * :Other");
    t.assert_silent(b);
    assert_eq!(numerics(&t.ask(b, "NICK alice2"))[0], "001");
}

#[test]
fn two_unregistered_clients_racing_for_one_nick_the_second_gets_433() {
    let mut t = TestHub::new();
    let a = t.open();
    let b = t.open();
    t.send(a, "NICK bob");
    t.send(b, "NICK bob");
    t.send(a, "USER a 0 * :A");
    assert_eq!(numerics(&t.take(a))[0], "001");
    assert_reply(
        &t.ask(b, "USER b 0 * :B"),
        "433 * bob :Nickname is already in use",
    );
    assert_eq!(numerics(&t.ask(b, "NICK bobby"))[0], "001");
}

#[test]
fn an_invalid_nick_is_432() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_reply(&t.ask(a, "NICK 1abc"), "432 * 1abc :Erroneous nickname");
    assert_reply(&t.ask(a, "NICK #room"), "432 * #room :Erroneous nickname");
    assert_reply(&t.ask(a, "NICK a!b"), "432 * a!b :Erroneous nickname");
}

#[test]
fn nick_without_a_name_is_431() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_reply(&t.ask(a, "NICK"), "431 * :No nickname given");
    assert_reply(&t.ask(a, "NICK :"), "431 * :No nickname given");
}

#[test]
fn a_nick_change_is_echoed_to_the_client_and_frees_the_old_nick() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "NICK alicia"),
        [format!(":{} NICK :alicia", source("alice"))]
    );
    let b = t.open();
    t.send(b, "NICK alice");
    t.send(b, "USER b 0 * :B");
    assert_eq!(numerics(&t.take(b))[0], "001");
    assert_reply(
        &t.ask(b, "NICK ALICIA"),
        "433 alice ALICIA :Nickname is already in use",
    );
}

#[test]
fn a_client_may_change_the_case_of_its_own_nick() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "NICK Alice"),
        [format!(":{} NICK :Alice", source("alice"))]
    );
    // The same nick again changes nothing and says nothing.
    t.send(a, "NICK Alice");
    t.assert_silent(a);
}

// ---- what needs registration ----------------------------------------------------

#[test]
fn commands_before_registration_are_451() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_reply(&t.ask(a, "JOIN #room"), "451 * :You have not registered");
    assert_reply(
        &t.ask(a, "PRIVMSG bob :hi"),
        "451 * :You have not registered",
    );
}

#[test]
fn user_or_pass_after_registration_is_462() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_reply(
        &t.ask(a, "USER alice 0 * :Again"),
        "462 alice :You may not reregister",
    );
    assert_reply(
        &t.ask(a, "PASS secret"),
        "462 alice :You may not reregister",
    );
}

#[test]
fn user_with_too_few_parameters_is_461() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_reply(&t.ask(a, "USER alice"), "461 * USER :Not enough parameters");
}

// ---- PASS ----------------------------------------------------------------------

#[test]
fn the_right_server_password_registers() {
    let mut t = TestHub::with(|c| c.server_password = Some("sesame".into()));
    let a = t.open();
    t.send(a, "PASS sesame");
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :Alice");
    assert_eq!(numerics(&t.take(a))[0], "001");
    assert!(t.take_effects().is_empty());
}

#[test]
fn a_wrong_server_password_is_464_then_error_then_close() {
    let mut t = TestHub::with(|c| c.server_password = Some("sesame".into()));
    let a = t.open();
    t.send(a, "PASS guess");
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :Alice");
    assert_eq!(
        t.take(a),
        [
            format!(":{SERVER} 464 * :Password incorrect"),
            format!("ERROR :Closing Link: {HOST} (Bad password)"),
        ]
    );
    assert_eq!(t.take_effects(), [Effect::Close { client: a }]);
    assert_eq!(t.hub.client_count(), 0);
}

#[test]
fn a_missing_server_password_is_refused_like_a_wrong_one() {
    let mut t = TestHub::with(|c| c.server_password = Some("sesame".into()));
    let a = t.open();
    t.send(a, "NICK alice");
    t.send(a, "USER alice 0 * :Alice");
    assert_eq!(numerics(&t.take(a)), ["464"]);
    assert_eq!(t.take_effects(), [Effect::Close { client: a }]);
}

// ---- PING, QUIT, shutdown ----------------------------------------------------------

#[test]
fn ping_gets_pong_with_the_same_token_even_before_registration() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_eq!(
        t.ask(a, "PING :hello there"),
        [format!(":{SERVER} PONG {SERVER} :hello there")]
    );
    let b = t.connect("bob");
    assert_eq!(
        t.ask(b, "PING 12345"),
        [format!(":{SERVER} PONG {SERVER} :12345")]
    );
    assert_reply(&t.ask(b, "PING"), "409 bob :No origin specified");
}

#[test]
fn quit_closes_with_error_and_the_reason() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "QUIT :gone fishing"),
        [format!("ERROR :Closing Link: {HOST} (Quit: gone fishing)")]
    );
    assert_eq!(t.take_effects(), [Effect::Close { client: a }]);
    // The nick is free again.
    let b = t.connect("alice");
    assert_ne!(a, b);
}

#[test]
fn quit_before_registration_closes_too() {
    let mut t = TestHub::new();
    let a = t.open();
    assert_eq!(
        t.ask(a, "QUIT"),
        [format!("ERROR :Closing Link: {HOST} (Client Quit)")]
    );
    assert_eq!(t.take_effects(), [Effect::Close { client: a }]);
    assert_eq!(t.hub.client_count(), 0);
}

#[test]
fn a_disconnect_after_close_is_a_no_op() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.send(a, "QUIT");
    t.take(a);
    t.take_effects();
    t.disconnect(a, "Connection reset");
    t.assert_silent(a);
    assert!(t.take_effects().is_empty());
}

#[test]
fn shutdown_tells_and_closes_everyone() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.open();
    t.shutdown();
    assert_eq!(t.take(a), ["ERROR :Server shutting down"]);
    assert_eq!(t.take(b), ["ERROR :Server shutting down"]);
    let mut effects = t.take_effects();
    effects.sort_by_key(|e| match e {
        Effect::Close { client } => client.0,
        _ => u64::MAX,
    });
    assert_eq!(
        effects,
        [Effect::Close { client: a }, Effect::Close { client: b }]
    );
    assert_eq!(t.hub.client_count(), 0);
}

#[test]
fn whois_on_a_tls_client_says_it_is_secure() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.open_from("10.0.0.5", Transport::Tls);
    t.send(b, "NICK bob");
    t.send(b, "USER bob 0 * :Bob");
    t.take(b);
    let lines = t.ask(a, "WHOIS bob");
    assert_eq!(
        the_numeric(&lines, "671"),
        format!(":{SERVER} 671 alice bob :is using a secure connection")
    );
    assert_eq!(
        the_numeric(&lines, "311"),
        format!(":{SERVER} 311 alice bob bob 10.0.0.5 * :Bob")
    );
}
