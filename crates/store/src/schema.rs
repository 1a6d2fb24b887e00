//! The SQLite schema and its migrations, applied in order at open.

use rusqlite::{params, Transaction};

use crate::chunk::ChunkBuilder;
use crate::model::{MessageParts, Seq, StoredMessage};

/// One step of the schema: SQL, or code where SQL cannot say it (re-encoding rows).
pub enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction<'_>) -> rusqlite::Result<()>),
}

impl Migration {
    pub fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        match self {
            Migration::Sql(sql) => tx.execute_batch(sql),
            Migration::Code(step) => step(tx),
        }
    }
}

/// Each entry moves the schema one version forward; `PRAGMA user_version` records how
/// far a file has come. Never edit a released entry: add a new one.
pub const MIGRATIONS: &[Migration] = &[
    // 1: accounts, history, offline queues, read markers.
    Migration::Sql(
        "
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        msgid TEXT NOT NULL UNIQUE,
        time_ms INTEGER NOT NULL,
        target TEXT NOT NULL,
        command TEXT NOT NULL,
        source TEXT NOT NULL,
        account TEXT,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        client_tags TEXT NOT NULL
    );
    CREATE INDEX messages_by_target ON messages (target, seq);
    CREATE INDEX messages_by_time ON messages (time_ms);
    CREATE TABLE offline (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        message_seq INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE
    );
    CREATE INDEX offline_by_account ON offline (account, seq);
    CREATE TABLE read_markers (
        account TEXT NOT NULL,
        target TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        PRIMARY KEY (account, target)
    );
    ",
    ),
    // 2: history as one append-only table numbered by `Seq` (time and order in one
    // number, the msgid derived from it), with one index, by conversation. A message
    // costs one row and one index entry instead of a row and three index entries.
    // Messages kept before keep their msgids through `legacy_msgids`.
    Migration::Sql(
        "
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE
    );
    INSERT INTO conversations (key) SELECT DISTINCT target FROM messages ORDER BY target;
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY,
        conversation INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    INSERT INTO history (seq, conversation, body)
        SELECT (m.time_ms << 20) | (m.seq & 1048575), c.id,
               m.msgid || char(10) || m.command || char(10) || m.source || char(10)
               || coalesce(m.account, '') || char(10) || m.recipient || char(10)
               || m.client_tags || char(10) || m.text
        FROM messages m JOIN conversations c ON c.key = m.target;
    -- seq is the rowid, which every index entry ends with: this orders by
    -- (conversation, seq) without storing seq twice.
    CREATE INDEX history_by_conversation ON history (conversation);
    CREATE TABLE legacy_msgids (
        msgid TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO legacy_msgids (msgid, seq)
        SELECT msgid, (time_ms << 20) | (seq & 1048575) FROM messages;
    CREATE TABLE offline_queue (
        account TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (account, seq)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO offline_queue (account, seq)
        SELECT o.account, (m.time_ms << 20) | (m.seq & 1048575)
        FROM offline o JOIN messages m ON m.seq = o.message_seq;
    DROP TABLE offline;
    DROP TABLE messages;
    ",
    ),
    // 3: history in chunks, see `chunk_history`.
    Migration::Code(chunk_history),
];

/// Schema 3: history in chunks, one row for the messages of one conversation written
/// by one commit (`crate::chunk`), keyed by the last message's `Seq`, with one index
/// entry on (conversation, last_seq). Under load a commit writes one row per
/// conversation instead of one per message. The offline queue names each message's
/// conversation, the way to its chunk. The rows of schema 2 are grouped into chunks as
/// new writes would have made them: consecutive messages of a conversation.
fn chunk_history(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        CREATE TABLE history_chunks (
            last_seq INTEGER PRIMARY KEY,
            conversation INTEGER NOT NULL,
            first_seq INTEGER NOT NULL,
            count INTEGER NOT NULL,
            body BLOB NOT NULL
        );
        -- last_seq is the rowid, which every index entry ends with: this orders by
        -- (conversation, last_seq) without storing it twice.
        CREATE INDEX history_chunks_by_conversation ON history_chunks (conversation);
        CREATE TABLE offline_queue_3 (
            account TEXT NOT NULL,
            seq INTEGER NOT NULL,
            conversation INTEGER NOT NULL,
            PRIMARY KEY (account, seq)
        ) WITHOUT ROWID;
        INSERT INTO offline_queue_3 (account, seq, conversation)
            SELECT o.account, o.seq, h.conversation
            FROM offline_queue o JOIN history h ON h.seq = o.seq;
        DROP TABLE offline_queue;
        ALTER TABLE offline_queue_3 RENAME TO offline_queue;
        ",
    )?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO history_chunks (last_seq, conversation, first_seq, count, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut write = |conversation: i64, builder: &ChunkBuilder| match builder.parts() {
            Some((first, last, count, body)) => insert
                .execute(params![
                    last.raw(),
                    conversation,
                    first.raw(),
                    count as i64,
                    body
                ])
                .map(|_| ()),
            None => Ok(()),
        };
        let mut read =
            tx.prepare("SELECT conversation, seq, body FROM history ORDER BY conversation, seq")?;
        let mut rows = read.query([])?;
        let mut builder = ChunkBuilder::new();
        let mut current = None;
        while let Some(row) = rows.next()? {
            let conversation: i64 = row.get(0)?;
            let seq = Seq::from_raw(row.get(1)?);
            let body: String = row.get(2)?;
            if current != Some(conversation) || !builder.fits(seq) {
                if let Some(previous) = current {
                    write(previous, &builder)?;
                }
                builder.clear();
                current = Some(conversation);
            }
            builder.push(&schema_two_body(seq, &body));
        }
        if let Some(previous) = current {
            write(previous, &builder)?;
        }
    }
    tx.execute_batch("DROP TABLE history;")
}

/// A message from its schema 2 body: the fields but its number and conversation,
/// joined by LF, the text last (so that a text holding one reads back whole).
pub(crate) fn schema_two_body(seq: Seq, body: &str) -> StoredMessage {
    let mut fields = body.splitn(7, '\n');
    let mut next = || fields.next().unwrap_or("");
    let msgid = next();
    let command = next();
    let source = next();
    let account = Some(next()).filter(|a| !a.is_empty());
    let recipient = next();
    let client_tags = next();
    let text = next();
    StoredMessage::new(
        seq,
        MessageParts {
            msgid: Some(msgid),
            // Not kept in the chunk: the conversation is its column.
            target: "",
            command,
            source,
            account,
            recipient,
            text,
            client_tags,
        },
    )
}
