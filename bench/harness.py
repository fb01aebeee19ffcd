"""What the benchmarks share: Go build, CPU pinning and accounting, processes, output.

bench/echo.py and bench/broadcast.py are built on it; bench/README.md describes the method.
"""

from __future__ import annotations

import ctypes
import datetime
import hashlib
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import wstrio

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
GO_MODULE = BENCH / "go"
BUILD = BENCH / ".build"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
SERVER_CPU = 0
LOADGEN_CPU = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Debian's golang-github-gorilla-websocket-dev installs the source here.
GORILLA = Path("/usr/share/gocode/src/github.com/gorilla/websocket")
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: Nice value of servers and load generator, so other processes on a shared machine
#: (test runs, say) get the CPUs only when the benchmark does not want them.
PRIORITY = -10

W = TypeVar("W")
M = TypeVar("M")


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def build_go(command: str) -> Path:
    """Compile bench/go/cmd/COMMAND into bench/.build/COMMAND unless it is up to date.

    Offline if Debian's gorilla/websocket source is installed: a workspace replaces the
    module by it. Otherwise Go fetches the module as usual (go.sum pins it).
    """
    binary = BUILD / command
    newest = max(path.stat().st_mtime for path in GO_MODULE.rglob("*") if path.is_file())
    if binary.exists() and binary.stat().st_mtime >= newest:
        return binary
    go = shutil.which("go")
    if go is None:
        packages = "golang golang-github-gorilla-websocket-dev"
        raise BenchError(f"go not found: apt-get install -y {packages}")
    BUILD.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GO111MODULE="on", GOFLAGS="", GOCACHE=str(BUILD / "go-cache"))
    if (GORILLA / "go.mod").is_file():
        workspace = BUILD / "go.work"
        workspace.write_text(
            f"go 1.18\n\nuse {GO_MODULE}\n\nreplace github.com/gorilla/websocket => {GORILLA}\n"
        )
        env |= {"GOWORK": str(workspace), "GOPROXY": "off"}
    else:
        env["GOWORK"] = "off"
    print(f"building bench/go/cmd/{command} ...", file=sys.stderr)
    build = [go, "build", "-o", str(binary), f"./cmd/{command}"]
    done = subprocess.run(build, cwd=GO_MODULE, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"building the load generator failed:\n{done.stderr}")
    return binary


def run_loadgen(
    command: Sequence[str], pid: int, timeout: float, sync: bool = False
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """Run a load generator on LOADGEN_CPU; read server ``pid``'s CPU at start and stop.

    With ``sync``, answer its ``start`` with a line on its stdin (its ``-sync``).
    Returns its JSON report, its exit status and the window's time and CPU use
    (the fields of :class:`Window` but ``server`` and ``repeat``).
    """
    stdin = subprocess.PIPE if sync else None
    proc = spawn(["taskset", "-c", str(LOADGEN_CPU), *command], stdin=stdin)
    try:
        deadline = time.monotonic() + timeout
        expect(read_line(proc, deadline), "start")
        cpu_before, busy_before = cpu_seconds(pid), cpu_busy_seconds()
        if proc.stdin is not None:
            proc.stdin.write(b"go\n")  # the load generator waits for this, between broadcasts
            proc.stdin.flush()
        expect(read_line(proc, deadline), "stop")
        cpu_after, busy_after = cpu_seconds(pid), cpu_busy_seconds()
        report: dict[str, Any] = json.loads(read_line(proc, deadline))
        status = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        stop(proc)
    server_cpu, loadgen_cpu = cpu_after - cpu_before, report["loadgen_cpu_seconds"]
    usage = {
        "seconds": report["seconds"],
        "server_cpu_seconds": server_cpu,
        "loadgen_cpu_seconds": loadgen_cpu,
        "cpu0_other_seconds": busy_after[SERVER_CPU] - busy_before[SERVER_CPU] - server_cpu,
        "cpu1_other_seconds": busy_after[LOADGEN_CPU] - busy_before[LOADGEN_CPU] - loadgen_cpu,
    }
    return report, status, usage


def expect(line: str, wanted: str) -> None:
    if line != wanted:
        raise BenchError(f"load generator said {line!r}, expected {wanted!r}")


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


@dataclass(frozen=True)
class Window:
    """One measured window against one server: its length and who used the CPUs."""

    server: str
    repeat: int
    seconds: float
    server_cpu_seconds: float
    loadgen_cpu_seconds: float
    #: CPU 0 time (in the window) not spent by the server: other processes, steal.
    cpu0_other_seconds: float
    #: CPU 1 time (in the window) not spent by the load generator.
    cpu1_other_seconds: float

    @property
    def server_cpu_share(self) -> float:  # 1.0: the server kept CPU 0 busy all along
        return self.server_cpu_seconds / self.seconds

    @property
    def loadgen_cpu_share(self) -> float:
        return self.loadgen_cpu_seconds / self.seconds

    @property
    def cpu0_other_share(self) -> float:  # noise: CPU 0 busy with something else
        return max(0.0, self.cpu0_other_seconds / self.seconds)

    @property
    def cpu1_other_share(self) -> float:
        return max(0.0, self.cpu1_other_seconds / self.seconds)

    def cpu_use(self) -> str:
        """Who used the CPUs, for a progress line."""
        return (
            f"server CPU {self.server_cpu_share:4.0%}  loadgen CPU {self.loadgen_cpu_share:4.0%}"
            f"  others: CPU 0 {self.cpu0_other_share:4.0%}, CPU 1 {self.cpu1_other_share:4.0%}"
        )

    def as_json(self, *computed: str) -> dict[str, Any]:
        """The fields, the shares, and the ``computed`` properties of a subclass."""
        shares = ("server_cpu_share", "loadgen_cpu_share", "cpu0_other_share", "cpu1_other_share")
        return asdict(self) | {name: getattr(self, name) for name in (*computed, *shares)}


def extremes(windows: Sequence[Window]) -> dict[str, float]:
    """The noise indicators of a summary row: the largest shares of other work."""
    return {
        "loadgen_cpu_share_max": max(w.loadgen_cpu_share for w in windows),
        "cpu0_other_share_max": max(w.cpu0_other_share for w in windows),
        "cpu1_other_share_max": max(w.cpu1_other_share for w in windows),
    }


def paired_ratios(
    runs: Sequence[M], baseline: Sequence[M], key: Callable[[M], float]
) -> list[float]:
    """Per repeat, ``key`` of a run over that of the baseline's run of the same repeat."""
    return [key(m) / key(b) for m, b in zip(runs, baseline, strict=True)]


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


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start ``command`` with a pipe on its stdout, which :func:`read_line` reads."""
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, bufsize=0, preexec_fn=child_setup, **options
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` (if still running) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@dataclass(frozen=True)
class Server:
    """A server under test that is listening on ``port``; its stderr goes to ``log``."""

    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextmanager
def server(module: str, kind: str, log: Path, options: Sequence[str] = ()) -> Iterator[Server]:
    """Run ``python -m MODULE KIND`` on SERVER_CPU; yield it once it listens, kill it after."""
    command = ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", module, kind]
    command += ["--host", HOST, "--port", "0", *options]
    with log.open("wb") as stderr:
        proc = spawn(command, cwd=ROOT, stderr=stderr)
    try:
        try:
            reply = read_line(proc, time.monotonic() + 30)
        except BenchError as exc:
            raise BenchError(f"{kind} server did not start: {exc}; see {log}") from None
        if not reply.startswith("port "):
            raise BenchError(f"{kind} server said {reply!r}, expected 'port N'")
        yield Server(kind, proc, int(reply.split()[1]), log)
        if proc.poll() is not None:
            raise BenchError(f"{kind} server died (status {proc.returncode}); see {log}")
    finally:
        stop(proc)


def run_repeats(
    module: str,
    servers: dict[str, tuple[Path, list[str]]],
    workloads: Iterable[W],
    repeats: int,
    measure: Callable[[Server, W, int], M],
    name: Callable[[W], str],
    progress: Callable[[M], None],
) -> tuple[list[M], int]:
    """Start the servers (kind: log, options) and run every workload ``repeats`` times
    against each, in rotation; returns the measurements and the servers' nice value."""
    measurements = []
    with ExitStack() as stack:
        running = {
            kind: stack.enter_context(server(module, kind, log, options))
            for kind, (log, options) in servers.items()
        }
        nice = os.getpriority(os.PRIO_PROCESS, next(iter(running.values())).pid)
        kinds = list(running)
        for workload in workloads:
            for repeat in range(repeats):
                shift = repeat % len(kinds)  # so each server takes each position equally often
                for kind in kinds[shift:] + kinds[:shift]:
                    try:
                        m = measure(running[kind], workload, repeat)
                    except BenchError as exc:
                        where = f"{name(workload)}, {kind} (log: {running[kind].log})"
                        raise BenchError(f"{where}: {exc}") from None
                    measurements.append(m)
                    progress(m)
    return measurements, nice


def main(name: str, output: Path, body: Callable[[], dict[str, Any]]) -> int:
    """Pin this process to LOADGEN_CPU, run ``body`` and write the JSON it returns to ``output``."""
    if not {SERVER_CPU, LOADGEN_CPU} <= os.sched_getaffinity(0):
        print(f"{name}: needs CPUs {SERVER_CPU} and {LOADGEN_CPU}", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOADGEN_CPU})  # keep this process off the servers' CPU
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        result = body()
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"{name}: interrupted ({exc}); servers stopped", file=sys.stderr)
        return 130
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {output}", file=sys.stderr)
    return 0


def size_name(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def table(header: Sequence[str], align: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table's lines; ``align`` holds ``---`` or ``---:`` per column."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def wstrio_source(package: Path | None = None) -> dict[str, Any]:
    """Which wstrio was measured (this one, or the package directory ``package``):
    git commit, uncommitted changes, hash of its sources."""
    package = Path(wstrio.__file__).parent if package is None else package.resolve()
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())

    def git(*args: str) -> str:
        command = ["git", "--no-optional-locks", "-C", str(package.parent), *args]
        return subprocess.run(command, capture_output=True, text=True).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "uncommitted_changes": bool(git("status", "--porcelain", "--", package.name)),
        "sha256": digest.hexdigest(),
    }


def machine_line(described: dict[str, Any]) -> str:
    """One line of :func:`machine`'s description, for a table's caption."""
    versions = ", ".join(f"{name} {version}" for name, version in described["packages"].items())
    return (
        f"Machine: {described['cpus']} CPUs ({described['cpu']}), Linux {described['kernel']},"
        f" Python {described['python']}, {described['go'] or 'no Go'}; {versions}."
    )


def machine(*packages: str) -> dict[str, Any]:
    """What the numbers depend on: CPU, kernel, interpreter and library versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "")
    go = shutil.which("go")
    if go is not None:
        go = subprocess.run([go, "version"], capture_output=True, text=True).stdout.strip()
    names = ("wstrio", "trio", "trio-websocket", "wsproto", *packages)
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "go": go or None,
        "packages": {name: metadata.version(name) for name in names},
    }
