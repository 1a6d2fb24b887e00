//! The embedded store: one SQLite file, WAL mode, every write batch one transaction.

use std::collections::HashMap;

type Conversations = HashMap<String, i64, foldhash::fast::RandomState>;

/// Conversation ids kept in memory at most. Anyone can start conversations (a new
/// nick is a new one), so the cache is bounded: when full it starts again, and the
/// ids are read back from the table as they are needed.
const MAX_KNOWN_CONVERSATIONS: usize = 65_536;

fn remember(known: &mut Conversations, key: &str, id: i64) {
    if known.len() >= MAX_KNOWN_CONVERSATIONS {
        known.clear();
    }
    known.insert(key.to_owned(), id);
}
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::error::StoreError;
use crate::model::{Account, HistoryQuery, Selector, Seq, StoredMessage, TargetActivity, Write};
use crate::schema::MIGRATIONS;
use crate::Store;

/// The fields of a message besides its number and conversation, in one column: a
/// message is written and read whole, and one bound value costs less than seven.
/// They are joined by LF, which no IRC field can hold; the text comes last, so that
/// even a text holding one would read back whole.
mod body {
    use crate::model::{Seq, StoredMessage};

    const SEPARATOR: char = '\n';

    #[cfg(test)]
    pub(super) fn encode(m: &StoredMessage) -> String {
        let mut body = String::new();
        encode_into(m, &mut body);
        body
    }

    /// Replaces what `body` holds with the body of `m`.
    pub(super) fn encode_into(m: &StoredMessage, body: &mut String) {
        let account = m.account.as_deref().unwrap_or("");
        body.clear();
        for field in [
            &m.msgid,
            &m.command,
            &m.source,
            account,
            &m.recipient,
            &m.client_tags,
        ] {
            body.push_str(field);
            body.push(SEPARATOR);
        }
        body.push_str(&m.text);
    }

    pub(super) fn decode(seq: Seq, target: String, body: &str) -> StoredMessage {
        let mut fields = body.splitn(7, SEPARATOR);
        let mut next = || fields.next().unwrap_or("").to_owned();
        let msgid = next();
        let command = next();
        let source = next();
        let account = Some(next()).filter(|a| !a.is_empty());
        let recipient = next();
        let client_tags = next();
        let text = next();
        StoredMessage {
            seq,
            msgid,
            target,
            command,
            source,
            account,
            recipient,
            text,
            client_tags,
        }
    }
}

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    /// Conversation key → its row id: every message names its conversation, and
    /// there are few conversations. (foldhash: looked up for every message, with
    /// keys made of nicks that clients choose.)
    conversations: Conversations,
    /// Buffers for message bodies, kept from one write to the next.
    bodies: Vec<String>,
}

/// A selector resolved against the conversation: a message, or a time.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Message(Seq),
    Time(i64),
    Unbounded,
}

impl Bound {
    fn time(self) -> Option<i64> {
        match self {
            Bound::Message(seq) => Some(seq.time_ms()),
            Bound::Time(time_ms) => Some(time_ms),
            Bound::Unbounded => None,
        }
    }

    /// The SQL condition for "strictly before" (or after) this bound. A time is a
    /// range of sequence numbers: before `t` is below its first, after `t` is from the
    /// first of the next millisecond.
    fn condition(self, before: bool) -> String {
        match (self, before) {
            (Bound::Message(seq), true) => format!("h.seq < {}", seq.raw()),
            (Bound::Message(seq), false) => format!("h.seq > {}", seq.raw()),
            (Bound::Time(t), true) => format!("h.seq < {}", Seq::at(t).raw()),
            (Bound::Time(t), false) => format!("h.seq >= {}", Seq::at(t.saturating_add(1)).raw()),
            (Bound::Unbounded, _) => "1".into(),
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
        // The queries, and the inserts of 1, 2, 4, ... 64 messages, stay prepared.
        conn.set_prepared_statement_cache_capacity(32);
        let mut store = SqliteStore {
            conn,
            conversations: Conversations::default(),
            bodies: Vec::new(),
        };
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

    /// The row id of a conversation, if it has ever had a message.
    fn conversation(&mut self, key: &str) -> Result<Option<i64>, StoreError> {
        if let Some(id) = self.conversations.get(key) {
            return Ok(Some(*id));
        }
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM conversations WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite("cannot look up a conversation"))?;
        if let Some(id) = id {
            remember(&mut self.conversations, key, id);
        }
        Ok(id)
    }

    fn resolve(
        &mut self,
        conversation: i64,
        selector: &Selector,
    ) -> Result<Option<Bound>, StoreError> {
        Ok(Some(match selector {
            Selector::Unbounded => Bound::Unbounded,
            Selector::Time(t) => Bound::Time(*t),
            Selector::Msgid(msgid) => {
                let seq = match Seq::from_msgid(msgid) {
                    Some(seq) => Some(seq.raw()),
                    None => self
                        .conn
                        .query_row(
                            "SELECT seq FROM legacy_msgids WHERE msgid = ?1",
                            params![msgid],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(StoreError::sqlite("cannot look up a message id"))?,
                };
                let Some(seq) = seq else {
                    return Ok(None);
                };
                // The message must be in this conversation.
                let found = self
                    .conn
                    .prepare_cached("SELECT 1 FROM history WHERE seq = ?1 AND conversation = ?2")
                    .and_then(|mut stmt| stmt.exists(params![seq, conversation]))
                    .map_err(StoreError::sqlite("cannot look up a message id"))?;
                if !found {
                    return Ok(None);
                }
                Bound::Message(Seq::from_raw(seq))
            }
        }))
    }

    /// Messages of a conversation meeting `conditions`, the `limit` nearest in the
    /// given direction, returned oldest first.
    fn select(
        &self,
        conversation: i64,
        target: &str,
        conditions: &[String],
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let order = if newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT h.seq, h.body FROM history h WHERE h.conversation = ?1 AND {} ORDER BY h.seq {order} LIMIT ?2",
            conditions.join(" AND ")
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite("cannot query history"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![conversation, limit], |r| {
                message_from_row(r, target.to_owned())
            })
            .map_err(StoreError::sqlite("cannot query history"))?;
        let mut messages = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::sqlite("cannot read history"))?;
        if newest_first {
            messages.reverse();
        }
        Ok(messages)
    }

    /// Runs the writes of one transaction, learning the ids of new conversations.
    fn apply_all(&mut self, batch: &[Write]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut writer = BatchWriter {
                tx: &tx,
                insert_one: tx.prepare_cached(&insert_history_sql(1))?,
                insert_many: tx.prepare_cached(&insert_history_sql(ROWS_PER_INSERT))?,
                insert_some: None,
                rows: Vec::with_capacity(ROWS_PER_INSERT),
                bodies: &mut self.bodies,
                conversations: &mut self.conversations,
            };
            for write in batch {
                writer.apply(write)?;
            }
            writer.flush()?;
        }
        tx.commit()
    }
}

/// Messages written by one INSERT statement: one statement step, and one cursor
/// that appends, for many messages.
const ROWS_PER_INSERT: usize = 64;

/// `INSERT OR IGNORE` of `rows` messages: a message is written once; writing it
/// again changes nothing.
fn insert_history_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?)"; rows].join(", ");
    format!("INSERT OR IGNORE INTO history (seq, conversation, body) VALUES {values}")
}

fn message_from_row(r: &Row<'_>, target: String) -> rusqlite::Result<StoredMessage> {
    let seq = Seq::from_raw(r.get(0)?);
    let body: String = r.get(1)?;
    Ok(body::decode(seq, target, &body))
}

/// The id of a conversation, created on its first message.
fn conversation_id(
    tx: &Transaction<'_>,
    known: &mut Conversations,
    key: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = known.get(key) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO conversations (key) VALUES (?1)")?
        .execute(params![key])?;
    let id = tx
        .prepare_cached("SELECT id FROM conversations WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))?;
    remember(known, key, id);
    Ok(id)
}

/// The writes of one transaction. Messages are nearly every write: they go in
/// [`ROWS_PER_INSERT`] at a time, their bodies built in buffers kept from one
/// transaction to the next.
struct BatchWriter<'t> {
    tx: &'t Transaction<'t>,
    insert_one: rusqlite::CachedStatement<'t>,
    insert_many: rusqlite::CachedStatement<'t>,
    /// The statement for 2 to 32 rows last used.
    insert_some: Option<rusqlite::CachedStatement<'t>>,
    /// (seq, conversation) of the messages waiting for the next insert; their
    /// bodies are the first `rows.len()` of `bodies`.
    rows: Vec<(i64, i64)>,
    bodies: &'t mut Vec<String>,
    conversations: &'t mut Conversations,
}

impl BatchWriter<'_> {
    fn apply(&mut self, write: &Write) -> rusqlite::Result<()> {
        let tx = self.tx;
        if let Write::Message {
            message,
            offline_for,
        } = write
        {
            if offline_for.is_empty() {
                return self.queue(message);
            }
        }
        // Anything else is written in order, after the messages before it.
        self.flush()?;
        match write {
            Write::Message {
                message: m,
                offline_for,
            } => {
                let conversation = conversation_id(tx, self.conversations, &m.target)?;
                body::encode_into(m, self.body(0));
                let inserted =
                    self.insert_one
                        .execute(params![m.seq.raw(), conversation, self.bodies[0]])?;
                if inserted == 1 {
                    let mut stmt = tx.prepare_cached(
                        "INSERT OR IGNORE INTO offline_queue (account, seq) VALUES (?1, ?2)",
                    )?;
                    for account in offline_for {
                        stmt.execute(params![account, m.seq.raw()])?;
                    }
                }
            }
            Write::Account(a) => {
                let sql = "INSERT OR REPLACE INTO accounts
                           (name, display_name, password_hash, created_ms)
                           VALUES (?1, ?2, ?3, ?4)";
                tx.prepare_cached(sql)?.execute(params![
                    a.name,
                    a.display_name,
                    a.password_hash,
                    a.created_ms
                ])?;
            }
            Write::DeleteAccount { name } => {
                for sql in [
                    "DELETE FROM accounts WHERE name = ?1",
                    "DELETE FROM offline_queue WHERE account = ?1",
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
                let sql = "INSERT INTO read_markers (account, target, time_ms) VALUES (?1, ?2, ?3)
                           ON CONFLICT (account, target)
                           DO UPDATE SET time_ms = max(time_ms, excluded.time_ms)";
                tx.prepare_cached(sql)?
                    .execute(params![account, target, time_ms])?;
            }
        }
        Ok(())
    }

    /// The body buffer `i`, made on first use.
    fn body(&mut self, i: usize) -> &mut String {
        while self.bodies.len() <= i {
            self.bodies.push(String::new());
        }
        &mut self.bodies[i]
    }

    fn queue(&mut self, m: &StoredMessage) -> rusqlite::Result<()> {
        let conversation = conversation_id(self.tx, self.conversations, &m.target)?;
        let i = self.rows.len();
        body::encode_into(m, self.body(i));
        self.rows.push((m.seq.raw(), conversation));
        if self.rows.len() == ROWS_PER_INSERT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the queued messages: in statements of 64, 32, ... 1 rows, so that a
    /// group of any size takes few statements, all of them prepared once.
    fn flush(&mut self) -> rusqlite::Result<()> {
        let mut done = 0;
        while done < self.rows.len() {
            let left = self.rows.len() - done;
            let size = 1 << left.min(ROWS_PER_INSERT).ilog2();
            let statement = if size == ROWS_PER_INSERT {
                &mut self.insert_many
            } else if size == 1 {
                &mut self.insert_one
            } else {
                let some = self.tx.prepare_cached(&insert_history_sql(size))?;
                self.insert_some.insert(some)
            };
            let rows = self.rows[done..done + size].iter();
            for (i, ((seq, conversation), body)) in rows.zip(&self.bodies[done..]).enumerate() {
                let at = 3 * i + 1;
                statement.raw_bind_parameter(at, seq)?;
                statement.raw_bind_parameter(at + 1, conversation)?;
                statement.raw_bind_parameter(at + 2, body.as_str())?;
            }
            statement.raw_execute()?;
            done += size;
        }
        self.rows.clear();
        Ok(())
    }
}

impl Store for SqliteStore {
    fn write(&mut self, batch: &[Write]) -> Result<(), StoreError> {
        self.apply_all(batch).map_err(|e| {
            // Conversations learnt in a transaction that did not commit do not exist.
            self.conversations.clear();
            StoreError::sqlite("cannot commit")(e)
        })
    }

    fn history(
        &mut self,
        target: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let Some(conversation) = self.conversation(target)? else {
            return Ok(Vec::new());
        };
        let select = |store: &Self, conditions: &[String], newest_first: bool, limit: usize| {
            store.select(conversation, target, conditions, newest_first, limit)
        };
        match query {
            HistoryQuery::Latest { after, limit } => {
                let Some(after) = self.resolve(conversation, after)? else {
                    return Ok(Vec::new());
                };
                select(self, &[after.condition(false)], true, *limit)
            }
            HistoryQuery::Before { at, limit } => {
                let Some(at) = self.resolve(conversation, at)? else {
                    return Ok(Vec::new());
                };
                select(self, &[at.condition(true)], true, *limit)
            }
            HistoryQuery::After { at, limit } => {
                let Some(at) = self.resolve(conversation, at)? else {
                    return Ok(Vec::new());
                };
                select(self, &[at.condition(false)], false, *limit)
            }
            HistoryQuery::Around { at, limit } => {
                let Some(bound) = self.resolve(conversation, at)? else {
                    return Ok(Vec::new());
                };
                let limit = (*limit).max(1);
                let mut middle = Vec::new();
                let mut room = limit;
                if let Bound::Message(seq) = bound {
                    middle = select(self, &[format!("h.seq = {}", seq.raw())], false, 1)?;
                    room -= middle.len();
                }
                let mut messages = select(self, &[bound.condition(true)], true, room / 2)?;
                let after_room = limit - messages.len() - middle.len();
                messages.extend(middle);
                // A time selects the messages at that time too, after the middle.
                let after = match bound {
                    Bound::Time(t) => format!("h.seq >= {}", Seq::at(t).raw()),
                    _ => bound.condition(false),
                };
                messages.extend(select(self, &[after], false, after_room)?);
                Ok(messages)
            }
            HistoryQuery::Between { from, to, limit } => {
                let (Some(from), Some(to)) = (
                    self.resolve(conversation, from)?,
                    self.resolve(conversation, to)?,
                ) else {
                    return Ok(Vec::new());
                };
                // From the first selector towards the second, whichever is later.
                let forward = match (from, to) {
                    (Bound::Message(f), Bound::Message(t)) => f <= t,
                    _ => match (from.time(), to.time()) {
                        (Some(f), Some(t)) => f <= t,
                        (None, _) => true,
                        (_, None) => false,
                    },
                };
                let conditions = [from.condition(!forward), to.condition(forward)];
                select(self, &conditions, !forward, *limit)
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
        // Strictly between the two times, as sequence numbers.
        let (first, end) = (Seq::at(low.saturating_add(1)), Seq::at(high));
        let mut keys: Vec<String> = targets.to_vec();
        if let Some(me) = participant {
            // Direct keys are `a b`: the participant is the first or the last word.
            // substr, not LIKE: `_` in a nick would be a LIKE wildcard.
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT key FROM conversations
                     WHERE substr(key, 1, length(?1) + 1) = ?1 || ' '
                        OR substr(key, -(length(?1) + 1)) = ' ' || ?1",
                )
                .map_err(StoreError::sqlite("cannot query targets"))?;
            let direct = stmt
                .query_map(params![me], |r| r.get::<_, String>(0))
                .map_err(StoreError::sqlite("cannot query targets"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite("cannot read targets"))?;
            for key in direct {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let mut found: Vec<TargetActivity> = Vec::new();
        for key in keys {
            let Some(conversation) = self.conversation(&key)? else {
                continue;
            };
            let latest: Option<i64> = self
                .conn
                .prepare_cached(
                    "SELECT max(seq) FROM history WHERE conversation = ?1 AND seq >= ?2 AND seq < ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![conversation, first.raw(), end.raw()], |r| r.get(0))
                })
                .map_err(StoreError::sqlite("cannot query targets"))?;
            if let Some(latest) = latest {
                found.push(TargetActivity {
                    target: key,
                    latest_ms: Seq::from_raw(latest).time_ms(),
                });
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
                .prepare_cached(
                    "SELECT h.seq, h.body, c.key FROM offline_queue o
                     JOIN history h ON h.seq = o.seq
                     JOIN conversations c ON c.id = h.conversation
                     WHERE o.account = ?1 ORDER BY o.seq",
                )
                .map_err(StoreError::sqlite("cannot read offline messages"))?;
            let rows = stmt
                .query_map(params![account], |r| message_from_row(r, r.get(2)?))
                .map_err(StoreError::sqlite("cannot read offline messages"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite("cannot read offline messages"))?
        };
        tx.execute(
            "DELETE FROM offline_queue WHERE account = ?1",
            params![account],
        )
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

    fn last_seq(&mut self) -> Result<Option<Seq>, StoreError> {
        let last: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM history", [], |r| r.get(0))
            .map_err(StoreError::sqlite("cannot read the last message"))?;
        Ok(last.map(Seq::from_raw))
    }

    fn prune(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        let end = Seq::at(before_ms).raw();
        let tx = self
            .conn
            .transaction()
            .map_err(StoreError::sqlite("cannot start pruning history"))?;
        let deleted = tx
            .execute("DELETE FROM history WHERE seq < ?1", params![end])
            .map_err(StoreError::sqlite("cannot prune history"))?;
        for sql in [
            "DELETE FROM offline_queue WHERE seq < ?1",
            "DELETE FROM legacy_msgids WHERE seq < ?1",
        ] {
            tx.execute(sql, params![end])
                .map_err(StoreError::sqlite("cannot prune history"))?;
        }
        tx.commit()
            .map_err(StoreError::sqlite("cannot commit pruning history"))?;
        Ok(deleted)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written by a natter from before schema 2: rows numbered by an
    /// autoincrement, msgids of another shape, one offline message.
    fn version_one_database(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for (n, target) in [(1, "#room"), (2, "alice bob"), (3, "#room")] {
            conn.execute(
                "INSERT INTO messages
                 (msgid, time_ms, target, command, source, account, recipient, text, client_tags)
                 VALUES (?1, ?2, ?3, 'PRIVMSG', 'alice!a@h', ?4, 'x', ?5, '+draft/react=1')",
                params![
                    format!("19abc-{n}"),
                    1_000 * n,
                    target,
                    (n == 1).then_some("alice"),
                    format!("text {n}")
                ],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO offline (account, message_seq) VALUES ('bob', 2)",
            [],
        )
        .unwrap();
    }

    #[test]
    fn a_version_one_database_keeps_its_history_and_msgids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("natter.db");
        version_one_database(&path);
        let mut store = SqliteStore::open(&path).unwrap();
        let all = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 10,
        };
        let room = store.history("#room", &all).unwrap();
        let texts: Vec<&str> = room.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["text 1", "text 3"]);
        assert_eq!(room[0].msgid, "19abc-1");
        assert_eq!(room[0].time_ms(), 1_000);
        assert_eq!(room[0].account.as_deref(), Some("alice"));
        assert_eq!(room[1].account, None);
        assert_eq!(room[1].client_tags, "+draft/react=1");
        // The old msgids still select.
        let after_first = HistoryQuery::After {
            at: Selector::Msgid("19abc-1".into()),
            limit: 10,
        };
        assert_eq!(store.history("#room", &after_first).unwrap().len(), 1);
        let offline = store.take_offline("bob").unwrap();
        assert_eq!(offline.len(), 1);
        assert_eq!(offline[0].target, "alice bob");
        assert_eq!(store.last_seq().unwrap(), Some(room[1].seq));
        // New messages go after the old ones.
        let next = room[1].seq.next(0);
        let mut new = room[1].clone();
        new.seq = next;
        new.msgid = next.msgid();
        store
            .write(&[Write::Message {
                message: new,
                offline_for: Vec::new(),
            }])
            .unwrap();
        assert_eq!(store.history("#room", &all).unwrap().len(), 3);
    }

    #[test]
    fn the_conversation_cache_stays_bounded_and_right() {
        let mut store = SqliteStore::in_memory().unwrap();
        let message = |n: i64, target: String| {
            let seq = Seq::at(n);
            Write::Message {
                message: StoredMessage {
                    seq,
                    msgid: seq.msgid(),
                    target,
                    command: "PRIVMSG".into(),
                    source: "a!b@c".into(),
                    account: None,
                    recipient: "x".into(),
                    text: format!("text {n}"),
                    client_tags: String::new(),
                },
                offline_for: Vec::new(),
            }
        };
        let count = MAX_KNOWN_CONVERSATIONS as i64 + 10;
        let batch: Vec<Write> = (0..count).map(|n| message(n, format!("a n{n}"))).collect();
        store.write(&batch).unwrap();
        assert!(store.conversations.len() <= MAX_KNOWN_CONVERSATIONS);
        // An early conversation, forgotten by the cache, still gets its own id.
        store.write(&[message(count, "a n3".into())]).unwrap();
        let all = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 10,
        };
        let texts: Vec<String> = store
            .history("a n3", &all)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["text 3", format!("text {count}").as_str()]);
    }

    #[test]
    fn a_text_holding_a_line_feed_reads_back_whole() {
        let seq = Seq::at(5);
        let m = StoredMessage {
            seq,
            msgid: seq.msgid(),
            target: "#r".into(),
            command: "PRIVMSG".into(),
            source: "a!b@c".into(),
            account: None,
            recipient: "#r".into(),
            text: "one\ntwo".into(),
            client_tags: String::new(),
        };
        assert_eq!(body::decode(seq, "#r".into(), &body::encode(&m)), m);
    }
}
