//! Rooms as their members see them: joining, leaving, nick changes, quits, kicks,
//! topics and invitations.

use natter_testkit::{Message, MessageExt, TestClient, TestServer};

/// Registers each nick and joins them all to `room`, in order; returns them with
/// every JOIN announcement already taken, so that each starts with nothing pending.
async fn room_of(server: &TestServer, room: &str, nicks: &[&str]) -> Vec<TestClient> {
    let mut members: Vec<TestClient> = Vec::new();
    for nick in nicks {
        let mut member = server.user(nick).await;
        member.join(room).await;
        for earlier in &mut members {
            let join = earlier.expect_command("JOIN").await;
            assert!(join.is_from(nick), "{}", join.line());
        }
        members.push(member);
    }
    members
}

fn lines(messages: &[Message]) -> Vec<String> {
    messages.iter().map(MessageExt::line).collect()
}

#[tokio::test]
async fn joining_tells_every_member_and_lists_the_first_joiner_as_operator() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let first = alice.join("#room").await;
    assert!(
        first
            .iter()
            .any(|m| m.command == "JOIN" && m.is_from("alice") && m.param(0) == Some("#room")),
        "{:?}",
        lines(&first)
    );
    let mut bob = server.user("bob").await;
    let joined = bob.join("#room").await;
    let names: Vec<&str> = joined
        .iter()
        .filter(|m| m.command == "353")
        .flat_map(|m| m.text().split(' '))
        .collect();
    assert!(names.contains(&"@alice"), "NAMES: {names:?}");
    assert!(names.contains(&"bob"), "NAMES: {names:?}");
    let join = alice.expect_command("JOIN").await;
    assert!(join.is_from("bob"), "{}", join.line());
    assert_eq!(join.param(0), Some("#room"));
    alice.assert_nothing_more().await;
}

#[tokio::test]
async fn a_room_name_keeps_the_spelling_of_its_creator() {
    let server = TestServer::start().await;
    let mut members = room_of(&server, "#Team", &["alice"]).await;
    let mut bob = server.user("bob").await;
    let joined = bob.join("#TEAM").await;
    let join = joined
        .iter()
        .find(|m| m.command == "JOIN")
        .expect("the join is echoed");
    assert_eq!(join.param(0), Some("#Team"), "{}", join.line());
    members[0].expect_command("JOIN").await;
}

#[tokio::test]
async fn part_with_a_reason_is_seen_by_every_member_and_the_leaver() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob", "carol"]).await;
    m[1].send("PART #room :off to lunch").await;
    for member in &mut m {
        let part = member.expect_command("PART").await;
        assert!(part.is_from("bob"), "{}", part.line());
        assert_eq!(part.params, ["#room", "off to lunch"]);
    }
    // bob is no longer a member: the room's messages no longer reach him.
    m[0].send("PRIVMSG #room :still here?").await;
    m[2].expect_privmsg("alice", "#room", "still here?").await;
    m[1].assert_nothing_more().await;
}

#[tokio::test]
async fn a_nick_change_is_seen_once_by_each_neighbour_and_not_by_strangers() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let mut stranger = server.user("stranger").await;
    // bob shares two rooms with alice, carol one: each must still see one NICK.
    alice.join("#one").await;
    alice.join("#two").await;
    bob.join("#one").await;
    bob.join("#two").await;
    carol.join("#two").await;
    for _ in 0..3 {
        alice.expect_command("JOIN").await;
    }
    bob.expect_command("JOIN").await;
    alice.send("NICK alicia").await;
    for (who, client) in [
        ("alice", &mut alice),
        ("bob", &mut bob),
        ("carol", &mut carol),
    ] {
        let nick = client.expect_command("NICK").await;
        assert!(nick.is_from("alice"), "{who} saw {}", nick.line());
        assert_eq!(nick.text(), "alicia", "{who} saw {}", nick.line());
        client.assert_nothing_more().await;
    }
    stranger.assert_nothing_more().await;
    // The new nick is the one that works now.
    bob.send("PRIVMSG alicia :nice name").await;
    alice.expect_privmsg("bob", "alicia", "nice name").await;
    bob.send("PRIVMSG alice :old name").await;
    bob.expect_numeric("401").await;
}

#[tokio::test]
async fn a_quit_reason_is_seen_by_room_members() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob", "carol"]).await;
    let mut stranger = server.user("stranger").await;
    let bob = m.remove(1);
    bob.quit("gone fishing").await;
    for member in &mut m {
        let quit = member.expect_command("QUIT").await;
        assert!(quit.is_from("bob"), "{}", quit.line());
        assert_eq!(quit.text(), "Quit: gone fishing", "{}", quit.line());
        member.assert_nothing_more().await;
    }
    stranger.assert_nothing_more().await;
}

#[tokio::test]
async fn a_dropped_connection_is_seen_as_a_quit() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob"]).await;
    let mut bob = m.pop().expect("bob");
    bob.connection()
        .shutdown()
        .await
        .expect("close the sending half");
    drop(bob);
    let quit = m[0].expect_command("QUIT").await;
    assert!(quit.is_from("bob"), "{}", quit.line());
}

#[tokio::test]
async fn kick_removes_the_member_and_everyone_sees_it_with_the_reason() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob", "carol"]).await;
    m[0].send("KICK #room bob :behave").await;
    for member in &mut m {
        let kick = member.expect_command("KICK").await;
        assert!(kick.is_from("alice"), "{}", kick.line());
        assert_eq!(kick.params, ["#room", "bob", "behave"]);
    }
    // bob is out: he may not speak there (+n) and hears nothing from it.
    m[1].send("PRIVMSG #room :let me back").await;
    m[1].expect_numeric("404").await;
    m[2].send("PRIVMSG #room :bye bob").await;
    m[0].expect_privmsg("carol", "#room", "bye bob").await;
    m[1].assert_nothing_more().await;
}

#[tokio::test]
async fn a_topic_change_is_seen_by_members_and_shown_to_later_joiners() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob"]).await;
    m[0].send("TOPIC #room :plans for today").await;
    for member in &mut m {
        let topic = member.expect_command("TOPIC").await;
        assert_eq!(topic.params, ["#room", "plans for today"]);
    }
    let mut carol = server.user("carol").await;
    let joined = carol.join("#room").await;
    let topic = joined
        .iter()
        .find(|m| m.command == "332")
        .unwrap_or_else(|| panic!("no 332 on join: {:?}", lines(&joined)));
    assert_eq!(topic.text(), "plans for today");
    carol.send("TOPIC #room").await;
    assert_eq!(carol.expect_numeric("332").await.text(), "plans for today");
}

#[tokio::test]
async fn an_invitation_reaches_the_invited_user() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice"]).await;
    let mut bob = server.user("bob").await;
    m[0].send("INVITE bob #room").await;
    let inviting = m[0].expect_numeric("341").await;
    assert_eq!(inviting.params.strs()[1..], ["bob", "#room"]);
    let invite = bob.expect_command("INVITE").await;
    assert!(invite.is_from("alice"), "{}", invite.line());
    assert_eq!(invite.params, ["bob", "#room"]);
}

#[tokio::test]
async fn the_last_member_leaving_forgets_the_room() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    alice.join("#room").await;
    alice.send("TOPIC #room :old topic").await;
    alice.expect_command("TOPIC").await;
    alice.send("PART #room").await;
    alice.expect_command("PART").await;
    let mut bob = server.user("bob").await;
    let joined = bob.join("#room").await;
    assert!(
        !joined.iter().any(|m| m.command == "332"),
        "a new room has no topic: {:?}",
        lines(&joined)
    );
    let names: Vec<&str> = joined
        .iter()
        .filter(|m| m.command == "353")
        .flat_map(|m| m.text().split(' '))
        .collect();
    assert_eq!(names, ["@bob"], "bob founds the room anew");
}

#[tokio::test]
async fn join_0_leaves_every_room() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    for room in ["#a", "#b"] {
        bob.join(room).await;
        alice.join(room).await;
        bob.expect_command("JOIN").await;
    }
    alice.send("JOIN 0").await;
    let mut parted = Vec::new();
    for _ in 0..2 {
        let part = bob.expect_command("PART").await;
        assert!(part.is_from("alice"), "{}", part.line());
        parted.push(part.param(0).unwrap_or("").to_owned());
    }
    // In no particular order.
    parted.sort();
    assert_eq!(parted, ["#a", "#b"]);
    bob.assert_nothing_more().await;
}

#[tokio::test]
async fn a_long_member_list_is_split_into_names_lines_that_fit() {
    let server = TestServer::start().await;
    let mut members = Vec::new();
    // 40 nicks of 30 bytes: 1.2 kB of names, three lines' worth at least.
    for i in 0..40 {
        let mut member = server
            .user(&format!("member{i:02}{}", "x".repeat(22)))
            .await;
        member.join("#crowd").await;
        members.push(member);
    }
    let mut late = server.user("late").await;
    let joined = late.join("#crowd").await;
    let lines: Vec<&Message> = joined.iter().filter(|m| m.command == "353").collect();
    assert!(lines.len() >= 3, "{} NAMES lines", lines.len());
    let mut names: Vec<&str> = lines.iter().flat_map(|m| m.text().split(' ')).collect();
    names.sort_unstable();
    assert_eq!(names.len(), 41, "{names:?}");
    assert_eq!(names[0], format!("@member00{}", "x".repeat(22)));
    // Every line parsed, so each was within 512 bytes.
    assert!(lines.iter().all(|m| m.line().len() + 2 <= 512));
}
