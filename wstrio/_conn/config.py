"""Per-connection settings, validated when the value is built.

Timing constants, by how they relate (as in gorilla's chat example):

* every ``ping_interval`` seconds the heartbeat sends a ping, and the pong must
  arrive within ``ping_timeout``; so ``ping_timeout <= ping_interval``: at most
  one ping is in flight, and a dead peer is noticed within
  ``ping_interval + ping_timeout``;
* ``write_timeout`` bounds one send to a peer that stopped reading;
* ``close_timeout`` bounds the close handshake and, after the peer closed, how
  long the handler may go on before it is cancelled;
* ``handshake_timeout`` bounds the opening handshake;
* ``shutdown_timeout`` bounds how long a stopping server waits for handlers;
* ``frame_timeout`` bounds one incoming frame (or fragmented message) from its
  first byte to its last, which the heartbeat cannot do for a message whose
  fragments come with pongs between them;
* ``tcp_keepalive`` has the kernel probe a silent peer, so a half-open one is
  dropped within ``tcp_keepalive + 30`` seconds even with no heartbeat.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Literal, get_args

import attrs


def check_number(
    owner: str, name: str, value: Any, *, minimum: int = 1, integer: bool = True
) -> None:
    """Refuse ``value`` for ``owner.name`` unless it is an int (or, if not ``integer``, a
    positive number) of at least ``minimum``; ValueError names the field."""
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{owner}.{name} must be an int >= {minimum}, got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{owner}.{name} must be a positive number, got {value!r}")


def _validator(
    *, minimum: int = 1, integer: bool = True, optional: bool = False
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not (optional and value is None):
            check_number("Config", attribute.name, value, minimum=minimum, integer=integer)

    return check


def _networks(value: Any) -> tuple[str, ...]:
    """Each entry an IP address or network, normalised (``"10.0.0.0/8"``, ``"::1/128"``)."""
    entries = (value,) if isinstance(value, str) else tuple(value)
    networks = []
    for entry in entries:
        try:
            networks.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"Config.trusted_proxies: {entry!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _between(low: int, high: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"Config.{attribute.name} must be an int from {low} to {high}")

    return check


def _at_most(high: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """A positive number up to ``high`` (finite), or None."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        check_number("Config", attribute.name, value, integer=False)
        if not value <= high:
            raise ValueError(f"Config.{attribute.name} must be at most {high}, got {value!r}")

    return check


_positive = _validator(integer=False)
_positive_or_none = _validator(integer=False, optional=True)
_size = _validator()
_size_or_zero = _validator(minimum=0)
_size_or_none = _validator(optional=True)


def _origins(value: Any) -> tuple[str, ...] | Literal["*"] | None:
    if value is None or value == "*":
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        value = (value,)
    origins = tuple(str(origin).rstrip("/").lower() for origin in value)
    for origin in origins:
        if "://" not in origin:
            raise ValueError(f"Config.allowed_origins: {origin!r} is not scheme://host[:port]")
    return origins


_PING_TIMEOUT = 20.0

Engine = Literal["native", "trio-websocket"]
ENGINES: tuple[str, ...] = get_args(Engine)


def _engine(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ENGINES:
        raise ValueError(f"Config.engine must be one of {', '.join(ENGINES)}, got {value!r}")


RateLimitPolicy = Literal["close", "drop"]
RATE_LIMIT_POLICIES: tuple[str, ...] = get_args(RateLimitPolicy)


def _rate_policy(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in RATE_LIMIT_POLICIES:
        raise ValueError(f"Config.rate_limit_policy must be close or drop, got {value!r}")


@attrs.frozen(kw_only=True)
class Config:
    """Settings of one connection; shared by server and client sessions.

    Sizes count messages (queues) or bytes (messages and buffers); times are
    seconds. ``ping_interval=None`` turns the heartbeat off.
    """

    #: Seconds between keepalive pings (None: no heartbeat).
    ping_interval: float | None = attrs.field(default=20.0, validator=_positive_or_none)
    #: Seconds a ping may wait for its pong before the connection fails (1011).
    ping_timeout: float = attrs.field(default=_PING_TIMEOUT, validator=_positive)
    #: Seconds for the close handshake, and the handler's grace after the peer closed.
    close_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: Seconds one outgoing message may take to be written before the peer is dropped.
    write_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: Seconds a new connection has to finish its opening handshake.
    handshake_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: Seconds a stopping server waits for handlers to finish before aborting them.
    shutdown_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: Received messages queued for the handler; a full inbox stops reading.
    inbox_size: int = attrs.field(default=16, validator=_size)
    #: Messages queued for sending; ``send`` waits and ``send_nowait`` raises when full.
    outbox_size: int = attrs.field(default=64, validator=_size)
    #: Bytes of room broadcasts a session may hold beyond a full outbox, so that
    #: a burst (many members speaking at once) never counts as a slow consumer;
    #: a member whose backlog would pass this gets its room's slow-consumer policy.
    broadcast_backlog: int = attrs.field(default=256 * 1024, validator=_size_or_zero)
    #: Largest incoming message, in bytes (UTF-8 bytes for text; the trio-websocket
    #: engine counts a text message in characters); larger ones close with 1009.
    max_message_size: int = attrs.field(default=2**20, validator=_size)
    #: Bytes asked of the socket per read.
    receive_buffer_size: int = attrs.field(default=65536, validator=_size)
    #: Kernel send buffer per socket in bytes (SO_SNDBUF; Linux doubles it), or
    #: None for the kernel's autotuning (up to 4 MiB). Smaller makes a peer that
    #: stops reading fill its outbox sooner, and caps kernel memory per peer.
    socket_send_buffer: int | None = attrs.field(default=None, validator=_size_or_none)
    #: Largest HTTP request head; larger ones get 431 and the connection is closed.
    max_header_bytes: int = attrs.field(default=16384, validator=_size)
    #: Largest plain HTTP request body in bytes (an ``HttpRoute``'s POST); larger get 413.
    max_body_size: int = attrs.field(default=2**20, validator=_size_or_zero)
    #: Peers whose ``Forwarded`` / ``X-Forwarded-For`` / ``X-Forwarded-Proto`` headers are
    #: believed: IP addresses or networks (``"10.0.0.0/8"``). Empty: believe none.
    trusted_proxies: tuple[str, ...] = attrs.field(default=(), converter=_networks)
    #: The forwarding header trusted proxies set: ``"x-forwarded-for"`` (with
    #: ``X-Forwarded-Proto``; nginx's and Caddy's usual) or ``"forwarded"`` (RFC 7239).
    #: The other is ignored: a proxy passes it on as the client wrote it.
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = attrs.field(
        default="x-forwarded-for", validator=attrs.validators.in_(("x-forwarded-for", "forwarded"))
    )
    #: Serve ``/dashboard`` (live plots of the server's figures) and its stream
    #: ``/dashboard/ws``; ``python -m wstrio serve`` turns it on.
    dashboard: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: Open WebSocket sessions at most; beyond, handshakes get 503 with Retry-After.
    max_connections: int = attrs.field(default=10000, validator=_size)
    #: Open sessions (and upgrades under way) per client address at most, the address as
    #: ``trusted_proxies`` decide it (IPv6 per /64); beyond, 503 with Retry-After. None: no limit.
    max_connections_per_ip: int | None = attrs.field(default=None, validator=_size_or_none)
    #: Messages a session may receive per second on average (a token bucket); None: no limit.
    max_messages_per_second: float | None = attrs.field(default=None, validator=_at_most(1e9))
    #: Messages a session may receive at once before the rate applies (the bucket's size);
    #: None: one second's worth, ``max(1, ceil(max_messages_per_second))``.
    message_burst: int | None = attrs.field(default=None, validator=_size_or_none)
    #: Past the rate: ``"close"`` (1008 ``rate limit``) or ``"drop"`` the message and count it.
    rate_limit_policy: RateLimitPolicy = attrs.field(default="close", validator=_rate_policy)
    #: Seconds a peer has, while it is being read, to finish a frame it started (a
    #: fragmented message: from its first fragment to its last); then 1008 ``frame
    #: timeout``. None: no bound (the heartbeat still bounds a single frame).
    frame_timeout: float | None = attrs.field(default=30.0, validator=_positive_or_none)
    #: Seconds an accepted socket may be silent before the kernel probes the peer
    #: (SO_KEEPALIVE, TCP_KEEPIDLE; then 3 probes 10 s apart, and TCP_USER_TIMEOUT on
    #: Linux): a half-open peer is dropped within this + 30 s. None: no TCP keepalive.
    tcp_keepalive: float | None = attrs.field(default=60.0, validator=_at_most(32767))
    #: Browser origins allowed to open WebSockets: None means same origin as the
    #: Host header, ``"*"`` any origin, else a tuple of ``scheme://host[:port]``.
    allowed_origins: tuple[str, ...] | Literal["*"] | None = attrs.field(
        default=None, converter=_origins
    )

    #: The WebSocket engine: ``"native"`` (wstrio's own, on the ``websockets``
    #: package's sans-I/O core) or ``"trio-websocket"`` (the first engine, kept
    #: as an option).
    engine: Engine = attrs.field(default="native", validator=_engine)

    #: permessage-deflate (RFC 7692): ``"deflate"`` to offer (client) or accept (server)
    #: it on the native engine, None for uncompressed messages only.
    compression: Literal["deflate"] | None = attrs.field(
        default="deflate", validator=attrs.validators.in_(("deflate", None))
    )
    #: The LZ77 window this side compresses with and lets the peer use, in bits (8-15):
    #: 2**bits bytes. 12 (4 KiB) keeps the per-connection memory small (see the docs).
    compression_window_bits: int = attrs.field(default=12, validator=_between(8, 15))
    #: zlib's memory level for compressing (1-9): memory against speed and ratio.
    compression_memory_level: int = attrs.field(default=5, validator=_between(1, 9))
    #: zlib's compression level (0-9): CPU against bytes on the wire.
    compression_level: int = attrs.field(default=6, validator=_between(0, 9))
    #: Messages shorter than this many bytes are sent uncompressed (allowed per message).
    compression_threshold: int = attrs.field(default=64, validator=_size_or_zero)
    #: False: compress each message on its own (``server_no_context_takeover`` on a
    #: server), so one compressed frame can be shared by every member of a room.
    compression_context_takeover: bool = attrs.field(
        default=True, validator=attrs.validators.instance_of(bool)
    )

    def __attrs_post_init__(self) -> None:
        if self.ping_interval is not None and self.ping_timeout > self.ping_interval:
            raise ValueError(
                f"Config.ping_timeout ({self.ping_timeout}) must not exceed "
                f"ping_interval ({self.ping_interval}): a pong must be due before the next ping"
            )


def default_ping_timeout(ping_interval: float | None) -> float:
    """The ping timeout when none is given: the default, or a smaller ``ping_interval``."""
    return min(_PING_TIMEOUT, ping_interval or _PING_TIMEOUT)
