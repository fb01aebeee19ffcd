"""Server CPU cost per echo message: wstrio versus bare trio-websocket.

Run ``python3 bench/echo.py`` (``--quick`` for a smoke run). It builds the Go
load generator (bench/loadgen) if needed, starts one wstrio and one bare
trio-websocket echo server pinned to CPU 0, drives each workload from CPU 1,
alternating between the two servers, and reads the server's user+sys CPU time
from /proc/PID/stat at the start and end of each measured window. It prints a
Markdown table of medians and writes every measurement to
bench/results/echo.json. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import inspect
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import trio_websocket

import wstrio

BENCH = Path(__file__).resolve().parent
LOADGEN_SRC = BENCH / "loadgen" / "main.go"
LOADGEN_BIN = BENCH / ".build" / "loadgen"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
SERVER_CPU = 0
LOADGEN_CPU = 1
SERVERS = ("wstrio", "bare")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Debian's golang-github-gorilla-websocket-dev installs the source here.
GOPATH = "/usr/share/gocode"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: Nice value of servers and load generator, so other processes on a shared machine
#: (test runs, say) get the CPUs only when the benchmark does not want them.
PRIORITY = -10
#: wstrio / bare at most this much CPU per message (message size: target).
TARGETS = {16: 1.25, 65536: 1.0}


@dataclass(frozen=True)
class Workload:
    connections: int
    size: int

    @property
    def name(self) -> str:
        size = f"{self.size // 1024} KiB" if self.size >= 1024 else f"{self.size} B"
        return f"{size}, {self.connections} conn" + ("s" if self.connections > 1 else "")


WORKLOADS = tuple(Workload(c, s) for c in (1, 50) for s in (16, 1024, 65536))


@dataclass(frozen=True)
class Measurement:
    server: str
    connections: int
    size: int
    repeat: int
    messages: int
    seconds: float
    server_cpu_seconds: float
    loadgen_cpu_seconds: float
    #: CPU 0 time (in the window) not spent by the server: other processes, steal.
    cpu0_other_seconds: float
    #: CPU 1 time (in the window) not spent by the load generator.
    cpu1_other_seconds: float

    @property
    def us_per_message(self) -> float:
        return 1e6 * self.server_cpu_seconds / self.messages

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def server_cpu_share(self) -> float:
        """Fraction of the window the server spent on a CPU (1.0: CPU 0 saturated)."""
        return self.server_cpu_seconds / self.seconds

    @property
    def loadgen_cpu_share(self) -> float:
        """Fraction of the window the load generator spent on a CPU."""
        return self.loadgen_cpu_seconds / self.seconds

    @property
    def cpu0_other_share(self) -> float:
        """Fraction of the window CPU 0 was busy with something else (noise)."""
        return max(0.0, self.cpu0_other_seconds / self.seconds)

    @property
    def cpu1_other_share(self) -> float:
        """Fraction of the window CPU 1 was busy with something else than the load."""
        return max(0.0, self.cpu1_other_seconds / self.seconds)

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "us_per_message": self.us_per_message,
            "messages_per_second": self.messages_per_second,
            "server_cpu_share": self.server_cpu_share,
            "loadgen_cpu_share": self.loadgen_cpu_share,
            "cpu0_other_share": self.cpu0_other_share,
            "cpu1_other_share": self.cpu1_other_share,
        }


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def build_loadgen() -> Path:
    """Compile bench/loadgen into bench/.build (GOPATH mode, Debian's gorilla)."""
    if LOADGEN_BIN.exists() and LOADGEN_BIN.stat().st_mtime >= LOADGEN_SRC.stat().st_mtime:
        return LOADGEN_BIN
    go = shutil.which("go")
    if go is None:
        raise BenchError(
            "go not found: apt-get install -y golang golang-github-gorilla-websocket-dev"
        )
    env = dict(
        os.environ,
        GO111MODULE="off",
        GOPATH=GOPATH,
        GOFLAGS="",
        GOCACHE=str(LOADGEN_BIN.parent / "go-cache"),
    )
    print("building bench/loadgen ...", file=sys.stderr)
    command = [go, "build", "-o", str(LOADGEN_BIN), "./loadgen"]
    done = subprocess.run(command, cwd=BENCH, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"building the load generator failed:\n{done.stderr}")
    return LOADGEN_BIN


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def cpu_busy_seconds() -> dict[int, float]:
    """Per CPU: time not idle since boot (user..softirq and steal), from /proc/stat."""
    busy = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
            busy[int(name[3:])] = (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
    return busy


def read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    """The next line ``proc`` writes on stdout; raises BenchError on EOF or timeout."""
    assert proc.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            raise BenchError(f"timed out waiting for output of {proc.args!r}")
        byte = proc.stdout.read(1)  # unbuffered pipe: never reads past the line
        if not byte:
            raise BenchError(f"{proc.args!r} exited early (status {proc.wait()})")
        line += byte
    return line.decode().strip()


def child_setup() -> None:
    """In a child before exec: die with this harness, and run ahead of background work."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:  # however the harness dies
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    with suppress(PermissionError):  # only root may raise priority; then run at 0
        os.setpriority(os.PRIO_PROCESS, 0, PRIORITY)


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT: unwind (so every ``finally`` kills its process) and exit."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` (if still running) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@contextmanager
def echo_server(
    kind: str, log: Path, receive_buffer_size: int | None = None
) -> Iterator[tuple[int, int]]:
    """Run one echo server pinned to SERVER_CPU; yields (pid, port); always kills it."""
    command = ["taskset", "-c", str(SERVER_CPU), sys.executable, str(BENCH / "echo_server.py")]
    command += [kind, "--host", HOST, "--port", "0"]
    if receive_buffer_size is not None:
        command.append(f"--receive-buffer-size={receive_buffer_size}")
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            bufsize=0,
            preexec_fn=child_setup,
        )
    try:
        reply = read_line(proc, time.monotonic() + 30)
        if not reply.startswith("port "):
            raise BenchError(f"{kind} server said {reply!r}, expected 'port N'")
        yield proc.pid, int(reply.split()[1])
        if proc.poll() is not None:
            raise BenchError(f"{kind} server died (status {proc.returncode}); see {log}")
    finally:
        stop(proc)


def measure(
    loadgen: Path,
    server: str,
    pid: int,
    port: int,
    workload: Workload,
    repeat: int,
    args: argparse.Namespace,
) -> Measurement:
    """One measured window of one workload against one server."""
    command = [
        "taskset", "-c", str(LOADGEN_CPU), str(loadgen),
        f"-url=ws://{HOST}:{port}/ws/echo",
        f"-conns={workload.connections}",
        f"-size={workload.size}",
        f"-warmup={args.warmup}s",
        f"-duration={args.duration}s",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, bufsize=0, preexec_fn=child_setup)
    try:
        deadline = time.monotonic() + args.warmup + args.duration + 60
        expect(read_line(proc, deadline), "start")
        cpu_before, busy_before = cpu_seconds(pid), cpu_busy_seconds()
        expect(read_line(proc, deadline), "stop")
        cpu_after, busy_after = cpu_seconds(pid), cpu_busy_seconds()
        report: dict[str, Any] = json.loads(read_line(proc, deadline))
        if proc.wait(timeout=max(0.0, deadline - time.monotonic())) != 0:
            raise BenchError(f"load generator failed: {report}")
    finally:
        stop(proc)
    if report["messages"] == 0:
        raise BenchError(f"no message echoed by {server} in {workload.name}")
    server_cpu = cpu_after - cpu_before
    loadgen_cpu = report["loadgen_cpu_seconds"]
    return Measurement(
        server=server,
        connections=workload.connections,
        size=workload.size,
        repeat=repeat,
        messages=report["messages"],
        seconds=report["seconds"],
        server_cpu_seconds=server_cpu,
        loadgen_cpu_seconds=loadgen_cpu,
        cpu0_other_seconds=busy_after[SERVER_CPU] - busy_before[SERVER_CPU] - server_cpu,
        cpu1_other_seconds=busy_after[LOADGEN_CPU] - busy_before[LOADGEN_CPU] - loadgen_cpu,
    )


def expect(line: str, wanted: str) -> None:
    if line != wanted:
        raise BenchError(f"load generator said {line!r}, expected {wanted!r}")


def server_log(kind: str) -> Path:
    return RESULTS / f"server-{kind}.log"


def run_all(args: argparse.Namespace, loadgen: Path) -> tuple[list[Measurement], int]:
    """Every workload, ``repeats`` times against each server, alternating the order.

    Returns the measurements and the nice value the servers ran at.
    """
    measurements: list[Measurement] = []
    with ExitStack() as servers:
        buffers = {"wstrio": None, "bare": args.bare_receive_buffer_size}
        running = {
            kind: servers.enter_context(echo_server(kind, server_log(kind), buffers[kind]))
            for kind in SERVERS
        }
        nice = os.getpriority(os.PRIO_PROCESS, running["wstrio"][0])
        for workload in WORKLOADS:
            for repeat in range(args.repeats):
                for kind in SERVERS if repeat % 2 == 0 else SERVERS[::-1]:
                    pid, port = running[kind]
                    try:
                        m = measure(loadgen, kind, pid, port, workload, repeat, args)
                    except BenchError as exc:
                        where = f"{workload.name}, {kind} (log: {server_log(kind)})"
                        raise BenchError(f"{where}: {exc}") from None
                    measurements.append(m)
                    report_progress(workload, m)
    return measurements, nice


def report_progress(workload: Workload, m: Measurement) -> None:
    print(
        f"  {workload.name:<16} {m.server:<6} #{m.repeat}: "
        f"{m.us_per_message:8.1f} us/msg {m.messages_per_second:9.0f} msg/s"
        f"  server CPU {m.server_cpu_share:4.0%}  loadgen CPU {m.loadgen_cpu_share:4.0%}"
        f"  others: CPU 0 {m.cpu0_other_share:4.0%}, CPU 1 {m.cpu1_other_share:4.0%}",
        file=sys.stderr,
    )


def summarize(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per workload: medians per server, ratio of medians, per-repeat ratios, target."""
    rows = []
    for workload in WORKLOADS:
        runs = {
            kind: [
                m
                for m in measurements
                if (m.connections, m.size, m.server) == (workload.connections, workload.size, kind)
            ]
            for kind in SERVERS
        }
        cost = {k: statistics.median(m.us_per_message for m in runs[k]) for k in SERVERS}
        rate = {k: statistics.median(m.messages_per_second for m in runs[k]) for k in SERVERS}
        paired = [
            w.us_per_message / b.us_per_message
            for w, b in zip(runs["wstrio"], runs["bare"], strict=True)
        ]
        ratio = cost["wstrio"] / cost["bare"]
        target = TARGETS.get(workload.size)
        both = runs["wstrio"] + runs["bare"]
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
                "loadgen_cpu_share_max": max(m.loadgen_cpu_share for m in both),
                "cpu0_other_share_max": max(m.cpu0_other_share for m in both),
                "cpu1_other_share_max": max(m.cpu1_other_share for m in both),
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
    lines = [
        "| Workload | wstrio µs/msg | bare µs/msg | wstrio / bare (per-repeat range)"
        " | wstrio msg/s | bare msg/s | Target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        paired = row["paired_ratios"]
        spread = f" ({min(paired):.2f}-{max(paired):.2f})" if len(paired) > 1 else ""
        target = row["target_ratio"]
        verdict = "—"
        if target is not None:
            verdict = f"≤ {target:.2f}: {'met' if row['target_met'] else 'NOT met'}"
        lines.append(
            f"| {row['workload']} | {row['wstrio_us_per_message']:.1f}"
            f" | {row['bare_us_per_message']:.1f} | {row['ratio']:.2f}{spread}"
            f" | {row['wstrio_messages_per_second']:,.0f}"
            f" | {row['bare_messages_per_second']:,.0f} | {verdict} |"
        )
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


def wstrio_source() -> dict[str, Any]:
    """Which wstrio was measured: git commit, uncommitted changes, hash of its sources."""
    package = Path(wstrio.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())

    def git(*args: str) -> str:
        command = ["git", "--no-optional-locks", "-C", str(package.parent), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "uncommitted_changes": bool(git("status", "--porcelain", "--", package.name)),
        "sha256": digest.hexdigest(),
    }


def machine() -> dict[str, Any]:
    """What the numbers depend on: CPU, kernel, interpreter and library versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "")
    go = shutil.which("go")
    if go is not None:
        go = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout
    packages = ("wstrio", "trio", "trio-websocket", "wsproto")
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "go": go.strip() if go else None,
        "packages": {name: metadata.version(name) for name in packages},
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
    parser.add_argument("--output", type=Path, default=RESULTS / "echo.json", help="JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeats = 1.0, 0.3, 1
    if args.duration <= 0 or args.warmup < 0 or args.repeats < 1:
        parser.error("need --duration > 0, --warmup >= 0 and --repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not {SERVER_CPU, LOADGEN_CPU} <= os.sched_getaffinity(0):
        print(f"echo.py: needs CPUs {SERVER_CPU} and {LOADGEN_CPU}", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOADGEN_CPU})  # keep this process off the server's CPU
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    source = wstrio_source()  # before the servers import it
    try:
        loadgen = build_loadgen()
        measurements, nice = run_all(args, loadgen)
    except BenchError as exc:
        print(f"echo.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"echo.py: interrupted ({exc}); servers stopped", file=sys.stderr)
        return 130
    rows = summarize(measurements)
    buffers = receive_buffers(args)
    table = markdown(rows, buffers)
    print(table)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "server_cpu": SERVER_CPU,
            "loadgen_cpu": LOADGEN_CPU,
            "nice": nice,
            "bare_receive_buffer_size": buffers["bare"],
            "wstrio_receive_buffer_size": buffers["wstrio"],
        },
        "machine": machine(),
        "wstrio_source": source,
        "summary": rows,
        "measurements": [m.as_json() for m in measurements],
        "table": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
