"""wstrio's own endpoints, ``/healthz`` and ``/metrics``, rendered from ServerStatistics."""

from __future__ import annotations

import json
from collections.abc import Callable

from .._conn.stats import ServerStatistics


def builtin_answer(
    reply: Callable[..., bytes],
    path: str,
    statistics: Callable[[], ServerStatistics],
    *,
    stopping: bool,
) -> bytes:
    """The response of ``/healthz`` or ``/metrics``, through ``reply(status, body, ...)``."""
    if path == "/healthz":
        body = health_json(statistics(), stopping=stopping)
        return reply(503 if stopping else 200, body, content_type="application/json")
    return reply(200, prometheus_text(statistics()), content_type=PROMETHEUS_CONTENT_TYPE)


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def health_json(stats: ServerStatistics, *, stopping: bool) -> bytes:
    """The /healthz body: status, open connections, uptime in seconds."""
    body = {
        "status": "stopping" if stopping else "ok",
        "open_connections": stats.open_connections,
        "uptime": round(stats.uptime, 3),
    }
    return json.dumps(body).encode() + b"\n"


def prometheus_text(stats: ServerStatistics) -> bytes:
    """The /metrics body in Prometheus text exposition format 0.0.4."""
    lines: list[str] = []
    described: set[str] = set()

    def describe(name: str, kind: str, help_text: str) -> None:
        if name not in described:
            described.add(name)
            lines.append(f"# HELP wstrio_{name} {help_text}")
            lines.append(f"# TYPE wstrio_{name} {kind}")

    def metric(name: str, kind: str, help_text: str, value: float, labels: str = "") -> None:
        describe(name, kind, help_text)
        lines.append(f"wstrio_{name}{labels} {value}")

    metric("open_connections", "gauge", "WebSocket sessions open now.", stats.open_connections)
    metric("handshakes_in_progress", "gauge", "Connections not yet upgraded.", stats.handshakes)
    metric(
        "connections_total", "counter", "WebSocket sessions since start.", stats.connections_total
    )
    metric("messages_received_total", "counter", "Messages received.", stats.messages_in)
    metric("messages_sent_total", "counter", "Messages sent.", stats.messages_out)
    metric("bytes_received_total", "counter", "Payload bytes received.", stats.bytes_in)
    metric("bytes_sent_total", "counter", "Payload bytes sent.", stats.bytes_out)
    metric("handler_errors_total", "counter", "Handlers that raised.", stats.handler_errors)
    metric(
        "slow_consumer_drops_total",
        "counter",
        "Messages dropped for slow consumers.",
        stats.slow_consumer_drops,
    )
    metric(
        "slow_consumer_closes_total",
        "counter",
        "Sessions closed with 1008 as slow consumers.",
        stats.slow_consumer_closes,
    )
    metric("http_requests_total", "counter", "Plain HTTP requests answered.", stats.http_requests)
    describe("closes_total", "counter", "Finished sessions by close code.")
    for code, count in sorted(stats.closes_by_code.items()):
        metric("closes_total", "counter", "", count, f'{{code="{code}"}}')
    metric("uptime_seconds", "gauge", "Seconds since the server started.", round(stats.uptime, 3))
    return ("\n".join(lines) + "\n").encode()
