"""Where a server's CPU goes: a stack sampler that buckets samples by package, and its tables.

The server side (bench/servers/broadcast.py) keeps a :class:`Recorder` per sender
session: CPU time, garbage collections and, with ``--profile sample``, a
:class:`Sampler` (``ITIMER_PROF``, so idle time takes no samples) or, with
``--profile cprofile``, cProfile. Each sample goes to the bucket of the package
of its innermost frame, found from the module path (``wstrio``, ``trio_websocket``,
``websockets``, ``wsproto``, ``h11``, ``trio``, ``stdlib``, ``bench``, ``other``;
``cyclic GC`` if it fell in a collection) with the top two levels of the module
path as the detail (``wstrio._conn``, ``trio._core``). The harness side
(bench/broadcast.py) turns the summaries into Markdown with :func:`markdown`.
"""

from __future__ import annotations

import cProfile
import functools
import gc
import json
import os
import pstats
import signal
import sys
import sysconfig
import time
from collections import defaultdict
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from bench.harness import size_name, table

#: Packages with a bucket of their own; other third-party code goes to "other".
PACKAGES = ("wstrio", "trio_websocket", "websockets", "wsproto", "h11", "trio")
#: The buckets, in the order the tables list them.
ORDER = ("cyclic GC", *PACKAGES, "stdlib", "bench", "other")
#: The engines' per-recipient send: trio-websocket's WebSocketConnection.send_message,
#: and the per-connection task inside websockets' broadcast() (also "send_message").
SEND_FUNCTION, ENGINES = "send_message", ("trio_websocket", "websockets")
GC_DETAIL = "collections (and the samples' own share of them)"
_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep

Owner = tuple[str, str]  # (bucket, detail)


def module_owner(module: str | None) -> Owner | None:
    """The bucket of a module name, and the top two levels of its path as detail."""
    if module is None:
        return None
    top = module.partition(".")[0]
    if top in PACKAGES or top == "bench":
        return top, ".".join(module.split(".")[:2])
    return ("stdlib" if top in sys.stdlib_module_names else "other"), top


def module_names() -> dict[str, str]:
    """Source file -> name of every module loaded (``__main__`` under its real name)."""
    names: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file, spec = getattr(module, "__file__", None), getattr(module, "__spec__", None)
        if isinstance(file, str):
            real = spec.name if name == "__main__" and spec is not None else name
            names.setdefault(os.path.realpath(file), real)
    return names


def module_finder() -> Callable[[str], str | None]:
    """A function from a code object's file name to its module's name (cached); None for
    generated code (``<string>``, attrs' and dataclasses' methods) and unknown files."""
    names = module_names()

    @functools.cache
    def module_of(filename: str) -> str | None:
        if filename.startswith("<frozen "):
            return filename[len("<frozen ") : -1]
        path = os.path.realpath(filename)
        if path not in names and path.startswith(_STDLIB):  # a module no longer imported
            return path[len(_STDLIB) :].removesuffix(".py").replace(os.sep, ".")
        return names.get(path)

    return module_of


def classify(stack: tuple[CodeType, ...], module_of: Callable[[str], str | None]) -> Owner:
    """(bucket, detail) of one sample (``stack`` runs from innermost to outermost): that of
    the innermost frame with a module; code without one counts for its caller."""
    if any(code is _GC_CALLBACK for code in stack):
        return "cyclic GC", GC_DETAIL
    owners = (module_owner(module_of(code.co_filename)) for code in stack)
    return next((o for o in owners if o is not None), ("other", "unknown code"))


def is_send(filename: str, function: str, module_of: Callable[[str], str | None]) -> bool:
    """Whether this is an engine's ``send_message``."""
    return function == SEND_FUNCTION and (module_of(filename) or "").partition(".")[0] in ENGINES


class GcClock:
    """CPU time and count of the cyclic garbage collector's passes, per generation."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._gc_callback)

    def _gc_callback(self, phase: str, info: dict[str, int]) -> None:
        # A profiling signal that arrives during a collection is handled here,
        # in the first Python code after it: classify() counts such samples as GC.
        if phase == "start":
            self._started = time.process_time()
        else:
            generation = info["generation"]
            self.collections[generation] += 1
            self.seconds[generation] += time.process_time() - self._started

    def snapshot(self) -> tuple[list[int], list[float]]:
        return list(self.collections), list(self.seconds)


_GC_CALLBACK = GcClock._gc_callback.__code__


class Sampler:
    """Samples the main thread's stack every ``interval`` s of process CPU time.

    Each sample is weighted by the process CPU time since the previous one:
    ITIMER_PROF expirations that fall inside one long stretch of C code (a
    full garbage collection takes tens of ms) arrive as one signal, handled at
    the next bytecode, so unweighted counts would under-represent such stretches.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stacks: defaultdict[tuple[CodeType, ...], float] = defaultdict(float)  # CPU s
        self.samples = 0
        self._last = 0.0
        self._wakeup_fd = -1

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        now = time.process_time()
        codes = []
        while frame is not None:
            codes.append(frame.f_code)
            frame = frame.f_back
        self.stacks[tuple(codes)] += now - self._last
        self.samples += 1
        self._last = now

    def start(self) -> None:
        self.stacks.clear()
        self.samples = 0
        signal.signal(signal.SIGPROF, self._sample)
        # Trio wakes its loop through the signal wakeup fd on every signal; a
        # busy loop needs no waking, so keep the samples from adding that work.
        self._wakeup_fd = signal.set_wakeup_fd(-1)
        self._last = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        signal.set_wakeup_fd(self._wakeup_fd, warn_on_full_buffer=False)

    def summary(self) -> dict[str, Any]:
        """CPU seconds by bucket and detail, in the send path, by innermost function, by stack."""
        module_of = module_finder()
        buckets: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        stacks: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        leaves: defaultdict[str, float] = defaultdict(float)
        send_path = 0.0
        for stack, seconds in self.stacks.items():
            bucket, detail = classify(stack, module_of)
            buckets[bucket][detail] += seconds
            if bucket != "cyclic GC" and any(
                is_send(c.co_filename, c.co_name, module_of) for c in stack
            ):
                send_path += seconds
            names = [f"{module_of(c.co_filename) or c.co_filename}:{c.co_name}" for c in stack]
            stacks[bucket][";".join(reversed(names[:10]))] += seconds
            leaves[f"{names[0]}:{stack[0].co_firstlineno}"] += seconds
        return {
            "samples": self.samples,
            "sampled_seconds": sum(self.stacks.values()),
            "send_path_seconds": send_path,
            "interval": self.interval,
            "categories": {name: dict(details) for name, details in buckets.items()},
            "top_leaves": _largest(leaves, 25),
            "top_stacks": {name: _largest(c, 8) for name, c in stacks.items()},
        }


def _largest(seconds: dict[str, float], n: int) -> list[tuple[str, float]]:
    return sorted(seconds.items(), key=lambda item: -item[1])[:n]


def _cprofile_summary(profile: cProfile.Profile) -> dict[str, Any]:
    """Total profiled time, and the cumulative time inside the engine's send_message."""
    module_of = module_finder()
    entries = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values())
    send = sum(
        ct
        for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in entries.items()
        if is_send(filename, name, module_of)
    )
    return {"total_seconds": total, "send_message_cumulative_seconds": send}


class Recorder:
    """One sender's session in a server: counters, CPU time, GC and (optionally) a profile.

    :meth:`end` prints them as one line ``stats {JSON}`` on stdout.
    """

    def __init__(
        self, mode: str | None, interval: float, output: str | None, deliveries: Callable[[], int]
    ) -> None:
        self._gc = GcClock()
        self._gc_start = self._gc.snapshot()
        self._mode = mode
        self._output = output
        self._deliveries = deliveries
        self._sampler = Sampler(interval) if mode == "sample" else None
        self._cprofile: cProfile.Profile | None = None
        self._start = (0.0, 0.0, 0)

    def begin(self) -> None:
        self._start = (time.process_time(), time.perf_counter(), self._deliveries())
        self._gc_start = self._gc.snapshot()
        if self._sampler is not None:
            self._sampler.start()
        elif self._mode == "cprofile":
            self._cprofile = cProfile.Profile()
            self._cprofile.enable()

    def end(self, stats: dict[str, Any]) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        elif self._cprofile is not None:
            self._cprofile.disable()
        cpu0, wall0, deliveries0 = self._start
        (count0, seconds0), (count1, seconds1) = self._gc_start, self._gc.snapshot()
        stats["window"] = {
            "cpu_seconds": time.process_time() - cpu0,
            "seconds": time.perf_counter() - wall0,
            "deliveries": self._deliveries() - deliveries0,
            "gc_enabled": gc.isenabled(),
            "gc_collections": [b - a for a, b in zip(count0, count1, strict=True)],
            "gc_seconds": [b - a for a, b in zip(seconds0, seconds1, strict=True)],
        }
        if self._sampler is not None:
            stats["profile"] = self._sampler.summary()
        elif self._cprofile is not None:
            stats["profile"] = _cprofile_summary(self._cprofile)
            if self._output:
                self._cprofile.dump_stats(self._output)
            self._cprofile = None
        print("stats " + json.dumps(stats), flush=True)


# -- the harness side: tables of what the servers reported -------------------------------


def breakdown(profile: dict[str, Any], us_per_delivery: float) -> list[dict[str, Any]]:
    """Sampled CPU per bucket (detail None) and detail: share of the CPU, µs per delivery."""
    total, rows = profile["sampled_seconds"], []
    for bucket in sorted(profile["categories"], key=_rank):
        details = profile["categories"][bucket]
        ranked = sorted(details.items(), key=lambda kv: -kv[1])
        for detail, seconds in [(None, sum(details.values())), *ranked]:
            share = seconds / total
            row = {"category": bucket, "detail": detail, "share": share}
            rows.append(row | {"us_per_delivery": us_per_delivery * share})
    return rows


def markdown(runs: list[dict[str, Any]], kinds: tuple[str, ...]) -> str:
    """Per size, a table of the sampled runs' breakdowns and their send-path shares;
    then the cProfile runs' send-path shares."""
    lines: list[str] = []
    for size in sorted({r["size"] for r in runs}):
        sampled = {r["server"]: r for r in runs if r["size"] == size and r["mode"] == "sample"}
        shown = [k for k in kinds if k in sampled]
        lines.append(f"**{size_name(size)} text**, samples: " + ", ".join(
            f"{k} {sampled[k]['profile']['samples']}"
            f" (profiled run: {sampled[k]['us_per_delivery']:.1f} µs/delivery)"
            for k in shown
        ) + "; µs = share x the median CPU µs/delivery of the main table")  # fmt: skip
        cells: dict[tuple[str, str | None], dict[str, list[str]]] = {}
        for k in shown:
            for row in sampled[k]["breakdown"]:
                us = row.get("us_per_delivery_of_median") or row["us_per_delivery"]
                where = cells.setdefault((row["category"], row["detail"]), {})
                where[k] = [f"{row['share']:.0%}", f"{us:.1f}"]
        rows = [
            [f"**{bucket}**" if detail is None else f"  · {detail}"]
            + [cell for k in shown for cell in cells[bucket, detail].get(k, ["—", "—"])]
            for bucket, detail in sorted(cells, key=lambda key: (_rank(key[0]), key[1] is not None))
        ]
        header = ["Where", *(f"{k}: {what}" for k in shown for what in ("share", "µs"))]
        lines += ["", *table(header, ["---"] + ["---:"] * (2 * len(shown)), rows), ""]
        send = ", ".join(f"{k} {_send_share(sampled[k]['profile']):.0%}" for k in shown)
        lines += [f"Engine send path (`{SEND_FUNCTION}` and below): {send}.", ""]
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


def _rank(bucket: str) -> int:
    return ORDER.index(bucket) if bucket in ORDER else len(ORDER)


def _send_share(profile: dict[str, Any]) -> float:
    return float(profile["send_path_seconds"]) / float(profile["sampled_seconds"])
