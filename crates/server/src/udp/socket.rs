//! The UDP socket, with as many datagrams per system call as the kernel allows.
//!
//! `quinn-udp` does the system calls: on Linux it receives with `recvmmsg` (up to
//! [`quinn_udp::BATCH_SIZE`] datagrams per call) with GRO (the kernel may hand over
//! several datagrams of one peer as one buffer cut at `stride`), and sends with GSO
//! (several equal-sized datagrams to one destination in one `sendmsg`). It also reports
//! the local address each datagram was sent to, so a server bound to `0.0.0.0` answers
//! from the address the client wrote to. Elsewhere it falls back to one datagram per
//! call. It does not offer `sendmmsg` across destinations (quinn dropped it for GSO), so
//! a room message fanned out to many plain-mode peers still costs one `sendmsg` each;
//! see docs/udp.md.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState, BATCH_SIZE};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Room for one receive slot: the largest UDP payload, so that neither a plain-mode
/// datagram nor a GRO batch (at most 64 KiB in all) is ever cut short.
const SLOT: usize = 64 * 1024;

/// The kernel's receive buffer asked for: room for bursts from many peers while the
/// task is busy (the kernel caps it at `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Most bytes in one GSO send: the kernel's limit for one UDP "super-datagram".
const MAX_GSO_BYTES: usize = 64_000;

/// Bytes an emptied [`Outbox`] keeps for the next round: a burst's worth. Beyond it,
/// the memory of a larger burst is given back.
const OUTBOX_KEEP_BYTES: usize = 2 * 1024 * 1024;

/// The datagrams of one round of work, to send together, written back to back into
/// one buffer kept from round to round. Building each datagram in place in a buffer
/// that stays in the cache (rather than one fresh buffer per datagram, or per GSO run)
/// spares an allocation per datagram and, measured, much of the cost of the copies
/// into it and out of it (by the kernel) under reliable-UDP fan-out. Consecutive
/// datagrams to one address are contiguous, so a GSO run is a slice of the buffer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    datagrams: Vec<Datagram>,
}

/// A datagram to send, or a GSO run of them: its bytes in [`Outbox`]'s buffer.
#[derive(Debug)]
struct Datagram {
    to: SocketAddr,
    /// The local address to send from (the one the peer wrote to), when the socket is
    /// bound to a wildcard address.
    from: Option<IpAddr>,
    range: std::ops::Range<usize>,
    /// Set when the bytes are several datagrams of this size back to back (the last
    /// may be shorter), built in place by [`BatchSocket::gather`]: they go in one GSO
    /// call.
    segment: Option<usize>,
}

impl Datagram {
    /// How many datagrams this is on the wire.
    fn count(&self) -> usize {
        self.segment
            .map_or(1, |s| self.range.len().div_ceil(s.max(1)))
    }
}

impl Outbox {
    /// Queues one datagram, copied.
    pub(crate) fn push(&mut self, to: SocketAddr, from: Option<IpAddr>, data: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.datagrams.push(Datagram {
            to,
            from,
            range: start..self.bytes.len(),
            segment: None,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// How many datagrams are queued, as they go on the wire (a GSO run counts each).
    pub(crate) fn datagram_count(&self) -> usize {
        self.datagrams.iter().map(Datagram::count).sum()
    }

    /// The bytes of every datagram queued.
    pub(crate) fn byte_count(&self) -> usize {
        self.bytes.len()
    }

    /// Forgets what was queued, keeping the buffer (up to [`OUTBOX_KEEP_BYTES`]).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.datagrams.clear();
        if self.bytes.capacity() > OUTBOX_KEEP_BYTES {
            self.bytes.shrink_to(OUTBOX_KEEP_BYTES);
        }
    }

    /// The bytes of `d`, one of this outbox's datagrams.
    fn bytes_of(&self, d: &Datagram) -> &[u8] {
        self.bytes.get(d.range.clone()).unwrap_or_default()
    }
}

/// A bound UDP socket and its batching state.
#[derive(Debug)]
pub(crate) struct BatchSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    /// Bound to `0.0.0.0` or `[::]`: replies name their source address.
    wildcard: bool,
}

/// Buffers for one batch of received datagrams. Owned by the caller, so that it can
/// read the datagrams while it changes everything else.
#[derive(Debug, Default)]
pub(crate) struct RecvBatch {
    buf: Vec<u8>,
    meta: Vec<RecvMeta>,
    count: usize,
}

impl RecvBatch {
    /// Every datagram of the last receive: (source, local address, bytes).
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, Option<IpAddr>, &[u8])> {
        self.meta
            .iter()
            .take(self.count)
            .zip(self.buf.chunks(SLOT))
            .flat_map(|(meta, slot)| {
                let data = slot.get(..meta.len.min(slot.len())).unwrap_or_default();
                // GRO: one buffer, several datagrams of `stride` bytes (the last may be
                // shorter). Without GRO the stride is the length.
                let stride = if meta.stride == 0 {
                    data.len().max(1)
                } else {
                    meta.stride
                };
                // An empty datagram is a datagram too (and is counted as one).
                let count = data.len().div_ceil(stride).max(1);
                (0..count).map(move |i| {
                    let start = (i * stride).min(data.len());
                    let end = (start + stride).min(data.len());
                    (
                        meta.addr,
                        meta.dst_ip,
                        data.get(start..end).unwrap_or_default(),
                    )
                })
            })
    }
}

impl BatchSocket {
    /// Binds `addr`. An IPv6 socket is IPv6-only, as for TCP, so that `0.0.0.0` and
    /// `[::]` can share a port and IPv4 peers keep their plain addresses. No
    /// SO_REUSEADDR: for UDP it would let a second server share the port.
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<BatchSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        // Best effort: a smaller buffer only means more loss under bursts.
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
        let std_socket: std::net::UdpSocket = socket.into();
        let state = UdpSocketState::new((&std_socket).into())?;
        let socket = UdpSocket::from_std(std_socket)?;
        let local = socket.local_addr()?;
        Ok(BatchSocket {
            socket,
            state,
            local,
            wildcard: local.ip().is_unspecified(),
        })
    }

    /// The address really bound (with the port the system picked).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Waits until datagrams may be waiting.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Receives one batch without waiting: `WouldBlock` when nothing is waiting.
    pub(crate) fn try_recv(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let slots = BATCH_SIZE.max(1);
        if batch.buf.len() != slots * SLOT {
            batch.buf = vec![0; slots * SLOT];
            batch.meta = vec![RecvMeta::default(); slots];
        }
        batch.count = 0;
        let mut iovs: Vec<IoSliceMut<'_>> =
            batch.buf.chunks_mut(SLOT).map(IoSliceMut::new).collect();
        let n = self.socket.try_io(Interest::READABLE, || {
            self.state
                .recv((&self.socket).into(), &mut iovs, &mut batch.meta)
        })?;
        batch.count = n.min(slots);
        Ok(batch.count)
    }

    /// The source address for a reply to a datagram that arrived at `local`.
    pub(crate) fn reply_source(&self, local: Option<IpAddr>) -> Option<IpAddr> {
        local.filter(|_| self.wildcard)
    }

    /// Takes datagrams from `next` (which appends one to the buffer it is given and
    /// says where it goes, until it has none) into `out`, built in place as GSO runs:
    /// equal-sized datagrams to one address, back to back, the last possibly shorter.
    /// A reliable session's window goes out this way with no copy to join them.
    pub(crate) fn gather(
        &self,
        from: Option<IpAddr>,
        out: &mut Outbox,
        mut next: impl FnMut(&mut Vec<u8>) -> Option<SocketAddr>,
    ) {
        let max_segments = self.state.max_gso_segments().max(1);
        let buf = &mut out.bytes;
        // The run being built: where it starts, where to, its segment size and count,
        // and whether a shorter datagram ended it.
        let mut run_start = buf.len();
        let mut to: Option<SocketAddr> = None;
        let (mut segment, mut count, mut ended) = (0, 0, false);
        loop {
            let start = buf.len();
            let Some(dest) = next(buf) else {
                break;
            };
            let len = buf.len() - start;
            let joins = to == Some(dest)
                && !ended
                && count < max_segments
                && len > 0
                && len <= segment
                && buf.len() - run_start <= MAX_GSO_BYTES;
            if joins {
                count += 1;
                // Only the last datagram of a run may be shorter.
                ended = len < segment;
                continue;
            }
            if let Some(to) = to {
                out.datagrams.push(Datagram {
                    to,
                    from,
                    range: run_start..start,
                    segment: (count > 1).then_some(segment),
                });
            }
            run_start = start;
            (to, segment, count, ended) = (Some(dest), len, 1, false);
        }
        if let Some(to) = to {
            out.datagrams.push(Datagram {
                to,
                from,
                range: run_start..buf.len(),
                segment: (count > 1).then_some(segment),
            });
        }
    }

    /// Sends every datagram in `out`, in order; the caller then clears it. Runs of
    /// equal-sized datagrams to one destination go in one GSO call, as do consecutive
    /// single datagrams that make such a run (they lie back to back in the buffer).
    /// Waits while the kernel's send buffer is full; other send errors lose the
    /// datagram, as UDP may (`quinn-udp` logs them).
    pub(crate) async fn send_all(&self, out: &Outbox) {
        let max_segments = self.state.max_gso_segments().max(1);
        let datagrams = &out.datagrams;
        let mut i = 0;
        while i < datagrams.len() {
            let first = &datagrams[i];
            if let Some(segment) = first.segment {
                self.send_run(first, out.bytes_of(first), segment, max_segments)
                    .await;
                i += 1;
                continue;
            }
            let size = first.range.len();
            let mut end = i + 1;
            let mut stop = first.range.end;
            if max_segments > 1 && size > 0 {
                while let Some(next) = datagrams.get(end) {
                    let len = next.range.len();
                    if end - i >= max_segments
                        || next.segment.is_some()
                        || next.to != first.to
                        || next.from != first.from
                        || len == 0
                        || len > size
                        || next.range.end - first.range.start > MAX_GSO_BYTES
                    {
                        break;
                    }
                    // Every datagram is appended to the outbox's one buffer: the next
                    // one starts where this run stops.
                    debug_assert_eq!(next.range.start, stop);
                    stop = next.range.end;
                    end += 1;
                    if len < size {
                        // Only the last segment may be shorter.
                        break;
                    }
                }
            }
            let contents = out.bytes.get(first.range.start..stop).unwrap_or_default();
            if !contents.is_empty() {
                let transmit = Transmit {
                    destination: first.to,
                    ecn: None,
                    contents,
                    segment_size: (end - i > 1).then_some(size),
                    src_ip: first.from,
                };
                self.send(&transmit).await;
            }
            i = end;
        }
    }

    /// Sends a run built by [`BatchSocket::gather`]: in one call if the socket does GSO
    /// (it did when the run was built), else one datagram at a time.
    async fn send_run(&self, run: &Datagram, data: &[u8], segment: usize, max_segments: usize) {
        let chunks: Vec<&[u8]> = if max_segments > 1 {
            vec![data]
        } else {
            data.chunks(segment.max(1)).collect()
        };
        for contents in chunks {
            let transmit = Transmit {
                destination: run.to,
                ecn: None,
                contents,
                segment_size: (contents.len() > segment).then_some(segment),
                src_ip: run.from,
            };
            self.send(&transmit).await;
        }
    }

    async fn send(&self, transmit: &Transmit<'_>) {
        loop {
            let sent = self.socket.try_io(Interest::WRITABLE, || {
                self.state.send((&self.socket).into(), transmit)
            });
            match sent {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.socket.writable().await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!("sending a datagram to {} failed: {e}", transmit.destination);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A plain receiving socket (no GRO, so a GSO run arrives as its datagrams).
    fn receiver() -> std::net::UdpSocket {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    fn receive(socket: &std::net::UdpSocket, count: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        (0..count)
            .map(|_| {
                let n = socket.recv(&mut buf).expect("a datagram within 5 s");
                buf[..n].to_vec()
            })
            .collect()
    }

    fn datagram(tag: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
    }

    #[tokio::test]
    async fn gathered_runs_and_single_datagrams_arrive_whole_and_in_order() {
        let io = BatchSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (a, b) = (receiver(), receiver());
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut outbox = Outbox::default();
        // One session's window: equal sizes, a shorter last one, then a longer one
        // (which must start a run of its own).
        let mut window = vec![
            datagram(1, 1200),
            datagram(2, 1200),
            datagram(3, 700),
            datagram(4, 1000),
        ]
        .into_iter();
        io.gather(None, &mut outbox, |buf| {
            let d = window.next()?;
            buf.extend_from_slice(&d);
            Some(to_a)
        });
        // Singles for two peers, interleaved, then two equal ones for the same peer
        // back to back (sent as one run).
        outbox.push(to_b, None, &datagram(5, 300));
        outbox.push(to_a, None, &datagram(6, 40));
        outbox.push(to_b, None, &datagram(7, 500));
        outbox.push(to_b, None, &datagram(8, 500));
        assert_eq!(outbox.datagram_count(), 8);
        assert_eq!(outbox.byte_count(), 4100 + 300 + 40 + 500 + 500);
        io.send_all(&outbox).await;
        assert_eq!(
            receive(&a, 5),
            vec![
                datagram(1, 1200),
                datagram(2, 1200),
                datagram(3, 700),
                datagram(4, 1000),
                datagram(6, 40),
            ]
        );
        assert_eq!(
            receive(&b, 3),
            vec![datagram(5, 300), datagram(7, 500), datagram(8, 500)]
        );
        outbox.clear();
        assert!(outbox.is_empty());
        outbox.push(to_b, None, b"again");
        io.send_all(&outbox).await;
        assert_eq!(receive(&b, 1), vec![b"again".to_vec()]);
    }
}
