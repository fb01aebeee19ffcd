"""The close-code table: the code, the documentation and the wire agree row by row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import wstrio
from wstrio import CLOSE_TABLE, CloseCode, Ending
from wstrio._conn.closecodes import Wire, closed_for, is_sendable

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "close-codes.md"

EXPECTED = {
    Ending.HANDLER_RETURNED: (1000, Wire.CLOSE),
    Ending.HANDLER_CLOSED: (None, Wire.CLOSE),
    Ending.PEER_CLOSED: (None, Wire.NOTHING),
    Ending.PEER_VANISHED: (1006, Wire.NOTHING),
    Ending.HANDLER_ERROR: (1011, Wire.CLOSE),
    Ending.KEEPALIVE_TIMEOUT: (1011, Wire.CLOSE),
    Ending.WRITE_TIMEOUT: (1006, Wire.ABORT),
    Ending.MESSAGE_TOO_BIG: (1009, Wire.CLOSE),
    Ending.UNSUPPORTED_DATA: (1003, Wire.CLOSE),
    Ending.PROTOCOL_ERROR: (None, Wire.CLOSE),
    Ending.GOING_AWAY: (1001, Wire.CLOSE),
    Ending.SERVICE_RESTART: (1012, Wire.CLOSE),
    Ending.SLOW_CONSUMER: (1008, Wire.CLOSE),
    Ending.RATE_LIMITED: (1008, Wire.CLOSE),
    Ending.FRAME_TIMEOUT: (1008, Wire.CLOSE),
    Ending.INTERNAL_ERROR: (1011, Wire.CLOSE),
}


@pytest.mark.parametrize("ending", list(Ending))
def test_each_ending_has_its_row(ending: Ending) -> None:
    """Every ending maps to the documented code and wire action."""
    rule = CLOSE_TABLE[ending]
    assert (rule.code, rule.wire) == EXPECTED[ending]
    closed = closed_for(ending, 4000, "from the event")
    assert closed.code == (rule.code if rule.code is not None else 4000)
    if rule.code is not None and closed.code != 1006:
        assert is_sendable(closed.code)


def test_docs_table_matches_code() -> None:
    """docs/reference/close-codes.md lists each ending with the code the table sends."""
    text = DOC.read_text()
    for ending, (code, _) in EXPECTED.items():
        row = re.search(rf"^\|[^|\n]*`{ending.name}`[^|\n]*\|([^|\n]*)\|", text, re.M)
        assert row, f"{ending.name} missing from {DOC.name}"
        cell = row.group(1)
        assert str(code) in cell if code is not None else cell.strip()


def test_close_code_enum_has_rfc_values() -> None:
    """CloseCode carries the RFC 6455 / IANA numbers."""
    assert CloseCode.NORMAL_CLOSURE == 1000 and CloseCode.GOING_AWAY == 1001
    assert CloseCode.MESSAGE_TOO_BIG == 1009 and CloseCode.INTERNAL_ERROR == 1011
    assert CloseCode.ABNORMAL_CLOSURE == 1006 and not is_sendable(CloseCode.ABNORMAL_CLOSURE)


def test_exceptions_share_one_base() -> None:
    """Every wstrio exception is a WstrioError."""
    for exc in (wstrio.ConnectionClosed, wstrio.CloseConnection, wstrio.OutboxFull,
                wstrio.InternalError):
        assert issubclass(exc, wstrio.WstrioError)
    assert str(wstrio.ConnectionClosed(1001, "going away")) == "connection closed: 1001 going away"
