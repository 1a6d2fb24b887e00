//! The sizes the IRC and IRCv3 specifications put on a line.

/// The part of a line after the tags, CR LF included (RFC 1459, section 2.3).
pub const MAX_LINE_BYTES: usize = 512;

/// The part of a line after the tags, without its CR LF: what the parser sees.
pub const MAX_BODY_BYTES: usize = MAX_LINE_BYTES - 2;

/// Tags a client may send, the leading `@` and the trailing space included
/// (IRCv3 message-tags: 4096 bytes).
pub const MAX_CLIENT_TAG_BYTES: usize = 4096;

/// Tags a server may send in all, the leading `@` and the trailing space included.
pub const MAX_SERVER_TAG_BYTES: usize = 8191;

/// RFC 1459 allows at most 15 parameters; more are folded into the last one.
pub const MAX_PARAMS: usize = 15;
