"""What ``wstrio bench`` reports: error kinds, percentiles and the table for people."""

from __future__ import annotations

import errno
import math
from typing import Any

from .._conn.errors import HandshakeRejected, HandshakeTimeout
from . import common as cli


def error_kind(exc: BaseException) -> str:
    """The error-count key of a failed connection attempt."""
    if isinstance(exc, HandshakeRejected):
        return f"http {exc.status_code}"
    if isinstance(exc, HandshakeTimeout):
        return "connect timeout"
    code = getattr(exc, "errno", None)
    return f"connect {errno.errorcode.get(code, code)}" if code else "connect error"


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def table(report: dict[str, Any]) -> str:
    """The report as a table for people."""
    rate = report["rate"]
    rows = [
        ("url", report["url"]),
        ("connections", f"{report['connections']} ({report['sessions']} sessions opened)"),
        ("duration", f"{report['duration']:.2f} s" + " (interrupted)" * report["interrupted"]),
        ("size", f"{report['size']} bytes"),
        ("rate", f"{rate:g}/s per connection" if rate else "closed loop (wait for each echo)"),
        ("messages", f"{report['messages']:,}"),
        ("messages/s", f"{report['messages_per_second']:,.1f}"),
    ]
    for key, value in report["latency_ms"].items():
        rows.append((f"latency {key}", "-" if value is None else cli.format_ms(value / 1000)))
    errors = [f"{count:>6,}  {kind}" for kind, count in report["errors"].items()] or ["none"]
    rows.extend(("" if i else "errors", line) for i, line in enumerate(errors))
    return "\n".join(f"{name:<13} {value}" for name, value in rows)
