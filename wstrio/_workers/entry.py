"""``wstrio.serve_workers``: N worker processes on one port, as a program's main loop."""

from __future__ import annotations

import functools
import logging
import pickle
import socket
import ssl
from collections.abc import Callable, Mapping

import trio

from .._conn.config import Config
from .._conn.logfields import get_logger
from .._http.routes import Routes
from .._server import Server
from .pool import Pool
from .sockets import bind_sockets
from .worker import Worker, serve_worker

logger = get_logger("wstrio.workers")

#: What the application gives: routes, or a function returning routes or a Server.
App = Routes | Callable[[], Routes | Server]
#: Seconds a worker may take beyond its own shutdown bound before the parent kills it.
EXIT_GRACE = 1.0


def stop_timeout(config: Config) -> float:
    """Seconds the parent gives a stopping worker before it kills it: the worker's own bound
    (``shutdown_timeout + close_timeout``) and a second to exit."""
    return config.shutdown_timeout + config.close_timeout + EXIT_GRACE


def serve_workers(
    app: App,
    *,
    workers: int,
    host: str | None = "127.0.0.1",
    port: int = 7777,
    config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
    ssl_context_factory: Callable[[], ssl.SSLContext] | None = None,
) -> None:
    """Serve ``app`` from ``workers`` processes on one port until SIGINT or SIGTERM, then stop
    them gracefully (1001 to every session) and return; SIGHUP restarts them one by one
    (the old ones close their sessions with 1012). The main loop of a program: call it
    outside ``trio.run``, in the main thread, under ``if __name__ == "__main__":``.

    ``app``: routes, or a function returning routes or a :class:`Server`, called in each
    worker inside its ``trio.run``. Workers are fresh interpreters (``multiprocessing``'s
    spawn), so ``app`` must be picklable: a module-level function, or routes of
    module-level handlers. ``ssl_context_factory``: a module-level function returning the
    ``ssl.SSLContext`` (a context cannot be pickled). A worker that dies is restarted
    with backoff; a stopping worker is killed after ``shutdown_timeout + close_timeout``
    seconds and one more. ``Config.max_connections`` applies to each worker.

    ValueError if ``workers`` is below 1 or the port is outside 0-65535; TypeError if
    ``app`` cannot be pickled; OSError if the address cannot be bound; RuntimeError
    (``WorkersFailed``) if one of the first workers cannot start.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int of at least 1, not {workers!r}")
    target = functools.partial(_serve_app, app, config, ssl_context_factory)
    try:
        pickle.dumps(target)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"serve_workers: app and ssl_context_factory must be picklable (module-level"
            f" functions or routes of module-level handlers): {exc}"
        ) from None
    started = functools.partial(_log_listening, workers, ssl_context_factory is not None)
    run_pool(target, host=host, port=port, workers=workers, config=config, started=started)


def run_pool(
    target: Callable[[Worker], object],
    *,
    host: str | None,
    port: int,
    workers: int,
    config: Config,
    started: Callable[[tuple[socket.socket, ...]], object],
) -> None:
    """Bind ``host``:``port`` here, run ``target`` in ``workers`` processes on the sockets
    (``sockets.bind_sockets``), call ``started(sockets)`` with the first worker's once all
    serve, supervise them until SIGINT or SIGTERM. OSError if the address cannot be bound;
    WorkersFailed if a first worker cannot start."""
    slots = bind_sockets(host, port, workers)
    try:
        pool = Pool(target, slots, stop_timeout=stop_timeout(config))
        trio.run(pool.run, functools.partial(started, slots[0]))
    finally:
        for sock in {sock for sockets in slots for sock in sockets}:
            sock.close()


def _log_listening(workers: int, tls: bool, sockets: tuple[socket.socket, ...]) -> None:
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        url = f"{'wss' if tls else 'ws'}://{f'[{host}]' if ':' in host else host}:{port}/"
        logger.info("listening on %s with %d workers", url, workers, extra={"url": url})


def _serve_app(
    app: App,
    config: Config,
    ssl_context_factory: Callable[[], ssl.SSLContext] | None,
    worker: Worker,
) -> None:
    """In a worker: build the server from ``app`` and serve until the parent says stop."""
    if not logging.getLogger().handlers:  # the application configured no logging of its own
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("wstrio").setLevel(worker.log_level)
    tls = ssl_context_factory() if ssl_context_factory is not None else None

    async def main() -> None:
        built = app() if callable(app) and not isinstance(app, Mapping) else app
        server = built if isinstance(built, Server) else Server(built, config=config)
        await serve_worker(server, worker, ssl_context=tls)

    trio.run(main)
