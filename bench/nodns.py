#!/usr/bin/env python3
"""A DNS server on 127.0.0.1:53 that refuses every query at once.

ircd-hybrid looks up each client's host name and has no setting to stop it; without
an answer it waits seconds per client. bench/compare.sh runs it with a resolv.conf
naming this server (in a private mount namespace), so that its lookups fail at once,
on loopback, and never reach the machine's real resolver: natter does no lookups
either. Bounded: it exits after --seconds.
"""

import argparse
import socket
import time

ap = argparse.ArgumentParser()
ap.add_argument("--address", default="127.0.0.1")
ap.add_argument("--port", type=int, default=53)
ap.add_argument("--seconds", type=float, default=3600)
a = ap.parse_args()

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((a.address, a.port))
sock.settimeout(1.0)
end = time.monotonic() + a.seconds
while time.monotonic() < end:
    try:
        query, peer = sock.recvfrom(4096)
    except socket.timeout:
        continue
    if len(query) < 12 or not peer[0].startswith("127."):
        continue
    # Same id and question; QR=1, opcode copied, RA=1, RCODE=5 (REFUSED); no answers.
    flags = 0x8000 | (query[2] & 0x78) << 8 | 0x0080 | 5
    reply = query[:2] + flags.to_bytes(2, "big") + query[4:6] + b"\0\0\0\0\0\0" + query[12:]
    sock.sendto(reply, peer)
