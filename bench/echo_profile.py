"""Where the echo servers' CPU goes: one sampled window per server and workload.

``python -m bench.echo_profile [--before-tree PATH]`` from the repository root:
the servers of bench/servers/echo.py with ``--sample`` (bench/profile.py's stack
sampler, started and stopped by SIGUSR2 at the load generator's ``start`` and
``stop``), the load of bench/go/cmd/loadgen; bench/README.md has the method.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import harness, profile
from bench.echo import before_source, parse_servers, parse_workloads, server_options
from bench.echo_report import Workload
from bench.harness import BenchError

MODULE = "bench.servers.echo"
SERVERS = ("wstrio", "wstrio-tws", "before", "bare", "raw")
WORKLOADS = "1x16,50x64,1x65536"


def sampled_run(
    loadgen: Path, server: harness.Server, workload: Workload | None, args: argparse.Namespace
) -> dict[str, Any]:
    """One window of ``workload`` (None: connection cycles, from connload) with the
    server's sampler on; its summary and breakdown."""
    command = ["taskset", "-c", str(harness.LOADGEN_CPU), str(loadgen)]
    command += [f"-url=ws://{harness.HOST}:{server.port}/ws/echo"]
    if workload is None:
        command += ["-mode=cycle", f"-parallel={args.parallel}"]
    else:
        command += [f"-conns={workload.connections}", f"-size={workload.size}"]
    command += [f"-warmup={args.warmup}s", f"-duration={args.duration}s"]
    deadline = time.monotonic() + args.warmup + args.duration + 60
    proc = harness.spawn(command)
    try:
        harness.expect(harness.read_line(proc, deadline), "start")
        os.kill(server.pid, signal.SIGUSR2)
        cpu_start = harness.cpu_seconds(server.pid)
        harness.expect(harness.read_line(proc, deadline), "stop")
        cpu = harness.cpu_seconds(server.pid) - cpu_start
        os.kill(server.pid, signal.SIGUSR2)
        report = json.loads(harness.read_line(proc, deadline))
        status = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        harness.stop(proc)
    count = report["cycles" if workload is None else "messages"]
    if status != 0 or count == 0:
        raise BenchError(f"load generator failed: {report}")
    line = harness.read_line(server.proc, deadline)
    if not line.startswith("profile "):
        raise BenchError(f"{server.kind} said {line[:80]!r}, expected 'profile {{...}}'")
    summary = json.loads(line.removeprefix("profile "))
    us = 1e6 * cpu / count
    return {
        "server": server.kind,
        "workload": name(workload, args),
        "connections": None if workload is None else workload.connections,
        "size": None if workload is None else workload.size,
        "messages": count,  # or cycles
        "server_cpu_seconds": cpu,
        "us_per_message": us,
        "profile": summary,
        "breakdown": profile.breakdown(summary, us),  # its "us_per_delivery": µs per message
    }


def name(workload: Workload | None, args: argparse.Namespace) -> str:
    return f"connection cycles ({args.parallel} workers)" if workload is None else workload.name


def markdown(runs: list[dict[str, Any]], servers: tuple[str, ...], leaves: int) -> str:
    """Per workload: share and µs per message of each bucket and detail, per server;
    then each server's innermost functions with the largest shares."""
    lines: list[str] = []
    for name in dict.fromkeys(r["workload"] for r in runs):
        sampled = {r["server"]: r for r in runs if r["workload"] == name}
        shown = [k for k in servers if k in sampled]
        counts = ", ".join(
            f"{k} {sampled[k]['profile']['samples']} samples, {sampled[k]['us_per_message']:.1f}"
            f" µs/{'cycle' if name.startswith('connection') else 'msg'}"
            for k in shown
        )
        lines += [f"**{name}** ({counts}; sampled runs, one window each)", ""]
        cells: dict[tuple[str, str | None], dict[str, list[str]]] = {}
        for k in shown:
            for row in sampled[k]["breakdown"]:
                where = cells.setdefault((row["category"], row["detail"]), {})
                where[k] = [f"{row['share']:.0%}", f"{row['us_per_delivery']:.1f}"]
        order = sorted(cells, key=lambda key: (profile._rank(key[0]), key[1] is not None))
        order = [key for key in order if key[1] is None or len(cells[key]) > 0]
        rows = [
            [f"**{bucket}**" if detail is None else f"  · {detail}"]
            + [cell for k in shown for cell in cells[bucket, detail].get(k, ["—", "—"])]
            for bucket, detail in order
        ]
        header = ["Where", *(f"{k}: {what}" for k in shown for what in ("share", "µs"))]
        lines += [*harness.table(header, ["---"] + ["---:"] * (2 * len(shown)), rows), ""]
        for k in shown:
            total = sampled[k]["profile"]["sampled_seconds"]
            top = sampled[k]["profile"]["top_leaves"][:leaves]
            text = "; ".join(f"`{leaf}` {seconds / total:.0%}" for leaf, seconds in top)
            lines += [f"{k}, innermost functions: {text}.", ""]
    return "\n".join(lines).rstrip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    date, source = harness.now(), harness.wstrio_source()
    loadgen, connload = harness.build_go("loadgen"), harness.build_go("connload")
    plans = [(loadgen, w) for w in args.workloads] + [(connload, None)] * args.cycles
    runs = []
    for kind in args.servers:
        log = harness.RESULTS / f"server-{kind}-profile.log"
        with harness.server(MODULE, kind, log, ["--sample", *server_options(kind, args)]) as srv:
            for command, workload in plans:
                try:
                    runs.append(sampled_run(command, srv, workload, args))
                except BenchError as exc:
                    where = f"{kind}, {name(workload, args)} (log: {log})"
                    raise BenchError(f"{where}: {exc}") from None
                print(
                    f"  profiled {kind:<10} {name(workload, args):<16}"
                    f" {runs[-1]['us_per_message']:8.1f} us per message or cycle",
                    file=sys.stderr,
                )
    table = markdown(runs, args.servers, args.leaves)
    described = harness.machine("h11")
    table += "\n\n" + harness.machine_line(described)
    print(table)
    return {
        "date": date,
        "settings": {"duration": args.duration, "warmup": args.warmup, "parallel": args.parallel},
        "machine": described,
        "wstrio_source": source,
        "before_source": before_source(args.before_tree),
        "runs": runs,
        "table": table,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-tree", type=Path, metavar="PATH", help="run server 'before'")
    parser.add_argument(
        "--servers",
        default="wstrio,before,raw",
        metavar="KINDS",
        help="subset of " + ",".join(SERVERS),
    )
    parser.add_argument("--workloads", default=WORKLOADS, metavar="LIST", help="CONNSxBYTES,...")
    parser.add_argument("--duration", type=float, default=5.0, help="sampled seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per run")
    parser.add_argument(
        "--cycles", action="store_true", help="also profile connection cycles (connload)"
    )
    parser.add_argument("--parallel", type=int, default=16, help="connload's cycling workers")
    parser.add_argument("--leaves", type=int, default=8, help="innermost functions listed")
    output = harness.RESULTS / "echo-profile.json"
    parser.add_argument("--output", type=Path, default=output, help="JSON file")
    args = parser.parse_args(argv)
    if args.before_tree is None:  # the default list names before: drop it quietly
        args.servers = ",".join(k for k in args.servers.split(",") if k != "before")
    parse_servers(parser, args)
    args.workloads = parse_workloads(parser, args.workloads)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.main("bench.echo_profile", args.output, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
