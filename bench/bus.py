"""Rooms across processes: server CPU per delivery and send-to-receive latency through Redis.

``python -m bench.bus [--receivers 500] [--seconds 3] [--repeats 3]`` from the repository
root. It starts its own ``redis-server`` (wstrio.testing.RedisServer, in a temporary
directory) and compares, in one run:

* ``one process``: one server, a Hub without a bus, every receiver on it;
* ``two processes``: two servers, each a Hub with a RedisBus, half the receivers on
  each, the sender on the first (a room without history: local members get each
  message at once, the other process through Redis);
* ``two, history``: the same with a room that keeps history (every process, the
  sender's included, delivers in Redis's order).

Load: one Python process (wstrio's client) with a sender and the receivers, in
lockstep (the next message once every receiver got the last). CPU is read from
/proc for each server and for Redis over the measured window; CPU per delivery is
the servers' total divided by deliveries. Latency is measured apart, with one
receiver on each server and nobody else, 1,000 messages 2 ms apart: the time from
the sender's ``send`` to the receiver's ``receive``, per side (one clock: both ends
are in the load process). Figures are ratios against ``one process`` measured in
the same run.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench import harness
from wstrio._cli.report import percentile

ROOM, SEND = "/ws/room", "/ws/send"
CONFIGS = {  # name -> (servers, bus, history)
    "one process": (1, False, 0),
    "two processes": (2, True, 0),
    "two, history": (2, True, 100),
}


# -- the server: python -m bench.bus serve ----------------------------------------


async def serve(args: argparse.Namespace) -> None:
    import wstrio

    bus = wstrio.RedisBus(args.redis) if args.redis else None
    hub = wstrio.Hub(bus=bus)
    room = hub.room("bench", history=args.history)

    async def receiver(session: wstrio.Session) -> None:
        room.join(session)
        await session.send("joined")
        async for _ in session:
            pass

    async def sender(session: wstrio.Session) -> None:
        async for message in session:
            room.broadcast(message)

    config = wstrio.Config(outbox_size=64, ping_interval=None)
    async with trio.open_nursery() as nursery:
        if bus is not None:
            await nursery.start(bus.run)
        routes = {ROOM: receiver, SEND: sender}
        port = await nursery.start(functools.partial(wstrio.serve, routes, port=0, config=config))
        print(f"port {port}", flush=True)


# -- the load: python -m bench.bus load -------------------------------------------


async def load(args: argparse.Namespace) -> None:
    import wstrio

    urls = args.recv.split(",")
    counts: dict[int, int] = {}
    done = trio.Event()
    latencies: list[list[float]] = [[] for _ in urls]
    total = args.receivers

    async def receive(ws: Any, side: int, task_status: trio.TaskStatus[None]) -> None:
        assert await ws.receive() == "joined"
        task_status.started()
        nonlocal done
        async for message in ws:
            arrived = time.perf_counter()
            seq, sent = message.split(" ", 2)[:2]
            latencies[side].append(arrived - float(sent))
            number = int(seq)
            counts[number] = counts.get(number, 0) + 1
            if counts[number] == total:
                del counts[number]
                done.set()

    async with trio.open_nursery() as nursery:
        for i in range(total):
            side = i % len(urls)
            ws = await nursery.start(_connected, wstrio, urls[side] + ROOM)
            await nursery.start(receive, ws, side)
        sender = await nursery.start(_connected, wstrio, urls[0] + SEND)
        padding = "x" * max(0, args.size - 32)
        print("ready", flush=True)
        sys.stdin.readline()  # the harness reads the servers' CPU, then says go
        start, sent, seq = time.perf_counter(), 0, 0
        while time.perf_counter() - start < args.seconds:
            seq += 1
            done = trio.Event()
            await sender.send(f"{seq} {time.perf_counter():.9f} {padding}")
            sent += 1
            if args.pace:
                await trio.sleep(args.pace)
            await done.wait()
        elapsed = time.perf_counter() - start
        flat = [1e6 * x for x in latencies[0]]
        other = [1e6 * x for x in latencies[-1]]
        print(
            json.dumps(
                {
                    "broadcasts": sent,
                    "deliveries": sent * total,
                    "seconds": elapsed,
                    "p50_us": [_pct(flat, 50), _pct(other, 50)],
                    "p99_us": [_pct(flat, 99), _pct(other, 99)],
                }
            ),
            flush=True,
        )
        nursery.cancel_scope.cancel()


async def _connected(wstrio: Any, url: str, task_status: trio.TaskStatus[Any]) -> None:
    async with wstrio.connect(url, config=wstrio.Config(ping_interval=None)) as ws:
        task_status.started(ws)
        await trio.sleep_forever()


def _pct(values: list[float], q: int) -> float:
    return percentile(sorted(values), q) if values else float("nan")


# -- the re-subscription bound: python -m bench.bus resubscribe ---------------------


async def resubscribe(args: argparse.Namespace) -> None:
    """Restart Redis under two hubs; time from its restart until a message published in
    one process reaches a member in the other again."""
    import wstrio
    from wstrio.testing import RedisServer

    redis = RedisServer(Path(args.directory))
    redis.start()
    bounds: list[float] = []
    try:
        async with trio.open_nursery() as nursery:
            ports, rooms = [], []
            for _ in range(2):
                bus = wstrio.RedisBus(redis.url, check_interval=0.05)
                hub = wstrio.Hub(bus=bus)
                rooms.append(hub.room("r"))
                await nursery.start(bus.run)

                async def member(session: wstrio.Session, room: Any = rooms[-1]) -> None:
                    room.join(session)
                    await session.send("joined")
                    async for _ in session:
                        pass

                serve = functools.partial(wstrio.serve, {ROOM: member}, port=0)
                ports.append(await nursery.start(serve))
            async with wstrio.connect(f"ws://127.0.0.1:{ports[0]}{ROOM}") as ws:
                assert await ws.receive() == "joined"
                for _ in range(args.repeats):
                    redis.stop()
                    redis.start()
                    restarted = time.perf_counter()
                    while True:
                        rooms[1].broadcast("ping")
                        with trio.move_on_after(0.01):
                            await ws.receive()
                            break
                    bounds.append(time.perf_counter() - restarted)
            nursery.cancel_scope.cancel()
    finally:
        redis.stop()
    ms = sorted(1000 * b for b in bounds)
    print(f"re-subscription after a Redis restart, {len(ms)} restarts: min {ms[0]:.0f} ms, "
          f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms")  # fmt: skip


# -- the driver ---------------------------------------------------------------------


def measure(
    name: str, redis: Any, receivers: int, seconds: float, *, pace: float = 0.0, size: int = 64
) -> dict[str, Any]:
    count, bus, history = CONFIGS[name]
    servers, loader = [], None
    try:
        for _ in range(count):
            command = [sys.executable, "-m", "bench.bus", "serve", "--history", str(history)]
            if bus:
                command += ["--redis", redis.url]
            proc = harness.spawn(command, cwd=harness.ROOT)
            port = int(harness.read_line(proc, time.monotonic() + 30).split()[1])
            servers.append((proc, f"ws://127.0.0.1:{port}"))
        command = [sys.executable, "-m", "bench.bus", "load", "--receivers", str(receivers)]
        command += ["--seconds", str(seconds), "--pace", str(pace), "--size", str(size)]
        command += ["--recv", ",".join(url for _, url in servers)]
        loader = harness.spawn(command, cwd=harness.ROOT, stdin=-1)
        harness.expect(harness.read_line(loader, time.monotonic() + 120), "ready")
        pids = [proc.pid for proc, _ in servers]
        before = [harness.cpu_seconds(pid) for pid in pids]
        redis_before = harness.cpu_seconds(redis.process.pid)
        assert loader.stdin is not None
        loader.stdin.write(b"go\n")
        loader.stdin.flush()
        result = json.loads(harness.read_line(loader, time.monotonic() + seconds + 60))
        cpu = [harness.cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
        result["server_cpu"] = sum(cpu)
        result["redis_cpu"] = harness.cpu_seconds(redis.process.pid) - redis_before
        result["us_per_delivery"] = 1e6 * result["server_cpu"] / result["deliveries"]
        return result
    finally:
        for proc in [*(p for p, _ in servers), *([loader] if loader else [])]:
            harness.stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve")
    s.add_argument("--redis")
    s.add_argument("--history", type=int, default=0)
    ld = sub.add_parser("load")
    ld.add_argument("--recv", required=True)
    ld.add_argument("--receivers", type=int, default=500)
    ld.add_argument("--seconds", type=float, default=3)
    ld.add_argument("--pace", type=float, default=0)
    ld.add_argument("--size", type=int, default=64)
    rs = sub.add_parser("resubscribe")
    rs.add_argument("--directory", required=True)
    rs.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--receivers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.command == "serve":
        trio.run(serve, args)
        return 0
    if args.command == "load":
        trio.run(load, args)
        return 0
    if args.command == "resubscribe":
        trio.run(resubscribe, args)
        return 0
    from wstrio.testing import RedisServer

    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(Path(directory))
        redis.start()
        try:
            return report(redis, args)
        finally:
            redis.stop()


def report(redis: Any, args: argparse.Namespace) -> int:
    cpu: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeats):  # rotate: each repeat measures every configuration
        for name in CONFIGS:
            cpu[name].append(measure(name, redis, args.receivers, args.seconds))
    base = statistics.median(r["us_per_delivery"] for r in cpu["one process"])
    print(f"{args.receivers} receivers, lockstep, {args.seconds} s windows, medians of "
          f"{args.repeats}; servers' CPU per delivery (Redis's apart)\n")  # fmt: skip
    print("| setup | µs/delivery | vs one process | Redis µs/delivery | deliveries/s |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in cpu.items():
        us = statistics.median(r["us_per_delivery"] for r in runs)
        redis_us = statistics.median(1e6 * r["redis_cpu"] / r["deliveries"] for r in runs)
        rate = statistics.median(r["deliveries"] / r["seconds"] for r in runs)
        print(f"| {name} | {us:.1f} | {us / base:.2f} | {redis_us:.2f} | {rate:,.0f} |")
    print("\nlatency, send to receive, one receiver per server, 1,000 messages 2 ms apart\n")
    print("| setup | p50 same process | p99 same process | p50 other process | p99 other |")
    print("|---|---:|---:|---:|---:|")
    for name in CONFIGS:
        lat = measure(name, redis, 2 if CONFIGS[name][0] == 2 else 1, 2.0, pace=0.002)
        p50, p99 = lat["p50_us"], lat["p99_us"]
        print(f"| {name} | {p50[0] / 1000:.2f} ms | {p99[0] / 1000:.2f} ms | "
              f"{p50[1] / 1000:.2f} ms | {p99[1] / 1000:.2f} ms |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
