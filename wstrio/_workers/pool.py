"""The parent: start N workers, keep them running, stop them, roll them.

Theory of operation: each worker number (1 to N) has a current process. A
watcher task per process reaps it; if it was the current one of its number and
nobody asked it to stop, it died: one log line, then a new process after a
backoff that doubles with each quick death (reset once a worker has lived
``HEALTHY_AFTER`` seconds). SIGTERM or SIGINT to the parent sends SIGTERM to
every worker, waits up to ``stop_timeout`` and kills what is left. SIGHUP rolls
the numbers one after the other: a new process is started and must report that
it serves before the old one is sent SIGHUP (stop accepting, 1012 to its
sessions); the old one is killed if it has not exited within ``stop_timeout``.
Since a number's processes accept from the same socket (``sockets``), which the
parent itself keeps open, connections wait in its queue while none accepts.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import AsyncIterator, Callable, Sequence

import trio

from .._conn.logfields import get_logger
from .process import WorkerProcess, describe
from .worker import Worker

logger = get_logger("wstrio.workers")

#: Restart delays: the first after MIN_BACKOFF seconds, doubling up to MAX_BACKOFF.
MIN_BACKOFF = 0.1
MAX_BACKOFF = 10.0
#: A worker that lived this long (seconds) died of something new: the backoff starts over.
HEALTHY_AFTER = 10.0
#: How long (seconds) a new worker may take to start serving.
START_TIMEOUT = 60.0


class WorkersFailed(RuntimeError):
    """The first workers could not start; the message says which and how it ended."""


class Pool:
    """Worker processes running ``target``, worker number N on ``slots[N - 1]`` (its listening
    sockets), until SIGTERM or SIGINT."""

    def __init__(
        self,
        target: Callable[[Worker], object],
        slots: Sequence[tuple[socket.socket, ...]],
        *,
        stop_timeout: float,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if not slots:
            raise ValueError("a pool needs at least one worker")
        self._target = target
        self._slots = slots
        self._workers = len(slots)
        self._stop_timeout = stop_timeout
        self._start_timeout = start_timeout
        self._current: dict[int, WorkerProcess] = {}
        self._live: set[WorkerProcess] = set()  # started, not yet reaped
        self._quick_deaths: dict[int, int] = {}
        self._serving = False  # every first worker reported ready
        self._stopping = False
        self._rolling = False
        self._start_failure: str | None = None

    async def run(self, started: Callable[[], object] = lambda: None) -> None:
        """Start the workers, call ``started()`` once all serve, supervise them until SIGTERM
        or SIGINT, stop them and return. WorkersFailed if one of the first ones cannot start
        (the others are stopped first)."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    if await self._start_all(signals):
                        started()
                        await self._supervise(signals)
                finally:
                    with trio.CancelScope(shield=True):
                        await self._stop_all()
                    nursery.cancel_scope.cancel()
        if self._start_failure is not None:
            raise WorkersFailed(self._start_failure)

    async def _start_all(self, signals: AsyncIterator[int]) -> bool:
        """True once every first worker serves; False after a stop signal or a failure."""
        with trio.move_on_after(self._start_timeout) as deadline:
            async with trio.open_nursery() as starting:
                starting.start_soon(self._cancel_on_signal, signals, starting.cancel_scope)
                for number in range(1, self._workers + 1):
                    self._current[number] = await self._spawn(number)
                for process in self._current.values():
                    if not await process.wait_ready():
                        await process.exited.wait()
                        status = describe(process.exitcode)
                        self._start_failure = f"{process} failed to start: {status}"
                        break
                else:
                    self._serving = True
                    logger.info("%d workers serving", self._workers)
                starting.cancel_scope.cancel()
        if deadline.cancelled_caught:
            self._start_failure = f"workers not all serving after {self._start_timeout:g} s"
        return self._serving

    @staticmethod
    async def _cancel_on_signal(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
        async for signum in signals:  # a stop while the workers start
            if signum == signal.SIGHUP:
                logger.info("SIGHUP: ignored, the workers are still starting")
                continue
            logger.info("%s: stopping", signal.Signals(signum).name)
            scope.cancel()
            return

    async def _supervise(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum != signal.SIGHUP:
                logger.info("%s: stopping %d workers", name, self._workers)
                return
            if self._rolling:
                logger.info("SIGHUP: a rolling restart is under way already")
            else:
                self._rolling = True
                self._nursery.start_soon(self._roll)

    async def _spawn(self, number: int) -> WorkerProcess:
        process = WorkerProcess(number, self._target, self._slots[number - 1])
        with trio.CancelScope(shield=True):  # once started, it must be watched and stopped
            await process.start()
        self._live.add(process)
        self._nursery.start_soon(self._watch, process)
        logger.debug("%s started", process)
        if self._stopping:  # the stop signalled the others while this one started
            process.signal(signal.SIGTERM)
        return process

    async def _watch(self, process: WorkerProcess) -> None:
        """Reap ``process``; restart it if it was a current worker that died."""
        status = await process.wait()
        self._live.discard(process)
        lived = trio.current_time() - process.started_at
        if self._stopping or process.retiring or not self._serving:
            logger.debug("%s ended: %s", process, describe(status))
            return
        if self._current.get(process.number) is not process:  # a replacement that never served
            return
        number = process.number
        quick = self._quick_deaths.get(number, 0) + 1 if lived < HEALTHY_AFTER else 1
        self._quick_deaths[number] = quick
        delay = min(MIN_BACKOFF * 2 ** (quick - 1), MAX_BACKOFF)
        logger.error(
            "%s died unexpectedly (%s) after %.1f s; restarting it in %.1f s",
            process, describe(status), lived, delay,
        )  # fmt: skip
        await trio.sleep(delay)
        if self._stopping or self._current.get(number) is not process:
            return  # stopping, or a rolling restart replaced it meanwhile
        replacement = await self._spawn(number)
        self._current[number] = replacement
        if await replacement.wait_ready():
            logger.info("%s serves, replacing pid %d", replacement, process.pid)

    async def _roll(self) -> None:
        """Replace each worker in turn: the new one serves before the old one retires."""
        logger.info("SIGHUP: rolling restart of %d workers", self._workers)
        try:
            for number in sorted(self._current):
                if self._stopping:
                    return
                new = await self._spawn(number)
                with trio.move_on_after(self._start_timeout):
                    ready = await new.wait_ready()
                if self._stopping:
                    return
                old = self._current[number]
                if not ready:
                    new.signal(signal.SIGKILL)
                    await new.exited.wait()
                    logger.error(
                        "rolling restart stopped: the new worker %d did not start (%s);"
                        " %s keeps serving",
                        number, describe(new.exitcode), old,
                    )  # fmt: skip
                    return
                self._current[number] = new
                old.retiring = True
                old.signal(signal.SIGHUP)
                logger.info("%s serves; %s retires (1012 to its sessions)", new, old)
                self._nursery.start_soon(self._kill_if_late, old)
            logger.info("rolling restart done")
        finally:
            self._rolling = False

    async def _kill_if_late(self, process: WorkerProcess) -> None:
        with trio.move_on_after(self._stop_timeout):
            await process.exited.wait()
            return
        logger.warning("%s still running %g s after SIGHUP: killed", process, self._stop_timeout)
        process.signal(signal.SIGKILL)

    async def _stop_all(self) -> None:
        """SIGTERM to every worker (1001 to its sessions); SIGKILL after ``stop_timeout``."""
        self._stopping = True
        for process in list(self._live):
            process.signal(signal.SIGTERM)
        with trio.move_on_after(self._stop_timeout):
            for process in list(self._live):
                await process.exited.wait()
        for process in list(self._live):
            logger.warning(
                "%s still running %g s after SIGTERM: killed", process, self._stop_timeout
            )
            process.signal(signal.SIGKILL)
        for process in list(self._live):
            await process.exited.wait()
        logger.info("all workers stopped")
