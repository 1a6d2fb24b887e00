//! Accounts: REGISTER (draft/account-registration), logging in with SASL PLAIN, what
//! others see of an account (account-tag, account-notify, extended-join, WHOIS 330),
//! the protection of registered nicknames, and several clients on one account.

mod support;

use base64::Engine;
use natter_hub::{Effect, Transport};
use support::*;

/// An account the harness can check the password of: `pw`.
fn account(t: &mut TestHub, name: &str) {
    account_with_hash(t, name, &format!("{FAKE_HASH_PREFIX}pw"));
}

fn account_with_hash(t: &mut TestHub, name: &str, hash: &str) {
    t.hub.load_accounts(vec![natter_store::Account {
        name: name.to_lowercase(),
        display_name: name.into(),
        password_hash: hash.into(),
        created_ms: 0,
    }]);
}

/// The base64 SASL PLAIN response `authzid \0 authcid \0 password`.
fn plain(authzid: &str, authcid: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{authzid}\0{authcid}\0{password}"))
}

/// Opens a connection and sends CAP LS 302, NICK and USER: registration waits for
/// CAP END. What the client received is thrown away.
fn open_negotiating(t: &mut TestHub, nick: &str) -> natter_hub::ClientId {
    let c = t.open();
    t.send(c, "CAP LS 302");
    t.send(c, &format!("NICK {nick}"));
    t.send(c, &format!("USER {nick} 0 * :Real {nick}"));
    t.take(c);
    c
}

/// Connects `nick` logged in to `account` (password `pw`) with SASL during
/// registration, also asking for `caps`; the welcome burst is thrown away.
fn connect_sasl(t: &mut TestHub, nick: &str, account: &str, caps: &[&str]) -> natter_hub::ClientId {
    let c = open_negotiating(t, nick);
    let mut wanted = vec!["sasl"];
    wanted.extend_from_slice(caps);
    t.send(c, &format!("CAP REQ :{}", wanted.join(" ")));
    t.send(c, "AUTHENTICATE PLAIN");
    t.send(c, &format!("AUTHENTICATE {}", plain("", account, "pw")));
    t.send(c, "CAP END");
    let burst = t.take(c);
    assert!(
        burst.iter().any(|l| numeric_of(l) == Some("903")),
        "{burst:#?}"
    );
    assert!(
        burst.iter().any(|l| numeric_of(l) == Some("001")),
        "{burst:#?}"
    );
    c
}

const NICK_NOTICE: &str = "This nickname is registered. Log in to its account (SASL, or your client's login) within 30 seconds, or you will be renamed.";

// ---- REGISTER ------------------------------------------------------------------

#[test]
fn register_star_creates_an_account_named_for_the_nick_and_logs_in() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "REGISTER * * hunter2"),
        [
            format!(":{SERVER} REGISTER SUCCESS alice :Account created"),
            format!(
                ":{SERVER} 900 alice alice!alice@127.0.0.1 alice :You are now logged in as alice"
            ),
        ]
    );
    // The account is kept, with the hash the server made.
    let stored = natter_store::Store::account(&mut t.store, "alice").unwrap();
    assert_eq!(
        stored,
        Some(natter_store::Account {
            name: "alice".into(),
            display_name: "alice".into(),
            password_hash: "fake$hunter2".into(),
            created_ms: START_UNIX as i64 * 1000,
        })
    );
    // Logged in: a second registration is refused.
    assert_eq!(
        t.ask(a, "REGISTER other * pw2"),
        [format!(
            ":{SERVER} FAIL REGISTER ALREADY_AUTHENTICATED other :You are already logged in"
        )]
    );
}

#[test]
fn register_may_name_an_account_other_than_the_nick_and_keeps_its_spelling() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "REGISTER Wonder alice@example.org pw"),
        [
            format!(":{SERVER} REGISTER SUCCESS Wonder :Account created"),
            format!(
                ":{SERVER} 900 alice alice!alice@127.0.0.1 Wonder :You are now logged in as Wonder"
            ),
        ]
    );
    let stored = natter_store::Store::account(&mut t.store, "wonder")
        .unwrap()
        .expect("stored under its folded name");
    assert_eq!(stored.display_name, "Wonder");
}

#[test]
fn a_labeled_register_gets_one_labeled_batch_after_the_account_is_stored() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["labeled-response", "batch"]);
    let lines = t.ask(a, "@label=r1 REGISTER * * pw");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[0],
        format!("@label=r1 :{SERVER} BATCH +lr1 labeled-response")
    );
    assert_eq!(
        lines[1],
        format!("@batch=lr1 :{SERVER} REGISTER SUCCESS alice :Account created")
    );
    assert_eq!(
        lines[2],
        format!("@batch=lr1 :{SERVER} 900 alice alice!alice@127.0.0.1 alice :You are now logged in as alice")
    );
    assert_eq!(lines[3], format!(":{SERVER} BATCH -lr1"));
}

#[test]
fn register_waits_for_the_store_and_holds_later_lines() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.hold_store = true;
    t.send(a, "REGISTER * * pw");
    t.send(a, "PING :after");
    t.assert_silent(a);
    assert_eq!(t.held_jobs.len(), 1);
    t.run_store();
    assert_eq!(
        t.take(a),
        [
            format!(":{SERVER} REGISTER SUCCESS alice :Account created"),
            format!(
                ":{SERVER} 900 alice alice!alice@127.0.0.1 alice :You are now logged in as alice"
            ),
            format!(":{SERVER} PONG {SERVER} :after"),
        ]
    );
}

#[test]
fn a_name_being_registered_is_taken_for_a_second_register() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect("bob");
    t.hold_store = true;
    t.send(a, "REGISTER shared * pw");
    assert_eq!(
        t.ask(b, "REGISTER shared * pw"),
        [format!(
            ":{SERVER} FAIL REGISTER ACCOUNT_EXISTS shared :That account already exists"
        )]
    );
    t.run_store();
    assert_eq!(
        t.take(a)[0],
        format!(":{SERVER} REGISTER SUCCESS shared :Account created")
    );
}

#[test]
fn an_account_that_could_not_be_stored_is_not_created() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    t.hold_store = true;
    t.send(a, "REGISTER * * pw");
    let (ticket, _) = t.held_jobs.remove(0);
    let mut out = natter_hub::Outbox::new();
    t.hub.store_done(
        ticket,
        natter_hub::StoreOutcome::Failed("disk full".into()),
        t.now,
        &mut out,
    );
    assert_eq!(
        out.lines_for(a),
        [format!(
            ":{SERVER} FAIL REGISTER TEMPORARILY_UNAVAILABLE alice :The account could not be stored; try again"
        )]
    );
    // Not logged in, and the name is free again.
    t.hold_store = false;
    assert_eq!(
        t.ask(a, "REGISTER * * pw")[0],
        format!(":{SERVER} REGISTER SUCCESS alice :Account created")
    );
}

#[test]
fn register_refuses_an_existing_account_whatever_its_case() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let b = t.connect("bob");
    assert_eq!(
        t.ask(b, "REGISTER alice * pw"),
        [format!(
            ":{SERVER} FAIL REGISTER ACCOUNT_EXISTS alice :That account already exists"
        )]
    );
    assert_eq!(
        t.ask(b, "REGISTER ALICE * pw"),
        [format!(
            ":{SERVER} FAIL REGISTER ACCOUNT_EXISTS ALICE :That account already exists"
        )]
    );
}

#[test]
fn register_refuses_a_nick_another_client_is_using() {
    let mut t = TestHub::new();
    let _bob = t.connect("bob");
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "REGISTER Bob * pw"),
        [format!(
            ":{SERVER} FAIL REGISTER ACCOUNT_EXISTS Bob :That account already exists"
        )]
    );
    assert_eq!(
        natter_store::Store::account(&mut t.store, "bob").unwrap(),
        None
    );
}

#[test]
fn register_refuses_weak_passwords() {
    let mut t = TestHub::with(|c| c.min_password_len = 8);
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "REGISTER * * short"),
        [format!(
            ":{SERVER} FAIL REGISTER WEAK_PASSWORD alice :Choose a password of at least 8 characters"
        )]
    );
    // `*` is no password at all.
    let fail = parse(&t.ask(a, "REGISTER * * *")[0]);
    assert_eq!(fail.command, "FAIL");
    assert_eq!(
        fail.params.strs()[..3],
        ["REGISTER", "WEAK_PASSWORD", "alice"]
    );
    assert_eq!(
        t.ask(a, "REGISTER * * longenough")[0],
        format!(":{SERVER} REGISTER SUCCESS alice :Account created")
    );
}

#[test]
fn register_refuses_names_that_are_not_nicknames() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    for bad in ["#room", "9lives", "a:b"] {
        assert_eq!(
            t.ask(a, &format!("REGISTER {bad} * pw")),
            [format!(
                ":{SERVER} FAIL REGISTER BAD_ACCOUNT_NAME {bad} :Account names follow the rules of nicknames"
            )],
            "{bad}"
        );
    }
}

#[test]
fn register_without_enough_parameters_is_need_more_params() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "REGISTER * pw"),
        [format!(
            ":{SERVER} FAIL REGISTER NEED_MORE_PARAMS :Usage: REGISTER <account> <email> <password>"
        )]
    );
}

#[test]
fn register_star_before_nick_is_need_nick() {
    let mut t = TestHub::new();
    let c = t.open();
    t.send(c, "CAP LS 302");
    t.take(c);
    assert_eq!(
        t.ask(c, "REGISTER * * pw"),
        [format!(
            ":{SERVER} FAIL REGISTER NEED_NICK * :Send NICK first, or name the account"
        )]
    );
}

#[test]
fn register_before_connect_logs_in_and_the_nick_is_not_challenged() {
    let mut t = TestHub::new();
    let c = t.open();
    let ls = t.ask(c, "CAP LS 302");
    assert!(
        ls[0].contains("draft/account-registration=before-connect"),
        "{ls:#?}"
    );
    t.send(c, "CAP REQ :draft/account-registration");
    t.send(c, "NICK :alice");
    t.take(c);
    assert_eq!(
        t.ask(c, "REGISTER * alice@example.org pw"),
        [
            format!(":{SERVER} REGISTER SUCCESS alice :Account created"),
            format!(":{SERVER} 900 * alice!*@127.0.0.1 alice :You are now logged in as alice"),
        ]
    );
    t.send(c, "USER alice 0 * :Real alice");
    t.send(c, "CAP END");
    let burst = t.take(c);
    assert!(
        burst.iter().any(|l| numeric_of(l) == Some("001")),
        "{burst:#?}"
    );
    assert!(!burst.iter().any(|l| l.contains(" NOTICE ")), "{burst:#?}");
    t.advance_secs(31);
    t.tick();
    t.assert_silent(c);
    let whois = t.ask(c, "WHOIS alice");
    assert_eq!(
        the_numeric(&whois, "330"),
        format!(":{SERVER} 330 alice alice alice :is logged in as")
    );
}

#[test]
fn register_refuses_passwords_sent_in_the_clear_from_afar() {
    let mut t = TestHub::new();
    let c = t.open_from("203.0.113.9", Transport::Tcp);
    t.send(c, "NICK eve");
    t.send(c, "USER eve 0 * :Eve");
    t.take(c);
    assert_eq!(
        t.ask(c, "REGISTER * * pw"),
        [format!(
            ":{SERVER} FAIL REGISTER INSECURE eve :Passwords are accepted only over TLS, a Unix socket or loopback"
        )]
    );
    assert_eq!(
        natter_store::Store::account(&mut t.store, "eve").unwrap(),
        None
    );
    // The same host over TLS may.
    let tls = t.open_from("203.0.113.9", Transport::Tls);
    t.send(tls, "NICK eve2");
    t.send(tls, "USER eve 0 * :Eve");
    t.take(tls);
    assert_eq!(
        t.ask(tls, "REGISTER * * pw")[0],
        format!(":{SERVER} REGISTER SUCCESS eve2 :Account created")
    );
}

#[test]
fn plaintext_passwords_from_afar_are_accepted_when_the_operator_allows_them() {
    let mut t = TestHub::with(|c| c.allow_plaintext_passwords = true);
    let c = t.open_from("203.0.113.9", Transport::Tcp);
    t.send(c, "NICK eve");
    t.send(c, "USER eve 0 * :Eve");
    t.take(c);
    assert_eq!(
        t.ask(c, "REGISTER * * pw")[0],
        format!(":{SERVER} REGISTER SUCCESS eve :Account created")
    );
}

// ---- SASL PLAIN ------------------------------------------------------------------

#[test]
fn sasl_plain_during_registration_logs_in_before_the_welcome() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = open_negotiating(&mut t, "alice");
    assert_eq!(
        t.ask(c, "CAP REQ :sasl"),
        [format!(":{SERVER} CAP * ACK :sasl")]
    );
    assert_eq!(t.ask(c, "AUTHENTICATE PLAIN"), ["AUTHENTICATE +"]);
    assert_eq!(
        t.ask(c, &format!("AUTHENTICATE {}", plain("", "alice", "pw"))),
        [
            format!(":{SERVER} 900 * alice!alice@127.0.0.1 alice :You are now logged in as alice"),
            format!(":{SERVER} 903 * :SASL authentication successful"),
        ]
    );
    let burst = t.ask(c, "CAP END");
    assert!(
        burst[0].starts_with(&format!(":{SERVER} 001 alice ")),
        "{burst:#?}"
    );
    // Logged in to its own nick: no warning, no rename.
    assert!(!burst.iter().any(|l| l.contains(" NOTICE ")), "{burst:#?}");
    t.advance_secs(60);
    t.tick();
    t.assert_silent(c);
}

#[test]
fn sasl_accepts_an_authzid_equal_to_the_authcid_and_any_case() {
    let mut t = TestHub::new();
    account(&mut t, "Alice");
    let c = open_negotiating(&mut t, "al");
    t.send(c, "CAP REQ :sasl");
    t.take(c);
    assert_eq!(t.ask(c, "AUTHENTICATE plain"), ["AUTHENTICATE +"]);
    let lines = t.ask(
        c,
        &format!("AUTHENTICATE {}", plain("ALICE", "alice", "pw")),
    );
    assert_eq!(
        lines,
        [
            format!(":{SERVER} 900 * al!al@127.0.0.1 Alice :You are now logged in as Alice"),
            format!(":{SERVER} 903 * :SASL authentication successful"),
        ]
    );
}

#[test]
fn sasl_with_a_wrong_password_is_904_and_may_be_retried() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.take(c);
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    assert_eq!(
        t.ask(c, &format!("AUTHENTICATE {}", plain("", "alice", "wrong"))),
        [format!(":{SERVER} 904 * :SASL authentication failed")]
    );
    assert_eq!(t.ask(c, "AUTHENTICATE PLAIN"), ["AUTHENTICATE +"]);
    assert_eq!(
        numerics(&t.ask(c, &format!("AUTHENTICATE {}", plain("", "alice", "pw")))),
        ["900", "903"]
    );
}

#[test]
fn sasl_for_an_unknown_account_is_904_without_a_password_check() {
    let mut t = TestHub::new();
    let c = open_negotiating(&mut t, "ghost");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    t.take_effects();
    assert_eq!(
        t.ask(c, &format!("AUTHENTICATE {}", plain("", "ghost", "pw"))),
        [format!(":{SERVER} 904 * :SASL authentication failed")]
    );
    assert_eq!(t.take_effects(), []);
}

#[test]
fn sasl_logging_in_as_someone_else_is_refused() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    account(&mut t, "bob");
    let c = open_negotiating(&mut t, "bob");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    assert_eq!(
        t.ask(c, &format!("AUTHENTICATE {}", plain("alice", "bob", "pw"))),
        [format!(":{SERVER} 904 * :SASL authentication failed")]
    );
}

#[test]
fn sasl_garbage_is_904() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    assert_eq!(
        t.ask(c, "AUTHENTICATE !!!notbase64"),
        [format!(":{SERVER} 904 * :SASL authentication failed")]
    );
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    // Valid base64, but not three NUL-separated fields.
    let lone = base64::engine::general_purpose::STANDARD.encode("alice");
    assert_eq!(
        t.ask(c, &format!("AUTHENTICATE {lone}")),
        [format!(":{SERVER} 904 * :SASL authentication failed")]
    );
}

#[test]
fn sasl_abort_is_906() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    assert_eq!(
        t.ask(c, "AUTHENTICATE *"),
        [format!(":{SERVER} 906 * :SASL authentication aborted")]
    );
    // The exchange is over: a response now starts a new one, which needs a mechanism.
    assert_eq!(
        t.ask(c, &format!("AUTHENTICATE {}", plain("", "alice", "pw")))[1],
        format!(":{SERVER} 904 * :SASL authentication failed")
    );
}

#[test]
fn sasl_with_an_unknown_mechanism_is_908_then_904() {
    let mut t = TestHub::new();
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.take(c);
    assert_eq!(
        t.ask(c, "AUTHENTICATE SCRAM-SHA-256"),
        [
            format!(":{SERVER} 908 * PLAIN :are available SASL mechanisms"),
            format!(":{SERVER} 904 * :SASL authentication failed"),
        ]
    );
}

#[test]
fn sasl_when_already_logged_in_is_907() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let a = connect_sasl(&mut t, "alice", "alice", &[]);
    assert_eq!(
        t.ask(a, "AUTHENTICATE PLAIN"),
        [format!(
            ":{SERVER} 907 alice :You have already authenticated using SASL"
        )]
    );
}

#[test]
fn sasl_over_plaintext_from_afar_is_refused() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = t.open_from("203.0.113.9", Transport::Tcp);
    t.send(c, "CAP LS 302");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "NICK :alice");
    t.take(c);
    assert_eq!(
        t.ask(c, "AUTHENTICATE PLAIN"),
        [
            format!(":{SERVER} FAIL AUTHENTICATE INSECURE :Passwords are accepted only over TLS, a Unix socket or loopback"),
            format!(":{SERVER} 904 * :SASL authentication failed"),
        ]
    );
}

#[test]
fn sasl_responses_longer_than_400_bytes_come_in_chunks() {
    let mut t = TestHub::new();
    let password = "x".repeat(350);
    account_with_hash(&mut t, "alice", &format!("{FAKE_HASH_PREFIX}{password}"));
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    let encoded = plain("", "alice", &password);
    assert_eq!(encoded.len(), 476);
    t.send(c, &format!("AUTHENTICATE {}", &encoded[..400]));
    t.assert_silent(c);
    assert_eq!(
        numerics(&t.ask(c, &format!("AUTHENTICATE {}", &encoded[400..]))),
        ["900", "903"]
    );
}

#[test]
fn a_response_of_exactly_400_bytes_ends_with_a_plus() {
    let mut t = TestHub::new();
    // 7 bytes of `\0alice\0` and 293 of password: 300 bytes, 400 in base64.
    let password = "y".repeat(293);
    account_with_hash(&mut t, "alice", &format!("{FAKE_HASH_PREFIX}{password}"));
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    let encoded = plain("", "alice", &password);
    assert_eq!(encoded.len(), 400);
    t.send(c, &format!("AUTHENTICATE {encoded}"));
    t.assert_silent(c);
    assert_eq!(numerics(&t.ask(c, "AUTHENTICATE +")), ["900", "903"]);
}

#[test]
fn a_sasl_response_too_long_for_plain_is_905() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    let chunk = "A".repeat(400);
    for _ in 0..4 {
        t.send(c, &format!("AUTHENTICATE {chunk}"));
    }
    t.assert_silent(c);
    assert_eq!(
        t.ask(c, &format!("AUTHENTICATE {chunk}")),
        [format!(":{SERVER} 905 * :SASL message too long")]
    );
}

#[test]
fn lines_sent_during_the_password_check_are_answered_after_it_in_order() {
    let mut t = TestHub::new();
    // A hash the harness does not check itself: the test answers the check.
    account_with_hash(
        &mut t,
        "alice",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
    );
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    t.send(c, &format!("AUTHENTICATE {}", plain("", "alice", "pw")));
    let ticket = match t.take_effects().as_slice() {
        [Effect::VerifyPassword {
            client,
            ticket,
            password,
            hash,
        }] => {
            assert_eq!(*client, c);
            assert_eq!(password, "pw");
            assert!(hash.starts_with("$argon2id$"));
            *ticket
        }
        other => panic!("expected one VerifyPassword, got {other:?}"),
    };
    t.send(c, "CAP END");
    t.send(c, "PING :after");
    t.assert_silent(c);
    t.password_checked(ticket, true);
    let lines = t.take(c);
    assert_eq!(
        lines[..3],
        [
            format!(":{SERVER} 900 * alice!alice@127.0.0.1 alice :You are now logged in as alice"),
            format!(":{SERVER} 903 * :SASL authentication successful"),
            format!(
                ":{SERVER} 001 alice :Welcome to the natter IRC Network, alice!alice@127.0.0.1"
            ),
        ]
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!(":{SERVER} PONG {SERVER} :after")
    );
}

#[test]
fn a_failed_password_check_releases_held_lines_too() {
    let mut t = TestHub::new();
    account_with_hash(&mut t, "alice", "$argon2id$opaque");
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.take(c);
    t.send(c, &format!("AUTHENTICATE {}", plain("", "alice", "pw")));
    let ticket = match t.take_effects().as_slice() {
        [Effect::VerifyPassword { ticket, .. }] => *ticket,
        other => panic!("expected one VerifyPassword, got {other:?}"),
    };
    t.send(c, "PING :held");
    t.assert_silent(c);
    t.password_checked(ticket, false);
    assert_eq!(
        t.take(c),
        [
            format!(":{SERVER} 904 * :SASL authentication failed"),
            format!(":{SERVER} PONG {SERVER} :held"),
        ]
    );
}

// ---- what others see -------------------------------------------------------------

#[test]
fn account_notify_tells_room_mates_who_asked_when_someone_logs_in() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect_with_caps("bob", &["account-notify"]);
    let c = t.connect("carol");
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    t.send(a, "REGISTER * * pw");
    assert_eq!(t.take(b), [":alice!alice@127.0.0.1 ACCOUNT :alice"]);
    t.assert_silent(c);
}

#[test]
fn account_notify_is_sent_for_a_sasl_login_after_registration() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let a = t.connect("al");
    let b = t.connect_with_caps("bob", &["account-notify"]);
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    t.send(a, "AUTHENTICATE PLAIN");
    t.send(a, &format!("AUTHENTICATE {}", plain("", "alice", "pw")));
    assert_eq!(
        t.take(a),
        [
            "AUTHENTICATE +".to_owned(),
            format!(":{SERVER} 900 al al!al@127.0.0.1 alice :You are now logged in as alice"),
            format!(":{SERVER} 903 al :SASL authentication successful"),
        ]
    );
    assert_eq!(t.take(b), [":al!al@127.0.0.1 ACCOUNT :alice"]);
}

#[test]
fn account_tag_marks_what_a_logged_in_user_says() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let a = connect_sasl(&mut t, "alice", "alice", &[]);
    let b = t.connect_with_caps("bob", &["account-tag"]);
    let c = t.connect("carol");
    for id in [a, b, c] {
        t.join(id, "#room");
    }
    t.clear();
    t.send(a, "PRIVMSG #room :hi");
    assert_eq!(
        t.take(b),
        ["@account=alice :alice!alice@127.0.0.1 PRIVMSG #room :hi"]
    );
    assert_eq!(t.take(c), [":alice!alice@127.0.0.1 PRIVMSG #room :hi"]);
    // Someone not logged in gets no account tag.
    t.send(c, "PRIVMSG #room :me too");
    assert_eq!(t.take(b), [":carol!carol@127.0.0.1 PRIVMSG #room :me too"]);
}

#[test]
fn extended_join_gives_the_account_or_a_star() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let b = t.connect_with_caps("bob", &["extended-join"]);
    let c = t.connect("carol");
    t.join(b, "#room");
    t.join(c, "#room");
    let a = connect_sasl(&mut t, "alice", "alice", &[]);
    let d = t.connect("dave");
    t.clear();
    t.send(a, "JOIN #room");
    assert_eq!(
        t.take(b),
        [":alice!alice@127.0.0.1 JOIN #room alice :Real alice"]
    );
    assert_eq!(t.take(c), [":alice!alice@127.0.0.1 JOIN :#room"]);
    t.send(d, "JOIN #room");
    assert_eq!(t.take(b), [":dave!dave@127.0.0.1 JOIN #room * :Real dave"]);
}

#[test]
fn whois_shows_the_account_with_330() {
    let mut t = TestHub::new();
    account(&mut t, "Alice");
    let _a = connect_sasl(&mut t, "ali", "alice", &[]);
    let _d = t.connect("dave");
    let c = t.connect("carol");
    let whois = t.ask(c, "WHOIS ali");
    assert_eq!(
        the_numeric(&whois, "330"),
        format!(":{SERVER} 330 carol ali Alice :is logged in as")
    );
    // 330 comes before the end of the reply.
    let codes = numerics(&whois);
    let at = |code| codes.iter().position(|c| *c == code).unwrap();
    assert!(at("330") < at("318"), "{codes:?}");
    assert!(!numerics(&t.ask(c, "WHOIS dave")).contains(&"330"));
}

// ---- nick protection -------------------------------------------------------------

#[test]
fn a_registered_nick_used_without_logging_in_is_renamed_after_the_grace_period() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let m = t.connect("mates");
    let c = t.open();
    t.send(c, "NICK :alice");
    t.send(c, "USER x 0 * :X");
    let burst = t.take(c);
    assert_eq!(
        burst.last().unwrap(),
        &format!(":{SERVER} NOTICE alice :{NICK_NOTICE}")
    );
    t.join(c, "#room");
    t.join(m, "#room");
    t.clear();
    t.advance_secs(29);
    t.tick();
    t.assert_silent(c);
    t.advance_secs(1);
    t.tick();
    assert_eq!(t.take(c), [":alice!x@127.0.0.1 NICK :Guest1"]);
    assert_eq!(t.take(m), [":alice!x@127.0.0.1 NICK :Guest1"]);
    // The nick is free for its owner.
    let a = connect_sasl(&mut t, "alice", "alice", &[]);
    assert_eq!(
        the_numeric(&t.ask(a, "WHOIS alice"), "311"),
        format!(":{SERVER} 311 alice alice alice 127.0.0.1 * :Real alice")
    );
}

#[test]
fn the_grace_period_follows_the_configuration() {
    let mut t = TestHub::with(|c| c.limits.nick_grace = std::time::Duration::from_secs(5));
    account(&mut t, "alice");
    let c = t.open();
    t.send(c, "NICK :alice");
    t.send(c, "USER x 0 * :X");
    let burst = t.take(c);
    assert!(
        burst.last().unwrap().contains("within 5 seconds"),
        "{burst:#?}"
    );
    t.advance_secs(5);
    t.tick();
    assert_eq!(t.take(c), [":alice!x@127.0.0.1 NICK :Guest1"]);
}

#[test]
fn logging_in_within_the_grace_period_keeps_the_nick() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = t.open();
    t.send(c, "NICK :alice");
    t.send(c, "USER alice 0 * :X");
    t.take(c);
    t.advance_secs(10);
    t.send(c, "AUTHENTICATE PLAIN");
    t.send(c, &format!("AUTHENTICATE {}", plain("", "alice", "pw")));
    assert_eq!(numerics(&t.take(c)), ["900", "903"]);
    t.advance_secs(60);
    t.tick();
    t.assert_silent(c);
}

#[test]
fn registering_the_nick_within_the_grace_period_keeps_it() {
    let mut t = TestHub::new();
    let c = t.connect("alice");
    t.send(c, "REGISTER * * pw");
    t.take(c);
    t.advance_secs(60);
    t.tick();
    t.assert_silent(c);
}

#[test]
fn logging_in_to_another_account_does_not_keep_a_protected_nick() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    account(&mut t, "mallory");
    let c = t.open();
    t.send(c, "NICK :alice");
    t.send(c, "USER m 0 * :M");
    t.take(c);
    t.send(c, "AUTHENTICATE PLAIN");
    t.send(c, &format!("AUTHENTICATE {}", plain("", "mallory", "pw")));
    assert_eq!(numerics(&t.take(c)), ["900", "903"]);
    t.advance_secs(30);
    t.tick();
    assert_eq!(t.take(c), [":alice!m@127.0.0.1 NICK :Guest1"]);
}

#[test]
fn changing_to_a_registered_nick_is_challenged_too() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let c = t.connect("mallory");
    assert_eq!(
        t.ask(c, "NICK :alice"),
        [
            ":mallory!mallory@127.0.0.1 NICK :alice".to_owned(),
            format!(":{SERVER} NOTICE alice :{NICK_NOTICE}"),
        ]
    );
    // Leaving the nick in time ends the challenge.
    t.send(c, "NICK mallory");
    t.take(c);
    t.advance_secs(31);
    t.tick();
    t.assert_silent(c);
}

#[test]
fn a_logged_in_user_taking_another_accounts_nick_is_challenged() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    account(&mut t, "bob");
    let b = connect_sasl(&mut t, "bob", "bob", &[]);
    assert_eq!(
        t.ask(b, "NICK :alice"),
        [
            ":bob!bob@127.0.0.1 NICK :alice".to_owned(),
            format!(":{SERVER} NOTICE alice :{NICK_NOTICE}"),
        ]
    );
    t.advance_secs(30);
    t.tick();
    assert_eq!(t.take(b), [":alice!bob@127.0.0.1 NICK :Guest1"]);
}

// ---- several clients on one account -----------------------------------------------

#[test]
fn a_dm_to_an_account_reaches_every_client_logged_in_to_it() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let laptop = connect_sasl(&mut t, "alice", "alice", &[]);
    let phone = connect_sasl(&mut t, "alice_phone", "alice", &[]);
    let b = t.connect("bob");
    t.send(b, "PRIVMSG alice :hi");
    t.assert_silent(b);
    assert_eq!(t.take(laptop), [":bob!bob@127.0.0.1 PRIVMSG alice :hi"]);
    assert_eq!(t.take(phone), [":bob!bob@127.0.0.1 PRIVMSG alice :hi"]);
    // Whichever of its nicks is used.
    t.send(b, "NOTICE alice_phone :ping");
    assert_eq!(
        t.take(laptop),
        [":bob!bob@127.0.0.1 NOTICE alice_phone :ping"]
    );
    assert_eq!(
        t.take(phone),
        [":bob!bob@127.0.0.1 NOTICE alice_phone :ping"]
    );
}

#[test]
fn the_senders_other_clients_see_its_dms() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let laptop = connect_sasl(&mut t, "alice", "alice", &["echo-message"]);
    let phone = connect_sasl(&mut t, "alice_phone", "alice", &[]);
    let b = t.connect("bob");
    t.send(laptop, "PRIVMSG bob :hello from the laptop");
    let line = ":alice!alice@127.0.0.1 PRIVMSG bob :hello from the laptop";
    assert_eq!(t.take(b), [line]);
    assert_eq!(t.take(phone), [line]);
    // The sender itself: its echo, once.
    assert_eq!(t.take(laptop), [line]);
    // Without echo-message the sender gets nothing back; its other clients still see it.
    t.send(phone, "PRIVMSG bob :and from the phone");
    let line = ":alice_phone!alice_phone@127.0.0.1 PRIVMSG bob :and from the phone";
    assert_eq!(t.take(b), [line]);
    assert_eq!(t.take(laptop), [line]);
    t.assert_silent(phone);
}

#[test]
fn a_client_that_quits_no_longer_gets_its_accounts_dms() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let laptop = connect_sasl(&mut t, "alice", "alice", &[]);
    let phone = connect_sasl(&mut t, "alice_phone", "alice", &[]);
    let b = t.connect("bob");
    t.send(phone, "QUIT");
    t.take(phone);
    t.send(b, "PRIVMSG alice :still there?");
    assert_eq!(
        t.take(laptop),
        [":bob!bob@127.0.0.1 PRIVMSG alice :still there?"]
    );
    assert!(t.take(phone).is_empty());
}

#[test]
fn logging_in_to_another_account_before_registering_does_not_keep_a_protected_nick() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    account(&mut t, "mallory");
    let c = open_negotiating(&mut t, "alice");
    t.send(c, "CAP REQ :sasl");
    t.send(c, "AUTHENTICATE PLAIN");
    t.send(c, &format!("AUTHENTICATE {}", plain("", "mallory", "pw")));
    let burst = t.ask(c, "CAP END");
    assert_eq!(
        burst.last().unwrap(),
        &format!(":{SERVER} NOTICE alice :{NICK_NOTICE}")
    );
    t.advance_secs(30);
    t.tick();
    assert_eq!(t.take(c), [":alice!alice@127.0.0.1 NICK :Guest1"]);
}

// ---- the owner takes a registered nick back --------------------------------------

#[test]
fn the_owner_logging_in_takes_the_nick_back_from_an_impostor() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let impostor = t.connect("alice");
    t.take(impostor);
    // The owner asks for the same nick before logging in: no 433 yet, as the login
    // that follows decides.
    let owner = connect_sasl(&mut t, "alice", "alice", &[]);
    let seen = t.take(impostor);
    assert!(
        seen.iter()
            .any(|l| l.starts_with(":alice!") && l.contains(" NICK :Guest")),
        "the impostor is renamed at once: {seen:#?}"
    );
    assert_eq!(
        t.ask(owner, "WHOIS alice").first().map(|l| numeric_of(l)),
        Some(Some("311"))
    );
    assert_reply(&t.ask(owner, "ISON alice"), "303 alice :alice");
}

#[test]
fn a_logged_in_owner_changing_to_its_nick_takes_it_back() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    let owner = connect_sasl(&mut t, "alice_", "alice", &[]);
    let impostor = t.connect("alice");
    t.take(impostor);
    let reply = t.ask(owner, "NICK alice");
    assert!(
        reply
            .iter()
            .any(|l| l.starts_with(":alice_!") && l.ends_with("NICK :alice")),
        "{reply:#?}"
    );
    assert!(t.take(impostor).iter().any(|l| l.contains(" NICK :Guest")));
}

#[test]
fn someone_else_logged_in_cannot_take_a_registered_nick() {
    let mut t = TestHub::new();
    account(&mut t, "alice");
    account(&mut t, "mallory");
    let holder = t.connect("alice");
    t.take(holder);
    let mallory = connect_sasl(&mut t, "mallory", "mallory", &[]);
    assert_reply(
        &t.ask(mallory, "NICK alice"),
        "433 mallory alice :Nickname is already in use",
    );
}
