//! What the local end of the route toward a peer carries: the largest datagram a
//! reliable session's path MTU discovery may try (`natter_udp::Config`'s
//! `max_datagram_size`). A 1500-byte Ethernet link gives 1472 bytes of UDP payload
//! over IPv4, a jumbo-frame link or the loopback interface far more; the probes then
//! find what the rest of the path carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// IPv4 and UDP headers (without options).
const IPV4_UDP_HEADERS: usize = 20 + 8;
/// IPv6 and UDP headers (without extension headers).
const IPV6_UDP_HEADERS: usize = 40 + 8;

/// The largest UDP payload the route to `peer` carries at its first hop: the MTU the
/// kernel holds for that route (the interface's, or a smaller one it has learnt), less
/// the headers. `None` where that cannot be asked; sessions then keep the base size.
///
/// Asked through a socket of its own, connected to the peer (connecting a UDP socket
/// sends nothing): the kernel answers for connected sockets only.
pub(crate) fn route_payload_limit(peer: SocketAddr) -> Option<usize> {
    let (local, headers): (IpAddr, usize) = match peer {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED.into(), IPV4_UDP_HEADERS),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED.into(), IPV6_UDP_HEADERS),
    };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0)).ok()?;
    socket.connect(peer).ok()?;
    let mtu = route_mtu(&socket, peer.is_ipv4())?;
    mtu.checked_sub(headers)
}

#[cfg(target_os = "linux")]
fn route_mtu(socket: &UdpSocket, ipv4: bool) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let (level, name) = if ipv4 {
        (libc::IPPROTO_IP, libc::IP_MTU)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    };
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the socket is open for the duration of the call, and `mtu` and `len`
    // describe a buffer the kernel may write an int into.
    let done = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&mut mtu as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if done != 0 {
        return None;
    }
    usize::try_from(mtu).ok()
}

#[cfg(not(target_os = "linux"))]
fn route_mtu(_: &UdpSocket, _: bool) -> Option<usize> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The loopback interface's MTU is 65536 on Linux unless someone lowered it: far
    /// above what an Ethernet link carries. An IPv4 packet holds at most 65535 bytes,
    /// headers included; IPv6's limit leaves its fixed header out.
    #[test]
    fn the_loopback_route_carries_what_its_interface_does() {
        let mtu = std::fs::read_to_string("/sys/class/net/lo/mtu")
            .ok()
            .and_then(|m| m.trim().parse::<usize>().ok())
            .expect("the loopback interface's MTU is listed");
        let v4 = route_payload_limit("127.0.0.1:9".parse().unwrap());
        assert_eq!(v4, Some(mtu.min(65535) - IPV4_UDP_HEADERS));
        // IPv6 may be off on this machine; when it is on, its headers are larger.
        if let Some(v6) = route_payload_limit("[::1]:9".parse().unwrap()) {
            assert_eq!(v6, mtu - IPV6_UDP_HEADERS);
        }
    }
}
