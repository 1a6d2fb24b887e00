//! `natter account`: account administration on a data directory, for operators.
//!
//! It works on the database directly, with or without a server running. A running
//! server on the same data directory (found through its `natter.pid`) is sent
//! SIGHUP, and re-reads the accounts at once.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use natter_proto::{is_valid_nick, CaseMapping};
use natter_server::{ServerConfig, DATABASE_FILE, PID_FILE};
use natter_store::{Account, SqliteStore, Store};

/// Where the data is, as `natter serve` takes it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// The data directory [default: ./natter-data, or data_dir from --config]
    #[arg(short, long = "data", value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,

    /// The server's configuration file, for its data_dir and casemapping
    #[arg(short, long, value_name = "FILE", env = "NATTER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

impl DataArgs {
    /// The configuration with `--data` applied.
    pub fn config(&self) -> Result<ServerConfig> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        if let Some(data) = &self.data {
            config.data_dir = data.clone();
        }
        Ok(config)
    }
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account; the password is read from standard input
    Create { name: String },
    /// Set an account's password, read from standard input
    Passwd { name: String },
    /// Delete an account, with its offline messages and read markers
    Delete { name: String },
    /// List the accounts
    List,
}

pub fn run(command: AccountCommand, data: &DataArgs) -> Result<()> {
    let config = data.config()?;
    let casemap: CaseMapping = config.casemapping.into();
    let db = config.data_dir.join(DATABASE_FILE);
    if !db.exists() && !matches!(command, AccountCommand::Create { .. }) {
        bail!(
            "no database at {}: start `natter serve` with this data directory first, or give --data DIR",
            db.display()
        );
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let mut store = SqliteStore::open(&db)?;
    match command {
        AccountCommand::Create { name } => {
            if !is_valid_nick(&name, config.limits.nick_len) {
                bail!("'{name}' cannot be an account name: account names follow the rules of nicknames");
            }
            let password = read_password()?;
            let account = Account {
                name: casemap.fold(&name),
                display_name: name.clone(),
                password_hash: natter_server::password::hash_password(&password)
                    .map_err(anyhow::Error::msg)?,
                created_ms: now_ms(),
            };
            if !store.create_account(&account)? {
                bail!("the account '{name}' already exists; use `natter account passwd {name}` to change its password");
            }
            println!("created account {name}");
        }
        AccountCommand::Passwd { name } => {
            let password = read_password()?;
            let hash =
                natter_server::password::hash_password(&password).map_err(anyhow::Error::msg)?;
            if !store.set_password(&casemap.fold(&name), &hash)? {
                bail!("there is no account '{name}'; see `natter account list`");
            }
            println!("changed the password of {name}");
        }
        AccountCommand::Delete { name } => {
            if !store.delete_account(&casemap.fold(&name))? {
                bail!("there is no account '{name}'; see `natter account list`");
            }
            println!("deleted account {name}");
        }
        AccountCommand::List => {
            for account in store.accounts()? {
                println!("{}", account.display_name);
            }
            return Ok(());
        }
    }
    tell_running_server(&config.data_dir);
    Ok(())
}

/// One line from standard input, without its line ending.
fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input: pipe one in, e.g. `echo 'secret' | natter account create alice`");
    }
    Ok(password)
}

/// Sends SIGHUP to the server whose pid file is in `data_dir`, if one runs.
fn tell_running_server(data_dir: &Path) {
    let Ok(text) = std::fs::read_to_string(data_dir.join(PID_FILE)) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    // SAFETY: kill(2) with a pid read from the pid file; no memory is involved.
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) } == 0;
    if sent {
        println!("told the running server (pid {pid}) to reload accounts");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}
