//! MODE: user modes (+i +w, -o) and room modes (+o +v +t +n +m +i +s +k +l +b).

use natter_proto::{numeric::*, Message};

use crate::channel::ListEntry;
use crate::client::ClientId;
use crate::fanout::Outgoing;
use crate::hub::Hub;
use crate::mask::normalize_mask;
use crate::outbox::Outbox;

/// Modes that take a parameter in one line, as ISUPPORT MODES says.
const MAX_PARAM_MODES: usize = 4;

impl Hub {
    pub(crate) fn cmd_mode(&mut self, out: &mut Outbox, id: ClientId, msg: &Message) {
        let Some(target) = msg.param(0) else {
            self.numeric(
                out,
                id,
                ERR_NEEDMOREPARAMS,
                &["MODE", "Not enough parameters"],
            );
            return;
        };
        if target.starts_with('#') {
            let args: Vec<&str> = msg.params.iter().skip(1).collect();
            self.channel_mode(out, id, target, &args);
        } else {
            self.user_mode(out, id, target, msg.param(1));
        }
    }

    fn user_mode(&mut self, out: &mut Outbox, id: ClientId, target: &str, change: Option<&str>) {
        if self.find_nick(target) != Some(id) {
            if self.find_nick(target).is_none() {
                self.numeric(out, id, ERR_NOSUCHNICK, &[target, "No such nick/channel"]);
            } else {
                self.numeric(
                    out,
                    id,
                    ERR_USERSDONTMATCH,
                    &["Cant change mode for other users"],
                );
            }
            return;
        }
        let Some(change) = change else {
            let modes = self
                .clients
                .get(&id)
                .map(|c| c.mode_string())
                .unwrap_or_default();
            self.numeric(out, id, RPL_UMODEIS, &[&modes]);
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let mut adding = true;
        let mut applied = String::new();
        let mut last_sign = None;
        let mut unknown = false;
        for c in change.chars() {
            let effective = match c {
                '+' => {
                    adding = true;
                    continue;
                }
                '-' => {
                    adding = false;
                    continue;
                }
                'i' if client.invisible != adding => {
                    client.invisible = adding;
                    true
                }
                'w' if client.wallops != adding => {
                    client.wallops = adding;
                    true
                }
                // Operator status is granted only by OPER, but may be dropped.
                'o' if !adding && client.oper.is_some() => {
                    client.oper = None;
                    true
                }
                'i' | 'w' | 'o' => false,
                _ => {
                    unknown = true;
                    false
                }
            };
            if effective {
                if last_sign != Some(adding) {
                    applied.push(if adding { '+' } else { '-' });
                    last_sign = Some(adding);
                }
                applied.push(c);
            }
        }
        let nick = client.nick.clone();
        if unknown {
            self.numeric(out, id, ERR_UMODEUNKNOWNFLAG, &["Unknown MODE flag"]);
        }
        if !applied.is_empty() {
            let line = crate::hub::server_line(Some(&nick), "MODE", &[&nick, &applied]);
            self.send(out, id, line);
        }
    }

    fn channel_mode(&mut self, out: &mut Outbox, id: ClientId, name: &str, args: &[&str]) {
        let folded = self.fold(name);
        let Some(channel) = self.channels.get(&folded) else {
            self.numeric(out, id, ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let display = channel.name.clone();
        let Some(change) = args.first() else {
            let (flags, params) = channel.mode_string(channel.members.contains_key(&id));
            let created = channel.created.to_string();
            let mut all = vec![display.as_str(), flags.as_str()];
            all.extend(params.iter().map(String::as_str));
            self.numeric(out, id, RPL_CHANNELMODEIS, &all);
            self.numeric(out, id, RPL_CREATIONTIME, &[&display, &created]);
            return;
        };
        let is_op = channel.is_op(id);
        let mut params = args[1..].iter();
        let mut adding = true;
        let mut applied = String::new();
        let mut applied_params: Vec<String> = Vec::new();
        let mut last_sign = None;
        let mut param_modes = 0;
        let mut denied = false;
        let now = self.now.unix_secs();
        let setter = self
            .clients
            .get(&id)
            .map(|c| c.source())
            .unwrap_or_default();
        for c in change.chars() {
            match c {
                '+' => {
                    adding = true;
                    continue;
                }
                '-' => {
                    adding = false;
                    continue;
                }
                _ => {}
            }
            let takes_param = matches!(c, 'o' | 'v' | 'b') || (c == 'k') || (c == 'l' && adding);
            if takes_param && c != 'b' {
                param_modes += 1;
                if param_modes > MAX_PARAM_MODES {
                    break;
                }
            }
            // A ban list query needs no privilege.
            if c == 'b' && params.len() == 0 {
                self.send_ban_list(out, id, &folded);
                continue;
            }
            if !matches!(c, 'o' | 'v' | 'b' | 'k' | 'l' | 'i' | 'm' | 'n' | 's' | 't') {
                self.numeric(
                    out,
                    id,
                    ERR_UNKNOWNMODE,
                    &[&c.to_string(), "is unknown mode char to me"],
                );
                continue;
            }
            if !is_op {
                if !denied {
                    self.numeric(
                        out,
                        id,
                        ERR_CHANOPRIVSNEEDED,
                        &[&display, "You're not channel operator"],
                    );
                    denied = true;
                }
                if takes_param {
                    params.next();
                }
                continue;
            }
            let param = if takes_param {
                params.next().map(|p| (*p).to_owned())
            } else {
                None
            };
            let optional = c == 'k' && !adding;
            if takes_param && param.is_none() && !optional {
                let mode = format!("{}{c}", if adding { '+' } else { '-' });
                self.numeric(
                    out,
                    id,
                    ERR_INVALIDMODEPARAM,
                    &[
                        &display,
                        &mode,
                        "*",
                        "You must specify a parameter for this mode",
                    ],
                );
                continue;
            }
            let shown =
                match self.apply_channel_mode(out, id, &folded, c, adding, param, &setter, now) {
                    Some(shown) => shown,
                    None => continue,
                };
            if last_sign != Some(adding) {
                applied.push(if adding { '+' } else { '-' });
                last_sign = Some(adding);
            }
            applied.push(c);
            if let Some(p) = shown {
                applied_params.push(p);
            }
        }
        if applied.is_empty() {
            return;
        }
        let Some(channel) = self.channels.get(&folded) else {
            return;
        };
        let members: Vec<ClientId> = channel.members.keys().copied().collect();
        let mut line = Outgoing::new(self.now.server_time(), Some(setter), "MODE")
            .param(display)
            .param(applied);
        for p in applied_params {
            line = line.param(p);
        }
        let mut line = line.msgid(self.next_msgid());
        self.fan_out(out, &members, &mut line);
    }

    /// Applies one mode letter. `None` when nothing changed (or an error was sent);
    /// otherwise the parameter to show in the MODE line, if any.
    #[allow(clippy::too_many_arguments)]
    fn apply_channel_mode(
        &mut self,
        out: &mut Outbox,
        id: ClientId,
        folded: &str,
        c: char,
        adding: bool,
        param: Option<String>,
        setter: &str,
        now: u64,
    ) -> Option<Option<String>> {
        let max_bans = self.config.limits.max_bans;
        let target = match (c, &param) {
            ('o' | 'v', Some(nick)) => match self.find_nick(nick) {
                Some(t) => Some((t, self.nick_of(t))),
                None => {
                    self.numeric(out, id, ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
                    return None;
                }
            },
            _ => None,
        };
        let channel = self.channels.get_mut(folded)?;
        let display = channel.name.clone();
        match c {
            'o' | 'v' => {
                let (target, target_nick) = target?;
                let Some(member) = channel.members.get_mut(&target) else {
                    self.numeric(
                        out,
                        id,
                        ERR_USERNOTINCHANNEL,
                        &[&target_nick, &display, "They aren't on that channel"],
                    );
                    return None;
                };
                let flag = if c == 'o' {
                    &mut member.op
                } else {
                    &mut member.voice
                };
                if *flag == adding {
                    return None;
                }
                *flag = adding;
                Some(Some(target_nick))
            }
            'b' => {
                let mask = normalize_mask(&param?);
                // Nor a space nor a leading colon can be in a mask on the wire
                // (`MODE #r +b :a b`): either would break the MODE line that shows it.
                if mask.contains(' ') || mask.starts_with(':') {
                    return None;
                }
                let exists = channel.bans.iter().position(|b| b.mask == mask);
                match (adding, exists) {
                    (true, None) => {
                        if channel.bans.len() >= max_bans {
                            self.numeric(
                                out,
                                id,
                                ERR_BANLISTFULL,
                                &[&display, &mask, "Channel ban list is full"],
                            );
                            return None;
                        }
                        channel.bans.push(ListEntry {
                            mask: mask.clone(),
                            set_by: setter.to_owned(),
                            set_at: now,
                        });
                        Some(Some(mask))
                    }
                    (false, Some(i)) => {
                        channel.bans.remove(i);
                        Some(Some(mask))
                    }
                    _ => None,
                }
            }
            'k' => {
                if adding {
                    let key = param?;
                    if key.is_empty() || key.contains(' ') || key.contains(',') || key.len() > 32 {
                        self.numeric(
                            out,
                            id,
                            ERR_INVALIDKEY,
                            &[&display, "Key is not well-formed"],
                        );
                        return None;
                    }
                    channel.key = Some(key.clone());
                    Some(Some(key))
                } else {
                    channel.key.take()?;
                    Some(Some("*".into()))
                }
            }
            'l' => {
                if adding {
                    let raw = param?;
                    match raw.parse::<usize>() {
                        Ok(limit) if limit > 0 => {
                            channel.limit = Some(limit);
                            Some(Some(limit.to_string()))
                        }
                        _ => {
                            self.numeric(
                                out,
                                id,
                                ERR_INVALIDMODEPARAM,
                                &[&display, "l", &raw, "Invalid limit"],
                            );
                            None
                        }
                    }
                } else {
                    channel.limit.take()?;
                    Some(None)
                }
            }
            _ => {
                let flag = match c {
                    'i' => &mut channel.invite_only,
                    'm' => &mut channel.moderated,
                    'n' => &mut channel.no_external,
                    's' => &mut channel.secret,
                    _ => &mut channel.topic_locked,
                };
                if *flag == adding {
                    return None;
                }
                *flag = adding;
                Some(None)
            }
        }
    }

    fn send_ban_list(&mut self, out: &mut Outbox, id: ClientId, folded: &str) {
        let Some(channel) = self.channels.get(folded) else {
            return;
        };
        let display = channel.name.clone();
        let bans = channel.bans.clone();
        for ban in bans {
            let at = ban.set_at.to_string();
            self.numeric(
                out,
                id,
                RPL_BANLIST,
                &[&display, &ban.mask, &ban.set_by, &at],
            );
        }
        self.numeric(
            out,
            id,
            RPL_ENDOFBANLIST,
            &[&display, "End of channel ban list"],
        );
    }
}
