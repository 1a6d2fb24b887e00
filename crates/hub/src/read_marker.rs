//! draft/read-marker: MARKREAD keeps an account's clients agreed on what has been
//! read in each conversation.

use natter_proto::Message;
use natter_store::Write;

use crate::caps::Cap;
use crate::client::ClientId;
use crate::history::format_ms;
use crate::hub::{server_line, Hub, Reply};
use crate::outbox::Outbox;
use crate::persistence::{MarkerThen, PendingStore, StoreJob, StoreOutcome};

impl Hub {
    pub(crate) fn cmd_markread(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(target) = msg.param(0).map(str::to_owned) else {
            self.fail(
                out,
                id,
                "MARKREAD",
                "NEED_MORE_PARAMS",
                &[],
                "Missing target",
            );
            return;
        };
        let Some(account) = self.clients.get(&id).and_then(|c| c.account.clone()) else {
            // Without an account there is nothing to keep across clients.
            let line = server_line(Some(&self.config.server_name), "MARKREAD", &[&target, "*"]);
            self.send(out, id, line);
            return;
        };
        let key = (self.fold(&account), self.conversation_key(id, &target));
        match msg.param(1) {
            None => self.send_marker(out, id, &target, key),
            Some(raw) => {
                let Some(ms) = raw
                    .strip_prefix("timestamp=")
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_millis()).ok())
                else {
                    self.fail(
                        out,
                        id,
                        "MARKREAD",
                        "INVALID_PARAMS",
                        &[&target],
                        "Give timestamp=YYYY-MM-DDThh:mm:ss.sssZ",
                    );
                    return;
                };
                if self.read_markers.contains_key(&key) {
                    self.set_marker(out, id, &target, key, ms);
                } else {
                    // Not in memory (never set, or set before a restart): what the
                    // store holds comes first, so that the marker never moves back.
                    self.load_marker(out, id, &target, key, MarkerThen::Set(ms));
                }
            }
        }
    }

    /// Moves a marker to `ms` if that is later, answers the client with the marker,
    /// and tells the account's other clients that take read markers if it moved.
    fn set_marker(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        target: &str,
        key: (String, String),
        ms: i64,
    ) {
        let known = self.read_markers.get(&key).copied();
        // Markers only move forward; an older one is answered with the newer.
        let newest = known.map_or(ms, |k| k.max(ms));
        let moved = known.is_none_or(|k| ms > k);
        self.read_markers.insert(key.clone(), newest);
        if moved {
            self.keep_write(Write::ReadMarker {
                account: key.0.clone(),
                target: key.1.clone(),
                time_ms: newest,
            });
        }
        let stamp = format!("timestamp={}", format_ms(newest));
        let line = server_line(
            Some(&self.config.server_name),
            "MARKREAD",
            &[target, &stamp],
        );
        self.send(out, id, line.clone());
        if !moved {
            return;
        }
        for session in self.sessions_of(&key.0) {
            if session != id
                && self
                    .clients
                    .get(&session)
                    .is_some_and(|c| c.has(Cap::ReadMarker))
            {
                self.send(out, session, line.clone());
            }
        }
    }

    /// Tells a client how far its account has read `target`, loading it if needed.
    pub(crate) fn send_marker(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        target: &str,
        key: (String, String),
    ) {
        if let Some(ms) = self.read_markers.get(&key).copied() {
            let stamp = format!("timestamp={}", format_ms(ms));
            let line = server_line(
                Some(&self.config.server_name),
                "MARKREAD",
                &[target, &stamp],
            );
            self.send(out, id, line);
            return;
        }
        self.load_marker(out, id, target, key, MarkerThen::Tell);
    }

    /// On JOIN: the marker, then the NAMES; the marker must precede
    /// RPL_ENDOFNAMES, so when it has to be read first the NAMES wait for it.
    pub(crate) fn send_marker_then_names(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        target: &str,
        key: (String, String),
    ) {
        let folded = key.1.clone();
        if self.read_markers.contains_key(&key) {
            self.send_marker(out, id, target, key);
            self.send_names(out, id, &folded);
        } else {
            self.load_marker(out, id, target, key, MarkerThen::TellThenNames(folded));
        }
    }

    /// Reads a marker from the store, holding the client's later lines; then sets it
    /// to `set` if given, or tells the client.
    fn load_marker(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        target: &str,
        key: (String, String),
        then: MarkerThen,
    ) {
        let label = self.hold(id);
        self.ask_store(
            out,
            StoreJob::ReadMarker {
                account: key.0.clone(),
                target: key.1.clone(),
            },
            PendingStore::Marker {
                client: id,
                label,
                target: target.to_owned(),
                key,
                then,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer_marker(
        &mut self,
        out: &mut Outbox,
        client: ClientId,
        label: Option<String>,
        target: &str,
        key: (String, String),
        then: MarkerThen,
        outcome: StoreOutcome,
    ) {
        self.reply = Some(Reply::new(client, label));
        if let StoreOutcome::Marker(Some(ms)) = outcome {
            let ms = self
                .read_markers
                .get(&key)
                .copied()
                .map_or(ms, |k| k.max(ms));
            self.read_markers.insert(key.clone(), ms);
        }
        match then {
            MarkerThen::Set(ms) => self.set_marker(out, client, target, key, ms),
            MarkerThen::Tell | MarkerThen::TellThenNames(_) => {
                let stamp = match self.read_markers.get(&key) {
                    Some(ms) => format!("timestamp={}", format_ms(*ms)),
                    None => "*".to_owned(),
                };
                let line = server_line(
                    Some(&self.config.server_name),
                    "MARKREAD",
                    &[target, &stamp],
                );
                self.send(out, client, line);
                if let MarkerThen::TellThenNames(folded) = then {
                    self.send_names(out, client, &folded);
                }
            }
        }
        self.finish_reply(out);
        self.release(out, client);
    }
}
