"""Route patterns and the checks made when a server is built: parameters, overlaps, trailing
slashes, handler shapes; a Hypothesis model of resolution."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from urllib.parse import quote

import pytest
import trio
from helpers import serving
from hypothesis import given
from hypothesis import strategies as st
from rawhttp import body, get, header, read_all, status, upgrade

import wstrio
from wstrio._http.patterns import Pattern, overlap, split_path
from wstrio._http.routes import resolve_routes


async def room(session: wstrio.Session) -> None:
    await session.send(f"{session.params}")


async def files(session: wstrio.Session) -> None:
    await session.send(session.params["path"])


async def exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        return await read_all(stream)


async def test_parameters_are_matched_per_segment_and_percent_decoded() -> None:
    """``/c/{room}`` takes one decoded segment (``%2F`` stays in it); ``{path:path}`` the rest."""
    routes = {"/c/{room}": room, "/f/{path:path}": files}
    async with serving(routes) as port:
        seen = []
        for path in ("/c/caf%C3%A9", "/c/a%2Fb", "/f/x/y%20z/w"):
            async with wstrio.connect(f"ws://127.0.0.1:{port}{path}") as session:
                seen.append(await session.receive())
        for path in ("/c/", "/c/a/b", "/f/", "/c/%FF"):
            with pytest.raises(wstrio.HandshakeRejected) as rejected:
                async with wstrio.connect(f"ws://127.0.0.1:{port}{path}"):
                    pass
            assert rejected.value.status == 404, path
    assert seen == ["{'room': 'café'}", "{'room': 'a/b'}", "x/y z/w"]


async def test_a_trailing_slash_redirects_a_get_and_names_the_route_to_an_upgrade() -> None:
    """GET /page/ → 308 to /page (query kept); an upgrade to /c/x/ → 404 naming /c/x."""
    routes = {"/page": wstrio.Static("hi"), "/c/{room}": room}
    async with serving(routes) as port:
        redirected = await exchange(port, get("/page/?a=1"))
        refused = await exchange(port, upgrade("/c/x/"))
        unknown = await exchange(port, get("/nowhere/"))
    assert status(redirected) == 308 and header(redirected, "location") == "/page?a=1"
    assert status(refused) == 404 and b"/c/x" in body(refused)
    assert status(unknown) == 404


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/c/{room}", "/c/lobby"),
        ("/c/{a}", "/c/{b}"),
        ("/f/{p:path}", "/f/a/b"),
        ("/x/{p:path}", "/x/{q}/y"),
        ("/a/", "/{x}/"),
    ],
)
def test_two_routes_that_can_match_one_path_are_refused(first: str, second: str) -> None:
    """The error names both patterns."""
    with pytest.raises(ValueError, match="can match the same path") as caught:
        resolve_routes({first: room, second: room})
    assert first in str(caught.value) and second in str(caught.value)


def test_distinct_routes_are_accepted() -> None:
    """Different literals, segment counts, or a trailing slash make routes distinct."""
    resolve_routes({"/c/{room}": room, "/c/{room}/log": room, "/d/{x}": room, "/c": room})
    resolve_routes({"/f/{p:path}": files, "/f": room, "/g/": room, "/g": room})


BAD_ROUTES = {
    "sync-lambda": (lambda: {"/ws": lambda s: None}, TypeError, "async def"),
    "builtin": (lambda: {"/ws": print}, TypeError, "async def"),
    "arity": (lambda: {"/ws": functools.partial(room, 1)}, TypeError, "1 positional argument"),
    "hook-type": (lambda: {"/ws": wstrio.Route(room, on_handshake=42)}, TypeError, "on_handshake"),
    "hook-arity": (
        lambda: {"/ws": wstrio.Route(room, on_handshake=lambda a, b: None)},
        TypeError,
        "on_handshake must take 1",
    ),
    "unclosed": (lambda: {"/c/{room": room}, ValueError, "'/c/{room'"),
    "partial-segment": (lambda: {"/c/x{room}": room}, ValueError, "whole segment"),
    "path-not-last": (lambda: {"/c/{p:path}/x": room}, ValueError, "must come last"),
    "repeated-name": (lambda: {"/c/{a}/{a}": room}, ValueError, "twice"),
    "shadows-builtin": (lambda: {"/{name}": room}, ValueError, "/healthz"),
    "relative": (lambda: {"ws": room}, ValueError, "start with '/'"),
    "not-a-handler": (lambda: {"/ws": 42}, TypeError, "'/ws'"),
}


@pytest.mark.parametrize(("make", "error", "words"), BAD_ROUTES.values(), ids=BAD_ROUTES.keys())
async def test_a_route_of_the_wrong_shape_fails_when_the_server_is_built(
    make: Callable[[], dict[str, object]], error: type[Exception], words: str
) -> None:
    """Sync handlers, wrong arity, bad hooks and bad patterns: a clear error at start-up."""
    with pytest.raises(error, match=re.escape(words)):
        wstrio.Server(make())  # type: ignore[arg-type]


async def test_async_callables_of_every_kind_are_handlers() -> None:
    """Coroutine functions, partials of them, bound methods and async __call__ objects."""

    class App:
        async def __call__(self, session: wstrio.Session) -> None:
            pass

        async def method(self, session: wstrio.Session) -> None:
            pass

    async def two(session: wstrio.Session, extra: int) -> None:
        pass

    wstrio.Server({"/a": App(), "/b": App().method, "/c": functools.partial(two, extra=1)})


segment_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)


@given(st.lists(segment_text, min_size=1, max_size=5))
def test_percent_decoding_never_crosses_a_segment(segments: list[str]) -> None:
    """Any segments, each percent-encoded and joined by '/', split back into themselves."""
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    assert split_path(path) == segments


PATTERN_SEGMENTS = st.sampled_from(["a", "b", "", "{p}", "{q:path}"])


@st.composite
def patterns(draw: st.DrawFn) -> Pattern:
    parts = draw(st.lists(PATTERN_SEGMENTS, min_size=1, max_size=4))
    text, names = [], 0
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if (part == "{q:path}" and not last) or (part == "" and not last):
            part = "a"
        if part.startswith("{"):
            names += 1
            part = f"{{p{names}}}" if part == "{p}" else f"{{q{names}:path}}"
        text.append(part)
    return Pattern.compile("/" + "/".join(text))


PATHS = st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=1, max_size=5)


@given(st.lists(patterns(), max_size=5), PATHS)
def test_any_accepted_table_resolves_a_path_to_at_most_one_route(
    chosen: list[Pattern], segments: list[str]
) -> None:
    """Patterns the table accepts never both match a path; refused ones really overlap."""
    accepted: list[Pattern] = []
    for pattern in chosen:
        if not any(overlap(pattern, other) for other in accepted):
            accepted.append(pattern)
    matching = [p for p in accepted if p.match(segments) is not None]
    assert len(matching) <= 1
    for a in chosen:
        for b in chosen:
            if a.match(segments) is not None and b.match(segments) is not None:
                assert overlap(a, b), (a.text, b.text, segments)
