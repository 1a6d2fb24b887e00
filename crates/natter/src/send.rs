//! `natter send`: a one-shot sender for scripts, cron jobs and alerts.
//!
//! It registers, sends each message to a nick or a room, and exits 0 only once the
//! server has acknowledged every one (labeled-response: on natter, the acknowledgement
//! leaves the server only after the message is stored, so an exit 0 means no message
//! is lost even if the server dies the next moment). Any failure exits 1 with one line
//! saying what failed and one saying what to do.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use natter_client::{
    register, send_acknowledged, ClientError, Connection, Registered, Registration, Target,
    UdpConfig,
};

/// Capabilities asked for: echo-message + labeled-response make each message's
/// acknowledgement; batch and message-tags carry the labels.
const CAPS: &[&str] = &["echo-message", "labeled-response", "batch", "message-tags"];

/// Over UDP, PING the server after this long without hearing from it (the library's
/// default is 15 s). A sender waiting for acknowledgements has nothing in flight; if
/// its address changed meanwhile (a NAT rebinding, a new network), the server's answers
/// go to the old address and nothing would tell the server where it is now until the
/// next datagram from the client. For a one-shot command a PING a second of silence
/// costs nothing, and it makes the server find it again within a second instead of 15.
const UDP_KEEPALIVE: Duration = Duration::from_secs(1);

/// Longest wait for the server to close the connection after QUIT: every message is
/// acknowledged by then, so this only keeps the goodbye tidy.
const QUIT_WAIT: Duration = Duration::from_secs(3);

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    natter send tcp://127.0.0.1:6667 --nick alerts --to '#ops' 'disk full on db1'\n  \
    tail -n 20 build.log | natter send udp://chat.example.org:6667 --nick ci --to alice\n\n\
    A #room is joined first (rooms refuse messages from outside by default), and left \
    when natter send quits.\n\
    Exit status: 0 once the server has acknowledged every message (on natter: stored), \
    1 if anything failed (the message says what, and what to do), 2 for a bad command line.")]
pub struct SendArgs {
    /// The server: tcp://HOST:PORT, udp://HOST:PORT (natter's reliable UDP: survives
    /// loss and a change of address) or unix:///path/to/natter.sock; port 6667 if none
    #[arg(value_name = "URL")]
    url: Target,

    /// The nick to send as
    #[arg(long, value_name = "NICK")]
    nick: String,

    /// Who receives: a nick, or a room such as '#ops' (quote it in the shell)
    #[arg(long, value_name = "TARGET")]
    to: String,

    /// Longest wait for the server at each step: connecting, registering, joining, and
    /// the acknowledgement of all the messages
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    timeout: u64,

    /// The message (the words are joined with spaces). Without it, each line of
    /// standard input is sent as one message. Text longer than an IRC line allows is
    /// sent as several messages.
    #[arg(value_name = "MESSAGE", trailing_var_arg = true)]
    message: Vec<String>,
}

/// Why `natter send` failed: what, and what to do about it.
#[derive(Debug)]
struct Failure {
    what: String,
    hint: Option<String>,
}

impl Failure {
    fn new(what: impl Into<String>) -> Failure {
        Failure {
            what: what.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

/// Runs `natter send`, printing what failed if anything did.
pub fn run(args: SendArgs) -> ExitCode {
    let result = texts(&args).and_then(|texts| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(send(&args, &texts))
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("natter send: {}", failure.what);
            if let Some(hint) = failure.hint {
                eprintln!("natter send: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The messages: MESSAGE, or each non-empty line of standard input. A line break in
/// MESSAGE starts a new message too (it could not travel inside one).
fn texts(args: &SendArgs) -> Result<Vec<String>, Failure> {
    let text = if args.message.is_empty() {
        if std::io::stdin().is_terminal() {
            eprintln!("natter send: one message per line; end with Ctrl-D (or give MESSAGE)");
        }
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| Failure::new(format!("cannot read standard input: {e}")))?;
        String::from_utf8(input).map_err(|_| {
            Failure::new("standard input is not UTF-8 text")
                .hint("convert it first, e.g. with iconv -t UTF-8")
        })?
    } else {
        args.message.join(" ")
    };
    Ok(text
        .split(['\n', '\r'])
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// Connects, registers, joins a room target, sends, waits for every acknowledgement,
/// quits. Returns how many messages went out.
async fn send(args: &SendArgs, texts: &[String]) -> Result<usize, Failure> {
    if args.nick.is_empty()
        || args.nick.starts_with([':', '#', '&'])
        || args
            .nick
            .contains(|c: char| c == ' ' || c == ',' || c.is_control())
    {
        return Err(Failure::new(format!("'{}' is not a nick", args.nick))
            .hint("give --nick one word: letters, digits and -[]\\`^{}|_"));
    }
    if args.to.is_empty()
        || args
            .to
            .contains(|c: char| c == ' ' || c == ',' || c.is_control())
    {
        return Err(
            Failure::new(format!("'{}' is not a nick or a room", args.to))
                .hint("give one nick or one #room to --to"),
        );
    }
    let within = Duration::from_secs(args.timeout);
    let url = &args.url;
    let udp = UdpConfig {
        handshake_timeout: within,
        keepalive: UDP_KEEPALIVE,
        ..natter_client::udp_config()
    };
    let mut conn = match tokio::time::timeout(within, Connection::connect_with(url, udp)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            return Err(Failure::new(e.to_string()).hint(format!(
                "check the URL, and that `natter serve` listens on {url}"
            )))
        }
        Err(_) => {
            return Err(Failure::new(format!(
                "cannot connect to {url}: no answer within {within:?}"
            ))
            .hint("check the URL and the network; --timeout waits longer"))
        }
    };
    let registration = Registration {
        timeout: within,
        ..Registration::new(&args.nick).caps(CAPS)
    };
    let registered = register(&mut conn, &registration)
        .await
        .map_err(|e| explain(e, &format!("cannot register as {}", args.nick)))?;
    if is_room(&args.to) {
        join(&mut conn, &registered, &args.to, within).await?;
    }
    let sent = send_acknowledged(&mut conn, &registered, &args.to, texts, within)
        .await
        .map_err(|e| explain(e, &format!("cannot send to {}", args.to)))?;
    quit(&mut conn).await;
    Ok(sent)
}

fn is_room(target: &str) -> bool {
    target.starts_with(['#', '&'])
}

/// Joins `room`, returning once the server confirms (its JOIN echo) or failing with its
/// refusal.
async fn join(
    conn: &mut Connection,
    registered: &Registered,
    room: &str,
    within: Duration,
) -> Result<(), Failure> {
    let fail = |e| explain(e, &format!("cannot join {room}"));
    conn.send(&format!("JOIN {room}")).await.map_err(fail)?;
    let me = registered.nick.as_str();
    let answer = conn
        .wait_for(within, "JOIN confirmation", |m| {
            let joined = m.command == "JOIN"
                && m.param(0).is_some_and(|r| r.eq_ignore_ascii_case(room))
                && m.source.as_deref().is_some_and(|s| {
                    s.split('!')
                        .next()
                        .is_some_and(|n| n.eq_ignore_ascii_case(me))
                });
            joined || is_error(&m.command)
        })
        .await
        .map_err(fail)?;
    if answer.command == "JOIN" {
        return Ok(());
    }
    let reason = answer.params.last().unwrap_or_default().to_owned();
    Err(explain(
        ClientError::Refused {
            code: answer.command.to_string(),
            text: format!("{room}: {reason}"),
        },
        &format!("cannot join {room}"),
    ))
}

/// A 4xx or 5xx numeric, or FAIL.
fn is_error(command: &str) -> bool {
    command == "FAIL"
        || (command.len() == 3 && (command.starts_with('4') || command.starts_with('5')))
}

/// Says goodbye. Everything was acknowledged already, so nothing here can fail the
/// command: the server closing the connection is waited for (briefly) only so that it
/// is the server that ends it, and then the connection is closed in order (over UDP,
/// the session's Close and CloseAck).
async fn quit(conn: &mut Connection) {
    if conn.send("QUIT :natter send").await.is_ok() {
        let _ = tokio::time::timeout(QUIT_WAIT, async {
            while let Ok(Some(_)) = conn.recv().await {}
        })
        .await;
    }
    let _ = conn.shutdown().await;
}

/// Turns a client error into what the user reads: a refusal as `bob: No such
/// nick/channel (401)` with advice for the usual numerics; anything else as
/// `doing: error`.
fn explain(e: ClientError, doing: &str) -> Failure {
    match e {
        ClientError::Refused { code, text } => {
            let failure = Failure::new(format!("{text} ({code})"));
            match code.as_str() {
                "401" | "403" => failure.hint(
                    "nobody by that name is online and no such room exists: check --to",
                ),
                "404" => failure.hint(
                    "the room refuses your messages (moderated, or you are banned): ask its operators",
                ),
                "432" => failure.hint("choose a valid --nick: letters, digits and -[]\\`^{}|_"),
                "433" | "436" => failure.hint("that nick is taken: choose another --nick"),
                "465" => failure.hint("this server refuses you: ask its operators"),
                "471" | "473" | "474" | "475" => {
                    failure.hint("the room is full, invite-only, has banned you or needs a key")
                }
                _ => failure,
            }
        }
        ClientError::TimedOut { .. } => Failure::new(format!("{doing}: {e}"))
            .hint("the server is slow or the path loses too much: --timeout waits longer"),
        ClientError::Closed { .. } => Failure::new(format!("{doing}: {e}")),
        e => Failure::new(format!("{doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_what_and_why() {
        let f = explain(
            ClientError::Refused {
                code: "401".into(),
                text: "bob: No such nick/channel".into(),
            },
            "cannot send to bob",
        );
        assert_eq!(f.what, "bob: No such nick/channel (401)");
        assert!(f.hint.is_some_and(|h| h.contains("--to")));
    }

    #[test]
    fn rooms_are_told_from_nicks() {
        assert!(is_room("#ops") && is_room("&local"));
        assert!(!is_room("alice"));
    }
}
