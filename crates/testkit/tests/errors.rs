//! Every error a client can cause, over the wire: the numeric, its parameters, and
//! that nothing reaches anyone else.
//!
//! Each test checks the reply's shape (`:server CODE nick <context...> :text`)
//! because clients show the context to the user.

use natter_testkit::{Message, MessageExt, TestClient, TestServer, SERVER_NAME};

/// Asserts `reply` is `:natter.local <code> <nick> <context...> :<some text>`.
fn assert_reply(reply: &Message, code: &str, nick: &str, context: &[&str]) {
    assert_eq!(reply.command, code, "{}", reply.line());
    assert_eq!(
        reply.source.as_deref(),
        Some(SERVER_NAME),
        "{}",
        reply.line()
    );
    assert_eq!(reply.param(0), Some(nick), "{}", reply.line());
    let n = reply.params.len();
    assert!(n >= 2, "no text in {}", reply.line());
    assert_eq!(
        reply.params.iter().take(n - 1).skip(1).collect::<Vec<_>>(),
        *context,
        "{}",
        reply.line()
    );
    assert!(!reply.text().is_empty(), "empty text in {}", reply.line());
}

/// Sends `line` from `client` and checks the reply; then checks nothing else came.
async fn refused(client: &mut TestClient, line: &str, code: &str, context: &[&str]) {
    client.send(line).await;
    let reply = client.expect_numeric(code).await;
    let nick = client.nick().to_owned();
    assert_reply(&reply, code, &nick, context);
    client.assert_nothing_more().await;
}

/// `alice` founds `#room`, `bob` joins it.
async fn alice_and_bob_in_a_room(server: &TestServer) -> (TestClient, TestClient) {
    let mut alice = server.user("alice").await;
    alice.join("#room").await;
    let mut bob = server.user("bob").await;
    bob.join("#room").await;
    alice.expect_command("JOIN").await;
    (alice, bob)
}

#[tokio::test]
async fn privmsg_to_an_unknown_nick_gets_401() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    refused(&mut alice, "PRIVMSG nobody :hi", "401", &["nobody"]).await;
}

#[tokio::test]
async fn privmsg_to_an_unknown_room_gets_401() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    refused(&mut alice, "PRIVMSG #nowhere :hi", "401", &["#nowhere"]).await;
}

#[tokio::test]
async fn parting_an_unknown_room_gets_403() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    refused(&mut alice, "PART #nowhere", "403", &["#nowhere"]).await;
}

#[tokio::test]
async fn joining_an_invalid_room_name_gets_403() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    refused(&mut alice, "JOIN nohash", "403", &["nohash"]).await;
}

#[tokio::test]
async fn speaking_into_a_plus_n_room_from_outside_gets_404_and_reaches_no_one() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    let mut outsider = server.user("outsider").await;
    refused(&mut outsider, "PRIVMSG #room :let me in", "404", &["#room"]).await;
    alice.assert_nothing_more().await;
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn privmsg_without_a_target_gets_411() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    refused(&mut alice, "PRIVMSG", "411", &[]).await;
}

#[tokio::test]
async fn privmsg_without_text_gets_412() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    refused(&mut alice, "PRIVMSG bob", "412", &[]).await;
    refused(&mut alice, "PRIVMSG bob :", "412", &[]).await;
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn an_unknown_command_gets_421_naming_it() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    refused(&mut alice, "FROBNICATE now", "421", &["FROBNICATE"]).await;
}

#[tokio::test]
async fn nick_without_a_nick_gets_431() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    refused(&mut alice, "NICK", "431", &[]).await;
}

#[tokio::test]
async fn an_erroneous_nick_gets_432_and_the_nick_stays() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let too_long = "a".repeat(31);
    for bad in ["1alice", "al.ice", "al!ce", "#alice", "-alice", &too_long] {
        refused(&mut alice, &format!("NICK {bad}"), "432", &[bad]).await;
    }
    // A nick with a space cannot be echoed as a middle parameter: it shows as `*`.
    refused(&mut alice, "NICK :al ice", "432", &["*"]).await;
    bob.send("PRIVMSG alice :still alice?").await;
    alice.expect_privmsg("bob", "alice", "still alice?").await;
}

#[tokio::test]
async fn a_nick_in_use_gets_433_whatever_its_case() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut _bob = server.user("bob").await;
    refused(&mut alice, "NICK BOB", "433", &["BOB"]).await;
}

#[tokio::test]
async fn kicking_someone_not_in_the_room_gets_441() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    let mut carol = server.user("carol").await;
    refused(&mut alice, "KICK #room carol", "441", &["carol", "#room"]).await;
    bob.assert_nothing_more().await;
    carol.assert_nothing_more().await;
}

#[tokio::test]
async fn parting_a_room_one_is_not_in_gets_442() {
    let server = TestServer::start().await;
    let (_alice, _bob) = alice_and_bob_in_a_room(&server).await;
    let mut carol = server.user("carol").await;
    refused(&mut carol, "PART #room", "442", &["#room"]).await;
}

#[tokio::test]
async fn inviting_a_member_gets_443() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    refused(&mut alice, "INVITE bob #room", "443", &["bob", "#room"]).await;
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn a_command_before_registration_gets_451() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(&server).await;
    client.send("JOIN #room").await;
    let reply = client.expect_numeric("451").await;
    // Before registration the client is `*`.
    assert_reply(&reply, "451", "*", &[]);
}

#[tokio::test]
async fn a_command_missing_parameters_gets_461_naming_it() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    for command in ["JOIN", "PART", "KICK #room", "INVITE bob", "TOPIC", "MODE"] {
        let name = command.split(' ').next().unwrap_or(command);
        refused(&mut alice, command, "461", &[name]).await;
    }
}

#[tokio::test]
async fn joining_a_full_room_gets_471() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    alice.send("MODE #room +l 2").await;
    alice.expect_command("MODE").await;
    bob.expect_command("MODE").await;
    let mut carol = server.user("carol").await;
    refused(&mut carol, "JOIN #room", "471", &["#room"]).await;
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn joining_an_invite_only_room_uninvited_gets_473() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    alice.send("MODE #room +i").await;
    alice.expect_command("MODE").await;
    bob.expect_command("MODE").await;
    let mut carol = server.user("carol").await;
    refused(&mut carol, "JOIN #room", "473", &["#room"]).await;
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn joining_a_room_one_is_banned_from_gets_474() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    alice.send("MODE #room +b car*!*@*").await;
    alice.expect_command("MODE").await;
    bob.expect_command("MODE").await;
    let mut carol = server.user("carol").await;
    refused(&mut carol, "JOIN #room", "474", &["#room"]).await;
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn joining_a_keyed_room_with_a_wrong_key_gets_475() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    alice.send("MODE #room +k sesame").await;
    alice.expect_command("MODE").await;
    bob.expect_command("MODE").await;
    let mut carol = server.user("carol").await;
    refused(&mut carol, "JOIN #room open", "475", &["#room"]).await;
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn a_non_operator_kicking_gets_482_and_no_one_is_kicked() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    refused(&mut bob, "KICK #room alice", "482", &["#room"]).await;
    alice.assert_nothing_more().await;
    bob.send("PRIVMSG #room :still here").await;
    alice.expect_privmsg("bob", "#room", "still here").await;
}

#[tokio::test]
async fn kicking_an_unknown_nick_gets_401() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = alice_and_bob_in_a_room(&server).await;
    refused(&mut alice, "KICK #room ghost", "401", &["ghost"]).await;
}

#[tokio::test]
async fn an_unknown_room_mode_gets_472() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&server).await;
    refused(&mut alice, "MODE #room +Z", "472", &["Z"]).await;
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn replies_that_echo_a_long_parameter_stay_within_512_bytes() {
    let server = TestServer::start_with(|cfg| cfg.limits.flood_burst = 0).await;
    let mut alice = server.user("alice").await;
    let long = "a".repeat(490);
    for line in [
        format!("PRIVMSG {long} :x"),
        format!("{} x", "A".repeat(500)),
        format!("JOIN #{long}"),
        format!("NICK {long}"),
        format!("WHOIS {long}"),
        format!("WHOWAS {long}"),
        format!("NAMES #{long}"),
        format!("CAP {long}"),
        format!("PING {long}"),
    ] {
        alice.send(&line).await;
        // A reply over 512 bytes does not parse: the wait fails quoting it.
        let replies = alice.collect_until_pong().await;
        assert!(!replies.is_empty(), "no reply to {}", &line[..20]);
    }
}
