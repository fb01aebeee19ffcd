"""Hostile HTTP heads: whatever a client sends before the upgrade, the server answers with
well-formed HTTP (an error status, or 101 for a valid upgrade, after a ``100 Continue`` at
most) or closes the connection, within ``handshake_timeout``, logs nothing above INFO and
no traceback, and keeps serving others.

Three generators: a valid upgrade request with mutations whose statuses are known (the
table of docs/reference/http.md: repeated and conflicting headers, ``Upgrade`` in odd case,
conflicting ``Content-Length``/``Transfer-Encoding``, non-ASCII, NULs, bare LF, obs-fold,
absurd lengths...); header soups with no structure promised; arbitrary bytes. Responses are
read by h11 as a client (never by wstrio). Most examples run the real server over
wstrio.testing's in-memory streams on MockClock (the same HTTP front, with and without an
EOF after the request); a subset goes over loopback TCP to a server in a thread.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import attrs
import h11
import pytest
import trio
import trio.testing
from fuzzkit import KEY, accept_of, budget, chunked, example, loud_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wstrio
from wstrio.testing import open_memory_server

TIMEOUT = 10.0  # handshake_timeout
CONFIG = wstrio.Config(ping_interval=None, handshake_timeout=TIMEOUT, close_timeout=2)
LIMIT = CONFIG.max_header_bytes


async def echo(session: wstrio.Session) -> None:
    async for message in session:
        await session.send(message)


ROUTES = {"/ws/echo": wstrio.Route(echo, subprotocols=("chat",))}


# -- requests, byte by byte ------------------------------------------------------------------
@attrs.frozen
class Request:
    """A request as written: any method, target, version, header lines, line ends, folds."""

    method: bytes = b"GET"
    target: bytes = b"/ws/echo"
    version: bytes = b"HTTP/1.1"
    headers: tuple[tuple[bytes, bytes], ...] = (
        (b"Host", b"wstrio.test"),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", KEY.encode()),
        (b"Sec-WebSocket-Version", b"13"),
    )
    body: bytes = b""
    eol: bytes = b"\r\n"
    fold: bytes | None = None  # this header's value is continued on an obs-fold line
    colon: bytes = b": "

    def encode(self) -> bytes:
        lines = [b"%s %s %s" % (self.method, self.target, self.version)]
        for name, value in self.headers:
            if self.fold is not None and name.lower() == self.fold and len(value) > 1:
                half = len(value) // 2
                lines.append(name + self.colon + value[:half])
                lines.append(b" " + value[half:])
            else:
                lines.append(name + self.colon + value)
        return self.eol.join(lines) + self.eol + self.eol + self.body

    def values(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def without(self, name: bytes) -> tuple[tuple[bytes, bytes], ...]:
        return tuple((k, v) for k, v in self.headers if k.lower() != name.lower())

    def replaced(self, name: bytes, value: bytes) -> Request:
        headers = [(k, value if k.lower() == name.lower() else v) for k, v in self.headers]
        return attrs.evolve(self, headers=tuple(headers))

    def added(self, *headers: tuple[bytes, bytes]) -> Request:
        return attrs.evolve(self, headers=(*self.headers, *headers))


UPGRADED = frozenset({101})
EITHER = frozenset({101, 400})  # the RFCs let a server accept or refuse it
Change = Callable[[st.DrawFn, Request], Request]


def pick(*values: bytes) -> Callable[[st.DrawFn], bytes]:
    return lambda draw: draw(st.sampled_from(values))


def replace(name: bytes, value: Callable[[st.DrawFn], bytes]) -> Change:
    return lambda draw, r: r.replaced(name, value(draw))


def add(*headers: tuple[bytes, Callable[[st.DrawFn], bytes] | bytes]) -> Change:
    def apply(draw: st.DrawFn, r: Request) -> Request:
        return r.added(*((k, v if isinstance(v, bytes) else v(draw)) for k, v in headers))

    return apply


def drop(name: bytes) -> Change:
    return lambda draw, r: attrs.evolve(r, headers=r.without(name))


def change(**fields: object) -> Change:
    return lambda draw, r: attrs.evolve(r, **fields)


def then(*changes: Change) -> Change:
    def apply(draw: st.DrawFn, r: Request) -> Request:
        for one in changes:
            r = one(draw, r)
        return r

    return apply


def _cased(draw: st.DrawFn, r: Request) -> Request:
    cases = [lambda k: k, bytes.lower, bytes.upper, bytes.swapcase]
    headers = tuple((draw(st.sampled_from(cases))(k), v) for k, v in r.headers)
    return attrs.evolve(r, headers=headers)


def _shuffled(draw: st.DrawFn, r: Request) -> Request:
    return attrs.evolve(r, headers=tuple(draw(st.permutations(r.headers))))


def _extras(draw: st.DrawFn, r: Request) -> Request:
    names = st.sampled_from([b"X-Junk", b"User-Agent", b"Accept", b"Cookie"])
    values = st.binary(max_size=30).map(_visible)
    return r.added(*draw(st.lists(st.tuples(names, values), max_size=5)))


@attrs.frozen
class Mutation:
    """A change to a valid upgrade, the part of the request it touches, and the statuses the
    server may then answer (101: the upgrade goes through; any other is a refusal)."""

    name: str
    part: str
    apply: Change
    statuses: frozenset[int]


def _m(name: str, part: str, apply: Change, *statuses: int) -> Mutation:
    return Mutation(name, part, apply, frozenset(statuses))


KEY2 = b"AAAAAAAAAAAAAAAAAAAAAA=="
DEFLATE = b"permessage-deflate"
MUTATIONS = [
    # harmless: the upgrade goes through
    _m("header names in any case", "names", _cased, 101),
    _m("Upgrade in odd case", "upgrade",
       replace(b"upgrade", pick(b"WebSocket", b"WEBSOCKET", b"websocket, h2c")), 101),
    _m("Connection with more tokens", "connection",
       replace(b"connection", pick(b"keep-alive, Upgrade", b"upgrade", b"Upgrade, foo")), 101),
    _m("Connection over two lines", "connection",
       then(drop(b"connection"), add((b"Connection", b"keep-alive"), (b"Connection", b"Upgrade"))),
       101),
    _m("spaces around values", "upgrade", replace(b"upgrade", pick(b"  websocket \t")), 101),
    _m("headers shuffled", "order", _shuffled, 101),
    _m("extra headers", "extra", _extras, 101),
    _m("a subprotocol", "protocol",
       add((b"Sec-WebSocket-Protocol", pick(b"chat", b"other, chat", b"x"))), 101),
    _m("an extension offer", "extensions", add((b"Sec-WebSocket-Extensions", pick(
        DEFLATE + b"; client_max_window_bits", b"x-unknown", DEFLATE + b"; x=1",
        DEFLATE + b", " + DEFLATE + b"; server_no_context_takeover"))), 101),
    _m("the same origin", "origin", add((b"Origin", b"http://wstrio.test")), 101),
    _m("absolute-form target", "target", change(target=b"http://wstrio.test/ws/echo"), 101),
    _m("a query", "target", change(target=b"/ws/echo?a=1&b"), 101),
    _m("Expect: 100-continue", "expect", add((b"Expect", b"100-continue")), 101),
    # either: an RFC lets the server accept or refuse
    _m("obs-fold in an extra header", "fold",
       then(add((b"X-Folded", b"first second")), change(fold=b"x-folded")), 101, 400),
    _m("bare LF line ends", "eol", change(eol=b"\n"), 101, 400),
    _m("a body with Content-Length", "body",
       then(add((b"Content-Length", b"5")), change(body=b"hello")), 101, 400),
    _m("a chunked body", "body", then(add((b"Transfer-Encoding", b"chunked")),
                                      change(body=b"5\r\nhello\r\n0\r\n\r\n")), 101, 400),
    _m("non-ASCII in an extra header", "x-name", add((b"X-Name", "é".encode())), 101, 400),
    # refused
    _m("two Host", "host", add((b"Host", pick(b"wstrio.test", b"evil.test"))), 400),
    _m("no Host", "host", drop(b"host"), 400),
    _m("non-ASCII Host", "host", replace(b"host", pick("wstrió.test".encode())), 400),
    _m("two Sec-WebSocket-Key", "key", add((b"Sec-WebSocket-Key", pick(KEY.encode(), KEY2))), 400),
    _m("a bad key", "key", replace(b"sec-websocket-key", pick(
        b"", b"short", b"!!!!!!!!!!!!!!!!!!!!!!==", b"AAAAAAAAAAAAAAAAAAAA", b"AAAA AAAA")), 400),
    _m("no key", "key", drop(b"sec-websocket-key"), 400),
    _m("obs-fold in the key", "fold", change(fold=b"sec-websocket-key"), 400),
    _m("two Sec-WebSocket-Version", "version", add((b"Sec-WebSocket-Version", b"13")), 400),
    _m("another version", "version",
       replace(b"sec-websocket-version", pick(b"8", b"12", b"13, 8", b"1 3", b"")), 426),
    _m("no version", "version", drop(b"sec-websocket-version"), 426),
    _m("Connection without upgrade", "connection",
       replace(b"connection", pick(b"keep-alive", b"close", b"upgrades", b"x-upgrade")), 400),
    _m("no Connection", "connection", drop(b"connection"), 400),
    _m("no Upgrade (a plain GET on a WebSocket route)", "upgrade", drop(b"upgrade"), 426),
    _m("Upgrade to something else", "upgrade",
       replace(b"upgrade", pick(b"h2c", b"websockets", b"web socket")), 426),
    _m("another method", "method",
       lambda d, r: attrs.evolve(r, method=pick(b"POST", b"PUT", b"DELETE", b"OPTIONS")(d)), 405),
    _m("HEAD", "method", change(method=b"HEAD"), 405),
    _m("another HTTP version", "http",
       lambda d, r: attrs.evolve(r, version=pick(b"HTTP/1.0", b"HTTP/2.0")(d)), 400, 505),
    _m("two Origin", "origin",
       add((b"Origin", b"http://wstrio.test"), (b"Origin", b"http://wstrio.test")), 400),
    _m("another origin", "origin", add((b"Origin", pick(
        b"http://evil.test", b"null", b"http://wstrio.test.evil", b"http://wstrio.test:81"))), 403),
    _m("non-ASCII subprotocol", "protocol",
       add((b"Sec-WebSocket-Protocol", "é".encode())), 400),
    _m("a subprotocol that is no token", "protocol",
       add((b"Sec-WebSocket-Protocol", b"a b")), 400),
    _m("a malformed extension header", "extensions", add(
        (b"Sec-WebSocket-Extensions", pick(DEFLATE + b"; =", b"a;;b", b'x; y="'))), 400),
    _m("an unknown path", "target", change(target=b"/nowhere"), 404),
    _m("a target over max_header_bytes", "target",
       change(target=b"/ws/echo?" + b"q" * LIMIT), 414, 431),
    _m("a NUL in a header", "x-nul", add((b"X-Nul", b"a\x00b")), 400),
    _m("a space before the colon", "colon", change(colon=b" : "), 400),
    _m("conflicting Content-Length", "body",
       add((b"Content-Length", b"1"), (b"Content-Length", b"2")), 400),
    _m("Content-Length and Transfer-Encoding", "body", then(
        add((b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")),
        change(body=b"0\r\n\r\n")), 400),
    _m("an unknown Transfer-Encoding", "body", add((b"Transfer-Encoding", b"gzip")), 400, 501),
    _m("a body over max_body_size", "body",
       add((b"Content-Length", str(CONFIG.max_body_size + 1).encode())), 413),
    _m("a header over max_header_bytes", "size", lambda d, r: r.added(
        (b"X-Big", b"x" * (LIMIT + d(st.integers(1, 2 * LIMIT))))), 431),
    _m("too many headers", "size",
       add(*[(b"X-%d" % n, b"y" * 40) for n in range(LIMIT // 40)]), 431),
]  # fmt: skip


def _visible(data: bytes) -> bytes:
    """``data`` as a header value h11 accepts: visible ASCII and obs-text, no edge spaces."""
    return bytes(b if 0x21 <= b <= 0x7E or b >= 0x80 else 0x2D for b in data)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Request, frozenset[int], list[str]]:
    """A valid upgrade with up to three mutations, and the statuses it may be answered with:
    a refusal's if any mutation is refused (several: any of theirs, the first check decides),
    at most one mutation per part of the request (two on one header would undo each other),
    else 101, or 101 or 400 for what an RFC leaves to the server."""
    request = Request()
    chosen = draw(st.lists(st.sampled_from(MUTATIONS), max_size=3, unique_by=lambda m: m.part))
    for mutation in chosen:
        request = mutation.apply(draw, request)
    refused = [m.statuses for m in chosen if 101 not in m.statuses]
    either = any(m.statuses == EITHER for m in chosen)
    if refused:
        statuses = frozenset().union(*refused) | ({400} if either else set())
    else:
        statuses = EITHER if either else UPGRADED
    return request, statuses, [m.name for m in chosen]


# -- reading the answer ------------------------------------------------------------------------
@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def answers(reply: bytes, method: bytes = b"GET") -> list[Answer]:
    """The responses in ``reply``, read by h11 as a client (each after a request like the
    one sent; 1xx kept); AssertionError for bytes that are not well-formed responses."""
    out: list[Answer] = []
    while reply:
        conn = h11.Connection(h11.CLIENT)
        conn.send(
            h11.Request(
                method=method if method in (b"GET", b"HEAD") else b"GET",
                target="/",
                headers=[("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade")],
            )
        )
        conn.send(h11.EndOfMessage())
        conn.receive_data(reply)
        conn.receive_data(b"")
        final: Answer | None = None
        body = b""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                problem = f"not a well-formed response: {exc}: {reply[:300]!r}"
                raise AssertionError(problem) from None
            if isinstance(event, h11.InformationalResponse | h11.Response):
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                answer = Answer(event.status_code, headers, b"")
                if event.status_code == 101:
                    return [*out, answer]  # WebSocket frames follow
                if isinstance(event, h11.InformationalResponse):
                    out.append(answer)
                else:
                    final = answer
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert final is not None
                out.append(attrs.evolve(final, body=body))
                reply = conn.trailing_data[0]
                break
            else:
                raise AssertionError(f"a response cut short ({event!r}): {reply[:300]!r}")
    return out


def read_answers(reply: bytes, method: bytes) -> list[Answer]:
    """:func:`answers` by the rules of ``method``; for a HEAD, by GET's too where the server
    may send content: a 400, 413, 431, 501 or 505 can come before h11 read any method."""
    try:
        return answers(reply, method)
    except AssertionError:
        lenient = {b"400", b"413", b"431", b"501", b"505"}
        final = re.sub(rb"^(HTTP/1\.1 100 [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)+", b"", reply)
        if method != b"HEAD" or final[9:12] not in lenient:
            raise
        return answers(reply, b"GET")


def check_answers(
    got: list[Answer], allowed: frozenset[int] | None, key: str | None, method: bytes = b"GET"
) -> None:
    """Interim 100s, then refusals (keep-alive may answer several requests), or a 101 last;
    ``allowed`` (if given) holds the final status; a 101 carries the accept for ``key``; a
    refusal's content is one line, as long as its Content-Length says (none for HEAD)."""
    if not got:
        return  # closed without an answer
    *interim, final = got
    assert all(a.status == 100 or 400 <= a.status <= 599 for a in interim), interim
    assert final.status == 101 or 400 <= final.status <= 599, final
    if allowed is not None:
        assert final.status in allowed, (final, allowed)
    if final.status == 405:
        assert "allow" in final.headers  # RFC 9110 15.5.6
    if final.status == 426:
        assert "upgrade" in final.headers or "sec-websocket-version" in final.headers
    if final.status == 101:
        assert key is not None, "a 101 for a request without one Sec-WebSocket-Key"
        assert final.headers.get("sec-websocket-accept") == accept_of(key)
    elif final.body or method != b"HEAD":
        assert final.body.endswith(b"\n")
        assert int(final.headers["content-length"]) == len(final.body)


def only_key(data: bytes) -> str | None:
    """The request's Sec-WebSocket-Key if it has exactly one (as h11 would read it)."""
    keys = re.findall(rb"(?im)^sec-websocket-key[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", data)
    return keys[0].decode("latin-1") if len(keys) == 1 else None


# -- the in-memory server ------------------------------------------------------------------------
async def exchange(data: bytes, sizes: list[int], eof: bool) -> tuple[bytes, float]:
    """Send ``data`` (in ``sizes`` chunks, then EOF if ``eof``) to a fresh server, and read
    until it closes or its 101 is whole: (the reply, MockClock seconds until then). Meanwhile,
    with the hostile connection still open, a valid client gets its echo from the same server."""
    async with open_memory_server(ROUTES, config=CONFIG) as server:
        stream = await server.open_stream()
        start = trio.current_time()
        with contextlib.suppress(trio.BrokenResourceError):  # it may answer and close first
            for piece in chunked(data, sizes, 50):
                await stream.send_all(piece)
            if eof:
                await stream.send_eof()
        async with server.connect("/ws/echo") as session:
            await session.send("still serving")
            assert await session.receive() == "still serving"
        reply = b""
        while chunk := await stream.receive_some(65536):
            reply += chunk
            if re.match(rb"(HTTP/1.1 100 [^\r]*\r\n\r\n)?HTTP/1.1 101 .*?\r\n\r\n", reply, re.S):
                break  # the upgrade went through: the session is the echo's
        elapsed = trio.current_time() - start
        await stream.aclose()
    return reply, elapsed


def run_exchange(data: bytes, sizes: list[int], eof: bool) -> tuple[bytes, float]:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(exchange, data, sizes, eof, clock=clock)


HEADS = settings(
    max_examples=budget(400),
    deadline=5000,
    # caplog is cleared at the start of each example, so sharing it between examples is safe;
    # each example is a trio.run of a whole server, by design
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
deliveries = st.tuples(st.lists(st.integers(1, 200), max_size=3), st.booleans())


@HEADS
@given(case=mutated(), delivery=deliveries)
def test_mutated_upgrades_get_the_documented_status(
    case: tuple[Request, frozenset[int], list[str]],
    delivery: tuple[list[int], bool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each mutation of a valid upgrade gets its status from the table, at once, quietly."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    request, allowed, _ = case
    sizes, eof = delivery
    data = request.encode()
    with example("http heads: mutated upgrades (memory)"):
        reply, elapsed = run_exchange(data, sizes, eof)
        got = read_answers(reply, request.method)
        assert got, "a whole request gets an answer"
        check_answers(got, allowed, only_key(data), request.method)
        assert elapsed <= TIMEOUT if got[-1].status != 101 else elapsed == 0
        assert loud_records(caplog.records) == []


#: Pieces of header soups: names (WebSocket's, framing's, junk), values (valid, odd, absurd).
NAMES = [b"Host", b"Upgrade", b"Connection", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version",
         b"Sec-WebSocket-Protocol", b"Sec-WebSocket-Extensions", b"Origin", b"Content-Length",
         b"Transfer-Encoding", b"Expect", b"X-Forwarded-For", b"Forwarded", b"", b"X\x00Y",
         b"H\xc3\xa9", b"A B"]  # fmt: skip
VALUES = [b"websocket", b"Upgrade", KEY.encode(), b"13", b"wstrio.test", b"chunked", b"0", b"-1",
          b"99999999999999999999", b"100-continue", b"permessage-deflate", b"\x00", b"\xff\xfe",
          "é".encode(), b"a\rb", b"", b" ", b"1.2.3.4", b"for=x"]  # fmt: skip


TARGETS = [b"/ws/echo", b"*", b"/nowhere", b"//", b"/ws/echo?\xff", b"http://wstrio.test/ws/echo",
           b"", b"/" + b"a" * 300]  # fmt: skip
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1 ", b"", b"http/1.1", b"HTTP/9.9"]


@st.composite
def soups(draw: st.DrawFn) -> bytes:
    """A request line and header lines from the pools above, in any number and order, each
    ended by CRLF, LF or CR, maybe folded, maybe cut short anywhere, maybe with junk after."""
    method = draw(st.sampled_from([b"GET", b"POST", b"get", b"G\x00T", b"", b"CONNECT"]))
    target = draw(st.sampled_from(TARGETS))
    version = draw(st.sampled_from(VERSIONS))
    ends = st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r"])
    data = b"%s %s %s" % (method, target, version) + draw(ends)
    for _ in range(draw(st.integers(0, 12))):
        name = draw(st.one_of(st.sampled_from(NAMES), st.binary(max_size=8)))
        value = draw(st.one_of(st.sampled_from(VALUES), st.binary(max_size=20)))
        separator = draw(st.sampled_from([b": ", b":", b" : ", b":\t", b""]))
        data += name + separator + value + draw(ends)
        if draw(st.integers(0, 9)) == 0:
            data += b" folded" + draw(ends)  # obs-fold
    data += draw(ends)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data + draw(st.binary(max_size=20))


@HEADS
@given(data=st.one_of(soups(), st.binary(max_size=400)), delivery=deliveries)
def test_header_soups_and_arbitrary_bytes_get_well_formed_answers(
    data: bytes, delivery: tuple[list[int], bool], caplog: pytest.LogCaptureFixture
) -> None:
    """Anything at all: well-formed refusals or a close, in time, quietly, others served."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    sizes, eof = delivery
    with example("http heads: soups and bytes (memory)"):
        reply, elapsed = run_exchange(data, sizes, eof)
        got = answers(reply)
        check_answers(got, None, only_key(data))
        assert elapsed <= TIMEOUT
        assert loud_records(caplog.records) == []


# -- loopback ----------------------------------------------------------------------------------
LOOPBACK_TIMEOUT = 5.0
LOOPBACK = attrs.evolve(CONFIG, handshake_timeout=LOOPBACK_TIMEOUT)


@attrs.define
class ThreadServer:
    """A wstrio server on 127.0.0.1 in a thread of its own (its own trio.run)."""

    port: int = 0
    _token: trio.lowlevel.TrioToken | None = None
    _server: wstrio.Server | None = None
    _ready: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _main(self) -> None:
        self._server = wstrio.Server(ROUTES, config=LOOPBACK)
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self.port = await nursery.start(functools.partial(self._server.run, port=0))
            self._ready.set()

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        trio.from_thread.run_sync(self._server.stop, trio_token=self._token)
        self._thread.join(30)


@pytest.fixture(scope="module")
def loopback() -> Iterator[ThreadServer]:
    server = ThreadServer()
    server.start()
    yield server
    server.stop()


def tcp_exchange(port: int, data: bytes) -> tuple[bytes, float, bool]:
    """Send ``data`` then EOF over TCP; (the reply, seconds until the server closed, whether
    it reset the connection instead of closing it)."""
    start = time.monotonic()
    reply, reset = b"", False
    with socket.create_connection(("127.0.0.1", port), timeout=LOOPBACK_TIMEOUT + 5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            reset = True
    return reply, time.monotonic() - start, reset


def tcp_echo(port: int) -> None:
    """A valid upgrade and one echoed message over TCP: the server still serves."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(Request().encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 101 ")
        sock.sendall(b"\x81\x84\x00\x00\x00\x00ping")  # "ping", masked with a zero key
        frame = reply.partition(b"\r\n\r\n")[2]
        while len(frame) < 6:
            frame += sock.recv(65536)
        assert frame[:6] == b"\x81\x04ping"


@settings(HEADS, max_examples=budget(150))
@given(case=st.one_of(mutated(), soups().map(lambda d: (d, None, []))))
def test_hostile_heads_over_loopback_get_well_formed_answers(
    case: tuple[Request | bytes, frozenset[int] | None, list[str]],
    loopback: ThreadServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over real TCP: well-formed answers, in time, quietly, and a valid client served."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    request, allowed, _ = case
    data = request.encode() if isinstance(request, Request) else request
    with example("http heads: mutated upgrades and soups (loopback)"):
        reply, elapsed, reset = tcp_exchange(loopback.port, data)
        method = request.method if isinstance(request, Request) else b"GET"
        got = read_answers(reply, method)
        check_answers(got, allowed, only_key(data), method)
        assert not (reset and not got), "reset before any answer"
        assert elapsed < LOOPBACK_TIMEOUT
        tcp_echo(loopback.port)
        assert loud_records(caplog.records) == []
