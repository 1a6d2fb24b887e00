//! The check behind the `parse_line` fuzz target.
//!
//! It lives in this library, not in the target, so that natter-proto's test suite
//! can replay the committed seed corpus through exactly the same code on the stable
//! toolchain (`crates/proto/tests/fuzz_seeds.rs` includes this file by path). Keep it
//! free of anything but `std` and `natter_proto` for that reason.

use natter_proto::{FramedLine, LineFramer, Message};

/// A small line limit, so that short fuzz inputs reach the framer's too-long paths.
const SMALL_MAX_LINE: usize = 40;

/// Runs every check on one fuzz input; panics on the first property that fails.
///
/// 1. The whole input, terminators and all, goes to `Message::parse` as one line:
///    it must not panic, and whatever it accepts must survive re-serialization.
/// 2. The input goes through the default `LineFramer`, and each framed line gets the
///    same treatment.
/// 3. The input goes through a small-limit framer both at once and in chunks whose
///    size the first byte picks: both must yield the same lines, never a line with
///    CR or LF or longer than the limit, and never hold more than the limit plus
///    one chunk.
pub fn check_parse_line(data: &[u8]) {
    check_line(data);

    let mut framer = LineFramer::default();
    framer.extend(data);
    while let Some(item) = framer.next_line() {
        if let FramedLine::Line(line) = item {
            assert!(
                !line.contains(&b'\r') && !line.contains(&b'\n'),
                "framer yielded a line holding CR or LF: {line:?}"
            );
            check_line(&line);
        }
    }

    let chunk = usize::from(data.first().copied().unwrap_or(0) % 7) + 1;
    let at_once = frame(SMALL_MAX_LINE, &[data]);
    let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
    let in_chunks = frame(SMALL_MAX_LINE, &chunks);
    assert_eq!(
        at_once, in_chunks,
        "framing depends on how the stream was split (chunks of {chunk})"
    );
}

/// Feeds `chunks` to a framer with a limit of `max_line`, draining it after each,
/// then a final LF so that the tail is framed too; returns what it yielded.
fn frame(max_line: usize, chunks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
    let mut framer = LineFramer::new(max_line);
    let mut out = Vec::new();
    for chunk in chunks.iter().copied().chain([&b"\n"[..]]) {
        assert!(framer.pending() <= max_line, "framer holds a too-long tail");
        framer.extend(chunk);
        assert!(framer.pending() <= max_line + chunk.len());
        while let Some(item) = framer.next_line() {
            out.push(match item {
                FramedLine::Line(line) => {
                    assert!(!line.is_empty(), "framer yielded an empty line");
                    assert!(line.len() <= max_line, "framer yielded a too-long line");
                    assert!(
                        !line.contains(&b'\r') && !line.contains(&b'\n'),
                        "framer yielded a line holding CR or LF: {line:?}"
                    );
                    Some(line.to_vec())
                }
                FramedLine::TooLong => None,
            });
        }
        assert!(framer.pending() <= max_line, "framer holds a too-long tail");
    }
    out
}

/// If `line` parses, its serialization must parse back to the same message and
/// serialize to the same bytes again.
fn check_line(line: &[u8]) {
    let Ok(first) = Message::parse(line) else {
        return;
    };
    let wire = first.to_line();
    let body = wire.strip_suffix(b"\r\n").expect("to_line ends with CR LF");
    assert!(
        !body.contains(&b'\r') && !body.contains(&b'\n') && !body.contains(&0),
        "serialization holds CR, LF or NUL: {body:?}"
    );
    let second = match Message::parse(body) {
        Ok(second) => second,
        Err(err) => panic!(
            "re-serialized line does not parse ({err:?}): input {:?} serialized as {:?}",
            String::from_utf8_lossy(line),
            String::from_utf8_lossy(body),
        ),
    };
    assert_eq!(
        first, second,
        "parse -> to_line -> parse changed the message"
    );
    assert_eq!(
        wire,
        second.to_line(),
        "parse -> to_line is not idempotent on the second round"
    );
}
