"""Python written inline in prose is held to the same rules as the samples: it parses, and it
never passes keyword arguments through ``nursery.start``/``start_soon`` (Trio refuses them:
``functools.partial`` is the idiom). The README's ``nursery.start(wstrio.serve, routes,
port=0)`` slipped through because only fenced blocks were checked."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: `code` spans, joined across line breaks (prose wraps them).
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
FENCED = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_snippets(text: str) -> list[str]:
    """Fenced python blocks, and inline spans that parse as Python and call something."""
    snippets = FENCED.findall(text)
    prose = FENCED.sub("", text)
    for span in INLINE.findall(prose):
        code = " ".join(span.split())
        code = code.removeprefix("await ").removeprefix("async with ").removesuffix(":")
        if "(" not in code:
            continue
        try:
            ast.parse(code)
        except SyntaxError:
            continue
        snippets.append(code)
    return snippets


def keyword_starts(code: str) -> list[str]:
    """``nursery.start(...)``/``start_soon(...)`` calls that pass keyword arguments on."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("start", "start_soon")
            and any(keyword.arg != "name" for keyword in node.keywords)
        ):
            found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_snippet_passes_keywords_through_nursery_start(page: Path) -> None:
    """Every nursery.start in prose or samples wraps keyword arguments in functools.partial."""
    bad = [call for code in python_snippets(page.read_text()) for call in keyword_starts(code)]
    assert bad == []


def test_the_check_finds_the_idiom_that_fails() -> None:
    """The check catches what Trio refuses, inline and wrapped over two lines."""
    text = "Then `port = await nursery.start(wstrio.serve,\nroutes, port=0)` gives the port."
    (snippet,) = python_snippets(text)
    assert keyword_starts(snippet) == ["nursery.start(wstrio.serve, routes, port=0)"]
    fixed = "`port = await nursery.start(functools.partial(wstrio.serve, routes, port=0))`"
    assert [keyword_starts(code) for code in python_snippets(fixed)] == [[]]


def test_every_sample_defines_what_it_uses(tmp_path: Path) -> None:
    """Each fenced sample, saved as a file, has no undefined name (ruff's F821), so the
    parts its tests never run, such as ``if __name__ == "__main__":``, work as written."""
    written = []
    for page in PAGES:
        for number, code in enumerate(FENCED.findall(page.read_text())):
            path = tmp_path / f"{page.stem.replace('-', '_')}_{number}.py"
            path.write_text(code)
            written.append(str(path))
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "F821", *written],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
