from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wstrio.testing import RedisServer


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, stopped afterwards."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
