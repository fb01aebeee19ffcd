"""Worker pools as real processes: ``python -m wstrio serve --workers N`` on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from workerpool import Pool, open_pool

StartPool = Callable[..., Awaitable[Pool]]


@pytest.fixture
async def start_pool(tmp_path: Path) -> AsyncIterator[StartPool]:
    """``await start_pool(*options)``: a pool of ``serve --port 0 OPTIONS``, once it serves.
    Whatever is still running at the end of the test is killed."""
    pools: list[Pool] = []

    async def start(*options: str) -> Pool:
        pool = await open_pool(tmp_path / f"pool-{len(pools)}.log", *options)
        pools.append(pool)
        return pool

    try:
        yield start
    finally:
        for pool in pools:
            if pool.proc.returncode is None:
                pool.proc.kill()
                await pool.proc.wait()
