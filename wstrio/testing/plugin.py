"""The wstrio pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, for pytest-trio tests:

* ``wstrio_routes``: the routes to serve; override it in your test module or
  ``conftest.py`` (the default fails with a message saying so);
* ``wstrio_config``: the server's :class:`wstrio.Config` (default ``Config()``);
* ``wstrio_server``: a running :class:`wstrio.testing.MemoryServer` for them.
  It uses no sockets, so it works with pytest-trio's ``autojump_clock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .._conn.config import Config
from .._http.routes import Routes
from . import MemoryServer, open_memory_server


@pytest.fixture
def wstrio_routes() -> Routes:
    """The routes ``wstrio_server`` serves: override this fixture."""
    pytest.fail("define a `wstrio_routes` fixture returning the routes to serve", pytrace=False)


@pytest.fixture
def wstrio_config() -> Config:
    """The Config ``wstrio_server`` runs with: override to change it."""
    return Config()


@pytest.fixture
async def wstrio_server(
    wstrio_routes: Routes, wstrio_config: Config
) -> AsyncIterator[MemoryServer]:
    """A wstrio server over in-memory streams: ``async with wstrio_server.connect(path)``."""
    async with open_memory_server(wstrio_routes, config=wstrio_config) as server:
        yield server
