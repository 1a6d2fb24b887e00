//! Room modes as members experience them: who may speak, join, set the topic, and
//! what each change looks like on the wire.

use natter_testkit::{MessageExt, TestClient, TestServer};

/// `op` founds `room` (and so is its operator); each other nick joins after.
async fn room_of(server: &TestServer, room: &str, nicks: &[&str]) -> Vec<TestClient> {
    let mut members: Vec<TestClient> = Vec::new();
    for nick in nicks {
        let mut member = server.user(nick).await;
        member.join(room).await;
        for earlier in &mut members {
            earlier.expect_command("JOIN").await;
        }
        members.push(member);
    }
    members
}

/// Has `op` set `change` on `room` and waits until every member has seen the MODE
/// line, checking that it shows exactly `shown` (modes and parameters).
async fn set_mode(members: &mut [TestClient], room: &str, change: &str, shown: &[&str]) {
    let op = members[0].nick().to_owned();
    members[0].send(&format!("MODE {room} {change}")).await;
    for member in members.iter_mut() {
        let mode = member.expect_command("MODE").await;
        assert!(mode.is_from(&op), "{}", mode.line());
        assert_eq!(
            mode.params.iter().skip(1).collect::<Vec<_>>(),
            *shown,
            "{}",
            mode.line()
        );
    }
}

#[tokio::test]
async fn a_new_room_is_plus_n_and_plus_t() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice"]).await;
    m[0].send("MODE #room").await;
    let modes = m[0].expect_numeric("324").await;
    assert_eq!(modes.param(1), Some("#room"));
    let flags = modes.param(2).unwrap_or("");
    assert!(
        flags.contains('n') && flags.contains('t'),
        "{}",
        modes.line()
    );
    m[0].expect_numeric("329").await;
}

#[tokio::test]
async fn plus_o_makes_a_member_operator_who_may_then_kick() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob", "carol"]).await;
    m[1].send("KICK #room carol").await;
    m[1].expect_numeric("482").await;
    set_mode(&mut m, "#room", "+o bob", &["+o", "bob"]).await;
    m[1].send("KICK #room carol :now I can").await;
    for member in &mut m {
        let kick = member.expect_command("KICK").await;
        assert!(kick.is_from("bob"), "{}", kick.line());
        assert_eq!(kick.params, ["#room", "carol", "now I can"]);
    }
}

#[tokio::test]
async fn plus_m_silences_all_but_voiced_members_and_operators() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob", "carol"]).await;
    set_mode(&mut m, "#room", "+m", &["+m"]).await;
    m[2].send("PRIVMSG #room :may I?").await;
    m[2].expect_numeric("404").await;
    m[1].assert_nothing_more().await;
    m[0].send("PRIVMSG #room :ops may").await;
    m[1].expect_privmsg("alice", "#room", "ops may").await;
    m[2].expect_privmsg("alice", "#room", "ops may").await;
    set_mode(&mut m, "#room", "+v carol", &["+v", "carol"]).await;
    m[2].send("PRIVMSG #room :voiced now").await;
    m[1].expect_privmsg("carol", "#room", "voiced now").await;
    m[0].expect_privmsg("carol", "#room", "voiced now").await;
    m[1].send("NAMES #room").await;
    let names = m[1].expect_numeric("353").await;
    let mut list: Vec<&str> = names.text().split(' ').collect();
    list.sort_unstable();
    assert_eq!(list, ["+carol", "@alice", "bob"], "{}", names.line());
}

#[tokio::test]
async fn plus_i_admits_only_invited_users_and_each_invitation_once() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice"]).await;
    set_mode(&mut m, "#room", "+i", &["+i"]).await;
    let mut bob = server.user("bob").await;
    bob.send("JOIN #room").await;
    let refused = bob.expect_numeric("473").await;
    assert_eq!(refused.param(1), Some("#room"), "{}", refused.line());
    m[0].send("INVITE bob #room").await;
    m[0].expect_numeric("341").await;
    bob.expect_command("INVITE").await;
    bob.join("#room").await;
    m[0].expect_command("JOIN").await;
    // The invitation is used up: after leaving, bob is refused again.
    bob.send("PART #room").await;
    bob.expect_command("PART").await;
    bob.send("JOIN #room").await;
    bob.expect_numeric("473").await;
}

#[tokio::test]
async fn plus_k_needs_the_key_to_join() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice"]).await;
    set_mode(&mut m, "#room", "+k sesame", &["+k", "sesame"]).await;
    let mut bob = server.user("bob").await;
    bob.send("JOIN #room").await;
    bob.expect_numeric("475").await;
    bob.send("JOIN #room wrong").await;
    bob.expect_numeric("475").await;
    bob.send("JOIN #room sesame").await;
    bob.expect_numeric("366").await;
    m[0].expect_command("JOIN").await;
}

#[tokio::test]
async fn plus_l_caps_the_number_of_members() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob"]).await;
    set_mode(&mut m, "#room", "+l 2", &["+l", "2"]).await;
    let mut carol = server.user("carol").await;
    carol.send("JOIN #room").await;
    let full = carol.expect_numeric("471").await;
    assert_eq!(full.param(1), Some("#room"), "{}", full.line());
    // A place freed is a place taken.
    m[1].send("PART #room").await;
    m[0].expect_command("PART").await;
    carol.join("#room").await;
}

#[tokio::test]
async fn plus_b_keeps_a_matching_user_out_and_silences_a_banned_member() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob"]).await;
    set_mode(&mut m, "#room", "+b carol!*@*", &["+b", "carol!*@*"]).await;
    let mut carol = server.user("carol").await;
    carol.send("JOIN #room").await;
    carol.expect_numeric("474").await;
    set_mode(&mut m, "#room", "+b bob!*@*", &["+b", "bob!*@*"]).await;
    m[1].send("PRIVMSG #room :am I banned?").await;
    m[1].expect_numeric("404").await;
    m[0].assert_nothing_more().await;
    m[0].send("MODE #room +b").await;
    let mut listed = Vec::new();
    loop {
        let line = m[0]
            .expect(|l| l.command == "367" || l.command == "368")
            .await;
        if line.command == "368" {
            break;
        }
        listed.push(line.param(2).unwrap_or("").to_owned());
    }
    listed.sort();
    assert_eq!(listed, ["bob!*@*", "carol!*@*"]);
}

#[tokio::test]
async fn plus_t_lets_only_operators_set_the_topic() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob"]).await;
    m[1].send("TOPIC #room :bob's topic").await;
    m[1].expect_numeric("482").await;
    set_mode(&mut m, "#room", "-t", &["-t"]).await;
    m[1].send("TOPIC #room :bob's topic").await;
    for member in &mut m {
        let topic = member.expect_command("TOPIC").await;
        assert!(topic.is_from("bob"), "{}", topic.line());
    }
}

#[tokio::test]
async fn plus_n_refuses_messages_from_outside_until_lifted() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice"]).await;
    let mut outsider = server.user("outsider").await;
    outsider.send("PRIVMSG #room :knock knock").await;
    outsider.expect_numeric("404").await;
    m[0].assert_nothing_more().await;
    set_mode(&mut m, "#room", "-n", &["-n"]).await;
    outsider.send("PRIVMSG #room :knock knock").await;
    m[0].expect_privmsg("outsider", "#room", "knock knock")
        .await;
}

#[tokio::test]
async fn only_operators_change_room_modes() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob"]).await;
    m[1].send("MODE #room +m").await;
    let refusal = m[1].expect_numeric("482").await;
    assert_eq!(refusal.param(1), Some("#room"), "{}", refusal.line());
    m[0].assert_nothing_more().await;
    m[1].assert_nothing_more().await;
}

#[tokio::test]
async fn several_modes_in_one_line_are_shown_in_one_mode_line() {
    let server = TestServer::start().await;
    let mut m = room_of(&server, "#room", &["alice", "bob"]).await;
    set_mode(&mut m, "#room", "+mv-t bob", &["+mv-t", "bob"]).await;
    m[0].assert_nothing_more().await;
}
