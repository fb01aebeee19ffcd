"""Raw HTTP/1.1 over a stream, curl-style: build requests byte by byte, read responses."""

from __future__ import annotations

import trio

#: The sample key of RFC 6455 1.3.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


async def read_all(stream: trio.SocketStream) -> bytes:
    out = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(65536):
            out += chunk
    return out


async def read_response(stream: trio.SocketStream) -> bytes:
    """One response: its head, then Content-Length bytes of body."""
    out = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in out:
            out += await stream.receive_some(65536)
        head, _, body = out.partition(b"\r\n\r\n")
        length = int(header(head, "content-length") or 0)
        while len(body) < length:
            body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def header(response: bytes, name: str) -> str | None:
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def body(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def get(path: str, *extra: str, method: str = "GET", close: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *extra]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upgrade(path: str = "/ws/echo", *extra: str) -> bytes:
    return get(path, "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}",
               "Sec-WebSocket-Version: 13", *extra, close=False)
