//! MONITOR: a client's friend list, told when each friend comes online or leaves.

use natter_proto::Message;

use crate::client::ClientId;
use crate::hub::Hub;
use crate::outbox::Outbox;

const RPL_MONONLINE: &str = "730";
const RPL_MONOFFLINE: &str = "731";
const RPL_MONLIST: &str = "732";
const RPL_ENDOFMONLIST: &str = "733";
const ERR_MONLISTFULL: &str = "734";

impl Hub {
    pub(crate) fn cmd_monitor(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let sub = msg.param(0).unwrap_or("");
        let targets: Vec<String> = msg
            .param(1)
            .unwrap_or("")
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        match sub {
            "+" => self.monitor_add(out, id, &targets),
            "-" => {
                for nick in &targets {
                    let folded = self.fold(nick);
                    self.unwatch(id, &folded);
                }
            }
            "C" | "c" => {
                let watched: Vec<String> = self
                    .clients
                    .get(&id)
                    .map(|c| c.monitoring.keys().cloned().collect())
                    .unwrap_or_default();
                for folded in watched {
                    self.unwatch(id, &folded);
                }
            }
            "L" | "l" => {
                let mut names: Vec<String> = self
                    .clients
                    .get(&id)
                    .map(|c| c.monitoring.values().cloned().collect())
                    .unwrap_or_default();
                names.sort();
                for chunk in self.chunk_nicks(&names) {
                    self.numeric(out, id, RPL_MONLIST, &[&chunk]);
                }
                self.numeric(out, id, RPL_ENDOFMONLIST, &["End of MONITOR list"]);
            }
            "S" | "s" => {
                let names: Vec<String> = self
                    .clients
                    .get(&id)
                    .map(|c| c.monitoring.values().cloned().collect())
                    .unwrap_or_default();
                self.monitor_status(out, id, &names);
            }
            _ => {
                self.numeric(
                    out,
                    id,
                    natter_proto::numeric::ERR_NEEDMOREPARAMS,
                    &["MONITOR", "Not enough parameters"],
                );
            }
        }
    }

    fn monitor_add(&mut self, out: &mut Outbox, id: ClientId, targets: &[String]) {
        let limit = self.config.limits.monitor;
        let mut added = Vec::new();
        for (i, nick) in targets.iter().enumerate() {
            if !natter_proto::is_valid_nick(nick, self.config.limits.nick_len) {
                continue;
            }
            let folded = self.fold(nick);
            let Some(client) = self.clients.get_mut(&id) else {
                return;
            };
            if client.monitoring.contains_key(&folded) {
                continue;
            }
            if client.monitoring.len() >= limit {
                let rest = targets[i..].join(",");
                self.numeric(
                    out,
                    id,
                    ERR_MONLISTFULL,
                    &[&limit.to_string(), &rest, "Monitor list is full."],
                );
                break;
            }
            client.monitoring.insert(folded.clone(), nick.clone());
            self.watchers.entry(folded).or_default().insert(id);
            added.push(nick.clone());
        }
        self.monitor_status(out, id, &added);
    }

    /// 730 for those of `nicks` online (as `nick!user@host`), 731 for the rest.
    fn monitor_status(&mut self, out: &mut Outbox, id: ClientId, nicks: &[String]) {
        let mut online = Vec::new();
        let mut offline = Vec::new();
        for nick in nicks {
            match self.find_nick(nick).and_then(|c| self.clients.get(&c)) {
                Some(c) => online.push(c.source()),
                None => offline.push(nick.clone()),
            }
        }
        for chunk in self.chunk_nicks(&online) {
            self.numeric(out, id, RPL_MONONLINE, &[&chunk]);
        }
        for chunk in self.chunk_nicks(&offline) {
            self.numeric(out, id, RPL_MONOFFLINE, &[&chunk]);
        }
    }

    fn unwatch(&mut self, id: ClientId, folded: &str) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.monitoring.remove(folded);
        }
        if let Some(set) = self.watchers.get_mut(folded) {
            set.remove(&id);
            if set.is_empty() {
                self.watchers.remove(folded);
            }
        }
    }

    /// Forgets everything a leaving client watched.
    pub(crate) fn forget_monitors(&mut self, id: ClientId, watched: impl Iterator<Item = String>) {
        for folded in watched {
            if let Some(set) = self.watchers.get_mut(&folded) {
                set.remove(&id);
                if set.is_empty() {
                    self.watchers.remove(&folded);
                }
            }
        }
    }

    /// Tells those watching `nick` that it came online (`source` given) or left.
    pub(crate) fn notify_watchers(&mut self, out: &mut Outbox, nick: &str, source: Option<&str>) {
        let folded = self.fold(nick);
        let Some(watchers) = self.watchers.get(&folded) else {
            return;
        };
        let watchers: Vec<ClientId> = watchers.iter().copied().collect();
        for w in watchers {
            match source {
                Some(source) => self.numeric(out, w, RPL_MONONLINE, &[source]),
                None => self.numeric(out, w, RPL_MONOFFLINE, &[nick]),
            }
        }
    }

    /// Comma-separated lists short enough for one numeric line each.
    fn chunk_nicks(&self, items: &[String]) -> Vec<String> {
        let mut chunks = Vec::new();
        let mut current = String::new();
        for item in items {
            if !current.is_empty() && current.len() + item.len() + 1 > 400 {
                chunks.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(',');
            }
            current.push_str(item);
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        chunks
    }
}
