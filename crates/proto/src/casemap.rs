//! Case-insensitive comparison of nicknames and channel names, as advertised in
//! ISUPPORT `CASEMAPPING`.

/// How two names are compared. Clients learn the mapping from `CASEMAPPING` and must
/// see the server fold names exactly as advertised, or nick collisions surprise them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaseMapping {
    /// `A-Z` fold to `a-z` and nothing else: what modern servers advertise.
    #[default]
    Ascii,
    /// As `Ascii`, and `[]\~` fold to `{}|^` (RFC 1459's Scandinavian heritage).
    Rfc1459,
}

impl CaseMapping {
    /// The token advertised in ISUPPORT.
    pub fn token(self) -> &'static str {
        match self {
            CaseMapping::Ascii => "ascii",
            CaseMapping::Rfc1459 => "rfc1459",
        }
    }

    /// Parses the token used in configuration files.
    pub fn from_token(token: &str) -> Option<CaseMapping> {
        match token {
            "ascii" => Some(CaseMapping::Ascii),
            "rfc1459" => Some(CaseMapping::Rfc1459),
            _ => None,
        }
    }

    /// Folds one character.
    pub fn fold_char(self, c: char) -> char {
        match (self, c) {
            (_, 'A'..='Z') => c.to_ascii_lowercase(),
            (CaseMapping::Rfc1459, '[') => '{',
            (CaseMapping::Rfc1459, ']') => '}',
            (CaseMapping::Rfc1459, '\\') => '|',
            (CaseMapping::Rfc1459, '~') => '^',
            _ => c,
        }
    }

    /// The folded form of a name: two names are the same when their folds are equal.
    pub fn fold(self, name: &str) -> String {
        // Every folded character is ASCII and folds to ASCII, so the common case is a
        // copy lowered in place; only RFC 1459's brackets need the character walk.
        let mut folded = name.to_owned();
        folded.make_ascii_lowercase();
        if self == CaseMapping::Rfc1459 && folded.bytes().any(|b| b"[]\\~".contains(&b)) {
            folded = folded.chars().map(|c| self.fold_char(c)).collect();
        }
        folded
    }

    /// Whether two names are the same name.
    pub fn eq(self, a: &str, b: &str) -> bool {
        a.len() == b.len()
            && a.chars()
                .zip(b.chars())
                .all(|(x, y)| self.fold_char(x) == self.fold_char(y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_folds_letters_only() {
        assert_eq!(CaseMapping::Ascii.fold("Bob[]"), "bob[]");
        assert!(CaseMapping::Ascii.eq("ALICE", "alice"));
        assert!(!CaseMapping::Ascii.eq("a[", "a{"));
    }

    #[test]
    fn rfc1459_folds_brackets() {
        assert_eq!(CaseMapping::Rfc1459.fold("Bob[]\\~"), "bob{}|^");
        assert_eq!(CaseMapping::Rfc1459.fold("Ünï[Z]"), "Ünï{z}");
        assert_eq!(CaseMapping::Ascii.fold("Ünï[Z]"), "Ünï[z]");
        assert!(CaseMapping::Rfc1459.eq("a[", "A{"));
    }
}
