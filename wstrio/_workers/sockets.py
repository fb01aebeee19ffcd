"""The listening sockets of a pool: bound once by the parent, kept open by it for good.

Theory of operation: on Linux each worker number gets its own listening socket
on the port, all of them bound with ``SO_REUSEPORT``, so the kernel spreads new
connections over the numbers by a hash of their addresses. (With one socket
shared by every worker, whichever process wakes first takes the connection: of
50 connections opened at once, the busier of two workers took from 26 to all 50
in ten tries, against 26 to 30 with ``SO_REUSEPORT``.) The usual objection to
``SO_REUSEPORT``, that closing a listener resets the connections waiting in its
queue, does not apply here: the parent holds every socket until it exits, and a
worker restarted or replaced under the same number inherits the same socket and
its queue, so no connection attempt is refused while workers come and go; the
connections hashed to a number whose worker is restarting wait for the new one.
Elsewhere (no ``SO_REUSEPORT`` that balances) every number shares one socket,
which is just as safe, only less even.
"""

from __future__ import annotations

import socket
import sys

from .._server import check_port

#: The listen backlog asked for (the kernel caps it at net.core.somaxconn), as Trio asks.
BACKLOG = 0xFFFF
#: Whether the kernel balances connections over SO_REUSEPORT listeners (Linux 3.9 and later).
BALANCES = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def bind_sockets(host: str | None, port: int, workers: int = 1) -> list[tuple[socket.socket, ...]]:
    """For each worker number (``workers`` of them), the listening TCP sockets it accepts
    from: one per address of ``host`` (None: every interface) on ``port``, bound as
    ``trio.open_tcp_listeners`` binds them (``port`` 0: a free port, the same for every
    worker). ValueError for a bad port; OSError (``socket.gaierror`` for an unknown host)
    if they cannot be bound."""
    check_port(port)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    copies = workers if BALANCES and workers > 1 else 1
    bound: list[list[socket.socket]] = [[] for _ in range(copies)]
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            for sockets in bound:
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if copies > 1:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(BACKLOG)
                address = sock.getsockname()  # port 0: the others bind the port this one got
    except BaseException:
        for sockets in bound:
            for sock in sockets:
                sock.close()
        raise
    return [tuple(bound[number % copies]) for number in range(workers)]
