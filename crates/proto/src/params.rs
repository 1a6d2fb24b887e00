//! A message's parameters, in one allocation.
//!
//! Every line a client sends is parsed into a [`crate::Message`]; a `PRIVMSG` with a
//! `Vec<String>` of parameters cost three allocations (the list, the target, the
//! text) and three frees. [`Params`] keeps the parameters' text in one string and
//! where each one lies in a small inline list: one allocation, none for a line
//! without parameters.

use std::fmt;
use std::ops::Index;

use smallvec::SmallVec;

use crate::limits::MAX_PARAMS;

/// Where each parameter lies in the text, start and end. `u16`: a line is at most a
/// few kilobytes. Four inline: most commands have fewer.
type Spans = SmallVec<[(u16, u16); 4]>;

/// The parameters of a message, each a `&str`.
///
/// 40 bytes, so that a whole [`crate::Message`] stays within the size the compiler
/// moves inline rather than through a call to `memcpy` (a parsed message is moved
/// several times on its way to the hub).
#[derive(Clone, Default)]
pub struct Params {
    text: Box<str>,
    spans: Spans,
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Parameters that lie in `text` at `spans`. Each span must be within `text` and
    /// on character boundaries, as the parser's are.
    pub(crate) fn in_text(text: Box<str>, spans: Spans) -> Params {
        debug_assert!(spans
            .iter()
            .all(|&(start, end)| text.get(start as usize..end as usize).is_some()));
        Params { text, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        let &(start, end) = self.spans.get(index)?;
        self.text.get(start as usize..end as usize)
    }

    pub fn first(&self) -> Option<&str> {
        self.get(0)
    }

    pub fn last(&self) -> Option<&str> {
        self.get(self.len().checked_sub(1)?)
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            params: self,
            front: 0,
            back: self.len(),
        }
    }

    /// Appends a parameter. Past [`MAX_PARAMS`] or 64 KiB of text, which no line
    /// reaches, it is dropped. (It copies the text: parsing, which makes nearly
    /// every `Params`, does not use it.)
    pub fn push(&mut self, param: &str) {
        let mut text = String::from(std::mem::take(&mut self.text));
        append(&mut text, &mut self.spans, param);
        self.text = text.into_boxed_str();
    }

    /// The parameters as a list of `&str`, to slice or compare.
    pub fn strs(&self) -> Vec<&str> {
        self.iter().collect()
    }

    /// The parameters as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl Index<usize> for Params {
    type Output = str;

    /// The parameter at `index`; panics past the last, as a slice does. Check
    /// [`Params::len`] first, or use [`Params::get`].
    fn index(&self, index: usize) -> &str {
        match self.get(index) {
            Some(param) => param,
            None => panic!(
                "parameter {index} asked of a message with {} parameters",
                self.len()
            ),
        }
    }
}

/// Equal when the parameters are, wherever they lie in the text.
impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl<S: AsRef<str>> PartialEq<[S]> for Params {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Params {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Params {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Appends `param` to `text` and where it lies to `spans`; `false`, with nothing
/// appended, past [`MAX_PARAMS`] or 64 KiB of text.
fn append(text: &mut String, spans: &mut Spans, param: &str) -> bool {
    let start = text.len();
    let (Ok(start16), Ok(end16)) = (u16::try_from(start), u16::try_from(start + param.len()))
    else {
        return false;
    };
    if spans.len() >= MAX_PARAMS {
        return false;
    }
    text.push_str(param);
    spans.push((start16, end16));
    true
}

impl<S: AsRef<str>> FromIterator<S> for Params {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Params {
        let mut text = String::new();
        let mut spans = Spans::new();
        for p in iter {
            if !append(&mut text, &mut spans, p.as_ref()) {
                break;
            }
        }
        Params::in_text(text.into_boxed_str(), spans)
    }
}

impl<S: AsRef<str>> From<Vec<S>> for Params {
    fn from(params: Vec<S>) -> Params {
        params.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The parameters in order, as `&str`.
#[derive(Clone)]
pub struct Iter<'a> {
    params: &'a Params,
    front: usize,
    back: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.front >= self.back {
            return None;
        }
        self.front += 1;
        self.params.get(self.front - 1)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.back - self.front;
        (left, Some(left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.params.get(self.back)
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_back_in_order_from_either_end() {
        let params: Params = ["#room", "", "hello there"].into_iter().collect();
        assert_eq!(params.len(), 3);
        assert_eq!(params.get(0), Some("#room"));
        assert_eq!(&params[1], "");
        assert_eq!(params.last(), Some("hello there"));
        assert_eq!(params.get(3), None);
        let backwards: Vec<&str> = params.iter().rev().collect();
        assert_eq!(backwards, ["hello there", "", "#room"]);
        assert_eq!(params.iter().skip(1).len(), 2);
        assert_eq!(format!("{params:?}"), r##"["#room", "", "hello there"]"##);
    }

    #[test]
    fn equal_parameters_are_equal_wherever_they_lie() {
        let built: Params = ["bob", "hi"].into_iter().collect();
        let text = String::from("bob :hi");
        let parsed = Params::in_text(text.into(), [(0, 3), (5, 7)].into_iter().collect());
        assert_eq!(built, parsed);
        let other: Params = ["bob", "hi!"].into_iter().collect();
        assert_ne!(built, other);
        assert_ne!(built, Params::new());
    }

    #[test]
    fn a_parameter_past_the_limit_is_dropped() {
        let mut params = Params::new();
        for n in 0..MAX_PARAMS + 3 {
            params.push(&n.to_string());
        }
        assert_eq!(params.len(), MAX_PARAMS);
        assert_eq!(params.last(), Some("14"));
    }

    #[test]
    fn a_message_stays_small_enough_to_move_inline() {
        assert!(std::mem::size_of::<Params>() <= 40);
        assert!(std::mem::size_of::<Result<crate::Message, crate::ParseError>>() <= 128);
    }
}
