//! One chat whatever the transport: TCP over IPv4, TCP over IPv6 and the Unix
//! socket each carry the same lines, and users on different transports meet.

use natter_testkit::{MessageExt, Target, TestClient, TestServer};

/// Two users on `target` chat in a room and in private, and a third sees the room.
async fn chat_over(server: &TestServer, target: Target) {
    let mut alice = TestClient::connect(target.clone()).await;
    alice.register("alice").await;
    let mut bob = TestClient::connect(target.clone()).await;
    bob.register("bob").await;
    alice.join("#room").await;
    bob.join("#room").await;
    alice.expect_command("JOIN").await;
    alice.send("PRIVMSG #room :hello over the wire").await;
    bob.expect_privmsg("alice", "#room", "hello over the wire")
        .await;
    bob.send("PRIVMSG alice :private hello").await;
    alice.expect_privmsg("bob", "alice", "private hello").await;
    // Someone on the IPv4 listener sees the same room.
    let mut carol = server.user("carol").await;
    carol.join("#room").await;
    for member in [&mut alice, &mut bob] {
        let join = member.expect_command("JOIN").await;
        assert!(join.is_from("carol"), "{}", join.line());
    }
    bob.send("PRIVMSG #room :hi carol").await;
    carol.expect_privmsg("bob", "#room", "hi carol").await;
    alice.expect_privmsg("bob", "#room", "hi carol").await;
    for client in [&mut alice, &mut bob, &mut carol] {
        client.assert_nothing_more().await;
    }
}

#[tokio::test]
async fn chat_works_over_tcp_ipv4() {
    let server = TestServer::start().await;
    chat_over(&server, server.tcp_target()).await;
}

#[tokio::test]
async fn chat_works_over_tcp_ipv6() {
    let server = TestServer::start().await;
    chat_over(&server, server.v6_target()).await;
}

#[tokio::test]
async fn chat_works_over_the_unix_socket() {
    let server = TestServer::start().await;
    chat_over(&server, server.unix_target()).await;
}

#[tokio::test]
async fn users_on_different_transports_share_a_room() {
    let server = TestServer::start().await;
    let mut local = TestClient::connect_unix(&server).await;
    local.register("local").await;
    let mut six = TestClient::connect_v6(&server).await;
    six.register("six").await;
    let mut four = TestClient::connect_tcp(&server).await;
    four.register("four").await;

    local.join("#mixed").await;
    six.join("#mixed").await;
    let join = local.expect_command("JOIN").await;
    // Each peer is shown by where it came from; `::1` is written `0::1` so that it
    // cannot be taken for a trailing parameter.
    assert_eq!(
        join.source.as_deref(),
        Some("six!six@0::1"),
        "{}",
        join.line()
    );
    four.join("#mixed").await;
    let join = six.expect_command("JOIN").await;
    assert_eq!(
        join.source.as_deref(),
        Some("four!four@127.0.0.1"),
        "{}",
        join.line()
    );
    local.expect_command("JOIN").await;

    local.send("PRIVMSG #mixed :from the unix socket").await;
    let heard = six
        .expect_privmsg("local", "#mixed", "from the unix socket")
        .await;
    assert_eq!(heard.source.as_deref(), Some("local!local@localhost"));
    four.expect_privmsg("local", "#mixed", "from the unix socket")
        .await;
    six.send("PRIVMSG #mixed :from IPv6").await;
    local.expect_privmsg("six", "#mixed", "from IPv6").await;
    four.expect_privmsg("six", "#mixed", "from IPv6").await;
    six.send("PRIVMSG local :just between us").await;
    local
        .expect_privmsg("six", "local", "just between us")
        .await;
    for client in [&mut local, &mut six, &mut four] {
        client.assert_nothing_more().await;
    }
}

#[tokio::test]
async fn stopping_the_server_tells_every_client_on_every_transport() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for (nick, target) in [
        ("four", server.tcp_target()),
        ("six", server.v6_target()),
        ("local", server.unix_target()),
    ] {
        let mut client = TestClient::connect(target).await;
        client.register(nick).await;
        clients.push(client);
    }
    let unix_path = server.unix_path().to_owned();
    server.stop().await;
    for client in &mut clients {
        let lines = client.expect_closed().await;
        let error = lines
            .iter()
            .find(|m| m.command == "ERROR")
            .unwrap_or_else(|| panic!("{}: no ERROR before the close", client.nick()));
        assert_eq!(error.text(), "Server shutting down");
    }
    assert!(
        !unix_path.exists(),
        "the Unix socket file {} is left behind",
        unix_path.display()
    );
}
