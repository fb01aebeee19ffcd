"""One worker process: serve the inherited sockets until told to stop, say when serving.

Signals are the parent's words: SIGTERM or SIGINT stop the server with 1001
(going away), SIGHUP with 1012 (service restart: the worker retires in a
rolling restart). A worker whose parent died stops too (1001), instead of
serving on unsupervised.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection

import attrs
import trio

from .._conn.errors import one_of
from .._conn.logfields import get_logger, log_fields
from .._server import Server

logger = get_logger("wstrio.workers")

#: Signals a worker answers: stop (1001), or retire for a rolling restart (1012).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RETIRE_SIGNAL = signal.SIGHUP


@attrs.frozen
class Worker:
    """What the parent hands a worker process (pickled: the sockets and the pipe travel as
    file descriptors)."""

    #: The worker's number, 1 to N: what ``/healthz`` and ``/metrics`` report.
    number: int
    #: The listening sockets the parent bound, shared by every worker.
    sockets: tuple[socket.socket, ...]
    #: The write end of the pipe on which the worker says it serves.
    ready: Connection
    #: The level of the parent's ``wstrio`` logger, for a worker that configures no logging.
    log_level: int = logging.INFO

    def report_ready(self) -> None:
        """Tell the parent this worker accepts connections (once)."""
        if not self.ready.closed:
            self.ready.send_bytes(b"ready")
            self.ready.close()


def run_worker(target: Callable[[Worker], object], worker: Worker) -> None:
    """A worker process's entry point (what ``multiprocessing`` calls): ``target(worker)``,
    every wstrio log record of the process carrying the field ``worker``."""
    with log_fields(worker=worker.number):
        target(worker)


async def serve_worker(
    server: Server, worker: Worker, *, ssl_context: ssl.SSLContext | None = None
) -> None:
    """Serve ``worker``'s sockets with ``server`` until SIGTERM or SIGINT (1001), SIGHUP
    (1012) or the parent's death; reports ready to the parent once accepting."""
    run = functools.partial(
        server.run, sockets=worker.sockets, worker=worker.number, ssl_context=ssl_context
    )
    try:
        with trio.open_signal_receiver(*STOP_SIGNALS, RETIRE_SIGNAL) as signals:
            async with trio.open_nursery() as watchers:
                watchers.start_soon(_stop_on_signal, server, signals, worker.number)
                watchers.start_soon(_stop_when_orphaned, server)
                async with trio.open_nursery() as serving:
                    await serving.start(run)
                    worker.report_ready()
                watchers.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise one_of(group) from None


async def _stop_on_signal(server: Server, signals: AsyncIterator[int], number: int) -> None:
    async for signum in signals:  # the first decides; later ones change nothing
        restart = signum == RETIRE_SIGNAL
        code = "1012 service restart" if restart else "1001 going away"
        logger.info("worker %d: %s: stopping (%s)", number, signal.Signals(signum).name, code)
        server.stop(restart=restart)


async def _stop_when_orphaned(server: Server) -> None:
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        await trio.sleep_forever()  # not started by a pool: nothing to watch
        return
    await trio.lowlevel.wait_readable(parent.sentinel)  # the parent's end closed: it died
    logger.warning("the supervising process is gone: stopping (1001 going away)")
    server.stop()
