"""Fixtures every folder of the suite may use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wstrio.testing import RedisServer

ENGINES = ("native", "trio-websocket")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each test that takes ``engine`` runs once per WebSocket engine."""
    return str(request.param)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (a unix socket in the test's tmp dir), stopped after."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
