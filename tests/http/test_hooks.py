"""The handshake hook over loopback, with the ``websockets`` package's client and wstrio's:
accept, accept with a subprotocol, headers and state, refuse before the upgrade, and a hook
that raises, hangs or answers nonsense."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from helpers import serving
from websockets.exceptions import InvalidStatus
from websockets.trio.client import connect as ws_connect

import wstrio

TOKENS = {"s3cret": "ann"}


def authenticate(request: wstrio.Request) -> wstrio.Accept | wstrio.Reject:
    token = request.query.get("token") or request.cookies.get("token")
    name = TOKENS.get(token or "")
    if name is None:
        return wstrio.Reject(
            401, headers=[("WWW-Authenticate", 'Bearer realm="chat"')], body=b"bad token\n"
        )
    return wstrio.Accept(headers=[("X-User", name)], state={"name": name})


async def whoami(session: wstrio.Session) -> None:
    await session.send_json(
        {
            "name": session.state.get("name"),
            "room": session.params.get("room"),
            "subprotocol": session.subprotocol,
            "query": session.request.query.get_all("tag"),
        }
    )
    async for _ in session:
        pass


async def refused(url: str) -> wstrio.HandshakeRejected:
    """What wstrio's client raises for ``url``; fails if the handshake was accepted."""
    with pytest.raises(wstrio.HandshakeRejected) as rejected:
        async with wstrio.connect(url):
            pass
    return rejected.value


ROUTES: dict[str, Any] = {"/c/{room}": wstrio.Route(whoami, on_handshake=authenticate)}


async def test_a_good_token_is_accepted_with_state_headers_and_params() -> None:
    """The hook's Accept reaches the client (a header) and the handler (state, params)."""
    async with serving(ROUTES) as port:
        url = f"ws://127.0.0.1:{port}/c/caf%C3%A9?token=s3cret&tag=a&tag=b"
        async with ws_connect(url) as ws:
            assert ws.response is not None
            assert ws.response.headers["X-User"] == "ann"
            reply = await ws.recv()
    assert reply == '{"name":"ann","room":"café","subprotocol":null,"query":["a","b"]}'


async def test_a_cookie_is_read_with_the_standard_library() -> None:
    """A token in a Cookie header (as a browser sends it) is found through request.cookies."""
    async with serving(ROUTES) as port:
        url = f"ws://127.0.0.1:{port}/c/lobby"
        headers = {"Cookie": 'theme=dark; token="s3cret"'}
        async with ws_connect(url, additional_headers=headers) as ws:
            assert '"name":"ann"' in str(await ws.recv())


async def test_a_bad_token_gets_401_before_the_upgrade() -> None:
    """Reject(401) is the HTTP answer: status, WWW-Authenticate and body reach both clients."""
    async with serving(ROUTES) as port:
        url = f"ws://127.0.0.1:{port}/c/lobby?token=wrong"
        with pytest.raises(InvalidStatus) as caught:
            async with ws_connect(url):
                pass
        response = caught.value.response
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="chat"'
        assert response.body == b"bad token\n"
        rejected = await refused(url)
        assert rejected.status == 401
        assert rejected.header("www-authenticate") == 'Bearer realm="chat"'
        assert rejected.body == b"bad token\n"


@pytest.mark.parametrize(
    ("status", "headers"),
    [(403, ()), (429, (("Retry-After", "7"),)), (503, (("Retry-After", "1"),))],
)
async def test_any_refusal_status_and_headers_are_sent(
    status: int, headers: tuple[tuple[str, str], ...]
) -> None:
    """403, 429 with Retry-After: the client gets exactly what the hook returned."""

    async def hook(request: wstrio.Request) -> wstrio.Reject:
        await trio.lowlevel.checkpoint()  # an async hook works the same
        return wstrio.Reject(status, headers=headers, body="no")

    routes = {"/ws": wstrio.Route(wstrio.echo, on_handshake=hook)}
    async with serving(routes) as port:
        rejected = await refused(f"ws://127.0.0.1:{port}/ws")
    assert rejected.status == status
    assert [(k, v) for k, v in rejected.headers if k.lower() == "retry-after"] == [
        (k.lower(), v) for k, v in headers
    ]
    assert rejected.body == b"no"


async def test_the_hook_chooses_a_subprotocol_the_client_offered() -> None:
    """Accept(subprotocol=...) picks among the offer, whatever the route's own preference."""
    routes = {
        "/ws": wstrio.Route(
            whoami,
            subprotocols=("v1", "v2"),
            on_handshake=lambda request: wstrio.Accept(subprotocol=request.subprotocols[-1]),
        )
    }
    async with serving(routes) as port:
        async with ws_connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"
            assert '"subprotocol":"v2"' in str(await ws.recv())


async def test_a_hook_that_raises_gets_500_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The peer sees a generic 500; the traceback is logged once; the next client is served."""
    calls: list[str] = []

    def hook(request: wstrio.Request) -> None:
        calls.append(request.path)
        if len(calls) == 1:
            raise RuntimeError("database down: secret detail")

    routes = {"/ws": wstrio.Route(wstrio.echo, on_handshake=hook)}
    with caplog.at_level(logging.ERROR, logger="wstrio"):
        async with serving(routes) as port:
            rejected = await refused(f"ws://127.0.0.1:{port}/ws")
            async with wstrio.connect(f"ws://127.0.0.1:{port}/ws") as session:
                await session.send("still here")
                assert await session.receive() == "still here"
    assert rejected.status == 500
    assert b"secret" not in rejected.body
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and "database down" in str(logged[0].exc_info[1])  # type: ignore[index]


async def test_a_hook_slower_than_the_handshake_timeout_gets_503() -> None:
    """A hook still running after handshake_timeout is cancelled; the client gets 503."""
    cancelled = trio.Event()

    async def hook(request: wstrio.Request) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    routes = {"/ws": wstrio.Route(wstrio.echo, on_handshake=hook)}
    async with serving(routes, wstrio.Config(handshake_timeout=0.2)) as port:
        rejected = await refused(f"ws://127.0.0.1:{port}/ws")
    assert rejected.status == 503
    assert cancelled.is_set()


@pytest.mark.parametrize(
    "answer",
    [lambda request: "yes", lambda request: wstrio.Accept(subprotocol="never-offered")],
    ids=["wrong-type", "subprotocol-not-offered"],
)
async def test_a_hook_answering_nonsense_gets_500_with_the_reason_logged(
    answer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A return value other than None/Accept/Reject, or an unoffered subprotocol: 500, logged."""
    routes = {"/ws": wstrio.Route(wstrio.echo, on_handshake=answer)}
    with caplog.at_level(logging.ERROR, logger="wstrio"):
        async with serving(routes) as port:
            rejected = await refused(f"ws://127.0.0.1:{port}/ws")
    assert rejected.status == 500
    assert any("on_handshake of route /ws" in r.getMessage() for r in caplog.records)


async def test_the_trio_websocket_engine_honours_the_hook_too() -> None:
    """Accept's headers and state, and a Reject, work on the older engine as well."""
    config = wstrio.Config(engine="trio-websocket")
    async with serving(ROUTES, config) as port:
        async with ws_connect(f"ws://127.0.0.1:{port}/c/x?token=s3cret") as ws:
            assert ws.response is not None and ws.response.headers["X-User"] == "ann"
            assert '"name":"ann"' in str(await ws.recv())
        rejected = await refused(f"ws://127.0.0.1:{port}/c/x")
    assert rejected.status == 401


def test_accept_and_reject_refuse_malformed_values() -> None:
    """Bad header names, CR/LF in values, handshake headers and bad statuses fail at once."""
    with pytest.raises(ValueError, match="token"):
        wstrio.Accept(headers=[("Bad Name", "x")])
    with pytest.raises(ValueError, match="CR"):
        wstrio.Reject(401, headers=[("X-A", "1\r\nSet-Cookie: x")])
    with pytest.raises(ValueError, match="handshake"):
        wstrio.Accept(headers=[("Sec-WebSocket-Accept", "x")])
    with pytest.raises(ValueError, match="status"):
        wstrio.Reject(101)
