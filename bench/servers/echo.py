"""One echo server for bench/echo.py: ``python -m bench.servers.echo {wstrio,bare}``.

Both kinds serve ``ws://HOST:PORT/ws/echo`` and print ``port N`` on stdout once
they listen (``--port 0``, the default, lets the OS pick a free port):

* ``wstrio``: ``wstrio.serve`` with the default :class:`wstrio.Config`
  (64 KiB receive buffer, 20 s heartbeat, inbox 16, outbox 64);
* ``bare``: trio-websocket's ``serve_websocket`` with its defaults (4 KiB
  receive buffer, message queue of 1) and the shortest echo loop.

``--receive-buffer-size`` overrides the receive buffer of either kind (for
experiments; bench/echo.py uses the defaults unless told otherwise). The
process runs until it is killed.
"""

from __future__ import annotations

import argparse
import functools
import sys

import attrs
import trio
import trio_websocket

import wstrio


async def _bare_echo(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except trio_websocket.ConnectionClosed:
        pass


async def _run_bare(host: str, port: int, receive_buffer_size: int | None) -> None:
    serve = functools.partial(trio_websocket.serve_websocket, _bare_echo, host, port, None)
    if receive_buffer_size is not None:
        serve = functools.partial(serve, receive_buffer_size=receive_buffer_size)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve)
        print(f"port {server.port}", flush=True)


async def _run_wstrio(host: str, port: int, receive_buffer_size: int | None) -> None:
    config = wstrio.Config()
    if receive_buffer_size is not None:
        config = attrs.evolve(config, receive_buffer_size=receive_buffer_size)
    async with trio.open_nursery() as nursery:
        serve = functools.partial(
            wstrio.serve, {"/ws/echo": wstrio.echo}, host=host, port=port, config=config
        )
        bound = await nursery.start(serve)
        print(f"port {bound}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("wstrio", "bare"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--receive-buffer-size",
        type=int,
        help="bytes per socket read (default: the library's: 65536 wstrio, 4096 bare)",
    )
    args = parser.parse_args()
    run = _run_wstrio if args.kind == "wstrio" else _run_bare
    trio.run(run, args.host, args.port, args.receive_buffer_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
