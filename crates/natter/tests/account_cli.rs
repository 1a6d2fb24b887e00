//! `natter account` and `natter backup` as an operator uses them on a data directory.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn natter(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("natter runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("writes stdin");
    child.wait_with_output().expect("natter finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn accounts_are_created_listed_changed_and_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let created = natter(&["account", "create", "Alice", "--data", data], "s3cret\n");
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("created account Alice"));

    let again = natter(&["account", "create", "alice", "--data", data], "other\n");
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );

    let list = natter(&["account", "list", "--data", data], "");
    assert_eq!(text(&list.stdout), "Alice\n");

    let passwd = natter(
        &["account", "passwd", "ALICE", "--data", data],
        "new-pass\n",
    );
    assert!(passwd.status.success(), "{}", text(&passwd.stderr));
    let missing = natter(&["account", "passwd", "bob", "--data", data], "x\n");
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no account 'bob'"));

    let no_password = natter(&["account", "create", "carol", "--data", data], "");
    assert!(!no_password.status.success());
    assert!(text(&no_password.stderr).contains("no password"));

    let deleted = natter(&["account", "delete", "alice", "--data", data], "");
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert_eq!(
        text(&natter(&["account", "list", "--data", data], "").stdout),
        ""
    );
}

#[test]
fn backup_copies_the_database_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    assert!(
        natter(&["account", "create", "alice", "--data", data], "pw\n")
            .status
            .success()
    );
    let dest = dir.path().join("copy.db");
    let dest = dest.to_str().expect("utf-8 path");
    let backup = natter(&["backup", dest, "--data", data], "");
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    // The copy is a working data directory's database.
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).expect("mkdir");
    std::fs::copy(dest, restored.join("natter.db")).expect("copy");
    let list = natter(
        &[
            "account",
            "list",
            "--data",
            restored.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(text(&list.stdout), "alice\n");
    let again = natter(&["backup", dest, "--data", data], "");
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("will not overwrite"));
}
