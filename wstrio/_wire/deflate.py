"""permessage-deflate (RFC 7692): negotiation, and compressing and inflating messages.

Theory of operation
-------------------
A client offers the extension in ``Sec-WebSocket-Extensions``, perhaps several
times with different parameters; the server accepts the first offer it can
honour and answers with the parameters both will use (section 5, 7.1). The
four parameters bound each side's LZ77 window (``*_max_window_bits``, 8-15)
and say whether a side starts each message with a fresh compressor
(``*_no_context_takeover``). A side may always use a smaller window and may
always start afresh; it may never use a bigger window than agreed, nor rely
on the other side's context when that side said it would not keep one.

A compressed message has RSV1 set on its first frame; its payload is raw
DEFLATE ended by an empty stored block, whose last four bytes (00 00 FF FF)
are not sent (7.2.1). Inflating puts them back (7.2.2) and is bounded: it
never produces more than the message limit allows, so a small frame that
would inflate to gigabytes stops at the limit (``zlib``'s ``max_length``).
"""

from __future__ import annotations

import re
import zlib

import attrs

from .._conn.config import Config
from .._conn.transport import Prepared
from .frames import encode

NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_STEP = 65536  # inflate at most this much at a time
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*(?:=\s*({_TOKEN}|"(?:[^"\\]|\\.)*"))?\s*')
_PARAMS = frozenset(
    {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
)


class ExtensionError(ValueError):
    """A ``Sec-WebSocket-Extensions`` header that breaks the grammar of RFC 6455 9.1 or the
    rules of RFC 7692 (a server answers it with 400; a client fails the connection)."""


Params = tuple[tuple[str, str | None], ...]


def parse_extensions(values: list[str]) -> list[tuple[str, Params]]:
    """The extensions of ``Sec-WebSocket-Extensions`` lines, in order: ``(name, params)``;
    ExtensionError for text that is not ``token *(; token[=value])`` lists."""
    extensions: list[tuple[str, Params]] = []
    for item in _split(",", ",".join(values)):
        name, *raw = _split(";", item)
        if not re.fullmatch(_TOKEN, name):
            raise ExtensionError(f"not an extension name: {name!r}")
        params = []
        for text in raw:
            match = _PARAM.fullmatch(text)
            if match is None:
                raise ExtensionError(f"not an extension parameter: {text!r}")
            value = match.group(2)
            if value is not None and value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params.append((match.group(1).lower(), value))
        extensions.append((name.lower(), tuple(params)))
    return extensions


def _split(separator: str, text: str) -> list[str]:
    """``text`` split at ``separator`` outside quoted strings, items stripped, empties dropped
    between list items (RFC 7230 7) but not inside an extension."""
    parts, current, quoted, escaped = [], "", False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if quoted:
        raise ExtensionError("an unterminated quoted string")
    parts.append(current.strip())
    if separator == ",":
        return [part for part in parts if part]
    if not all(parts):
        raise ExtensionError(f"an empty part in {text!r}")
    return parts


@attrs.frozen
class Agreement:
    """What both sides use: each side's window bits and whether it keeps its context."""

    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False

    def header(self) -> str:
        """The parameters as a ``Sec-WebSocket-Extensions`` value (what a server answers)."""
        parts = [NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits < 15:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits < 15:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


@attrs.frozen
class Settings:
    """This side's wishes: the window it compresses with (and asks of the peer), whether it
    keeps its context between messages, and zlib's memory and compression levels."""

    window_bits: int = 12
    memory_level: int = 5
    level: int = 6
    context_takeover: bool = True


def _bits(value: str | None, *, optional: bool) -> int | None:
    """A window-bits value (8-15); None where ``optional`` and absent; ExtensionError else."""
    if value is None:
        if optional:
            return None
        raise ExtensionError("a window-bits parameter needs a value")
    if re.fullmatch("[1-9][0-9]?", value) is None or not 8 <= int(value) <= 15:
        raise ExtensionError(f"window bits must be 8 to 15, not {value!r}")
    return int(value)


def _checked(params: Params, *, client_may_omit: bool) -> dict[str, str | None]:
    """The parameters as a dict; ExtensionError for unknown or repeated ones (RFC 7692 7)."""
    found: dict[str, str | None] = {}
    for key, value in params:
        if key not in _PARAMS:
            raise ExtensionError(f"unknown permessage-deflate parameter {key!r}")
        if key in found:
            raise ExtensionError(f"permessage-deflate parameter {key!r} given twice")
        if key.endswith("context_takeover") and value is not None:
            raise ExtensionError(f"{key} takes no value")
        if key == "server_max_window_bits":
            _bits(value, optional=False)
        if key == "client_max_window_bits":
            _bits(value, optional=client_may_omit)
        found[key] = value
    return found


def accept_offer(offers: list[tuple[str, Params]], settings: Settings) -> Agreement | None:
    """The server's answer: the first permessage-deflate offer it can honour, or None (RFC 7692
    5, 7.1). An offer it cannot honour is declined, not refused."""
    for name, params in offers:
        if name != NAME:
            continue
        try:
            found = _checked(params, client_may_omit=True)
        except ExtensionError:
            continue  # a broken offer is declined; a later one may do
        server_bits = settings.window_bits
        if found.get("server_max_window_bits") is not None:
            server_bits = min(server_bits, int(found["server_max_window_bits"] or 15))
        client_bits = 15
        if "client_max_window_bits" in found:  # the client lets us limit its window
            offered = found["client_max_window_bits"]
            client_bits = min(settings.window_bits, int(offered) if offered else 15)
        return Agreement(
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
            server_no_context_takeover="server_no_context_takeover" in found
            or not settings.context_takeover,
            client_no_context_takeover="client_no_context_takeover" in found,
        )
    return None


def client_offer(settings: Settings) -> str:
    """The offers a client sends, preferred first: our window as the server's limit, room for
    the server to limit ours (``client_max_window_bits`` without a value); then the same
    with ``client_no_context_takeover``, for a server that only takes that (RFC 7692 5.1)."""
    parts = [NAME, "client_max_window_bits"]
    if settings.window_bits < 15:
        parts.append(f"server_max_window_bits={settings.window_bits}")
    if not settings.context_takeover:
        return "; ".join([*parts, "client_no_context_takeover"])
    return f"{'; '.join(parts)}, {'; '.join([*parts, 'client_no_context_takeover'])}"


def accept_response(extensions: list[tuple[str, Params]], settings: Settings) -> Agreement:
    """What the client uses, from the server's answer to :func:`client_offer`; ExtensionError
    for an answer it must refuse (RFC 7692 5, 7.1: more than we offered, or malformed)."""
    if len(extensions) != 1 or extensions[0][0] != NAME:
        names = ", ".join(name for name, _ in extensions)
        raise ExtensionError(f"the server chose extensions we did not offer: {names}")
    found = _checked(extensions[0][1], client_may_omit=False)
    server_bits = int(found.get("server_max_window_bits") or 15)
    if "server_max_window_bits" not in found and settings.window_bits < 15:
        raise ExtensionError("the server ignored our server_max_window_bits")
    if server_bits > settings.window_bits:
        raise ExtensionError("the server's window is larger than we allowed")
    return Agreement(
        server_max_window_bits=server_bits,
        # any window up to the agreed one may be used: ours stays as configured
        client_max_window_bits=min(
            settings.window_bits, int(found.get("client_max_window_bits") or 15)
        ),
        server_no_context_takeover="server_no_context_takeover" in found,
        client_no_context_takeover="client_no_context_takeover" in found
        or not settings.context_takeover,
    )


def settings_of(config: Config) -> Settings:
    """The compression settings in ``config``."""
    return Settings(
        window_bits=config.compression_window_bits,
        memory_level=config.compression_memory_level,
        level=config.compression_level,
        context_takeover=config.compression_context_takeover,
    )


def codecs_for(
    agreement: Agreement, settings: Settings, *, client: bool
) -> tuple[Deflater, Inflater]:
    """This side's compressor and its inflater for the peer's messages, as agreed."""
    if client:
        ours, our_fresh = agreement.client_max_window_bits, agreement.client_no_context_takeover
        theirs, their_fresh = agreement.server_max_window_bits, agreement.server_no_context_takeover
    else:
        ours, our_fresh = agreement.server_max_window_bits, agreement.server_no_context_takeover
        theirs, their_fresh = agreement.client_max_window_bits, agreement.client_no_context_takeover
    deflater = Deflater(
        ours, fresh=our_fresh, level=settings.level, memory_level=settings.memory_level
    )
    return deflater, Inflater(theirs, fresh=their_fresh)


class Deflater:
    """Compresses the messages one side sends (``bits``: its window; ``fresh``: no context
    is kept between messages)."""

    __slots__ = ("_bits", "_level", "_memory", "_zlib", "fresh", "variant")

    def __init__(self, bits: int, *, fresh: bool, level: int, memory_level: int) -> None:
        self._bits = max(bits, 9)  # zlib cannot write a raw 8-bit window; 9 fits in it
        self.fresh = fresh
        self._level = level
        self._memory = memory_level
        self._zlib: zlib._Compress | None = None
        #: Which frames this compressor shares with others like it (when ``fresh``).
        self.variant = ("deflate", self._bits, level, memory_level)

    def frame(self, prepared: Prepared) -> bytes:
        """A server's compressed frame for ``prepared``, from a fresh compressor: the same
        bytes for every connection with this ``variant``."""
        opcode = 0x1 if isinstance(prepared.message, str) else 0x2
        return encode(opcode, self.compress(prepared.payload), rsv1=True)

    def compress(self, payload: bytes) -> bytes:
        """One message's compressed payload, without its 00 00 FF FF tail (RFC 7692 7.2.1)."""
        compressor = self._zlib
        if compressor is None:
            compressor = zlib.compressobj(self._level, zlib.DEFLATED, -self._bits, self._memory)
            if not self.fresh:
                self._zlib = compressor  # kept: the next message refers back to this one
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return data[:-4] if data.endswith(_TAIL) else data


class Inflater:
    """Inflates the messages the other side sends, never past ``limit`` bytes a message."""

    __slots__ = ("_bits", "_fresh", "_zlib", "produced")

    def __init__(self, bits: int, *, fresh: bool) -> None:
        self._bits = max(bits, 9)  # a bigger window than the peer's is always safe to inflate
        self._fresh = fresh
        self._zlib: zlib._Decompress | None = None
        self.produced = 0  # bytes of the current message so far

    def inflate(self, data: bytes, limit: int, *, last: bool) -> list[bytes] | None:
        """Inflate a piece of a compressed message, in pieces of at most 64 KiB (so memory
        follows what is kept); None once the message would pass ``limit`` bytes."""
        decompressor = self._zlib
        if decompressor is None:
            decompressor = self._zlib = zlib.decompressobj(-self._bits)
        if last:
            data += _TAIL
        pieces = []
        while True:
            room = limit - self.produced
            try:
                piece = decompressor.decompress(data, min(room + 1, _STEP))
            except zlib.error as exc:
                raise ValueError(f"invalid DEFLATE data: {exc}") from None
            self.produced += len(piece)
            if self.produced > limit:
                return None
            pieces.append(piece)
            data = decompressor.unconsumed_tail
            if not data:
                break
        if last:
            self.produced = 0
            if self._fresh or decompressor.eof:  # a final block (BFINAL=1, 7.2.3.4) ends it too
                self._zlib = None
        return pieces
