"""Every user error of the command line is one line on stderr naming what to fix, with exit
status 2 for a usage error and 1 for a run-time failure; never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

CASES = {
    # name: (arguments, exit status, words the one line must contain)
    "port-too-big": (["serve", "--port", "99999"], 2, "a port is a number from 0 to 65535"),
    "port-65536": (["serve", "--port", "65536"], 2, "a port is a number from 0 to 65535"),
    "port-negative": (["serve", "--port", "-1"], 2, "a port is a number from 0 to 65535"),
    "port-not-a-number": (["serve", "--port", "http"], 2, "a port is a number"),
    "bad-host": (["serve", "--host", "256.1.1.1", "--port", "0"], 2, "is not an address"),
    "log-level": (["serve", "--log-level", "verbose"], 2, "'verbose' is not a logging level"),
    "serve-unknown-option": (["serve", "--bogus"], 2, "wstrio serve: unrecognized arguments"),
    "bad-config": (["serve", "--inbox-size", "0"], 2, "inbox_size"),
    "missing-cert": (["serve", "--certfile", "/nonexistent.pem"], 2, "cannot load the cert"),
    "unknown-command": (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    "redis-not-a-redis-url": (["serve", "--redis", "http://x"], 2, "starts with redis://"),
    "redis-optional-alone": (["serve", "--redis-optional"], 2, "goes with --redis URL"),
    "redis-with-an-app": (
        ["serve", "json:dumps", "--redis", "redis://127.0.0.1:9"],
        2,
        "an APP makes its own",
    ),
    "redis-unreachable": (
        ["serve", "--port", "0", "--redis", "unix:///nonexistent/redis.sock"],
        1,
        "cannot reach Redis at unix:///nonexistent/redis.sock",
    ),
    "chat-history-negative": (["serve", "--chat-history", "-1"], 2, "history"),
    "client-unknown-option": (
        ["client", "ws://127.0.0.1:9/", "--bogus"],
        2,
        "wstrio client: unrecognized arguments: --bogus",
    ),
    "client-url-port": (["client", "ws://127.0.0.1:99999/"], 2, "'ws://127.0.0.1:99999/'"),
    "client-not-ws": (["client", "http://127.0.0.1/"], 2, "ws://"),
    "client-refused": (["client", "ws://127.0.0.1:1/"], 1, "connection refused (is the server"),
    "bench-url-port": (["bench", "ws://127.0.0.1:65536/"], 2, "not a number from 1 to 65535"),
    "bench-size": (["bench", "ws://127.0.0.1:9/", "--size", "4"], 2, "--size"),
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wstrio", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(("args", "status", "words"), CASES.values(), ids=CASES.keys())
def test_a_user_error_is_one_line_and_an_exit_status(
    args: list[str], status: int, words: str
) -> None:
    """The table: arguments → one line naming the problem → 2 (usage) or 1 (run time)."""
    result = run_cli(*args)
    assert result.returncode == status, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr and result.stderr.startswith("wstrio")
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr


def test_a_port_in_use_is_one_line_with_a_hint() -> None:
    """Another listener on the port: exit 1, 'address already in use', and what to do."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == (
        f"wstrio: cannot listen on 127.0.0.1:{port}: address already in use"
        " (another server is using it: stop it, or pick another --port)\n"
    )


def test_version_and_help_exit_zero() -> None:
    """--version names the version; serve --help has a description and examples."""
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("wstrio ")
    helped = run_cli("serve", "--help")
    assert helped.returncode == 0 and "examples:" in helped.stdout
    assert "(default: None)" not in helped.stdout


@pytest.mark.parametrize("port", [99999, 65536, -1, True, 80.0])
async def test_the_library_refuses_the_ports_the_os_would_reinterpret(port: object) -> None:
    """serve() with a port outside 0-65535 (or not an int) is a ValueError, not another port."""
    import wstrio

    with pytest.raises(ValueError, match="port must be an int from 0 to 65535"):
        await wstrio.serve({"/ws": wstrio.echo}, port=port)  # type: ignore[arg-type]
