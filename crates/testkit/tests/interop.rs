//! Interoperability: IRC clients not written for natter chat with natter users.
//!
//! The first is the `irc` package from PyPI, driven by
//! `tests/interop/python_irc_client.py`; `.ci/run` installs it. Without it this test
//! fails (saying how to install it) rather than passing without having run.

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
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await;
    if status.is_err() {
        let _ = child.kill().await;
    }
    let out = stdout.await.unwrap_or_default();
    let err = stderr.await.unwrap_or_default();
    let transcript = format!(
        "python client stdout:\n  {}\npython client stderr:\n  {}",
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
            "the python client exited with {status}\n{transcript}"
        ),
        Ok(Err(e)) => panic!("cannot wait for the python client: {e}\n{transcript}"),
        Err(_) => panic!(
            "the python client did not exit within {} s\n{transcript}",
            SCRIPT_TIMEOUT.as_secs()
        ),
    }
    let expected = [
        "JOINED #interop",
        "HEARD hello from natter",
        "ANSWERED",
        "DM thanks, and goodbye",
        "DONE",
    ];
    assert_eq!(out, expected, "\n{transcript}");
}
