"""``/dashboard``: live plots of a server's figures, fed by a WebSocket once a second.

``Config.dashboard=True`` (``python -m wstrio serve`` turns it on) adds two
routes: ``/dashboard``, a self-contained page (no CDN: it draws on a canvas),
and ``/dashboard/ws``, which sends :meth:`Server.statistics` as JSON every
``interval`` seconds until the page goes away. The page turns the counters
into rates (messages, bytes and handshakes per second) and keeps the last
three minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

import attrs
import trio

from .._conn.session import Session
from .._conn.stats import ServerStatistics
from .routes import Route, Static

PAGE_PATH = "/dashboard"
STREAM_PATH = "/dashboard/ws"


def snapshot(stats: ServerStatistics) -> dict[str, Any]:
    """The figures the page plots: the statistics as JSON-ready values (codes as strings)."""
    figures = attrs.asdict(stats)
    figures["closes_by_code"] = {str(code): n for code, n in sorted(stats.closes_by_code.items())}
    figures["uptime"] = round(stats.uptime, 3)
    return figures


def dashboard_routes(
    statistics: Callable[[], ServerStatistics], interval: float = 1.0
) -> dict[str, Route | Static]:
    """The page and its statistics stream, for a server's routes."""

    async def stream(session: Session) -> None:
        while True:
            await session.send_json(snapshot(statistics()))
            with trio.move_on_after(interval):
                async for _ in session:  # the page sends nothing; this notices it leave
                    pass
                return

    page = resources.files("wstrio").joinpath("static/dashboard.html").read_bytes()
    return {PAGE_PATH: Static(page), STREAM_PATH: Route(stream, accepts="text")}
