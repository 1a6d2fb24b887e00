//! A message's command, upper-cased. Every line has one and nearly all are a handful
//! of letters or three digits: it is kept inline, so parsing a line does not allocate
//! for it.

use std::fmt;
use std::ops::Deref;

use arrayvec::ArrayString;

/// Commands up to this many bytes are kept inline: every command IRC defines.
const INLINE_BYTES: usize = 22;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline(ArrayString<INLINE_BYTES>),
    /// An unknown command longer than any known one (it parses, to be answered 421).
    Heap(Box<str>),
}

/// A command such as `PRIVMSG` or `001`, compared as a string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Command(Repr);

impl Command {
    /// The command, as given.
    pub fn new(command: &str) -> Command {
        match ArrayString::from(command) {
            Ok(inline) => Command(Repr::Inline(inline)),
            Err(_) => Command(Repr::Heap(command.into())),
        }
    }

    /// The command `word` names, upper-cased (ASCII letters only).
    pub fn upper(word: &str) -> Command {
        let mut command = Command::new(word);
        match &mut command.0 {
            Repr::Inline(inline) => inline.make_ascii_uppercase(),
            Repr::Heap(heap) => heap.make_ascii_uppercase(),
        }
        command
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(inline) => inline,
            Repr::Heap(heap) => heap,
        }
    }
}

impl Default for Command {
    fn default() -> Command {
        Command(Repr::Inline(ArrayString::new()))
    }
}

impl Deref for Command {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Command {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Command {
    fn from(command: &str) -> Command {
        Command::new(command)
    }
}

impl From<String> for Command {
    fn from(command: String) -> Command {
        Command::new(&command)
    }
}

impl From<Command> for String {
    fn from(command: Command) -> String {
        command.as_str().to_owned()
    }
}

impl PartialEq<str> for Command {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Command {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Command {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Command> for &str {
    fn eq(&self, other: &Command) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Command> for str {
    fn eq(&self, other: &Command) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_commands_compare_as_their_text() {
        let long = "NONEXISTENT_COMMAND_WITH_A_LONG_NAME";
        for word in ["privmsg", "001", "", long] {
            let command = Command::upper(word);
            assert_eq!(command, word.to_ascii_uppercase().as_str());
            assert_eq!(command.to_string(), word.to_ascii_uppercase());
            assert_eq!(Command::new(word), word);
        }
        assert!(matches!(Command::upper("privmsg").0, Repr::Inline(_)));
        assert!(matches!(Command::upper(long).0, Repr::Heap(_)));
    }
}
