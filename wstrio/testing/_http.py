"""One plain HTTP/1.1 exchange over a stream, with h11 (for ``MemoryServer.request``)."""

from __future__ import annotations

from collections.abc import Iterable

import h11
import trio

from .._http.answers import Response


async def http_exchange(
    stream: trio.abc.Stream,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> Response:
    """Send one request on ``stream`` and read the whole response."""
    conn = h11.Connection(h11.CLIENT)
    all_headers = [("Host", "wstrio.test"), ("Connection", "close"), *headers]
    if body or method not in ("GET", "HEAD"):
        all_headers.append(("Content-Length", str(len(body))))
    data = conn.send(h11.Request(method=method, target=path, headers=all_headers)) or b""
    if body:
        data += conn.send(h11.Data(data=body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)
    response: h11.Response | None = None
    received = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(65536)))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            received += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    assert response is not None
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
    return Response(response.status_code, pairs, bytes(received))
