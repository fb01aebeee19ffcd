"""wstrio's own endpoints: ``/healthz`` from ServerStatistics, ``/metrics`` from the registry.

Theory of operation: a :class:`Health` travels beside the statistics. It says
which worker process answers (``serve_workers`` sets it; None in a single
process, and then both endpoints look as they always did) and holds the
application's health checks, each asked at every ``/healthz``: any reason they
give turns ``"ok"`` into ``"degraded"``, still HTTP 200 (a degraded server still
serves its local traffic); only a stopping server answers 503.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from .._conn.logfields import get_logger
from .._conn.stats import ServerStatistics
from .metrics import CONTENT_TYPE, render

logger = get_logger("wstrio.server")

#: A health check: None while its dependency is fine, else a one-line reason.
HealthCheck = Callable[[], "str | None"]


class Health:
    """Which worker answers, and the checks that say whether the server is degraded."""

    def __init__(self) -> None:
        self.worker: int | None = None  # the worker number under serve_workers, else None
        self.checks: list[HealthCheck] = []

    def reasons(self) -> list[str]:
        """What each failing check says (a check that raises says that it raised)."""
        reasons = []
        for check in self.checks:
            try:
                reason = check()
            except Exception as exc:  # a broken check is a degraded server, not a 500
                logger.exception("health check %r raised", check)
                reason = f"health check {check!r} raised {exc!r}"
            if reason is not None:
                reasons.append(" ".join(str(reason).split()) or "degraded")
        return reasons


def builtin_answer(
    reply: Callable[..., bytes],
    path: str,
    statistics: Callable[[], ServerStatistics],
    registry: CollectorRegistry,
    health: Health,
    *,
    stopping: bool,
) -> bytes:
    """The response of ``/healthz`` or ``/metrics``, through ``reply(status, body, ...)``."""
    if path == "/healthz":
        body = health_json(statistics(), health, stopping=stopping)
        return reply(503 if stopping else 200, body, content_type="application/json")
    return reply(200, render(registry, health.worker), content_type=CONTENT_TYPE)


def health_json(stats: ServerStatistics, health: Health, *, stopping: bool) -> bytes:
    """The /healthz body: status, open connections, uptime in seconds; under workers, the
    worker number and its pid; when degraded, the reasons."""
    reasons = [] if stopping else health.reasons()
    body: dict[str, object] = {
        "status": "stopping" if stopping else "degraded" if reasons else "ok",
        "open_connections": stats.open_connections,
        "uptime": round(stats.uptime, 3),
    }
    if health.worker is not None:
        body |= {"worker": health.worker, "pid": os.getpid()}
    if reasons:
        body["reasons"] = reasons
    return json.dumps(body).encode() + b"\n"
