"""``RedisBus``: a hub's rooms across processes and hosts, through Redis (coredis).

Theory of operation
-------------------
The hub calls the bus without waiting; the bus does the Redis work from four
tasks under ``run``:

* the *publisher* sends queued commands in order (publishes, presence
  changes). The queue is bounded (``buffer``): past it the oldest command is
  dropped and counted. A failed command stays first in the queue and is
  retried with backoff, so nothing is sent twice or out of order;
* the *reader* takes pub/sub messages and hands them to the hub. A room with
  history publishes through one Lua script (XADD then PUBLISH), so its stream
  and its channel agree on one order; the reader remembers the last stream
  entry it delivered per room, and whenever Redis confirms a (re)subscription
  it reads the stream from there first: a Redis restart loses no message the
  history still holds, and none is delivered twice;
* the *subscriber* follows the rooms that have members here (coredis
  re-subscribes by itself after a reconnect);
* the *watcher* pings Redis each ``check_interval`` and refreshes this
  process's presence entries (each expires ``presence_ttl`` seconds after its
  last refresh, so a killed process's members disappear within that bound).

While Redis is unreachable the bus is *degraded*: ``connected`` is False, the
hub delivers locally at once, ``/healthz`` says why (:meth:`install`), and the
publisher keeps retrying. Nothing raises into handlers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._rooms.bus import Envelope, Receiver
from .._rooms.history import Entry, new_origin
from .metrics import Watched, install
from .outage import RETRY_CAP, RETRY_FIRST, BusUnavailable, is_outage, reason
from .stats import BusStatistics
from .subscriber import Subscriptions
from .wire import (
    PRESENCE,
    PUBLISH_KEPT,
    Keys,
    entry_of,
    fields_of,
    plain_payload,
    split_message,
    stream_order,
    text_of,
)

logger = logging.getLogger("wstrio.bus")

if TYPE_CHECKING:
    import coredis


Command = Callable[["coredis.Redis[bytes]"], Awaitable[object]]


class RedisBus:
    """Rooms across processes through Redis: ``Hub(bus=RedisBus("redis://host:6379"))``,
    then ``await nursery.start(bus.run)`` before serving.

    ``buffer``: commands queued while Redis is slow or down (past it the oldest are
    dropped and counted); ``presence_ttl``: seconds a member of a killed process stays
    listed; ``check_interval``: seconds between health pings; ``connect_timeout``:
    seconds to reach Redis at start; ``optional``: start even if Redis is down
    (degraded) instead of raising :class:`BusUnavailable`; ``prefix``: of every key.
    Needs the ``redis`` extra (``pip install wstrio[redis]``).
    """

    def __init__(
        self,
        url: str,
        *,
        buffer: int = 10_000,
        presence_ttl: float = 15.0,
        check_interval: float = 1.0,
        connect_timeout: float = 2.0,
        optional: bool = False,
        prefix: str = "wstrio",
    ) -> None:
        for name, value in (("buffer", buffer), ("presence_ttl", presence_ttl)):
            if not value > 0:
                raise ValueError(f"RedisBus {name} must be > 0, not {value!r}")
        self.url = url
        self.buffer = buffer
        self.presence_ttl = presence_ttl
        self.check_interval = check_interval
        self.connect_timeout = connect_timeout
        self.optional = optional
        self.keys = Keys(prefix)
        self.origin = new_origin()
        self._hub: Receiver | None = None
        self._client: coredis.Redis[bytes] | None = None
        self._queue: deque[Command] = deque()
        self._queued = trio.Event()
        self._subscriptions = Subscriptions(
            self.keys, self._receive, self._went_down, connect_timeout
        )
        self._present: dict[tuple[str, str], str] = {}  # (room, key) -> "<joined ms> <name>"
        self._connected = False
        self._down_reason: str | None = "not started"
        self._warned = False  # the current outage was logged
        self._counts = {"published": 0, "received": 0, "dropped": 0, "outages": 0}
        self._stack = contextlib.AsyncExitStack()
        self._stop: Callable[[], None] = lambda: None

    # -- what the hub calls (never waits) ---------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether Redis answers (False: degraded, local delivery only)."""
        return self._connected

    def attach(self, hub: Receiver) -> str:
        """Serve ``hub``; ValueError if this bus already serves another."""
        if self._hub is not None and self._hub is not hub:
            raise ValueError("a RedisBus serves one Hub")
        self._hub = hub
        return self.origin

    def publish(self, envelope: Envelope) -> None:
        """Queue ``envelope`` for the room's channel (and history); never waits."""
        if envelope.history:
            kind, payload = split_message(envelope.message)
            ttl = "" if envelope.history_ttl is None else str(int(envelope.history_ttl * 1000))
            keys = [self.keys.stream(envelope.room), self.keys.channel(envelope.room)]
            args: list[str | bytes | int] = [
                envelope.history,
                ttl,
                envelope.origin,
                envelope.id or "",
                kind,
                payload,
            ]
            room = envelope.room

            async def send(client: coredis.Redis[bytes]) -> object:
                await self._subscriptions.confirmed(room)  # so its echo finds us subscribed
                return await client.eval(PUBLISH_KEPT, keys, args)

            self._push(send)
        else:
            channel, data = self.keys.channel(envelope.room), plain_payload(envelope)
            self._push(lambda client: client.publish(channel, data))
        self._counts["published"] += 1

    def subscribe(self, room: str) -> None:
        self._subscriptions.add(room)

    def unsubscribe(self, room: str) -> None:
        self._subscriptions.remove(room)

    def present(self, room: str, key: str, name: str | None) -> None:
        zset, names = self.keys.presence(room)
        if name is None:
            self._present.pop((room, key), None)
            self._push(lambda client: _absent(client, zset, names, key))
            return
        value = self._present[(room, key)] = f"{int(time.time() * 1000)} {name}"
        expiry = time.time() + self.presence_ttl
        self._push(lambda client: _present(client, zset, names, key, value, expiry))

    def _push(self, command: Command) -> None:
        if len(self._queue) >= self.buffer:
            self._queue.popleft()
            self._counts["dropped"] += 1
        self._queue.append(command)
        self._queued.set()

    # -- what the hub awaits -------------------------------------------------------

    async def presence(self, room: str) -> list[str]:
        """Names of the room's members in every process, in join order."""
        zset, names = self.keys.presence(room)
        found = await self._read(
            lambda client: client.eval(PRESENCE, [zset, names], [int(time.time() * 1000)])
        )
        mine = self.origin + ":"
        entries = {  # other processes' members, then this one's, whether Redis has them yet
            text_of(key): text_of(value)
            for key, value in zip(found[::2], found[1::2], strict=True)
            if not text_of(key).startswith(mine)
        }
        entries.update({key: value for (name, key), value in self._present.items() if name == room})
        joined = [value.split(" ", 1) for value in entries.values()]
        return [name for _, name in sorted(joined, key=lambda pair: int(pair[0]))]

    async def history(self, room: str) -> list[Entry]:
        """The room's history stream, oldest first."""
        found = await self._read(lambda client: client.xrange(self.keys.stream(room)))
        return [
            attrs.evolve(
                entry_of(fields_of(entry.field_values)),
                position=stream_order(text_of(entry.identifier)),
            )
            for entry in found
        ]

    async def _read(self, command: Command) -> Any:
        client = self._client
        if client is None or not self._connected:
            raise BusUnavailable(f"Redis is unreachable: {self._down_reason}")
        try:
            with trio.fail_after(self.connect_timeout):
                return await command(client)
        except (Exception, trio.TooSlowError) as exc:
            if not is_outage(exc):
                raise
            self._went_down(exc)
            raise BusUnavailable(f"Redis is unreachable: {self._down_reason}") from None

    # -- the tasks -----------------------------------------------------------------

    async def __aenter__(self) -> RedisBus:
        """``async with bus:`` runs :meth:`run` around the block (BusUnavailable here if
        Redis cannot be reached and the bus is not optional) and stops it after."""
        stack = contextlib.AsyncExitStack()
        nursery = await stack.enter_async_context(trio.open_nursery())
        try:
            await nursery.start(self.run)
        except BaseException:
            await stack.aclose()  # run() ended: the nursery has nothing left to wait for
            raise
        self._stack = stack
        nursery_scope = nursery.cancel_scope
        self._stop = nursery_scope.cancel
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop()
        await self._stack.aclose()  # the block's own exception, if any, goes on as it was

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and carry the hub's rooms until cancelled; reports when Redis answered
        (or at once if ``optional``). BusUnavailable if Redis cannot be reached at start and
        the bus is not optional; ImportError without the ``redis`` extra."""
        import coredis

        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            self.url, connect_timeout=self.connect_timeout, stream_timeout=self.connect_timeout
        )
        failure: BusUnavailable | None = None
        async with client:  # raised inside, it would come out in coredis's ExceptionGroup
            self._client = client
            try:
                with trio.fail_after(self.connect_timeout):
                    await client.ping()
                self._came_up()
            except (Exception, trio.TooSlowError) as exc:
                if not is_outage(exc):
                    raise
                if not self.optional:
                    failure = BusUnavailable(f"cannot reach Redis at {self.url}: {reason(exc)}")
                else:
                    self._went_down(exc)
            if failure is None:
                await self._carry(client, task_status)
        if failure is not None:
            raise failure

    async def _carry(
        self, client: coredis.Redis[bytes], task_status: trio.TaskStatus[None]
    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publisher, client)
            nursery.start_soon(self._watcher, client)
            nursery.start_soon(self._subscriptions.run, client)
            task_status.started()

    async def _publisher(self, client: coredis.Redis[bytes]) -> None:
        backoff = RETRY_FIRST
        while True:
            if not self._queue:
                self._queued = trio.Event()
                await self._queued.wait()
                continue
            command = self._queue[0]
            try:
                with trio.fail_after(self.connect_timeout):
                    await command(client)
            except (Exception, trio.TooSlowError) as exc:
                if not is_outage(exc):
                    raise
                self._went_down(exc)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_CAP)
                continue
            if self._queue and self._queue[0] is command:
                self._queue.popleft()
            backoff = RETRY_FIRST
            self._came_up()

    async def _watcher(self, client: coredis.Redis[bytes]) -> None:
        refreshed = 0.0
        while True:
            try:
                with trio.fail_after(self.connect_timeout):
                    await client.ping()
                    if time.monotonic() - refreshed > self.presence_ttl / 3:
                        await self._refresh(client)
                        refreshed = time.monotonic()
                self._came_up()
            except (Exception, trio.TooSlowError) as exc:
                if not is_outage(exc):
                    raise
                self._went_down(exc)
            await trio.sleep(self.check_interval)

    async def _refresh(self, client: coredis.Redis[bytes]) -> None:
        expiry = time.time() + self.presence_ttl
        for (room, key), value in list(self._present.items()):
            zset, names = self.keys.presence(room)
            await _present(client, zset, names, key, value, expiry)

    def _receive(self, envelope: Envelope) -> None:
        if self._hub is not None:
            self._counts["received"] += envelope.origin != self.origin
            self._hub.receive(envelope)

    def _came_up(self) -> None:
        if not self._connected:
            if self._down_reason != "not started":
                logger.info("Redis at %s is back: rooms span processes again", self.url)
            self._connected, self._down_reason, self._warned = True, None, False

    def _went_down(self, exc: BaseException) -> None:
        self._down_reason = f"Redis at {self.url}: {reason(exc)}"
        if not self._warned:  # once per outage
            self._warned = True
            logger.warning("%s; rooms are local until it is back", self._down_reason)
        if self._connected:
            self._connected = False
            self._counts["outages"] += 1
            if self._hub is not None:
                self._hub.bus_down()

    def statistics(self) -> BusStatistics:
        """Counts since start, and the state now."""
        return BusStatistics(
            connected=self._connected,
            buffered=len(self._queue),
            down_reason=self._down_reason,
            **self._counts,
        )

    def health(self) -> str | None:
        """None while connected, else why not (a ``/healthz`` check)."""
        return None if self._connected else self._down_reason

    def install(self, server: Watched) -> None:
        """Show this bus in ``server``'s ``/metrics`` (``wstrio_bus_*``) and have its
        ``/healthz`` report "degraded", with the reason, while Redis is unreachable."""
        install(self.statistics, self.health, server)


async def _present(
    client: coredis.Redis[bytes], zset: str, names: str, key: str, value: str, expiry: float
) -> None:
    await client.zadd(zset, {key: expiry * 1000})
    await client.hset(names, {key: value})


async def _absent(client: coredis.Redis[bytes], zset: str, names: str, key: str) -> None:
    await client.zrem(zset, [key])
    await client.hdel(names, [key])
