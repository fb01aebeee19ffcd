"""``python -m wstrio``: the command line.

``main`` parses the arguments and hands the run to the command's module:
``serve`` (the default), ``client`` and ``bench``. What the commands share
(connection options, Ctrl-C handling, one-line errors) is in ``common``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import bench, client, serve
from .common import fail


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wstrio", description="WebSocket server, client and load generator for Trio."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(commands)
    client.add_parser(commands)
    bench.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "serve")
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
