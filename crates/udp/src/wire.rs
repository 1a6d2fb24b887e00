//! The reliable-mode datagram format: encoding and a decoder that never panics.
//!
//! Every integer is big-endian and fixed-width, so a client in any language can be
//! written from `docs/udp.md` with nothing but byte shuffling. Every packet starts with a
//! byte in `0xF8..=0xFE`: no UTF-8 text starts with such a byte, and IRC lines are text, so
//! one socket serves plain-mode IRC lines and reliable-mode packets and a single look at
//! the first byte tells them apart.

use std::fmt;
use std::ops::RangeInclusive;

use crate::cookie::RESET_TOKEN_LEN;

/// The protocol version this crate speaks, carried in the handshake packets.
pub const VERSION: u8 = 1;

/// The base datagram size, headers included: every session starts at it, and sends
/// larger datagrams only once path MTU discovery has proved the path carries them
/// (`path_mtu`). 1200 bytes fits in the minimum IPv6 MTU (1280) with room for IP and
/// UDP headers, so no datagram is ever fragmented by IP (QUIC's reasoning, and its
/// number).
pub const MAX_DATAGRAM_SIZE: usize = 1200;

/// An Initial shorter than this is dropped: padding the client's first packet to full size
/// is what lets the server answer it (Retry, Accept) without ever amplifying.
pub const MIN_INITIAL_SIZE: usize = MAX_DATAGRAM_SIZE;

/// The smallest first byte of a reliable-mode packet; anything below is plain-mode text.
pub const FIRST_RELIABLE_BYTE: u8 = 0xF8;

/// At most this many acknowledgement ranges per ACK frame: bounds both the frame (16 ×
/// 16 bytes) and the work a hostile peer can make the decoder do.
pub const MAX_ACK_RANGES: usize = 16;

/// At most this many bytes in a cookie or path token field. Ours are 13; the limit is for
/// future formats and bounds what the decoder accepts.
pub const MAX_TOKEN_LEN: usize = 64;

/// Stream offsets stay below 2^62 so that `offset + len` can never overflow anywhere.
pub const MAX_STREAM_OFFSET: u64 = 1 << 62;

/// Bytes in a Data packet before its frames: type, session id, packet number, payload
/// length. The length makes a truncated (or padded) datagram malformed instead of a
/// shorter valid packet: without it, a copy cut at a frame boundary would be taken for
/// the real packet, whose packet number would then make the real one a duplicate.
pub const DATA_HEADER_LEN: usize = 1 + 8 + 8 + 2;

/// Bytes in a STREAM frame before its data: type, offset, length.
pub const STREAM_FRAME_OVERHEAD: usize = 1 + 8 + 2;

/// Bytes of a Reset packet: type, session id, token. A server sends one only in answer to
/// a longer datagram, so resets can neither amplify nor loop.
pub const RESET_LEN: usize = 1 + 8 + RESET_TOKEN_LEN;

/// The packet kinds, by first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Client → server: open a session (padded to [`MIN_INITIAL_SIZE`]).
    Initial = 0xF8,
    /// Server → client: "prove your address: send Initial again with this cookie".
    Retry = 0xF9,
    /// Server → client: the session exists; here is its id.
    Accept = 0xFA,
    /// Either way: acknowledgements, lines, keepalives, close.
    Data = 0xFB,
    /// Server → a client's new address: echo this token from there.
    PathChallenge = 0xFC,
    /// Client → server: the echo.
    PathResponse = 0xFD,
    /// Server → client: "I have no such session" (authenticated by the reset token).
    Reset = 0xFE,
}

impl PacketType {
    fn from_byte(b: u8) -> Option<PacketType> {
        Some(match b {
            0xF8 => PacketType::Initial,
            0xF9 => PacketType::Retry,
            0xFA => PacketType::Accept,
            0xFB => PacketType::Data,
            0xFC => PacketType::PathChallenge,
            0xFD => PacketType::PathResponse,
            0xFE => PacketType::Reset,
            _ => return None,
        })
    }
}

/// Frame type bytes inside a Data packet.
mod frame_type {
    pub const PADDING: u8 = 0x00;
    pub const ACK: u8 = 0x01;
    pub const STREAM: u8 = 0x02;
    pub const PING: u8 = 0x03;
    pub const CLOSE: u8 = 0x04;
    pub const CLOSE_ACK: u8 = 0x05;
}

/// A decoded packet. Borrowed from the datagram, so decoding allocates only for the
/// frame list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Client → server handshake; `cookie` is empty on the first try.
    Initial {
        /// Protocol version the client speaks.
        version: u8,
        /// The client's random nonce: names this connection attempt.
        nonce: u64,
        /// The cookie from the server's Retry, or empty.
        cookie: &'a [u8],
    },
    /// Server → client: retry the Initial with this cookie.
    Retry {
        /// Protocol version of the server.
        version: u8,
        /// The nonce of the Initial this answers (so a stray Retry is ignored).
        nonce: u64,
        /// The cookie to echo.
        cookie: &'a [u8],
    },
    /// Server → client: the session is open.
    Accept {
        /// Protocol version of the server.
        version: u8,
        /// The nonce of the Initial this answers.
        nonce: u64,
        /// The session id to put in every Data packet.
        session_id: u64,
        /// The token a later Reset for this session will carry.
        reset_token: [u8; RESET_TOKEN_LEN],
    },
    /// Session traffic.
    Data {
        /// Which session.
        session_id: u64,
        /// Per-direction, per-session, strictly increasing, never reused.
        packet_number: u64,
        /// The frames, in order.
        frames: Vec<Frame<'a>>,
    },
    /// Server → client's new address.
    PathChallenge {
        /// Which session.
        session_id: u64,
        /// Token to echo.
        token: &'a [u8],
    },
    /// Client → server, the echo of a challenge.
    PathResponse {
        /// Which session.
        session_id: u64,
        /// The echoed token.
        token: &'a [u8],
    },
    /// Server → client: the session is unknown here.
    Reset {
        /// Which session.
        session_id: u64,
        /// Must equal the token from Accept, or the Reset is ignored.
        token: [u8; RESET_TOKEN_LEN],
    },
}

/// A frame inside a Data packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Acknowledgement and flow-control credit.
    Ack(AckFrame),
    /// Bytes of the line stream at `offset`.
    Stream {
        /// Stream offset of the first byte.
        offset: u64,
        /// The bytes (at most 65535).
        data: &'a [u8],
    },
    /// Asks for an acknowledgement: keepalive and probe.
    Ping,
    /// "I have sent everything (up to `final_offset`) and it was all acknowledged; stop."
    Close {
        /// Reason code; 0 is a normal close.
        code: u8,
        /// Length of the sender's stream: the receiver has it all before it answers.
        final_offset: u64,
    },
    /// Answer to Close.
    CloseAck,
}

/// The ACK frame: cumulative stream acknowledgement, flow-control credit and the packet
/// numbers received (selective acknowledgement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFrame {
    /// Every stream byte below this offset has been received (TCP's cumulative ack).
    pub cum_offset: u64,
    /// The sender of this frame accepts stream bytes below this offset (flow control).
    pub max_offset: u64,
    /// Microseconds between receiving the largest acknowledged packet and sending this.
    pub ack_delay_micros: u32,
    /// Received packet numbers as inclusive ranges, highest first, disjoint, not touching.
    pub ranges: Vec<RangeInclusive<u64>>,
}

impl AckFrame {
    /// The largest packet number acknowledged, if any.
    pub fn largest(&self) -> Option<u64> {
        self.ranges.first().map(|r| *r.end())
    }

    /// Encoded size in bytes, frame type included.
    pub fn encoded_len(&self) -> usize {
        1 + 8 + 8 + 4 + 1 + 16 * self.ranges.len()
    }
}

/// Why a datagram is not a valid reliable-mode packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Zero bytes.
    Empty,
    /// The first byte is below [`FIRST_RELIABLE_BYTE`]: this is plain-mode text.
    NotReliable,
    /// The first byte is in the reliable range but names no packet type (0xFF).
    UnknownPacketType(u8),
    /// The datagram ended inside the named field.
    Truncated(&'static str),
    /// A Data packet holds a frame type this version does not know.
    UnknownFrameType(u8),
    /// A length field exceeds its limit (token, ack range count).
    TooLong(&'static str),
    /// ACK ranges that are empty, unordered, overlapping or touching.
    BadAckRanges,
    /// A stream offset or final offset beyond [`MAX_STREAM_OFFSET`].
    OffsetTooLarge,
    /// Bytes after the end of a fixed-size packet.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty datagram"),
            DecodeError::NotReliable => write!(f, "not a reliable-mode packet (plain-mode text?)"),
            DecodeError::UnknownPacketType(b) => write!(f, "unknown packet type 0x{b:02x}"),
            DecodeError::Truncated(what) => write!(f, "datagram truncated in {what}"),
            DecodeError::UnknownFrameType(b) => write!(f, "unknown frame type 0x{b:02x}"),
            DecodeError::TooLong(what) => write!(f, "{what} exceeds its limit"),
            DecodeError::BadAckRanges => write!(f, "ack ranges not descending and disjoint"),
            DecodeError::OffsetTooLarge => write!(f, "stream offset beyond 2^62"),
            DecodeError::TrailingBytes => write!(f, "trailing bytes after packet"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// True if the datagram is (claims to be) reliable mode rather than plain-mode text.
pub fn is_reliable(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|&b| b >= FIRST_RELIABLE_BYTE)
}

/// The session id of a Data, PathChallenge, PathResponse or Reset packet, read without
/// decoding the rest: what a server needs to find the session a datagram belongs to.
pub fn peek_session_id(datagram: &[u8]) -> Option<u64> {
    let ty = PacketType::from_byte(*datagram.first()?)?;
    match ty {
        PacketType::Data
        | PacketType::PathChallenge
        | PacketType::PathResponse
        | PacketType::Reset => {
            let id = datagram.get(1..9)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(id);
            Some(u64::from_be_bytes(b))
        }
        PacketType::Initial | PacketType::Retry | PacketType::Accept => None,
    }
}

/// The packet type of a datagram, read from its first byte.
pub fn peek_type(datagram: &[u8]) -> Option<PacketType> {
    PacketType::from_byte(*datagram.first()?)
}

/// A bounds-checked reader: every read either succeeds or says which field was cut short.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = self.take(1, what)?;
        b.first().copied().ok_or(DecodeError::Truncated(what))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2, what)?);
        Ok(u16::from_be_bytes(a))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_be_bytes(a))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_be_bytes(a))
    }

    fn token(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8(what)?);
        if len > MAX_TOKEN_LEN {
            return Err(DecodeError::TooLong(what));
        }
        self.take(len, what)
    }

    fn reset_token(&mut self) -> Result<[u8; RESET_TOKEN_LEN], DecodeError> {
        let mut t = [0u8; RESET_TOKEN_LEN];
        t.copy_from_slice(self.take(RESET_TOKEN_LEN, "reset token")?);
        Ok(t)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Decodes one datagram. Never panics, whatever the bytes; anything malformed is an
/// error naming what was wrong, so the caller can count it and drop the datagram.
pub fn decode(datagram: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let (&first, rest) = datagram.split_first().ok_or(DecodeError::Empty)?;
    if first < FIRST_RELIABLE_BYTE {
        return Err(DecodeError::NotReliable);
    }
    let ty = PacketType::from_byte(first).ok_or(DecodeError::UnknownPacketType(first))?;
    let mut r = Reader { buf: rest };
    match ty {
        PacketType::Initial => {
            let version = r.u8("version")?;
            let nonce = r.u64("nonce")?;
            let cookie = r.token("cookie")?;
            // The rest is padding; its content is ignored so that future versions may use it.
            Ok(Packet::Initial {
                version,
                nonce,
                cookie,
            })
        }
        PacketType::Retry => {
            let version = r.u8("version")?;
            let nonce = r.u64("nonce")?;
            let cookie = r.token("cookie")?;
            r.finish()?;
            Ok(Packet::Retry {
                version,
                nonce,
                cookie,
            })
        }
        PacketType::Accept => {
            let version = r.u8("version")?;
            let nonce = r.u64("nonce")?;
            let session_id = r.u64("session id")?;
            let reset_token = r.reset_token()?;
            r.finish()?;
            Ok(Packet::Accept {
                version,
                nonce,
                session_id,
                reset_token,
            })
        }
        PacketType::Data => {
            let session_id = r.u64("session id")?;
            let packet_number = r.u64("packet number")?;
            let len = r.u16("payload length")?;
            let payload = r.take(usize::from(len), "payload")?;
            r.finish()?;
            let frames = decode_frames(&mut Reader { buf: payload })?;
            Ok(Packet::Data {
                session_id,
                packet_number,
                frames,
            })
        }
        PacketType::PathChallenge | PacketType::PathResponse => {
            let session_id = r.u64("session id")?;
            let token = r.token("path token")?;
            r.finish()?;
            Ok(if ty == PacketType::PathChallenge {
                Packet::PathChallenge { session_id, token }
            } else {
                Packet::PathResponse { session_id, token }
            })
        }
        PacketType::Reset => {
            let session_id = r.u64("session id")?;
            let token = r.reset_token()?;
            r.finish()?;
            Ok(Packet::Reset { session_id, token })
        }
    }
}

fn decode_frames<'a>(r: &mut Reader<'a>) -> Result<Vec<Frame<'a>>, DecodeError> {
    let mut frames = Vec::new();
    while !r.buf.is_empty() {
        let t = r.u8("frame type")?;
        match t {
            frame_type::PADDING => {}
            frame_type::ACK => frames.push(Frame::Ack(decode_ack(r)?)),
            frame_type::STREAM => {
                let offset = r.u64("stream offset")?;
                let len = r.u16("stream length")?;
                let data = r.take(usize::from(len), "stream data")?;
                if offset > MAX_STREAM_OFFSET - u64::from(len) {
                    return Err(DecodeError::OffsetTooLarge);
                }
                frames.push(Frame::Stream { offset, data });
            }
            frame_type::PING => frames.push(Frame::Ping),
            frame_type::CLOSE => {
                let code = r.u8("close code")?;
                let final_offset = r.u64("final offset")?;
                if final_offset > MAX_STREAM_OFFSET {
                    return Err(DecodeError::OffsetTooLarge);
                }
                frames.push(Frame::Close { code, final_offset });
            }
            frame_type::CLOSE_ACK => frames.push(Frame::CloseAck),
            other => return Err(DecodeError::UnknownFrameType(other)),
        }
    }
    Ok(frames)
}

fn decode_ack(r: &mut Reader<'_>) -> Result<AckFrame, DecodeError> {
    let cum_offset = r.u64("ack cumulative offset")?;
    let max_offset = r.u64("ack max offset")?;
    let ack_delay_micros = r.u32("ack delay")?;
    let count = usize::from(r.u8("ack range count")?);
    if count > MAX_ACK_RANGES {
        return Err(DecodeError::TooLong("ack range count"));
    }
    if cum_offset > MAX_STREAM_OFFSET || max_offset > MAX_STREAM_OFFSET {
        return Err(DecodeError::OffsetTooLarge);
    }
    let mut ranges: Vec<RangeInclusive<u64>> = Vec::with_capacity(count);
    let mut floor: Option<u64> = None; // every later range must end below this
    for _ in 0..count {
        let start = r.u64("ack range start")?;
        let end = r.u64("ack range end")?;
        if start > end {
            return Err(DecodeError::BadAckRanges);
        }
        if let Some(f) = floor {
            // Descending, disjoint and not touching: end + 1 < previous start.
            if end.checked_add(1).is_none_or(|e| e >= f) {
                return Err(DecodeError::BadAckRanges);
            }
        }
        floor = Some(start);
        ranges.push(start..=end);
    }
    Ok(AckFrame {
        cum_offset,
        max_offset,
        ack_delay_micros,
        ranges,
    })
}

fn put_token(out: &mut Vec<u8>, token: &[u8]) {
    let token = token.get(..MAX_TOKEN_LEN).unwrap_or(token);
    out.push(token.len() as u8); // ≤ MAX_TOKEN_LEN < 256
    out.extend_from_slice(token);
}

impl Packet<'_> {
    /// Appends the encoded packet to `out`. Encoding is total: fields beyond their limits
    /// (a token longer than [`MAX_TOKEN_LEN`], stream data longer than 65535 bytes, more
    /// than [`MAX_ACK_RANGES`] ranges) are cut to the limit rather than producing bytes
    /// the decoder would reject. An Initial is padded to [`MIN_INITIAL_SIZE`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            Packet::Initial {
                version,
                nonce,
                cookie,
            } => {
                out.push(PacketType::Initial as u8);
                out.push(*version);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_token(out, cookie);
                let len = out.len() - start;
                if len < MIN_INITIAL_SIZE {
                    out.resize(start + MIN_INITIAL_SIZE, 0);
                }
            }
            Packet::Retry {
                version,
                nonce,
                cookie,
            } => {
                out.push(PacketType::Retry as u8);
                out.push(*version);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_token(out, cookie);
            }
            Packet::Accept {
                version,
                nonce,
                session_id,
                reset_token,
            } => {
                out.push(PacketType::Accept as u8);
                out.push(*version);
                out.extend_from_slice(&nonce.to_be_bytes());
                out.extend_from_slice(&session_id.to_be_bytes());
                out.extend_from_slice(reset_token);
            }
            Packet::Data {
                session_id,
                packet_number,
                frames,
            } => {
                let mut payload = Vec::new();
                for f in frames {
                    f.encode(&mut payload);
                }
                encode_data(out, *session_id, *packet_number, &payload);
            }
            Packet::PathChallenge { session_id, token } => {
                out.push(PacketType::PathChallenge as u8);
                out.extend_from_slice(&session_id.to_be_bytes());
                put_token(out, token);
            }
            Packet::PathResponse { session_id, token } => {
                out.push(PacketType::PathResponse as u8);
                out.extend_from_slice(&session_id.to_be_bytes());
                put_token(out, token);
            }
            Packet::Reset { session_id, token } => {
                out.push(PacketType::Reset as u8);
                out.extend_from_slice(&session_id.to_be_bytes());
                out.extend_from_slice(token);
            }
        }
    }

    /// The encoded packet as a new buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// Writes a Data packet around already-encoded frames (`payload`, at most 65535 bytes;
/// more is cut). Split out so the session can build the frames while watching the size.
pub fn encode_data(out: &mut Vec<u8>, session_id: u64, packet_number: u64, payload: &[u8]) {
    let payload = payload.get(..usize::from(u16::MAX)).unwrap_or(payload);
    out.push(PacketType::Data as u8);
    out.extend_from_slice(&session_id.to_be_bytes());
    out.extend_from_slice(&packet_number.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Starts a Data packet at the end of `out`: its header, with the payload length left
/// for [`finish_data`]. The frames are then appended right after it, so a packet is
/// built in place, with no copy of its payload.
pub fn begin_data(out: &mut Vec<u8>, session_id: u64, packet_number: u64) {
    out.push(PacketType::Data as u8);
    out.extend_from_slice(&session_id.to_be_bytes());
    out.extend_from_slice(&packet_number.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// Writes the payload length of the packet begun with [`begin_data`] at `start` in
/// `out`: everything after its header, cut to 65535 bytes.
pub fn finish_data(out: &mut Vec<u8>, start: usize) {
    let payload_at = start + DATA_HEADER_LEN;
    out.truncate(payload_at + usize::from(u16::MAX));
    let payload_len = out.len().saturating_sub(payload_at) as u16;
    if let Some(len) = out.get_mut(payload_at - 2..payload_at) {
        len.copy_from_slice(&payload_len.to_be_bytes());
    }
}

/// Appends the head of a STREAM frame carrying `len` bytes at `offset`; exactly `len`
/// bytes of stream data must follow. The same bytes as [`Frame::Stream`] encodes, for
/// a sender that copies the data straight from its buffer.
pub fn encode_stream_head(out: &mut Vec<u8>, offset: u64, len: u16) {
    out.push(frame_type::STREAM);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

impl Frame<'_> {
    /// Appends the encoded frame to `out` (see [`Packet::encode`] for the limits).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Ack(a) => {
                out.push(frame_type::ACK);
                out.extend_from_slice(&a.cum_offset.to_be_bytes());
                out.extend_from_slice(&a.max_offset.to_be_bytes());
                out.extend_from_slice(&a.ack_delay_micros.to_be_bytes());
                let n = a.ranges.len().min(MAX_ACK_RANGES);
                out.push(n as u8);
                for r in a.ranges.iter().take(n) {
                    out.extend_from_slice(&r.start().to_be_bytes());
                    out.extend_from_slice(&r.end().to_be_bytes());
                }
            }
            Frame::Stream { offset, data } => {
                let data = data.get(..usize::from(u16::MAX)).unwrap_or(data);
                encode_stream_head(out, *offset, data.len() as u16);
                out.extend_from_slice(data);
            }
            Frame::Ping => out.push(frame_type::PING),
            Frame::Close { code, final_offset } => {
                out.push(frame_type::CLOSE);
                out.push(*code);
                out.extend_from_slice(&final_offset.to_be_bytes());
            }
            Frame::CloseAck => out.push(frame_type::CLOSE_ACK),
        }
    }

    /// True if receiving this frame obliges the receiver to acknowledge the packet.
    /// ACK and CLOSE_ACK do not, so acknowledgements are never acknowledged (no ack loops).
    pub fn is_ack_eliciting(&self) -> bool {
        matches!(
            self,
            Frame::Stream { .. } | Frame::Ping | Frame::Close { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_packets() -> Vec<Vec<u8>> {
        let cookie = [7u8; 13];
        let packets = [
            Packet::Initial {
                version: VERSION,
                nonce: 0x0102030405060708,
                cookie: &[],
            },
            Packet::Initial {
                version: VERSION,
                nonce: 9,
                cookie: &cookie,
            },
            Packet::Retry {
                version: VERSION,
                nonce: 9,
                cookie: &cookie,
            },
            Packet::Accept {
                version: VERSION,
                nonce: 9,
                session_id: 0xdead_beef,
                reset_token: [3; 16],
            },
            Packet::Data {
                session_id: 1,
                packet_number: 2,
                frames: vec![
                    Frame::Ack(AckFrame {
                        cum_offset: 10,
                        max_offset: 1000,
                        ack_delay_micros: 25_000,
                        ranges: vec![10..=12, 5..=8, 0..=3],
                    }),
                    Frame::Stream {
                        offset: 10,
                        data: b"\x00\x05hello",
                    },
                    Frame::Ping,
                    Frame::Close {
                        code: 0,
                        final_offset: 17,
                    },
                    Frame::CloseAck,
                ],
            },
            Packet::PathChallenge {
                session_id: 5,
                token: &cookie,
            },
            Packet::PathResponse {
                session_id: 5,
                token: &cookie,
            },
            Packet::Reset {
                session_id: 5,
                token: [1; 16],
            },
        ];
        packets.iter().map(Packet::to_vec).collect()
    }

    #[test]
    fn every_packet_kind_round_trips() {
        for bytes in sample_packets() {
            let p = decode(&bytes).unwrap();
            assert_eq!(p.to_vec(), bytes, "{p:?}");
            assert!(is_reliable(&bytes));
        }
    }

    #[test]
    fn initial_is_padded_to_the_minimum_size() {
        let bytes = Packet::Initial {
            version: VERSION,
            nonce: 1,
            cookie: &[],
        }
        .to_vec();
        assert_eq!(bytes.len(), MIN_INITIAL_SIZE);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_valid_packet_never_a_panic() {
        for bytes in sample_packets() {
            for cut in 0..bytes.len() {
                let _ = decode(&bytes[..cut]);
            }
        }
        // A Data packet cut inside its header or inside a frame is an error.
        let data = &sample_packets()[4];
        for cut in 0..DATA_HEADER_LEN {
            assert!(decode(&data[..cut]).is_err());
        }
        // Cut anywhere, even at a frame boundary, a Data packet is malformed.
        for cut in DATA_HEADER_LEN..data.len() {
            assert_eq!(decode(&data[..cut]), Err(DecodeError::Truncated("payload")));
        }
        let mut padded = data.clone();
        padded.push(0);
        assert_eq!(decode(&padded), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn plain_text_and_0xff_are_not_reliable_packets() {
        assert_eq!(decode(b"NICK bob\r\n"), Err(DecodeError::NotReliable));
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode(&[0xFF, 1]),
            Err(DecodeError::UnknownPacketType(0xFF))
        );
        assert!(!is_reliable("é".as_bytes()));
        assert!(!is_reliable(b"@time=x :a PRIVMSG #r :hi"));
    }

    #[test]
    fn ack_ranges_must_descend_without_touching() {
        let mut payload = Vec::new();
        let bytes = &mut payload;
        bytes.push(frame_type::ACK);
        bytes.extend_from_slice(&0u64.to_be_bytes());
        bytes.extend_from_slice(&0u64.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.push(2);
        for v in [5u64, 8, 9, 12] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        let mut packet = Vec::new();
        encode_data(&mut packet, 1, 1, &payload);
        assert_eq!(decode(&packet), Err(DecodeError::BadAckRanges));
    }

    #[test]
    fn session_id_can_be_peeked_for_routing() {
        let all = sample_packets();
        assert_eq!(peek_session_id(&all[0]), None);
        assert_eq!(peek_session_id(&all[4]), Some(1));
        assert_eq!(peek_session_id(&all[5]), Some(5));
        assert_eq!(peek_session_id(&all[4][..5]), None);
    }
}
