"""What a bus has done, as plain data."""

from __future__ import annotations

import attrs


@attrs.frozen
class BusStatistics:
    """What a bus has done: commands queued now, published, received, dropped (the buffer
    was full), times it lost Redis, and whether it is connected (else why not)."""

    connected: bool
    buffered: int
    published: int
    received: int
    dropped: int
    outages: int
    down_reason: str | None
