"""Churn and soak at full size: what tests/system/test_churn.py and test_soak.py check with
reduced counts.

``python -m bench.churn [--connections 10000]``: the churn test's eight endings (clean
close either side, RST, EOF mid-frame, abandoned HTTP and TLS handshakes, a raising
handler, a write timeout) against a real server on loopback, in this process, after a
warm-up; prints the deltas of open fds, Trio tasks, the server's counters and RSS.

``python -m bench.churn --soak 600``: the soak test's mixed load (echo, a broadcast
room, churn) for that many seconds; prints RSS sampled every 5 s with its slope (least
squares, KiB per minute), drops, errors and the echo round trip's p50/p99.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests/support", "tests/system"):
    sys.path.insert(0, str(ROOT / folder))

import test_churn  # noqa: E402 - the workload is the test's, at another size
import test_soak  # noqa: E402
from helpers import count_fds, task_names  # noqa: E402


async def churn(connections: int) -> None:
    async with test_churn.open_servers() as servers:
        await test_churn.churn(servers, 25)
        fds, tasks, rss = count_fds(), task_names(), test_churn.rss_kib()
        before = servers.plain.statistics()
        per_round = len(test_churn.WAYS) + 0.1
        rounds = round(connections / per_round)
        started = time.perf_counter()
        await test_churn.churn(servers, rounds)
        took = time.perf_counter() - started
        after = servers.plain.statistics()
        opened = after.connections_total - before.connections_total
        print(f"{rounds * len(test_churn.WAYS) + rounds // 10:,} connections in {took:.1f} s"
              f" ({opened:,} upgraded), after a warm-up of 25 rounds")  # fmt: skip
        print(
            f"open fds: {count_fds() - fds:+d}; Trio tasks: {len(task_names()) - len(tasks):+d}"
            f"; open sessions: {after.open_connections}; handshakes: {after.handshakes}"
        )
        closes = {c: n - before.closes_by_code.get(c, 0) for c, n in after.closes_by_code.items()}
        print(f"closes by code: {dict(sorted(closes.items()))}")
        print(f"RSS: {rss / 1024:.1f} MiB -> {test_churn.rss_kib() / 1024:.1f} MiB")


async def soak(seconds: float) -> None:
    report = await test_soak.run_soak(seconds, sample_every=5.0)
    slope = report.slope_kib_per_minute
    print(
        f"soak {seconds:.0f} s: {report.echoes:,} echoes, {report.broadcasts:,} broadcasts"
        f" ({report.deliveries:,} deliveries), {report.churned:,} churned connections"
    )
    print(
        f"errors {report.errors}, drops {report.drops}; echo round trip p50"
        f" {report.p50_ms:.2f} ms, p99 {report.p99_ms:.2f} ms"
    )
    print(
        f"RSS every {report.sample_every:.0f} s (MiB): "
        + ", ".join(f"{kib / 1024:.1f}" for kib in report.rss_kib)
    )
    print(
        f"RSS slope after the first minute: {slope:+.1f} KiB per minute"
        f" (median sample {statistics.median(report.rss_kib) / 1024:.1f} MiB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--soak", type=float, metavar="SECONDS")
    args = parser.parse_args()
    if args.soak:
        trio.run(soak, args.soak)
    else:
        trio.run(functools.partial(churn, args.connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
