"""``/metrics`` through ``prometheus_client``: wstrio's figures beside the application's own.

Theory of operation: a server owns a ``CollectorRegistry`` (``Server.registry``;
by default a fresh one with the process, platform and garbage-collector
collectors, or the one the application passes). wstrio registers one
collector that reads :meth:`Server.statistics` and the admission's histograms
when scraped, so nothing is counted twice and nothing costs anything between
scrapes; an application registers its own metrics in the same registry and
``/metrics`` shows them all. Under ``serve_workers`` every sample gets a
``worker`` label at rendering (a scrape reaches one worker, whichever accepts
it); a single process renders its samples unlabelled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, exposition, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from .._conn.stats import Buckets, ServerStatistics

#: Prometheus text format 0.0.4, which every Prometheus reads (newer clients default to 1.0.0).
CONTENT_TYPE: str = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)


def new_registry() -> CollectorRegistry:
    """A registry with process, platform and GC metrics, as the default global one has."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class ServerCollector(Collector):
    """wstrio's metrics, read from the server at each scrape."""

    def __init__(
        self,
        statistics: Callable[[], ServerStatistics],
        message_sizes: Buckets,
        handshake_seconds: Buckets,
    ) -> None:
        self._statistics = statistics
        self._sizes = message_sizes
        self._handshakes = handshake_seconds

    def collect(self) -> Iterator[Metric]:
        stats = self._statistics()
        yield GaugeMetricFamily(
            "wstrio_open_connections", "WebSocket sessions open now.", stats.open_connections
        )
        yield GaugeMetricFamily(
            "wstrio_handshakes_in_progress", "Connections not yet upgraded.", stats.handshakes
        )
        yield GaugeMetricFamily(
            "wstrio_busiest_address_connections",
            "Sessions and upgrades of the client address with the most now.",
            stats.busiest_address,
        )
        counters = (
            ("connections", "WebSocket sessions since start.", stats.connections_total),
            ("messages_received", "Messages received.", stats.messages_in),
            ("messages_sent", "Messages sent.", stats.messages_out),
            ("bytes_received", "Payload bytes received.", stats.bytes_in),
            ("bytes_sent", "Payload bytes sent.", stats.bytes_out),
            ("handler_errors", "Handlers that raised.", stats.handler_errors),
            ("slow_consumer_drops", "Broadcasts dropped for slow members.",
             stats.slow_consumer_drops),
            ("slow_consumer_closes", "Sessions closed with 1008 as slow consumers.",
             stats.slow_consumer_closes),
            ("http_requests", "Plain HTTP requests answered.", stats.http_requests),
            ("rate_limited", "Messages over max_messages_per_second (dropped, or closing).",
             stats.rate_limited),
            ("rate_limit_closes", "Sessions closed with 1008 rate limit.",
             stats.rate_limit_closes),
            ("frame_timeouts", "Sessions closed with 1008 frame timeout.", stats.frame_timeouts),
            ("per_ip_refusals", "Upgrades refused with 503 past max_connections_per_ip.",
             stats.per_ip_refusals),
        )  # fmt: skip
        for name, help_text, value in counters:
            yield CounterMetricFamily(f"wstrio_{name}", help_text, value)
        closes = CounterMetricFamily(
            "wstrio_closes", "Finished sessions by close code.", labels=["code"]
        )
        for code, count in sorted(stats.closes_by_code.items()):
            closes.add_metric([str(code)], count)
        yield closes
        yield GaugeMetricFamily(
            "wstrio_uptime_seconds", "Seconds since the server started.", round(stats.uptime, 3)
        )
        yield _histogram(
            "wstrio_message_size_bytes", "Sizes of received messages, in bytes.", self._sizes
        )
        yield _histogram(
            "wstrio_handshake_seconds",
            "Opening handshakes: request read to 101 sent, the hook included.",
            self._handshakes,
        )


def _histogram(name: str, help_text: str, buckets: Buckets) -> HistogramMetricFamily:
    pairs = buckets.cumulative()
    return HistogramMetricFamily(
        name,
        help_text,
        buckets=[(_le(bound), count) for bound, count in pairs],
        sum_value=buckets.total,
    )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def render(registry: CollectorRegistry, worker: int | None = None) -> bytes:
    """The registry in Prometheus text format 0.0.4; with ``worker``, every sample is labelled
    ``worker="N"`` (unless it has a ``worker`` label of its own)."""
    if worker is None:
        return generate_latest(registry)
    return generate_latest(_Labelled(registry, str(worker)))


class _Labelled(Collector):
    """What ``generate_latest`` reads: the registry's metrics, each sample labelled."""

    def __init__(self, registry: CollectorRegistry, worker: str) -> None:
        self._registry = registry
        self._worker = worker

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [
                sample if "worker" in sample.labels
                else Sample(sample.name, {**sample.labels, "worker": self._worker}, *sample[2:])
                for sample in family.samples
            ]  # fmt: skip
            yield labelled
