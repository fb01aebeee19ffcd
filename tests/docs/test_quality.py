"""The code base stays ruff- and mypy --strict-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing() -> None:
    """ruff reports no problem in the package, tests, examples or benchmarks."""
    paths = [p for p in ("wstrio", "tests", "examples", "bench") if (ROOT / p).is_dir()]
    result = run("ruff", "check", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    """mypy --strict accepts the package."""
    result = run("mypy", "--strict", "wstrio")
    assert result.returncode == 0, result.stdout + result.stderr
