"""One echo server for the benchmarks: ``python -m bench.servers.echo KIND``.

Every kind serves ``ws://HOST:PORT/ws/echo`` and prints ``port N`` on stdout once
it listens (``--port 0``, the default, lets the OS pick a free port):

* ``wstrio``: ``wstrio.serve`` with the default :class:`wstrio.Config` (the
  native engine; 64 KiB receive buffer, 20 s heartbeat, inbox 16, outbox 64);
* ``wstrio-tws``: the same with ``Config(engine="trio-websocket")``;
* ``before``: ``wstrio.serve`` with the default Config of another wstrio, the one
  in the tree given by ``--before-tree PATH`` (``PATH/wstrio``), which is put
  first on ``sys.path`` before wstrio is imported (``PYTHONPATH=PATH`` would not
  do: with ``-m`` the working directory, this repository, comes first);
* ``bare``: trio-websocket's ``serve_websocket`` with its defaults (4 KiB
  receive buffer, message queue of 1) and the shortest echo loop;
* ``raw``: bare Trio TCP (bench/servers/raw.py), the least a WebSocket echo
  can cost in Trio.

``--receive-buffer-size`` overrides the receive buffer of any kind (for
experiments; bench/echo.py uses the defaults unless told otherwise). With
``--probe``, SIGUSR1 makes the server collect garbage and print one JSON line
on stdout: its RSS (KiB) and, with ``--tracemalloc`` (tracing from start-up),
the bytes tracemalloc traces (bench/connections.py). With ``--sample``, SIGUSR2
starts bench/profile.py's stack sampler and the next SIGUSR2 stops it and prints
``profile {JSON}`` (its summary) on stdout (bench/echo_profile.py). The process
runs until it is killed.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import signal
import sys
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

import trio
import trio_websocket

from bench.servers import raw

KINDS = ("wstrio", "wstrio-tws", "before", "bare", "raw")
#: The Config fields each wstrio kind sets.
CONFIGS: dict[str, dict[str, Any]] = {
    "wstrio": {},
    "wstrio-tws": {"engine": "trio-websocket"},
    "before": {},
}


def load_wstrio(tree: str | None) -> ModuleType:
    """Import wstrio, from ``tree`` if given (then fail unless it came from there)."""
    if tree is not None:
        sys.path.insert(0, str(Path(tree).resolve()))
    import wstrio

    where = Path(wstrio.__file__).resolve()
    if tree is not None and not where.is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"wstrio came from {where}, not from {tree}")
    print(f"wstrio from {where.parent}", file=sys.stderr, flush=True)
    return wstrio


async def _bare_echo(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except trio_websocket.ConnectionClosed:
        pass


async def _serve_bare(
    args: argparse.Namespace, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    serve = functools.partial(
        trio_websocket.serve_websocket, _bare_echo, args.host, args.port, None
    )
    if args.receive_buffer_size is not None:
        serve = functools.partial(serve, receive_buffer_size=args.receive_buffer_size)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve)
        task_status.started(server.port)


async def _serve_wstrio(
    args: argparse.Namespace, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    wstrio = args.wstrio
    fields = dict(CONFIGS[args.kind])
    if args.receive_buffer_size is not None:
        fields["receive_buffer_size"] = args.receive_buffer_size
    config = wstrio.Config(**fields)
    print(f"{config!r}", file=sys.stderr, flush=True)
    serve = functools.partial(
        wstrio.serve, {"/ws/echo": wstrio.echo}, host=args.host, port=args.port, config=config
    )
    async with trio.open_nursery() as nursery:
        task_status.started(await nursery.start(serve))


_snapshots: list[tracemalloc.Snapshot] = []


def _site(frame: tracemalloc.Frame) -> str:
    parts = Path(frame.filename).parts
    cut = max((i + 1 for i, p in enumerate(parts) if p in ("site-packages", "lib")), default=0)
    for package in ("wstrio", "bench"):  # this tree's, or the before tree's
        if package in parts:
            cut = len(parts) - parts[::-1].index(package) - 1
            break
    return f"{'/'.join(parts[cut:])}:{frame.lineno}"


def _package(site: str) -> str:
    """``trio`` for ``trio/_util.py:81`` and for attrs' methods of a trio class."""
    if site.startswith("<attrs generated methods "):
        return site.removeprefix("<attrs generated methods ").partition(".")[0]
    top = site.partition("/")[0]
    return "stdlib" if top.startswith("python3") else top.partition(":")[0]


def _tasks(task: trio.lowlevel.Task) -> int:
    return 1 + sum(_tasks(t) for n in task.child_nurseries for t in n.child_tasks)


def memory() -> dict[str, Any]:
    """After a full collection: this process's RSS, its Trio tasks, and what tracemalloc
    traces, with the allocation sites (and packages) that grew most since the last probe."""
    gc.collect()
    status = Path("/proc/self/status").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    found = {"rss_kib": rss, "tasks": _tasks(trio.lowlevel.current_root_task())}
    if not tracemalloc.is_tracing():
        return found | {"traced_bytes": None}
    traced = tracemalloc.get_traced_memory()[0]
    snapshot = tracemalloc.take_snapshot()
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    growth, packages = [], {}
    if _snapshots:
        stats = snapshot.compare_to(_snapshots.pop(), "lineno")
        growth = [[_site(s.traceback[0]), s.size_diff, s.count_diff] for s in stats[:15]]
        for stat in stats:
            package = _package(_site(stat.traceback[0]))
            packages[package] = packages.get(package, 0) + stat.size_diff
    _snapshots.append(snapshot)
    return found | {"traced_bytes": traced, "growth": growth, "packages": packages}


async def _answer_probes(signals: Any) -> None:
    async for _ in signals:
        print(json.dumps(memory()), flush=True)


async def _toggle_sampler(signals: Any) -> None:
    from bench import profile  # imports the harness, which imports wstrio: see main()

    profile.GcClock()  # samples taken in a collection then count as "cyclic GC"
    sampler, running = profile.Sampler(0.001), False
    async for _ in signals:
        if running:
            sampler.stop()
            print("profile " + json.dumps(sampler.summary()), flush=True)
            sampler = profile.Sampler(0.001)
        else:
            sampler.start()
        running = not running


async def _run(args: argparse.Namespace) -> None:
    serve = {"bare": _serve_bare, "raw": raw.serve}.get(args.kind, _serve_wstrio)
    with (  # before anyone can signal
        trio.open_signal_receiver(signal.SIGUSR1) as probes,
        trio.open_signal_receiver(signal.SIGUSR2) as toggles,
    ):
        async with trio.open_nursery() as nursery:
            if args.probe:
                nursery.start_soon(_answer_probes, probes)
            if args.sample:
                nursery.start_soon(_toggle_sampler, toggles)
            port = await nursery.start(serve, args)
            print(f"port {port}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--receive-buffer-size",
        type=int,
        help="bytes per socket read (default: the library's: 65536 wstrio and raw, 4096 bare)",
    )
    parser.add_argument("--before-tree", metavar="PATH", help="before: the tree holding wstrio/")
    parser.add_argument("--probe", action="store_true", help="answer SIGUSR1 with memory use")
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocations")
    parser.add_argument("--sample", action="store_true", help="SIGUSR2 starts/stops a sampler")
    args = parser.parse_args()
    if args.kind == "before" and args.before_tree is None:
        parser.error("before needs --before-tree PATH")
    if args.tracemalloc:
        tracemalloc.start()
    # First: whatever imports wstrio later (bench.profile) must get this one.
    tree = args.before_tree if args.kind == "before" else None
    args.wstrio = load_wstrio(tree) if args.kind in CONFIGS else None
    trio.run(_run, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
