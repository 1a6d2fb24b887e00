//! The command line of `natter bench`, and its check into a [`Plan`] that the scenarios
//! can run without checking anything again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use natter_client::Target;

/// What `natter bench` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// C members in one room, S of them sending M messages each as fast as the server
    /// takes them: deliveries per second
    Fanout,
    /// Like fanout, each sender at --rate messages a second: delivery latency below
    /// saturation
    FanoutPaced,
    /// P pairs of clients, each sending M direct messages to the other: messages per
    /// second
    Dm,
    /// Like dm, each client at --rate messages a second: latency below saturation
    DmPaced,
    /// N registered clients held open, each answering PING; with --pid, the server's
    /// memory per client
    Idle,
    /// N registrations (connect, register, QUIT), K in flight: registrations per second
    Connect,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::FanoutPaced => "fanout-paced",
            Scenario::Dm => "dm",
            Scenario::DmPaced => "dm-paced",
            Scenario::Idle => "idle",
            Scenario::Connect => "connect",
        }
    }

    pub fn is_paced(self) -> bool {
        matches!(self, Scenario::FanoutPaced | Scenario::DmPaced)
    }
}

/// `natter bench URL [options]`. The defaults are the figures of the reference table in
/// docs/performance.md, so that a bare `natter bench tcp://127.0.0.1:6667` measures
/// what it reports.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    natter bench tcp://127.0.0.1:6667                      (fan-out: 100 members, 4 senders x 5000)\n  \
    natter bench tcp://127.0.0.1:6667 --scenario dm --pairs 50 --messages 2000\n  \
    natter bench tcp://127.0.0.1:6667 --scenario idle --clients 5000 --pid $(pidof natter)\n  \
    natter bench udp://127.0.0.1:6667 --scenario fanout-paced --json fanout.json\n\n\
    Only loopback targets are measured unless --allow-remote is given. Every run stops by\n\
    itself: after its counts, or after --timeout seconds with what it got so far (exit 2).\n\
    The generator keeps the memory it takes (it runs itself with MIMALLOC_ARENA_EAGER_COMMIT=1\n\
    and MIMALLOC_PURGE_DELAY=-1 unless either is set), so that page faults do not slow it.")]
pub struct BenchArgs {
    /// The server: tcp://HOST:PORT (any IRC server) or udp://HOST:PORT (natter's
    /// reliable UDP mode)
    #[arg(value_name = "URL")]
    pub url: String,

    /// What to measure
    #[arg(long, value_enum, default_value = "fanout")]
    pub scenario: Scenario,

    /// fanout: clients in the room, senders included
    #[arg(long, value_name = "C", default_value_t = 100)]
    pub members: usize,

    /// fanout: how many of the members send
    #[arg(long, value_name = "S", default_value_t = 4)]
    pub senders: usize,

    /// Messages each sender sends [default: fanout 5000, dm 2000, paced 500]
    #[arg(long, value_name = "M")]
    pub messages: Option<usize>,

    /// Bytes of text in each message
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,

    /// dm: pairs of clients; each of the two sends M messages to the other
    #[arg(long, value_name = "P", default_value_t = 50)]
    pub pairs: usize,

    /// idle: clients held open [default: 5000]; connect: registrations in all
    /// [default: 1000]
    #[arg(long, value_name = "N")]
    pub clients: Option<usize>,

    /// connect: registrations under way at once
    #[arg(long, value_name = "K", default_value_t = 50)]
    pub in_flight: usize,

    /// paced scenarios: messages a second from each sender
    #[arg(long, value_name = "PER_SEC", default_value_t = 100.0)]
    pub rate: f64,

    /// idle: the server's process id, to report its memory per client
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// idle: seconds to hold the clients once all are registered, before checking that
    /// each still answers
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub hold: f64,

    /// Write the results as JSON to FILE as well
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Stop after this many seconds whatever happened, reporting what was measured
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,

    /// Saturating scenarios: one message in SAMPLE carries a timestamp for latency
    #[arg(long, value_name = "SAMPLE", default_value_t = 64)]
    pub sample: usize,

    /// Clients opening connections at once while setting up (fanout, dm, idle)
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub setup_parallel: usize,

    /// Spread clients over this many source addresses 127.0.0.1, 127.0.0.2, ... (tcp to
    /// an IPv4 loopback address only), for more connections than one address has ports
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub source_ips: u8,

    /// Worker threads of the generator [default: the cores it may run on]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// A name for the server in the table and the JSON (e.g. "ngircd")
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,

    /// Measure a server that is not on this machine. Only with its operator's consent:
    /// this is a load test
    #[arg(long)]
    pub allow_remote: bool,

    /// No progress line on standard error
    #[arg(short, long)]
    pub quiet: bool,
}

/// Checked settings: every count is within bounds, the target is resolved.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: Target,
    pub url: String,
    pub addr: SocketAddr,
    pub scenario: Scenario,
    pub members: usize,
    pub senders: usize,
    pub messages: usize,
    pub size: usize,
    pub pairs: usize,
    pub clients: usize,
    pub in_flight: usize,
    pub rate: f64,
    pub pid: Option<u32>,
    pub hold: Duration,
    pub json: Option<PathBuf>,
    pub timeout: Duration,
    pub sample: usize,
    pub setup_parallel: usize,
    pub source_ips: u8,
    pub threads: usize,
    pub label: String,
    pub quiet: bool,
}

/// Most clients one run opens: far beyond the reference figures, well below what would
/// exhaust a machine by mistake.
pub const MAX_CLIENTS: usize = 200_000;
/// Most messages one sender sends.
pub const MAX_MESSAGES: usize = 10_000_000;
/// Smallest text: the timestamp takes 20 bytes.
pub const MIN_SIZE: usize = 24;
/// Largest text: an IRC line is 512 bytes with its prefix, command and target.
pub const MAX_SIZE: usize = 400;

impl BenchArgs {
    /// Checks every setting and resolves the target.
    pub fn plan(&self) -> Result<Plan> {
        let target = Target::parse(&self.url).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (host, port) = match &target {
            Target::Tcp { host, port } | Target::Udp { host, port } => (host.clone(), *port),
            Target::Unix { .. } => bail!(
                "natter bench measures tcp:// and udp:// servers; give the server a tcp:// listener"
            ),
        };
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .collect();
        let Some(&addr) = addrs.first() else {
            bail!("{host} resolves to no address");
        };
        if !self.allow_remote {
            check_loopback(&host, &addrs)?;
        }
        let scenario = self.scenario;
        let messages = self.messages.unwrap_or(match scenario {
            Scenario::Fanout => 5000,
            Scenario::Dm => 2000,
            _ => 500,
        });
        let clients = self.clients.unwrap_or(match scenario {
            Scenario::Connect => 1000,
            _ => 5000,
        });
        let within = |what: &str, v: usize, lo: usize, hi: usize| -> Result<()> {
            if v < lo || v > hi {
                bail!("--{what} {v} is out of range: give {lo} to {hi}");
            }
            Ok(())
        };
        within("members", self.members, 2, MAX_CLIENTS)?;
        within("senders", self.senders, 1, self.members)?;
        within("messages", messages, 1, MAX_MESSAGES)?;
        within("size", self.size, MIN_SIZE, MAX_SIZE)?;
        within("pairs", self.pairs, 1, MAX_CLIENTS / 2)?;
        within("clients", clients, 1, MAX_CLIENTS)?;
        within("in-flight", self.in_flight, 1, 10_000)?;
        within("sample", self.sample, 1, 1_000_000)?;
        within("setup-parallel", self.setup_parallel, 1, 10_000)?;
        within("timeout", self.timeout as usize, 1, 24 * 3600)?;
        within("source-ips", usize::from(self.source_ips), 1, 254)?;
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 100_000.0) {
            bail!(
                "--rate {} is out of range: give messages a second per sender, above 0 and at most 100000",
                self.rate
            );
        }
        if !(self.hold.is_finite() && (0.0..=3600.0).contains(&self.hold)) {
            bail!(
                "--hold {} is out of range: give 0 to 3600 seconds",
                self.hold
            );
        }
        if self.source_ips > 1 {
            let tcp_v4_loopback = matches!(target, Target::Tcp { .. })
                && matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
            if !tcp_v4_loopback {
                bail!("--source-ips spreads tcp:// connections to an IPv4 loopback address (127.x.x.x) only");
            }
        }
        if let Some(pid) = self.pid {
            if !std::path::Path::new(&format!("/proc/{pid}/status")).exists() {
                bail!("--pid {pid}: no such process (give the server's process id, e.g. $(pidof natter))");
            }
        }
        let threads = match self.threads {
            Some(n) => {
                within("threads", n, 1, 256)?;
                n
            }
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let label = self.label.clone().unwrap_or_else(|| self.url.clone());
        Ok(Plan {
            target,
            url: self.url.clone(),
            addr,
            scenario,
            members: self.members,
            senders: self.senders,
            messages,
            size: self.size,
            pairs: self.pairs,
            clients,
            in_flight: self.in_flight,
            rate: self.rate,
            pid: self.pid,
            hold: Duration::from_secs_f64(self.hold),
            json: self.json.clone(),
            timeout: Duration::from_secs(self.timeout),
            sample: self.sample,
            setup_parallel: self.setup_parallel,
            source_ips: self.source_ips,
            threads,
            label,
            quiet: self.quiet,
        })
    }
}

/// Refuses a target that is not on this machine: a load generator pointed at someone
/// else's server by a typo is an attack.
pub fn check_loopback(host: &str, addrs: &[SocketAddr]) -> Result<()> {
    if let Some(other) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "{host} is {}, not a loopback address: natter bench loads only servers on this \
             machine (127.0.0.1, ::1, localhost) unless you add --allow-remote, with the \
             consent of the server's operator",
            other.ip()
        );
    }
    Ok(())
}

impl Plan {
    /// The local address client `index` connects from, when spreading over several.
    pub fn source_ip(&self, index: usize) -> Option<IpAddr> {
        if self.source_ips <= 1 {
            return None;
        }
        let n = (index % usize::from(self.source_ips)) as u8;
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + n)))
    }

    /// The settings that shape the run, for the report.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![("url", self.url.clone())];
        match self.scenario {
            Scenario::Fanout | Scenario::FanoutPaced => {
                p.push(("members", self.members.to_string()));
                p.push(("senders", self.senders.to_string()));
                p.push(("messages", self.messages.to_string()));
                p.push(("size", self.size.to_string()));
            }
            Scenario::Dm | Scenario::DmPaced => {
                p.push(("pairs", self.pairs.to_string()));
                p.push(("messages", self.messages.to_string()));
                p.push(("size", self.size.to_string()));
            }
            Scenario::Idle => p.push(("clients", self.clients.to_string())),
            Scenario::Connect => {
                p.push(("clients", self.clients.to_string()));
                p.push(("in_flight", self.in_flight.to_string()));
            }
        }
        if self.scenario.is_paced() {
            p.push(("rate", format!("{}", self.rate)));
        } else if matches!(self.scenario, Scenario::Fanout | Scenario::Dm) {
            p.push(("sample", self.sample.to_string()));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn plan(argv: &[&str]) -> Result<Plan> {
        let mut full = vec!["bench"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).expect("parses").args.plan()
    }

    #[test]
    fn the_defaults_are_the_reference_figures() {
        let p = plan(&["tcp://127.0.0.1:6667"]).expect("valid");
        assert_eq!(p.scenario, Scenario::Fanout);
        assert_eq!(
            (p.members, p.senders, p.messages, p.size),
            (100, 4, 5000, 64)
        );
        let p = plan(&["tcp://127.0.0.1:6667", "--scenario", "dm"]).expect("valid");
        assert_eq!((p.pairs, p.messages), (50, 2000));
        let p = plan(&["tcp://127.0.0.1:6667", "--scenario", "idle"]).expect("valid");
        assert_eq!(p.clients, 5000);
        let p = plan(&["tcp://127.0.0.1:6667", "--scenario", "connect"]).expect("valid");
        assert_eq!((p.clients, p.in_flight), (1000, 50));
        let p = plan(&["tcp://127.0.0.1:6667", "--scenario", "fanout-paced"]).expect("valid");
        assert_eq!((p.messages, p.rate), (500, 100.0));
    }

    #[test]
    fn counts_out_of_range_are_refused_with_the_range() {
        let e = plan(&["tcp://127.0.0.1:1", "--senders", "101"]).expect_err("refused");
        assert!(e.to_string().contains("--senders 101"), "{e}");
        assert!(e.to_string().contains("1 to 100"), "{e}");
        let e = plan(&["tcp://127.0.0.1:1", "--size", "8"]).expect_err("refused");
        assert!(e.to_string().contains("--size 8"), "{e}");
        let e = plan(&["tcp://127.0.0.1:1", "--members", "1"]).expect_err("refused");
        assert!(e.to_string().contains("--members"), "{e}");
        let e = plan(&["tcp://127.0.0.1:1", "--rate", "0"]).expect_err("refused");
        assert!(e.to_string().contains("--rate"), "{e}");
        let e = plan(&["tcp://127.0.0.1:1", "--rate", "NaN"]).expect_err("refused");
        assert!(e.to_string().contains("--rate"), "{e}");
        let e = plan(&["tcp://127.0.0.1:1", "--timeout", "0"]).expect_err("refused");
        assert!(e.to_string().contains("--timeout"), "{e}");
    }

    #[test]
    fn only_loopback_targets_are_measured_unless_allowed() {
        let e = plan(&["tcp://192.0.2.1:6667"]).expect_err("refused");
        assert!(e.to_string().contains("not a loopback address"), "{e}");
        assert!(e.to_string().contains("--allow-remote"), "{e}");
        assert!(plan(&["tcp://[::1]:6667"]).is_ok());
        assert!(plan(&["udp://127.0.0.1:6667"]).is_ok());
        assert!(plan(&["tcp://127.1.2.3:6667"]).is_ok());
        // Allowed, but still never contacted by the check itself.
        assert!(plan(&["tcp://192.0.2.1:6667", "--allow-remote"]).is_ok());
    }

    #[test]
    fn the_loopback_check_looks_at_every_address() {
        let lo: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let other: SocketAddr = "10.0.0.1:1".parse().expect("addr");
        assert!(check_loopback("x", &[lo]).is_ok());
        assert!(check_loopback("x", &[lo, other]).is_err());
    }

    #[test]
    fn unix_sockets_and_unknown_schemes_are_refused() {
        assert!(plan(&["unix:///tmp/x.sock"]).is_err());
        assert!(plan(&["http://127.0.0.1"]).is_err());
    }

    #[test]
    fn source_addresses_spread_only_over_ipv4_tcp() {
        let p = plan(&["tcp://127.0.0.1:1", "--source-ips", "3"]).expect("valid");
        assert_eq!(p.source_ip(0), Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(p.source_ip(4), Some("127.0.0.2".parse().expect("ip")));
        assert!(plan(&["udp://127.0.0.1:1", "--source-ips", "3"]).is_err());
        assert!(plan(&["tcp://[::1]:1", "--source-ips", "3"]).is_err());
        let p = plan(&["tcp://127.0.0.1:1"]).expect("valid");
        assert_eq!(p.source_ip(7), None);
    }
}
