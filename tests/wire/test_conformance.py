"""Autobahn|Testsuite (PyPI's kosoku): the server on both engines (cases 1.* to 10.*), the native
server's permessage-deflate (12.* and 13.*), and the native client against kosoku's fuzzing
server (all 517 cases).

kosoku hands its 12.* cases a text message as ``str`` when it arrived uncompressed, then hashes
it and gives up ("Strings must be encoded before hashing", no verdict): our
``compression_threshold`` sends short messages uncompressed, as RFC 7692 allows, so these runs
set it to 0.

No case may FAIL, and no more than the 10 NON-STRICT cases of the first engine are
allowed (3.2-3.4, 4.1.3-4.1.5, 4.2.3-4.2.5, 5.15: a message that arrived before a
bad frame is not echoed before the connection fails).
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from helpers import free_port

import wstrio

KOSOKU = Path(sys.executable).with_name("kosoku")
#: The NON-STRICT cases the trio-websocket engine had; no engine may have more.
KNOWN_NON_STRICT = {"3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5",
                    "5.15"}  # fmt: skip
#: kosoku has 517 cases: 1.* to 10.* (the first 301), then 12.* and 13.* (compression).
ALL_CASES = 517
CASES_1_TO_10 = 301


def verdicts_of(cases: dict[str, dict[str, str]]) -> collections.Counter[str]:
    """Check the reports: nothing FAILED or UNIMPLEMENTED, no new NON-STRICT; the counts."""
    verdicts = collections.Counter(case["behavior"] for case in cases.values())
    failed = sorted(cid for cid, case in cases.items() if case["behavior"] == "FAILED")
    assert not failed, f"FAILED cases: {failed}"
    lax = {cid for cid, case in cases.items() if case["behavior"] == "NON-STRICT"}
    assert lax <= KNOWN_NON_STRICT, f"new NON-STRICT cases: {sorted(lax - KNOWN_NON_STRICT)}"
    assert verdicts["OK"] > 0.9 * len(cases)
    assert set(verdicts) <= {"OK", "NON-STRICT", "INFORMATIONAL"}
    return verdicts


@pytest.mark.conformance
@pytest.mark.parametrize(
    ("engine", "cases"),
    [
        ("native", "1-10"),
        ("trio-websocket", "1-10"),
        pytest.param("native", "12-13", marks=pytest.mark.long),  # minutes of deflate
    ],
)
def test_autobahn_against_the_server(tmp_path: Path, engine: str, cases: str) -> None:
    """Every case is OK, INFORMATIONAL or a known NON-STRICT: none FAILED or UNIMPLEMENTED."""
    server = subprocess.Popen(
        [sys.executable, "-m", "wstrio", "serve", "--port", "0", "--log-level", "WARNING",
         "--engine", engine, "--max-message-size", str(20 * 2**20),  # 9.1.6 echoes 16 MiB
         "--compression-threshold", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    chosen = (
        ["-i", "*", "-x", "12.*", "-x", "13.*"] if cases == "1-10" else ["-i", "12.*", "-i", "13.*"]
    )
    try:
        assert server.stdout is not None
        url = re.search(r"ws://\S+", server.stdout.readline())
        assert url, "the server did not print its URL"
        run = subprocess.run(
            [str(KOSOKU), "-m", "fuzzingclient", url.group(0), *chosen, "-p", "1",
             "-o", str(tmp_path)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        index = tmp_path / "index.json"
        assert index.exists(), run.stdout[-2000:] + run.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
    (reports,) = json.loads(index.read_text()).values()
    print(f"Autobahn server {cases} ({engine}): {dict(verdicts_of(reports))}")
    assert server.returncode == 0  # SIGTERM: a clean shutdown



async def echo_every_case(port: int, last: int) -> None:
    """What an Autobahn client does: echo each case's messages, then ask for the reports."""
    base = f"ws://127.0.0.1:{port}"
    config = wstrio.Config(
        max_message_size=64 * 2**20, ping_interval=None, close_timeout=2, compression_threshold=0
    )
    async with wstrio.connect(f"{base}/getCaseCount") as session:
        assert int(await session.receive()) == ALL_CASES
    for case in range(1, last + 1):
        with trio.move_on_after(120):  # 12.2.15 echoes 1000 x 128 KiB in 256-byte frames
            try:
                async with wstrio.connect(
                    f"{base}/runCase?case={case}&agent=wstrio", config=config
                ) as session:
                    async for message in session:
                        await session.send(message)
            except (wstrio.ConnectionClosed, wstrio.ConnectError, wstrio.HandshakeRejected):
                pass  # the case decides what the client saw; its report says if it was right
    async with wstrio.connect(f"{base}/updateReports?agent=wstrio") as session:
        with contextlib.suppress(wstrio.ConnectionClosed):  # it hangs up once it has written
            async for _ in session:
                pass


@pytest.mark.conformance
@pytest.mark.parametrize(
    "last",
    [CASES_1_TO_10, pytest.param(ALL_CASES, marks=pytest.mark.long)],
    ids=["1-10", "all"],
)
def test_autobahn_against_the_native_client(tmp_path: Path, last: int) -> None:
    """wstrio.connect passes Autobahn's client cases (all 517, compression included, in the
    long run: ``python -m pytest -m long``)."""
    port = free_port()
    server = subprocess.Popen(
        [str(KOSOKU), "-m", "fuzzingserver", "-o", str(tmp_path), f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "listening" in server.stdout.readline()  # it accepts from here on
        trio.run(echo_every_case, port, last)
        server.wait(timeout=120)  # it exits once every report is written
    finally:
        server.kill()
    reports = [json.loads(path.read_text()) for path in tmp_path.glob("wstrio_case_*.json")]
    assert len(reports) == last
    cases = {report["id"]: report for report in reports}
    print(f"Autobahn client, {last} cases: {dict(verdicts_of(cases))}")
