"""wstrio's own endpoints: ``/healthz`` from ServerStatistics, ``/metrics`` from the registry."""

from __future__ import annotations

import json
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from .._conn.stats import ServerStatistics
from .metrics import CONTENT_TYPE, render


def builtin_answer(
    reply: Callable[..., bytes],
    path: str,
    statistics: Callable[[], ServerStatistics],
    registry: CollectorRegistry,
    *,
    stopping: bool,
) -> bytes:
    """The response of ``/healthz`` or ``/metrics``, through ``reply(status, body, ...)``."""
    if path == "/healthz":
        body = health_json(statistics(), stopping=stopping)
        return reply(503 if stopping else 200, body, content_type="application/json")
    return reply(200, render(registry), content_type=CONTENT_TYPE)


def health_json(stats: ServerStatistics, *, stopping: bool) -> bytes:
    """The /healthz body: status, open connections, uptime in seconds."""
    body = {
        "status": "stopping" if stopping else "ok",
        "open_connections": stats.open_connections,
        "uptime": round(stats.uptime, 3),
    }
    return json.dumps(body).encode() + b"\n"
