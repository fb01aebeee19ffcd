"""Config refuses nonsense at construction, with a message naming the field."""

from __future__ import annotations

import attrs
import pytest

import wstrio


def test_defaults_are_documented_values() -> None:
    """The defaults are the documented ones, and the value is frozen."""
    config = wstrio.Config()
    assert (config.ping_interval, config.ping_timeout) == (20.0, 20.0)
    assert (config.close_timeout, config.write_timeout) == (10.0, 10.0)
    assert (config.inbox_size, config.outbox_size, config.max_message_size) == (16, 64, 2**20)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.inbox_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ping_interval", -1), ("ping_timeout", 0), ("close_timeout", -0.5),
        ("write_timeout", float("nan")), ("handshake_timeout", "10"), ("shutdown_timeout", 0),
        ("inbox_size", 0), ("outbox_size", -3), ("max_message_size", 0),
        ("receive_buffer_size", 1.5), ("inbox_size", True),
    ],
)
def test_nonsense_values_are_refused(field: str, value: object) -> None:
    """Negative, zero, NaN and wrongly typed values are refused, naming the field."""
    with pytest.raises(ValueError, match=field):
        wstrio.Config(**{field: value})  # type: ignore[arg-type]


def test_ping_timeout_longer_than_interval_is_refused() -> None:
    """A pong must be due before the next ping: ping_timeout <= ping_interval."""
    with pytest.raises(ValueError, match="ping_timeout"):
        wstrio.Config(ping_interval=5, ping_timeout=6)
    assert wstrio.Config(ping_interval=5, ping_timeout=5).ping_timeout == 5


def test_heartbeat_can_be_turned_off() -> None:
    """ping_interval=None turns the heartbeat off; ping_timeout is then free."""
    assert wstrio.Config(ping_interval=None, ping_timeout=60).ping_interval is None


def test_routes_are_checked() -> None:
    """Route paths must start with '/' and map to a handler."""
    with pytest.raises(ValueError, match="start with"):
        wstrio.Server({"ws/echo": wstrio.echo})
    with pytest.raises(TypeError):
        wstrio.Server({"/ws/echo": 42})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        wstrio.Route(wstrio.echo, accepts="json")  # type: ignore[arg-type]
