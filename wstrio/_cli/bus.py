"""``serve --redis URL``: the built-in chat's bus, and running it around the server."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import urllib.parse
from collections.abc import AsyncIterator

from .._bus.redis import RedisBus
from .._server import Server


def bus_of(args: argparse.Namespace) -> RedisBus | None:
    """The Redis bus ``--redis`` asks for; ValueError for a usage error."""
    if args.redis is None:
        if args.redis_optional:
            raise ValueError("--redis-optional goes with --redis URL")
        return None
    if args.app is not None:
        raise ValueError("--redis shares the built-in chat's rooms; an APP makes its own"
                         " wstrio.RedisBus")  # fmt: skip
    if urllib.parse.urlsplit(args.redis).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"--redis {args.redis}: a Redis URL starts with redis://, rediss://"
                         " or unix://")  # fmt: skip
    if importlib.util.find_spec("coredis") is None:
        raise ValueError("--redis needs the redis extra: pip install 'wstrio[redis]'")
    return RedisBus(args.redis, optional=args.redis_optional)


@contextlib.asynccontextmanager
async def carrying(bus: RedisBus | None, server: Server) -> AsyncIterator[None]:
    """Run ``bus`` (if any) around serving, shown in ``server``'s /healthz and /metrics."""
    if bus is None:
        yield
        return
    bus.install(server)
    async with bus:
        yield
