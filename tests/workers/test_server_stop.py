"""In one process: Server.stop (1001, or 1012 for a restart), health checks, a bound socket,
and the worker number on /healthz and /metrics."""

from __future__ import annotations

import functools
import json
import os
import socket

import pytest
import trio
import trio.testing
from helpers import http_get
from prometheus_client.parser import text_string_to_metric_families
from rawhttp import read_response, status, upgrade
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import connect

import wstrio


async def held_sessions(port: int, count: int, nursery: trio.Nursery) -> list[tuple[int, str]]:
    """``count`` echo sessions that wait for the server's close; their (code, reason) land in
    the list returned, once each has closed."""
    closes: list[tuple[int, str]] = []

    async def hold(task_status: trio.TaskStatus[None]) -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            task_status.started()
            with pytest.raises(ConnectionClosed), trio.fail_after(10):
                await ws.recv()
        assert ws.close_code is not None
        closes.append((ws.close_code, ws.close_reason or ""))

    for _ in range(count):
        await nursery.start(hold)
    return closes


@pytest.mark.parametrize(
    ("restart", "expected"), [(False, (1001, "going away")), (True, (1012, "service restart"))]
)
async def test_stop_closes_every_session_and_run_returns(
    restart: bool, expected: tuple[int, str]
) -> None:
    """stop(): 1001 to each session; stop(restart=True): 1012; run() then returns."""
    server = wstrio.Server({"/ws/echo": wstrio.echo})
    with trio.fail_after(10):
        async with trio.open_nursery() as clients:
            async with trio.open_nursery() as serving:
                port = await serving.start(functools.partial(server.run, port=0))
                closes = await held_sessions(port, 5, clients)
                server.stop(restart=restart)
            assert server.statistics().open_connections == 0
    assert closes == [expected] * 5
    assert server.statistics().closes_by_code == {expected[0]: 5}


async def test_a_restart_serves_a_request_under_way_then_sends_1012() -> None:
    """A connection accepted just before a restart is served (101), then told 1012, where a
    going-away stop would refuse it with 503."""
    server = wstrio.Server({"/ws/echo": wstrio.echo})
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(server.run, port=0))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        request = upgrade("/ws/echo")
        await stream.send_all(request[:-2])  # all but the final CRLF
        with trio.fail_after(5):
            while server.statistics().handshakes == 0:
                await trio.testing.wait_all_tasks_blocked()
        server.stop(restart=True)
        await stream.send_all(request[-2:])
        response = await read_response(stream)
        assert status(response) == 101
        frame = b""
        with trio.fail_after(5):
            while len(frame) < 4:
                frame += await stream.receive_some()
        assert frame[0] == 0x88 and int.from_bytes(frame[2:4], "big") == 1012
        await stream.aclose()


async def test_health_checks_make_healthz_degraded_with_reasons(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A check's reason gives 200 "degraded" with the reasons; one that raises counts too."""
    server = wstrio.Server({"/ws/echo": wstrio.echo})
    redis: list[str | None] = [None]
    server.add_health_check(lambda: redis[0])

    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(server.run, port=0))
        head, body = await http_get(port, "/healthz")
        assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["status"] == "ok"
        assert set(json.loads(body)) == {"status", "open_connections", "uptime"}
        redis[0] = "redis: connection refused"
        head, body = await http_get(port, "/healthz")
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(body)["status"] == "degraded"
        assert json.loads(body)["reasons"] == ["redis: connection refused"]

        def broken() -> str | None:
            raise RuntimeError("boom")

        server.add_health_check(broken)
        _, body = await http_get(port, "/healthz")
        reasons = json.loads(body)["reasons"]
        assert reasons[0] == "redis: connection refused" and "RuntimeError('boom')" in reasons[1]
        assert "health check" in caplog.text and "boom" in caplog.text
        nursery.cancel_scope.cancel()


async def test_a_bound_socket_served_as_worker_3_labels_healthz_and_metrics() -> None:
    """run(sockets=[...], worker=3): served on that socket; /healthz says worker 3 and the
    pid; every /metrics sample has worker="3"."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = wstrio.Server({"/ws/echo": wstrio.echo})
    async with trio.open_nursery() as nursery:
        reported = await nursery.start(functools.partial(server.run, sockets=[sock], worker=3))
        assert reported == port
        async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
        _, body = await http_get(port, "/healthz")
        health = json.loads(body)
        assert (health["worker"], health["pid"]) == (3, os.getpid())
        _, body = await http_get(port, "/metrics")
        families = list(text_string_to_metric_families(body.decode()))
        samples = [sample for family in families for sample in family.samples]
        assert samples and all(sample.labels.get("worker") == "3" for sample in samples)
        assert any(s.name == "wstrio_connections_total" and s.value == 1 for s in samples)
        nursery.cancel_scope.cancel()
    assert sock.fileno() == -1  # closed with the server


async def test_single_process_metrics_carry_no_worker_label() -> None:
    """Without a worker number, /metrics is as it always was: no worker label anywhere."""
    server = wstrio.Server({"/ws/echo": wstrio.echo})
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(server.run, port=0))
        _, body = await http_get(port, "/metrics")
        assert b"worker" not in body and b"wstrio_open_connections 0.0" in body
        nursery.cancel_scope.cancel()


def test_run_refuses_a_socket_that_does_not_listen() -> None:
    """A socket that is not listening is a ValueError, not a hang."""
    server_sock = socket.socket()

    async def main() -> None:
        server = wstrio.Server({"/ws/echo": wstrio.echo})
        await server.run(sockets=[server_sock])

    with server_sock, pytest.raises(ValueError, match="not a listening TCP socket"):
        trio.run(main)
