"""``python -m wstrio``: the command line.

``main`` parses the arguments and hands the run to the command's module:
``serve`` (the default), ``client`` and ``bench``. What the commands share
(connection options, Ctrl-C handling, one-line errors) is in ``common``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from typing import cast

from . import bench, client, logs, serve
from .common import Parser, fail


def _version() -> str:
    try:
        return importlib.metadata.version("wstrio")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "(not installed)"


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser, and each command's."""
    parser = Parser(
        prog="wstrio",
        description="WebSocket server, client and load generator for Trio."
        " Without a command, runs serve.",
    )
    parser.add_argument("--version", action="version", version=f"wstrio {_version()}")
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND"),
    )
    serve.add_parser(commands)
    client.add_parser(commands)
    bench.add_parser(commands)
    return parser, dict(commands.choices)


def _parser() -> argparse.ArgumentParser:
    return _parsers()[0]


def _parse(argv: list[str]) -> argparse.Namespace:
    """The arguments; a usage error (one line, exit 2) from the command it concerns."""
    parser, commands = _parsers()
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    args = _parse(argv)
    logs.configure(args.log_level, getattr(args, "log_format", "text"))
    if args.command == "serve":
        return serve.run(args)
    command = client.run if args.command == "client" else bench.run
    try:
        return command(args)
    except KeyboardInterrupt:  # before Trio took over SIGINT
        return 130
    except Exception as exc:  # a bug: one line, with the details in the debug log
        logging.getLogger("wstrio").debug("%s failed", args.command, exc_info=exc)
        return fail(f"unexpected error (a bug in wstrio, please report it): {exc!r}", 1)
