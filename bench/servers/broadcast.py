"""One broadcast server for bench/broadcast.py: ``python -m bench.servers.broadcast KIND``.

KIND is ``wstrio`` (default Config), ``wstrio-deflate`` (permessage-deflate
without server context takeover, so one compressed frame serves the room),
``before`` (the wstrio in ``--before-tree PATH``, default Config), ``bare`` or
``websockets``. Each prints ``port N`` on stdout
once it listens, and serves ``/ws/room`` (a *receiver*: it joins the one room,
gets the text ``joined``, then only broadcasts) and ``/ws/send`` (the *sender*:
each message it sends is broadcast to the room as it came). When a sender's
connection ends, the server prints ``stats {JSON}``: that session's counters
and, with ``--profile``, where its CPU went (see bench/profile.py). How each
kind broadcasts is described in bench/README.md. It runs until it is killed.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio_websocket
from websockets.trio.server import ServerConnection, broadcast
from websockets.trio.server import serve as websockets_serve

from bench.servers.echo import load_wstrio

if TYPE_CHECKING:
    from bench.profile import Recorder

ROOM_PATH = "/ws/room"
SEND_PATH = "/ws/send"
JOINED = "joined"
#: The Config fields each wstrio kind sets (besides outbox_size).
CONFIGS: dict[str, dict[str, Any]] = {
    "wstrio": {},
    "wstrio-deflate": {"compression": "deflate", "compression_context_takeover": False},
    "before": {},
}


def recorder(args: argparse.Namespace, deliveries: Callable[[], int]) -> Recorder:
    """What prints the ``stats`` line of each sender's session (see ``--profile``)."""
    from bench.profile import Recorder  # not before main() chose which wstrio to import

    return Recorder(args.profile, args.profile_interval, args.profile_output, deliveries)


async def run_wstrio(args: argparse.Namespace) -> None:
    wstrio = args.wstrio
    hub = wstrio.Hub(policy="close")
    room = hub.room("bench")  # the hub holds rooms weakly; this reference keeps it
    config = wstrio.Config(outbox_size=args.outbox_size, **CONFIGS[args.kind])
    window = recorder(args, lambda: hub.statistics().deliveries)

    async def receiver(session: Any) -> None:
        room.join(session)
        await session.send(JOINED)
        async for _ in session:
            pass

    async def sender(session: Any) -> None:
        window.begin()
        try:
            async for message in session:
                room.broadcast(message)
        finally:
            members = [m.statistics() for m in room.members]
            window.end(
                {
                    "kind": args.kind,
                    "outbox_size": args.outbox_size,
                    "hub": attrs.asdict(hub.statistics()),
                    "members": len(members),
                    "member_messages_out_min": min((m.messages_out for m in members), default=0),
                    "member_messages_out_max": max((m.messages_out for m in members), default=0),
                    "member_outbox_used_max": max((m.outbox_used for m in members), default=0),
                    "member_drops": sum(m.drops for m in members),
                }
            )

    routes = {ROOM_PATH: receiver, SEND_PATH: sender}
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            lambda task_status: wstrio.serve(
                routes, host=args.host, port=args.port, config=config, task_status=task_status
            )
        )
        print(f"port {port}", flush=True)


async def run_bare(args: argparse.Namespace) -> None:
    members: set[trio_websocket.WebSocketConnection] = set()
    counts = Counter(broadcasts=0, deliveries=0, send_errors=0)
    window = recorder(args, lambda: counts["deliveries"])

    async def receiver(ws: trio_websocket.WebSocketConnection) -> None:
        members.add(ws)
        try:
            await ws.send_message(JOINED)
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            members.discard(ws)

    async def sender(ws: trio_websocket.WebSocketConnection) -> None:
        window.begin()
        try:
            while True:
                message = await ws.get_message()
                recipients = list(members)  # the set may change while we await
                failed = 0
                for member in recipients:
                    try:
                        await member.send_message(message)
                    except trio_websocket.ConnectionClosed:
                        members.discard(member)
                        failed += 1
                counts["broadcasts"] += 1
                counts["deliveries"] += len(recipients) - failed
                counts["send_errors"] += failed
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            window.end({"kind": "bare", "members": len(members), **counts})

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await (sender if request.path == SEND_PATH else receiver)(ws)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            trio_websocket.serve_websocket, handler, args.host, args.port, None
        )
        print(f"port {server.port}", flush=True)


async def run_websockets(args: argparse.Namespace) -> None:
    members: set[ServerConnection] = set()
    counts = Counter(broadcasts=0, deliveries=0, send_errors=0)
    window = recorder(args, lambda: counts["deliveries"])

    async def receiver(ws: ServerConnection) -> None:
        members.add(ws)
        try:
            await ws.send(JOINED)
            await ws.wait_closed()
        finally:
            members.discard(ws)

    async def sender(ws: ServerConnection) -> None:
        window.begin()
        try:
            async for message in ws:
                recipients = len(members)
                failed = 0
                try:
                    await broadcast(members, message, raise_exceptions=True)
                except ExceptionGroup as group:
                    failed = len(group.exceptions)
                counts["broadcasts"] += 1
                counts["deliveries"] += recipients - failed
                counts["send_errors"] += failed
        finally:
            window.end({"kind": "websockets", "members": len(members), **counts})

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        await (sender if ws.request.path == SEND_PATH else receiver)(ws)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: websockets_serve(
                handler, args.port, host=args.host, compression=None, task_status=task_status
            )
        )
        port = server.listeners[0].socket.getsockname()[1]
        print(f"port {port}", flush=True)


RUNNERS = {
    "wstrio": run_wstrio,
    "wstrio-deflate": run_wstrio,
    "before": run_wstrio,
    "bare": run_bare,
    "websockets": run_websockets,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=tuple(RUNNERS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--outbox-size", type=int, default=64, help="wstrio's Config.outbox_size (default 64)"
    )
    parser.add_argument("--profile", choices=("sample", "cprofile"), help="profile each sender")
    parser.add_argument(
        "--profile-interval", type=float, default=0.001, help="CPU seconds between samples"
    )
    parser.add_argument("--profile-output", help="with --profile cprofile: pstats file")
    parser.add_argument(
        "--no-gc", action="store_true", help="disable the cyclic garbage collector (diagnostic)"
    )
    parser.add_argument("--before-tree", metavar="PATH", help="before: the tree holding wstrio/")
    args = parser.parse_args()
    if args.kind == "before" and args.before_tree is None:
        parser.error("before needs --before-tree PATH")
    tree = args.before_tree if args.kind == "before" else None
    args.wstrio = load_wstrio(tree) if args.kind in CONFIGS else None
    if args.no_gc:
        gc.disable()
    trio.run(RUNNERS[args.kind], args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
