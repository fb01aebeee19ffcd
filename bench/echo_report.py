"""The echo benchmark's measurements, medians, ratios, targets and Markdown tables."""

from __future__ import annotations

import inspect
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio_websocket

import wstrio
from bench import harness
from bench.harness import size_name
from bench.servers import raw

#: Ratios of medians shown, (server, baseline), when both ran: wstrio's against each
#: baseline; the old engine inside today's wstrio against the wstrio before.
RATIOS = (("wstrio", "before"), ("wstrio", "bare"), ("wstrio", "raw"), ("wstrio-tws", "before"))


@dataclass(frozen=True)
class Workload:
    connections: int
    size: int

    @property
    def name(self) -> str:
        return f"{size_name(self.size)}, {self.connections} conn" + "s" * (self.connections > 1)


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


@dataclass(frozen=True)
class Target:
    """wstrio's CPU per message over ``baseline``'s at most (or, ``below``, under) ``limit``,
    at ``size`` bytes with ``connections`` connections (None: any number)."""

    baseline: str
    limit: float
    size: int
    connections: int | None = None
    below: bool = False

    def applies(self, workload: Workload) -> bool:
        return self.size == workload.size and self.connections in (None, workload.connections)

    def met(self, ratio: float) -> bool:
        return ratio < self.limit if self.below else ratio <= self.limit

    @property
    def text(self) -> str:
        return f"/ {self.baseline} {'<' if self.below else '≤'} {self.limit:.2f}"


#: The native engine's targets (issue 10), against the wstrio before it and bare trio-websocket.
TARGETS = (
    Target("before", 0.50, 64, 50),
    Target("bare", 1.00, 64, 50, below=True),
    Target("before", 0.65, 16, 1),
    Target("before", 0.50, 65536),
)
#: Without a ``before`` server: the earlier targets against bare trio-websocket.
BARE_TARGETS = (Target("bare", 1.25, 16), Target("bare", 1.00, 65536))


def summarize(
    measurements: list[Measurement], workloads: Sequence[Workload], servers: Sequence[str]
) -> list[dict[str, Any]]:
    """Per workload: medians per server, ratios of medians, per-repeat ratios, targets."""
    targets = TARGETS if "before" in servers else BARE_TARGETS
    rows = []
    for workload in workloads:
        runs = {
            k: [m for m in measurements if (m.workload, m.server) == (workload, k)] for k in servers
        }
        cost = {k: statistics.median(m.us_per_message for m in runs[k]) for k in servers}
        ratios = {}
        for server, baseline in RATIOS:
            if server in servers and baseline in servers:
                paired = harness.paired_ratios(
                    runs[server], runs[baseline], lambda m: m.us_per_message
                )
                ratios[f"{server}/{baseline}"] = {
                    "ratio": cost[server] / cost[baseline],
                    "paired": paired,
                    "paired_median": statistics.median(paired),
                }
        checks = []
        for target in targets:
            if target.applies(workload) and target.baseline in servers:
                ratio = ratios[f"wstrio/{target.baseline}"]["ratio"]
                checks.append({"target": target.text, "ratio": ratio, "met": target.met(ratio)})
        rows.append(
            {
                "workload": workload.name,
                "connections": workload.connections,
                "size": workload.size,
                "us_per_message": cost,
                "messages_per_second": {
                    k: statistics.median(m.messages_per_second for m in runs[k]) for k in servers
                },
                "server_cpu_share": {
                    k: statistics.median(m.server_cpu_share for m in runs[k]) for k in servers
                },
                "ratios": ratios,
                "targets": checks,
                **harness.extremes([m for k in servers for m in runs[k]]),
            }
        )
    return rows


def receive_buffers(
    servers: Sequence[str], bare_size: int | None, before_tree: Path | None
) -> dict[str, int]:
    """Bytes per socket read of each server, as configured for this run."""
    default = inspect.signature(trio_websocket.serve_websocket).parameters["receive_buffer_size"]
    sizes = {
        "wstrio": wstrio.Config().receive_buffer_size,
        "wstrio-tws": wstrio.Config(engine="trio-websocket").receive_buffer_size,
        "bare": bare_size or default.default,
        "raw": raw.RECEIVE_SIZE,
    }
    if before_tree is not None:  # run from the tree, whose wstrio/ then comes first
        code = "import wstrio; print(wstrio.Config().receive_buffer_size)"
        done = subprocess.run([sys.executable, "-c", code], cwd=before_tree, capture_output=True)
        sizes["before"] = int(done.stdout)
    return {kind: sizes[kind] for kind in servers}


def _ratio_cell(ratio: dict[str, Any]) -> str:
    paired = ratio["paired"]
    spread = f" ({min(paired):.2f}-{max(paired):.2f})" if len(paired) > 1 else ""
    return f"{ratio['ratio']:.2f}{spread}"


def markdown(rows: list[dict[str, Any]], servers: Sequence[str], buffers: dict[str, int]) -> str:
    """Two tables (CPU per message with wstrio's ratios and targets; messages per second)
    and a line on receive buffers and noise."""
    wstrio_ratios = [f"wstrio/{b}" for s, b in RATIOS if s == "wstrio" and b in servers]
    header = ["Workload", *(f"{k} µs/msg" for k in servers)]
    header += [f"{r.replace('/', ' / ')} (per-repeat range)" for r in wstrio_ratios] + ["Target"]
    cells = []
    for row in rows:
        verdicts = [f"{t['target']}: {'met' if t['met'] else 'NOT met'}" for t in row["targets"]]
        cells.append(
            [
                row["workload"],
                *(f"{row['us_per_message'][k]:.1f}" for k in servers),
                *(_ratio_cell(row["ratios"][r]) for r in wstrio_ratios),
                "; ".join(verdicts) or "—",
            ]
        )
    align = ["---", *["---:"] * (len(servers) + len(wstrio_ratios)), "---"]
    lines = harness.table(header, align, cells)
    extra = [r for r in ("wstrio-tws/before",) if rows and r in rows[0]["ratios"]]
    header = ["Workload", *(f"{k} msg/s" for k in servers)]
    header += [f"{r.replace('/', ' / ')} µs/msg (per-repeat range)" for r in extra]
    cells = [
        [
            row["workload"],
            *(f"{row['messages_per_second'][k]:,.0f}" for k in servers),
            *(_ratio_cell(row["ratios"][r]) for r in extra),
        ]
        for row in rows
    ]
    lines += ["", *harness.table(header, ["---", *["---:"] * (len(header) - 1)], cells)]
    loadgen = max(row["loadgen_cpu_share_max"] for row in rows)
    others0 = max(row["cpu0_other_share_max"] for row in rows)
    others1 = max(row["cpu1_other_share_max"] for row in rows)
    sizes = ", ".join(f"{kind} {size} B" for kind, size in buffers.items())
    lines.append("")
    lines.append(
        f"Receive buffer: {sizes}. Load generator CPU use (CPU 1) at most {loadgen:.0%}. "
        f"Other work, at most: {others0:.0%} of CPU 0 (the servers'), "
        f"{others1:.0%} of CPU 1 (the load generator's)."
    )
    return "\n".join(lines)
