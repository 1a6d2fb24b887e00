//! Properties of the parser, the serializer and the framer, checked on generated
//! input: no input makes `Message::parse` panic, what the serializer writes parses
//! back to the same message, the framer's output does not depend on how the stream
//! was cut into reads, and parse then serialize settles after one round.

use natter_proto::{
    is_valid_tag_key, FramedLine, LineFramer, Message, ParseError, Tag, MAX_BODY_BYTES,
    MAX_CLIENT_TAG_BYTES, MAX_PARAMS,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any char but NUL, CR and LF, weighted towards the bytes the grammar cares about.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => any::<char>(),
        4 => proptest::char::range(' ', '~'),
        1 => Just(' '),
        1 => Just(':'),
        1 => Just('@'),
        1 => Just(';'),
        1 => Just('\\'),
        1 => Just('\u{1}'),
    ]
    .prop_filter("no NUL, CR or LF", |c| !matches!(c, '\0' | '\r' | '\n'))
}

/// A char that may appear anywhere in a middle parameter or a source.
fn word_char() -> impl Strategy<Value = char> {
    text_char().prop_filter("no space", |c| *c != ' ')
}

/// A tag value: anything but NUL, with the characters that must be escaped common.
/// (NUL cannot be escaped in IRCv3, so no wire line can carry it.)
fn tag_value() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => any::<char>(),
        4 => proptest::char::range(' ', '~'),
        1 => Just(';'),
        1 => Just(' '),
        1 => Just('\\'),
        1 => Just('\r'),
        1 => Just('\n'),
        1 => Just('='),
    ]
    .prop_filter("no NUL", |c| *c != '\0');
    vec(c, 0..16).prop_map(String::from_iter)
}

fn tag_key() -> impl Strategy<Value = String> {
    "\\+?([a-zA-Z0-9.-]{1,10}/)?[a-zA-Z0-9-]{1,12}"
}

fn command() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Z]{1,12}", "[A-Z][A-Z0-9_]{0,11}", "[0-9]{3}"]
}

/// Non-empty, no space, anything else (a leading `:` included).
fn source() -> impl Strategy<Value = String> {
    vec(word_char(), 1..20).prop_map(String::from_iter)
}

/// Non-empty, no space, no leading colon.
fn middle_param() -> impl Strategy<Value = String> {
    (
        word_char().prop_filter("no leading colon", |c| *c != ':'),
        vec(word_char(), 0..8),
    )
        .prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect())
}

/// Anything without NUL, CR or LF: empty, spaces, leading colons.
fn trailing_param() -> impl Strategy<Value = String> {
    vec(text_char(), 0..40).prop_map(String::from_iter)
}

/// The length of a serialized line's tag section as the parser measures it (`@`,
/// the tags and one space), and of the rest without CR LF.
fn section_lengths(wire: &[u8]) -> (usize, usize) {
    let body = wire.strip_suffix(b"\r\n").unwrap_or(wire);
    if body.first() == Some(&b'@') {
        let space = body.iter().position(|&b| b == b' ').unwrap_or(body.len());
        (space + 1, body.len() - space - 1)
    } else {
        (0, body.len())
    }
}

/// The length the parser checks against `MAX_BODY_BYTES`: what follows the leading
/// spaces, the tag section and the spaces after it.
fn parser_body_len(line: &[u8]) -> usize {
    let trim = |s: &[u8]| s.len() - s.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[line.len() - trim(line)..];
    if rest.first() == Some(&b'@') {
        match rest.iter().position(|&b| b == b' ') {
            Some(space) => trim(&rest[space..]),
            None => 0,
        }
    } else {
        rest.len()
    }
}

fn fits_in_a_line(m: &Message) -> bool {
    let (tags, body) = section_lengths(&m.to_line());
    tags <= MAX_CLIENT_TAG_BYTES && body <= MAX_BODY_BYTES
}

/// A well-formed message: valid, distinct tag keys with any values, an optional
/// source, an upper-case or numeric command, up to 14 middle parameters and an
/// optional last parameter, within the line limits.
fn well_formed_message() -> impl Strategy<Value = Message> {
    (
        vec((tag_key(), tag_value()), 0..6),
        proptest::option::of(source()),
        command(),
        vec(middle_param(), 0..MAX_PARAMS),
        proptest::option::of(trailing_param()),
    )
        .prop_map(|(raw_tags, source, command, mut params, trailing)| {
            let mut tags: Vec<Tag> = Vec::new();
            for (key, value) in raw_tags {
                if !tags.iter().any(|t| t.key == key) {
                    tags.push(Tag { key, value });
                }
            }
            params.extend(trailing);
            Message {
                tags,
                source,
                command: command.into(),
                params: params.into(),
            }
        })
        .prop_filter("fits in one line", fits_in_a_line)
}

/// Raw bytes with an IRC-ish shape: fragments of real lines mixed with NUL, CR, LF,
/// invalid UTF-8 and random bytes.
fn irc_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        1 => vec(any::<u8>(), 0..4),
        6 => "[a-zA-Z0-9]{0,8}".prop_map(String::into_bytes),
        3 => "[ -~]{0,6}".prop_map(String::into_bytes),
        1 => Just(b" ".to_vec()),
        1 => Just(b":".to_vec()),
        1 => Just(b"@".to_vec()),
        1 => Just(b";".to_vec()),
        1 => Just(b"=".to_vec()),
        1 => Just(b"\\".to_vec()),
        1 => Just(b"\0".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"\xff\xfe".to_vec()),
        1 => Just("é".as_bytes().to_vec()),
        1 => Just(b"PRIVMSG".to_vec()),
        3 => Just(b" :".to_vec()),
    ];
    vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Lines a client might send: odd spacing, lower-case commands, repeated and
/// invalid tag keys, unknown escapes, folded parameters.
fn messy_line() -> impl Strategy<Value = String> {
    let spaces = || "[ ]{0,3}";
    let raw_tag_value = vec(
        prop_oneof![
            4 => proptest::char::range('!', '~'),
            2 => any::<char>(),
            1 => Just('\\'),
        ]
        .prop_filter("no ; space NUL CR LF", |c| {
            !matches!(c, ';' | ' ' | '\0' | '\r' | '\n')
        }),
        0..10,
    )
    .prop_map(String::from_iter);
    let tag_item = (
        prop_oneof![4 => tag_key(), 1 => "[a-z_+/.é]{0,4}", 1 => Just("a".to_owned())],
        proptest::option::of(raw_tag_value),
    )
        .prop_map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        });
    let tags = proptest::option::of(vec(tag_item, 0..5).prop_map(|items| items.join(";")));
    let cmd = prop_oneof![
        3 => "[a-zA-Z]{1,10}",
        1 => "[a-zA-Z][a-zA-Z0-9_]{0,8}",
        1 => "[0-9]{3}",
        1 => "[a-zA-Z0-9_-]{0,5}",
    ];
    let param = prop_oneof![
        4 => middle_param(),
        1 => trailing_param().prop_map(|t| format!(":{t}")),
    ];
    (
        spaces(),
        tags,
        spaces(),
        proptest::option::of(source()),
        spaces(),
        cmd,
        vec((spaces(), param), 0..20),
        spaces(),
    )
        .prop_map(|(s0, tags, s1, src, s2, cmd, params, s3)| {
            let mut line = s0;
            if let Some(tags) = tags {
                line += &format!("@{tags} {s1}");
            }
            if let Some(src) = src {
                line += &format!(":{src} {s2}");
            }
            line += &cmd;
            for (sp, p) in params {
                line += &format!(" {sp}{p}");
            }
            line + &s3
        })
}

/// Bytes for the framer: line terminators are common.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            6 => any::<u8>(),
            6 => Just(b'a'),
            2 => Just(b'\n'),
            2 => Just(b'\r'),
        ],
        0..300,
    )
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// What the framer yielded, in a form that compares easily: `None` is `TooLong`.
type Framed = Vec<Option<Vec<u8>>>;

fn drain(framer: &mut LineFramer, max_line: usize, out: &mut Framed) {
    while let Some(item) = framer.next_line() {
        out.push(match item {
            FramedLine::Line(line) => {
                assert!(!line.is_empty(), "an empty line was yielded");
                assert!(line.len() <= max_line, "a too-long line was yielded");
                assert!(
                    !line.contains(&b'\r') && !line.contains(&b'\n'),
                    "a yielded line holds CR or LF: {line:?}"
                );
                Some(line.to_vec())
            }
            FramedLine::TooLong => None,
        });
    }
}

/// Feeds the stream in the given chunks, draining after each, checking the memory
/// bound as it goes.
fn frame_in_chunks(max_line: usize, chunks: &[&[u8]]) -> Framed {
    let mut framer = LineFramer::new(max_line);
    let mut out = Vec::new();
    for chunk in chunks {
        let before = framer.pending();
        assert!(before <= max_line, "holds {before} bytes between reads");
        framer.extend(chunk);
        assert!(framer.pending() <= max_line + chunk.len());
        drain(&mut framer, max_line, &mut out);
        let after = framer.pending();
        assert!(after <= max_line, "holds {after} bytes after draining");
    }
    out
}

/// Cuts `data` at the given (unsorted, possibly repeated) positions.
fn cut<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// What the framer should yield for a whole stream: each terminated segment that
/// is not empty, `TooLong` for those over the limit, and `TooLong` for an
/// unterminated tail over the limit.
fn reference_frames(data: &[u8], max_line: usize) -> Framed {
    let mut segments: Vec<&[u8]> = data.split(|&b| b == b'\r' || b == b'\n').collect();
    let tail = segments.pop().unwrap_or_default();
    let mut out: Framed = segments
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| (s.len() <= max_line).then(|| s.to_vec()))
        .collect();
    if tail.len() > max_line {
        out.push(None);
    }
    out
}

fn parse_wire(wire: &[u8]) -> Result<Message, ParseError> {
    let body = wire.strip_suffix(b"\r\n").expect("to_line ends with CR LF");
    Message::parse(body)
}

/// Parse, serialize, parse, serialize: the second round changes nothing.
fn assert_settles(line: &[u8]) -> Result<(), TestCaseError> {
    let Ok(first) = Message::parse(line) else {
        return Ok(());
    };
    let wire = first.to_line();
    let second = parse_wire(&wire);
    prop_assert_eq!(
        second.as_ref(),
        Ok(&first),
        "line {:?} serialized as {:?}",
        String::from_utf8_lossy(line),
        String::from_utf8_lossy(&wire)
    );
    prop_assert_eq!(second.unwrap().to_line(), wire);
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    /// (a) No byte string makes the parser panic, and what it accepts keeps the
    /// message's invariants.
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(data in vec(any::<u8>(), 0..600)) {
        check_parsed(&data)?;
    }

    #[test]
    fn parse_never_panics_on_irc_ish_bytes(data in irc_ish_bytes()) {
        check_parsed(&data)?;
    }

    #[test]
    fn parse_never_panics_on_long_lines(
        fill in prop_oneof![Just(b'a'), Just(b' '), Just(0u8), Just(0xffu8), any::<u8>()],
        len in 400usize..9000,
        prefix in irc_ish_bytes(),
    ) {
        let mut data = prefix;
        data.resize(data.len() + len, fill);
        check_parsed(&data)?;
        // The same length as a tag section and as a trailing parameter.
        let tagged = [&b"@a="[..], &vec![b'v'; len], b" PING x"].concat();
        check_parsed(&tagged)?;
        let trailing = [&b"PRIVMSG #a :"[..], &vec![b'x'; len]].concat();
        check_parsed(&trailing)?;
    }

    /// (b) A well-formed message survives `to_line` then `parse`.
    #[test]
    fn well_formed_messages_round_trip(m in well_formed_message()) {
        let wire = m.to_line();
        prop_assert!(wire.ends_with(b"\r\n"));
        let body = &wire[..wire.len() - 2];
        prop_assert!(!body.contains(&b'\r') && !body.contains(&b'\n') && !body.contains(&0));
        prop_assert_eq!(parse_wire(&wire), Ok(m.clone()), "wire {:?}", String::from_utf8_lossy(&wire));
        // And the server's own framer hands the same bytes to the parser.
        let mut framer = LineFramer::default();
        framer.extend(&wire);
        prop_assert_eq!(framer.next_line(), Some(FramedLine::Line(body.to_vec().into())));
        prop_assert_eq!(framer.next_line(), None);
        prop_assert_eq!(framer.pending(), 0);
    }

    /// (b) Right at the limits: a body of 500 to 510 bytes and a tag section of
    /// up to 4096 bytes still round-trip.
    #[test]
    fn well_formed_messages_round_trip_at_the_limits(
        m in well_formed_message(),
        body_len in (MAX_BODY_BYTES - 10)..=MAX_BODY_BYTES,
        tags_len in (MAX_CLIENT_TAG_BYTES - 10)..=MAX_CLIENT_TAG_BYTES,
    ) {
        let mut m = m;
        // Pad the last parameter to the body length.
        if m.params.is_empty() {
            m.params.push("");
        }
        let pad_last = |m: &mut Message, by: usize| {
            let mut params = m.params.to_vec();
            if let Some(last) = params.last_mut() {
                last.push_str(&"x".repeat(by));
            }
            m.params = params.into();
        };
        let (_, body) = section_lengths(&m.to_line());
        prop_assume!(body <= body_len);
        pad_last(&mut m, body_len - body);
        // Padding an empty last parameter drops the colon it needed: pad once more.
        let (_, body) = section_lengths(&m.to_line());
        pad_last(&mut m, body_len - body);
        // Pad with one more tag to the tag section length.
        let (tags, _) = section_lengths(&m.to_line());
        let extra = if tags == 0 { "@k=".len() + 1 } else { ";k=".len() };
        prop_assume!(!m.tags.iter().any(|t| t.key == "k") && tags + extra < tags_len);
        m.tags.push(Tag { key: "k".into(), value: "v".repeat(tags_len - tags - extra) });
        prop_assert_eq!(section_lengths(&m.to_line()), (tags_len, body_len));
        prop_assert_eq!(parse_wire(&m.to_line()), Ok(m));
    }

    /// (b) The command is matched without regard to case and comes back upper-cased.
    #[test]
    fn commands_are_upper_cased(m in well_formed_message(), lower in "[a-z][a-z0-9_]{0,11}") {
        let mut sent = m.clone();
        sent.command = lower.as_str().into();
        let mut expected = m;
        expected.command = lower.to_ascii_uppercase().into();
        prop_assert_eq!(parse_wire(&sent.to_line()), Ok(expected));
    }

    /// (c) However the stream is cut into reads, the framer yields the same lines,
    /// the ones a plain split predicts, and holds at most the limit plus one read.
    #[test]
    fn framing_does_not_depend_on_read_boundaries(
        data in stream(),
        cuts in vec(any::<Index>(), 0..20),
        max_line in 1usize..40,
    ) {
        let whole = frame_in_chunks(max_line, &[&data[..]]);
        prop_assert_eq!(&whole, &reference_frames(&data, max_line));
        let chunks = cut(&data, &cuts);
        prop_assert_eq!(&frame_in_chunks(max_line, &chunks), &whole, "chunks {:?}", chunks);
        // With a final terminator the tails are framed too, and must agree as well.
        let mut chunks_nl = chunks.clone();
        chunks_nl.push(b"\n");
        prop_assert_eq!(
            frame_in_chunks(max_line, &chunks_nl),
            frame_in_chunks(max_line, &[&data[..], b"\n"])
        );
    }

    /// (c) Lines lent in place (`next_line_with`, as the server's connections read
    /// them) are the lines split off, however the stream is cut, and leave the
    /// framer holding the same bytes.
    #[test]
    fn lines_lent_in_place_match_lines_split_off(
        data in stream(),
        cuts in vec(any::<Index>(), 0..20),
        max_line in 1usize..40,
    ) {
        let mut split = LineFramer::new(max_line);
        let mut lent = LineFramer::new(max_line);
        let (mut split_out, mut lent_out) = (Vec::new(), Vec::new());
        for chunk in cut(&data, &cuts) {
            split.extend(chunk);
            lent.extend(chunk);
            drain(&mut split, max_line, &mut split_out);
            while let Some(item) = lent.next_line_with(<[u8]>::to_vec) {
                lent_out.push(match item {
                    FramedLine::Line(line) => Some(line),
                    FramedLine::TooLong => None,
                });
            }
            prop_assert_eq!(lent.pending(), split.pending());
        }
        prop_assert_eq!(lent_out, split_out);
    }

    /// (c) Byte by byte, the slowest peer, changes nothing either.
    #[test]
    fn framing_byte_by_byte(data in stream(), max_line in 1usize..40) {
        let bytes: Vec<&[u8]> = data.chunks(1).chain([&b"\n"[..]]).collect();
        prop_assert_eq!(
            frame_in_chunks(max_line, &bytes),
            frame_in_chunks(max_line, &[&data[..], b"\n"])
        );
    }

    /// (d) Parse then serialize settles after one round on lines as clients write
    /// them.
    #[test]
    fn reserialize_is_idempotent(line in messy_line()) {
        prop_assert!(line.len() < MAX_CLIENT_TAG_BYTES + MAX_BODY_BYTES);
        assert_settles(line.as_bytes())?;
    }

    #[test]
    fn reserialize_is_idempotent_on_irc_ish_bytes(data in irc_ish_bytes()) {
        assert_settles(&data)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// (c) The default framer on streams with lines around its real limit.
    #[test]
    fn default_framer_on_long_lines(
        lens in vec(0usize..6000, 1..6),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut data = Vec::new();
        for len in lens {
            data.resize(data.len() + len, b'x');
            data.extend_from_slice(b"\r\n");
        }
        let max_line = MAX_CLIENT_TAG_BYTES + MAX_BODY_BYTES;
        let whole = {
            let mut f = LineFramer::default();
            f.extend(&data);
            let mut out = Vec::new();
            drain(&mut f, max_line, &mut out);
            out
        };
        prop_assert_eq!(&whole, &reference_frames(&data, max_line));
        let chunks = cut(&data, &cuts);
        let mut f = LineFramer::default();
        let mut out = Vec::new();
        for chunk in &chunks {
            f.extend(chunk);
            prop_assert!(f.pending() <= max_line + chunk.len());
            drain(&mut f, max_line, &mut out);
            prop_assert!(f.pending() <= max_line);
        }
        prop_assert_eq!(out, whole);
    }
}

/// What every accepted line must give: an upper-case word command (a letter, then
/// letters, digits or `_`) or a 3-digit one, valid and distinct tag keys, at most
/// 15 parameters of which only the last may be empty, start with a colon or hold a
/// space, and no NUL, CR or LF anywhere.
fn check_parsed(data: &[u8]) -> Result<(), TestCaseError> {
    let Ok(m) = Message::parse(data) else {
        return Ok(());
    };
    let c = m.command.as_bytes();
    let word = c.first().is_some_and(u8::is_ascii_uppercase)
        && c.iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    let numeric = c.len() == 3 && c.iter().all(u8::is_ascii_digit);
    prop_assert!(word || numeric, "command {:?}", m.command);
    for (i, t) in m.tags.iter().enumerate() {
        prop_assert!(is_valid_tag_key(&t.key), "tag key {:?}", t.key);
        prop_assert!(!m.tags[..i].iter().any(|u| u.key == t.key), "repeated key");
        prop_assert!(!t.value.contains('\0'));
    }
    prop_assert!(m.params.len() <= MAX_PARAMS);
    if let Some(last) = m.params.len().checked_sub(1) {
        for p in m.params.iter().take(last) {
            prop_assert!(
                !p.is_empty() && !p.starts_with(':') && !p.contains(' '),
                "middle {:?}",
                p
            );
        }
    }
    if let Some(source) = &m.source {
        prop_assert!(!source.contains(' '));
    }
    let all_text = m
        .params
        .iter()
        .chain(m.source.as_deref())
        .chain([m.command.as_str()]);
    for s in all_text {
        prop_assert!(!s.contains(['\0', '\r', '\n']), "{:?}", s);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// At the body limit.
// ---------------------------------------------------------------------------

/// A 510-byte body whose last parameter has no colon is written back without one
/// (`to_line` adds the colon only where needed), so it still parses. Found by the
/// fuzzer: `"A "` followed by 508 `a`s once grew to 511 bytes.
#[test]
fn a_510_byte_body_survives_reserialization() {
    let line = format!("A {}", "a".repeat(508));
    assert_eq!(line.len(), MAX_BODY_BYTES);
    let first = Message::parse(line.as_bytes()).expect("a 510-byte body is accepted");
    let wire = first.to_line();
    assert_eq!(parse_wire(&wire), Ok(first));
}

proptest! {
    /// Lines as a client would write them (single spaces, the last parameter
    /// without a colon when it needs none), padded to a 500 to 510-byte body.
    #[test]
    fn reserialize_is_idempotent_at_the_length_limit(
        m in well_formed_message(),
        body_len in (MAX_BODY_BYTES - 10)..=MAX_BODY_BYTES,
    ) {
        let line = client_style_line(&m);
        let body = parser_body_len(line.as_bytes());
        prop_assume!(body <= body_len);
        let padded = format!("{line}{}", "x".repeat(body_len - body));
        prop_assert_eq!(parser_body_len(padded.as_bytes()), body_len);
        assert_settles(padded.as_bytes())?;
    }
}

/// `m` as a client would write it: like `to_line`, but the last parameter has a
/// colon only when it needs one, and no CR LF.
fn client_style_line(m: &Message) -> String {
    let mut line = String::from_utf8(m.to_line()).unwrap();
    line.truncate(line.len() - 2);
    if let Some(last) = m.params.last() {
        let needs_colon = last.is_empty() || last.starts_with(':') || last.contains(' ');
        if !needs_colon {
            let colon = line.len() - last.len() - 1;
            line.remove(colon);
        }
    }
    line
}
