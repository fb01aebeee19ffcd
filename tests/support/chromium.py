"""Debian's headless Chromium as the browser tests start it (Playwright never downloads one)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
#: Headless, and nothing reaches out of the machine.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
