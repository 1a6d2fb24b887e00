//! Escaping of IRCv3 tag values: `;`, space, `\`, CR and LF cannot appear raw.

/// Escapes a tag value for the wire.
pub fn escape_tag_value(value: &str, out: &mut Vec<u8>) {
    for b in value.bytes() {
        match b {
            b';' => out.extend_from_slice(b"\\:"),
            b' ' => out.extend_from_slice(b"\\s"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Unescapes a tag value from the wire. An unknown escape drops its backslash and a
/// trailing lone backslash is dropped, as the message-tags specification says.
pub fn unescape_tag_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        let value = "a; b\\c\r\nd";
        let mut wire = Vec::new();
        escape_tag_value(value, &mut wire);
        let wire = String::from_utf8(wire).unwrap();
        assert_eq!(wire, "a\\:\\sb\\\\c\\r\\nd");
        assert_eq!(unescape_tag_value(&wire), value);
    }

    #[test]
    fn unknown_escape_and_trailing_backslash() {
        assert_eq!(unescape_tag_value("\\b\\"), "b");
    }
}
