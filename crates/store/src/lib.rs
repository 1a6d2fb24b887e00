//! natter's memory: accounts, history, offline messages and read markers.
//!
//! [`Store`] is the interface the server's store thread calls; [`SqliteStore`] is the
//! embedded default (one file in the data directory, WAL, no setup). The trait is
//! synchronous and takes `&mut self` because one thread owns the store and groups many
//! writes into one transaction ([`Store::write`]): that is what makes durability cheap.
//! A PostgreSQL implementation fits the same shape.

#[cfg(feature = "sqlite")]
mod chunk;
mod error;
mod model;
#[cfg(feature = "sqlite")]
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use error::StoreError;
pub use model::{
    Account, HistoryQuery, MessageParts, MsgId, Selector, Seq, StoredMessage, TargetActivity, Write,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// What natter needs from a store.
pub trait Store: Send {
    /// Applies every write in one transaction: all of them are durable when this
    /// returns `Ok`, none of them when it returns `Err`.
    fn write(&mut self, batch: &[Write]) -> Result<(), StoreError> {
        self.write_all(&[batch])
    }

    /// Applies the writes of several batches, in order, in one transaction, as
    /// [`Store::write`] would their writes one after another: a group commit takes
    /// the batches as they came, without gathering their writes into one list.
    fn write_all(&mut self, batches: &[&[Write]]) -> Result<(), StoreError>;

    /// Messages of one conversation (a folded room name, or a direct conversation key
    /// from [`StoredMessage::direct_key`]), oldest first.
    fn history(
        &mut self,
        target: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// Conversations among `targets`, and the direct conversations `participant`
    /// (a folded account or nick) took part in, with a message between `from_ms` and
    /// `to_ms`, most recent first: for CHATHISTORY TARGETS.
    fn active_targets(
        &mut self,
        targets: &[String],
        participant: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<TargetActivity>, StoreError>;

    /// Takes an account's offline messages, oldest first. Taken messages are gone
    /// from the queue once this returns, so each is delivered exactly once.
    fn take_offline(&mut self, account: &str) -> Result<Vec<StoredMessage>, StoreError>;

    /// Creates an account; `false` when the name is taken.
    fn create_account(&mut self, account: &Account) -> Result<bool, StoreError>;

    /// An account by its folded name.
    fn account(&mut self, name: &str) -> Result<Option<Account>, StoreError>;

    /// Replaces an account's password hash; `false` when there is no such account.
    fn set_password(&mut self, name: &str, password_hash: &str) -> Result<bool, StoreError>;

    /// Deletes an account with its offline messages and read markers; `false` when
    /// there is no such account.
    fn delete_account(&mut self, name: &str) -> Result<bool, StoreError>;

    /// Every account, by name.
    fn accounts(&mut self) -> Result<Vec<Account>, StoreError>;

    /// The time (ms since the epoch) up to which an account has read a conversation.
    fn read_marker(&mut self, account: &str, target: &str) -> Result<Option<i64>, StoreError>;

    /// The newest message kept, if any: the hub numbers new messages after it.
    fn last_seq(&mut self) -> Result<Option<Seq>, StoreError>;

    /// Deletes messages older than `before_ms`; returns how many.
    fn prune(&mut self, before_ms: i64) -> Result<usize, StoreError>;
}
