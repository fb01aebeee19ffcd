"""The interop matrix's fixtures: wstrio's server under test, the peers' programs, the results.

The Go peer is built once per session, offline, against Debian's gorilla/websocket source;
Node's ``ws`` comes from ``node/node_modules`` (``sh scripts/bootstrap.sh test`` installs it).
At the end of the run the matrix is printed with the terminal summary.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matrix
import pytest
from interop_peers import MAX_MESSAGE
from interop_support import BOOTSTRAP, BUILD, GO_SOURCE, GOCODE, NODE_DIR, Problems, ThreadServer

import wstrio


@pytest.fixture(scope="module")
def wstrio_server() -> Iterator[ThreadServer]:
    """wstrio's server on 127.0.0.1 for the module (messages up to 16 MiB, no heartbeat);
    nothing at WARNING or above may be logged while it runs."""
    problems = Problems()
    logger = logging.getLogger("wstrio")
    logger.addHandler(problems)
    server = ThreadServer(wstrio.Config(max_message_size=MAX_MESSAGE, ping_interval=None))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        logger.removeHandler(problems)
    assert not server.errors, server.errors
    assert [r.getMessage() for r in problems.records] == []


@pytest.fixture(scope="session")
def go_peer() -> Path:
    """The gorilla peer (``go/peer.go``), built once into ``.build/`` in GOPATH mode with
    Debian's ``/usr/share/gocode`` as the only GOPATH: no module proxy, no network."""
    go = shutil.which("go")
    gorilla = GOCODE / "src/github.com/gorilla/websocket"
    if go is None or not gorilla.is_dir():
        pytest.fail(
            "Go and gorilla/websocket are missing: install Debian's golang-go and "
            f"golang-github-gorilla-websocket-dev ({BOOTSTRAP})"
        )
    # Rebuilt when the source, Go or Debian's gorilla source changes.
    toolchain = subprocess.run([go, "version"], capture_output=True, text=True).stdout
    library = sorted((p.name, p.stat().st_mtime_ns) for p in gorilla.glob("*.go"))
    key = GO_SOURCE.read_bytes() + toolchain.encode() + repr(library).encode()
    binary = BUILD / f"peer-{hashlib.sha256(key).hexdigest()[:16]}"
    if binary.exists():
        return binary
    BUILD.mkdir(exist_ok=True)
    for stale in BUILD.glob("peer-*"):
        stale.unlink()
    env = dict(
        os.environ,
        GO111MODULE="off",
        GOPATH=str(GOCODE),
        GOFLAGS="",
        GOPROXY="off",
        GOCACHE=str(BUILD / "go-cache"),
    )
    partial = binary.with_suffix(".partial")
    done = subprocess.run(
        [go, "build", "-o", str(partial), str(GO_SOURCE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"building the gorilla peer failed:\n{done.stderr}"
    partial.rename(binary)
    return binary


@pytest.fixture(scope="session")
def node_peer() -> Path:
    """The folder of the Node peer, once ``ws`` is installed in it."""
    if shutil.which("node") is None or not (NODE_DIR / "node_modules/ws").is_dir():
        pytest.fail(f"node or the npm package ws is missing in {NODE_DIR} ({BOOTSTRAP})")
    return NODE_DIR


# ---- the results ----


@pytest.fixture(scope="session")
def results() -> matrix.Results:
    """The cells of the matrix, filled by the tests, printed at the end of the run."""
    for package in ("wstrio", "websockets", "trio-websocket"):
        _RESULTS.versions.setdefault(package, importlib.metadata.version(package))
    return _RESULTS


_RESULTS = matrix.Results()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the matrix (and the peers' versions) once any of its rows ran."""
    if not _RESULTS.cells:
        return
    terminalreporter.section("interop matrix")
    terminalreporter.write_line(_RESULTS.versions_line())
    terminalreporter.write_line(matrix.render(_RESULTS, summary_only=True))
