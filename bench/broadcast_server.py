"""One broadcast server for the benchmark: ``python3 bench/broadcast_server.py KIND``.

KIND is ``wstrio``, ``bare`` or ``websockets``. Every kind serves two paths
on HOST:PORT and prints ``port N`` on stdout once it listens (``--port 0``,
the default, lets the OS pick a free port):

* ``/ws/room``: a *receiver*. The server makes the connection a member of
  the one room, then sends it the text message ``joined`` (so the client
  knows it is a member) and never sends it anything else but broadcasts;
* ``/ws/send``: the *sender*. Every message it sends is broadcast to the
  room, as it came (text stays text).

The three ways of broadcasting:

* ``wstrio``: ``wstrio.serve`` (default Config but ``--outbox-size``), a
  ``Hub(policy="close")`` with one room; the sender's handler calls
  ``room.broadcast(message)``, which queues into every member's outbox
  without waiting; each member's writer task sends it;
* ``bare``: trio-websocket's ``serve_websocket`` with its defaults, a set of
  connections, and ``for ws in members: await ws.send_message(message)``;
* ``websockets``: ``websockets.trio.server.serve`` (compression off: the load
  generator does not ask for it anyway) and the Trio implementation's own
  ``await broadcast(members, message, raise_exceptions=True)``, which starts
  one task per member in a nursery and returns when all have written.

When a sender connection ends (the load generator closes it after each run,
before the receivers) the server prints one line ``stats {JSON}`` on stdout:
counters of that sender's session (broadcasts, deliveries, errors; for wstrio
the hub's statistics, with drops and slow closes, and the members' session
counters) and, with ``--profile``, where the server's CPU went meanwhile.

``--profile sample`` samples the server's stack every ``--profile-interval``
seconds of its CPU time (``ITIMER_PROF``, so idle time takes no samples)
while a sender is connected and classifies each sample (see ``classify``);
``--profile cprofile`` runs cProfile over the same span and writes the stats
to ``--profile-output``. The process runs until it is killed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

import attrs
import trio
import trio_websocket
import websockets
from websockets.trio.server import ServerConnection, broadcast
from websockets.trio.server import serve as websockets_serve

import wstrio

ROOM_PATH = "/ws/room"
SEND_PATH = "/ws/send"
JOINED = "joined"

# -- where the CPU goes: a stack sampler and its classification ------------------------

_WSTRIO_DIR = os.path.dirname(os.path.abspath(wstrio.__file__)) + os.sep
_TRIO_DIR = os.path.dirname(os.path.abspath(trio.__file__)) + os.sep
_TWS_DIR = os.path.dirname(os.path.abspath(trio_websocket.__file__)) + os.sep
_WEBSOCKETS_DIR = os.path.dirname(os.path.abspath(websockets.__file__)) + os.sep
_WSPROTO_MARK = os.sep + "wsproto" + os.sep
_THIS_FILE = os.path.abspath(__file__)
_OUTERMOST = frozenset({"<module>", "main"})

#: The engines' per-recipient send: trio-websocket's WebSocketConnection.send_message,
#: and the per-connection task inside websockets' broadcast() (also "send_message").
_SEND_FUNCTION = "send_message"


def _short(filename: str) -> str:
    for mark in ("site-packages" + os.sep, os.sep + "wstrio" + os.sep, os.sep + "bench" + os.sep):
        if mark in filename:
            tail = filename.rsplit(mark, 1)[1]
            return tail if mark.startswith("site") else mark.strip(os.sep) + "/" + tail
    return filename


def _owner(code: CodeType) -> str | None:
    """Which part of the server a frame's code belongs to; None for the standard
    library and generated code (dataclass and attrs methods), which count for
    the nearest caller that has an owner."""
    filename = code.co_filename
    if _WSPROTO_MARK in filename:
        return "wsproto"
    if filename.startswith(_TWS_DIR):
        return "trio-websocket"
    if filename.startswith(_WEBSOCKETS_DIR):
        return "websockets"
    if filename.startswith(_WSTRIO_DIR):
        return "wstrio"
    if filename == _THIS_FILE:
        # main() and the module run trio.run: they are under everything.
        return None if code.co_name in _OUTERMOST else "bench"
    if filename.startswith(_TRIO_DIR):
        if filename.endswith(("_socket.py", "_highlevel_socket.py")):
            return "trio socket"
        if filename.endswith("_channel.py"):
            return "trio channel"
        return "trio"
    if os.sep + "outcome" + os.sep in filename:
        return "trio"  # trio's own dependency: task results when a task resumes
    return None


def _leaf_owner(stack: tuple[CodeType, ...]) -> str:
    for code in stack:
        owner = _owner(code)
        if owner is not None:
            return owner
    return "other"


_SEND_DETAIL = {
    "wsproto": "wsproto (frame encoding)",
    "trio socket": "trio socket stream (incl. send syscall)",
    "trio": "trio core (lock, checkpoints)",
    "trio-websocket": "trio-websocket (send_message, _send, event, logging)",
    "websockets": "websockets (framing, send_data)",
    "wstrio": "wstrio's stream wrapper (_http.py)",
}
_WSTRIO_DETAIL = {
    "wstrio": "wstrio's own code",
    "trio channel": "trio memory channels (outbox, inbox)",
    "trio": "trio core (cancel scopes, clock, parking)",
}


def classify(stack: tuple[CodeType, ...]) -> tuple[str, str]:
    """(category, detail) of one sample; ``stack`` runs from innermost to outermost.

    The detail names the owner of the innermost frame that has one (see
    ``_owner``).

    In this order, the first that applies:

    0. *cyclic GC*: the sample arrived during a garbage collection (see
       ``GcClock``); the collector runs in whatever frame allocated, so
       without this its time would land in the categories below;
    1. *engine send path*: an engine's ``send_message`` is on the stack (the
       recipient's message being framed and written); the detail says where
       the innermost frame is: wsproto / websockets framing, the trio socket
       stream (with the send syscall), trio's lock and checkpoints, the engine;
    2. *engine, other*: any other frame of trio-websocket or websockets (the
       engines' reader tasks: receiving the sender's messages, handshakes,
       closing; for websockets also ``broadcast()``'s own fan-out);
    3. *wstrio*: a frame of wstrio (hub, outbox, writer loop, counters, its
       reader task above the engine); detail: wstrio's own lines, trio memory
       channels (the outbox and inbox), trio core (cancel scopes, clock,
       checkpoints) or other;
    4. *bench server*: this file's handlers (bare's loop, websockets' handler);
    5. *trio scheduler and I/O*: the innermost frame is trio's (run loop,
       epoll, task switching) with none of the above on the stack;
    6. *other*.
    """
    if any(c is _GC_CALLBACK for c in stack):
        return "cyclic GC", "collections (and the samples' own share of them)"
    owner = _leaf_owner(stack)
    if any(c.co_name == _SEND_FUNCTION and c.co_filename.startswith((_TWS_DIR, _WEBSOCKETS_DIR))
           for c in stack):  # fmt: skip
        return "engine send path", _SEND_DETAIL.get(owner, owner)
    if any(c.co_name == "broadcast" and c.co_filename.startswith(_WEBSOCKETS_DIR) for c in stack):
        return "engine, other", "websockets' broadcast() fan-out (nursery, a task per member)"
    if any(c.co_filename.startswith((_TWS_DIR, _WEBSOCKETS_DIR)) for c in stack):
        return "engine, other", "engine's reader task, handshakes, close"
    if any(c.co_filename.startswith(_WSTRIO_DIR) for c in stack):
        return "wstrio", _WSTRIO_DETAIL.get(owner, owner)
    if any(c.co_filename == _THIS_FILE and c.co_name not in _OUTERMOST for c in stack):
        return "bench server", "handlers in broadcast_server.py (" + owner + ")"
    if owner.startswith("trio"):
        return "trio scheduler and I/O", "run loop, epoll, task switching"
    return "other", owner


class GcClock:
    """CPU time and count of the cyclic garbage collector's passes, per generation."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._gc_callback)

    def _gc_callback(self, phase: str, info: dict[str, int]) -> None:
        # A profiling signal that arrives during a collection is handled here,
        # in the first Python code after it: classify() counts such samples as GC.
        if phase == "start":
            self._started = time.process_time()
        else:
            generation = info["generation"]
            self.collections[generation] += 1
            self.seconds[generation] += time.process_time() - self._started

    def snapshot(self) -> tuple[list[int], list[float]]:
        return list(self.collections), list(self.seconds)


_GC_CALLBACK = GcClock._gc_callback.__code__


class Sampler:
    """Samples the main thread's stack every ``interval`` s of process CPU time.

    Each sample is weighted by the process CPU time since the previous one:
    ITIMER_PROF expirations that fall inside one long stretch of C code (a
    full garbage collection takes tens of ms) arrive as one signal, handled at
    the next bytecode, so unweighted counts would under-represent such
    stretches.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stacks: defaultdict[tuple[CodeType, ...], float] = defaultdict(float)  # CPU s
        self.samples = 0
        self._last = 0.0
        self._wakeup_fd = -1

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        now = time.process_time()
        codes = []
        while frame is not None:
            codes.append(frame.f_code)
            frame = frame.f_back
        self.stacks[tuple(codes)] += now - self._last
        self.samples += 1
        self._last = now

    def start(self) -> None:
        self.stacks.clear()
        self.samples = 0
        signal.signal(signal.SIGPROF, self._sample)
        # Trio wakes its loop through the signal wakeup fd on every signal; a
        # busy loop needs no waking, so keep the samples from adding that work.
        self._wakeup_fd = signal.set_wakeup_fd(-1)
        self._last = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        signal.set_wakeup_fd(self._wakeup_fd, warn_on_full_buffer=False)

    def summary(self) -> dict[str, Any]:
        """CPU seconds by category and detail, by innermost function, by stack."""
        categories: defaultdict[str, defaultdict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        leaves: defaultdict[str, float] = defaultdict(float)
        stacks: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        for stack, seconds in self.stacks.items():
            category, detail = classify(stack)
            categories[category][detail] += seconds
            inner = ";".join(f"{_short(c.co_filename)}:{c.co_name}" for c in reversed(stack[:10]))
            stacks[category][inner] += seconds
            leaf = stack[0]
            leaves[f"{_short(leaf.co_filename)}:{leaf.co_firstlineno}({leaf.co_name})"] += seconds
        return {
            "samples": self.samples,
            "sampled_seconds": sum(self.stacks.values()),
            "interval": self.interval,
            "categories": {name: dict(details) for name, details in categories.items()},
            "top_leaves": _largest(leaves, 25),
            "top_stacks": {name: _largest(c, 8) for name, c in stacks.items()},
        }


def _largest(seconds: dict[str, float], n: int) -> list[tuple[str, float]]:
    return sorted(seconds.items(), key=lambda item: -item[1])[:n]


def _cprofile_summary(profile: cProfile.Profile) -> dict[str, Any]:
    """Total profiled time, and the cumulative time inside the engine's send_message."""
    stats = pstats.Stats(profile)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values())
    send = sum(
        ct
        for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in entries.items()
        if name == _SEND_FUNCTION and filename.startswith((_TWS_DIR, _WEBSOCKETS_DIR))
    )
    return {"total_seconds": total, "send_message_cumulative_seconds": send}


class Window:
    """One sender's session: counters, CPU time and (optionally) a profile of it."""

    def __init__(
        self, args: argparse.Namespace, deliveries: Callable[[], int], gc_clock: GcClock
    ) -> None:
        self._gc = gc_clock
        self._gc_start = gc_clock.snapshot()
        self._mode = args.profile
        self._output = args.profile_output
        self._deliveries = deliveries
        self._sampler = Sampler(args.profile_interval) if self._mode == "sample" else None
        self._cprofile: cProfile.Profile | None = None
        self._start = (0.0, 0.0, 0)

    def begin(self) -> None:
        self._start = (time.process_time(), time.perf_counter(), self._deliveries())
        self._gc_start = self._gc.snapshot()
        if self._sampler is not None:
            self._sampler.start()
        elif self._mode == "cprofile":
            self._cprofile = cProfile.Profile()
            self._cprofile.enable()

    def end(self, stats: dict[str, Any]) -> None:
        profile: dict[str, Any] | None = None
        if self._sampler is not None:
            self._sampler.stop()
        elif self._cprofile is not None:
            self._cprofile.disable()
        cpu0, wall0, deliveries0 = self._start
        stats["window"] = {
            "cpu_seconds": time.process_time() - cpu0,
            "seconds": time.perf_counter() - wall0,
            "deliveries": self._deliveries() - deliveries0,
        }
        (count0, seconds0), (count1, seconds1) = self._gc_start, self._gc.snapshot()
        stats["window"]["gc_enabled"] = gc.isenabled()
        stats["window"]["gc_collections"] = [b - a for a, b in zip(count0, count1, strict=True)]
        stats["window"]["gc_seconds"] = [b - a for a, b in zip(seconds0, seconds1, strict=True)]
        if self._sampler is not None:
            profile = self._sampler.summary()
        elif self._cprofile is not None:
            profile = _cprofile_summary(self._cprofile)
            if self._output:
                self._cprofile.dump_stats(self._output)
            self._cprofile = None
        if profile is not None:
            stats["profile"] = profile
        print("stats " + json.dumps(stats), flush=True)


# -- wstrio -----------------------------------------------------------------------------


async def run_wstrio(args: argparse.Namespace, gc_clock: GcClock) -> None:
    hub = wstrio.Hub(policy="close")
    room = hub.room("bench")  # the hub holds rooms weakly; this reference keeps it
    config = wstrio.Config(outbox_size=args.outbox_size)
    window = Window(args, lambda: hub.statistics().deliveries, gc_clock)

    async def receiver(session: wstrio.Session) -> None:
        room.join(session)
        await session.send(JOINED)
        async for _ in session:
            pass

    async def sender(session: wstrio.Session) -> None:
        window.begin()
        try:
            async for message in session:
                room.broadcast(message)
        finally:
            members = [m.statistics() for m in room.members]
            window.end(
                {
                    "kind": "wstrio",
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


# -- bare trio-websocket ----------------------------------------------------------------


async def run_bare(args: argparse.Namespace, gc_clock: GcClock) -> None:
    members: set[trio_websocket.WebSocketConnection] = set()
    counts = Counter(broadcasts=0, deliveries=0, send_errors=0)
    window = Window(args, lambda: counts["deliveries"], gc_clock)

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


# -- websockets (its Trio implementation) -----------------------------------------------


async def run_websockets(args: argparse.Namespace, gc_clock: GcClock) -> None:
    members: set[ServerConnection] = set()
    counts = Counter(broadcasts=0, deliveries=0, send_errors=0)
    window = Window(args, lambda: counts["deliveries"], gc_clock)

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


RUNNERS = {"wstrio": run_wstrio, "bare": run_bare, "websockets": run_websockets}


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
    args = parser.parse_args()
    gc_clock = GcClock()
    if args.no_gc:
        gc.disable()
    trio.run(RUNNERS[args.kind], args, gc_clock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
