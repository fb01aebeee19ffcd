"""``python -m wstrio serve module:attr``: the application's own routes, a factory or a
Server, served with the command's options; what cannot be loaded is one line, exit 2."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import wstrio

APP = '''
import wstrio

async def hello(session):
    await session.send(f"hello {session.params['who']} ({session.request.query.get('x')})")

routes = {"/hi/{who}": hello}

def build(config):
    assert isinstance(config, wstrio.Config) and config.max_message_size == 4096
    return {"/hi/{who}": hello}

def make_server():
    return wstrio.Server({"/hi/{who}": hello})

class Box:
    routes = routes

sync_routes = {"/bad": lambda session: None}
number = 42
'''


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    (tmp_path / "broken.py").write_text("import no_such_dependency_here\n")
    return tmp_path


def wstrio_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wstrio", "serve", "--port", "0", *args]


@pytest.mark.parametrize(
    "spec", ["myapp:routes", "myapp:build", "myapp:make_server", "myapp:Box.routes"]
)
async def test_the_app_is_served_with_the_command_options(app_dir: Path, spec: str) -> None:
    """Routes, a factory taking the Config, a Server-building factory, a dotted attribute."""
    command = wstrio_cli(spec, "--app-dir", str(app_dir), "--max-message-size", "4096")
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive_some(1)
            found = re.search(rb"http://127\.0\.0\.1:(\d+)/", line)
            assert found and spec.encode() in line, line
            url = f"ws://127.0.0.1:{int(found.group(1))}/hi/ann?x=1"
            async with wstrio.connect(url) as session:
                assert await session.receive() == "hello ann (1)"
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
        finally:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("nosuchmodule:routes", "cannot import module 'nosuchmodule'"),
        ("myapp:nothing", "has no attribute 'nothing'"),
        ("myapp", "must be 'module:attribute'"),
        ("myapp:number", "expected a routes mapping"),
        ("myapp:sync_routes", "route '/bad'"),
    ],
)
def test_an_app_that_cannot_be_loaded_is_one_line_and_exit_2(
    app_dir: Path, spec: str, words: str
) -> None:
    """Missing module or attribute, a bad spec, a wrong type, a bad route: one line, exit 2."""
    result = subprocess.run(
        wstrio_cli(spec, "--app-dir", str(app_dir)), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("wstrio: ") and words in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_an_import_error_inside_the_app_shows_its_traceback(app_dir: Path) -> None:
    """The application's own broken import is its author's to see, traceback and all."""
    result = subprocess.run(
        wstrio_cli("broken:routes", "--app-dir", str(app_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no_such_dependency_here" in result.stderr and "Traceback" in result.stderr
