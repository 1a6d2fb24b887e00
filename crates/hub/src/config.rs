//! What the operator decides: names, texts, operator accounts and limits.

use std::time::Duration;

use natter_proto::CaseMapping;

/// An operator account: `OPER name password` grants operator status when the
/// password matches the Argon2id hash. The hub never checks a hash itself (that takes
/// milliseconds): it asks the server to, with [`crate::Effect::VerifyPassword`].
#[derive(Clone, Debug)]
pub struct OperAccount {
    pub name: String,
    pub password_hash: String,
}

/// Limits a client meets. Each can be raised by the operator; `None` turns a limit off
/// where that makes sense.
#[derive(Clone, Debug)]
pub struct Limits {
    pub nick_len: usize,
    pub channel_len: usize,
    pub topic_len: usize,
    pub kick_len: usize,
    pub away_len: usize,
    pub realname_len: usize,
    /// Rooms one client may be in at once.
    pub channels_per_client: usize,
    /// Targets in one PRIVMSG, NOTICE, JOIN, ... (advertised as TARGMAX).
    pub max_targets: usize,
    /// Entries in a room's ban list.
    pub max_bans: usize,
    /// Nicknames a client may watch with MONITOR.
    pub monitor: usize,
    /// Entries kept for WHOWAS.
    pub whowas: usize,
    /// A client that sends nothing for this long is sent a PING.
    pub ping_interval: Duration,
    /// A client that does not answer a PING within this is dropped.
    pub ping_timeout: Duration,
    /// A connection that has not registered within this is dropped.
    pub registration_timeout: Duration,
    /// Time a client using a registered nick has to log in to its account before
    /// it is renamed.
    pub nick_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nick_len: 30,
            channel_len: 64,
            topic_len: 390,
            kick_len: 390,
            away_len: 390,
            realname_len: 128,
            channels_per_client: 100,
            max_targets: 8,
            max_bans: 100,
            monitor: 100,
            whowas: 1000,
            ping_interval: Duration::from_secs(120),
            ping_timeout: Duration::from_secs(60),
            registration_timeout: Duration::from_secs(60),
            nick_grace: crate::accounts::DEFAULT_NICK_GRACE,
        }
    }
}

/// Everything the hub needs to know from configuration.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The server's name, the source of its numerics (`irc.example.org`).
    pub server_name: String,
    /// The network's name, in ISUPPORT `NETWORK`.
    pub network_name: String,
    /// Lines of the message of the day; empty means `422 ERR_NOMOTD`.
    pub motd: Vec<String>,
    /// A password every client must give with PASS before registering, if set.
    pub server_password: Option<String>,
    pub opers: Vec<OperAccount>,
    pub casemapping: CaseMapping,
    pub limits: Limits,
    /// The software version in `002`, `004` and VERSION.
    pub version: String,
    /// A short description of the server for WHOIS.
    pub description: String,
    /// Accept passwords (SASL PLAIN, REGISTER) on plaintext connections from other
    /// hosts. Off: passwords travel only over TLS, Unix sockets and loopback.
    pub allow_plaintext_passwords: bool,
    /// The shortest password REGISTER accepts.
    pub min_password_len: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            server_name: "natter.local".into(),
            network_name: "natter".into(),
            motd: vec!["Welcome to natter.".into()],
            server_password: None,
            opers: Vec::new(),
            casemapping: CaseMapping::default(),
            limits: Limits::default(),
            version: concat!("natter-", env!("CARGO_PKG_VERSION")).into(),
            description: "natter chat server".into(),
            allow_plaintext_passwords: false,
            min_password_len: 1,
        }
    }
}
