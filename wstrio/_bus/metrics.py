"""The bus's figures in ``/metrics`` and its state in ``/healthz``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .stats import BusStatistics


class Watched(Protocol):
    """What :func:`install` needs of a server (a :class:`wstrio.Server`)."""

    @property
    def registry(self) -> CollectorRegistry: ...

    def add_health_check(self, check: Callable[[], str | None]) -> None: ...


class BusCollector(Collector):
    """Read ``statistics()`` at each scrape."""

    def __init__(self, statistics: Callable[[], BusStatistics]) -> None:
        self._statistics = statistics

    def collect(self) -> Iterator[Metric]:
        stats = self._statistics()
        yield GaugeMetricFamily(
            "wstrio_bus_connected", "1 while Redis answers, 0 while degraded.", stats.connected
        )
        yield GaugeMetricFamily(
            "wstrio_bus_buffered", "Commands queued for Redis now.", stats.buffered
        )
        for name, value, text in (
            ("published", stats.published, "Messages handed to the bus for other processes."),
            ("received", stats.received, "Messages that came from other processes."),
            ("dropped", stats.dropped, "Commands dropped, oldest first, with the buffer full."),
            ("outages", stats.outages, "Times the bus lost Redis."),
        ):
            yield CounterMetricFamily(f"wstrio_bus_{name}", text, value)


def install(
    statistics: Callable[[], BusStatistics], health: Callable[[], str | None], server: Watched
) -> None:
    """Show a bus's ``statistics()`` in ``server``'s ``/metrics`` (``wstrio_bus_*``) and have
    ``/healthz`` report "degraded" with ``health()``'s reason while it gives one."""
    server.registry.register(BusCollector(statistics))
    server.add_health_check(health)
