//! The `natter` command: the chat server and its tools in one binary.
//!
//! Each subcommand is a thin shell over a library crate, so that what the command
//! does can be tested without spawning it. Subcommands still to come: `chat`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod account;
mod allocator;
mod backup;
mod generator_memory;
mod send;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use natter_server::{CaseMappingSetting, ListenUrl, Server, ServerConfig, StopSignals};

/// mimalloc rather than glibc's malloc: see `allocator`.
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

#[derive(Parser, Debug)]
#[command(
    name = "natter",
    version,
    about = "natter: a chat server that speaks IRC, and its tools",
    long_about = "natter: a chat server that speaks IRC (+ IRCv3).\n\n\
                  Any IRC client (weechat, irssi, HexChat) or plain `nc` can talk to it.\n\
                  Start with `natter serve`, then connect to port 6667."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the chat server (default: port 6667 on every address, data in ./natter-data)
    Serve(Box<ServeArgs>),
    /// Read a password on standard input and print its Argon2id hash, for a [[oper]]
    /// entry's password_hash in the configuration file
    HashPassword,
    /// Print a configuration file holding every setting with its default, commented
    ConfigExample,
    /// Manage accounts in a data directory (a running server is told to reload)
    Account {
        #[command(subcommand)]
        command: account::AccountCommand,
        #[command(flatten)]
        data: account::DataArgs,
    },
    /// Send a message (or each line of standard input) to a nick or a #room, and exit 0
    /// once the server has acknowledged every one
    Send(Box<send::SendArgs>),
    /// Load-test natter or any IRC server on this machine: fan-out, direct messages,
    /// idle clients, connection rate; prints throughput, latency and memory
    Bench(Box<natter_bench::BenchArgs>),
    /// Copy the database to a new file, consistently, even while the server runs
    Backup {
        /// The file to write (must not exist)
        dest: PathBuf,
        #[command(flatten)]
        data: account::DataArgs,
    },
}

/// Every flag can also be set in the configuration file; a flag given here wins over
/// the file.
#[derive(Args, Debug)]
#[command(
    after_help = "Every flag can also be set in the configuration file (see \
    `natter config-example` and docs/configuration.md); flags override the file.\n\
    Log level: --log-level, else RUST_LOG, else log_level in the file, else info.\n\
    Stop the server with SIGINT (Ctrl-C) or SIGTERM: clients are told, then it exits 0."
)]
struct ServeArgs {
    /// Listen on URL; repeat for several. tcp://HOST:PORT (IPv4, [IPv6] or a host
    /// name; port 0 picks a free port), udp://HOST:PORT (the same, for IRC in
    /// datagrams: nc -u, sendto) or unix:///path/to/natter.sock
    /// [default: tcp:// and udp:// on 0.0.0.0:6667 and [::]:6667]
    #[arg(short, long = "listen", value_name = "URL")]
    listen: Vec<ListenUrl>,

    /// Directory for natter's data, created if missing [default: ./natter-data]
    #[arg(short, long = "data", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Read settings from this TOML file [default: none, built-in defaults]
    #[arg(short, long, value_name = "FILE", env = "NATTER_CONFIG")]
    config: Option<PathBuf>,

    /// The server's name, the source of its replies [default: natter.local]
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,

    /// The network's name, shown to clients in ISUPPORT [default: natter]
    #[arg(long, value_name = "NAME")]
    network_name: Option<String>,

    /// Read the message of the day from this file [default: "Welcome to natter."]
    #[arg(long, value_name = "FILE")]
    motd_file: Option<PathBuf>,

    /// How nicknames and room names compare [default: ascii]
    #[arg(long, value_name = "MAPPING", value_parser = ["ascii", "rfc1459"])]
    casemapping: Option<String>,

    /// Log filter, RUST_LOG syntax: error, warn, info, debug, trace, or per module
    /// (natter_server=debug,info) [default: info]
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,

    /// Most connections open at once; 0 for no limit [default: 10000]
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,

    /// Most connections open at once from one IP address; 0 for no limit [default: 64]
    #[arg(long, value_name = "N")]
    connections_per_ip: Option<usize>,

    /// Bytes queued for a client that does not read before it is dropped with "SendQ
    /// exceeded" [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    sendq_bytes: Option<usize>,

    /// Flood control: lines a client may send at once; 0 turns flood control off
    /// [default: 250]
    #[arg(long, value_name = "LINES")]
    flood_burst: Option<u32>,

    /// Flood control: lines a second a client may send after its burst; beyond that
    /// its lines are delayed, not refused; 0 turns flood control off [default: 100]
    #[arg(long, value_name = "LINES_PER_SEC")]
    flood_rate: Option<f64>,

    /// Print the effective configuration (file and flags merged) as TOML and exit
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::HashPassword => hash_password(),
        Command::ConfigExample => {
            print!("{}", natter_server::EXAMPLE_TOML);
            Ok(())
        }
        Command::Account { command, data } => account::run(command, &data),
        Command::Backup { dest, data } => backup::run(&dest, &data),
        // Says itself what failed, as "natter send: ...".
        Command::Send(args) => return send::run(*args),
        // Prints its own table and errors, as "natter bench: ...".
        Command::Bench(args) => {
            generator_memory::run_again_tuned();
            return natter_bench::run(*args);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natter: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration file (if any) with the flags applied on top.
fn effective_config(args: &ServeArgs) -> Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::default(),
    };
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    if let Some(data) = &args.data {
        config.data_dir = data.clone();
    }
    if let Some(name) = &args.server_name {
        config.server_name = name.clone();
    }
    if let Some(name) = &args.network_name {
        config.network_name = name.clone();
    }
    if let Some(file) = &args.motd_file {
        config.motd = None;
        config.motd_file = Some(file.clone());
    }
    if let Some(mapping) = &args.casemapping {
        config.casemapping = match mapping.as_str() {
            "rfc1459" => CaseMappingSetting::Rfc1459,
            _ => CaseMappingSetting::Ascii,
        };
    }
    if let Some(level) = &args.log_level {
        config.log_level = level.clone();
    }
    let limits = &mut config.limits;
    if let Some(n) = args.max_connections {
        limits.max_connections = n;
    }
    if let Some(n) = args.connections_per_ip {
        limits.connections_per_ip = n;
    }
    if let Some(n) = args.sendq_bytes {
        limits.sendq_bytes = n;
    }
    if let Some(n) = args.flood_burst {
        limits.flood_burst = n;
    }
    if let Some(rate) = args.flood_rate {
        limits.flood_rate_per_sec = rate;
    }
    Ok(config)
}

fn serve(args: ServeArgs) -> Result<()> {
    let config = effective_config(&args)?;
    if args.print_config {
        print!("{}", config.to_toml()?);
        return Ok(());
    }
    config.validate()?;
    // --log-level beats RUST_LOG, which beats the file's log_level.
    let filter = match (&args.log_level, std::env::var("RUST_LOG")) {
        (Some(level), _) => level.clone(),
        (None, Ok(env)) if !env.trim().is_empty() => env,
        _ => config.log_level.clone(),
    };
    init_logging(&filter)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let signals = StopSignals::install().context("cannot listen for signals")?;
        let server = Server::bind(config).await?;
        tracing::info!(
            "natter {} serving, data in {}",
            env!("CARGO_PKG_VERSION"),
            data_dir.display()
        );
        server.run_until_signal(signals).await;
        Ok(())
    })
}

/// Logs go to standard error, colored only on a terminal, so that scripts and tests
/// can read `listening on URL` lines as plain text.
fn init_logging(filter: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).with_context(|| {
        format!("invalid log filter {filter:?}: use error, warn, info, debug or trace, or module=level pairs")
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

fn hash_password() -> Result<()> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("Password (shown as you type): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password given: type one, or pipe it in (echo 'secret' | natter hash-password)");
    }
    let hash = natter_server::password::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    if interactive {
        eprintln!("Put it in the configuration file:\n[[oper]]\nname = \"admin\"\npassword_hash = \"{hash}\"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("natter.toml");
        std::fs::write(
            &path,
            "server_name = \"file.example\"\nnetwork_name = \"FileNet\"\n[limits]\nflood_burst = 3\n",
        )
        .expect("write config");
        let cli = Cli::try_parse_from([
            "natter",
            "serve",
            "--config",
            path.to_str().expect("utf-8 path"),
            "--server-name",
            "flag.example",
            "--listen",
            "tcp://127.0.0.1:0",
            "--listen",
            "unix:///tmp/n.sock",
            "--flood-rate",
            "0",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        let config = effective_config(&args).expect("config");
        assert_eq!(config.server_name, "flag.example");
        assert_eq!(config.network_name, "FileNet");
        assert_eq!(config.limits.flood_burst, 3);
        assert_eq!(config.limits.flood_rate_per_sec, 0.0);
        assert_eq!(config.listen.len(), 2);
    }

    #[test]
    fn a_bad_listen_url_is_refused_by_the_command_line() {
        let e =
            Cli::try_parse_from(["natter", "serve", "--listen", "foo://x"]).expect_err("refused");
        assert!(e.to_string().contains("unsupported scheme 'foo'"), "{e}");
    }
}
