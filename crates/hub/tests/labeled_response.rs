//! IRCv3 labeled-response: the reply to a labeled command carries the label, on the one
//! line of the reply, on an `ACK` when there is none, or on a `labeled-response` batch
//! around several.

mod support;

use support::*;

const CAPS: [&str; 2] = ["labeled-response", "batch"];

/// Checks `lines` are one labeled-response batch for `label` and returns the lines
/// inside it, without their batch tag.
fn unbatch(lines: &[String], label: &str) -> Vec<String> {
    assert!(lines.len() >= 2, "{lines:#?}");
    let start = parse(&lines[0]);
    assert_eq!(start.tags.len(), 1, "{}", lines[0]);
    assert_eq!(start.tag("label"), Some(label));
    assert_eq!(start.source.as_deref(), Some(SERVER));
    assert_eq!(start.command, "BATCH");
    assert_eq!(start.params.len(), 2);
    assert_eq!(&start.params[1], "labeled-response");
    let reference = start.params[0]
        .strip_prefix('+')
        .expect("a batch start is +ref")
        .to_owned();
    let end = parse(lines.last().unwrap());
    assert_eq!(end.source.as_deref(), Some(SERVER));
    assert_eq!(end.command, "BATCH");
    assert_eq!(end.params, [format!("-{reference}")]);
    assert!(end.tags.is_empty());
    lines[1..lines.len() - 1]
        .iter()
        .map(|line| {
            let msg = parse(line);
            assert_eq!(msg.tag("batch"), Some(reference.as_str()), "{line}");
            assert_eq!(
                msg.tag("label"),
                None,
                "the label is on the batch only: {line}"
            );
            let tag = format!("batch={reference}");
            // Take the batch tag out, keeping any other tags.
            let rest = line.strip_prefix('@').unwrap();
            let (tags, body) = rest.split_once(' ').unwrap();
            let others: Vec<&str> = tags.split(';').filter(|t| *t != tag).collect();
            if others.is_empty() {
                body.to_owned()
            } else {
                format!("@{} {body}", others.join(";"))
            }
        })
        .collect()
}

#[test]
fn a_labeled_ping_gets_a_labeled_pong() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    assert_eq!(
        t.ask(a, "@label=abc123 PING :token"),
        [format!("@label=abc123 :{SERVER} PONG {SERVER} :token")]
    );
}

#[test]
fn a_labeled_command_without_a_reply_gets_ack() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let b = t.connect("bob");
    assert_eq!(
        t.ask(a, "@label=p1 PONG :whatever"),
        [format!("@label=p1 :{SERVER} ACK")]
    );
    assert_eq!(
        t.ask(a, "@label=m1 PRIVMSG bob :hi"),
        [format!("@label=m1 :{SERVER} ACK")]
    );
    // The recipient's copy carries no label.
    assert_eq!(t.take(b), [format!(":{} PRIVMSG bob :hi", source("alice"))]);
}

#[test]
fn a_labeled_error_carries_the_label() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    assert_eq!(
        t.ask(a, "@label=e1 PRIVMSG ghost :hi"),
        [format!(
            "@label=e1 :{SERVER} 401 alice ghost :No such nick/channel"
        )]
    );
}

#[test]
fn a_labeled_command_with_several_replies_is_wrapped_in_a_batch() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let _b = t.connect("bob");
    let lines = t.ask(a, "@label=w1 WHOIS bob");
    assert_eq!(
        unbatch(&lines, "w1"),
        [
            format!(":{SERVER} 311 alice bob bob {HOST} * :Real bob"),
            format!(":{SERVER} 312 alice bob {SERVER} :natter chat server"),
            format!(":{SERVER} 317 alice bob 0 {START_UNIX} :seconds idle, signon time"),
            format!(":{SERVER} 318 alice bob :End of /WHOIS list"),
        ]
    );
}

#[test]
fn a_labeled_join_batches_the_join_and_names_but_not_what_others_see() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    let b = t.connect_with_caps("bob", &["labeled-response", "batch", "server-time"]);
    t.join(a, "#room");
    let lines = t.ask(b, "@label=j1 JOIN #room");
    assert_eq!(
        unbatch(&lines, "j1"),
        [
            format!("@time={START_TIME_TAG} :{} JOIN :#room", source("bob")),
            format!(":{SERVER} 353 bob = #room :@alice bob"),
            format!(":{SERVER} 366 bob #room :End of /NAMES list"),
        ]
    );
    assert_eq!(t.take(a), [format!(":{} JOIN :#room", source("bob"))]);
}

#[test]
fn each_batch_has_its_own_reference() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let first = parse(&t.ask(a, "@label=1 WHOIS alice")[0]).params[0].to_owned();
    let second = parse(&t.ask(a, "@label=2 WHOIS alice")[0]).params[0].to_owned();
    assert_ne!(first, second);
}

#[test]
fn with_echo_message_the_echo_is_the_labeled_reply() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["labeled-response", "batch", "echo-message"]);
    let b = t.connect("bob");
    t.join(a, "#room");
    t.join(b, "#room");
    t.clear();
    assert_eq!(
        t.ask(a, "@label=x7 PRIVMSG #room :hello"),
        [format!(
            "@label=x7 :{} PRIVMSG #room :hello",
            source("alice")
        )]
    );
    assert_eq!(
        t.take(b),
        [format!(":{} PRIVMSG #room :hello", source("alice"))]
    );
}

#[test]
fn a_labeled_message_to_oneself_labels_only_the_echo() {
    // "When a client sends a message to itself, the server MUST NOT include the label
    // tag, except for any acknowledgment sent with the echo-message mechanism."
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &["labeled-response", "batch", "echo-message"]);
    let line = format!(":{} PRIVMSG alice :memo", source("alice"));
    assert_eq!(
        t.ask(a, "@label=s1 PRIVMSG alice :memo"),
        [line.clone(), format!("@label=s1 {line}")]
    );
}

#[test]
fn the_label_goes_first_among_other_tags() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps(
        "alice",
        &["labeled-response", "batch", "echo-message", "message-tags"],
    );
    let _b = t.connect("bob");
    let lines = t.ask(a, "@label=t1;+draft/reply=m9 PRIVMSG bob :hi");
    assert_eq!(lines.len(), 1);
    assert_eq!(tag_keys(&lines[0]), ["label", "msgid", "+draft/reply"]);
    assert_eq!(tag(&lines[0], "label").unwrap(), "t1");
}

#[test]
fn a_label_value_is_escaped_on_the_way_back() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let lines = t.ask(a, "@label=a\\sb\\:c PING x");
    assert_eq!(
        lines,
        [format!("@label=a\\sb\\:c :{SERVER} PONG {SERVER} :x")]
    );
    assert_eq!(tag(&lines[0], "label").unwrap(), "a b;c");
}

#[test]
fn without_the_cap_a_label_is_ignored() {
    let mut t = TestHub::new();
    let a = t.connect("alice");
    assert_eq!(
        t.ask(a, "@label=abc PING :x"),
        [format!(":{SERVER} PONG {SERVER} :x")]
    );
    t.send(a, "@label=abc PONG :x");
    t.assert_silent(a);
}

#[test]
fn a_label_longer_than_64_bytes_is_ignored() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    let label = "l".repeat(65);
    assert_eq!(
        t.ask(a, &format!("@label={label} PING :x")),
        [format!(":{SERVER} PONG {SERVER} :x")]
    );
}

#[test]
fn a_labeled_quit_still_closes() {
    let mut t = TestHub::new();
    let a = t.connect_with_caps("alice", &CAPS);
    assert_eq!(
        t.ask(a, "@label=q QUIT :bye"),
        [format!("@label=q ERROR :Closing Link: {HOST} (Quit: bye)")]
    );
    assert_eq!(t.take_effects(), [natter_hub::Effect::Close { client: a }]);
}
