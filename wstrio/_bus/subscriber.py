"""The rooms a process follows on Redis pub/sub, and where it stands in each room's stream.

Theory of operation: one task subscribes to the channels of the rooms that have
members here and reads what they bring. For a room with history, it remembers
the stream position of the last message it delivered; whenever Redis confirms a
(re)subscription it first reads the stream from there, so a lost connection
loses nothing the history still holds, and skips whatever it delivered already.
After a lost connection it subscribes again from scratch, with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._rooms.bus import Envelope
from .outage import RETRY_CAP, RETRY_FIRST, first_leaf, is_outage
from .wire import Keys, entry_of, fields_of, parse_payload, stream_order, text_of

if TYPE_CHECKING:
    import coredis


class Subscriptions:
    """Follow ``rooms`` and hand each message to ``deliver``; ``went_down(exc)`` on outages."""

    def __init__(
        self,
        keys: Keys,
        deliver: Callable[[Envelope], None],
        went_down: Callable[[BaseException], None],
        timeout: float,
    ) -> None:
        self.keys = keys
        self._deliver = deliver
        self._went_down = went_down
        self._timeout = timeout
        self.rooms: dict[str, trio.Event] = {}  # followed -> set once Redis confirms
        self._changed = trio.Event()  # the set of rooms changed
        self._last: dict[str, str] = {}  # room -> last stream entry delivered

    def add(self, room: str) -> None:
        self.rooms.setdefault(room, trio.Event())
        self._changed.set()

    def remove(self, room: str) -> None:
        self.rooms.pop(room, None)
        self._last.pop(room, None)
        self._changed.set()

    async def confirmed(self, room: str) -> None:
        """Return once Redis confirmed the room's subscription (at once if not followed)."""
        event = self.rooms.get(room)
        if event is not None:
            await event.wait()

    async def run(self, client: coredis.Redis[bytes]) -> None:
        """Follow the wanted rooms; after a lost connection, subscribe again from scratch."""
        backoff = RETRY_FIRST
        while True:
            started = trio.current_time()
            try:
                await self._follow(client)
            except BaseException as exc:  # an ExceptionGroup from coredis's task group, often
                if isinstance(exc, BaseExceptionGroup):
                    cancelled, rest = exc.split(trio.Cancelled)
                    if cancelled is not None and (rest is None or is_outage(rest)):
                        raise first_leaf(cancelled) from None  # coredis's teardown failed too
                if not is_outage(exc):
                    raise
                self._went_down(first_leaf(exc))
            for event in list(self.rooms.values()):
                if event.is_set():  # confirmed on the lost connection: wait for a new one
                    self.rooms = {room: trio.Event() for room in self.rooms}
                    break
            if trio.current_time() - started > RETRY_CAP:
                backoff = RETRY_FIRST  # it had worked for a while: a new outage
            await trio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_CAP)

    async def _follow(self, client: coredis.Redis[bytes]) -> None:
        # retry_policy=None: a lost connection ends this; run() subscribes again, no later
        # than RETRY_CAP seconds after Redis is back (coredis's own retries back off to 16 s).
        async with client.pubsub(retry_policy=None) as pubsub, trio.open_nursery() as nursery:
            nursery.start_soon(self._reader, client, pubsub)
            following: set[str] = set()
            while True:
                wanted = set(self.rooms)
                if wanted - following:
                    await pubsub.subscribe(*(self.keys.channel(r) for r in wanted - following))
                if following - wanted:
                    await pubsub.unsubscribe(*(self.keys.channel(r) for r in following - wanted))
                following = wanted
                self._changed = trio.Event()
                if set(self.rooms) == following:
                    await self._changed.wait()

    async def _reader(self, client: coredis.Redis[bytes], pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message()
            if message is None:
                continue
            room = self.keys.room_of(message["channel"])
            if message["type"] == "subscribe" and room in self.rooms:
                await self._catch_up(client, room)
                self.rooms[room].set()
            elif message["type"] == "message" and room in self.rooms:
                try:
                    sid, envelope = parse_payload(room, message["data"])
                except ValueError:
                    continue  # not ours: someone else publishes on our channel
                self._take(sid, envelope)

    async def _catch_up(self, client: coredis.Redis[bytes], room: str) -> None:
        """After a (re)subscription: deliver what the stream holds past the last delivered."""
        last = self._last.get(room)
        if last is None:
            return
        try:
            with trio.fail_after(self._timeout):
                found = await client.xrange(self.keys.stream(room), f"({last}", "+")
        except (Exception, trio.TooSlowError) as exc:
            if not is_outage(exc):
                raise
            return
        for entry in found:
            fields = fields_of(entry.field_values)
            kept = entry_of(fields)
            envelope = Envelope(room, kept.id, text_of(fields[b"o"]), kept.message, history=1)
            self._take(text_of(entry.identifier), envelope)

    def _take(self, sid: str | None, envelope: Envelope) -> None:
        room = envelope.room
        if sid is not None:
            last = self._last.get(room)
            if last is not None and stream_order(sid) <= stream_order(last):
                return  # delivered already (by a catch-up)
            self._last[room] = sid
            envelope = attrs.evolve(envelope, position=stream_order(sid))
        self._deliver(envelope)
