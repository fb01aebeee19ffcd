from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redisproc import RedisProcess


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, stopped afterwards."""
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()
