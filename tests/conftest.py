"""Fixtures every folder of the suite may use."""

from __future__ import annotations

import pytest

ENGINES = ("native", "trio-websocket")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each test that takes ``engine`` runs once per WebSocket engine."""
    return str(request.param)
