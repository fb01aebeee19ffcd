"""The documentation site builds with mkdocs (Material) in strict mode: no warning, a search
index, and the API pages generated from the docstrings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strictly_with_search_and_generated_api(tmp_path: Path) -> None:
    """mkdocs build --strict exits 0 and warns of nothing; its output is not committed."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr
    assert (site / "search" / "search_index.json").stat().st_size > 10_000
    generated = (site / "reference" / "docstrings" / "index.html").read_text()
    for name in ("wstrio.Session", "wstrio.Route", "wstrio.testing.open_memory_server"):
        assert name in generated, name
    assert "Run a server for" in generated  # a docstring's text, not only the names
