//! The embedded store: one SQLite file, WAL mode, every write batch one transaction.
//!
//! History is kept in chunks (`crate::chunk`): the messages of one conversation that
//! one transaction writes go into one row of `history_chunks`, keyed by the last one's
//! `Seq`, with one index entry on (conversation, last_seq). The chunks of a
//! conversation never overlap, so every history query is a range scan of that index
//! that decodes the chunks it meets.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::chunk::{self, ChunkBuilder, ChunkColumns, MessageView};
use crate::error::StoreError;
use crate::model::{Account, HistoryQuery, Selector, Seq, StoredMessage, TargetActivity, Write};
use crate::schema::MIGRATIONS;
use crate::Store;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Conversations = FastMap<String, i64>;

/// Conversation ids kept in memory at most. Anyone can start conversations (a new
/// nick is a new one), so the cache is bounded: when full it starts again, and the
/// ids are read back from the table as they are needed.
const MAX_KNOWN_CONVERSATIONS: usize = 65_536;

/// Bytes per database page for a new database. Under load a commit writes one chunk
/// per conversation of up to a few hundred messages: with SQLite's 4096-byte pages
/// the larger chunks spill into overflow pages and every commit writes more, smaller
/// pages. Writing 200,000 direct messages in 50 conversations, in commits of 1,650,
/// took 0.32-0.38 s of CPU with 4096-byte pages and 0.27-0.28 s with 8192 (the same for
/// commits of 200); larger pages saved little more and made small commits slower.
const PAGE_SIZE: u32 = 8192;

fn remember(known: &mut Conversations, key: &str, id: i64) {
    if known.len() >= MAX_KNOWN_CONVERSATIONS {
        known.clear();
    }
    known.insert(key.to_owned(), id);
}

/// Adds what was being done to a SQLite error.
trait Context<T> {
    fn context(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn context(self, what: &str) -> Result<T, StoreError> {
        // Lazily: the text is made only on failure.
        self.map_err(|e| StoreError::sqlite(what)(e))
    }
}

/// A chunk row: its columns and its body.
struct ChunkRow {
    conversation: i64,
    columns: ChunkColumns,
    body: Vec<u8>,
}

impl ChunkRow {
    /// Reads `last_seq, conversation, first_seq, count, body` from a row.
    fn read(r: &Row<'_>) -> rusqlite::Result<ChunkRow> {
        Ok(ChunkRow {
            columns: ChunkColumns {
                last: r.get(0)?,
                first: r.get(2)?,
                count: r.get(3)?,
            },
            conversation: r.get(1)?,
            body: r.get(4)?,
        })
    }

    fn messages(&self) -> Result<Vec<MessageView<'_>>, StoreError> {
        let mut views = Vec::new();
        decode(self.conversation, self.columns, &self.body, &mut views)?;
        Ok(views)
    }
}

/// Decodes a chunk, saying which one when it is damaged.
fn decode<'a>(
    conversation: i64,
    columns: ChunkColumns,
    body: &'a [u8],
    out: &mut Vec<MessageView<'a>>,
) -> Result<(), StoreError> {
    chunk::decode(columns, body, out).map_err(|why| {
        StoreError::new(format!(
            "the history chunk ending at seq {} of conversation {conversation} is damaged: {why}",
            columns.last
        ))
    })
}

const CHUNK_COLUMNS: &str = "last_seq, conversation, first_seq, count, body";

/// The chunk of a conversation that holds `seq` if any message does: the first one
/// ending at or after it.
fn chunk_at(tx: &Connection, conversation: i64, seq: i64) -> Result<Option<ChunkRow>, StoreError> {
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM history_chunks
         WHERE conversation = ?1 AND last_seq >= ?2 ORDER BY last_seq LIMIT 1"
    );
    tx.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(params![conversation, seq], ChunkRow::read)
                .optional()
        })
        .context("cannot read history")
        .map(|row| row.filter(|row| row.columns.first <= seq))
}

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    /// Conversation key → its row id: every message names its conversation, and
    /// there are few conversations. (foldhash: looked up for every message, with
    /// keys made of nicks that clients choose.)
    conversations: Conversations,
    /// Not less than the greatest `Seq` in history, once read: a message after it
    /// cannot be there yet, so it is appended without looking. (The hub numbers
    /// messages in order, so that is nearly every message.)
    stored_up_to: Option<i64>,
    /// The messages of the transaction being written, kept from one to the next.
    pending: Pending,
}

/// A selector resolved against the conversation: a message, or a time.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Message(Seq),
    Time(i64),
    Unbounded,
}

/// Sequence numbers from `low` to `high`, both included.
#[derive(Clone, Copy, Debug)]
struct Range {
    low: i64,
    high: i64,
}

impl Range {
    const ALL: Range = Range {
        low: i64::MIN,
        high: i64::MAX,
    };

    fn only(seq: Seq) -> Range {
        Range {
            low: seq.raw(),
            high: seq.raw(),
        }
    }

    fn and(self, other: Range) -> Range {
        Range {
            low: self.low.max(other.low),
            high: self.high.min(other.high),
        }
    }

    fn holds(self, seq: Seq) -> bool {
        (self.low..=self.high).contains(&seq.raw())
    }
}

impl Bound {
    fn time(self) -> Option<i64> {
        match self {
            Bound::Message(seq) => Some(seq.time_ms()),
            Bound::Time(time_ms) => Some(time_ms),
            Bound::Unbounded => None,
        }
    }

    /// The sequence numbers strictly before (or after) this bound. A time is a range
    /// of sequence numbers: before `t` is below its first, after `t` is from the first
    /// of the next millisecond.
    fn beyond(self, before: bool) -> Range {
        match (self, before) {
            (Bound::Message(seq), true) => Range {
                low: i64::MIN,
                high: seq.raw().saturating_sub(1),
            },
            (Bound::Message(seq), false) => Range {
                low: seq.raw().saturating_add(1),
                high: i64::MAX,
            },
            (Bound::Time(t), true) => Range {
                low: i64::MIN,
                high: Seq::at(t).raw() - 1,
            },
            (Bound::Time(t), false) => Range {
                low: Seq::at(t.saturating_add(1)).raw(),
                high: i64::MAX,
            },
            (Bound::Unbounded, _) => Range::ALL,
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
        // The page size applies only to a database with nothing in it yet, so it comes
        // first; an existing database keeps the size it was made with (4096 before
        // this setting), which SQLite cannot change in WAL mode.
        conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
            .context("cannot configure the database")?;
        // WAL lets readers run beside the writer; synchronous=FULL makes a commit
        // survive a power cut, not only a killed process: acknowledged means kept.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .context("cannot configure the database")?;
        conn.set_prepared_statement_cache_capacity(32);
        let mut store = SqliteStore {
            conn,
            conversations: Conversations::default(),
            stored_up_to: None,
            pending: Pending::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .context("cannot read the schema version")?;
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
                .context("cannot start a migration")?;
            migration
                .apply(&tx)
                .map_err(StoreError::sqlite(format!("migration {} failed", i + 1)))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .context("cannot record the schema version")?;
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
            .context("cannot start the backup")?;
        backup
            .run_to_completion(256, std::time::Duration::from_millis(0), None)
            .context("the backup failed")
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
            .context("cannot look up a conversation")?;
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
                        .context("cannot look up a message id")?,
                };
                let Some(seq) = seq else {
                    return Ok(None);
                };
                // The message must be in this conversation.
                let found = match chunk_at(&self.conn, conversation, seq)? {
                    Some(chunk) => chunk
                        .messages()?
                        .binary_search_by_key(&seq, |m| m.seq.raw())
                        .is_ok(),
                    None => false,
                };
                if !found {
                    return Ok(None);
                }
                Bound::Message(Seq::from_raw(seq))
            }
        }))
    }

    /// Messages of a conversation in `range`, the `limit` nearest to its end (newest
    /// first) or to its start, returned oldest first.
    fn select(
        &self,
        conversation: i64,
        target: &str,
        range: Range,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut messages = Vec::new();
        if limit == 0 || range.low > range.high {
            return Ok(messages);
        }
        let mut take = |chunk: &ChunkRow| -> Result<bool, StoreError> {
            let views = chunk.messages()?;
            let wanted = views.iter().filter(|m| range.holds(m.seq));
            let room = limit - messages.len();
            if newest_first {
                messages.extend(wanted.rev().take(room).map(|m| m.to_message(target)));
            } else {
                messages.extend(wanted.take(room).map(|m| m.to_message(target)));
            }
            Ok(messages.len() == limit)
        };
        if newest_first {
            // From the chunk that holds the end of the range (if one does) down.
            let top = chunk_at(&self.conn, conversation, range.high)?
                .map_or(range.high, |c| c.columns.last);
            let sql = format!(
                "SELECT {CHUNK_COLUMNS} FROM history_chunks
                 WHERE conversation = ?1 AND last_seq >= ?2 AND last_seq <= ?3
                 ORDER BY last_seq DESC"
            );
            let mut stmt = self
                .conn
                .prepare_cached(&sql)
                .context("cannot query history")?;
            let mut rows = stmt
                .query(params![conversation, range.low, top])
                .context("cannot query history")?;
            while let Some(row) = rows.next().context("cannot read history")? {
                let chunk = ChunkRow::read(row).context("cannot read history")?;
                if take(&chunk)? || chunk.columns.first <= range.low {
                    break;
                }
            }
        } else {
            let sql = format!(
                "SELECT {CHUNK_COLUMNS} FROM history_chunks
                 WHERE conversation = ?1 AND last_seq >= ?2 ORDER BY last_seq"
            );
            let mut stmt = self
                .conn
                .prepare_cached(&sql)
                .context("cannot query history")?;
            let mut rows = stmt
                .query(params![conversation, range.low])
                .context("cannot query history")?;
            while let Some(row) = rows.next().context("cannot read history")? {
                let chunk = ChunkRow::read(row).context("cannot read history")?;
                if chunk.columns.first > range.high || take(&chunk)? {
                    break;
                }
            }
        }
        if newest_first {
            messages.reverse();
        }
        Ok(messages)
    }

    /// Runs the writes of one transaction, learning the ids of new conversations.
    fn apply_all(&mut self, batches: &[&[Write]]) -> Result<(), StoreError> {
        let stored_up_to = match self.stored_up_to {
            Some(seq) => seq,
            None => self.last_seq()?.map_or(i64::MIN, Seq::raw),
        };
        let tx = self.conn.transaction().context("cannot start a write")?;
        self.pending.clear();
        let mut writer = BatchWriter {
            tx: &tx,
            stored_up_to,
            pending: &mut self.pending,
            conversations: &mut self.conversations,
        };
        for (b, batch) in batches.iter().enumerate() {
            for (i, write) in batch.iter().enumerate() {
                writer.apply(write, Place { batch: b, index: i })?;
            }
        }
        writer.flush(batches)?;
        let written_up_to = self.pending.newest.max(stored_up_to);
        tx.commit().context("cannot commit")?;
        self.stored_up_to = Some(written_up_to);
        Ok(())
    }
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

/// The new messages of one transaction, by conversation, until they are written as
/// chunks when it ends. Buffers are kept from one transaction to the next.
#[derive(Default)]
struct Pending {
    /// Conversation id → its entry in `conversations`.
    index: FastMap<i64, usize>,
    /// The first `in_use` are this transaction's.
    conversations: Vec<PendingConversation>,
    in_use: usize,
    /// The greatest `Seq` added.
    newest: i64,
    builder: ChunkBuilder,
}

/// Where a write is among the batches of a transaction.
#[derive(Clone, Copy)]
struct Place {
    batch: usize,
    index: usize,
}

impl Place {
    fn of<'w>(self, batches: &[&'w [Write]]) -> Option<&'w Write> {
        batches.get(self.batch)?.get(self.index)
    }
}

struct PendingConversation {
    id: i64,
    /// (seq, the message's place among the transaction's writes).
    messages: Vec<(Seq, Place)>,
    newest: Seq,
    in_order: bool,
}

impl Pending {
    fn clear(&mut self) {
        self.index.clear();
        self.in_use = 0;
        self.newest = i64::MIN;
    }

    /// Adds a message newer than everything in history, the write at `place` among
    /// the transaction's; `false` if this transaction already holds it.
    fn add(&mut self, conversation: i64, m: &StoredMessage, place: Place) -> bool {
        let slot = match self.index.get(&conversation) {
            Some(slot) => *slot,
            None => {
                if self.in_use == self.conversations.len() {
                    self.conversations.push(PendingConversation {
                        id: conversation,
                        messages: Vec::new(),
                        newest: Seq::from_raw(i64::MIN),
                        in_order: true,
                    });
                }
                let entry = &mut self.conversations[self.in_use];
                entry.id = conversation;
                entry.messages.clear();
                entry.newest = Seq::from_raw(i64::MIN);
                entry.in_order = true;
                self.index.insert(conversation, self.in_use);
                self.in_use += 1;
                self.in_use - 1
            }
        };
        let entry = &mut self.conversations[slot];
        if entry.newest >= m.seq {
            // Out of order (never from the hub, which numbers in order).
            if entry.messages.iter().any(|(seq, _)| *seq == m.seq) {
                return false;
            }
            entry.in_order = false;
        }
        entry.newest = entry.newest.max(m.seq);
        entry.messages.push((m.seq, place));
        self.newest = self.newest.max(m.seq.raw());
        true
    }
}

/// The writes of one transaction. Messages are nearly every write: each
/// conversation's are gathered and written as chunks at the end; any other write is
/// done in its turn.
struct BatchWriter<'t> {
    tx: &'t Transaction<'t>,
    /// From [`SqliteStore::stored_up_to`] when the transaction began.
    stored_up_to: i64,
    pending: &'t mut Pending,
    conversations: &'t mut Conversations,
}

impl BatchWriter<'_> {
    fn apply(&mut self, write: &Write, place: Place) -> Result<(), StoreError> {
        let tx = self.tx;
        let fail = "cannot commit";
        match write {
            Write::Message {
                message: m,
                offline_for,
            } => {
                let conversation =
                    conversation_id(tx, self.conversations, m.target()).context(fail)?;
                let added = if m.seq.raw() > self.stored_up_to {
                    self.pending.add(conversation, m, place)
                } else {
                    self.add_older(conversation, m)?
                };
                // A message is written once: writing it again changes nothing.
                if added && !offline_for.is_empty() {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO offline_queue (account, seq, conversation)
                             VALUES (?1, ?2, ?3)",
                        )
                        .context(fail)?;
                    for account in offline_for {
                        stmt.execute(params![account, m.seq.raw(), conversation])
                            .context(fail)?;
                    }
                }
            }
            Write::Account(a) => {
                let sql = "INSERT OR REPLACE INTO accounts
                           (name, display_name, password_hash, created_ms)
                           VALUES (?1, ?2, ?3, ?4)";
                tx.prepare_cached(sql)
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            a.name,
                            a.display_name,
                            a.password_hash,
                            a.created_ms
                        ])
                    })
                    .context(fail)?;
            }
            Write::DeleteAccount { name } => {
                for sql in [
                    "DELETE FROM accounts WHERE name = ?1",
                    "DELETE FROM offline_queue WHERE account = ?1",
                    "DELETE FROM read_markers WHERE account = ?1",
                ] {
                    tx.prepare_cached(sql)
                        .and_then(|mut stmt| stmt.execute(params![name]))
                        .context(fail)?;
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
                tx.prepare_cached(sql)
                    .and_then(|mut stmt| stmt.execute(params![account, target, time_ms]))
                    .context(fail)?;
            }
        }
        Ok(())
    }

    /// Writes a message that may be older than history's newest, at once: into the
    /// chunk whose range holds it (rewritten), or as a chunk of its own between the
    /// others. `false` if history already holds it.
    fn add_older(&mut self, conversation: i64, m: &StoredMessage) -> Result<bool, StoreError> {
        let fail = "cannot commit";
        let seq = m.seq.raw();
        let Some(chunk) = chunk_at(self.tx, conversation, seq)? else {
            let builder = &mut self.pending.builder;
            builder.clear();
            builder.push(m);
            // Ignored if another conversation's chunk ends at this seq: a seq names
            // one message.
            let written = insert_chunk(self.tx, conversation, builder, true).context(fail)?;
            return Ok(written);
        };
        let views = chunk.messages()?;
        let Err(at) = views.binary_search_by_key(&seq, |v| v.seq.raw()) else {
            return Ok(false);
        };
        let mut messages: Vec<StoredMessage> = views.iter().map(|v| v.to_message("")).collect();
        messages.insert(at, m.clone());
        let builder = &mut self.pending.builder;
        builder.clear();
        for message in &messages {
            builder.push(message);
        }
        rewrite_chunk(self.tx, chunk.columns.last, builder).context(fail)?;
        Ok(true)
    }

    /// Writes the gathered messages: each conversation's in `Seq` order, in chunks
    /// of at most `chunk::MAX_MESSAGES` spanning at most `chunk::MAX_SPAN_MS`.
    fn flush(&mut self, batches: &[&[Write]]) -> Result<(), StoreError> {
        let pending = &mut *self.pending;
        for entry in &mut pending.conversations[..pending.in_use] {
            if !entry.in_order {
                entry.messages.sort_by_key(|(seq, _)| *seq);
            }
            let builder = &mut pending.builder;
            builder.clear();
            for (seq, place) in &entry.messages {
                let Some(Write::Message { message, .. }) = place.of(batches) else {
                    continue;
                };
                if !builder.fits(*seq) {
                    insert_chunk(self.tx, entry.id, builder, false).context("cannot commit")?;
                    builder.clear();
                }
                builder.push(message);
            }
            insert_chunk(self.tx, entry.id, builder, false).context("cannot commit")?;
        }
        Ok(())
    }
}

/// Writes a chunk (none if empty); `or_ignore`: not if a chunk ends at the same seq.
/// Whether it was written.
fn insert_chunk(
    tx: &Transaction<'_>,
    conversation: i64,
    builder: &ChunkBuilder,
    or_ignore: bool,
) -> rusqlite::Result<bool> {
    let Some((first, last, count, body)) = builder.parts() else {
        return Ok(false);
    };
    let sql = if or_ignore {
        "INSERT OR IGNORE INTO history_chunks (last_seq, conversation, first_seq, count, body)
         VALUES (?1, ?2, ?3, ?4, ?5)"
    } else {
        "INSERT INTO history_chunks (last_seq, conversation, first_seq, count, body)
         VALUES (?1, ?2, ?3, ?4, ?5)"
    };
    let written = tx.prepare_cached(sql)?.execute(params![
        last.raw(),
        conversation,
        first.raw(),
        count as i64,
        body
    ])?;
    Ok(written == 1)
}

/// Replaces the messages of the chunk ending at `last` with those built (or deletes
/// it if none are left). Only messages older than the newest are ever added this way,
/// and only retention takes any away, so the chunk keeps its key.
fn rewrite_chunk(tx: &Transaction<'_>, last: i64, builder: &ChunkBuilder) -> rusqlite::Result<()> {
    match builder.parts() {
        Some((first, _, count, body)) => tx
            .prepare_cached(
                "UPDATE history_chunks SET first_seq = ?2, count = ?3, body = ?4
                 WHERE last_seq = ?1",
            )?
            .execute(params![last, first.raw(), count as i64, body]),
        None => tx
            .prepare_cached("DELETE FROM history_chunks WHERE last_seq = ?1")?
            .execute(params![last]),
    }
    .map(|_| ())
}

impl Store for SqliteStore {
    fn write_all(&mut self, batches: &[&[Write]]) -> Result<(), StoreError> {
        self.apply_all(batches).inspect_err(|_| {
            // Conversations learnt in a transaction that did not commit do not exist,
            // and what history holds is read again.
            self.conversations.clear();
            self.stored_up_to = None;
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
        let select = |store: &Self, range: Range, newest_first: bool, limit: usize| {
            store.select(conversation, target, range, newest_first, limit)
        };
        match query {
            HistoryQuery::Latest { after, limit } => {
                let Some(after) = self.resolve(conversation, after)? else {
                    return Ok(Vec::new());
                };
                select(self, after.beyond(false), true, *limit)
            }
            HistoryQuery::Before { at, limit } => {
                let Some(at) = self.resolve(conversation, at)? else {
                    return Ok(Vec::new());
                };
                select(self, at.beyond(true), true, *limit)
            }
            HistoryQuery::After { at, limit } => {
                let Some(at) = self.resolve(conversation, at)? else {
                    return Ok(Vec::new());
                };
                select(self, at.beyond(false), false, *limit)
            }
            HistoryQuery::Around { at, limit } => {
                let Some(bound) = self.resolve(conversation, at)? else {
                    return Ok(Vec::new());
                };
                let limit = (*limit).max(1);
                let mut middle = Vec::new();
                let mut room = limit;
                if let Bound::Message(seq) = bound {
                    middle = select(self, Range::only(seq), false, 1)?;
                    room -= middle.len();
                }
                let mut messages = select(self, bound.beyond(true), true, room / 2)?;
                let after_room = limit - messages.len() - middle.len();
                messages.extend(middle);
                // A time selects the messages at that time too, after the middle.
                let after = match bound {
                    Bound::Time(t) => Range {
                        low: Seq::at(t).raw(),
                        high: i64::MAX,
                    },
                    _ => bound.beyond(false),
                };
                messages.extend(select(self, after, false, after_room)?);
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
                let range = from.beyond(!forward).and(to.beyond(forward));
                select(self, range, !forward, *limit)
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
        let between = Range {
            low: Seq::at(low.saturating_add(1)).raw(),
            high: Seq::at(high).raw() - 1,
        };
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
                .context("cannot query targets")?;
            let direct = stmt
                .query_map(params![me], |r| r.get::<_, String>(0))
                .context("cannot query targets")?
                .collect::<Result<Vec<_>, _>>()
                .context("cannot read targets")?;
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
            let latest = self.select(conversation, &key, between, true, 1)?;
            if let Some(latest) = latest.first() {
                found.push(TargetActivity {
                    latest_ms: latest.time_ms(),
                    target: key,
                });
            }
        }
        found.sort_by_key(|a| std::cmp::Reverse(a.latest_ms));
        found.truncate(limit);
        Ok(found)
    }

    fn take_offline(&mut self, account: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let fail = "cannot read offline messages";
        let tx = self
            .conn
            .transaction()
            .context("cannot start taking offline messages")?;
        let mut queued: Vec<(i64, i64, String)> = tx
            .prepare_cached(
                "SELECT o.conversation, o.seq, c.key FROM offline_queue o
                 JOIN conversations c ON c.id = o.conversation
                 WHERE o.account = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![account], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .context(fail)?;
        // By conversation, so that the messages of one chunk are found by one read.
        queued.sort_unstable_by_key(|(conversation, seq, _)| (*conversation, *seq));
        let mut messages = Vec::with_capacity(queued.len());
        let mut rest = &queued[..];
        while let Some((conversation, seq, _)) = rest.first() {
            let Some(chunk) = chunk_at(&tx, *conversation, *seq)? else {
                // Gone with retention.
                rest = &rest[1..];
                continue;
            };
            let views = chunk.messages()?;
            let in_chunk = rest
                .iter()
                .take_while(|(c, s, _)| c == conversation && *s <= chunk.columns.last)
                .count();
            for (_, seq, key) in &rest[..in_chunk] {
                if let Ok(i) = views.binary_search_by_key(seq, |v| v.seq.raw()) {
                    messages.push(views[i].to_message(key));
                }
            }
            rest = &rest[in_chunk.max(1)..];
        }
        messages.sort_unstable_by_key(|m| m.seq);
        tx.execute(
            "DELETE FROM offline_queue WHERE account = ?1",
            params![account],
        )
        .context("cannot clear offline messages")?;
        tx.commit()
            .context("cannot commit taking offline messages")?;
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
            .context("cannot read the account")
    }

    fn set_password(&mut self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE accounts SET password_hash = ?2 WHERE name = ?1",
                params![name, password_hash],
            )
            .context("cannot set the password")?;
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
            .context("cannot list accounts")?;
        let rows = stmt
            .query_map([], account_from_row)
            .context("cannot list accounts")?;
        rows.collect::<Result<Vec<_>, _>>()
            .context("cannot list accounts")
    }

    fn read_marker(&mut self, account: &str, target: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT time_ms FROM read_markers WHERE account = ?1 AND target = ?2",
                params![account, target],
                |r| r.get(0),
            )
            .optional()
            .context("cannot read the read marker")
    }

    fn last_seq(&mut self) -> Result<Option<Seq>, StoreError> {
        let last: Option<i64> = self
            .conn
            .query_row("SELECT max(last_seq) FROM history_chunks", [], |r| r.get(0))
            .context("cannot read the last message")?;
        Ok(last.map(Seq::from_raw))
    }

    fn prune(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        let fail = "cannot prune history";
        let end = Seq::at(before_ms).raw();
        let tx = self
            .conn
            .transaction()
            .context("cannot start pruning history")?;
        let whole: i64 = tx
            .query_row(
                "SELECT coalesce(sum(count), 0) FROM history_chunks WHERE last_seq < ?1",
                params![end],
                |r| r.get(0),
            )
            .context(fail)?;
        tx.execute(
            "DELETE FROM history_chunks WHERE last_seq < ?1",
            params![end],
        )
        .context(fail)?;
        // The chunks that straddle the cut keep their newer messages. A chunk spans
        // `chunk::MAX_SPAN_MS` at most, so they all end soon after it.
        let straddling: Vec<ChunkRow> = tx
            .prepare(&format!(
                "SELECT {CHUNK_COLUMNS} FROM history_chunks
                 WHERE last_seq >= ?1 AND last_seq < ?2 AND first_seq < ?1"
            ))
            .and_then(|mut stmt| {
                let span_end = Seq::at(before_ms.saturating_add(chunk::MAX_SPAN_MS + 1));
                stmt.query_map(params![end, span_end.raw()], ChunkRow::read)?
                    .collect()
            })
            .context(fail)?;
        let mut partly = 0;
        let mut builder = ChunkBuilder::new();
        for chunk in &straddling {
            builder.clear();
            for view in chunk.messages()? {
                if view.seq.raw() < end {
                    partly += 1;
                } else {
                    builder.push(&view.to_message(""));
                }
            }
            rewrite_chunk(&tx, chunk.columns.last, &builder).context(fail)?;
        }
        for sql in [
            "DELETE FROM offline_queue WHERE seq < ?1",
            "DELETE FROM legacy_msgids WHERE seq < ?1",
        ] {
            tx.execute(sql, params![end]).context(fail)?;
        }
        tx.commit().context("cannot commit pruning history")?;
        Ok(usize::try_from(whole).unwrap_or(0) + partly)
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
    use crate::MessageParts;

    /// A database written by a natter from before schema 2: rows numbered by an
    /// autoincrement, msgids of another shape, one offline message.
    fn version_one_database(path: &Path) {
        let mut conn = Connection::open(path).unwrap();
        let tx = conn.transaction().unwrap();
        MIGRATIONS[0].apply(&tx).unwrap();
        tx.commit().unwrap();
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
        let texts: Vec<&str> = room.iter().map(StoredMessage::text).collect();
        assert_eq!(texts, ["text 1", "text 3"]);
        assert_eq!(room[0].msgid(), "19abc-1");
        assert_eq!(room[0].time_ms(), 1_000);
        assert_eq!(room[0].account(), Some("alice"));
        assert_eq!(room[1].account(), None);
        assert_eq!(room[1].client_tags(), "+draft/react=1");
        // The old msgids still select.
        let after_first = HistoryQuery::After {
            at: Selector::Msgid("19abc-1".into()),
            limit: 10,
        };
        assert_eq!(store.history("#room", &after_first).unwrap().len(), 1);
        let offline = store.take_offline("bob").unwrap();
        assert_eq!(offline.len(), 1);
        assert_eq!(offline[0].target(), "alice bob");
        assert_eq!(store.last_seq().unwrap(), Some(room[1].seq));
        // New messages go after the old ones.
        let next = room[1].seq.next(0);
        let msgid = next.msgid();
        let mut new = room[1].with(|m| m.msgid = Some(&msgid));
        new.seq = next;
        store
            .write(&[Write::Message {
                message: new,
                offline_for: Vec::new(),
            }])
            .unwrap();
        assert_eq!(store.history("#room", &all).unwrap().len(), 3);
    }

    fn page_size(store: &SqliteStore) -> u32 {
        store
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_database_takes_the_larger_page_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("new.db")).unwrap();
        assert_eq!(page_size(&store), PAGE_SIZE);
        drop(store);
        let reopened = SqliteStore::open(&dir.path().join("new.db")).unwrap();
        assert_eq!(page_size(&reopened), PAGE_SIZE);
        let old = dir.path().join("old.db");
        version_one_database(&old);
        let store = SqliteStore::open(&old).unwrap();
        assert_eq!(page_size(&store), 4096, "SQLite's default when it was made");
    }

    #[test]
    fn the_conversation_cache_stays_bounded_and_right() {
        let mut store = SqliteStore::in_memory().unwrap();
        let message = |n: i64, target: String| {
            let seq = Seq::at(n);
            Write::Message {
                message: StoredMessage::new(
                    seq,
                    MessageParts {
                        msgid: Some(&seq.msgid()),
                        target: &target,
                        command: "PRIVMSG",
                        source: "a!b@c",
                        account: None,
                        recipient: "x",
                        text: &format!("text {n}"),
                        client_tags: "",
                    },
                ),
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
            .map(|m| m.text().to_owned())
            .collect();
        assert_eq!(texts, ["text 3", format!("text {count}").as_str()]);
    }

    #[test]
    fn a_text_holding_a_line_feed_reads_back_whole() {
        let seq = Seq::at(5);
        let m = StoredMessage::example(seq, "#r", "one\ntwo");
        let mut store = SqliteStore::in_memory().unwrap();
        store
            .write(&[Write::Message {
                message: m.clone(),
                offline_for: Vec::new(),
            }])
            .unwrap();
        let all = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 10,
        };
        assert_eq!(store.history("#r", &all).unwrap(), [m]);
    }

    #[test]
    fn batches_written_together_read_back_as_their_writes_one_after_another() {
        // Two rooms, each with messages in both batches, and an account between them.
        let mut seq = Seq::at(1_000);
        let mut next = |room: &str, text: &str| {
            seq = seq.next(0);
            Write::Message {
                message: StoredMessage::example(seq, room, text),
                offline_for: Vec::new(),
            }
        };
        let first = vec![next("#a", "a1"), next("#b", "b1"), next("#a", "a2")];
        let account = Write::Account(Account {
            name: "alice".into(),
            display_name: "Alice".into(),
            password_hash: "hash".into(),
            created_ms: 1,
        });
        let second = vec![account, next("#b", "b2"), next("#a", "a3")];
        let mut together = SqliteStore::in_memory().unwrap();
        together.write_all(&[&first, &second]).unwrap();
        let mut one_list = SqliteStore::in_memory().unwrap();
        one_list
            .write(&[first.clone(), second.clone()].concat())
            .unwrap();
        let all = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 10,
        };
        for room in ["#a", "#b"] {
            let read = together.history(room, &all).unwrap();
            assert_eq!(read, one_list.history(room, &all).unwrap(), "{room}");
            let texts: Vec<&str> = read.iter().map(StoredMessage::text).collect();
            let expected: &[&str] = if room == "#a" {
                &["a1", "a2", "a3"]
            } else {
                &["b1", "b2"]
            };
            assert_eq!(texts, expected);
        }
        assert!(together.account("alice").unwrap().is_some());
        assert_eq!(together.last_seq().unwrap(), Some(seq));
    }

    fn room_message(seq: Seq, text: &str) -> Write {
        Write::Message {
            message: StoredMessage::example(seq, "#room", text),
            offline_for: Vec::new(),
        }
    }

    #[test]
    fn a_damaged_chunk_is_reported_not_misread() {
        let mut store = SqliteStore::in_memory().unwrap();
        let batch: Vec<Write> = (1..=10)
            .map(|n| room_message(Seq::at(n), &format!("text {n}")))
            .collect();
        store.write(&batch).unwrap();
        let all = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 10,
        };
        assert_eq!(store.history("#room", &all).unwrap().len(), 10);
        for damage in [
            "UPDATE history_chunks SET body = substr(body, 1, length(body) - 3)",
            "UPDATE history_chunks SET count = count + 1",
            "UPDATE history_chunks SET body = X'01'",
            "UPDATE history_chunks SET body = X'07'",
        ] {
            store
                .conn
                .execute_batch(&format!("BEGIN; {damage};"))
                .unwrap();
            let error = store.history("#room", &all).unwrap_err().to_string();
            assert!(error.contains("is damaged"), "{damage}: {error}");
            store.conn.execute_batch("ROLLBACK").unwrap();
        }
        assert_eq!(store.history("#room", &all).unwrap().len(), 10);
    }

    #[test]
    fn a_version_two_database_moves_into_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("natter.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            MIGRATIONS[0].apply(&tx).unwrap();
            MIGRATIONS[1].apply(&tx).unwrap();
            tx.commit().unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute_batch(
                "INSERT INTO conversations (id, key) VALUES (1, '#room'), (2, 'alice bob');",
            )
            .unwrap();
            // 300 messages of #room (more than a chunk holds), two direct ones, one
            // with a legacy msgid, an account, tags and a text holding a line feed.
            for n in 1..=300i64 {
                let seq = Seq::at(1_000 + n);
                conn.execute(
                    "INSERT INTO history (seq, conversation, body) VALUES (?1, 1, ?2)",
                    params![
                        seq.raw(),
                        format!("{}\nPRIVMSG\na!b@c\n\n#room\n\ntext {n}", seq.msgid())
                    ],
                )
                .unwrap();
            }
            for (n, body) in [
                (
                    5,
                    "19abc-2\nNOTICE\nalice!a@h\nalice\nbob\n+draft/react=1\none\ntwo",
                ),
                (400, "\nPRIVMSG\nalice!a@h\n\nbob\n\nlater"),
            ] {
                conn.execute(
                    "INSERT INTO history (seq, conversation, body) VALUES (?1, 2, ?2)",
                    params![Seq::at(n).raw(), body],
                )
                .unwrap();
            }
            conn.execute_batch(&format!(
                "INSERT INTO legacy_msgids (msgid, seq) VALUES ('19abc-2', {five});
                 INSERT INTO offline_queue (account, seq) VALUES ('bob', {five}), ('bob', {gone});",
                five = Seq::at(5).raw(),
                gone = Seq::at(6).raw(),
            ))
            .unwrap();
        }
        let mut store = SqliteStore::open(&path).unwrap();
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let all = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 1000,
        };
        let room = store.history("#room", &all).unwrap();
        assert_eq!(room.len(), 300);
        assert!(room.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(room[299].text(), "text 300");
        assert_eq!(room[299].msgid(), room[299].seq.msgid().as_str());
        let direct = store.history("alice bob", &all).unwrap();
        assert_eq!(direct.len(), 2);
        assert_eq!(direct[0].msgid(), "19abc-2");
        assert_eq!(direct[0].command(), "NOTICE");
        assert_eq!(direct[0].account(), Some("alice"));
        assert_eq!(direct[0].client_tags(), "+draft/react=1");
        assert_eq!(direct[0].text(), "one\ntwo");
        assert_eq!(direct[1].msgid(), "");
        let after_legacy = HistoryQuery::After {
            at: Selector::Msgid("19abc-2".into()),
            limit: 10,
        };
        assert_eq!(store.history("alice bob", &after_legacy).unwrap().len(), 1);
        // The queued message whose row was gone stays gone.
        let offline = store.take_offline("bob").unwrap();
        assert_eq!(offline.len(), 1);
        assert_eq!(offline[0].target(), "alice bob");
        assert_eq!(store.last_seq().unwrap(), Some(Seq::at(1_300)));
        let chunks: i64 = store
            .conn
            .query_row("SELECT count(*) FROM history_chunks", [], |r| r.get(0))
            .unwrap();
        // #room in two (256 and 44 messages), the direct conversation in one.
        assert_eq!(chunks, 2 + 1);
    }

    /// Not a measure (tests are not timed): shows that a long conversation still
    /// answers quickly. `cargo test -p natter-store --release latest_on_a_long -- --nocapture`
    #[test]
    fn latest_on_a_long_conversation() {
        let mut store = SqliteStore::in_memory().unwrap();
        let mut seq = Seq::at(1_000_000);
        for _ in 0..100 {
            let batch: Vec<Write> = (0..1_000)
                .map(|n| {
                    seq = seq.next(0);
                    room_message(seq, &format!("message {n} of a long conversation"))
                })
                .collect();
            store.write(&batch).unwrap();
        }
        let latest = HistoryQuery::Latest {
            after: Selector::Unbounded,
            limit: 100,
        };
        let started = std::time::Instant::now();
        let found = store.history("#room", &latest).unwrap();
        println!("LATEST * 100 of 100,000 messages: {:?}", started.elapsed());
        assert_eq!(found.len(), 100);
        let before = HistoryQuery::Before {
            at: Selector::Msgid(found[0].msgid().into_owned()),
            limit: 100,
        };
        let started = std::time::Instant::now();
        let page = store.history("#room", &before).unwrap();
        println!(
            "BEFORE msgid 100 of 100,000 messages: {:?}",
            started.elapsed()
        );
        assert_eq!(page.len(), 100);
        for sql in [
            "SELECT last_seq FROM history_chunks WHERE conversation = 1 AND last_seq >= 5 ORDER BY last_seq LIMIT 1",
            "SELECT last_seq FROM history_chunks WHERE conversation = 1 AND last_seq >= 5 AND last_seq <= 9 ORDER BY last_seq DESC",
        ] {
            let plan: Vec<String> = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            println!("{sql}: {plan:?}");
        }
    }
}
