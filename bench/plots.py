"""The figures of docs/benchmarks.md: ``python -m bench.plots``.

The page's tables are the recorded results: each is the Markdown a benchmark printed
(``python -m bench.echo``, ``bench.connections``, ``bench.echo_profile``,
``bench.broadcast``) or a measurement made by hand, pasted under the run it belongs to;
the runs' JSON is not kept (``bench/results/`` is not committed). So the tables are the
one place the figures come from: this module reads them from the page, finds each by
its section and its columns, and draws one SVG per table (or per group of tables read
together) into ``docs/img/``, where the page embeds it next to the table. After pasting
a new run's tables, run it again. A table that is gone or whose columns changed stops
it, naming the table it looked for.

Needs matplotlib (``pip install -e '.[bench]'``). The SVGs are deterministic: the same
page draws the same files.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"
IMAGES = ROOT / "docs" / "img"

#: One colour per server, the same in every figure (Okabe-Ito, told apart with colour
#: blindness too).
SERVER_COLOURS = {
    "wstrio": "#0072b2",
    "wstrio-deflate": "#56b4e9",
    "wstrio-tws": "#cc79a7",
    "before": "#8c8c8c",
    "bare": "#e69f00",
    "raw": "#009e73",
    "websockets": "#d55e00",
}
OTHER_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8c8c8c")
RUN_COLOURS = ("#9ecae1", "#4292c6", "#08306b", "#6baed6", "#2171b5")
TARGET_COLOUR = "#c00000"
#: Where CPU goes (profile tables) and what memory is made of (tracemalloc).
PART_COLOURS = {
    "cyclic GC": "#c00000",
    "wstrio": "#0072b2",
    "wstrio outside the engine": "#0072b2",
    "engine send path": "#56b4e9",
    "engine, other": "#cc79a7",
    "trio": "#e69f00",
    "trio scheduler and I/O": "#e69f00",
    "trio_websocket": "#cc79a7",
    "wsproto": "#d55e00",
    "h11": "#f0e442",
    "stdlib": "#009e73",
    "bench": "#8c8c8c",
    "other": "#d9d9d9",
}
RATIO_MARKERS = "oDs^v"
TIMES = "\N{MULTIPLICATION SIGN}"


# -- the page's tables --------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A Markdown table of the page, with where it stands."""

    chapter: str  # the ``##`` heading above it
    section: str  # the innermost heading above it
    caption: str  # the paragraph just above it
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line: int

    def column(self, name: str) -> int:
        """The index of the first column named ``name``, or whose name starts with it."""
        for index, cell in enumerate(self.header):
            if cell == name or cell.startswith(name):
                return index
        raise LookupError(f"{PAGE.name}:{self.line}: no column {name!r} in {self.header}")

    def has(self, name: str) -> bool:
        return any(cell == name or cell.startswith(name) for cell in self.header)

    def cells(self, name: str) -> list[str]:
        index = self.column(name)
        return [row[index] for row in self.rows]

    def first(self) -> list[str]:
        return [row[0] for row in self.rows]

    @property
    def title(self) -> str:
        """The headings it stands under."""
        return self.chapter if self.section == self.chapter else f"{self.chapter}: {self.section}"


def _row(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def read_tables(text: str) -> list[Table]:
    """Every table of a Markdown page (not those in fenced code)."""
    lines = text.splitlines()
    tables: list[Table] = []
    chapter = section = ""
    paragraph: list[str] = []
    last: list[str] = []
    fenced = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            pass
        elif heading := re.match(r"(#+)\s+(.*)", line):
            section = heading[2].strip()
            if len(heading[1]) <= 2:
                chapter = section
            paragraph, last = [], []
        elif (
            line.startswith("|")
            and index + 1 < len(lines)
            and re.fullmatch(r"\|[\s:|-]+\|", lines[index + 1].strip())
        ):
            end = index + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            rows = tuple(_row(row) for row in lines[index + 2 : end])
            caption = " ".join(paragraph or last)
            tables.append(Table(chapter, section, caption, _row(line), rows, index + 1))
            paragraph, last = [], []
            index = end
            continue
        elif line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            paragraph, last = [], paragraph
        index += 1
    return tables


def find(
    tables: Sequence[Table],
    chapter: str,
    section: str | None = None,
    columns: Sequence[str] = (),
    count: int = 1,
) -> list[Table]:
    """The ``count`` tables under a ``##`` heading starting with ``chapter`` (and an inner
    heading starting with ``section``) that have all ``columns``; an error if not."""
    found = [
        t
        for t in tables
        if t.chapter.startswith(chapter)
        and (section is None or t.section.startswith(section))
        and all(t.has(c) for c in columns)
    ]
    if len(found) != count:
        where = chapter + (f" > {section}" if section else "")
        raise LookupError(
            f"{PAGE.name}: {len(found)} tables under {where!r} with columns {list(columns)},"
            f" expected {count}"
        )
    return found


# -- cells --------------------------------------------------------------------------------

_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"


def plain(cell: str) -> str:
    return cell.replace("**", "").replace("`", "").strip()


def number(cell: str) -> float:
    """The first number of a cell: ``**17.0**``, ``4,471``, ``0.0 (0%)``, ``22.9 ms``."""
    found = re.search(_NUMBER, plain(cell))
    if found is None:
        raise ValueError(f"no number in {cell!r}")
    return float(found[0].replace(",", ""))


def maybe(cell: str) -> float | None:
    """A number, or None for an empty cell (``—``, ``-``, blank)."""
    return None if plain(cell) in {"", "—", "-"} else number(cell)


@dataclass(frozen=True)
class Ratio:
    value: float
    low: float
    high: float


def ratio(cell: str) -> Ratio | None:
    """``0.72 (0.62-0.87)``, ``1 (baseline)``, ``1.00``; None for ``—``."""
    text = plain(cell)
    if text in {"", "—", "-"}:
        return None
    value = number(text)
    spread = re.search(rf"\(({_NUMBER})\s*-\s*({_NUMBER})\)", text)
    if spread is None:
        return Ratio(value, value, value)
    return Ratio(value, float(spread[1]), float(spread[2]))


def microseconds(cell: str) -> float:
    """A profile table's µs: ``27 (12%)``, or ``23% (13.0 µs)`` (the share, then the µs in
    brackets); ``—`` is 0."""
    text = plain(cell)
    bracketed = re.match(rf"\d+%\s*\(({_NUMBER})", text)
    if bracketed:
        return float(bracketed[1])
    return maybe(text) or 0.0


def share(cell: str) -> float | None:
    """The percentage of a profile cell (``27 (12%)``, ``23% (13.0 µs)``) as a fraction."""
    found = re.search(r"(\d+(?:\.\d+)?)%", plain(cell))
    return None if found is None else float(found[1]) / 100


def size_bytes(text: str) -> int:
    """``16 B``, ``64 KiB``: bytes."""
    found = re.search(r"([\d.]+)\s*(B|KiB|MiB)\b", text)
    if found is None:
        raise ValueError(f"no size in {text!r}")
    return int(float(found[1]) * {"B": 1, "KiB": 1024, "MiB": 1024**2}[found[2]])


@dataclass(frozen=True)
class Target:
    baseline: str | None  # the ratio's baseline server; None where the table has one ratio
    sign: str  # ≤ < ≥ >
    value: float


def targets(cell: str) -> list[Target]:
    """``/ before ≤ 0.50: NOT met; / bare < 1.00: NOT met``, ``≤ 1.25: NOT met``,
    ``≤ 24 KiB: NOT met``, ``≥ 2.0x before: NOT met``; ``—`` has none."""
    found = []
    for part in plain(cell).split(";"):
        match = re.search(rf"(?:/\s*([\w-]+)\s*)?([≤<≥>])\s*({_NUMBER})", part)
        if match:
            found.append(Target(match[1], match[2], float(match[3])))
    return found


def label(cell: str) -> str:
    """A row's name without emphasis, code marks or a trailing parenthesis."""
    return re.sub(r"\s*\(.*\)$", "", plain(cell)).strip(" ·")


# -- drawing ------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("svg")
    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "wstrio",  # stable ids: the same input, the same file
            "svg.fonttype": "none",
            "font.size": 8.5,
            "axes.titlesize": 9,
            "axes.labelsize": 8.5,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.axisbelow": True,
            "axes.grid": True,
            "axes.grid.axis": "y",
            "grid.color": "#e6e6e6",
            "legend.frameon": False,
            "legend.fontsize": 7.5,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
        }
    )
    from matplotlib import pyplot

    return pyplot


def colour(server: str, index: int = 0) -> str:
    return SERVER_COLOURS.get(server, OTHER_COLOURS[index % len(OTHER_COLOURS)])


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def wrap(text: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def plain_log(ax: Axes, axis: str = "y") -> None:
    """A log axis ticked 1, 2, 5, 10, 20, ... in plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    scale = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    scale.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    scale.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    scale.set_minor_locator(NullLocator())


def log_ratio_axis(ax: Axes, low: float, high: float, text: str, axis: str = "y") -> None:
    """A log axis for ratios, ticked at round values, with 1 (the baseline) drawn."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = (0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.75, 1, 1.25, 1.5, 2, 3, 4, 5, 7, 10)
    low, high = min(low, 1) / 1.2, max(high, 1) * 1.2
    shown = [t for t in ticks if low <= t <= high]
    if len(shown) > 9:
        shown = [t for t in shown if t in {0.1, 0.25, 0.5, 1, 2, 4, 10}]
    scale = ax.yaxis if axis == "y" else ax.xaxis
    if axis == "y":
        ax.set_yscale("log")
        ax.set_ylim(low, high)
        ax.axhline(1, color="#444444", linewidth=0.9, zorder=1)
        ax.set_ylabel(text)
    else:
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.axvline(1, color="#444444", linewidth=0.9, zorder=1)
        ax.set_xlabel(text)
    scale.set_major_locator(FixedLocator(shown))
    scale.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{TIMES}"))
    scale.set_minor_locator(NullLocator())


def bars(
    ax: Axes,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    colours: Sequence[str] | None = None,
    width: float = 0.8,
    values: bool = False,
    text: Callable[[float], str] | None = None,
    **style: Any,
) -> dict[str, list[float]]:
    """Grouped bars, one colour per series (a server); the x of each series' bars."""
    step = width / max(len(series), 1)
    positions: dict[str, list[float]] = {}
    for index, (name, heights) in enumerate(series.items()):
        xs = [g - width / 2 + step * (index + 0.5) for g in range(len(groups))]
        positions[name] = xs
        shown = [(x, v) for x, v in zip(xs, heights, strict=True) if v is not None]
        ax.bar(
            [x for x, _ in shown],
            [v for _, v in shown],
            step * 0.9,
            color=colours[index] if colours else colour(name, index),
            label=name,
            **style,
        )
        if values:
            for x, v in shown:
                ax.annotate((text or fmt)(v), (x, v), ha="center", va="bottom", fontsize=6.5)
    ax.set_xticks(range(len(groups)), list(groups))
    return positions


def ratio_point(
    ax: Axes,
    x: float,
    r: Ratio,
    colour_: str,
    marker: str,
    text: str | None,
    values: bool,
    hollow: bool = False,
) -> None:
    """A ratio as a point (the median) with its per-repeat range as a bar."""
    ax.errorbar(
        [x],
        [r.value],
        yerr=[[r.value - r.low], [r.high - r.value]],
        fmt=marker,
        color=colour_,
        markersize=5,
        elinewidth=1.2,
        capsize=2.5,
        label=text,
        zorder=3,
        markerfacecolor="white" if hollow else colour_,
    )
    if values:
        ax.annotate(
            f"{r.value:.2f}",
            (x, r.value),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=6.5,
            va="center",
            color="#333333",
        )


def ratio_points(
    ax: Axes,
    groups: Sequence[str],
    series: Mapping[str, Sequence[Ratio | None]],
    colours: Sequence[str],
    *,
    width: float = 0.7,
    hollow: Sequence[bool] = (),
    markers: str = RATIO_MARKERS,
) -> dict[str, list[float]]:
    """Ratios side by side per group; the x of each series' points."""
    step = width / max(len(series), 1)
    positions: dict[str, list[float]] = {}
    for index, (name, ratios) in enumerate(series.items()):
        xs = [g - width / 2 + step * (index + 0.5) for g in range(len(groups))]
        positions[name] = xs
        text: str | None = name
        for x, r in zip(xs, ratios, strict=True):
            if r is not None:
                marker = markers[index % len(markers)]
                empty = index < len(hollow) and hollow[index]
                ratio_point(ax, x, r, colours[index], marker, text, values=True, hollow=empty)
                text = None
    ax.set_xticks(range(len(groups)), list(groups))
    ax.grid(False)
    return positions


def target_mark(
    ax: Axes, at: float, target: Target, half: float, *, vertical: bool = False
) -> None:
    """A target: a short red line at its value (across ``at`` ± ``half``)."""
    text = f"target ({target.sign})"
    if vertical:
        ax.vlines(target.value, at - half, at + half, color=TARGET_COLOUR, linewidth=2, label=text)
    else:
        ax.hlines(target.value, at - half, at + half, color=TARGET_COLOUR, linewidth=2, label=text)


def unique_legend(ax: Axes, **options: Any) -> None:
    handles, texts = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for handle, text in zip(handles, texts, strict=True):
        seen.setdefault(text, handle)
    ax.legend(list(seen.values()), list(seen), **options)


def server_legend(figure: Figure, servers: Sequence[str]) -> None:
    """The servers' colours, once, above the panels."""
    from matplotlib.patches import Patch

    handles = [Patch(color=colour(s, i)) for i, s in enumerate(servers)]
    figure.legend(handles, list(servers), loc="outside lower center", ncols=len(servers))


def finish(figure: Figure, title: str) -> Figure:
    figure.suptitle(wrap(title, int(figure.get_figwidth() * 13)), fontsize=10)
    return figure


def save(figure: Figure, path: Path) -> None:
    pyplot = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None, "Creator": None} if path.suffix == ".svg" else None
    figure.savefig(path, metadata=metadata)
    pyplot.close(figure)


def grid(count: int, columns: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    pyplot = _pyplot()
    rows = -(-count // columns)
    figure, axes = pyplot.subplots(
        rows,
        columns,
        figsize=(width * columns, height * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.remove()
    return figure, flat[:count]


# -- the figures --------------------------------------------------------------------------


def broadcast(table: Table) -> Figure:
    """A broadcast run's table: CPU per delivery with the GC's share; the same as a ratio
    to the bare hub (and to before); deliveries per second; latency; bytes on the wire."""
    sizes = list(dict.fromkeys(label(m) for m in table.cells("Message")))
    servers = list(dict.fromkeys(plain(s) for s in table.cells("Server")))
    server_column = table.column("Server")
    rows = {(label(r[0]), plain(r[server_column])): r for r in table.rows}

    def column(name: str, parse: Callable[[str], Any] = maybe) -> dict[str, list[Any]]:
        index = table.column(name)
        return {
            s: [parse(rows[z, s][index]) if (z, s) in rows else None for z in sizes]
            for s in servers
        }

    def cpu(ax: Axes) -> None:
        total = column("CPU µs/delivery")
        gc = column("of which GC")
        rest = {s: [t - g for t, g in zip(total[s], gc[s], strict=True)] for s in servers}
        xs = bars(ax, sizes, rest)
        for index, s in enumerate(servers):
            ax.bar(
                xs[s],
                gc[s],
                0.8 / len(servers) * 0.9,
                bottom=rest[s],
                color="white",
                edgecolor=colour(s, index),
                hatch="//////",
                linewidth=0.6,
            )
            for x, value in zip(xs[s], total[s], strict=True):
                ax.annotate(fmt(value), (x, value), ha="center", va="bottom", fontsize=6.5)
        ax.set_ylabel("server CPU µs per delivery")
        ax.set_title("CPU per delivery (hatched: cyclic GC)")

    def versus(ax: Axes) -> None:
        bare = column("CPU vs bare", ratio)
        before = column("CPU vs before", ratio) if table.has("CPU vs before") else {}
        series: dict[str, list[Ratio | None]] = {}
        hollow = []
        for s in servers:
            if s != "bare":
                series[f"{s} / bare"] = bare[s]
                hollow.append(False)
            if before and s != "before":
                series[f"{s} / before"] = before[s]
                hollow.append(True)
        colours = [colour(name.split(" / ")[0]) for name in series]
        ratio_points(ax, sizes, series, colours, width=0.85, hollow=hollow, markers="o")
        values = [r for rs in series.values() for r in rs if r is not None]
        low, high = min(r.low for r in values), max(r.high for r in values)
        log_ratio_axis(ax, low, high, "CPU per delivery, ratio (log)")
        ax.set_title(
            "CPU per delivery as a ratio to bare (filled)"
            + (", to before (hollow)" if table.has("CPU vs before") else "")
            + "; bar: per-repeat range"
        )

    def rate(ax: Axes) -> None:
        bars(ax, sizes, column("deliveries/s"))
        ax.set_ylabel("deliveries per second")
        ax.set_title("deliveries per second")

    def latency(ax: Axes) -> None:
        p50, p99 = column("latency p50"), column("latency p99")
        whole = column("broadcast to all") if table.has("broadcast to all") else {}
        step = 0.8 / len(servers)
        for index, s in enumerate(servers):
            xs = [g - 0.4 + step * (index + 0.5) for g in range(len(sizes))]
            for x, low, high in zip(xs, p50[s], p99[s], strict=True):
                if low is None or high is None:
                    continue
                ax.vlines(x, low, high, color=colour(s, index), linewidth=4, alpha=0.45)
                ax.plot([x], [low], "o", color=colour(s, index), markersize=6)
                ax.plot([x], [high], "_", color=colour(s, index), markersize=12, mew=2.5)
            if whole:
                ax.plot(xs, whole[s], "x", color="black", markersize=5)
        title = "latency: p50 (dot) to p99 (dash)"
        if whole:
            title += f"\n{TIMES}: {plain(table.header[table.column('broadcast to all')])}"
        ax.set_xticks(range(len(sizes)), sizes)
        ax.set_xlim(-0.5, len(sizes) - 0.5)
        plain_log(ax)
        ax.set_ylabel("latency, ms (log)")
        ax.set_title(title)

    def wire(ax: Axes) -> None:
        read = column("wire bytes/delivery")
        xs = bars(ax, sizes, read)
        for s in servers:
            for x, value in zip(xs[s], read[s], strict=True):
                if value is not None:
                    ax.annotate(
                        f"{value:g}",
                        (x, value),
                        xytext=(0, 2),
                        textcoords="offset points",
                        ha="center",
                        va="bottom",
                        rotation=90,
                        fontsize=6.5,
                    )
        plain_log(ax)
        ax.set_ylim(None, max(v for vs in read.values() for v in vs if v) * 2.5)
        ax.set_ylabel("bytes per delivery (log)")
        ax.set_title("bytes a receiver reads per delivery")

    below = [rate] if table.has("deliveries/s") else []
    below += [latency] if table.has("latency p50") and table.has("latency p99") else []
    below += [wire] if table.has("wire bytes/delivery") else []
    figure = _pyplot().figure(figsize=(11, 3.2 * (1 + bool(below)) + 0.6), layout="constrained")
    spec = figure.add_gridspec(1 + bool(below), 6)
    cpu(figure.add_subplot(spec[0, :2]))
    versus(figure.add_subplot(spec[0, 2:]))
    for index, draw in enumerate(below):
        span = 6 // len(below)
        draw(figure.add_subplot(spec[1, index * span : (index + 1) * span]))
    server_legend(figure, servers)
    return finish(figure, table.title)


def echo(table: Table) -> Figure:
    """An echo run's table: CPU per message and/or messages per second per server and
    workload; the ratios of CPU per message with their per-repeat ranges and targets."""
    workloads = [label(w) for w in table.first()]

    def columns(pattern: str) -> dict[str, int]:
        return {m[1]: i for i, c in enumerate(table.header) if (m := re.fullmatch(pattern, c))}

    values = [
        (found, unit)
        for found, unit in (
            (columns(r"(\S+) µs/msg"), "server CPU µs per message"),
            (columns(r"(\S+) msg/s"), "messages per second"),
        )
        if found
    ]
    ratios = {
        (m[1], m[2]): i
        for i, c in enumerate(table.header)
        if (m := re.fullmatch(r"(\S+) / (\S+)(?: µs/msg)? \(per-repeat range\)", c))
    }
    figure, axes = grid(len(values) + bool(ratios), 1, 8.2, 2.6)
    servers: dict[str, None] = {}
    for ax, (found, unit) in zip(axes, values, strict=False):
        bars(ax, workloads, {s: [number(r[i]) for r in table.rows] for s, i in found.items()})
        ax.set_ylabel(unit)
        servers |= dict.fromkeys(found)
    if ratios:
        ax = axes[-1]
        series = {f"{s} / {b}": [ratio(r[i]) for r in table.rows] for (s, b), i in ratios.items()}
        # wstrio against a baseline in the baseline's colour; another server in its own
        colours = [colour(b) if s == "wstrio" and len(ratios) > 1 else colour(s) for s, b in ratios]
        xs = ratio_points(ax, workloads, series, colours)
        half = 0.7 / len(series) / 2 * 0.9
        for row, cell in enumerate(table.cells("Target") if table.has("Target") else []):
            for target in targets(cell):
                name = next(
                    (
                        n
                        for n in series
                        if target.baseline is None or n.endswith(f"/ {target.baseline}")
                    ),
                    None,
                )
                if name is not None:
                    target_mark(ax, xs[name][row], target, half)
        shown = [r for rs in series.values() for r in rs if r is not None]
        log_ratio_axis(
            ax,
            min(r.low for r in shown),
            max(r.high for r in shown),
            "CPU per message, ratio (log)",
        )
        ax.set_title("CPU per message as a ratio: median (point), per-repeat range (bar)")
        unique_legend(ax, ncols=5, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    server_legend(figure, list(servers))
    return finish(figure, table.title)


def target_runs(table: Table) -> Figure:
    """Targets (rows) against the ratio each run measured (columns), with ranges."""
    runs = [c for c in table.header[1:] if not c.startswith("Met")]
    names = table.first()
    figure, (ax,) = grid(1, 1, 8.2, 0.55 * len(names) + 0.8)
    step = 0.7 / len(runs)
    for row, name in enumerate(names):
        y = len(names) - 1 - row
        for index, run in enumerate(runs):
            r = ratio(table.rows[row][table.column(run)])
            if r is None:
                continue
            at = y + 0.35 - step * (index + 0.5)
            ax.errorbar(
                [r.value],
                [at],
                xerr=[[r.value - r.low], [r.high - r.value]],
                fmt=RATIO_MARKERS[index % len(RATIO_MARKERS)],
                color=RUN_COLOURS[index % len(RUN_COLOURS)],
                markersize=5,
                capsize=2.5,
                label=run,
            )
        for target in targets(name):
            target_mark(ax, y, target, 0.4, vertical=True)
    everything = [
        r for row in table.rows for run in runs if (r := ratio(row[table.column(run)])) is not None
    ]
    low = min([r.low for r in everything] + [t.value for n in names for t in targets(n)])
    high = max([r.high for r in everything] + [t.value for n in names for t in targets(n)])
    log_ratio_axis(ax, low, high, "wstrio / baseline, CPU per message (log)", axis="x")
    ax.set_yticks(range(len(names)), [wrap(plain(n), 34) for n in reversed(names)])
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    unique_legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=len(runs) + 1)
    return finish(figure, f"{table.title}: the targets in each run")


def memory(table: Table) -> Figure:
    """Memory per idle connection: RSS with its range, against before, and the target;
    what tracemalloc traced, by package."""
    servers = [plain(s) for s in table.first()]
    rss = [ratio(c) for c in table.cells("RSS KiB per idle connection")]
    traced = [number(c) for c in table.cells("tracemalloc KiB per conn")]
    parts = [
        {k: float(v) for k, v in re.findall(rf"([\w.]+) ({_NUMBER})", plain(c))}
        for c in table.cells("of which")
    ]
    tasks = [plain(c) for c in table.cells("Trio tasks")] if table.has("Trio tasks") else []
    before = [plain(c) for c in table.cells("RSS / before")] if table.has("RSS / before") else []
    figure, (left, right) = grid(2, 2, 4.2, 0.42 * len(servers) + 1.0)
    ys = list(range(len(servers)))[::-1]
    for index, (y, server, r) in enumerate(zip(ys, servers, rss, strict=True)):
        if r is None:
            continue
        left.barh(y, r.value, 0.7, color=colour(server, index))
        left.errorbar(
            [r.value], [y], xerr=[[r.value - r.low], [r.high - r.value]], color="black", capsize=2
        )
        notes = [f"{fmt(r.value)} KiB"]
        if before and before[index]:
            notes.append(f"{before[index]}{TIMES} before")
        if tasks and tasks[index]:
            notes.append(f"{tasks[index]} tasks")
        left.annotate(
            " · ".join(notes),
            (r.high, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    if table.has("Target"):
        for y, cell in zip(ys, table.cells("Target"), strict=True):
            for target in targets(cell):
                target_mark(left, y, target, 0.45, vertical=True)
        unique_legend(left, loc="lower right")
    left.set_yticks(ys, servers)
    left.set_xlabel("RSS KiB per idle connection")
    left.set_xlim(0, max(r.high for r in rss if r) * 1.75)
    left.set_title("server RSS per idle connection")
    left.grid(True, axis="x")
    left.grid(False, axis="y")
    names = [*dict.fromkeys(k for p in parts for k in p), "other"]
    for y, total, part in zip(ys, traced, parts, strict=True):
        start = 0.0
        for name in names:
            width = part.get(name, 0.0) if name != "other" else total - sum(part.values())
            if width > 0:
                right.barh(
                    y,
                    width,
                    0.7,
                    left=start,
                    color=PART_COLOURS.get(name, "#bbbbbb"),
                    label=name,
                    edgecolor="white",
                    linewidth=0.5,
                )
            start += max(width, 0)
        right.annotate(
            f"{fmt(total)}",
            (total, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    right.set_yticks(ys, servers)
    right.set_xlabel("tracemalloc KiB per idle connection")
    right.set_title("what tracemalloc traced, by package")
    right.grid(True, axis="x")
    right.grid(False, axis="y")
    unique_legend(right, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=4)
    return finish(figure, table.title)


def allocation_sites(table: Table) -> Figure:
    """The allocation sites of one server's idle connections."""
    sites = [plain(s) for s in table.first()]
    size = [number(c) for c in table.cells("bytes per conn")]
    blocks = [maybe(c) for c in table.cells("blocks per conn")] if table.has("blocks") else []
    figure, (ax,) = grid(1, 1, 8.2, 0.27 * len(sites) + 0.8)
    ys = list(range(len(sites)))[::-1]
    ax.barh(ys, size, 0.7, color=colour("wstrio"))
    for index, (y, value) in enumerate(zip(ys, size, strict=True)):
        note = f"{value:,.0f} B" + (f" in {blocks[index]:g} blocks" if blocks else "")
        ax.annotate(
            note, (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7
        )
    ax.set_yticks(ys, sites, fontfamily="monospace", fontsize=7)
    ax.set_xlabel("bytes per idle connection")
    ax.set_xlim(0, max(size) * 1.3)
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    return finish(figure, f"{table.title}: {label(table.header[0])}")


def cycles(table: Table) -> Figure:
    """Connection cycles: CPU per cycle, cycles per second, and cycles per second as a
    ratio to before with its range and the target."""
    servers = [plain(s) for s in table.first()]
    figure, (cpu, rate, versus) = grid(3, 3, 2.9, 2.7)
    xs = range(len(servers))
    for ax, name, unit in (
        (cpu, "µs CPU per cycle", "server CPU µs per cycle"),
        (rate, "cycles/s", "cycles per second"),
    ):
        heights = [number(c) for c in table.cells(name)]
        ax.bar(xs, heights, 0.7, color=[colour(s, i) for i, s in enumerate(servers)])
        for x, value in zip(xs, heights, strict=True):
            ax.annotate(fmt(value), (x, value), ha="center", va="bottom", fontsize=6.5)
        ax.set_ylabel(unit)
        ax.set_title(unit)
        ax.set_xticks(xs, servers, rotation=30)
    column = next(c for c in table.header if re.fullmatch(r"\S+ / \S+ \(per-repeat range\)", c))
    ratios = [ratio(c) for c in table.cells(column)]
    for index, (x, r) in enumerate(zip(xs, ratios, strict=True)):
        if r is not None:
            ratio_point(versus, x, r, colour(servers[index], index), "o", None, values=True)
    for x, cell in zip(xs, table.cells("Target") if table.has("Target") else [], strict=False):
        for target in targets(cell):
            target_mark(versus, x, target, 0.35)
    shown = [r for r in ratios if r is not None]
    log_ratio_axis(versus, min(r.low for r in shown), max(r.high for r in shown), "ratio (log)")
    versus.set_xticks(xs, servers, rotation=30)
    versus.set_title(column.replace(" (per-repeat range)", ""))
    versus.grid(False)
    unique_legend(versus, loc="upper left")
    return finish(figure, table.title)


def profile(tables: Sequence[Table], title: str, unit: str | None = None) -> Figure:
    """Where the CPU goes: per table a panel, per column a bar of the top-level rows
    (those in bold) stacked, in µs."""
    figure, axes = grid(
        len(tables), 2 if len(tables) > 1 else 1, 4.3 if len(tables) > 1 else 7, 3.0
    )
    everything: dict[str, Any] = {}
    for ax, table in zip(axes, tables, strict=True):
        top = [row for row in table.rows if row[0].startswith("**")]
        columns = [label(c) for c in table.header[1:]]
        servers = [re.sub(r"\s*µs/\w+$", "", c) for c in columns]
        per = re.search(r"µs/(\w+)", table.header[1])
        shown_unit = unit or (f"server CPU µs per {per[1]}" if per else "server CPU µs")
        for x, _server in enumerate(servers):
            values = [microseconds(row[x + 1]) for row in top]
            total = sum(values)
            start = 0.0
            for row, value in zip(top, values, strict=True):
                part = share(row[x + 1])
                if part is None and total:
                    part = value / total
                name = label(row[0])
                if value <= 0:
                    continue
                bar = ax.bar(
                    x,
                    value,
                    0.65,
                    bottom=start,
                    color=PART_COLOURS.get(name, "#bbbbbb"),
                    edgecolor="white",
                    linewidth=0.5,
                    label=name,
                )
                everything.setdefault(name, bar)
                if part is not None and part >= 0.1:
                    ax.annotate(
                        f"{part:.0%}",
                        (x, start + value / 2),
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if name not in {"h11", "other"} else "black",
                    )
                start += value
            ax.annotate(fmt(total), (x, total), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(servers)), [wrap(s, 12) for s in servers])
        ax.set_ylabel(shown_unit)
        caption = re.match(r"\*\*(.+?)\*\*", table.caption)
        if len(tables) > 1 and caption:
            ax.set_title(caption[1])
    figure.legend(
        list(everything.values()),
        list(everything),
        loc="outside lower center",
        ncols=min(len(everything), 6),
    )
    return finish(figure, title)


def masker(table: Table) -> Figure:
    """µs per call against payload size, one line per implementation (log-log)."""
    from matplotlib.ticker import NullLocator

    sizes = [size_bytes(s) for s in table.first()]
    figure, (ax,) = grid(1, 1, 6.0, 3.0)
    lines = {name: [number(c) for c in table.cells(name)] for name in table.header[1:]}
    for index, (name, values) in enumerate(lines.items()):
        ax.plot(
            sizes,
            values,
            marker=RATIO_MARKERS[index],
            color=OTHER_COLOURS[index],
            label=plain(name),
        )
        for at, (x, y) in enumerate(zip(sizes, values, strict=True)):
            highest = y >= max(v[at] for v in lines.values())
            ax.annotate(
                plain(table.cells(name)[at]),
                (x, y),
                xytext=(0, 5 if highest else -6),
                textcoords="offset points",
                ha="center",
                va="bottom" if highest else "top",
                fontsize=6.5,
                color=OTHER_COLOURS[index],
            )
    ax.set_xscale("log", base=2)
    plain_log(ax)
    ax.set_xticks(sizes, [plain(s) for s in table.first()])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(f"{label(table.header[0]).lower()} (log)")
    ax.set_ylabel("µs per call (log)")
    ax.legend(loc="upper left")
    return finish(figure, f"{table.title}: unmasking")


def ratio_runs(table: Table, limits: dict[str, list[Target]]) -> Figure:
    """One ratio per run (rows) and workload (columns), as lines over the runs, with the
    workloads' targets."""
    workloads = [c for c in table.header if re.match(r"\d+\s*(B|KiB)", c)]
    runs = [f"{plain(r[0]).split()[0]}\n{wrap(plain(r[1]), 10)}" for r in table.rows]
    figure, (ax,) = grid(1, 1, 8.2, 3.2)
    for index, name in enumerate(workloads):
        values = [number(c) for c in table.cells(name)]
        ax.plot(
            range(len(runs)),
            values,
            marker=RATIO_MARKERS[index % len(RATIO_MARKERS)],
            color=OTHER_COLOURS[index],
            label=name,
        )
    by_value: dict[tuple[str, float], list[str]] = {}
    for name in workloads:
        for target in limits.get(name, []):
            by_value.setdefault((target.sign, target.value), []).append(name)
    for (sign, value), names in by_value.items():
        ax.axhline(value, color=TARGET_COLOUR, linestyle="--", linewidth=1)
        ax.annotate(
            f"target {sign} {value:g}: {', '.join(names)}",
            (len(runs) - 1, value),
            xytext=(0, 3),
            textcoords="offset points",
            ha="right",
            fontsize=6.5,
            color=TARGET_COLOUR,
        )
    ax.set_xticks(range(len(runs)), runs, fontsize=7)
    ax.set_xlabel(f"{label(table.header[0])}, {label(table.header[1])}")
    ax.set_ylabel("wstrio / bare, CPU per message")
    ax.set_ylim(0, None)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=len(workloads))
    return finish(figure, f"{table.title}: every run of the day")


def ratio_table(table: Table, ylabel: str) -> Figure:
    """A table of ratios, one column per run: grouped bars per row, 1 drawn."""
    rows = [label(r) for r in table.first()]
    runs = list(table.header[1:])
    figure, (ax,) = grid(1, 1, 7.0, 2.8)
    series = {plain(r).split(",")[-1].strip(): [number(c) for c in table.cells(r)] for r in runs}
    bars(
        ax,
        rows,
        series,
        colours=RUN_COLOURS[1 : len(series) + 1],
        values=True,
        text="{:.2f}".format,
    )
    ax.axhline(1, color="#444444", linewidth=0.9)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", ncols=len(series))
    return finish(figure, table.title)


def breakdown(table: Table) -> Figure:
    """One measured quantity per row (its first number column) with its share."""
    names = [plain(r) for r in table.first()]
    cells = table.cells(table.header[1])
    values = [number(c) for c in cells]
    shares = table.cells(table.header[2]) if len(table.header) > 2 else []
    figure, (ax,) = grid(1, 1, 8.2, 0.3 * len(names) + 1.0)
    ys = list(range(len(names)))[::-1]
    ax.barh(ys, values, 0.7, color=colour("wstrio"))
    for index, (y, value) in enumerate(zip(ys, values, strict=True)):
        share = f" ({plain(shares[index])})" if shares else ""
        ax.annotate(
            f"{plain(cells[index])}{share}",
            (value, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(ys, [wrap(n, 48) for n in names], fontsize=7.5)
    ax.set_xlabel(plain(table.header[1]))
    ax.set_xlim(0, max(values) * 1.25)
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    return finish(figure, table.title)


def paired_ratios(table: Table) -> Figure:
    """Cells ``a (b)`` read as two servers' ratios, named in the first header
    (``wstrio / bare (websockets / bare)``); one panel per column."""
    names = re.findall(r"([\w-]+) / ([\w-]+)", table.header[0])
    servers = [n[0] for n in names]
    baseline = names[0][1]
    columns = list(table.header[1:])
    conditions = [wrap(label(c), 20) for c in table.first()]
    figure, axes = grid(len(columns), len(columns), 4.0, 3.0)
    for ax, name in zip(axes, columns, strict=True):
        cells = [re.findall(_NUMBER, plain(c)) for c in table.cells(name)]
        series = {s: [float(c[i]) for c in cells] for i, s in enumerate(servers)}
        bars(ax, conditions, series, values=True, text="{:.2f}".format)
        ax.axhline(1, color="#444444", linewidth=0.9)
        ax.set_title(f"{plain(name)} messages")
        ax.set_ylabel(f"CPU per delivery / {baseline}'s")
        ax.tick_params(axis="x", labelsize=7)
    server_legend(figure, servers)
    return finish(figure, f"{table.title}: against the {baseline} hub (1), other settings")


# -- the page's figures -------------------------------------------------------------------

ISSUE_11 = "Broadcast encoded once"
NATIVE = "The native engine"
ECHO = "Echo: server CPU per message, wstrio vs. bare"
BROADCAST = "Broadcast: server CPU per delivery"


def _echo_targets(tables: Sequence[Table]) -> dict[str, list[Target]]:
    (results,) = find(tables, ECHO, "Results", ["Workload", "Target"])
    return {
        label(w): targets(t) for w, t in zip(results.first(), results.cells("Target"), strict=True)
    }


#: File name in docs/img/ and how to draw it from the page's tables.
FIGURES: dict[str, Callable[[Sequence[Table]], Figure]] = {
    "broadcast-cpu.svg": lambda t: broadcast(
        find(t, ISSUE_11, columns=["Message", "CPU µs/delivery"])[0]
    ),
    "echo-native-cpu.svg": lambda t: echo(
        find(t, NATIVE, "Echo: server CPU", ["Workload", "wstrio µs/msg"])[0]
    ),
    "echo-native-rate.svg": lambda t: echo(
        find(t, NATIVE, "Echo: server CPU", ["Workload", "wstrio msg/s"])[0]
    ),
    "echo-native-targets.svg": lambda t: target_runs(
        find(t, NATIVE, "Echo: server CPU", ["Target", "Met?"])[0]
    ),
    "connections-memory.svg": lambda t: memory(
        find(t, NATIVE, "Memory per idle", ["Server", "RSS KiB"])[0]
    ),
    "connections-allocations.svg": lambda t: allocation_sites(
        find(t, NATIVE, "Memory per idle", ["bytes per conn"])[0]
    ),
    "connections-cycles.svg": lambda t: cycles(
        find(t, NATIVE, "Connection cycles", ["Server", "cycles/s"])[0]
    ),
    "echo-native-profile.svg": lambda t: profile(
        find(t, NATIVE, "Where the remaining CPU", ["Where"], count=4),
        "Where the servers' CPU goes (one sampled window each; bold rows of the tables)",
    ),
    "echo-native-masking.svg": lambda t: masker(
        find(t, NATIVE, "Where the remaining CPU", ["Payload"])[0]
    ),
    "echo-latest.svg": lambda t: echo(find(t, ECHO, "Latest run", ["Workload"])[0]),
    "echo-results.svg": lambda t: echo(find(t, ECHO, "Results", ["Workload"])[0]),
    "echo-runs.svg": lambda t: ratio_runs(
        find(t, ECHO, "Results", ["Run (UTC)"])[0], _echo_targets(t)
    ),
    "echo-equal-buffers.svg": lambda t: ratio_table(
        find(t, ECHO, "Equal receive buffers", ["Workload"])[0], "wstrio / bare, CPU per message"
    ),
    "echo-gap.svg": lambda t: breakdown(find(t, ECHO, "Where wstrio's extra", ["Where"])[0]),
    "broadcast-hub.svg": lambda t: broadcast(find(t, BROADCAST, "Results", ["Message"])[0]),
    "broadcast-hub-gc.svg": lambda t: paired_ratios(
        find(t, BROADCAST, "Results", ["wstrio / bare (websockets / bare)"])[0]
    ),
    "broadcast-hub-profile.svg": lambda t: profile(
        find(t, BROADCAST, "Results", ["Where"]),
        "Where the broadcast servers' CPU goes (sampled; bold rows of the table)",
        unit="server CPU µs per delivery",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=PAGE, help="the page whose tables to draw")
    parser.add_argument("--output-dir", type=Path, help=f"where they go (default: {IMAGES})")
    parser.add_argument(
        "--format",
        default="svg",
        choices=["svg", "png"],
        help="png to look at them elsewhere (needs --output-dir; the page shows the SVGs)",
    )
    parser.add_argument("names", nargs="*", help="draw only these figures (default: all)")
    args = parser.parse_args(argv)
    if args.output_dir is None:
        if args.format != "svg":
            parser.error("--format png needs --output-dir: the page shows the SVGs")
        args.output_dir = IMAGES
    text = args.page.read_text()
    tables = read_tables(text)
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        parser.error(f"no figure {', '.join(unknown)}; there are {', '.join(FIGURES)}")
    for name, draw in FIGURES.items():
        if args.names and name not in args.names:
            continue
        path = args.output_dir / Path(name).with_suffix(f".{args.format}")
        save(draw(tables), path)
        print(f"wrote {path}")
        if f"img/{name}" not in text:
            print(f"warning: {args.page.name} does not show img/{name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
