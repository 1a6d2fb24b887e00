//! What makes a nickname, a channel name or a tag key valid.

/// Characters RFC 2812 allows in nicknames besides letters and digits.
fn is_nick_special(c: char) -> bool {
    matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}')
}

/// A nickname: a letter or special first, then letters, digits, specials or `-`,
/// at most `max_len` bytes. Anything else could be mistaken for a channel, a prefix
/// or a parameter by some client.
pub fn is_valid_nick(nick: &str, max_len: usize) -> bool {
    let mut chars = nick.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    nick.len() <= max_len
        && (first.is_ascii_alphabetic() || is_nick_special(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || is_nick_special(c) || c == '-')
}

/// A channel name: `#` then at least one character, no space, comma, BELL or
/// control character, at most `max_len` bytes.
pub fn is_valid_channel(name: &str, max_len: usize) -> bool {
    name.len() >= 2
        && name.len() <= max_len
        && name.starts_with('#')
        && !name
            .chars()
            .any(|c| c == ' ' || c == ',' || c == '\u{7}' || c.is_control())
}

/// A tag key: an optional `+` (client-only), an optional vendor ending in `/`, and a
/// name of letters, digits and `-`.
pub fn is_valid_tag_key(key: &str) -> bool {
    let key = key.strip_prefix('+').unwrap_or(key);
    let name = match key.rsplit_once('/') {
        Some((vendor, name)) => {
            if vendor.is_empty()
                || !vendor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return false;
            }
            name
        }
        None => key,
    };
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        assert!(is_valid_nick("alice", 30));
        assert!(is_valid_nick("[a]-b_c|d^", 30));
        assert!(!is_valid_nick("", 30));
        assert!(!is_valid_nick("1abc", 30));
        assert!(!is_valid_nick("-abc", 30));
        assert!(!is_valid_nick("a b", 30));
        assert!(!is_valid_nick("#chan", 30));
        assert!(!is_valid_nick("a!b", 30));
        assert!(!is_valid_nick("abcdef", 5));
    }

    #[test]
    fn channels() {
        assert!(is_valid_channel("#team", 64));
        assert!(is_valid_channel("#ünïcode", 64));
        assert!(!is_valid_channel("#", 64));
        assert!(!is_valid_channel("team", 64));
        assert!(!is_valid_channel("#a,b", 64));
        assert!(!is_valid_channel("#a\u{7}", 64));
    }

    #[test]
    fn tag_keys() {
        assert!(is_valid_tag_key("msgid"));
        assert!(is_valid_tag_key("+draft/reply"));
        assert!(is_valid_tag_key("example.com/foo-bar"));
        assert!(!is_valid_tag_key("+"));
        assert!(!is_valid_tag_key("a b"));
        assert!(!is_valid_tag_key("/x"));
    }
}
