"""Server memory per idle connection with permessage-deflate negotiated, against without.

``python -m bench.compression_memory [--conns N ...] [--baseline]`` from the repository
root (``--baseline``: bare Trio TCP too, bench/servers/raw.py): the
``wstrio`` echo server of bench/servers/echo.py (default Config: compression on,
12-bit window, memory level 5, context takeover) with ``--probe``; N clients of
the ``websockets`` package (asyncio, in this process) connect, each echoes one
1 KiB JSON-like message (so both of the server's zlib streams have run), then
stay idle while the server's RSS is read after a full collection. Once with the
clients offering permessage-deflate (their default offer, with
``client_max_window_bits``), once without, alternating, a fresh server process
for each measurement (memory freed by an earlier run would be reused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench import harness

MESSAGE = json.dumps({"symbol": "WSTR", "bid": 101.25, "ask": 101.5, "depth": list(range(150))})


def probe(server: harness.Server) -> dict[str, Any]:
    os.kill(server.pid, signal.SIGUSR1)
    return json.loads(harness.read_line(server.proc, time.monotonic() + 30))


async def open_idle(port: int, conns: int, compression: str | None) -> list[ClientConnection]:
    url = f"ws://{harness.HOST}:{port}/ws/echo"
    opened: list[ClientConnection] = []
    for _ in range(conns):
        ws = await connect(url, compression=compression, ping_interval=None)
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        if bool(extensions) != (compression is not None):
            raise harness.BenchError(f"compression={compression}: 101 said {extensions!r}")
        await ws.send(MESSAGE)
        if await ws.recv() != MESSAGE:
            raise harness.BenchError("the echo differs")
        opened.append(ws)
    return opened


async def measure(server: harness.Server, conns: int, compression: str | None) -> dict[str, Any]:
    before = probe(server)
    opened = await open_idle(server.port, conns, compression)
    await asyncio.sleep(0.5)  # not a test: let the server's last sessions settle
    during = probe(server)
    for ws in opened:
        await ws.close()
    kib = (during["rss_kib"] - before["rss_kib"]) / conns
    return {"compression": compression, "conns": conns, "rss_kib_per_conn": kib}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, nargs="+", default=[500], help="idle connections")
    parser.add_argument("--repeats", type=int, default=3, help="rotated runs of each (3)")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also bare Trio TCP (bench/servers/raw.py: minimal upgrade and framing)",
    )
    args = parser.parse_args(argv)
    log = harness.RESULTS / "compression-memory-server.log"
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    cases = [("wstrio", "deflate"), ("wstrio", None)] + ([("raw", None)] if args.baseline else [])
    rows = []
    for conns in args.conns:
        for repeat in range(args.repeats):
            turn = repeat % len(cases)
            for kind, compression in cases[turn:] + cases[:turn]:
                with harness.server("bench.servers.echo", kind, log, ["--probe"]) as server:
                    row = asyncio.run(measure(server, conns, compression))
                row["kind"] = kind
                print(f"  {row}", file=sys.stderr)
                rows.append(row)
    print("| idle connections | server | KiB per connection (median) | range | vs bare Trio |")
    print("|---:|---|---:|---:|---:|")
    for conns in args.conns:
        medians = {}
        for kind, compression in cases:
            values = sorted(
                r["rss_kib_per_conn"]
                for r in rows
                if (r["conns"], r["kind"], r["compression"]) == (conns, kind, compression)
            )
            medians[kind, compression] = (values[len(values) // 2], values[0], values[-1])
        base = medians.get(("raw", None), (float("nan"),))[0]
        for (kind, compression), (median, low, high) in medians.items():
            name = {"raw": "bare Trio TCP"}.get(kind, f"wstrio, {compression or 'no compression'}")
            print(f"| {conns:,} | {name} | {median:.1f} | {low:.1f}-{high:.1f} |"
                  f" {median / base:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
