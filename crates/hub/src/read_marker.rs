//! draft/read-marker: MARKREAD keeps an account's clients agreed on what has been
//! read in each conversation.

use natter_proto::Message;
use natter_store::Write;

use crate::caps::Cap;
use crate::client::ClientId;
use crate::history::format_ms;
use crate::hub::{server_line, Hub, Reply};
use crate::outbox::Outbox;
use crate::persistence::{PendingStore, StoreJob, StoreOutcome};

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
                let known = self.read_markers.get(&key).copied();
                // Markers only move forward; an older one is answered with the newer.
                let newest = known.map_or(ms, |k| k.max(ms));
                self.read_markers.insert(key.clone(), newest);
                if known.is_none_or(|k| ms > k) {
                    if let Some(reply) = &mut self.reply {
                        reply.writes.push(Write::ReadMarker {
                            account: key.0.clone(),
                            target: key.1.clone(),
                            time_ms: newest,
                        });
                    }
                }
                let stamp = format!("timestamp={}", format_ms(newest));
                let line = server_line(
                    Some(&self.config.server_name),
                    "MARKREAD",
                    &[&target, &stamp],
                );
                for session in self.sessions_of(&key.0) {
                    if self
                        .clients
                        .get(&session)
                        .is_some_and(|c| c.has(Cap::ReadMarker))
                        || session == id
                    {
                        self.send(out, session, line.clone());
                    }
                }
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
            },
        );
    }

    pub(crate) fn answer_marker(
        &mut self,
        out: &mut Outbox,
        client: ClientId,
        label: Option<String>,
        target: &str,
        key: (String, String),
        outcome: StoreOutcome,
    ) {
        self.reply = Some(Reply::new(client, label));
        let stamp = match outcome {
            StoreOutcome::Marker(Some(ms)) => {
                let ms = self
                    .read_markers
                    .get(&key)
                    .copied()
                    .map_or(ms, |k| k.max(ms));
                self.read_markers.insert(key, ms);
                format!("timestamp={}", format_ms(ms))
            }
            _ => "*".to_owned(),
        };
        let line = server_line(
            Some(&self.config.server_name),
            "MARKREAD",
            &[target, &stamp],
        );
        self.send(out, client, line);
        self.finish_reply(out);
        self.release(out, client);
    }
}
