"""The package as users get it: metadata, a clean wheel and sdist that pass ``twine check``,
every third-party import declared, and an application that type-checks against the test
bootstrap's editable install."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: import name -> distribution, for wstrio's own third-party imports
DISTRIBUTIONS = {
    "trio": "trio",
    "trio_websocket": "trio-websocket",
    "attrs": "attrs",
    "h11": "h11",
    "websockets": "websockets",
    "python_socks": "python-socks",
    "pytest": "pytest",
    "prometheus_client": "prometheus-client",
    "prompt_toolkit": "prompt_toolkit",
    "coredis": "coredis",
    "anyio": "anyio",
}
STDLIB = set(sys.stdlib_module_names)


def test_metadata_says_what_the_package_is() -> None:
    """License, classifiers (Framework :: Trio, Typing :: Typed), Python and a LICENSE file."""
    meta = importlib.metadata.metadata("wstrio")
    assert meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier") or []
    assert "Framework :: Trio" in classifiers and "Typing :: Typed" in classifiers
    assert meta["Requires-Python"] == ">=3.11"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "wstrio" / "py.typed").exists()


def test_every_third_party_import_is_declared() -> None:
    """What wstrio imports outside the standard library is a dependency (or an extra's)."""
    required = importlib.metadata.requires("wstrio") or []
    declared = {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
                for r in required}  # fmt: skip
    imported = set()
    for path in (ROOT / "wstrio").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = sorted(imported - STDLIB - {"wstrio"})
    assert [name for name in third_party if name not in DISTRIBUTIONS] == []
    assert [DISTRIBUTIONS[n] for n in third_party if DISTRIBUTIONS[n] not in declared] == []


def test_the_wheel_and_sdist_build_cleanly_and_pass_twine(tmp_path: Path) -> None:
    """python -m build (no warning from the build backend), then twine check."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "Warning" not in built.stderr and "deprecated" not in built.stderr, built.stderr
    artifacts = sorted(p.name for p in tmp_path.iterdir())
    assert [a.endswith(".whl") or a.endswith(".tar.gz") for a in artifacts] == [True, True]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, tmp_path.iterdir())],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_application_type_checks_against_the_editable_install(tmp_path: Path) -> None:
    """mypy --strict, run away from the checkout, finds wstrio and its types."""
    (tmp_path / "app.py").write_text(
        "import wstrio\n\n\n"
        "async def handler(session: wstrio.Session) -> None:\n"
        "    await session.send_json({'room': session.params.get('room')})\n\n\n"
        "routes: wstrio.Routes = {'/c/{room}': handler}\n"
        "reveal_type(wstrio.connect)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "app.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "Success" in result.stdout or "note: Revealed type" in result.stdout, result.stdout
    assert "error" not in result.stdout, result.stdout
