"""Server CPU per broadcast delivery: wstrio's Hub vs bare trio-websocket vs websockets.

Run ``python3 bench/broadcast.py`` (``--quick`` for a smoke run). It builds
the Go load generator (bench/bloadgen) if needed and starts three broadcast
servers (bench/broadcast_server.py: ``wstrio``, ``bare``, ``websockets``)
pinned to CPU 0. For each message size and repeat it runs the load generator
on CPU 1 against each server in turn (the order rotates with the repeat):
500 receivers join one room, one sender broadcasts in lockstep (broadcast
i+1 leaves once every receiver has got broadcast i). Server CPU time comes
from /proc/PID/stat at the start and end of each measured window. Then, with
fresh servers, one stack-sampled run of wstrio and of bare per size (and one
cProfile run of wstrio) shows where the CPU goes, and timeit measures what
encoding one frame costs in wsproto. It prints Markdown tables and writes
every measurement to bench/results/broadcast.json. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import echo  # noqa: E402  (bench/echo.py: /proc accounting, process helpers)

BLOADGEN_SRC = BENCH / "bloadgen" / "main.go"
BLOADGEN_BIN = BENCH / ".build" / "bloadgen"
RESULTS = BENCH / "results"
HOST = echo.HOST
SERVER_CPU = echo.SERVER_CPU
LOADGEN_CPU = echo.LOADGEN_CPU
BASELINE = "bare"
SERVERS = ("bare", "wstrio", "websockets")
#: Servers whose CPU the profiling pass breaks down.
PROFILED = ("wstrio", "bare", "websockets")
BenchError = echo.BenchError


@dataclass(frozen=True)
class Measurement:
    server: str
    size: int
    receivers: int
    repeat: int
    broadcasts: int
    deliveries: int
    seconds: float
    server_cpu_seconds: float
    loadgen_cpu_seconds: float
    cpu0_other_seconds: float
    cpu1_other_seconds: float
    latency_p50_us: float
    latency_p90_us: float
    latency_p99_us: float
    latency_max_us: float
    round_p50_us: float
    round_p99_us: float
    setup_seconds: float
    server_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def us_per_delivery(self) -> float:
        return 1e6 * self.server_cpu_seconds / self.deliveries

    @property
    def gc_share(self) -> float:
        """Share of the server's CPU the cyclic GC took, over the sender's session."""
        window = self.server_stats["window"]
        return float(sum(window["gc_seconds"])) / float(window["cpu_seconds"])

    @property
    def gc_us_per_delivery(self) -> float:
        return self.gc_share * self.us_per_delivery

    @property
    def deliveries_per_second(self) -> float:
        return self.deliveries / self.seconds

    @property
    def server_cpu_share(self) -> float:
        return self.server_cpu_seconds / self.seconds

    @property
    def loadgen_cpu_share(self) -> float:
        return self.loadgen_cpu_seconds / self.seconds

    @property
    def cpu0_other_share(self) -> float:
        return max(0.0, self.cpu0_other_seconds / self.seconds)

    @property
    def cpu1_other_share(self) -> float:
        return max(0.0, self.cpu1_other_seconds / self.seconds)

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "us_per_delivery": self.us_per_delivery,
            "gc_share": self.gc_share,
            "gc_us_per_delivery": self.gc_us_per_delivery,
            "deliveries_per_second": self.deliveries_per_second,
            "server_cpu_share": self.server_cpu_share,
            "loadgen_cpu_share": self.loadgen_cpu_share,
            "cpu0_other_share": self.cpu0_other_share,
            "cpu1_other_share": self.cpu1_other_share,
        }


def size_name(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def build_bloadgen() -> Path:
    """Compile bench/bloadgen into bench/.build (GOPATH mode, Debian's gorilla)."""
    if BLOADGEN_BIN.exists() and BLOADGEN_BIN.stat().st_mtime >= BLOADGEN_SRC.stat().st_mtime:
        return BLOADGEN_BIN
    go = shutil.which("go")
    if go is None:
        raise BenchError(
            "go not found: apt-get install -y golang golang-github-gorilla-websocket-dev"
        )
    env = dict(
        os.environ,
        GO111MODULE="off",
        GOPATH=echo.GOPATH,
        GOFLAGS="",
        GOCACHE=str(BLOADGEN_BIN.parent / "go-cache"),
    )
    print("building bench/bloadgen ...", file=sys.stderr)
    command = [go, "build", "-o", str(BLOADGEN_BIN), "./bloadgen"]
    done = subprocess.run(command, cwd=BENCH, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"building the load generator failed:\n{done.stderr}")
    return BLOADGEN_BIN


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise BenchError(
            f"{needed} file descriptors needed, hard limit is {hard}: use fewer --clients"
        )
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def server_log(kind: str, profiled: bool = False) -> Path:
    return RESULTS / f"broadcast-server-{kind}{'-profile' if profiled else ''}.log"


@contextmanager
def broadcast_server(kind: str, log: Path, extra: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """Run one broadcast server pinned to SERVER_CPU; yields it after it printed its port."""
    command = [
        "taskset", "-c", str(SERVER_CPU), sys.executable, str(BENCH / "broadcast_server.py"),
        kind, "--host", HOST, "--port", "0", *extra,
    ]  # fmt: skip
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            bufsize=0,
            preexec_fn=echo.child_setup,
        )
    try:
        reply = echo.read_line(proc, time.monotonic() + 30)
        if not reply.startswith("port "):
            raise BenchError(f"{kind} server said {reply!r}, expected 'port N'")
        proc.port = int(reply.split()[1])  # type: ignore[attr-defined]
        yield proc
        if proc.poll() is not None:
            raise BenchError(f"{kind} server died (status {proc.returncode}); see {log}")
    finally:
        echo.stop(proc)


def measure(
    loadgen: Path,
    kind: str,
    server: subprocess.Popen[bytes],
    size: int,
    repeat: int,
    args: argparse.Namespace,
) -> Measurement:
    """One measured window of one size against one server."""
    port = server.port  # type: ignore[attr-defined]
    command = [
        "taskset", "-c", str(LOADGEN_CPU), str(loadgen),
        f"-recv=ws://{HOST}:{port}/ws/room",
        f"-send=ws://{HOST}:{port}/ws/send",
        f"-receivers={args.clients}",
        f"-size={size}",
        f"-warmup={args.warmup}s",
        f"-duration={args.duration}s",
        "-sync",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
        preexec_fn=echo.child_setup,
    )
    pid = server.pid
    try:
        deadline = time.monotonic() + args.warmup + args.duration + 120
        expect(echo.read_line(proc, deadline), "start")
        cpu_before, busy_before = echo.cpu_seconds(pid), echo.cpu_busy_seconds()
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")  # the load generator waits for this, between broadcasts
        proc.stdin.flush()
        expect(echo.read_line(proc, deadline), "stop")
        cpu_after, busy_after = echo.cpu_seconds(pid), echo.cpu_busy_seconds()
        report: dict[str, Any] = json.loads(echo.read_line(proc, deadline))
        status = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        echo.stop(proc)
    stats_line = echo.read_line(server, time.monotonic() + 30)
    if not stats_line.startswith("stats "):
        raise BenchError(f"{kind} server said {stats_line!r}, expected 'stats {{...}}'")
    stats = json.loads(stats_line[len("stats ") :])
    if status != 0 or report["errors"]:
        raise BenchError(f"load generator failed: {report}; server: {stats}")
    if report["deliveries"] != report["broadcasts"] * args.clients or not report["broadcasts"]:
        raise BenchError(f"{report['deliveries']} deliveries for {report['broadcasts']} broadcasts")
    check_server_stats(kind, stats)
    server_cpu = cpu_after - cpu_before
    loadgen_cpu = report["loadgen_cpu_seconds"]
    return Measurement(
        server=kind,
        size=size,
        receivers=report["receivers"],
        repeat=repeat,
        broadcasts=report["broadcasts"],
        deliveries=report["deliveries"],
        seconds=report["seconds"],
        server_cpu_seconds=server_cpu,
        loadgen_cpu_seconds=loadgen_cpu,
        cpu0_other_seconds=busy_after[SERVER_CPU] - busy_before[SERVER_CPU] - server_cpu,
        cpu1_other_seconds=busy_after[LOADGEN_CPU] - busy_before[LOADGEN_CPU] - loadgen_cpu,
        latency_p50_us=report["latency_p50_us"],
        latency_p90_us=report["latency_p90_us"],
        latency_p99_us=report["latency_p99_us"],
        latency_max_us=report["latency_max_us"],
        round_p50_us=report["round_p50_us"],
        round_p99_us=report["round_p99_us"],
        setup_seconds=report["setup_seconds"],
        server_stats=stats,
    )


def check_server_stats(kind: str, stats: dict[str, Any]) -> None:
    """Nobody dropped, closed or failed: the server's own counters agree."""
    if kind == "wstrio":
        hub = stats["hub"]
        if hub["drops"] or hub["slow_closes"] or stats["member_drops"]:
            raise BenchError(f"wstrio dropped or closed slow members: {stats}")
    elif stats["send_errors"]:
        raise BenchError(f"{kind}: sends failed: {stats}")


def expect(line: str, wanted: str) -> None:
    if line != wanted:
        raise BenchError(f"load generator said {line!r}, expected {wanted!r}")


def server_options(kind: str, args: argparse.Namespace) -> list[str]:
    options = ["--no-gc"] if args.no_gc else []
    if kind == "wstrio":
        options.append(f"--outbox-size={args.outbox_size}")
    return options


def rotation(repeat: int) -> tuple[str, ...]:
    """The servers' order in one repeat: each takes each position equally often."""
    shift = repeat % len(SERVERS)
    return SERVERS[shift:] + SERVERS[:shift]


def run_all(args: argparse.Namespace, loadgen: Path) -> tuple[list[Measurement], int]:
    """Every size, ``repeats`` times against each server; returns them and the servers' nice."""
    measurements: list[Measurement] = []
    with ExitStack() as servers:
        extra: dict[str, list[str]] = {kind: server_options(kind, args) for kind in SERVERS}
        running = {
            kind: servers.enter_context(broadcast_server(kind, server_log(kind), extra[kind]))
            for kind in SERVERS
        }
        nice = os.getpriority(os.PRIO_PROCESS, running["wstrio"].pid)
        for size in args.sizes:
            for repeat in range(args.repeats):
                for kind in rotation(repeat):
                    try:
                        m = measure(loadgen, kind, running[kind], size, repeat, args)
                    except BenchError as exc:
                        where = f"{size_name(size)}, {kind} (log: {server_log(kind)})"
                        raise BenchError(f"{where}: {exc}") from None
                    measurements.append(m)
                    report_progress(m)
    return measurements, nice


def report_progress(m: Measurement) -> None:
    print(
        f"  {size_name(m.size):>6} {m.server:<10} #{m.repeat}: "
        f"{m.us_per_delivery:6.1f} us/delivery {m.deliveries_per_second:7.0f} deliveries/s"
        f"  latency p50 {m.latency_p50_us / 1e3:5.1f} ms p99 {m.latency_p99_us / 1e3:5.1f} ms"
        f"  server CPU {m.server_cpu_share:4.0%}  loadgen CPU {m.loadgen_cpu_share:4.0%}"
        f"  others: CPU 0 {m.cpu0_other_share:4.0%}, CPU 1 {m.cpu1_other_share:4.0%}",
        file=sys.stderr,
    )


def summarize(measurements: list[Measurement], sizes: list[int]) -> list[dict[str, Any]]:
    """Per size and server: medians, and ratios against the baseline (bare)."""
    rows = []
    for size in sizes:
        runs = {
            kind: [m for m in measurements if (m.size, m.server) == (size, kind)]
            for kind in SERVERS
        }
        med = {
            kind: {
                "us_per_delivery": statistics.median(m.us_per_delivery for m in ms),
                "gc_us_per_delivery": statistics.median(m.gc_us_per_delivery for m in ms),
                "gc_share": statistics.median(m.gc_share for m in ms),
                "deliveries_per_second": statistics.median(m.deliveries_per_second for m in ms),
                "latency_p50_us": statistics.median(m.latency_p50_us for m in ms),
                "latency_p99_us": statistics.median(m.latency_p99_us for m in ms),
                "round_p50_us": statistics.median(m.round_p50_us for m in ms),
            }
            for kind, ms in runs.items()
        }
        base = med[BASELINE]
        for kind in SERVERS:
            # Repeat r of each server ran in the same rotation: pair them.
            paired = [
                m.us_per_delivery / b.us_per_delivery
                for m, b in zip(runs[kind], runs[BASELINE], strict=True)
            ]
            both = runs[kind]
            rows.append(
                {
                    "size": size,
                    "server": kind,
                    "runs": len(both),
                    **med[kind],
                    "cpu_ratio": med[kind]["us_per_delivery"] / base["us_per_delivery"],
                    "paired_cpu_ratios": paired,
                    "rate_ratio": med[kind]["deliveries_per_second"]
                    / base["deliveries_per_second"],
                    "server_cpu_share_min": min(m.server_cpu_share for m in both),
                    "loadgen_cpu_share_max": max(m.loadgen_cpu_share for m in both),
                    "cpu0_other_share_max": max(m.cpu0_other_share for m in both),
                    "cpu1_other_share_max": max(m.cpu1_other_share for m in both),
                    "broadcasts_median": statistics.median(m.broadcasts for m in both),
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]], clients: int) -> str:
    lines = [
        f"| Message | Server | deliveries/s | CPU µs/delivery | of which GC"
        f" | CPU vs bare (per-repeat range) | deliveries/s vs bare | latency p50 | latency p99"
        f" | broadcast to all {clients} |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        paired = row["paired_cpu_ratios"]
        spread = ""
        if row["server"] != BASELINE and len(paired) > 1:
            spread = f" ({min(paired):.2f}-{max(paired):.2f})"
        ratio = "1 (baseline)" if row["server"] == BASELINE else f"{row['cpu_ratio']:.2f}{spread}"
        rate = "1" if row["server"] == BASELINE else f"{row['rate_ratio']:.2f}"
        lines.append(
            f"| {size_name(row['size'])} text | {row['server']} "
            f"| {row['deliveries_per_second']:,.0f} | {row['us_per_delivery']:.1f}"
            f" | {row['gc_us_per_delivery']:.1f} ({row['gc_share']:.0%}) | {ratio}"
            f" | {rate} | {row['latency_p50_us'] / 1e3:.1f} ms"
            f" | {row['latency_p99_us'] / 1e3:.1f} ms | {row['round_p50_us'] / 1e3:.1f} ms |"
        )
    lines.append("")
    lines.append(
        "Server on CPU 0 at least "
        f"{min(r['server_cpu_share_min'] for r in rows):.0%} of every window; load generator"
        f" at most {max(r['loadgen_cpu_share_max'] for r in rows):.0%} of CPU 1. Other work,"
        f" at most: {max(r['cpu0_other_share_max'] for r in rows):.0%} of CPU 0,"
        f" {max(r['cpu1_other_share_max'] for r in rows):.0%} of CPU 1."
    )
    return "\n".join(lines)


# -- where the CPU goes -----------------------------------------------------------------


def profile_runs(args: argparse.Namespace, loadgen: Path) -> list[dict[str, Any]]:
    """One sampled run per profiled server and size, and one cProfile run of wstrio."""
    runs: list[dict[str, Any]] = []
    longer = argparse.Namespace(**vars(args))
    longer.duration = args.profile_duration  # the sampler takes a sample per 4 ms tick or so
    plans = [(kind, size, "sample") for size in args.sizes for kind in PROFILED]
    if not args.no_cprofile:
        plans.append(("wstrio", args.sizes[0], "cprofile"))
    for kind, size, mode in plans:
        extra = [f"--profile={mode}", f"--profile-interval={args.profile_interval}"]
        if mode == "cprofile":
            extra.append(f"--profile-output={RESULTS / f'broadcast-{kind}.prof'}")
        extra += server_options(kind, args)
        log = server_log(kind, profiled=True)
        with broadcast_server(kind, log, extra) as server:
            try:
                m = measure(loadgen, kind, server, size, 0, longer)
            except BenchError as exc:
                raise BenchError(
                    f"profiling {kind}, {size_name(size)} (log: {log}): {exc}"
                ) from None
        window = m.server_stats["window"]
        run = {
            "server": kind,
            "size": size,
            "mode": mode,
            "window": window,
            "us_per_delivery": 1e6 * window["cpu_seconds"] / window["deliveries"],
            "unprofiled_like_us_per_delivery": m.us_per_delivery,
            "profile": m.server_stats.get("profile"),
        }
        if mode == "sample":
            run["breakdown"] = breakdown(run["profile"], run["us_per_delivery"])
        runs.append(run)
        print(f"  profiled {kind} {size_name(size)} ({mode})", file=sys.stderr)
    return runs


def breakdown(profile: dict[str, Any], us_per_delivery: float) -> list[dict[str, Any]]:
    """Sampled CPU per category and detail: share of the server's CPU, µs per delivery."""
    total = profile["sampled_seconds"]
    rows = []
    for category, details in profile["categories"].items():
        count = sum(details.values())
        rows.append(
            {
                "category": category,
                "detail": None,
                "share": count / total,
                "us_per_delivery": us_per_delivery * count / total,
            }
        )
        for detail, n in sorted(details.items(), key=lambda kv: -kv[1]):
            rows.append(
                {
                    "category": category,
                    "detail": detail,
                    "share": n / total,
                    "us_per_delivery": us_per_delivery * n / total,
                }
            )
    return rows


def scale_profiles(runs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Give each breakdown row µs per delivery against the main run's median.

    The shares come from the profiled run; its own CPU per delivery is one
    window with the sampler on, noisier than the median of the repeats.
    """
    median = {(r["server"], r["size"]): r["us_per_delivery"] for r in rows}
    for run in runs:
        base = median.get((run["server"], run["size"]))
        for row in run.get("breakdown", []):
            row["us_per_delivery_of_median"] = None if base is None else base * row["share"]


def profile_markdown(runs: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for size in sorted({r["size"] for r in runs}):
        sampled = {r["server"]: r for r in runs if r["size"] == size and r["mode"] == "sample"}
        kinds = [k for k in PROFILED if k in sampled]
        head = " | ".join(f"{k}: share | {k}: µs" for k in kinds)
        lines.append(f"**{size_name(size)} text**, samples: " + ", ".join(
            f"{k} {sampled[k]['profile']['samples']}"
            f" (profiled run: {sampled[k]['us_per_delivery']:.1f} µs/delivery)"
            for k in kinds
        ) + "; µs = share x the median CPU µs/delivery of the main table")  # fmt: skip
        lines.append("")
        lines.append(f"| Where | {head} |")
        lines.append("|---|" + "---:|" * (2 * len(kinds)))
        keys: list[tuple[str, str | None]] = []
        for k in kinds:
            for row in sampled[k]["breakdown"]:
                key = (row["category"], row["detail"])
                if key not in keys:
                    keys.append(key)
        keys.sort(key=lambda key: (_CATEGORY_ORDER.get(key[0], 99), key[1] is not None))
        for category, detail in keys:
            label = f"**{category}**" if detail is None else f"  · {detail}"
            cells = []
            for k in kinds:
                match = [
                    r
                    for r in sampled[k]["breakdown"]
                    if (r["category"], r["detail"]) == (category, detail)
                ]
                if match:
                    us = match[0].get("us_per_delivery_of_median") or match[0]["us_per_delivery"]
                    cells += [f"{match[0]['share']:.0%}", f"{us:.1f}"]
                else:
                    cells += ["—", "—"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    for r in runs:
        if r["mode"] == "cprofile" and r["profile"]:
            p = r["profile"]
            lines.append(
                f"cProfile, {r['server']} {size_name(r['size'])}: send_message and below "
                f"{p['send_message_cumulative_seconds'] / p['total_seconds']:.0%} of profiled time "
                f"({1e6 * p['total_seconds'] / r['window']['deliveries']:.1f} profiled"
                " µs/delivery)."
            )
    return "\n".join(lines)


_CATEGORY_ORDER = {
    "cyclic GC": -1,
    "engine send path": 0,
    "wstrio": 1,
    "bench server": 2,
    "engine, other": 3,
    "trio scheduler and I/O": 4,
    "other": 5,
}


# -- what encoding one frame costs ------------------------------------------------------


def encode_costs(sizes: list[int]) -> list[dict[str, Any]]:
    """µs for wsproto to turn one text message into a server frame (what each
    recipient's send_message does before writing), per size; timeit, best of 7."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="bench", target="/ws/room")))
    assert any(isinstance(e, Request) for e in server.events())
    client.receive_data(server.send(AcceptConnection()))
    rows = []
    for size in sizes:
        message = "x" * size
        frame = server.send(TextMessage(data=message))
        assert len(frame) > size

        def encode(message: str = message) -> bytes:
            return server.send(TextMessage(data=message))

        def utf8(message: str = message) -> bytes:
            return message.encode("utf-8")

        timings = {}
        for name, fn in (("wsproto_send", encode), ("utf8_only", utf8)):
            timer = timeit.Timer(fn)
            number, _ = timer.autorange()
            best = min(timer.repeat(repeat=7, number=number)) / number
            timings[name] = best * 1e6
        rows.append(
            {
                "size": size,
                "frame_bytes": len(frame),
                "wsproto_send_us": timings["wsproto_send"],
                "utf8_encode_us": timings["utf8_only"],
            }
        )
    return rows


# -- the run ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info = echo.machine()
    info["packages"]["websockets"] = metadata.version("websockets")
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500, help="receiving clients (500)")
    parser.add_argument(
        "--sizes", default="64,1024", help="message sizes in bytes, comma-separated (64,1024)"
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per size and server")
    parser.add_argument(
        "--outbox-size", type=int, default=64, help="wstrio's Config.outbox_size (64)"
    )
    parser.add_argument(
        "--profile-interval", type=float, default=0.001, help="CPU seconds between stack samples"
    )
    parser.add_argument(
        "--profile-duration", type=float, default=8.0, help="seconds measured per profiled run"
    )
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="servers run with the cyclic garbage collector disabled (diagnostic)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the profiling pass")
    parser.add_argument("--no-cprofile", action="store_true", help="skip the cProfile run")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 s windows, 0.5 s warm-up, 1 repeat"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "broadcast.json", help="JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeats = 1.0, 0.5, 1
        args.profile_duration = 2.0
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes: comma-separated integers")
    if min(args.sizes) < 32:
        parser.error("--sizes: at least 32 bytes (the message carries a sequence and a time)")
    if args.duration <= 0 or args.warmup < 0 or args.repeats < 1 or args.clients < 1:
        parser.error("need --duration > 0, --warmup >= 0, --repeats >= 1 and --clients >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not {SERVER_CPU, LOADGEN_CPU} <= os.sched_getaffinity(0):
        print(f"broadcast.py: needs CPUs {SERVER_CPU} and {LOADGEN_CPU}", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOADGEN_CPU})  # keep this process off the servers' CPU
    signal.signal(signal.SIGTERM, echo.interrupt)
    signal.signal(signal.SIGINT, echo.interrupt)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    clock = time.monotonic()
    source = echo.wstrio_source()
    try:
        fd_limit = raise_fd_limit(args.clients + 64)
        loadgen = build_bloadgen()
        measurements, nice = run_all(args, loadgen)
        profiles = [] if args.no_profile else profile_runs(args, loadgen)
    except BenchError as exc:
        print(f"broadcast.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"broadcast.py: interrupted ({exc}); servers stopped", file=sys.stderr)
        return 130
    encoding = encode_costs(args.sizes)
    rows = summarize(measurements, args.sizes)
    table = markdown(rows, args.clients)
    print(table)
    wstrio_runs = [m for m in measurements if m.server == "wstrio"]
    hub = wstrio_runs[-1].server_stats["hub"]
    even = all(
        m.server_stats["member_messages_out_min"] == m.server_stats["member_messages_out_max"]
        for m in wstrio_runs
    )
    print(
        f"\nwstrio hub after {len(wstrio_runs)} runs (outbox_size {args.outbox_size}): "
        f"{hub['broadcasts']:,} broadcasts, {hub['deliveries']:,} deliveries, "
        f"drops {hub['drops']}, slow_closes {hub['slow_closes']}; every member had sent "
        f"as many messages as the others at the end of each run: {'yes' if even else 'NO'}"
    )
    scale_profiles(profiles, rows)
    profile_table = profile_markdown(profiles) if profiles else ""
    if profile_table:
        print("\n" + profile_table)
    print("\nwsproto, one text frame (server side, best of 7):")
    for e in encoding:
        print(
            f"  {size_name(e['size'])}: {e['wsproto_send_us']:.2f} µs per "
            f"WSConnection.send(TextMessage) ({e['utf8_encode_us']:.2f} µs of it str.encode)"
        )
    elapsed = time.monotonic() - clock
    print(f"\nwhole run: {elapsed / 60:.1f} min", file=sys.stderr)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "elapsed_seconds": elapsed,
        "settings": {
            "clients": args.clients,
            "sizes": args.sizes,
            "duration": args.duration,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "pacing": "lockstep: broadcast i+1 is sent once every receiver got broadcast i",
            "wstrio_outbox_size": args.outbox_size,
            "server_gc": not args.no_gc,
            "server_cpu": SERVER_CPU,
            "loadgen_cpu": LOADGEN_CPU,
            "nice": nice,
            "fd_limit": fd_limit,
            "profile_interval": args.profile_interval,
        },
        "machine": machine(),
        "wstrio_source": source,
        "summary": rows,
        "wstrio_hub_final": hub,
        "profiles": profiles,
        "encoding": encoding,
        "measurements": [m.as_json() for m in measurements],
        "table": table,
        "profile_table": profile_table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
