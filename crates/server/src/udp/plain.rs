//! Plain mode, sans-IO: what a datagram of IRC lines from a UDP address means.
//!
//! An address with no session is a *stranger*: nothing is stored for it. Its datagram
//! gets at most one reply, no larger than three times the datagram (and 1200 bytes),
//! holding `PING :<token>` first (see [`token`](super::token): the token proves the
//! address and carries the `NICK`/`USER`/`PASS` the datagram held) and, when it fits,
//! a `NOTICE` saying what to do. A datagram that parses as nothing gets nothing.
//!
//! A datagram holding `PONG <token>` for a valid token opens a session: the hub is
//! given the carried registration, then the datagram's other lines, in order. A nick
//! without a user line registers with the nick as user name and real name, so that a
//! script sending `NICK` and `USER` in two datagrams and answering only the first
//! `PING` is registered all the same (a later `USER` then gets `462`, harmlessly).

use std::net::SocketAddr;
use std::time::Instant;

use natter_proto::{FramedLine, LineFramer, Message, ParseError};
use natter_udp::{amplification::reply_limit, pack_reply, Cookies};

use super::token::{self, Carried};

/// One line of a datagram: parsed, or why not (the hub answers those for sessions).
pub(crate) type Parsed = Result<Message, ParseError>;

/// Cuts a datagram into lines and parses each. A datagram ends its last line, so a
/// missing final newline (common in scripts) is forgiven. Empty lines are skipped.
pub(crate) fn parse_lines(framer: &mut LineFramer, datagram: &[u8]) -> Vec<Parsed> {
    framer.extend(datagram);
    framer.extend(b"\n");
    let mut out = Vec::new();
    while let Some(framed) = framer.next_line() {
        match framed {
            FramedLine::Line(line) => match Message::parse(&line) {
                Err(ParseError::Empty) => {}
                parsed => out.push(parsed),
            },
            FramedLine::TooLong => out.push(Err(ParseError::BodyTooLong)),
        }
    }
    out
}

/// What to do with a stranger's datagram.
#[derive(Debug, PartialEq)]
pub(crate) enum Stranger {
    /// Nothing to answer (it parsed as nothing, or even a bare `PING` would break the
    /// three-times rule).
    Ignore,
    /// Send this one datagram back, and forget the peer.
    Challenge { datagram: Vec<u8>, bad_pong: bool },
    /// The address is proven: open a session and give the hub these lines.
    Open {
        lines: Vec<Parsed>,
        registered: Registered,
    },
}

/// Which registration commands a session has passed to the hub, so that a later
/// `PONG` replays only what is still missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Registered {
    pub(crate) nick: bool,
    pub(crate) user: bool,
}

impl Registered {
    fn note(&mut self, line: &Parsed) {
        if let Ok(m) = line {
            match m.command.as_str() {
                "NICK" => self.nick = true,
                "USER" => self.user = true,
                _ => {}
            }
        }
    }
}

/// The plain-mode rules, with what they need: the cookie key, the server's name for
/// the `NOTICE` source, and a framer reused across datagrams.
#[derive(Debug)]
pub(crate) struct PlainMode {
    cookies: Cookies,
    server_name: String,
    framer: LineFramer,
}

impl PlainMode {
    pub(crate) fn new(cookies: Cookies, server_name: String) -> PlainMode {
        PlainMode {
            cookies,
            server_name,
            framer: LineFramer::default(),
        }
    }

    /// The server's name, the source of plain mode's notices.
    pub(crate) fn server_name(&self) -> &str {
        &self.server_name
    }

    /// A datagram from an address with no session.
    pub(crate) fn stranger(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Stranger {
        let lines = parse_lines(&mut self.framer, datagram);
        if !lines.iter().any(Result::is_ok) {
            return Stranger::Ignore;
        }
        let mut proof: Option<(usize, Carried)> = None;
        let mut bad_pong = false;
        for (i, line) in lines.iter().enumerate() {
            let Ok(m) = line else { continue };
            if m.command != "PONG" {
                continue;
            }
            match m
                .params
                .iter()
                .find_map(|p| token::verify(&self.cookies, now, from, p))
            {
                Some(carried) => {
                    proof = Some((i, carried));
                    break;
                }
                None => bad_pong = true,
            }
        }
        match proof {
            Some((pong, carried)) => {
                let (lines, registered) = opening_lines(carried, lines, pong);
                Stranger::Open { lines, registered }
            }
            None => match self.challenge(now, from, &lines, datagram.len(), bad_pong) {
                Some(datagram) => Stranger::Challenge { datagram, bad_pong },
                None => Stranger::Ignore,
            },
        }
    }

    /// Lines from a session's address, with a valid `PONG` token's registration
    /// replayed where the session still lacks it (the client answered the `PING` of a
    /// datagram other than the one that opened the session).
    pub(crate) fn session_lines(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        registered: &mut Registered,
    ) -> Vec<Parsed> {
        let lines = parse_lines(&mut self.framer, datagram);
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            if let Ok(m) = &line {
                if m.command == "PONG" && !(registered.nick && registered.user) {
                    if let Some(carried) = m
                        .params
                        .iter()
                        .find_map(|p| token::verify(&self.cookies, now, from, p))
                    {
                        let missing = Carried {
                            nick: carried.nick.filter(|_| !registered.nick),
                            user: carried.user.filter(|_| !registered.user),
                            pass: None,
                        };
                        for m in missing.messages() {
                            let replay = Ok(m);
                            registered.note(&replay);
                            out.push(replay);
                        }
                    }
                }
            }
            registered.note(&line);
            out.push(line);
        }
        out
    }

    /// The one reply to a stranger: `PING :<token>` carrying as much of its
    /// registration as fits within three times the datagram, then a hint if that fits
    /// too. `None` if not even a bare `PING` fits.
    fn challenge(
        &self,
        now: Instant,
        from: SocketAddr,
        lines: &[Parsed],
        received: usize,
        bad_pong: bool,
    ) -> Option<Vec<u8>> {
        let limit = reply_limit(received);
        let carried = Carried::from_messages(lines.iter().filter_map(|l| l.as_ref().ok()));
        let hint = if bad_pong {
            "*** That PONG token is wrong or expired: answer this PING instead"
        } else {
            "*** Answer the PING with PONG and the same token to connect"
        };
        let notice = format!(":{} NOTICE * :{hint}\r\n", self.server_name);
        for keep in (0..=carried.len()).rev() {
            let token = token::issue(&self.cookies, now, from, &carried.truncated(keep));
            let ping = format!("PING :{token}\r\n");
            if ping.len() <= limit {
                let reply = pack_reply([ping.as_bytes(), notice.as_bytes()], received);
                return Some(reply.datagram);
            }
        }
        None
    }
}

/// The lines that open a session: the carried registration, then the datagram's lines
/// but the proving `PONG`, with a `USER` made up from the nick when there is a nick
/// and no user line anywhere (placed right after the first `NICK`, so that a `JOIN`
/// in the same datagram finds the client registered).
fn opening_lines(carried: Carried, lines: Vec<Parsed>, pong: usize) -> (Vec<Parsed>, Registered) {
    let mut out: Vec<Parsed> = carried.messages().into_iter().map(Ok).collect();
    out.extend(
        lines
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != pong)
            .map(|(_, l)| l),
    );
    let mut registered = Registered::default();
    for line in &out {
        registered.note(line);
    }
    if registered.nick && !registered.user {
        let first_nick = out
            .iter()
            .position(|l| matches!(l, Ok(m) if m.command == "NICK"));
        if let Some(at) = first_nick {
            let nick = match &out[at] {
                Ok(m) => m.param(0).unwrap_or("*").to_owned(),
                Err(_) => "*".to_owned(),
            };
            out.insert(at + 1, Ok(Message::new("USER", &[&nick, "0", "*", &nick])));
            registered.user = true;
        }
    }
    (out, registered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn mode(t0: Instant) -> PlainMode {
        PlainMode::new(Cookies::new([5; 32], t0), "natter.test".into())
    }

    fn peer() -> SocketAddr {
        "198.51.100.4:5555".parse().expect("address")
    }

    fn text(lines: &[Parsed]) -> Vec<String> {
        lines
            .iter()
            .map(|l| match l {
                Ok(m) => String::from_utf8(m.to_line())
                    .expect("utf-8")
                    .trim_end()
                    .to_owned(),
                Err(e) => format!("error: {e}"),
            })
            .collect()
    }

    fn token_of(reply: &[u8]) -> String {
        let reply = std::str::from_utf8(reply).expect("utf-8");
        let first = reply.split("\r\n").next().expect("a line");
        first.strip_prefix("PING :").expect("PING first").to_owned()
    }

    fn challenge(m: &mut PlainMode, t: Instant, d: &[u8]) -> Vec<u8> {
        match m.stranger(t, peer(), d) {
            Stranger::Challenge { datagram, .. } => datagram,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    #[test]
    fn nick_and_user_then_pong_registers_and_keeps_the_rest_of_the_datagram() {
        let t0 = Instant::now();
        let mut m = mode(t0);
        let hello = b"NICK alice\r\nUSER al 0 * :Alice L\r\n";
        let reply = challenge(&mut m, t0, hello);
        assert!(reply.len() <= 3 * hello.len());
        let token = token_of(&reply);
        let answer = format!("PONG :{token}\r\nJOIN #room\r\nPRIVMSG #room :hi\r\n");
        let Stranger::Open { lines, registered } =
            m.stranger(t0 + Duration::from_secs(5), peer(), answer.as_bytes())
        else {
            panic!("expected the session to open")
        };
        assert_eq!(
            text(&lines),
            [
                "NICK alice",
                "USER al 0 * :Alice L",
                "JOIN #room",
                "PRIVMSG #room hi"
            ]
        );
        assert_eq!(
            registered,
            Registered {
                nick: true,
                user: true
            }
        );
    }

    #[test]
    fn a_nick_alone_registers_with_a_user_line_made_from_it() {
        let t0 = Instant::now();
        let mut m = mode(t0);
        let reply = challenge(&mut m, t0, b"NICK bob\r\n");
        let answer = format!("PONG {}\nJOIN #r\n", token_of(&reply));
        let Stranger::Open { lines, .. } = m.stranger(t0, peer(), answer.as_bytes()) else {
            panic!("expected the session to open")
        };
        assert_eq!(text(&lines), ["NICK bob", "USER bob 0 * bob", "JOIN #r"]);
    }

    #[test]
    fn registration_sent_with_the_pong_counts_and_is_not_doubled() {
        let t0 = Instant::now();
        let mut m = mode(t0);
        let reply = challenge(&mut m, t0, b"JOIN #early\r\n");
        let answer = format!(
            "PONG :{}\r\nNICK carol\r\nUSER c 0 * :Carol\r\n",
            token_of(&reply)
        );
        let Stranger::Open { lines, .. } = m.stranger(t0, peer(), answer.as_bytes()) else {
            panic!("expected the session to open")
        };
        assert_eq!(text(&lines), ["NICK carol", "USER c 0 * Carol"]);
    }

    #[test]
    fn a_pong_answering_another_datagram_replays_what_the_session_lacks() {
        let t0 = Instant::now();
        let mut m = mode(t0);
        let user_reply = challenge(&mut m, t0, b"USER dave 0 * :Dave\r\n");
        let nick_reply = challenge(&mut m, t0, b"NICK dave\r\n");
        let opened = format!("PONG :{}\r\n", token_of(&user_reply));
        let Stranger::Open {
            lines,
            mut registered,
        } = m.stranger(t0, peer(), opened.as_bytes())
        else {
            panic!("expected the session to open")
        };
        assert_eq!(text(&lines), ["USER dave 0 * Dave"]);
        let later = format!("PONG :{}\r\n", token_of(&nick_reply));
        let lines = m.session_lines(t0, peer(), later.as_bytes(), &mut registered);
        assert_eq!(text(&lines)[0], "NICK dave");
        assert_eq!(
            registered,
            Registered {
                nick: true,
                user: true
            }
        );
        // Once registered, a PONG is just a PONG.
        let again = m.session_lines(t0, peer(), later.as_bytes(), &mut registered);
        assert_eq!(text(&again).len(), 1);
    }

    #[test]
    fn a_wrong_or_foreign_pong_opens_nothing_and_gets_a_fresh_ping() {
        let t0 = Instant::now();
        let mut m = mode(t0);
        let reply = challenge(&mut m, t0, b"NICK erin\r\n");
        let token = token_of(&reply);
        let elsewhere: SocketAddr = "198.51.100.4:5556".parse().expect("address");
        let answer = format!("PONG :{token}\r\n");
        match m.stranger(t0, elsewhere, answer.as_bytes()) {
            Stranger::Challenge { bad_pong, .. } => assert!(bad_pong),
            other => panic!("expected a challenge, got {other:?}"),
        }
        let late = t0 + Duration::from_secs(61);
        assert!(matches!(
            m.stranger(late, peer(), answer.as_bytes()),
            Stranger::Challenge { bad_pong: true, .. }
        ));
        let forged = b"PONG :AAAAAAAAAAA\r\n";
        assert!(matches!(
            m.stranger(t0, peer(), forged),
            Stranger::Challenge { bad_pong: true, .. }
        ));
    }

    #[test]
    fn replies_never_exceed_three_times_the_datagram_and_junk_gets_nothing() {
        let t0 = Instant::now();
        let mut m = mode(t0);
        let shapes: Vec<Vec<u8>> = vec![
            b"NICK a\n".to_vec(),
            b"NICK a\r\n".to_vec(),
            b"NICK alice".to_vec(),
            b"PING x\r\n".to_vec(),
            b"NICK a\r\nUSER a 0 * :a\r\n".to_vec(),
            format!(
                "NICK {}\r\nUSER u 0 * :{}\r\n",
                "n".repeat(30),
                "r".repeat(200)
            )
            .into_bytes(),
            format!("PRIVMSG #x :{}\r\n", "y".repeat(480)).into_bytes(),
            b"A\r\n".repeat(600),
        ];
        for d in &shapes {
            if let Stranger::Challenge { datagram, .. } = m.stranger(t0, peer(), d) {
                assert!(
                    datagram.len() <= 3 * d.len(),
                    "{} for {}",
                    datagram.len(),
                    d.len()
                );
                assert!(datagram.len() <= 1200);
                assert!(datagram.starts_with(b"PING :"));
            }
        }
        for junk in [
            &b""[..],
            b"\r\n\r\n",
            b"   \n",
            b"\xff\xfe\xfd",
            b"\x00\x01\x02",
            b":only.a.source\r\n",
            b"12345",
            b"\xc3",
        ] {
            assert_eq!(m.stranger(t0, peer(), junk), Stranger::Ignore, "{junk:?}");
        }
        // The shortest datagram a bare PING answers: 19 bytes of reply, so 7 bytes.
        assert!(matches!(
            m.stranger(t0, peer(), b"NICK a\n"),
            Stranger::Challenge { .. }
        ));
        assert_eq!(m.stranger(t0, peer(), b"LIST\n"), Stranger::Ignore);
    }
}
