"""wstrio.connect over 127.0.0.1: against wstrio's server and servers nobody here wrote."""

from __future__ import annotations

import errno
import functools
import ssl

import pytest
import trio
import trustme
from websockets.trio.server import ServerConnection
from websockets.trio.server import serve as websockets_serve
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

import wstrio
from wstrio import Ending

QUIET = wstrio.Config(ping_interval=None, close_timeout=2)


async def closer(session: wstrio.Session) -> None:
    """Close with the code the client asks for in the query, or echo until closed."""
    if "code" in session.query:
        raise wstrio.CloseConnection(int(session.query["code"]), "server says bye")
    async for message in session:
        await session.send(message)
    await trio.lowlevel.checkpoint()


async def start_wstrio(nursery: trio.Nursery) -> int:
    config = wstrio.Config(allowed_origins=("http://good.example",), max_connections=2)
    serve = functools.partial(wstrio.serve, {"/ws": closer}, port=0, config=config)
    return int(await nursery.start(serve))


async def start_websockets(nursery: trio.Nursery) -> int:
    """The websockets package's Trio server: echo, or close(4002) when asked."""

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path.endswith("?code=4002"):
            await ws.aclose(4002, "theirs")
            return
        async for message in ws:
            await ws.send(message)

    serve = functools.partial(websockets_serve, handler, 0, host="127.0.0.1")
    server = await nursery.start(serve)
    return int(server.listeners[0].socket.getsockname()[1])


@pytest.fixture
async def wstrio_port(nursery: trio.Nursery) -> int:
    return await start_wstrio(nursery)


@pytest.fixture
async def websockets_port(nursery: trio.Nursery) -> int:
    return await start_websockets(nursery)


@pytest.fixture(params=["wstrio", "websockets"])
async def echo_url(request: pytest.FixtureRequest, nursery: trio.Nursery) -> str:
    """An echo endpoint of wstrio's server, then of the websockets package's server."""
    if request.param == "wstrio":
        return f"ws://127.0.0.1:{await start_wstrio(nursery)}/ws"
    return f"ws://127.0.0.1:{await start_websockets(nursery)}/"


async def test_echo_and_normal_close(echo_url: str) -> None:
    """Text and binary round-trip; leaving the block closes with 1000."""
    async with wstrio.connect(echo_url, config=QUIET) as session:
        await session.send("héllo")
        assert await session.receive() == "héllo"
        await session.send(b"\x00\xff")
        assert await session.receive() == b"\x00\xff"
        assert session.remote is not None and echo_url.startswith(
            f"ws://127.0.0.1:{session.remote[1]}/"
        )
    assert session.closed == wstrio.Closed(Ending.HANDLER_RETURNED, 1000, "")


async def test_server_close_code_reaches_the_client(wstrio_port: int) -> None:
    """A server's CloseConnection(4001) is the client's ConnectionClosed(4001) and outcome."""
    url = f"ws://127.0.0.1:{wstrio_port}/ws?code=4001"
    with pytest.raises(wstrio.ConnectionClosed) as caught:
        async with wstrio.connect(url, config=QUIET) as session:
            with trio.fail_after(5):
                await session.receive()
    assert (caught.value.code, caught.value.reason) == (4001, "server says bye")
    assert session.closed is not None and session.closed.ending is Ending.PEER_CLOSED


async def test_websockets_server_close_code_reaches_the_client(websockets_port: int) -> None:
    """The websockets package's close(4002) ends async for with ConnectionClosed(4002)."""
    url = f"ws://127.0.0.1:{websockets_port}/?code=4002"
    async with wstrio.connect(url, config=QUIET) as session:
        with trio.fail_after(5), pytest.raises(wstrio.ConnectionClosed) as caught:
            async for _ in session:
                pass
    assert (caught.value.code, caught.value.reason) == (4002, "theirs")


async def test_client_close_code_reaches_the_server(echo_url: str) -> None:
    """CloseConnection(4003) raised in the block closes with 4003; the block exits quietly."""
    async with wstrio.connect(echo_url, config=QUIET) as session:
        raise wstrio.CloseConnection(4003, "client done")
    assert session.closed == wstrio.Closed(Ending.HANDLER_CLOSED, 4003, "client done")


async def test_error_in_the_block_is_1011_and_propagates_unwrapped(wstrio_port: int) -> None:
    """An exception in the block sends 1011 and comes out as itself, not an ExceptionGroup."""
    with pytest.raises(KeyError, match="boom"):
        async with wstrio.connect(f"ws://127.0.0.1:{wstrio_port}/ws", config=QUIET) as session:
            raise KeyError("boom")
    assert session.closed is not None and session.closed.code == 1011


async def test_heartbeat_timeout_on_a_server_that_never_answers(nursery: trio.Nursery) -> None:
    """A server that accepts and then never reads (no pongs) is closed with 1011."""

    async def mute(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        ws.receive_data(await stream.receive_some(65536))
        request = next(e for e in ws.events() if isinstance(e, Request))
        await stream.send_all(ws.send(AcceptConnection(subprotocol=None, extra_headers=[])))
        del request
        await trio.sleep_forever()  # never reads again: pings go unanswered

    listeners = await nursery.start(trio.serve_tcp, mute, 0)
    port = listeners[0].socket.getsockname()[1]
    config = wstrio.Config(ping_interval=0.3, ping_timeout=0.3, close_timeout=0.3)
    async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=config) as session:
        with trio.fail_after(5):
            closed = await session.wait_closed()
    assert (closed.ending, closed.code) == (Ending.KEEPALIVE_TIMEOUT, 1011)


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/nowhere", None, 404),
        ("/ws", {"Origin": "http://evil.example"}, 403),
    ],
)
async def test_refused_handshake_raises_handshake_rejected(
    wstrio_port: int, path: str, headers: dict[str, str] | None, status: int
) -> None:
    """404 and 403 answers raise HandshakeRejected with the status, headers and body."""
    with pytest.raises(wstrio.HandshakeRejected) as caught:
        async with wstrio.connect(f"ws://127.0.0.1:{wstrio_port}{path}", headers=headers):
            raise AssertionError("no session")
    assert caught.value.status_code == status
    assert caught.value.header("Content-Type") == "text/plain; charset=utf-8"
    assert caught.value.body and str(status) in str(caught.value)


async def test_full_server_refuses_with_503_and_retry_after(wstrio_port: int) -> None:
    """Beyond max_connections the handshake is refused with 503 and Retry-After."""
    url = f"ws://127.0.0.1:{wstrio_port}/ws"
    async with wstrio.connect(url, config=QUIET), wstrio.connect(url, config=QUIET):
        with pytest.raises(wstrio.HandshakeRejected) as caught:
            async with wstrio.connect(url, config=QUIET):
                raise AssertionError("no session")
    assert caught.value.status_code == 503 and caught.value.header("retry-after") == "1"


async def test_unreachable_port_is_a_clear_oserror() -> None:
    """Nothing listening: ConnectError, an OSError with ECONNREFUSED and the URL in its text."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # bound then closed: nothing listens there
    with pytest.raises(OSError) as caught:
        async with wstrio.connect(f"ws://127.0.0.1:{port}/"):
            raise AssertionError("no session")
    assert isinstance(caught.value, wstrio.ConnectError)
    assert caught.value.errno == errno.ECONNREFUSED
    assert f"ws://127.0.0.1:{port}/" in str(caught.value)
    assert not isinstance(caught.value, BaseExceptionGroup)


async def test_wss_with_a_trusted_ca(nursery: trio.Nursery) -> None:
    """wss:// works with the caller's SSLContext; the server's certificate is checked."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    serve = functools.partial(wstrio.serve, {"/ws": closer}, port=0, ssl_context=server_context)
    port = await nursery.start(serve)
    async with wstrio.connect(f"wss://127.0.0.1:{port}/ws", ssl_context=client_context) as session:
        await session.send("secure")
        assert await session.receive() == "secure"
    with pytest.raises(wstrio.ConnectError, match=r"certificate is not trusted: .*--cafile"):
        async with wstrio.connect(f"wss://127.0.0.1:{port}/ws"):
            raise AssertionError("an unknown CA must be refused")


async def test_cancelled_block_closes_with_1001_at_once(wstrio_port: int) -> None:
    """A block cancelled from outside sends 1001 without waiting for close_timeout."""
    config = wstrio.Config(ping_interval=None, close_timeout=30)
    started = trio.current_time()
    with trio.move_on_after(0.2) as scope:
        async with wstrio.connect(f"ws://127.0.0.1:{wstrio_port}/ws", config=config) as session:
            await trio.sleep_forever()
    assert scope.cancelled_caught and trio.current_time() - started < 5
    assert session.closed is not None and session.closed.code == 1001
    assert not session.closed.aborted


async def test_server_closing_during_the_handshake_is_a_connect_error(
    nursery: trio.Nursery,
) -> None:
    """A server that reads the request and hangs up fails fast with ConnectError."""

    async def hang_up(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, hang_up, 0)
    port = listeners[0].socket.getsockname()[1]
    config = wstrio.Config(handshake_timeout=30)
    with trio.fail_after(5), pytest.raises(wstrio.ConnectError) as caught:
        async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=config):
            raise AssertionError("no session")
    assert not isinstance(caught.value, wstrio.HandshakeTimeout)


async def test_cancel_while_connecting_is_plain_cancelled(nursery: trio.Nursery) -> None:
    """Cancelling a connect that is still handshaking raises Cancelled, not a group."""

    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    listeners = await nursery.start(trio.serve_tcp, silent, 0)
    port = listeners[0].socket.getsockname()[1]
    with trio.CancelScope() as scope:
        scope.deadline = trio.current_time() + 0.2
        try:
            async with wstrio.connect(f"ws://127.0.0.1:{port}/"):
                raise AssertionError("no session")
        except BaseException as exc:
            assert isinstance(exc, trio.Cancelled), repr(exc)
            raise
    assert scope.cancelled_caught


async def test_opener_bug_is_an_internal_error_and_not_retried() -> None:
    """An opener raising a non-OSError is reported as a bug, once, not retried."""
    calls = 0

    async def broken(target: object) -> trio.abc.Stream:
        nonlocal calls
        calls += 1
        raise RuntimeError("opener bug")

    with pytest.raises(wstrio.InternalError, match="opener bug"):
        async for _ in wstrio.reconnecting("ws://x.test/", opener=broken, max_attempts=5):
            raise AssertionError("no session")
    assert calls == 1
