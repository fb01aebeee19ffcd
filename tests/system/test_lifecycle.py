"""Server lifecycle: graceful shutdown, hostile slow clients, TLS on the same port."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme
from helpers import start_stoppable
from rawhttp import get, read_all, read_response, status
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import connect

import wstrio


async def stubborn(session: wstrio.Session) -> None:
    """A handler that ignores the going-away close and keeps working."""
    try:
        async for message in session:
            await session.send(message)
    except wstrio.ConnectionClosed:
        pass
    await trio.sleep_forever()  # cancelled only at the shutdown deadline


async def test_shutdown_sends_1001_to_50_sessions_and_returns_in_time(engine: str) -> None:
    """50 sessions get 1001; a stubborn handler is cancelled at shutdown_timeout."""
    config = wstrio.Config(shutdown_timeout=1, close_timeout=1, engine=engine)
    server = wstrio.Server({"/ws/echo": wstrio.echo, "/ws/stubborn": stubborn}, config=config)
    codes: list[tuple[int | None, str | None]] = []
    async def client(path: str, task_status: trio.TaskStatus[None]) -> None:
        async with connect(f"ws://127.0.0.1:{port}{path}") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            task_status.started()
            with pytest.raises(ConnectionClosed), trio.fail_after(10):
                await ws.recv()
        codes.append((ws.close_code, ws.close_reason))

    async with trio.open_nursery() as nursery:
        port, scope = await start_stoppable(nursery, server)
        for i in range(50):
            await nursery.start(client, "/ws/stubborn" if i == 0 else "/ws/echo")
        assert server.statistics().open_connections == 50
        started = trio.current_time()
        scope.cancel()
    elapsed = trio.current_time() - started
    assert codes == [(1001, "going away")] * 50
    assert server.statistics().open_connections == 0
    assert elapsed < config.shutdown_timeout + config.close_timeout
    assert elapsed >= config.shutdown_timeout * 0.9  # the stubborn one had its full grace


async def test_in_flight_handshake_gets_503_on_shutdown() -> None:
    """A request under way when the server stops is answered 503, then closed."""
    server = wstrio.Server({"/ws/echo": wstrio.echo})
    async with trio.open_nursery() as nursery:
        port, scope = await start_stoppable(nursery, server)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        with trio.fail_after(5):
            while server.statistics().handshakes == 0:
                await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
        response = await read_all(stream)
    assert status(response) == 503


async def test_slowloris_does_not_block_others_and_is_dropped(
    nursery: trio.Nursery, engine: str
) -> None:
    """1,000 half-sent requests: a normal client still echoes; all are dropped in time."""
    config = wstrio.Config(handshake_timeout=2, engine=engine)
    server = wstrio.Server({"/ws/echo": wstrio.echo}, config=config)
    port = await nursery.start(functools.partial(server.run, port=0))
    streams = []
    for _ in range(1000):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"G")
        streams.append(stream)

    async def trickle(stream: trio.SocketStream) -> None:  # one byte at a time, forever
        for byte in b"ET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                await stream.send_all(bytes([byte]))
            except trio.BrokenResourceError:
                return
            await trio.sleep(0.5)

    async with trio.open_nursery() as tricklers:
        for stream in streams[:20]:
            tricklers.start_soon(trickle, stream)
        async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
            await ws.send("still served")
            assert await ws.recv() == "still served"
        with trio.fail_after(10):
            for stream in streams:
                # EOF, or a reset if the trickle was still sending: dropped, no answer
                with contextlib.suppress(trio.BrokenResourceError):
                    assert await read_all(stream) == b""
        tricklers.cancel_scope.cancel()
    with trio.fail_after(5):
        await server.wait_idle()
    for stream in streams:
        await stream.aclose()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("tls") / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    return ca, pem


async def test_tls_serves_wss_and_https_on_one_port(
    nursery: trio.Nursery, tls: tuple[trustme.CA, Path], engine: str
) -> None:
    """With ssl_context: wss:// echoes and https:// answers /healthz on the same port."""
    ca, pem = tls
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(str(pem))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    port = await nursery.start(functools.partial(
        wstrio.serve, {"/ws/echo": wstrio.echo}, port=0, ssl_context=server_context,
        config=wstrio.Config(engine=engine)))
    async with connect(f"wss://127.0.0.1:{port}/ws/echo", ssl=client_context) as ws:
        await ws.send("secret")
        assert await ws.recv() == "secret"
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=client_context)
    async with stream:
        await stream.send_all(get("/healthz"))
        response = await read_response(stream)  # type: ignore[arg-type]
    assert status(response) == 200 and json.loads(response.partition(b"\r\n\r\n")[2])


async def test_cli_tls_flags(tls: tuple[trustme.CA, Path]) -> None:
    """`serve --certfile` prints a wss:// URL that echoes, and stops on SIGTERM with 0."""
    ca, pem = tls
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "wstrio", "serve", "--port", "0", "--certfile", str(pem)],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive_some(1)
        url = re.search(r"wss://\S+", line.decode())
        assert url, line
        async with connect(url.group(0), ssl=client_context) as ws:
            await ws.send("tls")
            assert await ws.recv() == "tls"
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            assert await proc.wait() == 0
    finally:
        proc.kill()
        await proc.wait()


CTRL_C = """
import os, signal, trio, wstrio
async def main():
    async def kick():
        await trio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)
    trio.lowlevel.spawn_system_task(kick)
    await wstrio.serve({"/": wstrio.echo}, port=0)
try:
    trio.run(main)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


async def test_ctrl_c_reaches_the_caller_of_serve_unwrapped() -> None:
    """KeyboardInterrupt inside serve comes out as itself, not inside an ExceptionGroup."""
    with trio.fail_after(20):
        result = await trio.run_process(
            [sys.executable, "-c", CTRL_C], capture_stdout=True, capture_stderr=True
        )
    assert result.stdout.decode().strip() == "KeyboardInterrupt", result.stderr.decode()
