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
];
