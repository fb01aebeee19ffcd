"""The client through proxies started by the test (pproxy, a small proxy from PyPI): HTTP
CONNECT and SOCKS5, with credentials, from the argument or the environment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from helpers import free_port, serving

import wstrio

PPROXY = Path(sys.executable).with_name("pproxy")



@asynccontextmanager
async def running_proxy(scheme: str) -> AsyncIterator[int]:
    """pproxy speaking ``scheme`` with the credentials ann:s3cret, on a free port."""
    port = free_port()
    command = [str(PPROXY), "-l", f"{scheme}://127.0.0.1:{port}#ann:s3cret"]
    proc = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(20):
            while b"Serving on" not in seen:  # printed once it listens
                chunk = await proc.stdout.receive_some(1024)
                assert chunk, "pproxy ended before it listened"
                seen += chunk
        yield port
    finally:
        proc.kill()
        await proc.wait()


async def echo_through(url: str, **options: object) -> str:
    async with wstrio.connect(url, **options) as session:  # type: ignore[arg-type]
        await session.send("through the proxy")
        return str(await session.receive())


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_the_client_tunnels_through_a_proxy_with_credentials(scheme: str) -> None:
    """ws:// through an HTTP CONNECT or SOCKS5 proxy that wants a user and password."""
    async with serving({"/echo": wstrio.echo}) as port, running_proxy(scheme) as proxy_port:
        proxy = f"{scheme}://ann:s3cret@127.0.0.1:{proxy_port}"
        url = f"ws://127.0.0.1:{port}/echo"
        assert await echo_through(url, proxy=proxy) == "through the proxy"


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_proxy_that_refuses_is_a_connect_error_naming_it(scheme: str) -> None:
    """Wrong credentials: ConnectError naming the proxy (without the password) and why."""
    async with serving({"/echo": wstrio.echo}) as port, running_proxy(scheme) as proxy_port:
        proxy = f"{scheme}://ann:wrong@127.0.0.1:{proxy_port}"
        with pytest.raises(wstrio.ConnectError) as refused:
            await echo_through(f"ws://127.0.0.1:{port}/echo", proxy=proxy)
    message = str(refused.value)
    assert f"{scheme}://ann@127.0.0.1:{proxy_port}" in message and "wrong" not in message
    if scheme == "http":
        assert "407" in message


async def test_the_environment_names_the_proxy_and_no_proxy_bypasses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """http_proxy is used for ws:// by default; no_proxy and proxy=None go direct."""
    async with serving({"/echo": wstrio.echo}) as port, running_proxy("http") as proxy_port:
        url = f"ws://127.0.0.1:{port}/echo"
        monkeypatch.setenv("http_proxy", f"http://ann:wrong@127.0.0.1:{proxy_port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        with pytest.raises(wstrio.ConnectError, match="407"):
            await echo_through(url)  # the environment's proxy, which refuses these creds
        assert await echo_through(url, proxy=None) == "through the proxy"
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        assert await echo_through(url) == "through the proxy"
        monkeypatch.setenv("no_proxy", "example.com")
        monkeypatch.setenv("http_proxy", f"http://ann:s3cret@127.0.0.1:{proxy_port}")
        assert await echo_through(url) == "through the proxy"


async def test_an_unreachable_proxy_is_named() -> None:
    """Nothing listens at the proxy's address: ConnectError naming the proxy."""
    port = free_port()
    with pytest.raises(wstrio.ConnectError, match=f"proxy http://127.0.0.1:{port}"):
        await echo_through("ws://127.0.0.1:9/x", proxy=f"http://127.0.0.1:{port}")


async def test_a_malformed_proxy_url_is_refused_before_connecting() -> None:
    """An unknown scheme or a bad port is a ValueError before any connection is tried."""
    for proxy, words in (("ftp://proxy", "proxy must be"), ("http://p:99999", "out of range")):
        with pytest.raises(ValueError, match=words):
            async with wstrio.connect("ws://127.0.0.1:9/", proxy=proxy):
                pass
    with pytest.raises(ValueError, match="proxy is a URL"):
        async with wstrio.connect("ws://127.0.0.1:9/", proxy=42):  # type: ignore[arg-type]
            pass


async def test_an_unusable_environment_proxy_is_a_connect_error_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """http_proxy naming an unknown scheme: ConnectError naming the variable, no password."""
    monkeypatch.setenv("http_proxy", "ftp://alice:s3cret@proxy.test:21")
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(wstrio.ConnectError, match="http_proxy") as refused:
        await echo_through("ws://127.0.0.1:9/x")
    assert "s3cret" not in str(refused.value) and "alice" in str(refused.value)
