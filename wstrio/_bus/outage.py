"""When Redis is unreachable: the error the bus raises, and telling outages from bugs."""

from __future__ import annotations

import trio

#: Seconds between tries to reach Redis again: the first, and at most (doubling between).
RETRY_FIRST = 0.05
RETRY_CAP = 0.25


class BusUnavailable(ConnectionError):
    """Redis cannot be reached (at start, or for a read such as presence or history)."""


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or every exception in a group) means Redis is unreachable, not a bug
    or a refused command."""
    import anyio
    import coredis.exceptions

    if isinstance(exc, BaseExceptionGroup):
        return all(is_outage(inner) for inner in exc.exceptions)
    return isinstance(
        exc,
        coredis.exceptions.ConnectionError
        | OSError
        | TimeoutError
        | trio.TooSlowError
        | anyio.ClosedResourceError  # a command on a connection Redis dropped
        | anyio.BrokenResourceError,
    )


def first_leaf(exc: BaseException) -> BaseException:
    """The first exception in ``exc``, groups unwrapped."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def reason(exc: BaseException) -> str:
    """A one-line reason for an outage."""
    if isinstance(exc, trio.TooSlowError | TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
