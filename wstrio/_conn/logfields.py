"""Which connection a log record is about: ``connection``, ``peer`` and ``path`` on every
record wstrio logs while serving one.

Theory of operation: the server sets a context variable when it accepts a TCP
connection (its number and peer) and again when the request names a path.
Trio copies context variables into the tasks a task starts, so every task of
that connection (the HTTP front, the supervisor's reader, writer, heartbeat,
closer and the handler) sees them. A :class:`logging.Filter` on wstrio's
loggers copies them onto each record as attributes, where a formatter (such as
``serve --log-format json``) or ``%(connection)s`` in a format string finds
them. Records logged outside any connection carry none of them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

_current: ContextVar[dict[str, object] | None] = ContextVar("wstrio_log_fields", default=None)


class ConnectionFields(logging.Filter):
    """Copy the current connection's fields onto each record (never overwriting one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _current.get()
        if fields:
            for name, value in fields.items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


_FILTER = ConnectionFields()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the connection fields filter attached."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


@contextlib.contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every wstrio record logged in this task (and tasks it starts)."""
    token = _current.set({**(_current.get() or {}), **fields})
    try:
        yield
    finally:
        _current.reset(token)
