"""`wstrio client` and `wstrio bench`: real subprocesses against a real server on 127.0.0.1.

The bench's scheduling and counting are also checked in-process on Trio's
MockClock over wstrio.testing's memory streams, where the numbers are exact.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pyte
import pytest
import trio
from pty_client import on_a_pty

import wstrio
from wstrio._cli.bench import Bench
from wstrio._cli.common import Interrupt
from wstrio.testing import open_memory_server

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
    result = await cli("client", f"{base}/ws/slow", "--wait", "1.5", stdin=b"x\n")
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
        assert "connection refused (is the server running, on this port?)" in stderr
    assert (result.stdout, result.returncode) == (b"", 1)


@pytest.mark.parametrize(
    "args",
    [["client", "http://127.0.0.1/"], ["client", "ws://x/", "--header", "novalue"],
     ["bench", "ws://x/", "--size", "4"], ["bench", "ws://x/", "--rate", "-1"]],
)
async def test_usage_errors_exit_2(args: list[str]) -> None:
    """Nonsense arguments exit 2 with the reason on stderr, no traceback."""
    result = await cli(*args)
    assert result.returncode == 2
    assert result.stderr and b"Traceback" not in result.stderr


async def test_client_ctrl_c_closes_with_1001() -> None:
    """SIGINT while connected: the server sees 1001, the client exits 130."""
    seen: list[wstrio.Closed | None] = []

    async def echo_and_note(session: wstrio.Session) -> None:
        await wstrio.echo(session)
        seen.append(session.closed)

    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(wstrio.serve, {"/": echo_and_note}, port=0))
        with trio.fail_after(15):
            proc = await trio.lowlevel.open_process(
                [*CLI, "client", f"ws://127.0.0.1:{port}/"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            assert proc.stdin and proc.stdout and proc.stderr
            await proc.stdin.send_all(b"hi\n")
            assert await proc.stdout.receive_some() == b"hi\n"  # connected, both ways
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 130
            assert await proc.stderr.receive_some() == b"closed 1001 going away\n"
        nursery.cancel_scope.cancel()
    assert [(c.code, c.reason) for c in seen if c] == [(1001, "going away")]


async def test_client_interactive_in_a_terminal(base: str) -> None:
    """On a terminal: connected line, '< ' replies, ping lines, commands, close line."""
    command = [*CLI, "client", f"{base}/ws/binary", "--ping-interval", "0.5"]
    async with on_a_pty(command) as term:
        with trio.fail_after(15):
            await term.expect(b"connected to ")
            await term.expect(b"< [binary 3 bytes] 00 01 ff")
            await term.type(b"hello\n")
            await term.expect(b"< hello")
            await term.expect("\xb7 ping ".encode())  # a heartbeat's round trip
            await term.type(b"/ping\n")
            await term.expect(b"(/ping)")
            await term.type(b"/close 4000 bye now\n")
            await term.expect(b"closed 4000 bye now")
            assert await term.proc.wait() == 1


async def test_bench_json_against_the_echo_server(base: str) -> None:
    """bench --json for 2 s: every key, messages flowed, ordered percentiles, no errors."""
    result = await cli("bench", f"{base}/ws/echo", "--duration", "2", "--connections", "4",
                       "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"url", "connections", "duration", "size", "rate", "messages",
                           "messages_per_second", "latency_ms", "errors"}
    assert (report["connections"], report["size"], report["rate"]) == (4, 16, 0)
    assert report["duration"] == pytest.approx(2, abs=0.1)
    assert report["messages"] > 0 and report["messages_per_second"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert report["errors"] == {}


async def test_bench_table_and_open_loop(base: str) -> None:
    """--rate sends on schedule; without --json the summary is a table."""
    result = await cli("bench", f"{base}/ws/echo", "--duration", "1", "--connections", "2",
                       "--rate", "20")
    assert result.returncode == 0, result.stderr
    rows = dict(line.split(None, 1) for line in result.stdout.decode().splitlines()
                if not line.startswith("latency"))
    assert rows["rate"] == "20/s per connection" and rows["errors"] == "none"
    assert 20 <= int(rows["messages"]) <= 42


async def test_bench_unreachable_counts_connect_errors() -> None:
    """No session opens: the bench stops at once, counts errors by kind, exits 1."""
    with trio.socket.socket() as closed_port:
        await closed_port.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{closed_port.getsockname()[1]}/"
        result = await cli("bench", url, "--connections", "3", "--json")
    report = json.loads(result.stdout)
    assert report["errors"] == {"connect ECONNREFUSED": 3}
    assert report["messages"] == 0 and report["latency_ms"]["p50"] is None
    assert result.returncode == 1 and result.stderr.count(b"\n") == 1


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ["--host", "--port", "--certfile", "--keyfile", "--ping-interval",
                   "--max-connections", "--slow-consumer", "--allowed-origin"]),
        ("client", ["--wait", "--header", "--subprotocol", "--cafile", "--insecure",
                    "--handshake-timeout", "--ping-interval", "--ping-timeout",
                    "--close-timeout", "--max-message-size"]),
        ("bench", ["--connections", "--duration", "--size", "--rate", "--timeout", "--json",
                   "--header", "--subprotocol", "--cafile", "--insecure"]),
    ],
)
async def test_help_lists_every_option_with_defaults(command: str, options: list[str]) -> None:
    """--help of each command exits 0 and names every option, with defaults."""
    result = await cli(command, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert all(option in text for option in options), text
    assert "(default: 20.0)" in text or "(default: 10)" in text


def bench_args(**changes: object) -> argparse.Namespace:
    plan = {"url": "ws://wstrio.test/ws/echo", "connections": 3, "duration": 10.0, "size": 16,
            "rate": 5.0, "timeout": 1.0}
    return argparse.Namespace(**{**plan, **changes})


async def mute(session: wstrio.Session) -> None:
    """Read everything, answer nothing."""
    async for _ in session:
        pass


async def test_bench_open_loop_counts_exactly(autojump_clock: trio.abc.Clock) -> None:
    """Open loop on MockClock: rate x connections x duration messages, a 10 s window."""
    async with open_memory_server(ROUTES) as server:
        bench = Bench(bench_args(), {"opener": server.open_stream})
        assert await bench.main(Interrupt()) == 0
    report = bench.report()
    assert (report["messages"], report["duration"], report["errors"]) == (150, 10.0, {})
    assert report["sessions"] == 3 and report["messages_per_second"] == 15.0


async def test_bench_counts_timeouts_and_closes(autojump_clock: trio.abc.Clock) -> None:
    """Echoes that never come are timeouts; a server close is counted, then replaced."""
    routes = {"/mute": mute, "/close": answer_and_close}
    async with open_memory_server(routes) as server:
        muted = Bench(bench_args(url="ws://wstrio.test/mute"), {"opener": server.open_stream})
        assert await muted.main(Interrupt()) == 1
        closing = Bench(bench_args(url="ws://wstrio.test/close", rate=0.0, connections=1),
                        {"opener": server.open_stream})
        assert await closing.main(Interrupt()) == 1
    timeouts = muted.report()["errors"]["timeout"]
    assert 3 * 40 <= timeouts <= 3 * 45 and muted.report()["messages"] == 0
    report = closing.report()
    assert report["errors"]["close 4001"] == report["sessions"] > 5
    assert report["errors"]["unexpected message"] == report["sessions"]  # "HI" is no echo


async def test_interactive_ping_prints_once_and_ctrl_c_closes_cleanly(base: str) -> None:
    """Through a pty that is the client's controlling terminal: /ping prints one line (not
    again as a heartbeat's), and Ctrl-C closes with a clean 1001 (not aborted), exit 130."""
    command = [*CLI, "client", f"{base}/ws/echo", "--ping-interval", "off"]
    async with on_a_pty(command, controlling=True) as term:
        with trio.fail_after(15):
            await term.expect(b"connected to ")
            await term.type(b"/ping\n")
            await term.expect(b"(/ping)")
            await term.type(b"hi\n")
            await term.expect(b"< hi")  # the echo comes after any second ping line would have
            await term.type(b"\x03")  # Ctrl-C, as the terminal delivers it: SIGINT
            assert await term.proc.wait() == 130
            await term.read_to_end()
    text = term.seen.decode()
    assert text.count("\xb7 ping ") == 1
    assert "closed 1001 going away" in text and "(aborted)" not in text


async def test_incoming_messages_never_clobber_the_line_being_typed(base: str) -> None:
    """A message that arrives while "hel" is half typed prints on its own line above the
    prompt, which is drawn again with "hel" on it; Enter then sends "hello" whole."""
    screen = pyte.Screen(80, 24)  # what a person would see: a VT100 emulator draws the bytes
    stream = pyte.ByteStream(screen)
    command = [*CLI, "client", f"{base}/ws/slow", "--ping-interval", "off"]
    async with on_a_pty(command) as term:
        with trio.fail_after(15):
            await term.expect(b"connected to ")
            await term.expect(b">")  # the prompt
            await term.type(b"abc\r")
            await term.expect(b"< abc")  # the first of two echoes, 0.3 s apart
            await term.type(b"hel")  # typed, not sent
            await term.expect(b"< abc", count=2)
            wanted = ["< abc", "< abc", "> hel"]  # the message above, "hel" kept below it
            fed, lines = 0, []
            while lines[-3:] != wanted:  # until the prompt has been drawn again
                if fed == len(term.seen):
                    await term.read()
                stream.feed(term.seen[fed:])
                fed = len(term.seen)
                lines = [line.rstrip() for line in screen.display if line.strip()]
            assert lines[-3:] == ["< abc", "< abc", "> hel"]  # the message above, "hel" kept
            await term.type(b"lo\r")
            await term.expect(b"< hello", count=1)
            await term.type(b"/quit\r")
            await term.expect(b"closed 1000")
            assert await term.proc.wait() == 0
