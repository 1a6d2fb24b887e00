//! The embedded store: one SQLite file, WAL mode, every write batch one transaction.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::error::StoreError;
use crate::model::{Account, HistoryQuery, Selector, StoredMessage, TargetActivity, Write};
use crate::schema::MIGRATIONS;
use crate::Store;

/// The columns of a message row, in the order [`message_from_row`] reads them.
const MESSAGE_COLUMNS: &str =
    "m.msgid, m.time_ms, m.target, m.command, m.source, m.account, m.recipient, m.text, m.client_tags";

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

/// A selector resolved against the conversation: a message's sequence number and
/// time, or a time alone.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Message { seq: i64, time_ms: i64 },
    Time(i64),
    Unbounded,
}

impl Bound {
    fn time(self) -> Option<i64> {
        match self {
            Bound::Message { time_ms, .. } | Bound::Time(time_ms) => Some(time_ms),
            Bound::Unbounded => None,
        }
    }

    /// The SQL condition for "strictly before" (or after) this bound.
    fn condition(self, before: bool) -> String {
        let op = if before { "<" } else { ">" };
        match self {
            Bound::Message { seq, .. } => format!("m.seq {op} {seq}"),
            Bound::Time(t) => format!("m.time_ms {op} {t}"),
            Bound::Unbounded => "1".into(),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to
    /// date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(StoreError::sqlite(format!(
            "cannot open the database {}",
            path.display()
        )))?;
        SqliteStore::setup(conn)
    }

    /// A store in memory, gone when dropped: for tests.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(StoreError::sqlite("cannot open an in-memory database"))?;
        SqliteStore::setup(conn)
    }

    fn setup(conn: Connection) -> Result<SqliteStore, StoreError> {
        // WAL lets readers run beside the writer; synchronous=FULL makes a commit
        // survive a power cut, not only a killed process: acknowledged means kept.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(StoreError::sqlite("cannot configure the database"))?;
        let mut store = SqliteStore { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(StoreError::sqlite("cannot read the schema version"))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(StoreError::new(format!(
                "the database has schema version {version}, newer than this natter knows ({}): upgrade natter",
                MIGRATIONS.len()
            )));
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self
                .conn
                .transaction()
                .map_err(StoreError::sqlite("cannot start a migration"))?;
            tx.execute_batch(migration)
                .map_err(StoreError::sqlite(format!("migration {} failed", i + 1)))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(StoreError::sqlite("cannot record the schema version"))?;
            tx.commit().map_err(StoreError::sqlite(format!(
                "migration {} failed to commit",
                i + 1
            )))?;
        }
        Ok(())
    }

    /// Copies the whole database to `dest` while it stays in use (SQLite's online
    /// backup): a consistent snapshot for `natter backup`.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let mut out = Connection::open(dest).map_err(StoreError::sqlite(format!(
            "cannot create the backup file {}",
            dest.display()
        )))?;
        let backup = rusqlite::backup::Backup::new(&self.conn, &mut out)
            .map_err(StoreError::sqlite("cannot start the backup"))?;
        backup
            .run_to_completion(256, std::time::Duration::from_millis(0), None)
            .map_err(StoreError::sqlite("the backup failed"))
    }

    fn resolve(&self, target: &str, selector: &Selector) -> Result<Option<Bound>, StoreError> {
        Ok(Some(match selector {
            Selector::Unbounded => Bound::Unbounded,
            Selector::Time(t) => Bound::Time(*t),
            Selector::Msgid(msgid) => {
                let found = self
                    .conn
                    .query_row(
                        "SELECT seq, time_ms FROM messages WHERE msgid = ?1 AND target = ?2",
                        params![msgid, target],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(StoreError::sqlite("cannot look up a message id"))?;
                match found {
                    Some((seq, time_ms)) => Bound::Message { seq, time_ms },
                    None => return Ok(None),
                }
            }
        }))
    }

    /// Messages of `target` meeting `conditions`, the `limit` nearest in the given
    /// direction, returned oldest first.
    fn select(
        &self,
        target: &str,
        conditions: &[String],
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let order = if newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.target = ?1 AND {} ORDER BY m.seq {order} LIMIT ?2",
            conditions.join(" AND ")
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite("cannot query history"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![target, limit], message_from_row)
            .map_err(StoreError::sqlite("cannot query history"))?;
        let mut messages = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::sqlite("cannot read history"))?;
        if newest_first {
            messages.reverse();
        }
        Ok(messages)
    }
}

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        msgid: r.get(0)?,
        time_ms: r.get(1)?,
        target: r.get(2)?,
        command: r.get(3)?,
        source: r.get(4)?,
        account: r.get(5)?,
        recipient: r.get(6)?,
        text: r.get(7)?,
        client_tags: r.get(8)?,
    })
}

fn apply(tx: &Transaction<'_>, write: &Write) -> rusqlite::Result<()> {
    match write {
        Write::Message {
            message: m,
            offline_for,
        } => {
            // A message id is written once; a repeated write changes nothing.
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages
                     (msgid, time_ms, target, command, source, account, recipient, text, client_tags)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    m.msgid,
                    m.time_ms,
                    m.target,
                    m.command,
                    m.source,
                    m.account,
                    m.recipient,
                    m.text,
                    m.client_tags
                ])?;
            if inserted == 1 {
                let seq = tx.last_insert_rowid();
                let mut stmt = tx
                    .prepare_cached("INSERT INTO offline (account, message_seq) VALUES (?1, ?2)")?;
                for account in offline_for {
                    stmt.execute(params![account, seq])?;
                }
            }
        }
        Write::Account(a) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO accounts (name, display_name, password_hash, created_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                a.name,
                a.display_name,
                a.password_hash,
                a.created_ms
            ])?;
        }
        Write::DeleteAccount { name } => {
            for sql in [
                "DELETE FROM accounts WHERE name = ?1",
                "DELETE FROM offline WHERE account = ?1",
                "DELETE FROM read_markers WHERE account = ?1",
            ] {
                tx.prepare_cached(sql)?.execute(params![name])?;
            }
        }
        Write::ReadMarker {
            account,
            target,
            time_ms,
        } => {
            // Markers only move forward, as draft/read-marker says.
            tx.prepare_cached(
                "INSERT INTO read_markers (account, target, time_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account, target) DO UPDATE SET time_ms = max(time_ms, excluded.time_ms)",
            )?
            .execute(params![account, target, time_ms])?;
        }
    }
    Ok(())
}

impl Store for SqliteStore {
    fn write(&mut self, batch: &[Write]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(StoreError::sqlite("cannot start a write"))?;
        for write in batch {
            apply(&tx, write).map_err(StoreError::sqlite("cannot write"))?;
        }
        tx.commit().map_err(StoreError::sqlite("cannot commit"))
    }

    fn history(
        &mut self,
        target: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        match query {
            HistoryQuery::Latest { after, limit } => {
                let Some(after) = self.resolve(target, after)? else {
                    return Ok(Vec::new());
                };
                self.select(target, &[after.condition(false)], true, *limit)
            }
            HistoryQuery::Before { at, limit } => {
                let Some(at) = self.resolve(target, at)? else {
                    return Ok(Vec::new());
                };
                self.select(target, &[at.condition(true)], true, *limit)
            }
            HistoryQuery::After { at, limit } => {
                let Some(at) = self.resolve(target, at)? else {
                    return Ok(Vec::new());
                };
                self.select(target, &[at.condition(false)], false, *limit)
            }
            HistoryQuery::Around { at, limit } => {
                let Some(bound) = self.resolve(target, at)? else {
                    return Ok(Vec::new());
                };
                let limit = (*limit).max(1);
                let mut middle = Vec::new();
                let mut room = limit;
                if let Bound::Message { seq, .. } = bound {
                    middle = self.select(target, &[format!("m.seq = {seq}")], false, 1)?;
                    room -= middle.len();
                }
                let mut messages = self.select(target, &[bound.condition(true)], true, room / 2)?;
                let after_room = limit - messages.len() - middle.len();
                messages.extend(middle);
                // A time selects the messages at that time too, after the middle.
                let after = match bound {
                    Bound::Time(t) => format!("m.time_ms >= {t}"),
                    _ => bound.condition(false),
                };
                messages.extend(self.select(target, &[after], false, after_room)?);
                Ok(messages)
            }
            HistoryQuery::Between { from, to, limit } => {
                let (Some(from), Some(to)) =
                    (self.resolve(target, from)?, self.resolve(target, to)?)
                else {
                    return Ok(Vec::new());
                };
                // From the first selector towards the second, whichever is later.
                let forward = match (from.time(), to.time()) {
                    (Some(f), Some(t)) => f <= t,
                    (None, _) => true,
                    (_, None) => false,
                };
                let conditions = [from.condition(!forward), to.condition(forward)];
                self.select(target, &conditions, !forward, *limit)
            }
        }
    }

    fn active_targets(
        &mut self,
        targets: &[String],
        participant: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<TargetActivity>, StoreError> {
        let (low, high) = (from_ms.min(to_ms), from_ms.max(to_ms));
        let mut found: Vec<TargetActivity> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT max(time_ms) FROM messages WHERE target = ?1 AND time_ms > ?2 AND time_ms < ?3",
                )
                .map_err(StoreError::sqlite("cannot query targets"))?;
            for target in targets {
                let latest: Option<i64> = stmt
                    .query_row(params![target, low, high], |r| r.get(0))
                    .map_err(StoreError::sqlite("cannot query targets"))?;
                if let Some(latest_ms) = latest {
                    found.push(TargetActivity {
                        target: target.clone(),
                        latest_ms,
                    });
                }
            }
        }
        if let Some(me) = participant {
            // Direct keys are `a b`: the participant is the first or the last word.
            // substr, not LIKE: `_` in a nick would be a LIKE wildcard.
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT target, max(time_ms) FROM messages
                     WHERE (substr(target, 1, length(?1) + 1) = ?1 || ' '
                            OR substr(target, -(length(?1) + 1)) = ' ' || ?1)
                       AND time_ms > ?2 AND time_ms < ?3
                     GROUP BY target",
                )
                .map_err(StoreError::sqlite("cannot query targets"))?;
            let rows = stmt
                .query_map(params![me, low, high], |r| {
                    Ok(TargetActivity {
                        target: r.get(0)?,
                        latest_ms: r.get(1)?,
                    })
                })
                .map_err(StoreError::sqlite("cannot query targets"))?;
            for row in rows {
                let row = row.map_err(StoreError::sqlite("cannot read targets"))?;
                if !found.iter().any(|f| f.target == row.target) {
                    found.push(row);
                }
            }
        }
        found.sort_by_key(|a| std::cmp::Reverse(a.latest_ms));
        found.truncate(limit);
        Ok(found)
    }

    fn take_offline(&mut self, account: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(StoreError::sqlite("cannot start taking offline messages"))?;
        let messages = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM offline o JOIN messages m ON m.seq = o.message_seq
                     WHERE o.account = ?1 ORDER BY o.seq"
                ))
                .map_err(StoreError::sqlite("cannot read offline messages"))?;
            let rows = stmt
                .query_map(params![account], message_from_row)
                .map_err(StoreError::sqlite("cannot read offline messages"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite("cannot read offline messages"))?
        };
        tx.execute("DELETE FROM offline WHERE account = ?1", params![account])
            .map_err(StoreError::sqlite("cannot clear offline messages"))?;
        tx.commit()
            .map_err(StoreError::sqlite("cannot commit taking offline messages"))?;
        Ok(messages)
    }

    fn create_account(&mut self, account: &Account) -> Result<bool, StoreError> {
        if self.account(&account.name)?.is_some() {
            return Ok(false);
        }
        self.write(&[Write::Account(account.clone())])?;
        Ok(true)
    }

    fn account(&mut self, name: &str) -> Result<Option<Account>, StoreError> {
        self.conn
            .query_row(
                "SELECT name, display_name, password_hash, created_ms FROM accounts WHERE name = ?1",
                params![name],
                account_from_row,
            )
            .optional()
            .map_err(StoreError::sqlite("cannot read the account"))
    }

    fn set_password(&mut self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE accounts SET password_hash = ?2 WHERE name = ?1",
                params![name, password_hash],
            )
            .map_err(StoreError::sqlite("cannot set the password"))?;
        Ok(changed == 1)
    }

    fn delete_account(&mut self, name: &str) -> Result<bool, StoreError> {
        if self.account(name)?.is_none() {
            return Ok(false);
        }
        self.write(&[Write::DeleteAccount {
            name: name.to_owned(),
        }])?;
        Ok(true)
    }

    fn accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, display_name, password_hash, created_ms FROM accounts ORDER BY name",
            )
            .map_err(StoreError::sqlite("cannot list accounts"))?;
        let rows = stmt
            .query_map([], account_from_row)
            .map_err(StoreError::sqlite("cannot list accounts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::sqlite("cannot list accounts"))
    }

    fn read_marker(&mut self, account: &str, target: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT time_ms FROM read_markers WHERE account = ?1 AND target = ?2",
                params![account, target],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite("cannot read the read marker"))
    }

    fn prune(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM messages WHERE time_ms < ?1",
                params![before_ms],
            )
            .map_err(StoreError::sqlite("cannot prune history"))
    }
}

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        name: r.get(0)?,
        display_name: r.get(1)?,
        password_hash: r.get(2)?,
        created_ms: r.get(3)?,
    })
}
