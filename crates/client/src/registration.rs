//! Registering with a server: CAP negotiation, NICK and USER, up to the welcome.

use std::time::Duration;

use natter_proto::Message;

use crate::connection::Connection;
use crate::error::ClientError;

/// What to register as.
#[derive(Clone, Debug)]
pub struct Registration {
    pub nick: String,
    pub user: String,
    pub realname: String,
    pub password: Option<String>,
    /// Capabilities to request; those the server lacks are left out.
    pub caps: Vec<String>,
    pub timeout: Duration,
}

impl Registration {
    pub fn new(nick: &str) -> Registration {
        Registration {
            nick: nick.to_owned(),
            user: nick
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(18)
                .collect(),
            realname: nick.to_owned(),
            password: None,
            caps: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn caps(mut self, caps: &[&str]) -> Registration {
        self.caps = caps.iter().map(|c| (*c).to_owned()).collect();
        self
    }
}

/// The outcome of registration.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The nick the server confirmed in `001`.
    pub nick: String,
    /// The capabilities the server acknowledged.
    pub caps: Vec<String>,
    /// ISUPPORT tokens from `005`.
    pub isupport: Vec<String>,
}

/// Registers on `conn`, returning once the welcome burst has ended (`376` or `422`).
pub async fn register(
    conn: &mut Connection,
    reg: &Registration,
) -> Result<Registered, ClientError> {
    let user = if reg.user.is_empty() {
        "natter"
    } else {
        &reg.user
    };
    if !reg.caps.is_empty() {
        conn.send("CAP LS 302").await?;
    }
    if let Some(pass) = &reg.password {
        conn.send(&format!("PASS :{pass}")).await?;
    }
    conn.send(&format!("NICK {}", reg.nick)).await?;
    conn.send(&format!("USER {user} 0 * :{}", reg.realname))
        .await?;
    let deadline = tokio::time::Instant::now() + reg.timeout;
    let mut acked = Vec::new();
    let mut offered: Vec<String> = Vec::new();
    let mut nick = reg.nick.clone();
    let mut isupport = Vec::new();
    let mut caps_done = reg.caps.is_empty();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = conn.recv_within(left, "welcome").await?;
        match msg.command.as_str() {
            "CAP" => match msg.param(1) {
                Some("LS") => {
                    // A `*` before the list means more LS lines follow.
                    let more = msg.params.len() > 3 && msg.param(2) == Some("*");
                    let list = msg.params.last().unwrap_or("");
                    offered.extend(
                        list.split(' ')
                            .map(|c| c.split('=').next().unwrap_or("").to_owned()),
                    );
                    if !more {
                        let wanted: Vec<&str> = reg
                            .caps
                            .iter()
                            .map(String::as_str)
                            .filter(|c| offered.iter().any(|o| o == c))
                            .collect();
                        if wanted.is_empty() {
                            conn.send("CAP END").await?;
                            caps_done = true;
                        } else {
                            conn.send(&format!("CAP REQ :{}", wanted.join(" "))).await?;
                        }
                    }
                }
                Some("ACK") => {
                    acked.extend(
                        msg.params
                            .last()
                            .into_iter()
                            .flat_map(|l| l.split(' ').map(str::to_owned)),
                    );
                    if !caps_done {
                        conn.send("CAP END").await?;
                        caps_done = true;
                    }
                }
                Some("NAK") if !caps_done => {
                    conn.send("CAP END").await?;
                    caps_done = true;
                }
                _ => {}
            },
            "001" => nick = msg.param(0).unwrap_or(&nick).to_owned(),
            "005" => {
                let n = msg.params.len();
                isupport.extend(
                    msg.params
                        .iter()
                        .take(n.saturating_sub(1))
                        .skip(1)
                        .map(str::to_owned),
                );
            }
            "376" | "422" => {
                return Ok(Registered {
                    nick,
                    caps: acked,
                    isupport,
                })
            }
            "432" | "433" | "436" | "437" | "464" | "465" => return Err(refused(&msg)),
            _ => {}
        }
    }
}

/// The refusal a numeric or FAIL stands for. The text is what the refusal is about,
/// then its reason: `bob: No such nick/channel` for
/// `:server 401 alice bob :No such nick/channel` (the first parameter of a numeric, the
/// client's own nick, is left out).
pub(crate) fn refused(msg: &Message) -> ClientError {
    let skip = usize::from(msg.command != "FAIL");
    let params: Vec<&str> = msg.params.iter().skip(skip).collect();
    let text = match params.split_last() {
        Some((reason, [])) => (*reason).to_owned(),
        Some((reason, about)) => format!("{}: {reason}", about.join(" ")),
        None => String::new(),
    };
    ClientError::Refused {
        code: msg.command.to_string(),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(line: &str) -> String {
        match refused(&Message::parse(line.as_bytes()).expect("parses")) {
            ClientError::Refused { text, .. } => text,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_says_what_it_is_about_then_why() {
        assert_eq!(
            text_of(":s 401 alice bob :No such nick/channel"),
            "bob: No such nick/channel"
        );
        assert_eq!(
            text_of(":s 464 * :Password incorrect"),
            "Password incorrect"
        );
        assert_eq!(
            text_of("FAIL PRIVMSG INVALID_TARGET #x :No such room"),
            "PRIVMSG INVALID_TARGET #x: No such room"
        );
    }
}
