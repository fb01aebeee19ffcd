"""Exceptions users can meet, and the one place ExceptionGroups are taken apart.

The hierarchy::

    WstrioError
    ├── ConnectionClosed     receive/send on a session that has ended (code, reason)
    ├── CloseConnection      raise it from a handler to close with (code, reason)
    ├── OutboxFull           send_nowait found the outbox full
    ├── UnexpectedMessageType also a TypeError: receive_text got bytes, or the reverse
    ├── InvalidJSON          also a ValueError: receive_json got text that is not JSON
    ├── ConnectError         also an OSError: no connection or handshake (client)
    │   └── HandshakeTimeout also a TimeoutError
    ├── HandshakeRejected    the server answered with an HTTP status, not 101
    └── InternalError        a bug in wstrio: please report it

``CloseConnection`` (you raise it) and ``ConnectionClosed`` (you receive it)
are easy to confuse: the first is an instruction, the second a report.
"""

from __future__ import annotations

from collections.abc import Iterator

import trio

from .closecodes import Ending, check_close
from .headers import first_value


class WstrioError(Exception):
    """Base class of every exception wstrio raises on purpose."""


class ConnectionClosed(WstrioError):
    """The connection is closed; ``code`` and ``reason`` say how it ended."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"connection closed: {self.code} {self.reason}".rstrip()


class CloseConnection(WstrioError):
    """Raise from a handler to close its connection with ``code`` and ``reason``.

    Codes that may not be sent on the wire are refused with ValueError.
    """

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        code, reason = check_close(code, reason)
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class OutboxFull(WstrioError):
    """``send_nowait`` found the session's outbox full."""


class UnexpectedMessageType(WstrioError, TypeError):
    """``receive_text``/``receive_json`` got a binary message, or ``receive_bytes`` a text one;
    ``message`` is what arrived (the session stays open)."""

    def __init__(self, expected: str, message: str | bytes) -> None:
        got = "text" if isinstance(message, str) else "binary"
        super().__init__(f"expected a {expected} message, got a {got} one")
        self.message = message


class InvalidJSON(WstrioError, ValueError):
    """``receive_json`` got a text message that is not JSON; ``text`` is what arrived and
    ``error`` the ``json.JSONDecodeError`` (the session stays open)."""

    def __init__(self, text: str, error: ValueError) -> None:
        super().__init__(f"the message is not JSON: {error}")
        self.text = text
        self.error = error


class ConnectError(WstrioError, OSError):
    """A client could not reach the server or finish the opening handshake; ``errno`` is set
    when the system gave one, and ``str()`` is the message alone."""

    def __str__(self) -> str:
        return self.strerror if self.errno is not None and self.strerror else super().__str__()


class HandshakeTimeout(ConnectError, TimeoutError):
    """Connecting and the opening handshake took longer than ``handshake_timeout``."""


class HandshakeRejected(WstrioError):
    """The server answered the opening handshake with an HTTP status, not 101.

    ``status_code``, ``headers`` (a list of ``(name, value)`` strings) and
    ``body`` are the server's response.
    """

    def __init__(self, status_code: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(status_code, headers, body)
        self.status_code = status_code
        self.headers = headers
        self.body = body

    @property
    def status(self) -> int:
        """The HTTP status (the same as ``status_code``)."""
        return self.status_code

    def header(self, name: str) -> str | None:
        """The first value of response header ``name`` (case-insensitive), or None."""
        return first_value(self.headers, name)

    def __str__(self) -> str:
        text = self.body[:200].decode("utf-8", "replace").strip()
        return f"server refused the WebSocket handshake with HTTP {self.status_code}" + (
            f": {text}" if text else ""
        )


class InternalError(WstrioError):
    """A bug in wstrio itself (never an expected ending): please report it."""


def split_group(
    exc: BaseException, kind: type[BaseException]
) -> tuple[BaseException | None, BaseException | None]:
    """(the part of ``exc`` that is ``kind``, the rest), either may be None."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(kind)
    return (exc, None) if isinstance(exc, kind) else (None, exc)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions in ``exc``, groups flattened, in order."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def fatal_leaf(exc: BaseException) -> BaseException | None:
    """The first KeyboardInterrupt, SystemExit or other non-Exception in ``exc`` (not Cancelled)."""
    return next(
        (e for e in leaves(exc) if not isinstance(e, Exception | trio.Cancelled)),
        None,
    )


def one_of(exc: BaseException) -> BaseException:
    """The one exception a caller should see: a fatal one, else an error, else Cancelled."""
    fatal = fatal_leaf(exc)
    if fatal is not None:
        return fatal
    parts = list(leaves(exc))
    return next((e for e in parts if isinstance(e, Exception)), parts[0])


def classify_handler_exception(
    exc: BaseException, *, decided: bool
) -> Ending | CloseConnection | None:
    """What a handler's exception (perhaps a group from its own nursery) means.

    HANDLER_ERROR if any part is a real error; else the first CloseConnection;
    else None (only ConnectionClosed after the connection had already ended).
    KeyboardInterrupt and SystemExit are not ours to swallow: re-raised.
    """
    parts = list(leaves(exc))
    if any(not isinstance(leaf, Exception) for leaf in parts):
        raise exc  # KeyboardInterrupt, SystemExit (or Cancelled): not ours to swallow
    closes = [leaf for leaf in parts if isinstance(leaf, CloseConnection)]
    for leaf in parts:
        if not isinstance(leaf, CloseConnection) and not (
            isinstance(leaf, ConnectionClosed) and decided
        ):
            return Ending.HANDLER_ERROR
    return closes[0] if closes else None
