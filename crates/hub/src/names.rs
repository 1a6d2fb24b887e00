//! Folded names for lookups, kept on the stack: every message looks up its target's
//! nick or room and works out who its two parties are, and a heap string for each
//! of those folds cost more than the lookups themselves.

use std::ops::Deref;

use arrayvec::ArrayString;
use natter_proto::CaseMapping;

/// Names up to this many bytes fold without an allocation: every nick, and room
/// names up to the usual CHANNELLEN.
const INLINE_BYTES: usize = 64;

/// A name folded by the server's casemapping, equal to what
/// [`CaseMapping::fold`] gives, behind an optional prefix.
pub(crate) enum FoldedName {
    Inline(ArrayString<INLINE_BYTES>),
    Heap(String),
}

impl FoldedName {
    pub(crate) fn new(casemapping: CaseMapping, name: &str) -> FoldedName {
        FoldedName::with_prefix(casemapping, "", name)
    }

    /// `prefix` (no capitals in it), then `name` folded.
    pub(crate) fn with_prefix(casemapping: CaseMapping, prefix: &str, name: &str) -> FoldedName {
        let mut inline = ArrayString::<INLINE_BYTES>::new();
        if inline.try_push_str(prefix).is_ok() && inline.try_push_str(name).is_ok() {
            let rfc1459_brackets =
                casemapping == CaseMapping::Rfc1459 && name.bytes().any(|b| b"[]\\~".contains(&b));
            if !rfc1459_brackets {
                // Only A-Z fold here, in place; the prefix holds none.
                inline.make_ascii_lowercase();
                return FoldedName::Inline(inline);
            }
            inline.clear();
            let fits = inline.try_push_str(prefix).is_ok()
                && name
                    .chars()
                    .try_for_each(|c| inline.try_push(casemapping.fold_char(c)))
                    .is_ok();
            if fits {
                return FoldedName::Inline(inline);
            }
        }
        let mut heap = String::with_capacity(prefix.len() + name.len());
        heap.push_str(prefix);
        heap.push_str(&casemapping.fold(name));
        FoldedName::Heap(heap)
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            FoldedName::Inline(name) => name.as_str().to_owned(),
            FoldedName::Heap(name) => name,
        }
    }
}

impl Deref for FoldedName {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            FoldedName::Inline(name) => name,
            FoldedName::Heap(name) => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_as_the_casemapping_does_whatever_the_length() {
        for mapping in [CaseMapping::Ascii, CaseMapping::Rfc1459] {
            for name in ["Bob", "[Team]~\\", "ÄbC", &"Xy".repeat(40), ""] {
                assert_eq!(&*FoldedName::new(mapping, name), mapping.fold(name));
                let prefixed = FoldedName::with_prefix(mapping, "!", name);
                assert_eq!(&*prefixed, format!("!{}", mapping.fold(name)));
                assert_eq!(prefixed.into_string(), format!("!{}", mapping.fold(name)));
            }
        }
    }
}
