#!/usr/bin/env python3
"""A third-party IRC client (the `irc` package from PyPI, not written for natter)
that joins a room, waits for a line from a peer, answers it, and quits.

Usage: python_irc_client.py HOST PORT NICK ROOM PEER

It prints one line per milestone so that the test driving it can follow along:
JOINED, HEARD <text>, ANSWERED, DM <text>, DONE. It gives up after 20 seconds.
"""
import sys
import time

import irc.client

host, port, nick, room, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
deadline = time.monotonic() + 20
state = {"done": False}


def say(*words):
    print(*words, flush=True)


def on_welcome(conn, event):
    conn.join(room)


def on_join(conn, event):
    if event.source.nick == nick:
        say("JOINED", event.target)


def on_pubmsg(conn, event):
    if event.source.nick != peer:
        return
    text = event.arguments[0]
    say("HEARD", text)
    conn.privmsg(room, f"hello {peer}, {nick} heard: {text}")
    conn.privmsg(peer, "and a private word for you")
    say("ANSWERED")


def on_privmsg(conn, event):
    if event.source.nick == peer:
        say("DM", event.arguments[0])
        conn.quit("done here")
        state["done"] = True


def on_error(conn, event):
    say("ERROR", " ".join(event.arguments))


reactor = irc.client.Reactor()
connection = reactor.server().connect(host, port, nick, username=nick, ircname="python irc client")
connection.add_global_handler("welcome", on_welcome)
connection.add_global_handler("join", on_join)
connection.add_global_handler("pubmsg", on_pubmsg)
connection.add_global_handler("privmsg", on_privmsg)
connection.add_global_handler("error", on_error)
while not state["done"] and time.monotonic() < deadline:
    reactor.process_once(0.1)
say("DONE" if state["done"] else "TIMEOUT")
sys.exit(0 if state["done"] else 1)
