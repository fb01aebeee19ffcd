"""The README's code samples run and do what the README says."""

from __future__ import annotations

import functools
from pathlib import Path

import trio
from helpers import python_blocks, run_block
from test_docs import broken_links

import wstrio

README = Path(__file__).resolve().parents[2] / "README.md"


async def test_readme_server_and_client_samples_talk(nursery: trio.Nursery) -> None:
    """The quick-start echo handler serves; the client sample gets "hello" back."""
    server_code, client_code = python_blocks(README)
    echo = run_block(server_code)["echo"]
    port = await nursery.start(functools.partial(wstrio.serve, {"/ws/echo": echo}, port=0))
    client = run_block(client_code)
    client["URL"] = f"ws://127.0.0.1:{port}/ws/echo"
    with trio.fail_after(10):
        assert await client["main"]() == "hello"


def test_readme_links_resolve() -> None:
    """Every relative link in README.md points at an existing file and heading."""
    assert broken_links(README) == []
