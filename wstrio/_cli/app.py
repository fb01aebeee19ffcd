"""``serve module:attr``: find the application's routes, or its Server, uvicorn-style.

``attr`` may be dotted (``app:build.routes``). What it names is used as:

* a routes mapping (``{"/ws": handler, ...}``): served with the command's options;
* a :class:`wstrio.Server`: served as it is (its own Config; the command's
  ``--host``, ``--port`` and TLS options still apply); a Server is built inside
  ``trio.run``, so it comes from a factory;
* a callable (a factory): called with the Config built from the command's
  options if it takes one argument, else with none, and what it returns is one
  of the two above.

A module or attribute that cannot be found is a :class:`AppError`: one line
for the command to print (exit 2). An exception raised while importing or
calling the application's own code is not caught here: it is the
application's, and its traceback is what its author needs.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path

from .._conn.config import Config
from .._http.routes import Routes, resolve_routes
from .._server import Server


class AppError(Exception):
    """The application named on the command line cannot be loaded (one line to print)."""


def _import(module_name: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise AppError(
                f"cannot import module {module_name!r}: no module named {missing!r}"
            ) from None
        raise


def find_app(spec: str, app_dir: str = ".") -> object:
    """What ``module:attr`` names (imported from ``app_dir`` first); AppError if nothing."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise AppError(f"APP must be 'module:attribute', like 'myapp:routes', not {spec!r}")
    path = str(Path(app_dir).resolve())
    if path not in sys.path:
        sys.path.insert(0, path)
    target: object = _import(module_name)
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppError(f"module {module_name!r} has no attribute {attr!r}") from None
    return target


def build_app(target: object, spec: str, config: Config) -> Routes | Server:
    """The routes or Server ``target`` is or makes (inside ``trio.run``: a Server needs it);
    AppError if it is neither, or if the routes are malformed."""
    if callable(target) and not isinstance(target, Server | Mapping):
        takes_config = _takes_one(target)
        target = target(config) if takes_config else target()
    if isinstance(target, Server):
        return target
    if isinstance(target, Mapping):
        try:
            resolve_routes(target)
        except (TypeError, ValueError) as exc:
            raise AppError(f"{spec}: {exc}") from None
        return target
    raise AppError(
        f"{spec} is a {type(target).__name__}: expected a routes mapping, a wstrio.Server, or"
        " a function returning one"
    )


def _takes_one(fn: object) -> bool:
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True
