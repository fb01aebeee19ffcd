"""The tables of bench/broadcast.py: medians and ratios, the hub's counters, frame encoding."""

from __future__ import annotations

import statistics
import timeit
from typing import TYPE_CHECKING, Any

from bench import harness
from bench.harness import size_name

if TYPE_CHECKING:
    from bench.broadcast import Measurement

BASELINE = "bare"
MEDIANS = (
    "us_per_delivery",
    "gc_us_per_delivery",
    "gc_share",
    "deliveries_per_second",
    "latency_p50_us",
    "latency_p99_us",
    "round_p50_us",
    "wire_bytes_per_delivery",
)


def summarize(
    measurements: list[Measurement], sizes: list[int], kinds: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Per size and server: medians, and ratios against the baseline (bare)."""
    rows = []
    for size in sizes:
        runs = {k: [m for m in measurements if (m.size, m.server) == (size, k)] for k in kinds}
        med = {
            k: {name: statistics.median(getattr(m, name) for m in ms) for name in MEDIANS}
            for k, ms in runs.items()
        }
        base = med[BASELINE]
        before = med.get("before")
        for kind in kinds:
            ms = runs[kind]
            rows.append(
                {
                    "size": size,
                    "server": kind,
                    "runs": len(ms),
                    **med[kind],
                    "cpu_ratio": med[kind]["us_per_delivery"] / base["us_per_delivery"],
                    # Repeat r of each server ran in the same rotation: pair them.
                    "paired_cpu_ratios": harness.paired_ratios(
                        ms, runs[BASELINE], lambda m: m.us_per_delivery
                    ),
                    "cpu_vs_before": None
                    if before is None
                    else med[kind]["us_per_delivery"] / before["us_per_delivery"],
                    "gc_vs_before": None
                    if before is None or not before["gc_us_per_delivery"]
                    else med[kind]["gc_us_per_delivery"] / before["gc_us_per_delivery"],
                    "rate_ratio": med[kind]["deliveries_per_second"]
                    / base["deliveries_per_second"],
                    "server_cpu_share_min": min(m.server_cpu_share for m in ms),
                    **harness.extremes(ms),
                    "broadcasts_median": statistics.median(m.broadcasts for m in ms),
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]], clients: int) -> str:
    header = ["Message", "Server", "deliveries/s", "CPU µs/delivery", "of which GC"]
    header += ["CPU vs bare (per-repeat range)", "CPU vs before", "wire bytes/delivery"]
    header += ["deliveries/s vs bare", "latency p50"]
    header += ["latency p99", f"broadcast to all {clients}"]
    cells = []
    for row in rows:
        paired = row["paired_cpu_ratios"]
        spread = ""
        if row["server"] != BASELINE and len(paired) > 1:
            spread = f" ({min(paired):.2f}-{max(paired):.2f})"
        baseline = row["server"] == BASELINE
        cells.append(
            [
                f"{size_name(row['size'])} text",
                row["server"],
                f"{row['deliveries_per_second']:,.0f}",
                f"{row['us_per_delivery']:.1f}",
                f"{row['gc_us_per_delivery']:.1f} ({row['gc_share']:.0%})",
                "1 (baseline)" if baseline else f"{row['cpu_ratio']:.2f}{spread}",
                "" if row["cpu_vs_before"] is None else f"{row['cpu_vs_before']:.2f}",
                f"{row['wire_bytes_per_delivery']:.1f}",
                "1" if baseline else f"{row['rate_ratio']:.2f}",
                f"{row['latency_p50_us'] / 1e3:.1f} ms",
                f"{row['latency_p99_us'] / 1e3:.1f} ms",
                f"{row['round_p50_us'] / 1e3:.1f} ms",
            ]
        )
    lines = harness.table(header, ["---", "---", *["---:"] * 10], cells)
    lines.append("")
    lines.append(
        "Server on CPU 0 at least "
        f"{min(r['server_cpu_share_min'] for r in rows):.0%} of every window; load generator"
        f" at most {max(r['loadgen_cpu_share_max'] for r in rows):.0%} of CPU 1. Other work,"
        f" at most: {max(r['cpu0_other_share_max'] for r in rows):.0%} of CPU 0,"
        f" {max(r['cpu1_other_share_max'] for r in rows):.0%} of CPU 1."
    )
    return "\n".join(lines)


def hub_line(wstrio_runs: list[Measurement], outbox_size: int) -> str:
    """What wstrio's hub counted after its last run, and whether members were even."""
    hub = wstrio_runs[-1].server_stats["hub"]
    even = all(
        m.server_stats["member_messages_out_min"] == m.server_stats["member_messages_out_max"]
        for m in wstrio_runs
    )
    return (
        f"wstrio hub after {len(wstrio_runs)} runs (outbox_size {outbox_size}): "
        f"{hub['broadcasts']:,} broadcasts, {hub['deliveries']:,} deliveries, "
        f"drops {hub['drops']}, slow_closes {hub['slow_closes']}; every member had sent "
        f"as many messages as the others at the end of each run: {'yes' if even else 'NO'}"
    )


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
            timings[name] = 1e6 * min(timer.repeat(repeat=7, number=number)) / number
        rows.append(
            {
                "size": size,
                "frame_bytes": len(frame),
                "wsproto_send_us": timings["wsproto_send"],
                "utf8_encode_us": timings["utf8_only"],
            }
        )
    return rows


def encoding_text(encoding: list[dict[str, Any]]) -> str:
    lines = ["wsproto, one text frame (server side, best of 7):"]
    for e in encoding:
        lines.append(
            f"  {size_name(e['size'])}: {e['wsproto_send_us']:.2f} µs per "
            f"WSConnection.send(TextMessage) ({e['utf8_encode_us']:.2f} µs of it str.encode)"
        )
    return "\n".join(lines)
