"""HTTP header lookup, case-insensitive, in one place (RFC 7230 3.2: names are case-insensitive)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import overload

import attrs


def first_value(
    pairs: Iterable[tuple[str, str]], name: str, default: str | None = None
) -> str | None:
    """The value of the first ``(name, value)`` pair whose name matches ``name``, or ``default``."""
    wanted = name.lower()
    for key, value in pairs:
        if key.lower() == wanted:
            return value
    return default


@attrs.frozen
class Headers:
    """Request headers: case-insensitive, in order, repeated names kept."""

    items: tuple[tuple[str, str], ...] = ()

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    @overload
    def get(self, name: str, default: str | None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, or ``default``."""
        return first_value(self.items, name, default)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        wanted = name.lower()
        return [value for key, value in self.items if key.lower() == wanted]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
