"""Autobahn|Testsuite (PyPI's kosoku) against the echo endpoint: cases 1.* to 10.*."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

KOSOKU = Path(sys.executable).with_name("kosoku")


@pytest.mark.conformance
def test_autobahn_1_to_10_has_no_failed_case(tmp_path: Path) -> None:
    """Every Autobahn case from 1.* to 10.* is OK, NON-STRICT or INFORMATIONAL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "wstrio", "serve", "--port", "0", "--log-level", "WARNING",
         "--max-message-size", str(20 * 2**20)],  # case 9.1.6 echoes 16 MiB
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        url = re.search(r"ws://\S+", server.stdout.readline())
        assert url, "the server did not print its URL"
        run = subprocess.run(
            [str(KOSOKU), "-m", "fuzzingclient", url.group(0), "-i", "*", "-x", "12.*",
             "-x", "13.*", "-p", "1", "-o", str(tmp_path)],
            capture_output=True, text=True, timeout=900,
        )
        index = tmp_path / "index.json"
        assert index.exists(), run.stdout[-2000:] + run.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
    (cases,) = json.loads(index.read_text()).values()
    verdicts = collections.Counter(case["behavior"] for case in cases.values())
    print(f"Autobahn 1.*-10.*: {dict(verdicts)}")
    failed = sorted(cid for cid, case in cases.items() if case["behavior"] == "FAILED")
    assert not failed, f"FAILED cases: {failed}"
    assert verdicts["OK"] > 250 and set(verdicts) <= {"OK", "NON-STRICT", "INFORMATIONAL"}
    assert server.returncode == 0  # SIGTERM: a clean shutdown
