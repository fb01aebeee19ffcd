"""Plain HTTP on the WebSocket port over loopback: HttpRoute (GET, POST, 405, 413), a
StaticDir under hostile paths, and forwarded headers from trusted and untrusted peers."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import trio
from helpers import serving
from rawhttp import body, get, header, read_all, status

import wstrio


async def exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        return await read_all(stream)


def post(path: str, payload: bytes, *extra: str) -> bytes:
    head = get(path, f"Content-Length: {len(payload)}", *extra, method="POST")
    return head + payload


async def echo_body(request: wstrio.Request, data: bytes) -> wstrio.Response:
    answer = {"method": request.method, "got": data.decode(), "q": request.query.get("q")}
    return wstrio.Response(200, [("Content-Type", "application/json")], json.dumps(answer))


def who(request: wstrio.Request, data: bytes) -> wstrio.Response:
    host = request.remote[0] if request.remote else None
    return wstrio.Response(200, body=f"{host} {request.scheme}")


async def test_an_http_route_answers_its_methods_and_refuses_others() -> None:
    """GET and POST reach the handler (body, query); PUT gets 405 with Allow; HEAD no body."""
    routes = {"/api": wstrio.HttpRoute(echo_body, methods=("GET", "POST"))}
    async with serving(routes) as port:
        posted = await exchange(port, post("/api?q=1", b"hello"))
        fetched = await exchange(port, get("/api"))
        head_only = await exchange(port, get("/api", method="HEAD"))
        refused = await exchange(port, post("/api", b"x").replace(b"POST", b"PUT", 1))
    assert status(posted) == 200 and header(posted, "content-type") == "application/json"
    assert json.loads(body(posted)) == {"method": "POST", "got": "hello", "q": "1"}
    assert json.loads(body(fetched))["method"] == "GET"
    assert status(head_only) == 200 and body(head_only) == b""
    assert status(refused) == 405 and header(refused, "allow") == "GET, POST, HEAD"


async def test_a_body_over_max_body_size_gets_413_before_it_is_read() -> None:
    """Content-Length over the limit: 413 at once (the body is never sent in full)."""
    routes = {"/api": wstrio.HttpRoute(echo_body, methods=["POST"])}
    async with serving(routes, wstrio.Config(max_body_size=1000)) as port:
        fits = await exchange(port, post("/api", b"x" * 1000))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(get("/api", "Content-Length: 5000000", method="POST"))
            too_big = await read_all(stream)  # the server answers without waiting for 5 MB
    assert status(fits) == 200
    assert status(too_big) == 413


async def test_an_http_handler_that_raises_gets_500_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The traceback is logged once, the client sees a generic 500, the next request works."""

    def broken(request: wstrio.Request, data: bytes) -> wstrio.Response:
        raise KeyError("secret")

    routes = {"/broken": wstrio.HttpRoute(broken), "/ok": wstrio.Static("fine")}
    with caplog.at_level(logging.ERROR, logger="wstrio"):
        async with serving(routes) as port:
            failed = await exchange(port, get("/broken"))
            fine = await exchange(port, get("/ok"))
    assert status(failed) == 500 and b"secret" not in body(failed)
    assert status(fine) == 200
    assert len([r for r in caplog.records if r.exc_info]) == 1


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory to serve, a secret beside it, and a symlink that points out."""
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "app.js").write_text("console.log(1)")
    (root / "sub" / "index.html").write_text("sub home")
    (root / "logo.bin").write_bytes(bytes(range(256)))
    (tmp_path / "secret.txt").write_text("top secret")
    (root / ".env").write_text("top secret")
    (root / "sub" / ".git").mkdir()
    (root / "sub" / ".git" / "config").write_text("top secret")
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    return root


async def test_a_static_dir_serves_files_with_types_etags_and_indexes(site: Path) -> None:
    """Content types from mimetypes, index.html for directories, 304 for a matching ETag."""
    async with serving({"/assets": wstrio.StaticDir(site)}) as port:
        script = await exchange(port, get("/assets/app.js"))
        index = await exchange(port, get("/assets/"))
        sub = await exchange(port, get("/assets/sub/"))
        etag = header(script, "etag")
        again = await exchange(port, get("/assets/app.js", f"If-None-Match: {etag}"))
    assert status(script) == 200 and body(script) == b"console.log(1)"
    assert header(script, "content-type") in (
        "text/javascript; charset=utf-8",
        "application/javascript; charset=utf-8",
    )
    assert body(index) == b"<h1>home</h1>" and body(sub) == b"sub home"
    assert etag and status(again) == 304 and body(again) == b""


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/%2E%2E%2Fsecret.txt",
        "/assets/sub/../../secret.txt",
        "/assets/%2Fetc%2Fpasswd",
        "/assets//etc/passwd",
        "/assets/leak.txt",
        "/assets/sub%5C..%5C..%5Csecret.txt",
        "/assets/app.js%00.png",
        "/assets/.env",
        "/assets/sub/.git/config",
        "/assets/missing.html",
    ],
)
async def test_no_path_leads_out_of_the_static_dir(site: Path, path: str) -> None:
    """Dot segments in any spelling, absolute paths, backslashes, NUL, symlinks out: 404."""
    async with serving({"/assets": wstrio.StaticDir(site)}) as port:
        response = await exchange(port, get(path))
    assert status(response) == 404
    assert b"top secret" not in response


SPOOFED = ("X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https")


async def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    """From a trusted peer, remote and scheme are the client's; from others, the headers are
    ignored whatever they say."""
    routes = {"/who": wstrio.HttpRoute(who)}
    trusted = wstrio.Config(trusted_proxies=("127.0.0.0/8",))
    async with serving(routes, trusted) as port:
        via_proxy = await exchange(port, get("/who", *SPOOFED))
        forwarded = 'Forwarded: for="[2001:db8::7]:4711";proto=https'
        ignored = await exchange(port, get("/who", forwarded, "X-Forwarded-For: 203.0.113.9"))
        chain = await exchange(port, get("/who", "X-Forwarded-For: 198.51.100.1, 127.0.0.5"))
        garbage = await exchange(port, get("/who", "X-Forwarded-For: 1.1.1.1:\xb2, 203.0.113.9"))
    rfc_config = wstrio.Config(trusted_proxies=("127.0.0.0/8",), forwarded_header="forwarded")
    async with serving(routes, rfc_config) as port:
        rfc_7239 = await exchange(port, get("/who", forwarded, *SPOOFED))
    async with serving(routes) as port:
        untrusted = await exchange(port, get("/who", *SPOOFED))
    assert body(via_proxy) == b"203.0.113.9 https"
    assert body(ignored) == b"203.0.113.9 http"  # a client's own Forwarded is not believed
    assert body(chain) == b"198.51.100.1 http"
    assert body(garbage) == b"203.0.113.9 http"  # a bad hop ends the walk, no crash
    assert body(rfc_7239) == b"2001:db8::7 https"  # and X-Forwarded-* are ignored then
    assert body(untrusted) == b"127.0.0.1 http"


async def test_a_websocket_session_sees_the_forwarded_client() -> None:
    """session.remote and session.request.remote are the client behind a trusted proxy."""
    seen: list[object] = []

    async def handler(session: wstrio.Session) -> None:
        seen.append((session.remote, session.request.scheme))

    config = wstrio.Config(trusted_proxies=["127.0.0.1"])
    async with serving({"/ws": handler}, config) as port:
        headers = [("X-Forwarded-For", "192.0.2.44")]
        async with wstrio.connect(f"ws://127.0.0.1:{port}/ws", headers=headers) as session:
            await session.wait_closed()
    assert seen == [(("192.0.2.44", 0), "http")]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    """A host name is refused when the Config is built (it would be resolved at random)."""
    with pytest.raises(ValueError, match="not an IP address"):
        wstrio.Config(trusted_proxies=("proxy.example",))


async def test_bodiless_statuses_carry_no_body_or_length() -> None:
    """204 and 304 go out without a body or Content-Length; a body for them is refused early."""
    routes = {"/none": wstrio.HttpRoute(lambda request, data: wstrio.Response(204))}
    async with serving(routes) as port:
        response = await exchange(port, get("/none"))
    assert status(response) == 204 and header(response, "content-length") is None
    with pytest.raises(ValueError, match="no body"):
        wstrio.Response(204, body="x")
    with pytest.raises(ValueError, match="conditional GET"):
        wstrio.Reject(304)


async def test_a_backslash_path_is_never_redirected_off_site() -> None:
    """/\\evil.com/page/ matches /{org}/page without its slash, yet gets a 404, not a 308."""
    async with serving({"/{org}/page": wstrio.Static("hi")}) as port:
        response = await exchange(port, get("/\\evil.com/page/"))
        fine = await exchange(port, get("/acme/page/"))
    assert status(response) == 404 and header(response, "location") is None
    assert status(fine) == 308 and header(fine, "location") == "/acme/page"


async def test_the_dashboard_is_off_by_default_and_on_with_config() -> None:
    """/dashboard is a 404 unless Config.dashboard; its stream sends statistics as JSON."""
    async with serving({"/ws": wstrio.echo}) as port:
        off = await exchange(port, get("/dashboard"))
    async with serving({"/ws": wstrio.echo}, wstrio.Config(dashboard=True)) as port:
        on = await exchange(port, get("/dashboard"))
        async with wstrio.connect(f"ws://127.0.0.1:{port}/dashboard/ws") as session:
            first = await session.receive_json()
    assert status(off) == 404
    assert status(on) == 200 and b"<canvas" in body(on)
    assert first["open_connections"] == 1 and "closes_by_code" in first


async def test_a_route_of_its_own_at_dashboard_is_refused_when_wstrio_serves_it() -> None:
    """With Config.dashboard on, /dashboard cannot also be the application's route."""
    with pytest.raises(ValueError, match="/dashboard: served by wstrio"):
        wstrio.Server({"/dashboard": wstrio.echo}, config=wstrio.Config(dashboard=True))


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    """A client that waits for 100 Continue (curl does for large bodies) gets it at once."""
    routes = {"/api": wstrio.HttpRoute(echo_body, methods=["POST"])}
    async with serving(routes) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            head = get("/api", "Content-Length: 5", "Expect: 100-continue", method="POST")
            await stream.send_all(head)
            with trio.fail_after(5):
                interim = await stream.receive_some(4096)
            await stream.send_all(b"hello")
            final = await read_all(stream)
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert status(final) == 200 and json.loads(body(final))["got"] == "hello"
