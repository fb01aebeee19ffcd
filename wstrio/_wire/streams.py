"""Byte streams and listeners under any TLS layers: the socket, the peer, the port, tuning."""

from __future__ import annotations

import logging
import math
import os
import socket
from typing import Any

import trio

logger = logging.getLogger("wstrio.server")


def socket_of(stream_or_listener: Any) -> trio.socket.SocketType | None:
    """The socket under a stream or listener (through ``trio.SSLStream``/``SSLListener``)."""
    item = stream_or_listener
    while True:
        if isinstance(item, trio.SSLStream):
            item = item.transport_stream
        elif isinstance(item, trio.SSLListener):
            item = item.transport_listener
        else:
            break
    if isinstance(item, trio.SocketStream | trio.SocketListener):
        return item.socket
    return None


def direct_fd(stream: trio.abc.Stream) -> int | None:
    """The file descriptor to write to without Trio, for a plain socket stream on POSIX
    (None under TLS, for other streams, and on Windows, where ``os.write`` needs a file)."""
    if os.name != "posix" or not isinstance(stream, trio.SocketStream):
        return None
    return stream.socket.fileno()


def peer_address(stream: trio.abc.Stream) -> tuple[str, int] | None:
    """The ``(host, port)`` of the peer under any TLS layers, if on a socket."""
    sock = socket_of(stream)
    if sock is None:
        return None
    try:
        host, port, *_ = sock.getpeername()
    except OSError:
        return None
    return str(host), int(port)


def address_text(address: tuple[str, int] | None) -> str | None:
    """``"host:port"`` (``"[::1]:port"`` for IPv6), or None for no address."""
    if address is None:
        return None
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bound_port(listener: Any) -> int:
    """The TCP port a listener is bound to; 0 for one that is not on a socket."""
    sock = socket_of(listener)
    return 0 if sock is None else int(sock.getsockname()[1])


def set_send_buffer(stream: trio.abc.Stream, size: int | None) -> None:
    """Set SO_SNDBUF on the stream's socket (None: leave the kernel's autotuning)."""
    sock = socket_of(stream)
    if size is None or sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError as exc:  # the peer may be gone already
        logger.debug("cannot set SO_SNDBUF: %s", exc)


#: After ``Config.tcp_keepalive`` seconds of silence the kernel sends this many probes, this
#: many seconds apart, before it drops the connection.
KEEPALIVE_PROBES = 3
KEEPALIVE_INTERVAL = 10


def keepalive_options(idle: float) -> list[tuple[int, int, int]]:
    """``(level, option, value)`` for SO_KEEPALIVE after ``idle`` seconds (whole, at least 1),
    with the TCP options this platform has: TCP_KEEPIDLE (TCP_KEEPALIVE on macOS),
    TCP_KEEPINTVL, TCP_KEEPCNT, and TCP_USER_TIMEOUT (Linux), which bounds data left
    unacknowledged by the same total, since keepalive probes only a connection with none."""
    seconds = max(1, math.ceil(idle))
    total = seconds + KEEPALIVE_PROBES * KEEPALIVE_INTERVAL
    wanted = (
        ("TCP_KEEPIDLE" if hasattr(socket, "TCP_KEEPIDLE") else "TCP_KEEPALIVE", seconds),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
        ("TCP_USER_TIMEOUT", total * 1000),  # milliseconds
    )
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in wanted:
        number = getattr(socket, name, None)
        if number is not None:
            options.append((socket.IPPROTO_TCP, number, value))
    return options


def set_keepalive(stream: trio.abc.Stream, idle: float | None) -> None:
    """Turn TCP keepalive on for the stream's socket (None: leave it off)."""
    sock = socket_of(stream)
    if idle is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        for level, option, value in keepalive_options(idle):
            sock.setsockopt(level, option, value)
    except OSError as exc:  # the peer may be gone already
        logger.debug("cannot turn TCP keepalive on: %s", exc)
