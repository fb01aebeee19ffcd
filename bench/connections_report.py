"""bench/connections.py's results: medians, ratios against ``before``, targets, tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench import harness

#: KiB per idle connection (RSS growth) the native engine should stay within (issue 10).
MEMORY_TARGET_KIB = 24.0
#: Connection cycles per second of the native engine over the wstrio before it, at least.
CYCLE_TARGET = 2.0


@dataclass(frozen=True)
class Cycles(harness.Window):
    cycles: int

    @property
    def us_per_cycle(self) -> float:
        return 1e6 * self.server_cpu_seconds / self.cycles

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds

    def as_json(self, *computed: str) -> dict[str, Any]:
        return super().as_json("us_per_cycle", "cycles_per_second", *computed)


def _spread(values: list[float], digits: int = 1) -> str:
    if len(values) < 2:
        return ""
    return f" ({min(values):.{digits}f}-{max(values):.{digits}f})"


def summarize(
    servers: tuple[str, ...],
    rss: list[dict[str, Any]],
    traced: list[dict[str, Any]],
    cycles: list[Cycles],
) -> dict[str, Any]:
    """Per server: medians of memory per connection and of the cycles' cost and rate;
    the cycles' rate over ``before``'s (ratio of medians, per-repeat ratios)."""
    memory, rates = {}, {}
    for kind in servers:
        per_conn = [e["rss_kib_per_connection"] for e in rss if e["server"] == kind]
        tm = [e["traced_kib_per_connection"] for e in traced if e["server"] == kind]
        memory[kind] = {
            "rss_kib_per_connection": statistics.median(per_conn),
            "rss_kib_per_connection_repeats": per_conn,
            "traced_kib_per_connection": statistics.median(tm) if tm else None,
            "tasks_per_connection": statistics.median(
                e["tasks_per_connection"] for e in rss if e["server"] == kind
            ),
            "traced_sites": next((e["traced_sites"] for e in traced if e["server"] == kind), None),
            "traced_packages": next(
                (e["traced_packages"] for e in traced if e["server"] == kind), None
            ),
        }
        runs = [m for m in cycles if m.server == kind]
        rates[kind] = {
            "us_per_cycle": statistics.median(m.us_per_cycle for m in runs),
            "cycles_per_second": statistics.median(m.cycles_per_second for m in runs),
            "server_cpu_share": statistics.median(m.server_cpu_share for m in runs),
            "loadgen_cpu_share": statistics.median(m.loadgen_cpu_share for m in runs),
            **harness.extremes(runs),
        }
        if "before" in servers:
            base = [m for m in cycles if m.server == "before"]
            paired = harness.paired_ratios(runs, base, lambda m: m.cycles_per_second)
            rates[kind]["rate_over_before"] = rates[kind]["cycles_per_second"] / statistics.median(
                b.cycles_per_second for b in base
            )
            rates[kind]["rate_over_before_paired"] = paired
    wstrio_rss = memory["wstrio"]["rss_kib_per_connection"]
    targets = {"memory": {"limit_kib": MEMORY_TARGET_KIB, "met": wstrio_rss <= MEMORY_TARGET_KIB}}
    if "before" in servers:
        ratio = rates["wstrio"]["rate_over_before"]
        targets["cycles"] = {"limit": CYCLE_TARGET, "ratio": ratio, "met": ratio >= CYCLE_TARGET}
    return {"memory": memory, "cycles": rates, "targets": targets}


def _verdict(target: dict[str, Any], text: str) -> str:
    return f"{text}: {'met' if target['met'] else 'NOT met'}"


def markdown(summary: dict[str, Any], idle: int, parallel: int) -> str:
    """Memory per idle connection; wstrio's growing allocation sites; connection cycles."""
    memory, rates, targets = summary["memory"], summary["cycles"], summary["targets"]
    has_before = "before" in rates
    header = ["Server", f"RSS KiB per idle connection ({idle}; range)", "tracemalloc KiB per conn"]
    header += ["of which (tracemalloc, KiB)", "Trio tasks per conn"]
    header += ["RSS / before"] * has_before + ["Target"]
    cells = []
    for kind, m in memory.items():
        rss, traced = m["rss_kib_per_connection"], m["traced_kib_per_connection"]
        row = [kind, f"{rss:.1f}{_spread(m['rss_kib_per_connection_repeats'])}"]
        row.append("—" if traced is None else f"{traced:.1f}")
        packages = list((m["traced_packages"] or {}).items())
        row.append(", ".join(f"{p} {kib:.1f}" for p, kib in packages[:4] if kib >= 0.05) or "—")
        row.append(f"{m['tasks_per_connection']:.1f}")
        if has_before:
            row.append(f"{rss / memory['before']['rss_kib_per_connection']:.2f}")
        limit = f"≤ {MEMORY_TARGET_KIB:.0f} KiB"
        cells.append([*row, _verdict(targets["memory"], limit) if kind == "wstrio" else "—"])
    lines = harness.table(header, ["---", *["---:"] * (len(header) - 2), "---"], cells)
    sites = memory["wstrio"].get("traced_sites") or []
    if sites:
        header = ["wstrio: allocation site (tracemalloc)", "bytes per conn", "blocks per conn"]
        cells = [[f"`{site}`", f"{size:,.0f}", f"{count:.2f}"] for site, size, count in sites]
        lines += ["", *harness.table(header, ["---", "---:", "---:"], cells)]
    header = ["Server", "µs CPU per cycle", "cycles/s", "cycles/s / before (per-repeat range)"]
    header = header[: 3 + has_before]
    header += ["server CPU", f"connload CPU ({parallel} workers)", "Target"]
    cells = []
    for kind, r in rates.items():
        row = [kind, f"{r['us_per_cycle']:.0f}", f"{r['cycles_per_second']:,.0f}"]
        if has_before:
            row.append(f"{r['rate_over_before']:.2f}{_spread(r['rate_over_before_paired'], 2)}")
        row += [f"{r['server_cpu_share']:.0%}", f"{r['loadgen_cpu_share']:.0%}"]
        verdict = "—"
        if kind == "wstrio" and "cycles" in targets:
            verdict = _verdict(targets["cycles"], f"≥ {CYCLE_TARGET:.1f}x before")
        cells.append([*row, verdict])
    lines += ["", *harness.table(header, ["---", *["---:"] * (len(header) - 2), "---"], cells)]
    others0 = max(r["cpu0_other_share_max"] for r in rates.values())
    others1 = max(r["cpu1_other_share_max"] for r in rates.values())
    loadgen = max(r["loadgen_cpu_share_max"] for r in rates.values())
    lines += [
        "",
        f"Cycles (medians of the shares; at most: connload {loadgen:.0%} of CPU 1; other work "
        f"{others0:.0%} of CPU 0 (the servers'), {others1:.0%} of CPU 1 (connload's)).",
    ]
    return "\n".join(lines)
