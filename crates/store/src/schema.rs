//! The SQLite schema and its migrations, applied in order at open.

/// Each entry moves the schema one version forward; `PRAGMA user_version` records how
/// far a file has come. Never edit a released entry: add a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: accounts, history, offline queues, read markers.
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
    // 2: history as one append-only table numbered by `Seq` (time and order in one
    // number, the msgid derived from it), with one index, by conversation. A message
    // costs one row and one index entry instead of a row and three index entries.
    // Messages kept before keep their msgids through `legacy_msgids`.
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
];
