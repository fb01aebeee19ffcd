"""A directory served over plain HTTP: :class:`StaticDir`.

Theory of operation: a ``StaticDir`` mounted at ``/assets`` answers GET and
HEAD for ``/assets/<relative path>``. The relative path comes from the
request's decoded segments (so ``%2e%2e`` is ``..`` like any other spelling);
any segment that is ``..``, ``.``, empty inside the path, or holds a ``/``,
``\\`` or NUL is a 404 before the file system is touched, and so is a dotfile
(``.env``, ``.git/``; ``.well-known/`` is served). The file found is
then resolved (symlinks followed) and must still lie inside the resolved
directory: a symlink pointing out is a 404 too. Content types come from
``mimetypes``; the ``ETag`` is made of the file's size and modification time,
so ``If-None-Match`` gets 304 without reading the file. A directory serves its
``index.html``. Files are read whole (``max_file_size`` bounds them); this is
for an application's assets, not for large downloads.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

import attrs

_BAD_PARTS = frozenset({"", ".", ".."})


def _directory(path: str | os.PathLike[str]) -> Path:
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise ValueError(f"StaticDir: not a directory: {path!s}")
    return resolved


@attrs.frozen
class StaticFile:
    """A file found for a request: its bytes, content type and ETag."""

    body: bytes
    content_type: str
    etag: str


@attrs.frozen
class StaticDir:
    """Serve the files under ``path`` (GET and HEAD), ``index.html`` for a directory.

    ``max_file_size`` (bytes) bounds what is served; larger files are 404.
    Raises ValueError at once if ``path`` is not a directory.
    """

    path: Path = attrs.field(converter=_directory)
    index: str = "index.html"
    max_file_size: int = 16 * 2**20

    def find(self, parts: list[str]) -> StaticFile | None:
        """The file at the decoded path segments ``parts`` (``[]`` or ``[""]``: the index),
        or None (missing, outside the directory, too large, unreadable)."""
        if parts and parts[-1] == "":
            parts = [*parts[:-1], self.index]
        elif not parts:
            parts = [self.index]
        for part in parts:
            if part in _BAD_PARTS or any(c in part for c in "/\\\0"):
                return None
            if part.startswith(".") and part != ".well-known":
                return None  # dotfiles (.env, .git/) are never served
        candidate = self.path.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
            if resolved.is_dir():
                resolved = (resolved / self.index).resolve(strict=True)
            if not resolved.is_relative_to(self.path) or not resolved.is_file():
                return None
            stat = resolved.stat()
            if stat.st_size > self.max_file_size:
                return None
            body = resolved.read_bytes()
        except (OSError, RuntimeError):  # missing, a loop of symlinks, no permission
            return None
        content_type, encoding = mimetypes.guess_type(resolved.name)
        if content_type is None or encoding is not None:
            content_type = "application/octet-stream"
        elif content_type.startswith("text/") or content_type in _TEXT_LIKE:
            content_type += "; charset=utf-8"
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        return StaticFile(body, content_type, etag)


_TEXT_LIKE = frozenset({"application/javascript", "application/json", "image/svg+xml"})


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or is ``*``; RFC 9110 13.1.2,
    weak comparison)."""
    if if_none_match is None:
        return False
    for item in if_none_match.split(","):
        tag = item.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
