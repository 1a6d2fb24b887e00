//! Registration over real sockets: the welcome burst, CAP holding registration,
//! refused nicks, the server password and the registration timeout.

use natter_testkit::{ClientError, MessageExt, Registration, TestClient, TestServer};

#[tokio::test]
async fn a_client_is_welcomed_with_001_to_005_and_the_motd_then_nothing_more() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect_tcp(&server).await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :Alice Liddell").await;
    let welcome = alice.expect_numeric("001").await;
    assert_eq!(welcome.param(0), Some("alice"), "{}", welcome.line());
    assert!(welcome.text().contains("alice"), "{}", welcome.line());
    for code in ["002", "003", "004", "005", "251", "375", "372", "376"] {
        alice.expect_numeric(code).await;
    }
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn isupport_advertises_the_documented_defaults() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect_tcp(&server).await;
    let registered = alice.register("alice").await;
    for token in [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        "NICKLEN=30",
        "PREFIX=(ov)@+",
        "NETWORK=natter",
        "UTF8ONLY",
    ] {
        assert!(
            registered.isupport.iter().any(|t| t == token),
            "{token} missing from ISUPPORT {:?}",
            registered.isupport
        );
    }
}

#[tokio::test]
async fn user_may_come_before_nick() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect_tcp(&server).await;
    alice.send("USER alice 0 * :Alice").await;
    alice.send("NICK alice").await;
    alice.expect_numeric("001").await;
}

#[tokio::test]
async fn cap_ls_holds_registration_until_cap_end() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect_tcp(&server).await;
    alice.send("CAP LS 302").await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :Alice").await;
    let before_end = alice.collect_until_pong().await;
    assert!(
        before_end.iter().any(|m| m.command == "CAP"),
        "no CAP LS reply: {:?}",
        before_end.iter().map(MessageExt::line).collect::<Vec<_>>()
    );
    assert!(
        !before_end.iter().any(|m| m.command == "001"),
        "registered before CAP END: {:?}",
        before_end.iter().map(MessageExt::line).collect::<Vec<_>>()
    );
    alice.send("CAP END").await;
    alice.expect_numeric("001").await;
}

#[tokio::test]
async fn a_nick_in_use_is_refused_with_433_and_another_nick_may_be_tried() {
    let server = TestServer::start().await;
    let _alice = server.user("alice").await;
    let mut impostor = TestClient::connect_tcp(&server).await;
    match impostor.try_register(Registration::new("ALICE")).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "433"),
        other => panic!("expected a 433 refusal, got {other:?}"),
    }
    impostor.send("NICK alice2").await;
    let welcome = impostor.expect_numeric("001").await;
    assert_eq!(welcome.param(0), Some("alice2"));
}

#[tokio::test]
async fn an_erroneous_nick_is_refused_with_432_before_registration() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(&server).await;
    client.send("NICK 9lives").await;
    let refusal = client.expect_numeric("432").await;
    assert_eq!(refusal.param(1), Some("9lives"), "{}", refusal.line());
    client.send("NICK nine").await;
    client.send("USER nine 0 * :Nine").await;
    client.expect_numeric("001").await;
}

#[tokio::test]
async fn commands_other_than_registration_get_451_before_registering() {
    let server = TestServer::start().await;
    let mut client = TestClient::connect_tcp(&server).await;
    for line in ["JOIN #room", "PRIVMSG someone :hi", "WHOIS x"] {
        client.send(line).await;
        client.expect_numeric("451").await;
    }
    client.assert_nothing_more().await;
}

#[tokio::test]
async fn a_client_without_the_server_password_is_refused_with_464() {
    let server = TestServer::start_with(|cfg| cfg.server_password = Some("sesame".into())).await;
    let mut client = TestClient::connect_tcp(&server).await;
    match client.try_register(Registration::new("alice")).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "464"),
        other => panic!("expected a 464 refusal, got {other:?}"),
    }
    let mut good = TestClient::connect_tcp(&server).await;
    let mut registration = Registration::new("bob");
    registration.password = Some("sesame".into());
    good.register_as(registration).await;
}

#[tokio::test]
async fn a_connection_that_does_not_register_in_time_is_closed_with_error() {
    let server = TestServer::start_with(|cfg| cfg.limits.registration_timeout = 1).await;
    let mut settled = server.user("settled").await;
    let mut idle = TestClient::connect_tcp(&server).await;
    idle.send("NICK idle").await;
    let lines = idle.expect_closed().await;
    let error = lines
        .iter()
        .find(|m| m.command == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR before the close: {lines:?}"));
    assert!(
        error.text().contains("Registration timed out"),
        "{}",
        error.line()
    );
    // The timeout passed for the registered client too, and it is still served.
    settled.assert_nothing_more().await;
}

#[tokio::test]
async fn quit_closes_the_connection_with_an_error_line() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let lines = alice.quit("see you").await;
    assert!(
        lines.iter().any(|m| m.command == "ERROR"),
        "no ERROR before the close: {:?}",
        lines.iter().map(MessageExt::line).collect::<Vec<_>>()
    );
    // The nick is free again.
    server.user("alice").await;
}

#[tokio::test]
async fn two_connections_asking_for_one_nick_before_registering_get_it_once() {
    let server = TestServer::start().await;
    let mut first = TestClient::connect_tcp(&server).await;
    let mut second = TestClient::connect_tcp(&server).await;
    // Both ask while neither is registered, so neither NICK is refused yet.
    first.send("NICK twin").await;
    second.send("NICK twin").await;
    second.assert_nothing_more().await;
    first.send("USER twin 0 * :First").await;
    first.expect_numeric("001").await;
    second.send("USER twin 0 * :Second").await;
    let refusal = second.expect_numeric("433").await;
    assert_eq!(refusal.param(1), Some("twin"), "{}", refusal.line());
    second.assert_nothing_more().await;
    second.send("NICK twin2").await;
    second.expect_numeric("001").await;
}

#[tokio::test]
async fn a_quit_followed_by_more_input_still_delivers_the_error_line() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    // Unread input when a socket closes makes the kernel reset the connection,
    // which can destroy the ERROR line before it is read.
    let mut burst = b"QUIT :leaving in a hurry\r\n".to_vec();
    for i in 0..2000 {
        burst.extend_from_slice(format!("PRIVMSG nobody :after quit {i}\r\n").as_bytes());
    }
    alice.send_raw(&burst).await;
    let lines = alice.expect_closed().await;
    assert!(
        lines.iter().any(|m| m.command == "ERROR"),
        "no ERROR before the close: {:?}",
        lines.iter().map(MessageExt::line).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_client_that_does_not_answer_ping_is_dropped_and_its_rooms_told() {
    let server = TestServer::start_with(|cfg| {
        cfg.limits.ping_interval = 1;
        cfg.limits.ping_timeout = 1;
    })
    .await;
    let mut silent = server.user("silent").await;
    silent.join("#room").await;
    let mut watcher = server.user("watcher").await;
    watcher.join("#room").await;
    // From here on `silent` reads nothing, so it answers no PING; the watcher's
    // waits answer the server's PINGs, so it stays.
    watcher.set_timeout(std::time::Duration::from_secs(8));
    let quit = watcher
        .expect(|m| m.command == "QUIT" && m.is_from("silent"))
        .await;
    assert_eq!(quit.text(), "Ping timeout: 1 seconds", "{}", quit.line());
    let lines = silent.expect_closed().await;
    assert!(
        lines.iter().any(|m| m.command == "PING"),
        "dropped without being PINGed: {:?}",
        lines.iter().map(MessageExt::line).collect::<Vec<_>>()
    );
    let error = lines
        .iter()
        .find(|m| m.command == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR before the close"));
    assert!(error.text().contains("Ping timeout"), "{}", error.line());
    watcher.assert_nothing_more().await;
}
