"""Route patterns: ``"/c/{room}"`` and ``"/files/{path:path}"``, matched segment by segment.

Theory of operation: a pattern is a sequence of segments, each a literal
(``c``), a parameter (``{room}``: one non-empty segment) or, last only, a path
parameter (``{path:path}``: one or more segments, joined by ``/``). A request
path is split on ``/`` *before* percent-decoding, and each segment is decoded
on its own (strict UTF-8), so ``%2F`` inside a segment is a character of that
segment and never a separator: decoding never crosses a segment. Two patterns
*overlap* when some path matches both; :func:`overlap` decides it from the
segments alone, so a route table can be refused at start-up instead of
resolving a path by declaration order.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote

import attrs

Kind = Literal["literal", "param", "path"]
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}\Z")


@attrs.frozen
class Segment:
    kind: Kind
    value: str  # the literal text, or the parameter's name


def split_path(path: str) -> list[str] | None:
    """The percent-decoded segments of a request path (``/a/b%2Fc`` → ``["a", "b/c"]``);
    None if a segment is not valid percent-encoded UTF-8."""
    segments = []
    for raw in path.split("/")[1:]:
        try:
            segments.append(unquote(raw, errors="strict"))
        except UnicodeDecodeError:
            return None
    return segments


@attrs.frozen
class Pattern:
    """A compiled route pattern; build with :meth:`compile`."""

    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def compile(cls, text: str) -> Pattern:
        """Compile ``text``; ValueError names what is wrong with it."""
        if not isinstance(text, str) or not text.startswith("/"):
            raise ValueError(f"route path must start with '/': {text!r}")
        if "?" in text or "#" in text:
            raise ValueError(f"route path must have no query or fragment: {text!r}")
        segments: list[Segment] = []
        names: set[str] = set()
        parts = text.split("/")[1:]
        for i, part in enumerate(parts):
            if "{" not in part and "}" not in part:
                if part == "" and i != len(parts) - 1:
                    raise ValueError(f"route path has an empty segment ('//'): {text!r}")
                segments.append(Segment("literal", part))
                continue
            found = _PARAM.match(part)
            if found is None:
                raise ValueError(
                    f"route path {text!r}: a parameter is a whole segment, '{{name}}' or "
                    f"'{{name:path}}', not {part!r}"
                )
            name, converter = found.group(1), found.group(2)
            if converter not in (None, "path"):
                raise ValueError(f"route path {text!r}: unknown converter {converter!r}")
            if name in names:
                raise ValueError(f"route path {text!r}: parameter {name!r} appears twice")
            names.add(name)
            if converter == "path" and i != len(parts) - 1:
                raise ValueError(f"route path {text!r}: '{{{name}:path}}' must come last")
            segments.append(Segment("path" if converter else "param", name))
        return cls(text, tuple(segments))

    @property
    def is_literal(self) -> bool:
        return all(s.kind == "literal" for s in self.segments)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The parameters if the decoded ``segments`` match, else None."""
        params: dict[str, str] = {}
        mine = self.segments
        for i, segment in enumerate(mine):
            if segment.kind == "path":
                rest = "/".join(segments[i:])
                if not rest:
                    return None
                params[segment.value] = rest
                return params
            if i >= len(segments):
                return None
            seen = segments[i]
            if segment.kind == "literal":
                if seen != segment.value:
                    return None
            elif not seen:
                return None
            else:
                params[segment.value] = seen
        return params if len(segments) == len(mine) else None


def _fits(a: Segment, b: Segment) -> bool:
    """Some one segment matches both ``a`` and ``b`` (neither is a path parameter)."""
    if a.kind == "literal" and b.kind == "literal":
        return a.value == b.value
    if a.kind == "literal":
        return a.value != ""
    if b.kind == "literal":
        return b.value != ""
    return True


def _tail_fits(rest: tuple[Segment, ...]) -> bool:
    """A path parameter (one or more segments, not all empty) can match what ``rest`` matches."""
    return bool(rest) and not (len(rest) == 1 and rest[0] == Segment("literal", ""))


def overlap(a: Pattern, b: Pattern) -> bool:
    """True if some request path matches both patterns."""
    x, y = a.segments, b.segments
    for i in range(max(len(x), len(y))):
        if i < len(x) and x[i].kind == "path":
            return _tail_fits(y[i:])
        if i < len(y) and y[i].kind == "path":
            return _tail_fits(x[i:])
        if i >= len(x) or i >= len(y) or not _fits(x[i], y[i]):
            return False
    return True
