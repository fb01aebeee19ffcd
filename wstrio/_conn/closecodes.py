"""The close-code contract, as pure data.

Theory of operation: every way a connection can end is an :class:`Ending`.
``CLOSE_TABLE`` maps each ending to a :class:`Rule`: the status code and
reason the peer is sent, what happens on the wire (a close handshake, nothing
because the engine already answered, or a TCP abort) and whether messages the
handler already handed to the outbox are flushed first. The supervisor looks
endings up here (``closed_for``) and nowhere else; ``docs/reference/close-codes.md`` shows the same
table. This module imports nothing from trio on purpose: it is data.
"""

from __future__ import annotations

import enum

import attrs


class CloseCode(enum.IntEnum):
    """Status codes of RFC 6455 section 7.4.1 and the IANA registry."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


#: Codes an endpoint may put in a close frame: the defined protocol codes
#: except the local-only 1005/1006/1015 (and reserved 1004), plus the ranges
#: for libraries (3000-3999) and applications (4000-4999).
_SENDABLE_PROTOCOL_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)

#: Peer close codes after which ``async for message in session`` ends quietly.
QUIET_CODES = frozenset({1000, 1001, 1005})

#: A close frame's reason must fit in 123 bytes of UTF-8 (RFC 6455 5.5.1).
MAX_REASON_BYTES = 123


def is_sendable(code: int) -> bool:
    """True if ``code`` may be sent in a close frame."""
    return code in _SENDABLE_PROTOCOL_CODES or 3000 <= code <= 4999


def check_close(code: int, reason: str) -> tuple[int, str]:
    """Validate a close code and reason a user wants to send; raise ValueError."""
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"close code must be an int, not {type(code).__name__}")
    if not is_sendable(code):
        raise ValueError(
            f"close code {code} may not be sent on the wire: use 1000-1003, 1007-1014 "
            "or 3000-4999 (1005, 1006 and 1015 are local-only)"
        )
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
    if len(reason.encode("utf-8")) > MAX_REASON_BYTES:
        raise ValueError(f"close reason is longer than {MAX_REASON_BYTES} bytes of UTF-8")
    return int(code), reason


class Ending(enum.Enum):
    """Why a connection ended: the first task to finish decides."""

    HANDLER_RETURNED = "handler returned"
    HANDLER_CLOSED = "handler closed"
    PEER_CLOSED = "peer closed"
    PEER_VANISHED = "peer vanished"
    HANDLER_ERROR = "handler error"
    KEEPALIVE_TIMEOUT = "keepalive timeout"
    WRITE_TIMEOUT = "write timeout"
    MESSAGE_TOO_BIG = "message too big"
    UNSUPPORTED_DATA = "unsupported data"
    PROTOCOL_ERROR = "protocol error"
    GOING_AWAY = "going away"
    SERVICE_RESTART = "service restart"
    SLOW_CONSUMER = "slow consumer"
    RATE_LIMITED = "rate limit"
    FRAME_TIMEOUT = "frame timeout"
    INTERNAL_ERROR = "internal error"


class Wire(enum.Enum):
    """What the supervisor does on the wire once an ending is decided."""

    CLOSE = "close handshake"  # send a close frame, wait for the peer's, else abort
    NOTHING = "nothing"  # the peer closed or vanished; the engine has answered already
    ABORT = "abort"  # drop the TCP connection without a close frame


@attrs.frozen
class Rule:
    """How one ending closes: ``code``/``reason`` of None come from the event."""

    code: int | None
    reason: str | None
    wire: Wire
    drain: bool  # flush the outbox before closing


CLOSE_TABLE: dict[Ending, Rule] = {
    Ending.HANDLER_RETURNED: Rule(1000, "", Wire.CLOSE, drain=True),
    Ending.HANDLER_CLOSED: Rule(None, None, Wire.CLOSE, drain=True),
    Ending.PEER_CLOSED: Rule(None, None, Wire.NOTHING, drain=False),
    Ending.PEER_VANISHED: Rule(1006, "", Wire.NOTHING, drain=False),
    Ending.HANDLER_ERROR: Rule(1011, "internal error", Wire.CLOSE, drain=True),
    Ending.KEEPALIVE_TIMEOUT: Rule(1011, "keepalive timeout", Wire.CLOSE, drain=False),
    Ending.WRITE_TIMEOUT: Rule(1006, "write timeout", Wire.ABORT, drain=False),
    Ending.MESSAGE_TOO_BIG: Rule(1009, None, Wire.CLOSE, drain=False),  # the engine's reason
    Ending.UNSUPPORTED_DATA: Rule(1003, "unsupported data", Wire.CLOSE, drain=True),
    Ending.PROTOCOL_ERROR: Rule(None, None, Wire.CLOSE, drain=False),  # 1002 or 1007
    Ending.GOING_AWAY: Rule(1001, "going away", Wire.CLOSE, drain=True),
    Ending.SERVICE_RESTART: Rule(1012, "service restart", Wire.CLOSE, drain=True),
    Ending.SLOW_CONSUMER: Rule(1008, "slow consumer", Wire.CLOSE, drain=False),
    # Policies, not protocol errors: RFC 6455 has no rule on message rates or frame times.
    Ending.RATE_LIMITED: Rule(1008, "rate limit", Wire.CLOSE, drain=True),
    Ending.FRAME_TIMEOUT: Rule(1008, "frame timeout", Wire.CLOSE, drain=False),  # engine sends
    Ending.INTERNAL_ERROR: Rule(1011, "internal error", Wire.CLOSE, drain=False),
}


@attrs.frozen
class Closed:
    """How a connection ended: the value every session resolves to.

    ``code`` is what was sent to the peer (or echoed, for a peer's close);
    1006 means no close frame was exchanged. ``aborted`` is true when the TCP
    connection was dropped before the close handshake completed (the peer did
    not answer in time, or a send could not finish): ``code`` is then the code
    wstrio meant to send, which the peer may not have received.
    """

    ending: Ending
    code: int
    reason: str
    aborted: bool = False


def closed_for(ending: Ending, code: int | None = None, reason: str | None = None) -> Closed:
    """Look ``ending`` up in the table; ``code``/``reason`` fill the event's blanks."""
    rule = CLOSE_TABLE[ending]
    final_code = rule.code if rule.code is not None else code
    if final_code is None:
        raise ValueError(f"{ending.value} needs a close code")
    final_reason = rule.reason if rule.reason is not None else (reason or "")
    return Closed(ending, int(final_code), final_reason)
