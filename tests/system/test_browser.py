"""End to end in a real headless Chromium: the page ``python -m wstrio`` serves at ``/``.

Plain synchronous tests with Playwright's sync API (never inside a trio run). The
server is the real CLI in a subprocess; the browser is Debian's ``/usr/bin/chromium``
(``scripts/bootstrap.sh test`` installs it), never one Playwright downloads.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS
from helpers import free_port
from playwright.sync_api import Browser, Page, WebSocketRoute, expect, sync_playwright
from websockets.sync.client import connect as websocket_connect

from wstrio.testing import RedisServer

SERVER = [sys.executable, "-m", "wstrio", "--log-level", "WARNING"]
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 5_000  # every Playwright action and expectation
STARTUP_S = 15  # the server's first line, and its exit after SIGTERM
PAGE_IDS = (
    "echo-panel",
    "echo-open",
    "echo-close",
    "echo-code",
    "echo-input",
    "echo-send",
    "echo-log",
    "chat-panel",
    "chat-room",
    "chat-name",
    "chat-join",
    "chat-state",
    "chat-latency",
    "chat-you",
    "chat-messages",
    "chat-members",
    "chat-input",
    "chat-send",
)
LATENCY = re.compile(r"^\d+(\.\d)? ms$")

expect.set_options(timeout=TIMEOUT_MS)


class Server:
    """One ``python -m wstrio --port PORT OPTIONS`` subprocess (port 0 unless given), its
    base URL and its stderr log."""

    def __init__(self, log_path: Path, *options: str, port: int = 0) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [*SERVER, "--port", str(port), *options],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], STARTUP_S)
        line = self.proc.stdout.readline() if ready else ""
        found = re.match(r"wstrio listening on ws://127\.0\.0\.1:(\d+)/", line)
        if not found:
            self.proc.kill()
            self.proc.wait()
            self._log.close()
            pytest.fail(f"server did not start: {line!r}\n{log_path.read_text()}")
        self.port = int(found.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        """SIGTERM, wait (bounded), and return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=STARTUP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            status = -signal.SIGKILL
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._log.close()
        return status

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("browser") / "server.log")
    yield srv
    status = srv.stop()
    assert status == 0, f"server exited with {status}\n{srv.log()}"
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(`sh scripts/bootstrap.sh test` does); the browser tests never download one"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """A factory of pages, each in its own browser context; no page may raise a JS error."""
    contexts = []
    errors: list[str] = []

    def make() -> Page:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == []


def unique_room() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def join(page: Page, url: str, room: str, name: str) -> None:
    """Load the page, join ``room`` as ``name`` and wait until the server listed us."""
    page.goto(url + "/")
    page.fill("#chat-room", room)
    page.fill("#chat-name", name)
    page.click("#chat-join")
    expect(page.locator("#chat-state")).to_have_text("open")
    expect(page.locator("#chat-members li.you")).to_have_text(name)


def say(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def test_page_loads(server: Server, new_page: Callable[[], Page]) -> None:
    """GET / answers 200 with the page, both panels show, every id exists, nothing external."""
    page = new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(server.url + "/")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    expect(page).to_have_title("wstrio")
    expect(page.locator("#echo-panel")).to_be_visible()
    expect(page.locator("#chat-panel")).to_be_visible()
    for element_id in PAGE_IDS:
        expect(page.locator(f"#{element_id}")).to_have_count(1)
    expect(page.locator("#chat-room")).to_have_value("lobby")
    expect(page.locator("#echo-code")).to_have_value("1000")
    expect(page.locator("#chat-room")).to_have_attribute("maxlength", "64")
    expect(page.locator("#chat-name")).to_have_attribute("maxlength", "32")
    assert requested and all(url.startswith(server.url + "/") for url in requested), requested


def test_echo_panel(server: Server, new_page: Callable[[], Page]) -> None:
    """Open, Send "hello" and Close log OPEN, SENT, RESPONSE and CLOSE: 1000, in that order."""
    page = new_page()
    page.goto(server.url + "/")
    log = page.locator("#echo-log li")
    page.click("#echo-open")
    expect(log).to_have_text(["OPEN"])
    page.fill("#echo-input", "hello")
    page.click("#echo-send")
    expect(log).to_have_text(["OPEN", "SENT: hello", "RESPONSE: hello"])
    page.click("#echo-close")
    expect(log).to_have_text(["OPEN", "SENT: hello", "RESPONSE: hello", "CLOSE: 1000"])
    expect(page.locator("#echo-open")).to_be_enabled()


def test_chat_two_members(server: Server, new_page: Callable[[], Page]) -> None:
    """Two contexts in one room see each other, both get A's message, and A sees B leave."""
    room = unique_room() + " &#?/é"  # must survive the query string
    alice, bob = new_page(), new_page()
    join(alice, server.url, room, "alice")
    join(bob, server.url, room, "bob & co")
    for page in (alice, bob):
        expect(page.locator("#chat-members li")).to_have_text(["alice", "bob & co"])
    expect(alice.locator("#chat-messages .notice").last).to_contain_text("bob & co joined")

    text = "hi <b>bob</b> <img src=x onerror=alert(1)>"  # shown as text, never as markup
    say(alice, text)
    for page in (alice, bob):
        expect(page.locator("#chat-messages li.msg")).to_have_count(1)
        expect(page.locator("#chat-messages li.msg")).to_contain_text(f"alice: {text}")
        expect(page.locator("#chat-messages img, #chat-messages b")).to_have_count(0)
    expect(alice.locator("#chat-messages li.mine")).to_have_count(1)
    expect(bob.locator("#chat-messages li.mine")).to_have_count(0)

    bob.click("#chat-join")
    expect(bob.locator("#chat-state")).to_have_text(re.compile(r"^closed 1000\b"))
    expect(bob.locator("#chat-join")).to_have_text("Join")
    expect(alice.locator("#chat-members li")).to_have_text(["alice"])
    expect(alice.locator("#chat-messages .notice").last).to_contain_text("bob & co left")
    expect(alice.locator("#chat-state")).to_have_text("open")


def test_oversized_message_error(server: Server, new_page: Callable[[], Page]) -> None:
    """A 1001-character message gets the server's error shown; the chat stays open."""
    page = new_page()
    join(page, server.url, unique_room(), "carol")
    say(page, "x" * 1001)
    error = page.locator("#chat-messages li.error")
    expect(error).to_have_count(1)
    expect(error).to_have_text(re.compile(r"^error: .*(long|1000)"))
    page.fill("#chat-input", "still here")
    page.click("#chat-send")
    expect(page.locator("#chat-messages li.msg")).to_contain_text("carol: still here")
    expect(page.locator("#chat-messages li.msg")).to_have_count(1)
    expect(page.locator("#chat-state")).to_have_text("open")


def test_latency_shown(server: Server, new_page: Callable[[], Page]) -> None:
    """Right after joining, the page measures a ping round trip and shows it in ms."""
    page = new_page()
    join(page, server.url, unique_room(), "dave")
    expect(page.locator("#chat-latency")).to_have_text(LATENCY)


def test_empty_name_gets_a_guest_name(server: Server, new_page: Callable[[], Page]) -> None:
    """Joining without a name shows the server's guest-<n> as "you" in the member list."""
    page = new_page()
    page.goto(server.url + "/")
    page.fill("#chat-room", unique_room())
    page.click("#chat-join")
    expect(page.locator("#chat-members li.you")).to_have_text(re.compile(r"^guest-\d+$"))
    expect(page.locator("#chat-you")).to_contain_text("you are guest-")


def test_reconnects_after_drop_but_not_after_final_code(
    server: Server, new_page: Callable[[], Page]
) -> None:
    """A 1012 drop shows code and reason and reconnects; a 4001 close shows and stays closed."""
    page = new_page()
    routes: list[tuple[WebSocketRoute, WebSocketRoute]] = []  # (page side, server side)

    def through(ws: WebSocketRoute) -> None:
        routes.append((ws, ws.connect_to_server()))

    def drop(index: int, code: int, reason: str) -> None:
        """Close the page's socket with ``code``, and our connection to the server."""
        page_side, server_side = routes[index]
        page_side.close(code=code, reason=reason)
        server_side.close()

    page.route_web_socket(re.compile(r"/ws/chat\?"), through)
    join(page, server.url, unique_room(), "erin")
    assert len(routes) == 1

    drop(0, 1012, "service restart")
    notice = page.locator("#chat-messages .notice", has_text="disconnected")
    expect(notice).to_have_text([re.compile(r"disconnected: 1012 service restart; reconnecting")])
    expect(page.locator("#chat-state")).to_have_text("open")  # within the first backoff
    expect(page.locator("#chat-members li")).to_have_text(["erin"])
    expect(page.locator("#chat-latency")).to_have_text(LATENCY)
    assert len(routes) == 2
    say(page, "back")
    expect(page.locator("#chat-messages li.msg")).to_contain_text("erin: back")

    drop(1, 4001, "kicked")
    expect(page.locator("#chat-state")).to_have_text("closed 4001 kicked")
    expect(page.locator("#chat-join")).to_have_text("Join")
    expect(notice.last).to_have_text(re.compile(r"disconnected: 4001 kicked$"))
    expect(page.locator("#chat-input")).to_be_disabled()


def test_server_shutdown_shows_1001_and_retries(
    new_page: Callable[[], Page], tmp_path: Path
) -> None:
    """When the server stops, the page shows 1001 and its reason and starts reconnecting."""
    own = Server(tmp_path / "server.log")
    try:
        page = new_page()
        join(page, own.url, unique_room(), "frank")
        status = own.stop()
        assert status == 0, own.log()
        notice = page.locator("#chat-messages .notice", has_text="disconnected")
        expect(notice.first).to_have_text(re.compile(r"disconnected: 1001\b.*; reconnecting"))
        expect(page.locator("#chat-state")).to_contain_text("reconnecting in")
        expect(page.locator("#chat-join")).to_have_text("Leave")
        # The server stays down: each failed retry updates the one line of this outage.
        expect(notice).to_have_text([re.compile(r"; reconnecting \(attempt [2-9]\)…$")])
        expect(notice).to_have_count(1)
    finally:
        own.stop()


def test_chromium_negotiates_permessage_deflate_and_round_trips(
    server: Server, new_page: Callable[[], Page]
) -> None:
    """The browser's offer is accepted (the 101 names the extension); text and binary echo
    back unchanged through compression, small and large."""
    page = new_page()
    page.goto(server.url + "/")
    result = page.evaluate(
        """async (url) => {
            const ws = new WebSocket(url);
            ws.binaryType = "arraybuffer";
            await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
            const echo = (message) => new Promise((resolve) => {
                ws.onmessage = (event) => resolve(event.data);
                ws.send(message);
            });
            const text = "compress me ".repeat(2000);
            const bytes = new Uint8Array(50000).map((_, i) => i % 7);
            const textBack = await echo(text);
            const small = await echo("hi");
            const bytesBack = new Uint8Array(await echo(bytes));
            ws.close(1000);
            return {
                extensions: ws.extensions,
                text: textBack === text,
                small: small === "hi",
                bytes: bytesBack.length === bytes.length
                    && bytesBack.every((b, i) => b === bytes[i]),
            };
        }""",
        server.url.replace("http://", "ws://") + "/ws/echo",
    )
    assert result["extensions"].startswith("permessage-deflate")
    assert result == {**result, "text": True, "small": True, "bytes": True}


def test_first_view_has_a_favicon_placeholders_a_hint_and_puts_chat_first_on_a_phone(
    server: Server, new_page: Callable[[], Page]
) -> None:
    """No request 404s (the favicon included); a hint until Join; on a phone, chat on top."""
    page = new_page()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(server.url + "/")
    page.wait_for_load_state("networkidle")
    assert missing == []
    assert page.evaluate("document.querySelector('link[rel=icon]').href").startswith("data:")
    expect(page.locator("#chat-name")).to_have_attribute("placeholder", "optional")
    expect(page.locator("#chat-hint")).to_be_visible()
    chat = page.locator("#chat-panel").bounding_box()
    echo = page.locator("#echo-panel").bounding_box()
    assert chat is not None and echo is not None and chat["y"] < echo["y"]
    page.fill("#chat-room", unique_room())
    page.click("#chat-join")
    expect(page.locator("#chat-hint")).to_be_hidden()
    page.set_viewport_size({"width": 1280, "height": 800})
    wide_chat = page.locator("#chat-panel").bounding_box()
    wide_echo = page.locator("#echo-panel").bounding_box()
    assert wide_chat is not None and wide_echo is not None
    assert wide_echo["x"] < wide_chat["x"]  # side by side on a wide screen, echo first


def test_the_dashboard_plots_move_when_a_bench_runs(
    server: Server, new_page: Callable[[], Page], tmp_path: Path
) -> None:
    """/dashboard loads without 404s, goes live, and shows traffic while `wstrio bench` runs
    against the server; a screenshot of it under load is saved in the test's tmp dir."""
    page = new_page()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(server.url + "/dashboard")
    expect(page.locator("#dash-state")).to_have_text("live")
    expect(page.locator("#dash-points")).to_have_text(re.compile(r"^[2-9]$|^\d\d+$"))
    assert missing == []
    bench = subprocess.Popen(
        [sys.executable, "-m", "wstrio", "bench", f"ws://127.0.0.1:{server.port}/ws/echo",
         "--duration", "4", "--connections", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        busy = re.compile(r"^(\d{2,}(\.\d)?|[\d.]+ [kM]) / ")  # 10 messages a second, or more
        expect(page.locator("#dash-msgs")).to_have_text(busy, timeout=10_000)
        expect(page.locator("#dash-open")).not_to_have_text("1", timeout=10_000)
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    finally:
        bench.wait(timeout=30)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    drawn = page.evaluate(
        "() => { const c = document.getElementById('chart-msgs');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
    )
    assert drawn > 100  # the messages chart has lines on it


def test_away_and_back_shows_exactly_the_messages_sent_meanwhile(
    server: Server, new_page: Callable[[], Page]
) -> None:
    """A tab that leaves the page and comes back rejoins by itself, shows what it had, and
    gets exactly the messages sent while it was away (``?since=``), each once."""
    room = unique_room()
    alice, bob = new_page(), new_page()
    join(alice, server.url, room, "alice")
    join(bob, server.url, room, "bob")
    say(bob, "before")
    shown = alice.locator("#chat-messages li.msg")
    expect(shown).to_have_text([re.compile(r"bob: before$")])
    alice.goto("about:blank")  # away: the socket closes with the page
    expect(bob.locator("#chat-members li")).to_have_text(["bob"])
    say(bob, "while away 1")
    say(bob, "while away 2")
    expect(bob.locator("#chat-messages li.msg")).to_have_count(3)
    alice.goto(server.url + "/")  # back, in the same tab: its sessionStorage holds the rest
    expect(alice.locator("#chat-state")).to_have_text("open")
    expect(shown).to_have_text(
        [re.compile(r"bob: before$"), re.compile(r"bob: while away 1$"),
         re.compile(r"bob: while away 2$")]
    )  # fmt: skip
    notices = alice.locator("#chat-messages .notice")
    expect(notices.filter(has_text="2 messages sent while you were away")).to_have_count(1)
    say(bob, "live")
    expect(shown.last).to_have_text(re.compile(r"bob: live$"))
    expect(shown).to_have_count(4)


def test_the_page_survives_a_server_restart_without_losing_a_message(
    new_page: Callable[[], Page], tmp_path: Path
) -> None:
    """Servers sharing Redis: the page's server stops, a message is sent through another,
    the server comes back on its port, and the page, reconnecting by itself, shows it."""
    redis = RedisServer(tmp_path)
    redis.start()
    port = free_port()
    servers = [Server(tmp_path / "first.log", "--redis", redis.url, port=port)]
    try:
        servers.append(Server(tmp_path / "other.log", "--redis", redis.url))
        page, room = new_page(), unique_room()
        join(page, servers[0].url, room, "ivy")
        say(page, "hello")
        shown = page.locator("#chat-messages li.msg")
        expect(shown).to_have_text([re.compile(r"ivy: hello$")])
        assert servers[0].stop() == 0
        expect(page.locator("#chat-state")).to_contain_text("reconnecting")
        url = f"ws://127.0.0.1:{servers[1].port}/ws/chat?room={room}&name=jo"
        with websocket_connect(url, open_timeout=5) as ws:
            sent = json.dumps({"type": "message", "text": "while you were away"})
            ws.send(sent)
            while json.loads(ws.recv(timeout=5))["type"] != "message":
                pass  # until it came back through Redis: it is in the room's history
        servers.append(Server(tmp_path / "again.log", "--redis", redis.url, port=port))
        expect(shown).to_have_text(
            [re.compile(r"ivy: hello$"), re.compile(r"jo: while you were away$")],
            timeout=30_000,  # the page's backoff grew while the server was down
        )
        expect(page.locator("#chat-state")).to_have_text("open")
    finally:
        for server in servers:
            server.stop()
        redis.stop()
