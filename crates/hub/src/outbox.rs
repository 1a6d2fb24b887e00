//! What the hub asks its caller to do after an event.

use bytes::Bytes;

use crate::client::ClientId;

/// Work the hub cannot do itself because it has no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send what is queued for this client, then close its connection. The hub has
    /// already forgotten the client; a later [`crate::Hub::disconnect`] for it is a no-op.
    Close { client: ClientId },
    /// Check `password` against the Argon2id `hash` off the hub's thread, then call
    /// [`crate::Hub::password_checked`] with `ticket` and the outcome.
    VerifyPassword {
        client: ClientId,
        ticket: u64,
        password: String,
        hash: String,
    },
    /// Hash `password` with Argon2id off the hub's thread, then call
    /// [`crate::Hub::password_hashed`] with `ticket` and the PHC string.
    HashPassword { ticket: u64, password: String },
    /// Run a store job, then call [`crate::Hub::store_done`] with `ticket` and its
    /// outcome. Writes may be grouped into one transaction with other jobs' writes.
    Store {
        ticket: u64,
        job: crate::persistence::StoreJob,
    },
}

/// Lines to deliver, in order, and effects to carry out, in order, after the lines
/// queued before them.
#[derive(Debug, Default)]
pub struct Outbox {
    pub deliveries: Vec<(ClientId, Bytes)>,
    pub effects: Vec<Effect>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.effects.is_empty()
    }

    pub fn clear(&mut self) {
        self.deliveries.clear();
        self.effects.clear();
    }

    /// The lines delivered to one client, as text: for tests and logs.
    pub fn lines_for(&self, client: ClientId) -> Vec<String> {
        self.deliveries
            .iter()
            .filter(|(to, _)| *to == client)
            .map(|(_, line)| String::from_utf8_lossy(line).trim_end().to_owned())
            .collect()
    }
}
