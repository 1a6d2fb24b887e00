//! Server operators: OPER against configured accounts, KILL and WALLOPS.

use natter_proto::{numeric::*, Message};

use crate::client::ClientId;
use crate::hub::{server_line, Hub, PendingCheck};
use crate::outbox::Outbox;
use crate::registration::truncate;

impl Hub {
    pub(crate) fn cmd_oper(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let (Some(name), Some(password)) = (msg.param(0), msg.param(1)) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["OPER", "Not enough parameters"],
            );
            return;
        };
        let Some(account) = self.config.opers.iter().find(|o| o.name == name) else {
            self.numeric(out, id, ERR_PASSWDMISMATCH, &["Password incorrect"]);
            return;
        };
        let hash = account.password_hash.clone();
        let name = name.to_owned();
        self.check_password(out, id, password, hash, |client, label| {
            PendingCheck::Oper {
                client,
                name,
                label,
            }
        });
    }

    pub(crate) fn finish_oper(&mut self, out: &mut Outbox, id: ClientId, name: String, ok: bool) {
        if !ok {
            self.numeric(out, id, ERR_PASSWDMISMATCH, &["Password incorrect"]);
            return;
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.oper = Some(name);
        let nick = client.nick.clone();
        self.numeric(out, id, RPL_YOUREOPER, &["You are now an IRC operator"]);
        let line = server_line(Some(&nick), "MODE", &[&nick, "+o"]);
        self.send(out, id, line);
    }

    pub(crate) fn cmd_kill(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(nick) = msg.param(0) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["KILL", "Not enough parameters"],
            );
            return;
        };
        if self.clients.get(&id).is_none_or(|c| c.oper.is_none()) {
            self.numeric(
                out,
                id,
                ERR_NOPRIVILEGES,
                &["Permission Denied- You're not an IRC operator"],
            );
            return;
        }
        let Some(target) = self.find_nick(nick) else {
            self.numeric(out, id, ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
            return;
        };
        let killer = self.nick_of(id);
        let reason = truncate(
            msg.param(1).unwrap_or("No reason given"),
            self.config.limits.kick_len,
        );
        let quit = format!("Killed ({killer} ({reason}))");
        self.close_with_error(out, target, &quit, &quit);
    }

    pub(crate) fn cmd_wallops(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(text) = msg.param(0).filter(|t| !t.is_empty()) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["WALLOPS", "Not enough parameters"],
            );
            return;
        };
        let Some(source) = self
            .clients
            .get(&id)
            .filter(|c| c.oper.is_some())
            .map(|c| c.source())
        else {
            self.numeric(
                out,
                id,
                ERR_NOPRIVILEGES,
                &["Permission Denied- You're not an IRC operator"],
            );
            return;
        };
        let line = server_line(Some(&source), "WALLOPS", &[text]);
        let to: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.is_registered() && (c.wallops || c.oper.is_some()))
            .map(|c| c.id)
            .collect();
        for to in to {
            self.send(out, to, line.clone());
        }
    }
}
