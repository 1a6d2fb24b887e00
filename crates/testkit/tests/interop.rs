//! Interoperability: IRC clients not written for natter chat with natter users.
//!
//! The Python `irc` package (driven by `tests/interop/python_irc_client.py`) and
//! WeeChat (`weechat-headless`) each join a room, speak, and answer. `.ci/run`
//! installs both; without them these tests fail, saying how to install them, rather
//! than pass without having run.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use natter_testkit::{MessageExt, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// The third-party client gives up after 20 s by itself; this bounds the whole run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// Collects a child's output lines, so that a failure can show them.
fn collect_lines(stream: impl AsyncRead + Unpin + Send + 'static) -> JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    })
}

/// Fails the test, with instructions, when the `irc` package is missing.
async fn require_python_irc() {
    let probe = Command::new("python3")
        .args(["-c", "import irc.client"])
        .kill_on_drop(true)
        .output();
    let outcome = tokio::time::timeout(Duration::from_secs(20), probe).await;
    match outcome {
        Ok(Ok(output)) if output.status.success() => {}
        Ok(Ok(output)) => panic!(
            "the interoperability test needs the Python `irc` package: \
             run `python3 -m pip install 'irc>=20,<21'` (`pip install irc`), as .ci/run does. \
             python3 said: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Ok(Err(e)) => panic!(
            "the interoperability test needs python3 with the `irc` package \
             (`pip install irc`), but python3 cannot be run: {e}"
        ),
        Err(_) => panic!("`python3 -c 'import irc.client'` did not finish within 20 s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_irc_library_joins_a_room_and_chats_with_a_natter_user() {
    require_python_irc().await;
    let server = TestServer::start().await;
    let mut natter = server.user("natteruser").await;
    natter.join("#interop").await;

    let script = workspace_root().join("tests/interop/python_irc_client.py");
    let port = server.tcp_addr().port().to_string();
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["127.0.0.1", &port, "pybot", "#interop", "natteruser"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = collect_lines(child.stdout.take().expect("piped stdout"));
    let stderr = collect_lines(child.stderr.take().expect("piped stderr"));

    // The natter side of the conversation, in its own task so that a failure there
    // can still be reported with what the Python client printed.
    let conversation = tokio::spawn(async move {
        let join = natter
            .expect(|m| m.command == "JOIN" && m.is_from("pybot"))
            .await;
        assert_eq!(join.param(0), Some("#interop"), "{}", join.line());
        natter.send("PRIVMSG #interop :hello from natter").await;
        natter
            .expect_privmsg(
                "pybot",
                "#interop",
                "hello natteruser, pybot heard: hello from natter",
            )
            .await;
        natter
            .expect_privmsg("pybot", "natteruser", "and a private word for you")
            .await;
        natter.send("PRIVMSG pybot :thanks, and goodbye").await;
        let quit = natter
            .expect(|m| m.command == "QUIT" && m.is_from("pybot"))
            .await;
        assert_eq!(quit.text(), "Quit: done here", "{}", quit.line());
    });

    let conversed = tokio::time::timeout(SCRIPT_TIMEOUT, conversation).await;
    let out = finish("the python client", child, conversed, stdout, stderr).await;
    let expected = [
        "JOINED #interop",
        "HEARD hello from natter",
        "ANSWERED",
        "DM thanks, and goodbye",
        "DONE",
    ];
    assert_eq!(out, expected, "what the python client printed");
}

/// Fails the test, with instructions, when weechat-headless is missing.
async fn require_weechat() {
    let probe = Command::new("weechat-headless")
        .arg("--version")
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(20), probe).await {
        Ok(Ok(output)) if output.status.success() => {}
        Ok(Ok(output)) => panic!("`weechat-headless --version` failed: {}", output.status),
        Ok(Err(e)) => panic!(
            "the interoperability test needs WeeChat: run `apt-get install weechat-headless`, \
             as .ci/run does ({e})"
        ),
        Err(_) => panic!("`weechat-headless --version` did not finish within 20 s"),
    }
    assert!(
        has_weechat_trigger_plugin(),
        "the interoperability test drives WeeChat with its trigger plugin: run \
         `apt-get install weechat-plugins`, as .ci/run does"
    );
}

/// Whether WeeChat's trigger plugin is installed where Debian puts it (it comes in
/// weechat-plugins, which weechat-headless only recommends).
fn has_weechat_trigger_plugin() -> bool {
    let mut dirs = vec![std::path::PathBuf::from("/usr/lib")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    dirs.iter()
        .any(|dir| dir.join("weechat/plugins/trigger.so").exists())
}

/// Waits for a child to exit and for its output, failing with that output when the
/// conversation or the exit went wrong.
async fn finish(
    name: &str,
    mut child: tokio::process::Child,
    conversed: Result<Result<(), tokio::task::JoinError>, tokio::time::error::Elapsed>,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<Vec<String>>,
) -> Vec<String> {
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await;
    if status.is_err() {
        let _ = child.kill().await;
    }
    let out = stdout.await.unwrap_or_default();
    let err = stderr.await.unwrap_or_default();
    let transcript = format!(
        "{name} stdout:\n  {}\n{name} stderr:\n  {}",
        out.join("\n  "),
        err.join("\n  ")
    );
    match conversed {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => {
            eprintln!("{transcript}");
            std::panic::resume_unwind(e.into_panic());
        }
        Ok(Err(e)) => panic!("the natter side did not finish: {e}\n{transcript}"),
        Err(_) => panic!(
            "the conversation did not end within {} s\n{transcript}",
            SCRIPT_TIMEOUT.as_secs()
        ),
    }
    match status {
        Ok(Ok(status)) => assert!(
            status.success(),
            "{name} exited with {status}\n{transcript}"
        ),
        Ok(Err(e)) => panic!("cannot wait for {name}: {e}\n{transcript}"),
        Err(_) => panic!(
            "{name} did not exit within {} s\n{transcript}",
            SCRIPT_TIMEOUT.as_secs()
        ),
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weechat_joins_a_room_speaks_and_answers_ctcp_in_the_room_and_in_private() {
    require_weechat().await;
    let server = TestServer::start().await;
    let mut natter = server.user("natteruser").await;
    natter.join("#interop").await;
    let port = server.tcp_addr().port();
    // WeeChat spaces out what it sends (2 s by default): turned off, so that the test
    // takes milliseconds. Two triggers make it act on events, not on timers: at the
    // end of the member list of the room it joined it speaks, and when it is kicked
    // it quits, so that it exits by itself.
    let setup = format!(
        "/server add natter 127.0.0.1/{port} -notls -nicks=weebot -username=weebot \
         -realname=WeeChat -autojoin=#interop -anti_flood_prio_high=0 -anti_flood_prio_low=0;\
         /trigger add greet signal *,irc_in2_366 \"\" \"\" \"/msg -server natter #interop hello from weechat\";\
         /trigger add leave signal *,irc_in2_kick \"\" \"\" \"/quit kicked, leaving\";\
         /connect natter"
    );
    let home = server.temp_dir().join("weechat");
    let mut child = Command::new("weechat-headless")
        .arg("--dir")
        .arg(&home)
        .args(["--stdout", "-P", "irc,trigger", "-r", &setup])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run weechat-headless: {e}"));
    let stdout = collect_lines(child.stdout.take().expect("piped stdout"));
    let stderr = collect_lines(child.stderr.take().expect("piped stderr"));

    let conversation = tokio::spawn(async move {
        let join = natter
            .expect(|m| m.command == "JOIN" && m.is_from("weebot"))
            .await;
        assert_eq!(join.param(0), Some("#interop"), "{}", join.line());
        natter
            .expect_privmsg("weebot", "#interop", "hello from weechat")
            .await;
        // A CTCP PING to the room: WeeChat answers the sender in private.
        natter
            .send("PRIVMSG #interop :\u{1}PING 1795765304\u{1}")
            .await;
        let pong = natter
            .expect(|m| m.command == "NOTICE" && m.is_from("weebot"))
            .await;
        assert_eq!(
            pong.params,
            ["natteruser", "\u{1}PING 1795765304\u{1}"],
            "{}",
            pong.line()
        );
        // A CTCP VERSION in private.
        natter.send("PRIVMSG weebot :\u{1}VERSION\u{1}").await;
        let version = natter
            .expect(|m| m.command == "NOTICE" && m.is_from("weebot"))
            .await;
        assert!(
            version.text().starts_with("\u{1}VERSION WeeChat"),
            "{}",
            version.line()
        );
        natter.send("KICK #interop weebot :thanks, goodbye").await;
        natter
            .expect(|m| m.command == "KICK" && m.param(1) == Some("weebot"))
            .await;
        natter.assert_nothing_more().await;
    });
    let conversed = tokio::time::timeout(SCRIPT_TIMEOUT, conversation).await;
    finish("weechat-headless", child, conversed, stdout, stderr).await;
}
