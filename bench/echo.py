"""Server CPU cost per echo message: wstrio against its earlier self and the baselines.

``python -m bench.echo [--before-tree PATH] [--quick]`` from the repository root:
servers from bench/servers/echo.py (wstrio's two engines, the wstrio of another
tree, bare trio-websocket, raw Trio TCP), load from bench/go/cmd/loadgen, tables
from bench/echo_report.py; bench/README.md has the method.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench import echo_report, harness
from bench.echo_report import Measurement, Workload
from bench.harness import BenchError

MODULE = "bench.servers.echo"
#: Every server kind, in the order of the tables (``before`` only with --before-tree).
SERVERS = ("wstrio", "wstrio-tws", "before", "bare", "raw")
WORKLOADS = (
    *(Workload(1, size) for size in (16, 1024, 65536)),
    *(Workload(50, size) for size in (64, 1024, 65536)),
)


def measure(
    loadgen: Path, server: harness.Server, workload: Workload, repeat: int, args: argparse.Namespace
) -> Measurement:
    """One measured window of one workload against one server."""
    command = [
        str(loadgen),
        f"-url=ws://{harness.HOST}:{server.port}/ws/echo",
        f"-conns={workload.connections}",
        f"-size={workload.size}",
        f"-warmup={args.warmup}s",
        f"-duration={args.duration}s",
    ]
    timeout = args.warmup + args.duration + 60
    report, status, usage = harness.run_loadgen(command, server.pid, timeout)
    if status != 0:
        raise BenchError(f"load generator failed: {report}")
    if report["messages"] == 0:
        raise BenchError(f"no message echoed by {server.kind} in {workload.name}")
    return Measurement(
        server=server.kind,
        repeat=repeat,
        connections=workload.connections,
        size=workload.size,
        messages=report["messages"],
        **usage,
    )


def report_progress(m: Measurement) -> None:
    print(
        f"  {m.workload.name:<16} {m.server:<10} #{m.repeat}: "
        f"{m.us_per_message:8.1f} us/msg {m.messages_per_second:9.0f} msg/s"
        f"  {m.cpu_use()}",
        file=sys.stderr,
    )


def server_options(kind: str, args: argparse.Namespace) -> list[str]:
    """Command-line options of one echo server (shared with bench/connections.py)."""
    options = []
    if kind == "before":
        options.append(f"--before-tree={args.before_tree}")
    if kind == "bare" and getattr(args, "bare_receive_buffer_size", None) is not None:
        options.append(f"--receive-buffer-size={args.bare_receive_buffer_size}")
    return options


def before_source(tree: Path | None) -> dict[str, Any] | None:
    return None if tree is None else harness.wstrio_source(tree / "wstrio")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every workload, ``repeats`` times against each server; the JSON of the run."""
    date, source = harness.now(), harness.wstrio_source()  # before the servers import it
    loadgen = harness.build_go("loadgen")
    servers = {
        kind: (harness.RESULTS / f"server-{kind}.log", server_options(kind, args))
        for kind in args.servers
    }
    measurements, nice = harness.run_repeats(
        MODULE,
        servers,
        args.workloads,
        args.repeats,
        lambda server, workload, repeat: measure(loadgen, server, workload, repeat, args),
        lambda workload: workload.name,
        report_progress,
    )
    rows = echo_report.summarize(measurements, args.workloads, args.servers)
    buffers = echo_report.receive_buffers(
        args.servers, args.bare_receive_buffer_size, args.before_tree
    )
    table = echo_report.markdown(rows, args.servers, buffers)
    described = harness.machine("h11")
    table += "\n\n" + harness.machine_line(described)
    print(table)
    return {
        "date": date,
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "servers": list(args.servers),
            "server_cpu": harness.SERVER_CPU,
            "loadgen_cpu": harness.LOADGEN_CPU,
            "nice": nice,
            "receive_buffer_sizes": buffers,
            "before_tree": None if args.before_tree is None else str(args.before_tree),
        },
        "machine": described,
        "wstrio_source": source,
        "before_source": before_source(args.before_tree),
        "summary": rows,
        "measurements": [m.as_json() for m in measurements],
        "table": table,
    }


def parse_servers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--servers`` (default: all; ``before`` only with ``--before-tree``) into a tuple."""
    wanted = SERVERS if args.servers is None else tuple(args.servers.split(","))
    if unknown := set(wanted) - set(SERVERS):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}; known: {', '.join(SERVERS)}")
    if args.before_tree is not None and not (args.before_tree / "wstrio").is_dir():
        parser.error(f"--before-tree: no wstrio/ in {args.before_tree}")
    if args.before_tree is None:
        if args.servers is not None and "before" in wanted:
            parser.error("server before needs --before-tree PATH")
        wanted = tuple(kind for kind in wanted if kind != "before")
    args.servers = tuple(kind for kind in SERVERS if kind in wanted)
    if "wstrio" not in args.servers:
        parser.error("--servers must include wstrio")


def parse_workloads(parser: argparse.ArgumentParser, text: str | None) -> tuple[Workload, ...]:
    """``--workloads 1x16,50x64``: connections x bytes, comma-separated."""
    if text is None:
        return WORKLOADS
    try:
        pairs = [item.split("x") for item in text.split(",")]
        workloads = tuple(Workload(int(conns), int(size)) for conns, size in pairs)
    except ValueError:
        parser.error(f"--workloads: expected CONNSxBYTES[,...], got {text!r}")
    if any(w.connections < 1 or w.size < 1 for w in workloads):
        parser.error("--workloads: connections and sizes must be positive")
    return workloads


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per workload and server")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 s windows, 0.3 s warm-up, 1 repeat"
    )
    parser.add_argument(
        "--before-tree",
        type=Path,
        metavar="PATH",
        help="run server 'before': the wstrio/ package in PATH (e.g. a git worktree)",
    )
    parser.add_argument(
        "--servers", metavar="KINDS", help=f"comma-separated subset of {','.join(SERVERS)}"
    )
    parser.add_argument(
        "--workloads",
        metavar="LIST",
        help="CONNSxBYTES, comma-separated (default 1x16,1x1024,1x65536,50x64,50x1024,50x65536)",
    )
    parser.add_argument(
        "--bare-receive-buffer-size",
        type=int,
        metavar="BYTES",
        help="give the bare server this receive buffer instead of trio-websocket's 4096",
    )
    output = harness.RESULTS / "echo.json"
    parser.add_argument("--output", type=Path, default=output, help="JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeats = 1.0, 0.3, 1
    if args.duration <= 0 or args.warmup < 0 or args.repeats < 1:
        parser.error("need --duration > 0, --warmup >= 0 and --repeats >= 1")
    parse_servers(parser, args)
    args.workloads = parse_workloads(parser, args.workloads)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.main("bench.echo", args.output, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
