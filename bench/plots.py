"""Plots of a broadcast run for docs/benchmarks.md: ``python -m bench.plots RESULTS.json``.

Reads the JSON that ``python -m bench.broadcast`` writes and draws, per message size,
the server's CPU per delivery split into the cyclic GC's share and the rest, one bar
per server, into ``docs/img/broadcast-cpu.svg`` (``--output`` to change it). Needs
matplotlib (``pip install -e '.[bench]'``); deterministic SVG, so a re-run of the same
results changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.harness import size_name

ROOT = Path(__file__).resolve().parents[1]


def plot(summary: list[dict[str, Any]], output: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("svg")
    matplotlib.rcParams["svg.hashsalt"] = "wstrio"  # stable ids: the same input, the same file
    matplotlib.rcParams["svg.fonttype"] = "none"
    from matplotlib import pyplot

    sizes = sorted({row["size"] for row in summary})
    servers = list(dict.fromkeys(row["server"] for row in summary))
    figure, axes = pyplot.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.4), sharey=True)
    for ax, size in zip(axes if len(sizes) > 1 else [axes], sizes, strict=True):
        rows = {row["server"]: row for row in summary if row["size"] == size}
        totals = [rows[s]["us_per_delivery"] for s in servers]
        gc = [rows[s]["gc_us_per_delivery"] for s in servers]
        rest = [t - g for t, g in zip(totals, gc, strict=True)]
        ax.bar(servers, rest, color="#2a6df4", label="CPU without GC")
        ax.bar(servers, gc, bottom=rest, color="#e07a10", label="cyclic GC")
        for x, total in enumerate(totals):
            ax.annotate(f"{total:.0f}", (x, total), ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{size_name(size)} text messages", fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.set_ylabel("server CPU µs per delivery")
    axes_list = list(axes) if len(sizes) > 1 else [axes]
    axes_list[0].legend(fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, metadata={"Date": None, "Creator": None})
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a bench/results/broadcast*.json file")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "img" / "broadcast-cpu.svg")
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    clients = data["settings"]["clients"]
    plot(data["summary"], args.output, f"One broadcast to {clients} receivers (bench.broadcast)")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
