//! Accounts: registering one (draft/account-registration), logging in (SASL PLAIN),
//! what others see of it (account-tag, account-notify, extended-join, WHOIS), and
//! the protection of registered nicknames.

use std::time::Duration;

use base64::Engine;
use natter_proto::{is_valid_nick, numeric::*, Message};
use natter_store::{Account, Write};

use crate::caps::Cap;
use crate::client::{ClientId, Transport};
use crate::fanout::Outgoing;
use crate::hub::{server_line, Hub, PendingCheck};
use crate::outbox::{Effect, Outbox};
use crate::persistence::{PendingStore, StoreJob, StoreOutcome};

/// An account as the hub keeps it: every account is in memory (a few hundred bytes
/// each), so that nick protection and logins never wait on the store.
#[derive(Clone, Debug)]
pub(crate) struct AccountEntry {
    pub display: String,
    pub password_hash: String,
}

/// An AUTHENTICATE exchange under way.
#[derive(Clone, Debug, Default)]
pub(crate) struct SaslExchange {
    /// Base64 received so far: a response longer than 400 bytes comes in chunks.
    pub buffer: String,
}

/// SASL responses longer than this are refused: PLAIN needs a few hundred bytes.
const MAX_SASL_BYTES: usize = 1600;

impl Hub {
    /// Gives the hub the accounts the store holds; call once at start.
    pub fn load_accounts(&mut self, accounts: Vec<Account>) {
        for a in accounts {
            self.accounts.insert(
                a.name,
                crate::accounts::AccountEntry {
                    display: a.display_name,
                    password_hash: a.password_hash,
                },
            );
        }
    }

    /// Replaces the accounts the hub knows with what the store now holds: an
    /// operator created, changed or deleted accounts while the server ran.
    pub fn replace_accounts(&mut self, accounts: Vec<Account>) {
        self.accounts.clear();
        self.load_accounts(accounts);
    }

    /// Whether a password may travel on this client's connection: TLS, a Unix socket
    /// or loopback, unless the operator allows plaintext.
    fn may_send_password(&self, id: ClientId) -> bool {
        if self.config.allow_plaintext_passwords {
            return true;
        }
        self.clients.get(&id).is_some_and(|c| {
            matches!(c.info.transport, Transport::Tls | Transport::Unix)
                || c.info.host == "127.0.0.1"
                || c.info.host == "0::1"
                || c.info.host == "::1"
                || c.info.host == "localhost"
        })
    }

    pub(crate) fn cmd_authenticate(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(arg) = msg.param(0) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["AUTHENTICATE", "Not enough parameters"],
            );
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if arg == "*" {
            if client.sasl.take().is_some() {
                self.numeric(out, id, "906", &["SASL authentication aborted"]);
            } else {
                self.numeric(out, id, "904", &["SASL authentication failed"]);
            }
            return;
        }
        if client.account.is_some() {
            self.numeric(
                out,
                id,
                "907",
                &["You have already authenticated using SASL"],
            );
            return;
        }
        let Some(exchange) = &mut client.sasl else {
            if !arg.eq_ignore_ascii_case("PLAIN") {
                self.numeric(out, id, "908", &["PLAIN", "are available SASL mechanisms"]);
                self.numeric(out, id, "904", &["SASL authentication failed"]);
                return;
            }
            if !self.may_send_password(id) {
                self.fail(
                    out,
                    id,
                    "AUTHENTICATE",
                    "INSECURE",
                    &[],
                    "Passwords are accepted only over TLS, a Unix socket or loopback",
                );
                self.numeric(out, id, "904", &["SASL authentication failed"]);
                return;
            }
            if let Some(c) = self.clients.get_mut(&id) {
                c.sasl = Some(Box::default());
            }
            // Written bare: SASL clients match `AUTHENTICATE +` literally.
            self.send(out, id, bytes::Bytes::from_static(b"AUTHENTICATE +\r\n"));
            return;
        };
        if arg != "+" {
            exchange.buffer.push_str(arg);
        }
        if exchange.buffer.len() > MAX_SASL_BYTES {
            client.sasl = None;
            self.numeric(out, id, "905", &["SASL message too long"]);
            return;
        }
        // A 400-byte chunk means more follows (an empty `+` ends an exact multiple).
        if arg.len() == 400 {
            return;
        }
        let encoded = std::mem::take(&mut exchange.buffer);
        client.sasl = None;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some(decoded) = decoded else {
            self.numeric(out, id, "904", &["SASL authentication failed"]);
            return;
        };
        let mut parts = decoded.split('\0');
        let (authzid, authcid, password) = (parts.next(), parts.next(), parts.next());
        let (Some(authzid), Some(authcid), Some(password)) = (authzid, authcid, password) else {
            self.numeric(out, id, "904", &["SASL authentication failed"]);
            return;
        };
        // Logging in as someone else (authzid) is not offered.
        let name = self.fold(authcid);
        if !authzid.is_empty() && self.fold(authzid) != name {
            self.numeric(out, id, "904", &["SASL authentication failed"]);
            return;
        }
        let Some(entry) = self.accounts.get(&name).cloned() else {
            self.numeric(out, id, "904", &["SASL authentication failed"]);
            return;
        };
        self.check_password(out, id, password, entry.password_hash, |client, label| {
            PendingCheck::Sasl {
                client,
                account: name,
                label,
            }
        });
    }

    /// Asks the server to check a password, holding the client's later lines.
    pub(crate) fn check_password(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        password: &str,
        hash: String,
        pending: impl FnOnce(ClientId, Option<String>) -> PendingCheck,
    ) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        out.effects.push(Effect::VerifyPassword {
            client: id,
            ticket,
            password: password.to_owned(),
            hash,
        });
        let label = self.hold(id);
        self.pending_checks.insert(ticket, pending(id, label));
    }

    pub(crate) fn finish_sasl(&mut self, out: &mut Outbox, id: ClientId, account: &str, ok: bool) {
        if !ok {
            self.numeric(out, id, "904", &["SASL authentication failed"]);
            return;
        }
        self.log_in(out, id, account);
        self.numeric(out, id, "903", &["SASL authentication successful"]);
    }

    pub(crate) fn cmd_register(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let (Some(account), Some(_email), Some(password)) =
            (msg.param(0), msg.param(1), msg.param(2))
        else {
            self.fail(
                out,
                id,
                "REGISTER",
                "NEED_MORE_PARAMS",
                &[],
                "Usage: REGISTER <account> <email> <password>",
            );
            return;
        };
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.account.is_some() {
            self.fail(
                out,
                id,
                "REGISTER",
                "ALREADY_AUTHENTICATED",
                &[account],
                "You are already logged in",
            );
            return;
        }
        // `*` registers the current nick.
        let current = client
            .registration
            .as_ref()
            .map_or(Some(client.nick.clone()), |r| r.nick.clone());
        let account = if account == "*" {
            match current {
                Some(nick) => nick,
                None => {
                    self.fail(
                        out,
                        id,
                        "REGISTER",
                        "NEED_NICK",
                        &["*"],
                        "Send NICK first, or name the account",
                    );
                    return;
                }
            }
        } else {
            account.to_owned()
        };
        if !is_valid_nick(&account, self.config.limits.nick_len) {
            self.fail(
                out,
                id,
                "REGISTER",
                "BAD_ACCOUNT_NAME",
                &[&account],
                "Account names follow the rules of nicknames",
            );
            return;
        }
        let folded = self.fold(&account);
        let held_by_other = self.nicks.get(&folded).is_some_and(|holder| *holder != id);
        if self.accounts.contains_key(&folded) || held_by_other {
            self.fail(
                out,
                id,
                "REGISTER",
                "ACCOUNT_EXISTS",
                &[&account],
                "That account already exists",
            );
            return;
        }
        if password.is_empty() || password == "*" || password.len() < self.config.min_password_len {
            let why = format!(
                "Choose a password of at least {} characters",
                self.config.min_password_len.max(1)
            );
            self.fail(out, id, "REGISTER", "WEAK_PASSWORD", &[&account], &why);
            return;
        }
        if !self.may_send_password(id) {
            self.fail(
                out,
                id,
                "REGISTER",
                "INSECURE",
                &[&account],
                "Passwords are accepted only over TLS, a Unix socket or loopback",
            );
            return;
        }
        // Reserve the name now, so that a second REGISTER racing this one fails.
        self.accounts.insert(
            folded,
            AccountEntry {
                display: account.clone(),
                password_hash: String::new(),
            },
        );
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        out.effects.push(Effect::HashPassword {
            ticket,
            password: password.to_owned(),
        });
        let label = self.hold(id);
        self.pending_checks.insert(
            ticket,
            PendingCheck::Register {
                client: id,
                account,
                label,
            },
        );
    }

    /// The server hashed a password asked for with [`Effect::HashPassword`].
    pub fn password_hashed(
        &mut self,
        ticket: u64,
        hash: Option<String>,
        now: crate::Now,
        out: &mut Outbox,
    ) {
        self.now = now;
        let Some(PendingCheck::Register {
            client,
            account,
            label,
        }) = self.pending_checks.remove(&ticket)
        else {
            return;
        };
        let folded = self.fold(&account);
        let Some(hash) = hash else {
            self.accounts.remove(&folded);
            self.reply = Some(crate::hub::Reply::new(client, label));
            self.fail(
                out,
                client,
                "REGISTER",
                "TEMPORARILY_UNAVAILABLE",
                &[&account],
                "The account could not be created; try again",
            );
            self.finish_reply(out);
            self.release(out, client);
            return;
        };
        if let Some(entry) = self.accounts.get_mut(&folded) {
            entry.password_hash = hash.clone();
        }
        let record = Account {
            name: folded,
            display_name: account.clone(),
            password_hash: hash,
            created_ms: self.now_ms(),
        };
        self.ask_store(
            out,
            StoreJob::Write(vec![Write::Account(record)]),
            PendingStore::Register {
                client,
                label,
                account,
            },
        );
    }

    /// The new account is stored: the client is told and logged in.
    pub(crate) fn finish_register(
        &mut self,
        out: &mut Outbox,
        client: ClientId,
        label: Option<String>,
        account: &str,
        outcome: StoreOutcome,
    ) {
        self.reply = Some(crate::hub::Reply::new(client, label));
        if let StoreOutcome::Failed(_) = outcome {
            self.accounts.remove(&self.fold(account));
            self.fail(
                out,
                client,
                "REGISTER",
                "TEMPORARILY_UNAVAILABLE",
                &[account],
                "The account could not be stored; try again",
            );
        } else {
            let line = server_line(
                Some(&self.config.server_name),
                "REGISTER",
                &["SUCCESS", account, "Account created"],
            );
            self.send(out, client, line);
            self.log_in(out, client, &self.fold(account));
        }
        self.finish_reply(out);
        self.release(out, client);
    }

    /// Logs a client in to an account (folded name): it is told with 900, those
    /// sharing a room with account-notify see it, and if it is registered its
    /// offline messages come.
    pub(crate) fn log_in(&mut self, out: &mut Outbox, id: ClientId, folded: &str) {
        let Some(display) = self.accounts.get(folded).map(|a| a.display.clone()) else {
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.account = Some(display.clone());
        // Logging in to the account of the nick in use ends its challenge; logging in
        // to another account does not.
        if self.config.casemapping.fold(&client.nick) == folded {
            client.nick_deadline = None;
        }
        let registered = client.is_registered();
        let source = if registered {
            client.source()
        } else {
            let reg = client.registration.as_ref();
            format!(
                "{}!{}@{}",
                reg.and_then(|r| r.nick.as_deref()).unwrap_or("*"),
                reg.and_then(|r| r.user.as_ref())
                    .map_or("*", |(user, _)| user.as_str()),
                client.info.host
            )
        };
        self.logins.entry(folded.to_owned()).or_default().push(id);
        let text = format!("You are now logged in as {display}");
        self.numeric(out, id, "900", &[&source, &display, &text]);
        if registered {
            let mut line =
                Outgoing::new(self.now.server_time(), Some(source), "ACCOUNT").param(display);
            let to: Vec<ClientId> = self
                .neighbours(id)
                .into_iter()
                .filter(|n| {
                    self.clients
                        .get(n)
                        .is_some_and(|c| c.has(Cap::AccountNotify))
                })
                .collect();
            self.fan_out(out, &to, &mut line);
            self.take_offline(out, folded);
        }
    }

    /// Forgets a client's login (it quit or was renamed).
    pub(crate) fn forget_login(&mut self, id: ClientId, account: &str) {
        let folded = self.fold(account);
        if let Some(ids) = self.logins.get_mut(&folded) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                self.logins.remove(&folded);
            }
        }
    }

    /// The clients logged in to an account (folded name).
    pub(crate) fn sessions_of(&self, folded: &str) -> Vec<ClientId> {
        self.logins.get(folded).cloned().unwrap_or_default()
    }

    /// Asks for an account's offline messages, to be delivered to its clients.
    pub(crate) fn take_offline(&mut self, out: &mut Outbox, folded: &str) {
        self.ask_store(
            out,
            StoreJob::TakeOffline {
                account: folded.to_owned(),
            },
            PendingStore::Offline {
                account: folded.to_owned(),
            },
        );
    }

    /// A client now uses a nick: if it is a registered account's and the client is
    /// not logged in to it, it is asked to, and renamed if it does not in time.
    pub(crate) fn protect_nick(&mut self, out: &mut Outbox, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let folded = self.config.casemapping.fold(&client.nick);
        let Some(owner) = self.accounts.get(&folded) else {
            return;
        };
        let logged_in_as_owner = client
            .account
            .as_deref()
            .is_some_and(|a| self.config.casemapping.eq(a, &owner.display));
        if logged_in_as_owner {
            return;
        }
        let grace = self.config.limits.nick_grace;
        let deadline = self.now.mono + grace;
        if let Some(c) = self.clients.get_mut(&id) {
            c.nick_deadline = Some(deadline);
        }
        let text = format!(
            "This nickname is registered. Log in to its account (SASL, or your client's login) within {} seconds, or you will be renamed.",
            grace.as_secs()
        );
        let nick = self.nick_of(id);
        let line = server_line(Some(&self.config.server_name), "NOTICE", &[&nick, &text]);
        self.send(out, id, line);
    }

    /// Renames the clients whose grace period to log in to their nick's account ran
    /// out. Called from `tick`.
    pub(crate) fn enforce_nick_protection(&mut self, out: &mut Outbox) {
        let now = self.now.mono;
        let late: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.nick_deadline.is_some_and(|d| d <= now))
            .map(|c| c.id)
            .collect();
        for id in late {
            if let Some(c) = self.clients.get_mut(&id) {
                c.nick_deadline = None;
            }
            self.rename_to_guest(out, id);
        }
    }

    /// Gives a client a free `GuestN` nick.
    fn rename_to_guest(&mut self, out: &mut Outbox, id: ClientId) {
        let guest = loop {
            self.guest_counter += 1;
            let candidate = format!("Guest{}", self.guest_counter);
            if !self.nicks.contains_key(&self.fold(&candidate)) {
                break candidate;
            }
        };
        let rename = Message::new("NICK", &[&guest]);
        self.cmd_nick(out, id, &rename);
    }

    /// The owner of a registered nick takes it back: whoever holds it without being
    /// logged in to its account is renamed at once. True when the nick is now free
    /// for `claimant`.
    pub(crate) fn reclaim_nick(
        &mut self,
        out: &mut Outbox,
        claimant: ClientId,
        folded: &str,
    ) -> bool {
        let Some(holder) = self.nicks.get(folded).copied() else {
            return true;
        };
        if holder == claimant {
            return true;
        }
        let Some(owner) = self.accounts.get(folded).map(|a| a.display.clone()) else {
            return false;
        };
        let casemap = self.config.casemapping;
        let logged_in_as_owner = |c: ClientId| {
            self.clients
                .get(&c)
                .and_then(|c| c.account.as_deref())
                .is_some_and(|a| casemap.eq(a, &owner))
        };
        if !logged_in_as_owner(claimant) || logged_in_as_owner(holder) {
            return false;
        }
        self.rename_to_guest(out, holder);
        !self.nicks.contains_key(folded)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// The default time a user has to log in to a registered nick before being renamed.
pub const DEFAULT_NICK_GRACE: Duration = Duration::from_secs(30);
