//! The `udp://` transport's socket, taking many datagrams per system call.
//!
//! Under load the server sends a session's window as GSO bursts: dozens of datagrams in
//! one system call. Read one datagram per call and the client spends its time in system
//! calls and wake-ups, and answers every second packet with an ACK of its own (the
//! session owes one at once for every second packet it has not acknowledged).
//! `quinn-udp` turns GRO on, so the kernel hands such a burst over whole (cut here at
//! its stride), and takes several datagrams per `recvmmsg` otherwise; the session sees
//! the whole burst before the task next asks it what to send, and one ACK answers it.
//! Where the platform has neither, it falls back to one datagram per call.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Room for one receive slot: the largest UDP payload, so that a GRO burst (at most
/// 64 KiB in all) is never cut short.
const SLOT: usize = 64 * 1024;

/// Receive slots. The socket is connected to one server, so GRO already gathers most
/// of what is waiting into one slot; a second one takes what follows a burst.
const SLOTS: usize = 2;

/// A connected UDP socket and its receive buffers.
pub(crate) struct BatchSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    buf: Vec<u8>,
    meta: Vec<RecvMeta>,
}

impl BatchSocket {
    /// Wraps a bound (and connected) socket; turns GRO on where there is such a thing.
    pub(crate) fn new(socket: UdpSocket) -> io::Result<BatchSocket> {
        let state = UdpSocketState::new((&socket).into())?;
        // BATCH_SIZE is at least 1 on every platform.
        let slots = SLOTS.min(quinn_udp::BATCH_SIZE.max(1));
        Ok(BatchSocket {
            socket,
            state,
            buf: vec![0; slots * SLOT],
            meta: vec![RecvMeta::default(); slots],
        })
    }

    /// Waits until datagrams may be waiting.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Receives what one system call gives without waiting, and hands each datagram
    /// to `each`. `WouldBlock` when nothing is waiting.
    pub(crate) fn try_recv(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        let mut iovs: Vec<IoSliceMut<'_>> =
            self.buf.chunks_mut(SLOT).map(IoSliceMut::new).collect();
        let (socket, state, meta) = (&self.socket, &self.state, &mut self.meta);
        let n = socket.try_io(Interest::READABLE, || {
            state.recv(socket.into(), &mut iovs, meta)
        })?;
        for (meta, slot) in self.meta.iter().take(n).zip(self.buf.chunks(SLOT)) {
            let data = slot.get(..meta.len.min(slot.len())).unwrap_or_default();
            // GRO: one buffer, datagrams of `stride` bytes (the last may be shorter).
            let stride = if meta.stride == 0 {
                data.len().max(1)
            } else {
                meta.stride
            };
            if data.is_empty() {
                each(data);
            }
            for datagram in data.chunks(stride) {
                each(datagram);
            }
        }
        Ok(())
    }

    /// Sends one datagram to the server.
    pub(crate) async fn send(&self, datagram: &[u8]) -> io::Result<usize> {
        self.socket.send(datagram).await
    }

    /// Sends one datagram to `to`.
    pub(crate) async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(datagram, to).await
    }
}
