"""The documentation is true: every Python sample in docs/ runs, the references match the code.

Each ```python block in docs/**/*.md starts with a marker line, ``# sample: NAME``.
A test below is registered for each NAME with ``@runs(NAME)`` and executes that
block: blocks that define ``test_*`` functions are run by pytest in a subprocess
(with the ``pyproject.toml`` snippet from docs/howto/testing.md); the others are
executed as a module that is not ``__main__`` and then exercised, through
``wstrio.testing`` on a MockClock or over 127.0.0.1. A block without a marker, a
marker without a test, a registered name without a block, and a registered test
that never loads its sample all fail the first tests below. Lines ``# → TEXT`` in
a sample state what it prints; its test compares them with what it printed.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
import trio
import trio.testing
from helpers import free_port, http_get, python_blocks, run_block
from websockets.trio.client import connect as ws_connect

import wstrio
import wstrio.testing
from wstrio import _cli
from wstrio._client.reconnect import RETRY_STATUSES, retries_after
from wstrio.testing import plugin

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
QUIET = wstrio.Config(ping_interval=None)
MARKER = re.compile(r"\A# sample: ([a-z0-9]+(?:-[a-z0-9]+)*)\n")
F = TypeVar("F", bound=Callable[..., Any])


# -- finding the samples ------------------------------------------------------------------


@attrs.frozen
class Sample:
    name: str | None  # None: the block has no marker line
    path: Path
    code: str


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def samples_in(path: Path) -> list[Sample]:
    found = []
    for code in python_blocks(path):
        marker = MARKER.match(code)
        found.append(Sample(marker.group(1) if marker else None, path, code))
    return found


def doc_samples() -> list[Sample]:
    return [sample for page in doc_pages() for sample in samples_in(page)]


def sample(name: str) -> Sample:
    (found,) = [s for s in doc_samples() if s.name == name]
    return found


def load(name: str) -> dict[str, Any]:
    """Execute sample ``name`` as a module named docs_NAME (so not __main__); its namespace."""
    return run_block(sample(name).code, "docs_" + name.replace("-", "_"))


def printed(code: str) -> list[str]:
    """What a sample says it prints: the text of its ``# → TEXT`` comments, in order."""
    return re.findall(r"# → (.*)$", code, re.M)


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


#: sample name -> the test that runs it
RUNNERS: dict[str, str] = {}


def runs(*names: str) -> Callable[[F], F]:
    """Register the decorated test as the one that executes the samples ``names``."""

    def register(test: F) -> F:
        for name in names:
            assert name not in RUNNERS, f"{name} is run by {RUNNERS[name]} already"
            RUNNERS[name] = test.__name__
        return test

    return register


def test_every_python_block_is_a_named_sample() -> None:
    """Each ```python block in docs/ starts with '# sample: NAME', and no NAME is used twice."""
    names = []
    for found in doc_samples():
        assert found.name, f"a ```python block in {found.path} lacks '# sample: NAME'"
        names.append(found.name)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_sample_is_run_by_a_test() -> None:
    """The samples in docs/ and the tests registered with @runs name the same set."""
    in_docs = {found.name for found in doc_samples()}
    registered = set(RUNNERS)
    assert in_docs - registered == set(), "samples no test runs"
    assert registered - in_docs == set(), "registered samples missing from docs/"
    for name, test in RUNNERS.items():
        source = inspect.getsource(globals()[test])
        assert f'"{name}"' in source.split(")", 1)[1], f"{test} never loads {name}"


def test_no_python_block_is_missed() -> None:
    """Every fence that opens Python code is the '```python' form python_blocks finds."""
    for page in doc_pages():
        text = page.read_text()
        fences = re.findall(r"^[ \t]*```+[ \t]*(?:python3?|py|pycon)\b", text, re.M | re.I)
        assert len(fences) == len(python_blocks(page)), f"{page}: use ```python at column 0"


# -- running the samples ------------------------------------------------------------------


def pytest_config() -> str:
    """The pyproject.toml snippet docs/howto/testing.md tells users to add."""
    (toml,) = re.findall(
        r"^```toml\n(.*?)^```", (DOCS / "howto" / "testing.md").read_text(), re.M | re.S
    )
    return toml


def run_pytest_sample(name: str, directory: Path) -> str:
    """Run sample ``name`` as a test module with pytest in a subprocess; its output."""
    code = sample(name).code
    module = directory / f"test_{name.replace('-', '_')}.py"
    module.write_text(code)
    (directory / "pyproject.toml").write_text(pytest_config())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", module.name],
        cwd=directory, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    tests = len(re.findall(r"^(?:async )?def test_", code, re.M))
    assert re.search(rf"\b{tests} passed\b", result.stdout), result.stdout
    return result.stdout


async def serve_on_loopback(nursery: trio.Nursery, routes: Any, **kwargs: Any) -> int:
    return await nursery.start(functools.partial(wstrio.serve, routes, port=0, **kwargs))


async def settle() -> None:
    """Let every task (the server's handlers included) run until all of them wait."""
    await trio.testing.wait_all_tasks_blocked()


@runs("tutorial-echo-server")
async def test_tutorial_echo_server(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """The tutorial's echo server echoes, serves the page at / and logs each session."""
    caplog.set_level("INFO", logger="wstrio")
    routes = load("tutorial-echo-server")["routes"]
    port = await serve_on_loopback(nursery, routes)
    url = f"ws://127.0.0.1:{port}/ws/echo"
    async with wstrio.connect(url) as session:
        await session.send("text")
        assert await session.receive() == "text"
        await session.send(b"\x00")
        assert await session.receive() == b"\x00"
    head, body = await http_get(port, "/")
    assert head.startswith(b"HTTP/1.1 200") and b"/ws/echo" in body
    # The tutorial's shell example: `echo hello | python -m wstrio client URL`.
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, "-m", "wstrio", "client", "--wait", "0.2", url],
            stdin=b"hello\n", capture_stdout=True, capture_stderr=True, check=False,
        )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr
    assert result.stderr.decode().strip() == "closed 1000"
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        re.fullmatch(r"listening on ws://127\.0\.0\.1:\d+/ \(HTTP on the same port\)", m)
        for m in messages
    )
    closes = [m for m in messages if m.startswith("close /ws/echo from 127.0.0.1:")]
    assert closes and re.fullmatch(
        r"close \S+ from \S+: 1000 - \(peer closed\) after \S+s", closes[0]
    )


@runs("tutorial-echo-client")
async def test_tutorial_echo_client(
    nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tutorial's client prints the echoes and the close code it states."""
    port = await serve_on_loopback(nursery, {"/ws/echo": wstrio.echo})
    await load("tutorial-echo-client")["main"](f"ws://127.0.0.1:{port}/ws/echo")
    assert output_lines(capsys) == printed(sample("tutorial-echo-client").code)


@runs("tutorial-echo-bye")
async def test_tutorial_echo_bye(
    nursery: trio.Nursery, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A "bye" closes with 4000 "see you"; other messages are still echoed."""
    namespace = load("tutorial-echo-bye")
    port = await serve_on_loopback(nursery, {"/ws/echo": namespace["echo"]})
    url = f"ws://127.0.0.1:{port}/ws/echo"
    async with wstrio.connect(url) as session:
        await session.send("still echoing")
        assert await session.receive() == "still echoing"
    await namespace["main"](url)
    assert output_lines(capsys) == printed(sample("tutorial-echo-bye").code) == ["4000 see you"]
    script = tmp_path / "bye.py"  # and as written: saved to a file and run with python
    script.write_text(sample("tutorial-echo-bye").code)
    result = await trio.run_process([sys.executable, str(script)], capture_stdout=True)
    assert result.stdout.decode().splitlines() == ["4000 see you"]


@runs("tutorial-chat-room")
async def test_tutorial_chat_room() -> None:
    """Step 1: a message from one member reaches every member, the sender included."""
    routes = load("tutorial-chat-room")["routes"]
    async with wstrio.testing.open_memory_server(routes) as server:
        async with server.connect("/ws/chat", config=QUIET) as ada:
            async with server.connect("/ws/chat", config=QUIET) as bob:
                await settle()
                await ada.send("hi")
                assert await ada.receive() == "hi" and await bob.receive() == "hi"
                await bob.send(b"binary too")
                assert await ada.receive() == b"binary too"


@runs("tutorial-chat-names")
async def test_tutorial_chat_names() -> None:
    """Step 2: names and rooms from the URL, join and leave notices, text only."""
    routes = load("tutorial-chat-names")["routes"]
    async with wstrio.testing.open_memory_server(routes) as server:
        async with server.connect("/c/tea?name=ada", config=QUIET) as ada:
            await settle()
            async with server.connect("/c/tea?name=bob", config=QUIET) as bob:
                assert await ada.receive() == "* bob joined"
                async with server.connect("/c/coffee?name=eve", config=QUIET) as eve:
                    await bob.send("hi")
                    assert await ada.receive() == "bob: hi" and await bob.receive() == "bob: hi"
                    await settle()
                    assert eve.statistics().inbox_used == 0  # another room hears nothing
            assert await ada.receive() == "* bob left"
        async with server.connect("/c/lobby", config=QUIET) as anonymous:
            await settle()
            await anonymous.send("hello?")
            assert await anonymous.receive() == "anonymous: hello?"
            await anonymous.send(b"\x00")
            with pytest.raises(wstrio.ConnectionClosed) as closed:
                await anonymous.receive()
        assert closed.value.code == 1003


@runs("tutorial-chat-policy", "howto-rooms-policies")
def test_policy_samples() -> None:
    """The policy samples hold what they assert: room policies override the hub's."""
    namespace = load("tutorial-chat-policy")
    assert namespace["hub"].policy == "close" and namespace["ticker"].policy == "drop_oldest"
    namespace = load("howto-rooms-policies")
    assert namespace["prices"].policy == "drop_newest"


@runs("tutorial-chat-shipped", "tutorial-chat-client")
async def test_tutorial_shipped_chat(
    nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    """Step 4 serves the page, echo and Chat; the JSON client prints what it states."""
    routes = load("tutorial-chat-shipped")["routes"]
    port = await serve_on_loopback(nursery, routes)
    head, body = await http_get(port, "/")
    assert head.startswith(b"HTTP/1.1 200") and b"/ws/chat" in body
    async with wstrio.connect(f"ws://127.0.0.1:{port}/ws/echo") as session:
        await session.send("echo")
        assert await session.receive() == "echo"
    main = load("tutorial-chat-client")["main"]
    await main(f"ws://127.0.0.1:{port}/ws/chat?room=tea&name=ada")
    assert output_lines(capsys) == printed(sample("tutorial-chat-client").code)


@runs("howto-testing-chat")
def test_testing_howto_sample_passes_under_pytest(tmp_path: Path) -> None:
    """The "Testing your handlers" module passes, its heartbeat test in under a second."""
    run_pytest_sample("howto-testing-chat", tmp_path)
    code = sample("howto-testing-chat").code
    assert "autojump_clock" in code and "time.perf_counter() - wall < 1.0" in code


@runs("howto-reconnect-test")
def test_reconnect_howto_test_passes_under_pytest(tmp_path: Path) -> None:
    """The reconnecting how-to's own test module passes under pytest."""
    run_pytest_sample("howto-reconnect-test", tmp_path)


class Scripted:
    """A server whose n-th session sends messages[n] and then closes with codes[n]."""

    def __init__(self, *script: tuple[list[str], int]) -> None:
        self.script = list(script)
        self.sessions = 0

    async def handler(self, session: wstrio.Session) -> None:
        messages, code = self.script[min(self.sessions, len(self.script) - 1)]
        self.sessions += 1
        for message in messages:
            await session.send(message)
        await session.close(code, "scripted")


@runs("howto-reconnect-follow")
async def test_reconnect_follow(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """follow() prints each session's messages and reconnects after 1012, not after 1000."""
    follow = load("howto-reconnect-follow")["follow"]
    app = Scripted((["m1"], 1012), (["m2", "m3"], 1000))
    async with wstrio.testing.open_memory_server({"/ws/ticker": app.handler}) as server:
        with trio.fail_after(60):
            await follow(
                "ws://feed.test/ws/ticker",
                opener=server.open_stream,
                rng=random.Random(3),
                config=QUIET,
            )
    assert output_lines(capsys) == ["m1", "closed with 1012", "m2", "m3", "closed with 1000"]


@runs("howto-reconnect-give-up")
async def test_reconnect_give_up(autojump_clock: trio.testing.MockClock) -> None:
    """first_message() returns a message or None, and gives up after 5 refused attempts."""
    first_message = load("howto-reconnect-give-up")["first_message"]
    app = Scripted((["first"], 1000))
    async with wstrio.testing.open_memory_server({"/feed": app.handler}) as server:
        options = {"opener": server.open_stream, "config": QUIET}
        assert await first_message("ws://x.test/feed", **options) == "first"
        app.script = [([], 1000)]
        assert await first_message("ws://x.test/feed", **options) is None
        with pytest.raises(RuntimeError, match="server refused the WebSocket handshake"):
            await first_message("ws://x.test/nowhere", **options)  # 404: at once
    attempts = []

    async def refuse(target: object) -> trio.abc.Stream:
        attempts.append(trio.current_time())
        raise ConnectionRefusedError(111, "Connection refused")

    with trio.fail_after(600), pytest.raises(RuntimeError, match=r"(?i)connection refused"):
        await first_message("ws://x.test/feed", opener=refuse, rng=random.Random(1))
    assert len(attempts) == 5


class Feed:
    """The first session sends "a" and closes with 1012; the next sends "wanted" and stays."""

    def __init__(self) -> None:
        self.sessions = 0

    async def handler(self, session: wstrio.Session) -> None:
        self.sessions += 1
        if self.sessions == 1:
            await session.send("a")
            raise wstrio.CloseConnection(1012, "restarting")
        await session.send("b")
        await session.send("wanted")
        async for _ in session:  # stays open: wait_for() has to close it
            pass


@runs("howto-reconnect-aclosing")
async def test_reconnect_aclosing(autojump_clock: trio.testing.MockClock) -> None:
    """wait_for() finds the message across a reconnect and returns a session already closed."""
    wait_for = load("howto-reconnect-aclosing")["wait_for"]
    feed = Feed()
    async with wstrio.testing.open_memory_server({"/feed": feed.handler}) as server:
        with trio.fail_after(60):
            session = await wait_for(
                "ws://x.test/feed",
                "wanted",
                opener=server.open_stream,
                config=QUIET,
                rng=random.Random(5),
            )
        assert session.closed is not None
        assert (session.closed.ending, session.closed.code) == (
            wstrio.Ending.HANDLER_RETURNED,
            1000,
        )
    assert feed.sessions == 2


@runs("howto-limits-public-server")
async def test_limits_public_server_config() -> None:
    """The public-server Config is valid: 64 KiB messages, only its origin, bounded inbox."""
    config = load("howto-limits-public-server")["config"]
    assert config.inbox_size * config.max_message_size == 512 * 1024
    async with wstrio.testing.open_memory_server({"/e": wstrio.echo}, config=config) as server:
        async with server.connect(
            "/e", config=QUIET, headers={"Origin": "https://chat.example"}
        ) as client:
            await server.faults(client).send_message_of_size(64 * 1024 + 1)
            with pytest.raises(wstrio.ConnectionClosed) as closed:
                await client.receive()
        assert closed.value.code == 1009
        with pytest.raises(wstrio.HandshakeRejected) as refused:
            async with server.connect("/e", headers={"Origin": "https://evil.example"}):
                pass
        assert refused.value.status_code == 403


@runs("howto-limits-refused")
def test_limits_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Config refuses a ping_timeout over ping_interval with the message the page shows."""
    load("howto-limits-refused")
    assert output_lines(capsys) == printed(sample("howto-limits-refused").code)


@runs("howto-limits-stop-gracefully")
async def test_stop_gracefully_on_sigterm() -> None:
    """SIGTERM makes serve_until_stopped close sessions with 1001 and return."""
    serve_until_stopped = load("howto-limits-stop-gracefully")["serve_until_stopped"]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                functools.partial(serve_until_stopped, {"/ws/echo": wstrio.echo}, port=0)
            )
            async with wstrio.connect(f"ws://127.0.0.1:{port}/ws/echo") as session:
                await session.send("x")
                assert await session.receive() == "x"
                signal.raise_signal(signal.SIGTERM)  # trio's signal receiver has it
                async for _ in session:  # ends quietly with 1001
                    pass
            assert session.closed is not None and session.closed.code == 1001
        # leaving the nursery means serve_until_stopped returned


@runs("workers-program")
async def test_workers_program_serves_from_two_workers(tmp_path: Path) -> None:
    """The workers how-to's program: both workers answer /healthz; SIGTERM, then exit 0."""
    (tmp_path / "app.py").write_text(sample("workers-program").code)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "app.py", "0"], cwd=tmp_path, stderr=subprocess.PIPE
    )
    log, listening = bytearray(), trio.Event()

    async def drain() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.receive_some():
            log.extend(chunk)
            if b" with 2 workers" in log:
                listening.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            with trio.fail_after(30):
                await listening.wait()
                found = re.search(rb"127\.0\.0\.1:(\d+)/ with 2 workers", log)
                assert found, log
                seen = set()
                while len(seen) < 2:  # each request a new connection, to one worker or the other
                    _, body = await http_get(int(found.group(1)), "/healthz")
                    assert json.loads(body)["status"] == "ok"
                    seen.add(json.loads(body)["worker"])
                proc.send_signal(signal.SIGTERM)
                assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@runs("proxy-server")
async def test_proxy_server_sample(nursery: trio.Nursery) -> None:
    """Behind a proxy: the listed origin and non-browsers get in, other origins get 403."""
    namespace = load("proxy-server")
    config = namespace["config"]
    assert config.ping_interval + config.ping_timeout < 60  # nginx's default idle timeout
    port = await serve_on_loopback(nursery, namespace["routes"], config=config)
    url = f"ws://127.0.0.1:{port}/ws/chat?name=ada"
    for headers in ({"Origin": "https://chat.example"}, {}):
        async with wstrio.connect(url, headers=headers) as session:
            assert json.loads(await session.receive())["type"] == "members"
    with pytest.raises(wstrio.HandshakeRejected) as refused:
        async with wstrio.connect(url, headers={"Origin": "https://evil.example"}):
            pass
    assert refused.value.status_code == 403


@runs("proxy-client-address")
async def test_proxy_client_address(nursery: trio.Nursery) -> None:
    """With trusted_proxies, the forwarded client is session.remote; without, the peer is."""
    namespace = load("proxy-client-address")
    routes = namespace["routes"]
    trusting = await serve_on_loopback(nursery, routes, config=namespace["CONFIG"])
    plain = await serve_on_loopback(nursery, routes)

    async def greeting(port: int, headers: Any) -> str:
        async with wstrio.connect(f"ws://127.0.0.1:{port}/hello", headers=headers) as session:
            return str(await session.receive())

    assert await greeting(trusting, {}) == "hello, 127.0.0.1 over http"
    chain = {"X-Forwarded-For": "203.0.113.9, 198.51.100.20", "X-Forwarded-Proto": "https"}
    assert await greeting(trusting, chain) == "hello, 198.51.100.20 over https"
    two_lines = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "198.51.100.20")]
    assert await greeting(trusting, two_lines) == "hello, 198.51.100.20 over http"
    forged = {"X-Forwarded-For": "203.0.113.9"}
    assert await greeting(plain, forged) == "hello, 127.0.0.1 over http"
    async with wstrio.testing.open_memory_server(routes) as server:
        async with server.connect("/hello", config=QUIET) as session:
            assert await session.receive() == "hello, None over http"


@runs("howto-rooms-chat")
async def test_rooms_howto_sample_broadcasts(nursery: trio.Nursery) -> None:
    """The rooms how-to's chat announces joins and broadcasts to its room only."""
    chat = load("howto-rooms-chat")["chat"]
    port = await serve_on_loopback(nursery, {"/ws/room": chat})
    url = f"ws://127.0.0.1:{port}/ws/room"
    async with ws_connect(url + "?room=a") as ada, ws_connect(url + "?room=b") as other:
        async with ws_connect(url + "?room=a") as bob:
            assert "joined" in await ada.recv()
            await bob.send("hello a")
            assert await ada.recv() == "hello a" and await bob.recv() == "hello a"
        await other.send("hello b")
        assert await other.recv() == "hello b"


@runs("reference-config-validation")
def test_config_validation_sample() -> None:
    """The Config reference's validation sample holds."""
    load("reference-config-validation")


@runs("reference-http-routes")
async def test_http_routes_sample() -> None:
    """The HTTP reference's routes serve both Static pages and both WebSocket routes."""
    routes = load("reference-http-routes")["routes"]
    async with wstrio.testing.open_memory_server(routes) as server:
        head, body = await memory_http_get(server, "/robots.txt")
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Type: text/plain" in head
        assert body == b"User-agent: *\nDisallow: /\n"
        head, body = await memory_http_get(server, "/")
        assert b"text/html; charset=utf-8" in head and body.endswith(b"<p>hello")
        async with server.connect("/ws/chat", config=QUIET, subprotocols=["chat.v1"]) as chat:
            assert chat.subprotocol == "chat.v1"
            assert json.loads(await chat.receive())["type"] == "members"
        async with server.connect("/ws/echo", config=QUIET) as echo:
            await echo.send("x")
            assert await echo.receive() == "x"


@runs("explanation-groups-handler")
async def test_groups_handler_sample(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """CloseConnection raised in the handler's own nursery closes with 4000, logging nothing."""
    watch = load("explanation-groups-handler")["watch"]
    async with wstrio.testing.open_memory_server({"/watch": watch}) as server:
        async with server.connect("/watch", config=QUIET) as client:
            assert await client.receive() == "tick"  # after 10 virtual seconds
            await client.send("echo me")
            assert await client.receive() == "echo me"
            await client.send("stop")
            with pytest.raises(wstrio.ConnectionClosed) as closed:
                while True:
                    await client.receive()
        assert (closed.value.code, closed.value.reason) == (4000, "stopped")
        assert server.statistics().handler_errors == 0
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


@runs("explanation-groups-client")
async def test_groups_client_sample() -> None:
    """ask() returns answers; its KeyError and its LookupError come out unwrapped."""
    ask = load("explanation-groups-client")["ask"]

    async def oracle(session: wstrio.Session) -> None:
        async for question in session:
            await session.send("42" if question == "answer" else "no such thing")

    async with wstrio.testing.open_memory_server({"/oracle": oracle}) as server:
        options = {"opener": server.open_stream, "config": QUIET}
        assert await ask("ws://x.test/oracle", "answer", **options) == "42"
        with pytest.raises(KeyError):  # not an ExceptionGroup
            await ask("ws://x.test/oracle", "unicorns", **options)
        with pytest.raises(LookupError, match="server refused: 404"):
            await ask("ws://x.test/nowhere", "answer", **options)
        await server.wait_idle()
        assert server.statistics().closes_by_code == {1000: 1, 1011: 1}


async def memory_http_get(server: wstrio.testing.MemoryServer, path: str) -> tuple[bytes, bytes]:
    """GET ``path`` from an in-memory server with Connection: close; (head, body)."""
    stream = await server.open_stream()
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    response = b""
    while chunk := await stream.receive_some(65536):
        response += chunk
    await stream.aclose()
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


# -- the references against the code ------------------------------------------------------

API = DOCS / "reference" / "api.md"
HEADING = re.compile(r"^#{3,4} `([A-Za-z_][\w.]*)(?:\((.*)\))?`[ \t]*$", re.M)
FIXTURES = ("wstrio_routes", "wstrio_config", "wstrio_server")


def resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    if parts[:2] == ["wstrio", "testing"]:
        target, rest = wstrio.testing, parts[2:]
    elif parts[0] == "wstrio":
        target, rest = wstrio, parts[1:]
    elif dotted in FIXTURES:
        return getattr(plugin, dotted)
    else:
        target = wstrio if hasattr(wstrio, parts[0]) else wstrio.testing
        rest = parts
    for part in rest:
        target = getattr(target, part)
    return target


def split_params(text: str) -> list[str]:
    """Split a parameter list at the commas that are not inside brackets or quotes."""
    params, depth, current, quote = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            params.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        params.append(current.strip())
    return params


def test_api_reference_names_every_public_name() -> None:
    """Every name in wstrio.__all__ and wstrio.testing.__all__, and each fixture, has an entry."""
    names = {name for name, _ in HEADING.findall(API.read_text())}
    wanted = {f"wstrio.{name}" for name in wstrio.__all__}
    wanted |= {f"wstrio.testing.{name}" for name in wstrio.testing.__all__}
    wanted |= set(FIXTURES)
    assert wanted - names == set()


@pytest.mark.parametrize("cls", [
    wstrio.Session, wstrio.Hub, wstrio.Room, wstrio.Server, wstrio.Chat, wstrio.Headers,
    wstrio.HandshakeRejected, wstrio.Route, wstrio.testing.MemoryServer, wstrio.testing.Faults,
], ids=lambda cls: cls.__name__)  # fmt: skip
def test_api_reference_covers_public_methods(cls: type) -> None:
    """Each public method and property of the class has its own entry."""
    names = {name for name, _ in HEADING.findall(API.read_text())}
    public = [
        name for name, value in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    ]  # fmt: skip
    assert public and {f"{cls.__name__}.{name}" for name in public} - names == set()


def test_api_reference_signatures_match_the_code() -> None:
    """Each entry names a real object; shown parameters, kinds and defaults match the code."""
    namespace = {"trio": trio, "Config": wstrio.Config}
    for dotted, params in HEADING.findall(API.read_text()):
        target = resolve(dotted)
        if f"`{dotted}(" not in API.read_text():
            continue  # an attribute or a class shown without a call
        documented = split_params(params)
        signature = inspect.signature(target)
        actual = list(signature.parameters.values())
        if actual and actual[0].name == "self":
            actual = actual[1:]
        keyword_only = False
        names = []
        for item in documented:
            if item == "*":
                keyword_only = True
                continue
            name, _, default = item.partition("=")
            names.append(name)
            param = signature.parameters.get(name)
            assert param is not None, f"{dotted}: no parameter {name}"
            assert (param.kind is param.KEYWORD_ONLY) == keyword_only, f"{dotted}: {name} kind"
            assert (param.default is not param.empty) == bool(default), f"{dotted}: {name}"
            if default:
                assert eval(default, namespace) == param.default, f"{dotted}: {name}={default}"
        assert names == [param.name for param in actual], dotted


def test_config_reference_lists_every_field_with_its_default() -> None:
    """docs/reference/config.md has a row for each Config field, showing its default."""
    text = (DOCS / "reference" / "config.md").read_text()
    for field in attrs.fields(wstrio.Config):
        row = re.search(rf"^\| `{field.name}` \| ([^|]*) \|", text, re.M)
        assert row, f"no row for {field.name}"
        assert f"`{field.default!r}`" in row.group(1), (field.name, row.group(1))


def cli_sections() -> dict[str, str]:
    text = (DOCS / "reference" / "cli.md").read_text()
    parts = re.split(r"^## `(\w+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_cli_reference_lists_every_option() -> None:
    """Each option of serve, client and bench appears in that command's section."""
    parser = _cli._parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sections = cli_sections()
    assert set(sections) == set(commands.choices)
    for command, subparser in commands.choices.items():
        for action in subparser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert f"`{option}" in sections[command], f"{command} {option}"


async def test_http_reference_lists_every_metric() -> None:
    """The /metrics table names exactly the metrics the server exports, with their types."""
    text = (DOCS / "reference" / "http.md").read_text()
    documented = dict(re.findall(r"^\| `(wstrio_\w+)(?:\{[^}]*\})?` \| (\w+) \|", text, re.M))
    async with wstrio.testing.open_memory_server({"/e": wstrio.echo}) as server:
        async with server.connect("/e", config=QUIET):
            pass
        await server.wait_idle()
        _, body = await memory_http_get(server, "/metrics")
        exported = dict(re.findall(r"^# TYPE (wstrio_\S+) (\S+)$", body.decode(), re.M))
        _, body = await memory_http_get(server, "/healthz")
    assert documented == exported
    (example,) = re.findall(r"^```text\n(\{.*\})\n```", text, re.M)
    assert json.loads(body).keys() == json.loads(example).keys()


def test_reconnect_tables_match_the_code() -> None:
    """Each close code in the reconnecting how-to is retried exactly when the table says so."""
    text = (DOCS / "howto" / "reconnecting.md").read_text()
    rows = re.findall(r"^\| (\d{4})(?:-(\d{4}))? \| [^|]* \| (retries|stops)", text, re.M)
    covered = set()
    for first, last, verdict in rows:
        for code in range(int(first), int(last or first) + 1):
            assert retries_after(code) == (verdict == "retries"), code
            covered.add(code)
    assert {1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013} <= covered
    assert set(wstrio.RECONNECT_CODES) <= covered and 4999 in covered and 3000 in covered
    (statuses,) = re.findall(r"`wstrio.HandshakeRejected` with HTTP ([\d, or]+) \|", text)
    assert set(map(int, re.findall(r"\d+", statuses))) == RETRY_STATUSES


# -- links --------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return {slug(heading) for heading in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def broken_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        missing_anchor = anchor and linked.suffix == ".md" and anchor not in anchors(linked)
        if not linked.is_file() or missing_anchor:
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: str(page.relative_to(DOCS)))
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link of the page points at an existing file (and heading)."""
    assert broken_links(page) == []


def test_every_page_is_linked_from_the_index() -> None:
    """docs/index.md links to every other page of docs/."""
    text = (DOCS / "index.md").read_text()
    linked = {(DOCS / target).resolve() for target in re.findall(r"\]\(([^)#]+)", text)}
    assert set(doc_pages()) - {DOCS / "index.md"} <= linked


# -- the proxy configurations, when the proxies are installed -----------------------------


def config_block(language: str) -> str:
    text = (DOCS / "howto" / "behind-a-proxy.md").read_text()
    (block,) = re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)
    return block


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
async def test_nginx_config_proxies_websockets(nursery: trio.Nursery, tmp_path: Path) -> None:
    """The nginx block, on 127.0.0.1 with a test certificate, proxies wss:// to wstrio."""
    trustme = pytest.importorskip("trustme")
    hello = load("proxy-client-address")["hello"]
    upstream = await serve_on_loopback(nursery, {"/hello": hello})
    port = free_port()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "chain.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    site = config_block("nginx")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    site = re.sub(r"ssl_certificate +\S+;", f"ssl_certificate {tmp_path}/chain.pem;", site)
    site = re.sub(r"ssl_certificate_key +\S+;", f"ssl_certificate_key {tmp_path}/key.pem;", site)
    site = site.replace("127.0.0.1:7777", f"127.0.0.1:{upstream}")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {tmp_path}/body;\n"
        f"proxy_temp_path {tmp_path}/proxy;\n{site}\n}}\n"
    )
    nginx = ["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    await trio.run_process(nginx)  # returns once nginx listens (it then runs as a daemon)
    try:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        url = f"wss://127.0.0.1:{port}/hello"
        origin = {"Origin": f"https://127.0.0.1:{port}", "X-Forwarded-For": "203.0.113.9"}
        with trio.fail_after(10):
            async with wstrio.connect(url, ssl_context=context, headers=origin) as session:
                assert await session.receive() == "hello, 127.0.0.1 over http"  # not the forgery
                await session.close()
        head, _ = await http_get(upstream, "/healthz")
        assert head.startswith(b"HTTP/1.1 200")
    finally:
        await trio.run_process([*nginx, "-s", "stop"], check=False)


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
async def test_caddy_config_proxies_websockets(nursery: trio.Nursery, tmp_path: Path) -> None:
    """The Caddyfile, served over http:// on 127.0.0.1, proxies WebSockets to wstrio."""
    seen: list[tuple[Any, wstrio.Headers]] = []

    async def record(session: wstrio.Session) -> None:
        seen.append((session.remote, session.headers))
        await session.send("hi")

    upstream = await serve_on_loopback(nursery, {"/ws": record})
    port = free_port()
    site = config_block("caddyfile")
    site = site.replace("chat.example {", f"http://127.0.0.1:{port} {{")
    site = site.replace("127.0.0.1:7777", f"127.0.0.1:{upstream}")
    (tmp_path / "Caddyfile").write_text("{\n\tadmin off\n}\n" + site)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path)}  # fmt: skip
    pidfile = tmp_path / "caddy.pid"
    caddy = ["caddy", "start", "--config", str(tmp_path / "Caddyfile"), "--adapter",
             "caddyfile", "--pidfile", str(pidfile)]  # fmt: skip
    with trio.fail_after(30):  # `caddy start` returns once Caddy has started
        # (no pipes: the Caddy process it leaves running would hold them open)
        await trio.run_process(caddy, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"ws://127.0.0.1:{port}/ws"
        headers = {"Origin": f"http://127.0.0.1:{port}", "X-Forwarded-For": "203.0.113.9"}
        with trio.fail_after(10):
            async with wstrio.connect(url, headers=headers) as session:
                assert await session.receive() == "hi"
        ((remote, received),) = seen
        assert remote is not None and remote[0] == "127.0.0.1"  # the proxy
        assert received.get("host") == f"127.0.0.1:{port}"  # passed on unchanged
        assert received.get_all("x-forwarded-for") == ["127.0.0.1"]  # the forged entry dropped
        assert received.get("x-forwarded-proto") == "http"
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGTERM)


@runs("howto-auth-hook", "howto-auth-test")
def test_auth_howto_test_passes_under_pytest(tmp_path: Path) -> None:
    """The authentication how-to's test module, importing its hook sample, passes."""
    (tmp_path / "chat_app.py").write_text(sample("howto-auth-hook").code)
    run_pytest_sample("howto-auth-test", tmp_path)


@runs("howto-auth-client")
async def test_auth_howto_client_prints_the_refusal(
    nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over loopback: a bad token prints the 401, its challenge and body; a good one gets in."""
    routes = load("howto-auth-hook")["routes"]
    main = load("howto-auth-client")["main"]
    port = await serve_on_loopback(nursery, routes)
    await main(f"ws://127.0.0.1:{port}/c/lobby?token=wrong")
    await main(f"ws://127.0.0.1:{port}/c/lobby?token=%C3%A9")  # non-ASCII: still a 401
    await main(f"ws://127.0.0.1:{port}/c/tea?token=s3cret-for-ann")
    assert capsys.readouterr().out.splitlines() == [
        "401 Bearer realm=\"chat\" b'who?\\n'",
        "401 Bearer realm=\"chat\" b'who?\\n'",
        "hello ann, welcome to tea",
    ]


@runs("scale-out-app")
async def test_scale_out_app_shares_rooms_between_two_processes(tmp_path: Path) -> None:
    """The scale-out how-to's app twice on one Redis: a message on one reaches the other."""
    from wstrio.testing import RedisServer

    redis = RedisServer(tmp_path)
    redis.start()
    try:
        main = load("scale-out-app")["main"]
        async with trio.open_nursery() as nursery:
            ports = [await nursery.start(functools.partial(main, redis.url, 0)) for _ in range(2)]
            urls = [f"ws://127.0.0.1:{port}/ws/chat?room=r&name=n{port}" for port in ports]
            async with wstrio.connect(urls[0]) as ada, wstrio.connect(urls[1]) as bob:
                for member in (ada, bob):
                    assert json.loads(await member.receive())["type"] == "members"
                await ada.send(json.dumps({"type": "message", "text": "across"}))
                with trio.fail_after(5):
                    while (frame := json.loads(await bob.receive()))["type"] != "message":
                        pass
                assert frame["text"] == "across" and frame["id"]
                _, body = await http_get(ports[1], "/healthz")
                assert json.loads(body)["status"] == "ok"
            nursery.cancel_scope.cancel()
    finally:
        redis.stop()


@runs("scale-out-recover")
async def test_scale_out_recover_sample(nursery: trio.Nursery) -> None:
    """The recovery handler: missed messages come back in order; an unknown id asks for a
    reload."""
    namespace = load("scale-out-recover")
    port = await serve_on_loopback(nursery, {"/ws/news": namespace["handler"]})
    room = namespace["hub"].room("news", history=100)
    url = f"ws://127.0.0.1:{port}/ws/news"
    async with wstrio.connect(url) as first:
        await settle()  # the server's handler has joined the room
        assert len(room) == 1
        ids = [room.new_id() for _ in range(3)]
        for n, id in enumerate(ids):
            room.broadcast(f"n{n}", id=id)
        assert [await first.receive() for _ in range(3)] == ["n0", "n1", "n2"]
    async with wstrio.connect(f"{url}?since={ids[0]}") as back:
        assert [await back.receive() for _ in range(2)] == ["n1", "n2"]
    async with wstrio.connect(f"{url}?since=unknown") as lost:
        assert json.loads(await lost.receive()) == {"type": "reload"}
