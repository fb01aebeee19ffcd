"""``serve --workers N`` as real processes on loopback: which worker answers, SIGTERM,
a killed worker, a rolling restart under a stream of connection attempts, usage errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
import trio
from conftest import StartPool
from helpers import http_get
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.trio.client import ClientConnection, connect
from workerpool import APP, healthz, worker_pids

WORKERS = ("--workers", "2")


class Held:
    """A session on /ws/pid held open: the pid of the worker serving it, how it closed."""

    def __init__(self) -> None:
        self.pid = 0
        self.ws: ClientConnection | None = None
        self.closed: tuple[int, str] | None = None
        self.done = trio.Event()

    async def hold(self, port: int, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with connect(f"ws://127.0.0.1:{port}/ws/pid") as ws:
                self.ws = ws
                self.pid = int(await ws.recv())
                task_status.started()
                with pytest.raises(ConnectionClosed), trio.fail_after(20):
                    await ws.wait_closed()
                    await ws.recv()
            self.closed = (ws.close_code or 1006, ws.close_reason or "")
        finally:
            self.done.set()

    async def echo(self, text: str) -> str:
        assert self.ws is not None
        await self.ws.send(text)
        with trio.fail_after(5):
            return str(await self.ws.recv())


class Tally:
    """A count that can be waited for."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = trio.Event()

    def add(self) -> None:
        self.count += 1
        self._changed.set()
        self._changed = trio.Event()

    async def reach(self, count: int) -> None:
        while self.count < count:
            await self._changed.wait()


async def hold_sessions(nursery: trio.Nursery, port: int, count: int) -> list[Held]:
    held = [Held() for _ in range(count)]
    for session in held:
        await nursery.start(session.hold, port)
    return held


async def test_two_workers_answer_healthz_with_their_numbers(start_pool: StartPool) -> None:
    """/healthz comes from worker 1 or 2 (each its own pid, not the parent's); /metrics
    labels wstrio's samples with the worker that answered."""
    pool = await start_pool(*WORKERS, *APP)
    pids = await worker_pids(pool.port)
    assert set(pids) == {1, 2} and len(set(pids.values())) == 2
    assert pool.proc.pid not in pids.values()
    health = await healthz(pool.port)
    assert health["status"] == "ok" and health["worker"] in (1, 2)
    _, metrics = await http_get(pool.port, "/metrics")
    assert b'wstrio_open_connections{worker="' in metrics
    assert await pool.stop(signal.SIGTERM) == 0


async def test_sigterm_closes_every_session_with_1001_and_exits_0(start_pool: StartPool) -> None:
    """SIGTERM to the parent: every session of every worker gets 1001, the parent exits 0."""
    pool = await start_pool(*WORKERS, *APP)
    async with trio.open_nursery() as nursery:
        held = await hold_sessions(nursery, pool.port, 20)
        assert len({session.pid for session in held}) == 2  # both workers hold sessions
        assert await pool.stop(signal.SIGTERM) == 0
    assert [session.closed for session in held] == [(1001, "going away")] * 20
    assert "all workers stopped" in pool.log_text()


async def test_a_killed_worker_is_restarted_and_the_others_never_notice(
    start_pool: StartPool,
) -> None:
    """kill -9 of worker 1: its sessions drop, the parent logs it and starts a new worker 1
    (a new pid in /healthz); worker 2's sessions keep echoing throughout."""
    pool = await start_pool(*WORKERS, *APP)
    pids = await worker_pids(pool.port)
    async with trio.open_nursery() as nursery:
        held = await hold_sessions(nursery, pool.port, 20)
        victims = [s for s in held if s.pid == pids[1]]
        others = [s for s in held if s.pid == pids[2]]
        assert victims and others and len(victims) + len(others) == 20
        os.kill(pids[1], signal.SIGKILL)
        with trio.fail_after(10):
            for session in victims:
                await session.done.wait()
        assert {session.closed for session in victims} == {(1006, "")}
        with trio.fail_after(20):  # ask /healthz (a request each time) until a new worker 1 answers
            while (new := await worker_pids(pool.port))[1] == pids[1]:
                pass
        assert new[2] == pids[2]
        for session in others:
            assert await session.echo("still here") == "still here"
        assert not any(session.done.is_set() for session in others)
        assert await pool.stop(signal.SIGTERM) == 0
    assert {session.closed for session in others} == {(1001, "going away")}
    log = pool.log_text()
    assert f"worker 1 (pid {pids[1]}) died unexpectedly (killed by SIGKILL)" in log


async def test_sighup_rolls_the_workers_without_refusing_a_connection(
    start_pool: StartPool,
) -> None:
    """SIGHUP under a steady stream of connection attempts: none is refused; the sessions of
    the old workers get 1012; the stream goes on, served by the new workers."""
    pool = await start_pool(*WORKERS, *APP)
    old = set((await worker_pids(pool.port)).values())
    outcomes: Counter[str] = Counter()
    served = Tally()
    served_by: set[int] = set()
    failures: list[str] = []
    stop = trio.Event()

    async def attempts() -> None:
        while not stop.is_set():
            try:
                with trio.fail_after(10):
                    async with connect(f"ws://127.0.0.1:{pool.port}/ws/pid") as ws:
                        pid = int(await ws.recv())
                        await ws.send("x")
                        assert await ws.recv() == "x"
                served_by.add(pid)
                served.add()
            except ConnectionClosed as exc:  # accepted by a retiring worker: told to reconnect
                code = exc.rcvd.code if exc.rcvd else None
                outcomes["1012" if code == 1012 else "closed"] += 1
                if code != 1012:
                    failures.append(repr(exc))
            except (OSError, InvalidStatus, trio.TooSlowError) as exc:  # refused, 503, reset
                outcomes["failed"] += 1
                failures.append(repr(exc))

    async with trio.open_nursery() as nursery:
        held = await hold_sessions(nursery, pool.port, 10)
        for _ in range(4):
            nursery.start_soon(attempts)
        with trio.fail_after(5):
            await served.reach(20)  # the stream is flowing
        pool.proc.send_signal(signal.SIGHUP)
        with trio.fail_after(30):
            for session in held:
                await session.done.wait()
            while len(new := set((await worker_pids(pool.port)).values()) - old) < 2:
                pass  # a /healthz request each time, until both new workers have answered
            await served.reach(served.count + 20)  # new connections are served after the roll
        stop.set()
    assert failures == [] and outcomes["failed"] == 0, (failures, outcomes, served.count)
    assert {session.closed for session in held} == {(1012, "service restart")}
    assert served_by & new  # the new workers served the stream
    assert await pool.stop(signal.SIGTERM) == 0
    log = pool.log_text()
    assert "rolling restart done" in log and "died unexpectedly" not in log


def test_a_worker_that_cannot_start_fails_the_pool() -> None:
    """An application that raises in every worker: the parent names the worker that failed
    in one line and exits 1."""
    result = subprocess.run(
        [sys.executable, "-m", "wstrio", "serve", "--port", "0", *WORKERS,
         "--app-dir", APP[1], "workerapp:broken"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("wstrio: worker ") and "failed to start: exit status 1" in last
    assert "this application cannot start" in result.stderr  # the worker's own traceback


@pytest.mark.parametrize("count", ["0", "-2", "two"])
def test_workers_below_one_is_a_usage_error(count: str) -> None:
    """--workers 0, a negative count or a word: one line, exit status 2."""
    result = subprocess.run(
        [sys.executable, "-m", "wstrio", "serve", "--workers", count],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--workers" in result.stderr
    assert "Traceback" not in result.stderr
