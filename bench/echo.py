"""Server CPU cost per echo message: wstrio versus bare trio-websocket.

``python -m bench.echo [--quick]`` from the repository root: servers from
bench/servers/echo.py, load from bench/go/cmd/loadgen; bench/README.md has the method.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio_websocket

import wstrio
from bench import harness
from bench.harness import BenchError, size_name

SERVERS = ("wstrio", "bare")
#: wstrio / bare at most this much CPU per message (message size: target).
TARGETS = {16: 1.25, 65536: 1.0}


@dataclass(frozen=True)
class Workload:
    connections: int
    size: int

    @property
    def name(self) -> str:
        return f"{size_name(self.size)}, {self.connections} conn" + "s" * (self.connections > 1)


WORKLOADS = tuple(Workload(c, s) for c in (1, 50) for s in (16, 1024, 65536))


@dataclass(frozen=True)
class Measurement(harness.Window):
    connections: int
    size: int
    messages: int

    @property
    def us_per_message(self) -> float:
        return 1e6 * self.server_cpu_seconds / self.messages

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def workload(self) -> Workload:
        return Workload(self.connections, self.size)

    def as_json(self, *computed: str) -> dict[str, Any]:
        return super().as_json("us_per_message", "messages_per_second", *computed)


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
        f"  {m.workload.name:<16} {m.server:<6} #{m.repeat}: "
        f"{m.us_per_message:8.1f} us/msg {m.messages_per_second:9.0f} msg/s"
        f"  {m.cpu_use()}",
        file=sys.stderr,
    )


def summarize(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per workload: medians per server, ratio of medians, per-repeat ratios, target."""
    rows = []
    for workload in WORKLOADS:
        runs = {
            k: [m for m in measurements if (m.workload, m.server) == (workload, k)] for k in SERVERS
        }
        cost = {k: statistics.median(m.us_per_message for m in runs[k]) for k in SERVERS}
        rate = {k: statistics.median(m.messages_per_second for m in runs[k]) for k in SERVERS}
        paired = harness.paired_ratios(runs["wstrio"], runs["bare"], lambda m: m.us_per_message)
        ratio = cost["wstrio"] / cost["bare"]
        target = TARGETS.get(workload.size)
        rows.append(
            {
                "workload": workload.name,
                "connections": workload.connections,
                "size": workload.size,
                "wstrio_us_per_message": cost["wstrio"],
                "bare_us_per_message": cost["bare"],
                "ratio": ratio,
                "paired_ratios": paired,
                "paired_ratio_median": statistics.median(paired),
                "wstrio_messages_per_second": rate["wstrio"],
                "bare_messages_per_second": rate["bare"],
                "target_ratio": target,
                "target_met": None if target is None else ratio <= target,
                **harness.extremes(runs["wstrio"] + runs["bare"]),
            }
        )
    return rows


def receive_buffers(args: argparse.Namespace) -> dict[str, int]:
    """Bytes per socket read of each server, as configured for this run."""
    default = inspect.signature(trio_websocket.serve_websocket).parameters["receive_buffer_size"]
    return {
        "wstrio": wstrio.Config().receive_buffer_size,
        "bare": args.bare_receive_buffer_size or default.default,
    }


def markdown(rows: list[dict[str, Any]], buffers: dict[str, int]) -> str:
    header = ["Workload", "wstrio µs/msg", "bare µs/msg", "wstrio / bare (per-repeat range)"]
    header += ["wstrio msg/s", "bare msg/s", "Target"]
    cells = []
    for row in rows:
        paired = row["paired_ratios"]
        spread = f" ({min(paired):.2f}-{max(paired):.2f})" if len(paired) > 1 else ""
        target = row["target_ratio"]
        verdict = "—"
        if target is not None:
            verdict = f"≤ {target:.2f}: {'met' if row['target_met'] else 'NOT met'}"
        cells.append(
            [
                row["workload"],
                f"{row['wstrio_us_per_message']:.1f}",
                f"{row['bare_us_per_message']:.1f}",
                f"{row['ratio']:.2f}{spread}",
                f"{row['wstrio_messages_per_second']:,.0f}",
                f"{row['bare_messages_per_second']:,.0f}",
                verdict,
            ]
        )
    lines = harness.table(header, ["---", *["---:"] * 5, "---"], cells)
    loadgen = max(row["loadgen_cpu_share_max"] for row in rows)
    others0 = max(row["cpu0_other_share_max"] for row in rows)
    others1 = max(row["cpu1_other_share_max"] for row in rows)
    lines.append("")
    lines.append(
        f"Receive buffer: wstrio {buffers['wstrio']} B, bare {buffers['bare']} B. "
        f"Load generator CPU use (CPU 1) at most {loadgen:.0%}. Other work, at most: "
        f"{others0:.0%} of CPU 0 (the servers'), {others1:.0%} of CPU 1 (the load generator's)."
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every workload, ``repeats`` times against each server; the JSON of the run."""
    date, source = harness.now(), harness.wstrio_source()  # before the servers import it
    loadgen = harness.build_go("loadgen")
    servers: dict[str, tuple[Path, list[str]]]
    servers = {kind: (harness.RESULTS / f"server-{kind}.log", []) for kind in SERVERS}
    if args.bare_receive_buffer_size is not None:
        servers["bare"][1].append(f"--receive-buffer-size={args.bare_receive_buffer_size}")
    measurements, nice = harness.run_repeats(
        "bench.servers.echo",
        servers,
        WORKLOADS,
        args.repeats,
        lambda server, workload, repeat: measure(loadgen, server, workload, repeat, args),
        lambda workload: workload.name,
        report_progress,
    )
    rows = summarize(measurements)
    buffers = receive_buffers(args)
    table = markdown(rows, buffers)
    print(table)
    return {
        "date": date,
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "server_cpu": harness.SERVER_CPU,
            "loadgen_cpu": harness.LOADGEN_CPU,
            "nice": nice,
            "bare_receive_buffer_size": buffers["bare"],
            "wstrio_receive_buffer_size": buffers["wstrio"],
        },
        "machine": harness.machine(),
        "wstrio_source": source,
        "summary": rows,
        "measurements": [m.as_json() for m in measurements],
        "table": table,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per workload and server")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 s windows, 0.3 s warm-up, 1 repeat"
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
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.main("bench.echo", args.output, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
