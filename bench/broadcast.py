"""Server CPU per broadcast delivery: wstrio's Hub vs bare trio-websocket vs websockets.

``python -m bench.broadcast [--before-tree PATH] [--quick]`` from the repository
root: servers from
bench/servers/broadcast.py, load from bench/go/cmd/bloadgen, then a profiling pass
(bench/profile.py) and wsproto's cost per frame; bench/README.md has the method.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness, profile
from bench.broadcast_report import encode_costs, encoding_text, hub_line, markdown, summarize
from bench.harness import BenchError, size_name

#: Every server kind, in the order of the tables (``before`` only with --before-tree).
SERVERS = ("bare", "wstrio", "wstrio-deflate", "before", "websockets")
#: The kinds that are a wstrio Hub (bench/servers/broadcast.py).
WSTRIO_KINDS = ("wstrio", "wstrio-deflate", "before")
#: Servers whose CPU the profiling pass breaks down.
PROFILED = ("wstrio", "bare", "websockets")
MODULE = "bench.servers.broadcast"


@dataclass(frozen=True)
class Measurement(harness.Window):
    size: int
    receivers: int
    broadcasts: int
    deliveries: int
    latency_p50_us: float
    latency_p90_us: float
    latency_p99_us: float
    latency_max_us: float
    round_p50_us: float
    round_p99_us: float
    setup_seconds: float
    wire_bytes: int  # read by the receivers from their sockets in the window
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
    def wire_bytes_per_delivery(self) -> float:
        return self.wire_bytes / self.deliveries

    def as_json(self, *computed: str) -> dict[str, Any]:
        names = ("us_per_delivery", "gc_share", "gc_us_per_delivery", "deliveries_per_second")
        names += ("wire_bytes_per_delivery",)
        return super().as_json(*names, *computed)


def measure(
    loadgen: Path, server: harness.Server, size: int, repeat: int, args: argparse.Namespace
) -> Measurement:
    """One measured window of one size against one server."""
    url = f"ws://{harness.HOST}:{server.port}"
    command = [
        str(loadgen),
        f"-recv={url}/ws/room",
        f"-send={url}/ws/send",
        f"-receivers={args.clients}",
        f"-size={size}",
        f"-warmup={args.warmup}s",
        f"-duration={args.duration}s",
        "-sync",
    ]
    if server.kind == "wstrio-deflate":
        command.append("-compress")
    timeout = args.warmup + args.duration + 120
    report, status, usage = harness.run_loadgen(command, server.pid, timeout, sync=True)
    stats_line = harness.read_line(server.proc, time.monotonic() + 30)
    if not stats_line.startswith("stats "):
        raise BenchError(f"{server.kind} server said {stats_line!r}, expected 'stats {{...}}'")
    stats = json.loads(stats_line[len("stats ") :])
    if status != 0 or report["errors"]:
        raise BenchError(f"load generator failed: {report}; server: {stats}")
    if report["deliveries"] != report["broadcasts"] * args.clients or not report["broadcasts"]:
        raise BenchError(f"{report['deliveries']} deliveries for {report['broadcasts']} broadcasts")
    check_server_stats(server.kind, stats)
    latencies = ("latency_p50_us", "latency_p90_us", "latency_p99_us", "latency_max_us")
    rounds = ("round_p50_us", "round_p99_us", "setup_seconds")
    copied = ("receivers", "broadcasts", "deliveries", "wire_bytes", *latencies, *rounds)
    return Measurement(
        server=server.kind,
        repeat=repeat,
        size=size,
        server_stats=stats,
        **{name: report[name] for name in copied},
        **usage,
    )


def check_server_stats(kind: str, stats: dict[str, Any]) -> None:
    """Nobody dropped, closed or failed: the server's own counters agree."""
    if kind in WSTRIO_KINDS:
        hub = stats["hub"]
        if hub["drops"] or hub["slow_closes"] or stats["member_drops"]:
            raise BenchError(f"wstrio dropped or closed slow members: {stats}")
    elif stats["send_errors"]:
        raise BenchError(f"{kind}: sends failed: {stats}")


def report_progress(m: Measurement) -> None:
    print(
        f"  {size_name(m.size):>6} {m.server:<10} #{m.repeat}: "
        f"{m.us_per_delivery:6.1f} us/delivery {m.deliveries_per_second:7.0f} deliveries/s"
        f"  latency p50 {m.latency_p50_us / 1e3:5.1f} ms p99 {m.latency_p99_us / 1e3:5.1f} ms"
        f"  {m.cpu_use()}",
        file=sys.stderr,
    )


def server_options(kind: str, args: argparse.Namespace) -> list[str]:
    options = ["--no-gc"] if args.no_gc else []
    if kind in WSTRIO_KINDS:
        options.append(f"--outbox-size={args.outbox_size}")
    if kind == "before":
        options.append(f"--before-tree={args.before_tree}")
    return options


def server_log(kind: str, profiled: bool = False) -> Path:
    return harness.RESULTS / f"broadcast-server-{kind}{'-profile' if profiled else ''}.log"


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


def profile_runs(args: argparse.Namespace, loadgen: Path) -> list[dict[str, Any]]:
    """One sampled run per profiled server and size, and one cProfile run of wstrio."""
    runs: list[dict[str, Any]] = []
    longer = argparse.Namespace(**vars(args))
    longer.duration = args.profile_duration  # the sampler takes a sample per 4 ms tick or so
    kinds = [kind for kind in PROFILED if kind in args.servers]
    plans = [(kind, size, "sample") for size in args.sizes for kind in kinds]
    if not args.no_cprofile:
        plans.append(("wstrio", args.sizes[0], "cprofile"))
    for kind, size, mode in plans:
        options = [f"--profile={mode}", f"--profile-interval={args.profile_interval}"]
        if mode == "cprofile":
            options.append(f"--profile-output={harness.RESULTS / f'broadcast-{kind}.prof'}")
        log = server_log(kind, profiled=True)
        with harness.server(MODULE, kind, log, options + server_options(kind, args)) as server:
            try:
                m = measure(loadgen, server, size, 0, longer)
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
            run["breakdown"] = profile.breakdown(run["profile"], run["us_per_delivery"])
        runs.append(run)
        print(f"  profiled {kind} {size_name(size)} ({mode})", file=sys.stderr)
    return runs


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The measured runs, the profiling pass and the encoding costs; the JSON of the run."""
    date, clock, source = harness.now(), time.monotonic(), harness.wstrio_source()
    fd_limit = raise_fd_limit(args.clients + 64)
    loadgen = harness.build_go("bloadgen")
    measurements, nice = harness.run_repeats(
        MODULE,
        {kind: (server_log(kind), server_options(kind, args)) for kind in args.servers},
        args.sizes,
        args.repeats,
        lambda server, size, repeat: measure(loadgen, server, size, repeat, args),
        size_name,
        report_progress,
    )
    profiles = [] if args.no_profile else profile_runs(args, loadgen)
    encoding = encode_costs(args.sizes)
    rows = summarize(measurements, args.sizes, args.servers)
    table = markdown(rows, args.clients)
    print(table)
    wstrio_runs = [m for m in measurements if m.server == "wstrio"]
    print("\n" + hub_line(wstrio_runs, args.outbox_size))
    scale_profiles(profiles, rows)
    profile_table = profile.markdown(profiles, PROFILED) if profiles else ""
    if profile_table:
        print("\n" + profile_table)
    print("\n" + encoding_text(encoding))
    elapsed = time.monotonic() - clock
    print(f"\nwhole run: {elapsed / 60:.1f} min", file=sys.stderr)
    return {
        "date": date,
        "elapsed_seconds": elapsed,
        "settings": {
            "clients": args.clients,
            "sizes": args.sizes,
            "duration": args.duration,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "pacing": "lockstep: broadcast i+1 is sent once every receiver got broadcast i",
            "wstrio_outbox_size": args.outbox_size,
            "servers": args.servers,
            "before_tree": None if args.before_tree is None else str(args.before_tree),
            "server_gc": not args.no_gc,
            "server_cpu": harness.SERVER_CPU,
            "loadgen_cpu": harness.LOADGEN_CPU,
            "nice": nice,
            "fd_limit": fd_limit,
            "profile_interval": args.profile_interval,
        },
        "machine": harness.machine("websockets"),
        "wstrio_source": source,
        "before_source": None
        if args.before_tree is None
        else harness.wstrio_source(args.before_tree / "wstrio"),
        "summary": rows,
        "wstrio_hub_final": wstrio_runs[-1].server_stats["hub"],
        "profiles": profiles,
        "encoding": encoding,
        "measurements": [m.as_json() for m in measurements],
        "table": table,
        "profile_table": profile_table,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--clients", type=int, default=500, help="receiving clients (500)")
    add("--sizes", default="64,1024", help="message sizes in bytes, comma-separated (64,1024)")
    add("--duration", type=float, default=3.0, help="seconds measured per run")
    add("--warmup", type=float, default=1.0, help="seconds of warm-up per run")
    add("--repeats", type=int, default=5, help="runs per size and server")
    add("--outbox-size", type=int, default=64, help="wstrio's Config.outbox_size (64)")
    add("--profile-interval", type=float, default=0.001, help="CPU seconds between stack samples")
    add("--profile-duration", type=float, default=8.0, help="seconds measured per profiled run")
    add("--servers", help=f"comma-separated, from {','.join(SERVERS)} (default: all)")
    add("--before-tree", type=Path, help="run server 'before': the wstrio/ in PATH (a worktree)")
    add("--no-gc", action="store_true", help="servers run without the cyclic garbage collector")
    add("--no-profile", action="store_true", help="skip the profiling pass")
    add("--no-cprofile", action="store_true", help="skip the cProfile run")
    add("--quick", action="store_true", help="smoke run: 1 s windows, 0.5 s warm-up, 1 repeat")
    add("--output", type=Path, default=harness.RESULTS / "broadcast.json", help="JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeats = 1.0, 0.5, 1
        args.profile_duration = 2.0
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes: comma-separated integers")
    wanted = SERVERS if args.servers is None else tuple(args.servers.split(","))
    if not set(wanted) <= set(SERVERS) or "bare" not in wanted:
        parser.error(f"--servers: names from {', '.join(SERVERS)}, bare (the baseline) included")
    if args.before_tree is None:
        if args.servers is not None and "before" in wanted:
            parser.error("server before needs --before-tree PATH")
        wanted = tuple(kind for kind in wanted if kind != "before")
    elif not (args.before_tree / "wstrio").is_dir():
        parser.error(f"--before-tree: no wstrio/ in {args.before_tree}")
    args.servers = wanted
    if min(args.sizes) < 32:
        parser.error("--sizes: at least 32 bytes (the message carries a sequence and a time)")
    if args.duration <= 0 or args.warmup < 0 or args.repeats < 1 or args.clients < 1:
        parser.error("need --duration > 0, --warmup >= 0, --repeats >= 1 and --clients >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.main("bench.broadcast", args.output, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
