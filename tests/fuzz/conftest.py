"""The fuzz targets' summary: how many examples each ran, and in how long (pytest's terminal
summary, so it is in every run's output, CI's included)."""

from __future__ import annotations

import pytest
from fuzzkit import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("fuzzing: examples run per target")
    width = max(len(name) for name in TALLY)
    for name, tally in sorted(TALLY.items()):
        terminalreporter.write_line(
            f"{name:<{width}}  {tally.examples:>5} examples  {tally.seconds:6.1f} s"
        )
    total = sum(tally.examples for tally in TALLY.values())
    seconds = sum(tally.seconds for tally in TALLY.values())
    terminalreporter.write_line(f"{'total':<{width}}  {total:>5} examples  {seconds:6.1f} s")
