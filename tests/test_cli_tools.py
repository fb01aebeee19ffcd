"""`wstrio client`: real subprocesses against a real server on 127.0.0.1."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import trio

import wstrio

CLI = [sys.executable, "-m", "wstrio"]


async def answer_and_close(session: wstrio.Session) -> None:
    """Answer the first message in capitals, then close with 4001."""
    message = await session.receive()
    await session.send(str(message).upper())
    raise wstrio.CloseConnection(4001, "done")


async def slow_twice(session: wstrio.Session) -> None:
    """Echo each message twice, 0.3 s apart (a server that takes its time)."""
    async for message in session:
        for _ in range(2):
            await trio.sleep(0.3)
            await session.send(message)


async def binary(session: wstrio.Session) -> None:
    """Send one binary message, then echo."""
    await session.send(b"\x00\x01\xff")
    await wstrio.echo(session)


ROUTES = {"/ws/echo": wstrio.echo, "/ws/close": answer_and_close, "/ws/slow": slow_twice,
          "/ws/binary": binary}


@pytest.fixture
async def base() -> AsyncIterator[str]:
    """ws://127.0.0.1:PORT of a server running ROUTES in this test's Trio run."""
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(wstrio.serve, ROUTES, port=0))
        yield f"ws://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


async def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(15):
        return await trio.run_process(
            [*CLI, *args], stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
        )


async def test_client_pipe_sends_lines_and_prints_replies(base: str) -> None:
    """Piped lines are sent; replies go to stdout as they are, the close line to stderr."""
    result = await cli("client", f"{base}/ws/echo", stdin=b"a\nb\n\n//x \xc3\xa9\n")
    assert result.stdout == "a\nb\n\n//x é\n".encode(), result.stderr
    assert result.stderr == b"closed 1000\n"
    assert result.returncode == 0


async def test_client_pipe_waits_while_replies_keep_coming(base: str) -> None:
    """After stdin ends, replies that keep arriving within --wait are all printed."""
    result = await cli("client", f"{base}/ws/slow", "--wait", "1", stdin=b"x\n")
    assert (result.stdout, result.returncode) == (b"x\nx\n", 0)


async def test_client_exit_status_follows_the_server_close(base: str) -> None:
    """A server close ends the client at once; a code other than 1000/1001 exits 1."""
    result = await cli("client", f"{base}/ws/close", "--wait", "30", stdin=b"hi\n")
    assert result.stdout == b"HI\n"
    assert result.stderr == b"closed 4001 done\n"
    assert result.returncode == 1


async def test_client_prints_binary_as_hex(base: str) -> None:
    """Binary messages print as their size and hex digits."""
    result = await cli("client", f"{base}/ws/binary")
    assert result.stdout == b"[binary 3 bytes] 00 01 ff\n"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/nowhere", "wstrio: server refused the WebSocket handshake with HTTP 404"),
        ("unreachable", "wstrio: cannot connect to ws://127.0.0.1:"),
    ],
)
async def test_client_failures_are_one_line(base: str, target: str, expected: str) -> None:
    """A refused handshake or a refused TCP connection: one line on stderr, exit 1."""
    with trio.socket.socket() as closed_port:  # bound, never listening: refuses
        await closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
        url = f"ws://127.0.0.1:{port}/" if target == "unreachable" else base + target
        result = await cli("client", url)
    stderr = result.stderr.decode()
    assert stderr.startswith(expected) and stderr.count("\n") == 1, stderr
    if target == "unreachable":
        assert "Connection refused" in stderr
    assert (result.stdout, result.returncode) == (b"", 1)


@pytest.mark.parametrize(
    "args",
    [["client", "http://127.0.0.1/"], ["client", "ws://x/", "--header", "novalue"]],
)
async def test_usage_errors_exit_2(args: list[str]) -> None:
    """Nonsense arguments exit 2 with the reason on stderr, no traceback."""
    result = await cli(*args)
    assert result.returncode == 2
    assert result.stderr and b"Traceback" not in result.stderr


async def test_client_ctrl_c_closes_with_1001() -> None:
    """SIGINT while connected: the server sees 1001, the client exits 130."""
    seen: list[wstrio.Closed | None] = []
    opened = trio.Event()

    async def watch(session: wstrio.Session) -> None:
        opened.set()
        async for _ in session:
            pass
        seen.append(session.closed)

    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(wstrio.serve, {"/": watch}, port=0))
        with trio.fail_after(15):
            proc = await trio.lowlevel.open_process(
                [*CLI, "client", f"ws://127.0.0.1:{port}/"],
                stdin=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            await opened.wait()
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 130
            assert proc.stderr is not None
            assert await proc.stderr.receive_some() == b"closed 1001 going away\n"
        nursery.cancel_scope.cancel()
    assert [(c.code, c.reason) for c in seen if c] == [(1001, "going away")]


async def test_client_interactive_in_a_terminal(base: str) -> None:
    """On a terminal: connected line, '< ' replies, ping lines, commands, close line."""
    master, slave = os.openpty()
    proc = await trio.lowlevel.open_process(
        [*CLI, "client", f"{base}/ws/binary", "--ping-interval", "0.5"],
        stdin=slave, stdout=slave, stderr=slave,
    )
    os.close(slave)
    terminal = trio.lowlevel.FdStream(master)
    seen = b""

    async def expect(text: str) -> None:
        nonlocal seen
        while text.encode() not in seen:
            seen += await terminal.receive_some()

    try:
        with trio.fail_after(15):
            await expect("connected to ")
            await expect("< [binary 3 bytes] 00 01 ff")
            await terminal.send_all(b"hello\n")
            await expect("< hello")
            await expect("\xb7 ping ")  # a heartbeat's round trip
            await terminal.send_all(b"/ping\n")
            await expect("(/ping)")
            await terminal.send_all(b"/close 4000 bye now\n")
            await expect("closed 4000 bye now")
            assert await proc.wait() == 1
    finally:
        proc.kill()
        await proc.wait()
        await terminal.aclose()


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ["--host", "--port", "--certfile", "--keyfile", "--ping-interval",
                   "--max-connections", "--slow-consumer", "--allowed-origin"]),
        ("client", ["--wait", "--header", "--subprotocol", "--cafile", "--insecure",
                    "--handshake-timeout", "--ping-interval", "--ping-timeout",
                    "--close-timeout", "--max-message-size"]),
    ],
)
async def test_help_lists_every_option_with_defaults(command: str, options: list[str]) -> None:
    """--help of each command exits 0 and names every option, with defaults."""
    result = await cli(command, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert all(option in text for option in options), text
    assert "(default: 20.0)" in text or "(default: 10)" in text
