"""Memory per idle connection and server CPU per connection cycle (handshake + close).

``python -m bench.connections [--before-tree PATH] [--quick]`` from the repository
root: the echo servers of bench/servers/echo.py, connections from
bench/go/cmd/connload; bench/README.md has the method.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import harness
from bench.connections_report import Cycles, markdown, summarize
from bench.echo import before_source, parse_servers, server_options
from bench.harness import BenchError

MODULE = "bench.servers.echo"
SERVERS = ("wstrio", "wstrio-tws", "before", "bare", "raw")


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise BenchError(f"{needed} file descriptors needed, hard limit is {hard}: fewer --idle")
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def probe(server: harness.Server) -> dict[str, Any]:
    """The server's memory (RSS KiB, traced bytes) after a full collection."""
    os.kill(server.pid, signal.SIGUSR1)
    return json.loads(harness.read_line(server.proc, time.monotonic() + 30))


def idle_run(connload: Path, server: harness.Server, conns: int, settle: float) -> dict[str, Any]:
    """Open ``conns`` idle connections; the server's memory before and while they are open."""
    before = probe(server)
    command = ["taskset", "-c", str(harness.LOADGEN_CPU), str(connload), "-mode=idle"]
    command += [f"-url=ws://{harness.HOST}:{server.port}/ws/echo", f"-conns={conns}"]
    proc = harness.spawn(command, stdin=harness.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        harness.expect(harness.read_line(proc, deadline), "open")
        time.sleep(settle)  # the server's side of the last handshakes, its tasks starting
        during = probe(server)
        assert proc.stdin is not None
        proc.stdin.write(b"close\n")
        proc.stdin.flush()
        report = json.loads(harness.read_line(proc, deadline))
        status = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        harness.stop(proc)
    if status != 0:
        raise BenchError(f"connload -mode=idle failed against {server.kind}: {report}")
    return {"before": before, "during": during, "loadgen": report}


def memory(args: argparse.Namespace, connload: Path, traced: bool) -> list[dict[str, Any]]:
    """Per repeat and server (a fresh one each time, after a warm-up run of 50 connections):
    RSS (or, ``traced``, tracemalloc) growth per idle connection."""
    options = ["--probe", *(["--tracemalloc"] if traced else [])]
    repeats = 1 if traced else args.memory_repeats
    results = []
    for repeat in range(repeats):
        shift = repeat % len(args.servers)
        for kind in args.servers[shift:] + args.servers[:shift]:
            log = harness.RESULTS / f"connections-server-{kind}{'-traced' if traced else ''}.log"
            with harness.server(MODULE, kind, log, [*options, *server_options(kind, args)]) as srv:
                idle_run(connload, srv, 50, 0.2)
                run = idle_run(connload, srv, args.idle, args.settle)
            before, during = run["before"], run["during"]
            entry = {"server": kind, "repeat": repeat, "connections": args.idle, **run}
            entry["rss_kib_per_connection"] = (during["rss_kib"] - before["rss_kib"]) / args.idle
            entry["tasks_per_connection"] = (during["tasks"] - before["tasks"]) / args.idle
            if traced:
                growth = during["traced_bytes"] - before["traced_bytes"]
                entry["traced_kib_per_connection"] = growth / 1024 / args.idle
                entry["traced_sites"] = [  # site, bytes and blocks per connection
                    [site, size / args.idle, count / args.idle]
                    for site, size, count in during["growth"][:10]
                ]
                entry["traced_packages"] = {  # package: KiB per connection
                    package: size / 1024 / args.idle
                    for package, size in sorted(during["packages"].items(), key=lambda kv: -kv[1])
                }
            results.append(entry)
            key = "traced_kib_per_connection" if traced else "rss_kib_per_connection"
            print(
                f"  idle x{args.idle} {kind:<10} #{repeat}: {entry[key]:6.1f} KiB/conn"
                f" ({'tracemalloc' if traced else 'RSS'}; dialled in"
                f" {run['loadgen']['seconds']:.2f} s)",
                file=sys.stderr,
            )
    return results


def measure_cycles(
    connload: Path, server: harness.Server, repeat: int, args: argparse.Namespace
) -> Cycles:
    command = [str(connload), "-mode=cycle", f"-url=ws://{harness.HOST}:{server.port}/ws/echo"]
    command += [f"-parallel={args.parallel}", f"-warmup={args.warmup}s"]
    command += [f"-duration={args.duration}s"]
    report, status, usage = harness.run_loadgen(
        command, server.pid, args.warmup + args.duration + 60
    )
    if status != 0 or report["cycles"] == 0:
        raise BenchError(f"connload -mode=cycle failed: {report}")
    m = Cycles(server=server.kind, repeat=repeat, cycles=report["cycles"], **usage)
    print(
        f"  cycles {m.server:<10} #{repeat}: {m.us_per_cycle:8.1f} us/cycle"
        f" {m.cycles_per_second:7.0f} cycles/s  {m.cpu_use()}",
        file=sys.stderr,
    )
    return m


def run(args: argparse.Namespace) -> dict[str, Any]:
    date, source = harness.now(), harness.wstrio_source()
    connload = harness.build_go("connload")
    fd_limit = raise_fd_limit(args.idle + 64)
    print(f"memory: {args.idle} idle connections, RSS ...", file=sys.stderr)
    rss = memory(args, connload, traced=False)
    traced = []
    if not args.no_tracemalloc:
        print("memory: tracemalloc ...", file=sys.stderr)
        traced = memory(args, connload, traced=True)
    print(f"cycles: {args.parallel} workers ...", file=sys.stderr)
    servers = {
        kind: (
            harness.RESULTS / f"connections-server-{kind}-cycles.log",
            server_options(kind, args),
        )
        for kind in args.servers
    }
    cycles, nice = harness.run_repeats(
        MODULE,
        servers,
        ["cycles"],
        args.repeats,
        lambda server, _, repeat: measure_cycles(connload, server, repeat, args),
        lambda _: "cycles",
        lambda _: None,
    )
    summary = summarize(args.servers, rss, traced, cycles)
    table = markdown(summary, args.idle, args.parallel)
    described = harness.machine("h11")
    table += "\n\n" + harness.machine_line(described)
    print(table)
    return {
        "date": date,
        "settings": {
            "idle": args.idle,
            "memory_repeats": args.memory_repeats,
            "settle": args.settle,
            "parallel": args.parallel,
            "duration": args.duration,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "servers": list(args.servers),
            "nice": nice,
            "fd_limit": fd_limit,
            "before_tree": None if args.before_tree is None else str(args.before_tree),
        },
        "machine": described,
        "wstrio_source": source,
        "before_source": before_source(args.before_tree),
        "summary": summary,
        "memory_runs": rss,
        "tracemalloc_runs": traced,
        "cycles": [m.as_json() for m in cycles],
        "table": table,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-tree", type=Path, metavar="PATH", help="run server 'before'")
    parser.add_argument("--servers", metavar="KINDS", help=f"subset of {','.join(SERVERS)}")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections to open")
    parser.add_argument("--memory-repeats", type=int, default=3, help="idle runs per server")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the traced pass")
    parser.add_argument("--parallel", type=int, default=16, help="connload's cycling workers")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per run")
    parser.add_argument("--repeats", type=int, default=5, help="cycle runs per server")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 1 s windows")
    output = harness.RESULTS / "connections.json"
    parser.add_argument("--output", type=Path, default=output, help="JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeats, args.memory_repeats = 1.0, 0.3, 1, 1
        args.idle = min(args.idle, 500)
    if min(args.idle, args.memory_repeats, args.parallel, args.repeats) < 1 or args.duration <= 0:
        parser.error("need --idle, --memory-repeats, --parallel, --repeats >= 1, --duration > 0")
    parse_servers(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.main("bench.connections", args.output, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
