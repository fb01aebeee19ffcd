"""Server memory per idle connection with permessage-deflate negotiated, against without.

``python -m bench.compression_memory [--conns N]`` from the repository root: the
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
    parser.add_argument("--conns", type=int, default=500, help="idle connections (500)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each (3)")
    args = parser.parse_args(argv)
    log = harness.RESULTS / "compression-memory-server.log"
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for repeat in range(args.repeats):
        for compression in ("deflate", None) if repeat % 2 == 0 else (None, "deflate"):
            with harness.server("bench.servers.echo", "wstrio", log, ["--probe"]) as server:
                row = asyncio.run(measure(server, args.conns, compression))
            print(f"  {row}", file=sys.stderr)
            rows.append(row)
    for compression in ("deflate", None):
        values = sorted(r["rss_kib_per_conn"] for r in rows if r["compression"] == compression)
        print(
            f"compression={compression}: RSS KiB per idle connection, median"
            f" {values[len(values) // 2]:.1f} (range {values[0]:.1f}-{values[-1]:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
