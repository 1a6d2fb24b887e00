//! Matching of IRC masks such as `*!*@10.0.0.*`: `*` is any run, `?` any one character.

use natter_proto::CaseMapping;

/// Whether `text` matches `mask`, folding case as the server's casemapping does.
pub fn matches(mask: &str, text: &str, casemap: CaseMapping) -> bool {
    let mask: Vec<char> = mask.chars().map(|c| casemap.fold_char(c)).collect();
    let text: Vec<char> = text.chars().map(|c| casemap.fold_char(c)).collect();
    // Greedy matching with one backtrack point: linear in practice, and never
    // exponential whatever mask a user sends.
    let (mut m, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if m < mask.len() && (mask[m] == '?' || mask[m] == text[t]) {
            m += 1;
            t += 1;
        } else if m < mask.len() && mask[m] == '*' {
            star = Some((m, t));
            m += 1;
        } else if let Some((sm, st)) = star {
            m = sm + 1;
            t = st + 1;
            star = Some((sm, st + 1));
        } else {
            return false;
        }
    }
    mask[m..].iter().all(|&c| c == '*')
}

/// Completes a partial ban mask as servers do: `bob` becomes `bob!*@*`,
/// `*@host` becomes `*!*@host`.
pub fn normalize_mask(mask: &str) -> String {
    let (nick_user, host) = match mask.split_once('@') {
        Some((nu, h)) => (nu, if h.is_empty() { "*" } else { h }),
        None => (mask, "*"),
    };
    let (nick, user) = match nick_user.split_once('!') {
        Some((n, u)) => (n, if u.is_empty() { "*" } else { u }),
        None if mask.contains('@') => ("*", nick_user),
        None => (nick_user, "*"),
    };
    let nick = if nick.is_empty() { "*" } else { nick };
    format!("{nick}!{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let c = CaseMapping::Ascii;
        assert!(matches("*!*@10.0.0.*", "bob!b@10.0.0.7", c));
        assert!(matches("B?B!*@*", "bob!x@y", c));
        assert!(!matches("bob!*@*", "bobby!x@y", c));
        assert!(matches("*", "", c));
        assert!(matches("a*b*c", "aXXbYYc", c));
        assert!(!matches("a*b*c", "aXXbYY", c));
        let long = "a".repeat(300);
        // A mask built to backtrack a lot still answers, and answers right.
        assert!(!matches(&format!("{}b", "*a".repeat(50)), &long, c));
        assert!(matches(&"*a".repeat(50), &long, c));
    }

    #[test]
    fn completes_masks() {
        assert_eq!(normalize_mask("bob"), "bob!*@*");
        assert_eq!(normalize_mask("*@host"), "*!*@host");
        assert_eq!(normalize_mask("bob!u"), "bob!u@*");
        assert_eq!(normalize_mask("a!b@c"), "a!b@c");
    }
}
