"""The echo server in library form: `python examples/echo.py [PORT]`, then
ws://127.0.0.1:7777/ws/echo. Ctrl-C or SIGTERM stops it gracefully (1001 to every session)."""

import logging
import sys

import wstrio


async def echo(session: wstrio.Session) -> None:
    async for message in session:  # ends quietly when the client closes normally
        await session.send(message)  # str stays text, bytes stay binary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = wstrio.Config(ping_interval=20, ping_timeout=20)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777
    wstrio.run({"/ws/echo": echo}, port=port, config=config)  # until Ctrl-C or SIGTERM
