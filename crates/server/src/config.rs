//! The server's configuration: a TOML file, every setting with a default, command-line
//! flags on top. Reading it is strict (an unknown key is an error, not a silent no-op)
//! because a misspelt limit that is quietly ignored is worse than a refusal to start.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use natter_hub::{HubConfig, Limits, OperAccount};
use natter_proto::{CaseMapping, Endpoint as ListenUrl, MAX_LINE_BYTES, MAX_SERVER_TAG_BYTES};
use serde::{Deserialize, Serialize};

/// The message of the day when the configuration gives none.
pub const DEFAULT_MOTD: &str = "Welcome to natter.";

/// A configuration problem, worded for the operator: it names the file or the setting
/// and says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Everything `natter serve` can be told. Deserialized from TOML; a missing key takes
/// its default, so an empty file is a working configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen. The default, both wildcard addresses on port 6667, tolerates
    /// a host without IPv6; a list given by the operator must bind in full.
    pub listen: Vec<ListenUrl>,
    /// Where natter keeps its files; created at start.
    pub data_dir: PathBuf,
    /// The server's name, the source of its numerics.
    pub server_name: String,
    /// The network's name, advertised in ISUPPORT `NETWORK`.
    pub network_name: String,
    /// A short description of the server, shown in WHOIS.
    pub description: String,
    /// The message of the day, one line per line. Empty for none. Exclusive with
    /// `motd_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motd: Option<String>,
    /// A file holding the message of the day, read at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motd_file: Option<PathBuf>,
    /// A password every client must give with PASS before registering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_password: Option<String>,
    /// Operator accounts (`[[oper]]` tables).
    #[serde(rename = "oper", skip_serializing_if = "Vec::is_empty")]
    pub opers: Vec<OperConfig>,
    pub casemapping: CaseMappingSetting,
    /// Accept passwords (SASL PLAIN, REGISTER) over plaintext connections from other
    /// hosts; off, they travel only over TLS, Unix sockets and loopback.
    pub allow_plaintext_passwords: bool,
    /// The shortest password REGISTER accepts.
    pub min_password_len: usize,
    /// Days of history kept; older messages are deleted hourly. 0 keeps everything.
    pub history_retention_days: u64,
    /// The log filter when neither `--log-level` nor `RUST_LOG` gives one
    /// (`info`, `debug`, `natter_server=debug,info`, ...).
    pub log_level: String,
    pub limits: LimitsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let hub = HubConfig::default();
        ServerConfig {
            listen: default_listen(),
            data_dir: PathBuf::from("natter-data"),
            server_name: hub.server_name,
            network_name: hub.network_name,
            description: hub.description,
            motd: None,
            motd_file: None,
            server_password: None,
            opers: Vec::new(),
            casemapping: CaseMappingSetting::Ascii,
            allow_plaintext_passwords: hub.allow_plaintext_passwords,
            min_password_len: hub.min_password_len,
            history_retention_days: 0,
            log_level: "info".into(),
            limits: LimitsConfig::default(),
        }
    }
}

/// The listeners when none are configured: every IPv4 and every IPv6 address on the
/// IRC port, over TCP and over UDP (the same chat; UDP answers within the
/// anti-amplification rule, so it is safe to leave open). Separate IPv4 and IPv6
/// sockets rather than dual-stack ones, so that IPv4 peers are seen as `1.2.3.4`
/// rather than `::ffff:1.2.3.4` whatever the host's sysctls say.
pub fn default_listen() -> Vec<ListenUrl> {
    let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 6667);
    let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 6667);
    vec![
        ListenUrl::tcp(v4),
        ListenUrl::tcp(v6),
        ListenUrl::Udp {
            host: natter_proto::Host::Ip(v4.ip()),
            port: 6667,
        },
        ListenUrl::Udp {
            host: natter_proto::Host::Ip(v6.ip()),
            port: 6667,
        },
    ]
}

/// An operator account: `OPER name password` works when the password matches the
/// Argon2id hash (make one with `natter hash-password`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperConfig {
    pub name: String,
    pub password_hash: String,
}

/// How nicknames and room names compare, advertised as ISUPPORT `CASEMAPPING`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseMappingSetting {
    /// Only `A-Z` fold to `a-z`: what modern servers use.
    #[default]
    Ascii,
    /// As `ascii`, and `[]\~` fold to `{}|^`, as in RFC 1459.
    Rfc1459,
}

impl From<CaseMappingSetting> for CaseMapping {
    fn from(setting: CaseMappingSetting) -> CaseMapping {
        match setting {
            CaseMappingSetting::Ascii => CaseMapping::Ascii,
            CaseMappingSetting::Rfc1459 => CaseMapping::Rfc1459,
        }
    }
}

/// Every limit, the hub's (what a client may do) and the server's (what a connection
/// may cost). Durations are in seconds. For the server's own limits 0 means "off".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub nick_len: usize,
    pub channel_len: usize,
    pub topic_len: usize,
    pub kick_len: usize,
    pub away_len: usize,
    pub realname_len: usize,
    pub channels_per_client: usize,
    pub max_targets: usize,
    pub max_bans: usize,
    pub monitor: usize,
    pub whowas: usize,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    pub registration_timeout: u64,
    /// Seconds a client using a registered nick has to log in to its account
    /// before it is renamed.
    pub nick_grace: u64,
    /// Connections open at once, in all; 0 for no limit.
    pub max_connections: usize,
    /// Connections open at once from one IP address; 0 for no limit. Unix-socket
    /// peers are not counted.
    pub connections_per_ip: usize,
    /// Bytes waiting to be sent to one client before it is dropped with
    /// `SendQ exceeded` (when more lines come for it while it holds more than this:
    /// one burst may pass it, see `send_queue`).
    pub sendq_bytes: usize,
    /// Lines a client may send at once before flood control slows it; 0 turns flood
    /// control off.
    pub flood_burst: u32,
    /// Lines a second a client may send once its burst is spent; 0 turns flood
    /// control off.
    pub flood_rate_per_sec: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let hub = Limits::default();
        LimitsConfig {
            nick_len: hub.nick_len,
            channel_len: hub.channel_len,
            topic_len: hub.topic_len,
            kick_len: hub.kick_len,
            away_len: hub.away_len,
            realname_len: hub.realname_len,
            channels_per_client: hub.channels_per_client,
            max_targets: hub.max_targets,
            max_bans: hub.max_bans,
            monitor: hub.monitor,
            whowas: hub.whowas,
            ping_interval: hub.ping_interval.as_secs(),
            ping_timeout: hub.ping_timeout.as_secs(),
            registration_timeout: hub.registration_timeout.as_secs(),
            nick_grace: hub.nick_grace.as_secs(),
            max_connections: 10_000,
            connections_per_ip: 64,
            sendq_bytes: 1024 * 1024,
            flood_burst: 250,
            flood_rate_per_sec: 100.0,
        }
    }
}

/// The smallest send queue that holds one line of the largest size a server sends.
pub const MIN_SENDQ_BYTES: usize = MAX_SERVER_TAG_BYTES + MAX_LINE_BYTES;

impl ServerConfig {
    /// Reads a configuration file. Relative paths in it (`data_dir`, `motd_file`) are
    /// taken relative to the file's own directory, so that a configuration and its
    /// MOTD can live side by side wherever the server is started from.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!(
                "cannot read config file {}: {e}\n  (check the path given with --config; `natter config-example` prints a template)",
                path.display()
            ))
        })?;
        let mut config = ServerConfig::from_toml(&text)
            .map_err(|e| ConfigError::new(format!("in config file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let table: toml::Table = toml::from_str(&text).unwrap_or_default();
        if table.contains_key("data_dir") && config.data_dir.is_relative() {
            config.data_dir = base.join(&config.data_dir);
        }
        if let Some(motd_file) = &config.motd_file {
            if motd_file.is_relative() {
                config.motd_file = Some(base.join(motd_file));
            }
        }
        Ok(config)
    }

    /// Parses configuration text. Unknown keys are refused with the key's name and
    /// where it is.
    pub fn from_toml(text: &str) -> Result<ServerConfig, ConfigError> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| {
            let mut message = e.to_string();
            if message.contains("unknown field") {
                message.push_str(
                    "(see docs/configuration.md or `natter config-example` for every setting)",
                );
            }
            ConfigError::new(message.trim_end().to_owned())
        })?;
        Ok(config)
    }

    /// The configuration as TOML, for `natter serve --print-config`.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self)
            .map_err(|e| ConfigError::new(format!("cannot write the configuration: {e}")))
    }

    /// Checks what the types cannot: names IRC can carry, hashes that parse, limits
    /// that make sense. Run at start so that mistakes stop the server before it
    /// listens rather than surprise a client later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let word = |key: &str, value: &str| {
            if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == ':') {
                Err(ConfigError::new(format!(
                    "{key} = {value:?} is not usable: give a non-empty name without spaces or ':'"
                )))
            } else {
                Ok(())
            }
        };
        word("server_name", &self.server_name)?;
        word("network_name", &self.network_name)?;
        if self.motd.is_some() && self.motd_file.is_some() {
            return Err(ConfigError::new(
                "both motd and motd_file are set: keep one of them",
            ));
        }
        if let Some(password) = &self.server_password {
            if password.is_empty() || password.contains(char::is_whitespace) {
                return Err(ConfigError::new(
                    "server_password must be non-empty and without spaces (clients send it with PASS); remove the key to turn it off",
                ));
            }
        }
        for oper in &self.opers {
            word("[[oper]] name", &oper.name)?;
            crate::password::check_hash(&oper.password_hash).map_err(|e| {
                ConfigError::new(format!(
                    "[[oper]] {:?}: password_hash is unusable: {e}; make one with `natter hash-password`",
                    oper.name
                ))
            })?;
        }
        let limits = &self.limits;
        for (key, value) in [
            ("nick_len", limits.nick_len),
            ("channel_len", limits.channel_len),
            ("topic_len", limits.topic_len),
            ("kick_len", limits.kick_len),
            ("away_len", limits.away_len),
            ("realname_len", limits.realname_len),
            ("channels_per_client", limits.channels_per_client),
            ("max_targets", limits.max_targets),
        ] {
            if value == 0 {
                return Err(ConfigError::new(format!(
                    "[limits] {key} = 0 would make the server unusable: give at least 1"
                )));
            }
        }
        for (key, value) in [
            ("ping_interval", limits.ping_interval),
            ("ping_timeout", limits.ping_timeout),
            ("registration_timeout", limits.registration_timeout),
        ] {
            if value == 0 {
                return Err(ConfigError::new(format!(
                    "[limits] {key} = 0 would drop every client at once: give a number of seconds, at least 1"
                )));
            }
        }
        if limits.sendq_bytes < MIN_SENDQ_BYTES {
            return Err(ConfigError::new(format!(
                "[limits] sendq_bytes = {} is too small to hold one line: give at least {MIN_SENDQ_BYTES}",
                limits.sendq_bytes
            )));
        }
        if !limits.flood_rate_per_sec.is_finite() || limits.flood_rate_per_sec < 0.0 {
            return Err(ConfigError::new(format!(
                "[limits] flood_rate_per_sec = {} is not a rate: give lines per second, or 0 for no flood control",
                limits.flood_rate_per_sec
            )));
        }
        Ok(())
    }

    /// The message of the day as lines, from `motd`, `motd_file` or the default.
    pub fn motd_lines(&self) -> Result<Vec<String>, ConfigError> {
        let text = match (&self.motd, &self.motd_file) {
            (Some(text), _) => text.clone(),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(format!(
                    "cannot read motd_file {}: {e} (fix the path, or remove motd_file to use the default)",
                    path.display()
                ))
            })?,
            (None, None) => DEFAULT_MOTD.to_owned(),
        };
        Ok(text.lines().map(|l| l.trim_end().to_owned()).collect())
    }

    /// What the hub needs of this configuration.
    pub fn hub_config(&self) -> Result<HubConfig, ConfigError> {
        let l = &self.limits;
        Ok(HubConfig {
            server_name: self.server_name.clone(),
            network_name: self.network_name.clone(),
            motd: self.motd_lines()?,
            server_password: self.server_password.clone(),
            opers: self
                .opers
                .iter()
                .map(|o| OperAccount {
                    name: o.name.clone(),
                    password_hash: o.password_hash.clone(),
                })
                .collect(),
            casemapping: self.casemapping.into(),
            limits: Limits {
                nick_len: l.nick_len,
                channel_len: l.channel_len,
                topic_len: l.topic_len,
                kick_len: l.kick_len,
                away_len: l.away_len,
                realname_len: l.realname_len,
                channels_per_client: l.channels_per_client,
                max_targets: l.max_targets,
                max_bans: l.max_bans,
                monitor: l.monitor,
                whowas: l.whowas,
                ping_interval: Duration::from_secs(l.ping_interval),
                ping_timeout: Duration::from_secs(l.ping_timeout),
                registration_timeout: Duration::from_secs(l.registration_timeout),
                nick_grace: Duration::from_secs(l.nick_grace),
            },
            description: self.description.clone(),
            allow_plaintext_passwords: self.allow_plaintext_passwords,
            min_password_len: self.min_password_len,
            ..HubConfig::default()
        })
    }
}

/// A complete configuration file holding every default, each setting explained:
/// printed by `natter config-example` and shown in docs/configuration.md (a test
/// keeps all three in step).
pub const EXAMPLE_TOML: &str = r#"# natter server configuration. Every key is optional: a missing key takes the
# default shown here. Durations are in seconds. Relative paths are relative to
# the directory of this file. Command-line flags override what is set here.

# Where to listen, as URLs: tcp://HOST:PORT (IPv4, [IPv6] or a host name; port 0
# picks a free port), udp://HOST:PORT (IRC in datagrams, see docs/udp.md) or
# unix:///path/to/natter.sock. This default (every IPv4 and every IPv6 address on
# port 6667, TCP and UDP) starts even on a host without IPv6.
listen = ["tcp://0.0.0.0:6667", "tcp://[::]:6667", "udp://0.0.0.0:6667", "udp://[::]:6667"]

# Where natter keeps its files. Created at start.
data_dir = "natter-data"

# The server's name (the source of its replies) and the network's name.
server_name = "natter.local"
network_name = "natter"

# A short description of the server, shown in WHOIS.
description = "natter chat server"

# The message of the day: give it here, or in a file, not both.
# The default is "Welcome to natter."; an empty string means no MOTD.
# motd = """
# Welcome to natter.
# Be nice.
# """
# motd_file = "motd.txt"

# A password every client must send with PASS before registering.
# Unset by default: anyone may connect.
# server_password = "letmein"

# How nicknames and room names compare: "ascii" or "rfc1459".
casemapping = "ascii"

# Passwords (SASL PLAIN, REGISTER) travel only over TLS, Unix sockets and
# loopback unless this is true.
allow_plaintext_passwords = false

# The shortest password REGISTER accepts for a new account.
min_password_len = 1

# Days of message history to keep; older messages are deleted every hour.
# 0 keeps everything.
history_retention_days = 0

# The log filter (RUST_LOG syntax) when neither --log-level nor RUST_LOG is set.
log_level = "info"

# Operator accounts, one [[oper]] table each. Make a hash with
#   natter hash-password
# (it reads the password on standard input and prints the Argon2id hash).
# [[oper]]
# name = "admin"
# password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."

[limits]
# Longest nickname, room name, topic, kick reason, away message and real name.
nick_len = 30
channel_len = 64
topic_len = 390
kick_len = 390
away_len = 390
realname_len = 128
# Rooms one client may be in at once.
channels_per_client = 100
# Targets in one PRIVMSG, NOTICE, JOIN, ...
max_targets = 8
# Entries in a room's ban list.
max_bans = 100
# Nicknames one client may watch with MONITOR.
monitor = 100
# Departed nicknames remembered for WHOWAS.
whowas = 1000
# A client quiet for ping_interval seconds is sent a PING; one that does not
# answer within ping_timeout seconds is dropped.
ping_interval = 120
ping_timeout = 60
# A connection that has not registered within this many seconds is dropped.
registration_timeout = 60
# Seconds a client using a registered nick has to log in to its account before
# it is renamed.
nick_grace = 30
# Connections open at once in all, and from one IP address (Unix-socket
# peers are not counted per IP). 0 means no limit.
max_connections = 10000
connections_per_ip = 64
# Bytes waiting to be sent to one client before it is dropped with
# "SendQ exceeded" (at least 8703, one line of the largest size).
sendq_bytes = 1048576
# Flood control: a client may send flood_burst lines at once, then
# flood_rate_per_sec lines a second; beyond that its lines are delayed, not
# refused. 0 in either turns flood control off.
flood_burst = 250
flood_rate_per_sec = 100.0
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_configuration() {
        let config = ServerConfig::from_toml("").expect("empty config parses");
        assert_eq!(config, ServerConfig::default());
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.data_dir, PathBuf::from("natter-data"));
        assert_eq!(config.limits.connections_per_ip, 64);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn the_example_holds_exactly_the_defaults() {
        let config = ServerConfig::from_toml(EXAMPLE_TOML).expect("example parses");
        assert_eq!(config, ServerConfig::default());
    }

    #[test]
    fn the_documentation_shows_the_example() {
        let doc = include_str!("../../../docs/configuration.md");
        assert!(
            doc.contains(EXAMPLE_TOML),
            "docs/configuration.md must contain config::EXAMPLE_TOML verbatim"
        );
    }

    #[test]
    fn the_hub_defaults_pass_through_unchanged() {
        let hub = ServerConfig::default().hub_config().expect("defaults work");
        let defaults = HubConfig::default();
        assert_eq!(hub.server_name, defaults.server_name);
        assert_eq!(hub.motd, defaults.motd);
        assert_eq!(hub.limits.ping_interval, defaults.limits.ping_interval);
        assert_eq!(hub.limits.nick_len, defaults.limits.nick_len);
    }

    #[test]
    fn settings_are_read_from_toml() {
        let config = ServerConfig::from_toml(
            r#"
            listen = ["tcp://127.0.0.1:7000", "unix:///tmp/n.sock"]
            server_name = "irc.example.org"
            casemapping = "rfc1459"
            motd = "one\ntwo"
            [[oper]]
            name = "root"
            password_hash = "x"
            [limits]
            flood_rate_per_sec = 2
            ping_interval = 30
            "#,
        )
        .expect("parses");
        assert_eq!(config.listen.len(), 2);
        assert_eq!(config.listen[1], ListenUrl::unix("/tmp/n.sock"));
        assert_eq!(config.casemapping, CaseMappingSetting::Rfc1459);
        assert_eq!(config.limits.flood_rate_per_sec, 2.0);
        assert_eq!(config.opers[0].name, "root");
        let hub = config.hub_config().expect("hub config");
        assert_eq!(hub.motd, vec!["one", "two"]);
        assert_eq!(hub.limits.ping_interval, Duration::from_secs(30));
        assert_eq!(hub.casemapping, CaseMapping::Rfc1459);
        let e = config.validate().expect_err("the oper hash is not a hash");
        assert!(e.to_string().contains("natter hash-password"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_named_in_the_error() {
        let e = ServerConfig::from_toml("[limits]\nflood_brust = 3\n").expect_err("refused");
        let message = e.to_string();
        assert!(message.contains("flood_brust"), "{message}");
        assert!(message.contains("natter config-example"), "{message}");
        let e = ServerConfig::from_toml("servername = \"x\"\n").expect_err("refused");
        assert!(e.to_string().contains("servername"), "{e}");
    }

    #[test]
    fn a_bad_listen_url_is_explained() {
        let e = ServerConfig::from_toml("listen = [\"foo://x\"]").expect_err("refused");
        assert!(e.to_string().contains("unsupported scheme 'foo'"), "{e}");
    }

    #[test]
    fn a_file_error_names_the_file_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("natter.toml");
        std::fs::write(&path, "data_dir = \"data\"\nmotd_file = \"motd.txt\"\n")
            .expect("write config");
        let config = ServerConfig::from_file(&path).expect("parses");
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(config.motd_file, Some(dir.path().join("motd.txt")));
        let e = config.motd_lines().expect_err("no motd file yet");
        assert!(e.to_string().contains("motd.txt"), "{e}");
        std::fs::write(dir.path().join("motd.txt"), "hello\r\nworld\n").expect("write motd");
        assert_eq!(
            config.motd_lines(),
            Ok(vec!["hello".into(), "world".into()])
        );

        std::fs::write(&path, "bogus = 1\n").expect("write config");
        let e = ServerConfig::from_file(&path).expect_err("refused");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(e.to_string().contains("bogus"), "{e}");

        let e = ServerConfig::from_file(&dir.path().join("missing.toml")).expect_err("no file");
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }

    #[test]
    fn validation_explains_unusable_values() {
        let mut config = ServerConfig::default();
        config.limits.sendq_bytes = 100;
        assert!(config.validate().is_err());
        let config = ServerConfig {
            server_name: "has space".into(),
            ..ServerConfig::default()
        };
        assert!(config.validate().is_err());
        let config = ServerConfig {
            motd: Some("x".into()),
            motd_file: Some("y".into()),
            ..ServerConfig::default()
        };
        assert!(config.validate().is_err());
        let mut config = ServerConfig::default();
        config.limits.ping_timeout = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn the_effective_configuration_prints_as_toml_that_reads_back() {
        let config = ServerConfig {
            server_password: Some("pw".into()),
            ..ServerConfig::default()
        };
        let text = config.to_toml().expect("serializes");
        assert_eq!(ServerConfig::from_toml(&text), Ok(config));
    }
}
