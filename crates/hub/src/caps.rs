//! The IRCv3 capabilities natter offers, as a bit set per client.

/// One capability. The discriminant is its bit in [`CapSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cap {
    CapNotify,
    MessageTags,
    ServerTime,
    EchoMessage,
    LabeledResponse,
    Batch,
    MultiPrefix,
    UserhostInNames,
    AwayNotify,
    ExtendedJoin,
    InviteNotify,
    Setname,
    AccountTag,
    AccountNotify,
    Chghost,
    Sasl,
    AccountRegistration,
    Chathistory,
    ReadMarker,
}

impl Cap {
    /// Every capability, in the order `CAP LS` lists them.
    pub const ALL: [Cap; 19] = [
        Cap::AccountNotify,
        Cap::AccountRegistration,
        Cap::AccountTag,
        Cap::AwayNotify,
        Cap::Batch,
        Cap::CapNotify,
        Cap::Chathistory,
        Cap::Chghost,
        Cap::EchoMessage,
        Cap::ExtendedJoin,
        Cap::InviteNotify,
        Cap::LabeledResponse,
        Cap::MessageTags,
        Cap::MultiPrefix,
        Cap::ReadMarker,
        Cap::Sasl,
        Cap::ServerTime,
        Cap::Setname,
        Cap::UserhostInNames,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cap::CapNotify => "cap-notify",
            Cap::MessageTags => "message-tags",
            Cap::ServerTime => "server-time",
            Cap::EchoMessage => "echo-message",
            Cap::LabeledResponse => "labeled-response",
            Cap::Batch => "batch",
            Cap::MultiPrefix => "multi-prefix",
            Cap::UserhostInNames => "userhost-in-names",
            Cap::AwayNotify => "away-notify",
            Cap::ExtendedJoin => "extended-join",
            Cap::InviteNotify => "invite-notify",
            Cap::Setname => "setname",
            Cap::AccountTag => "account-tag",
            Cap::AccountNotify => "account-notify",
            Cap::Chghost => "chghost",
            Cap::Sasl => "sasl",
            Cap::AccountRegistration => "draft/account-registration",
            Cap::Chathistory => "draft/chathistory",
            Cap::ReadMarker => "draft/read-marker",
        }
    }

    /// The value shown after `=` in `CAP LS 302`, if any.
    pub fn value(self) -> Option<&'static str> {
        match self {
            Cap::Sasl => Some("PLAIN"),
            Cap::AccountRegistration => Some("before-connect"),
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Cap> {
        Cap::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

/// The capabilities one client has enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(u32);

impl CapSet {
    pub fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    pub fn set(&mut self, cap: Cap, on: bool) {
        if on {
            self.0 |= cap.bit();
        } else {
            self.0 &= !cap.bit();
        }
    }

    /// The enabled capabilities' names, space separated, for `CAP LIST`.
    pub fn names(self) -> String {
        Cap::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .map(Cap::name)
            .collect::<Vec<_>>()
            .join(" ")
    }
}
