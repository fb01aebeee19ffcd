"""wstrio's imports point one way, along the data path, and close no cycle.

Every module's imports are read with ``ast`` (imports inside functions and
under ``TYPE_CHECKING`` included). Each private subpackage (or top-level
module) has a layer; a module may import from a lower layer or from its own
subpackage, never from a higher or a sibling one, and no import may close a
cycle. Only the wire may import a WebSocket engine or do zlib framing, and the
connection layer imports nothing but trio and attrs from outside the standard
library. No module reads or writes the private attributes of another module's objects
(a module's own classes may share theirs, as ``Hub`` and ``Room`` do).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wstrio"

#: The layers, bottom first; a unit is a subpackage or a top-level module.
LAYERS: dict[str, int] = {
    "_conn": 0,  # one connection and its close rules
    "_wire": 1,  # bytes <-> messages: the engines
    "_http": 2,  # the one-port front door
    "_rooms": 2,  # broadcast
    "_server": 3,  # entry points
    "_client": 3,
    "_bus": 3,  # rooms across processes
    "_run": 4,  # the server as a program's main loop
    "_apps": 4,  # demo apps and the test kit
    "_workers": 4,  # worker processes on one port
    "testing": 4,
    "_cli": 5,  # wiring
    "__init__": 6,
    "__main__": 6,
}

#: Packages only the wire may import: WebSocket engines and zlib framing.
ENGINE_ONLY = frozenset({"trio_websocket", "wsproto", "websockets", "zlib"})
#: What each unit may import from outside the standard library (the engines: see above).
THIRD_PARTY: dict[str, frozenset[str]] = {
    "_conn": frozenset({"trio", "attrs"}),
    "_wire": frozenset({"trio", "attrs"}),
    "_http": frozenset({"trio", "attrs", "h11", "prometheus_client"}),
    "_rooms": frozenset({"trio", "attrs"}),
    "_server": frozenset({"trio", "attrs", "prometheus_client"}),
    "_run": frozenset({"trio"}),
    "_client": frozenset({"trio", "attrs", "h11", "python_socks"}),  # python_socks: an extra
    "_bus": frozenset({"trio", "attrs", "coredis", "anyio", "prometheus_client"}),  # extra
    "_apps": frozenset({"trio", "attrs"}),
    "_workers": frozenset({"trio", "attrs"}),
    "testing": frozenset({"trio", "attrs", "pytest", "h11"}),
    "_cli": frozenset({"trio", "attrs", "prompt_toolkit"}),
    "__init__": frozenset(),
    "__main__": frozenset(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_package() -> dict[str, tuple[str, bool]]:
    """Every module of wstrio: name -> (source, is a package)."""
    return {
        module_name(path): (path.read_text(), path.name == "__init__.py")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def imports_of(name: str, source: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The absolute module names ``source`` imports (wstrio's resolved to modules)."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in known else base


def unit_of(module: str) -> str:
    """``wstrio._conn.session`` -> ``_conn``; ``wstrio`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(modules: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Imports that point up or sideways, or bring an engine below the wire."""
    known = set(modules)
    problems = []
    for name, (source, is_package) in modules.items():
        unit = unit_of(name)
        for target in imports_of(name, source, is_package, known):
            top = target.split(".")[0]
            if top == "wstrio":
                other = unit_of(target)
                if other != unit and LAYERS[other] >= LAYERS[unit]:
                    problems.append(f"{name} imports {target} ({unit} may not use {other})")
            elif top in ENGINE_ONLY:
                if unit != "_wire":
                    problems.append(f"{name} imports {target}: only _wire may")
            elif top not in THIRD_PARTY[unit] | sys.stdlib_module_names:
                allowed = ", ".join(sorted(THIRD_PARTY[unit])) or "nothing"
                problems.append(f"{name} imports {target}: {unit} uses only {allowed}")
        problems += dynamic_imports(name, source)
    return problems


def dynamic_imports(name: str, source: str) -> list[str]:
    """``importlib.import_module("wstrio...")`` and ``__import__("wstrio...")``: hidden imports."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            argument = node.args[0].value
            if called in ("import_module", "__import__") and str(argument).startswith(
                ("wstrio", ".")
            ):
                problems.append(f"{name} imports {argument} dynamically")
    return problems


def cycles(modules: Mapping[str, tuple[str, bool]]) -> list[list[str]]:
    """Import cycles among wstrio's modules (a package's ``__init__`` counts as a module)."""
    known = set(modules)
    graph = {
        name: {t for t in imports_of(name, src, pkg, known) if t in known and t != name}
        for name, (src, pkg) in modules.items()
    }
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def private_reaches(modules: Mapping[str, tuple[str, bool]]) -> list[str]:
    """``obj._name`` where ``obj`` is not ``self``, ``cls``, ``super()`` or a module and the
    module does not use ``self._name`` itself (one object touching another's private state)."""
    problems = []
    for name, (source, _) in modules.items():
        tree = ast.parse(source)
        own = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        }
        imported = {
            (alias.asname or alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") in ("getattr", "setattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and str(node.args[1].value).startswith("_")
            ):
                problems.append(f"{name}:{node.lineno} reaches into {node.args[1].value} by name")
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in own
                and not (isinstance(node.value, ast.Name) and node.value.id in imported)
                and not _is_super_call(node.value)  # an override calling its base
            ):
                problems.append(f"{name}:{node.lineno} reaches into .{node.attr}")
    return problems


def _is_super_call(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


MODULES = read_package()


def test_every_unit_has_a_layer() -> None:
    """Every subpackage and top-level module of wstrio is placed in a layer."""
    assert {unit_of(name) for name in MODULES} <= set(LAYERS)


def test_imports_point_down_the_layers() -> None:
    """No module imports from a higher or sibling layer, and engines stay in _wire."""
    assert layer_violations(MODULES) == []


def test_no_import_cycle() -> None:
    """No chain of imports inside wstrio leads back to where it started."""
    assert cycles(MODULES) == []


def test_no_private_reaches() -> None:
    """No module touches another object's private attributes."""
    assert private_reaches(MODULES) == []


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("wstrio._conn.session", "from .._rooms.hub import Room", "_conn may not use _rooms"),
        ("wstrio._http.front", "from .._client.dial import Target", "_http may not use _client"),
        ("wstrio._rooms.hub", "from .._http.routes import Route", "_rooms may not use _http"),
        ("wstrio._http.front", "import trio_websocket", "only _wire may"),
        ("wstrio._conn.outbox", "import h11", "_conn uses only attrs, trio"),
        ("wstrio._rooms.hub", "import h11", "_rooms uses only attrs, trio"),
        ("wstrio._http.parse", "import websockets", "only _wire may"),
    ],
)
def test_a_reversed_import_is_caught(module: str, line: str, expected: str) -> None:
    """The checker flags an import that points the wrong way, even under TYPE_CHECKING."""
    source, is_package = MODULES[module]
    guarded = f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    {line}\n"
    changed = {**MODULES, module: (source + guarded, is_package)}
    assert any(expected in problem for problem in layer_violations(changed))


def test_a_cycle_is_caught() -> None:
    """The checker reports a cycle closed by an import inside the same subpackage."""
    source, is_package = MODULES["wstrio._conn.closecodes"]
    changed = {
        **MODULES,
        "wstrio._conn.closecodes": (source + "\nfrom .errors import leaves\n", is_package),
    }
    assert any(
        "wstrio._conn.closecodes" in cycle and "wstrio._conn.errors" in cycle
        for cycle in cycles(changed)
    )


@pytest.mark.parametrize("line", ["x = session._inbox", "x = getattr(session, '_inbox')"])
def test_a_private_reach_is_caught(line: str) -> None:
    """The checker flags a room reading a session's private attribute, even by name."""
    source, is_package = MODULES["wstrio._rooms.hub"]
    changed = {"wstrio._rooms.hub": (source + f"\n{line}\n", is_package)}
    assert any("_inbox" in problem for problem in private_reaches(changed))


def test_a_dynamic_import_is_caught() -> None:
    """``importlib.import_module`` of a module above counts as an import."""
    source, is_package = MODULES["wstrio._conn.session"]
    line = "\nimport importlib\nhub = importlib.import_module('wstrio._rooms.hub')\n"
    changed = {**MODULES, "wstrio._conn.session": (source + line, is_package)}
    assert any("dynamically" in problem for problem in layer_violations(changed))
