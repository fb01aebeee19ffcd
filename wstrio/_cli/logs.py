"""The command line's log output: text for people, or one JSON object per line for machines.

``--log-format json`` writes each record as ``{"time", "level", "logger", "message", ...}``
plus every extra field the record carries: the connection's ``connection``, ``peer`` and
``path`` (``wstrio._conn.logfields``), and on a session's close line ``code``, ``reason``,
``ending``, ``aborted`` and ``duration`` (seconds). Tracebacks go in ``exception``.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

#: Attributes every LogRecord has: anything else on a record is an extra field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, extras included (values that JSON cannot hold as text)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        out: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(level: str, form: str = "text") -> None:
    """Log to stderr at ``level`` in ``form`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # coredis logs each of its retries at INFO; the bus reports outages itself (wstrio.bus).
    logging.getLogger("coredis").setLevel(max(logging.WARNING, logging.root.level))
