"""The echo server in library form: `python examples/echo.py`, then ws://127.0.0.1:7777/ws/echo."""

import trio

import wstrio


async def echo(session: wstrio.Session) -> None:
    async for message in session:  # ends quietly when the client closes normally
        await session.send(message)  # str stays text, bytes stay binary


if __name__ == "__main__":
    config = wstrio.Config(ping_interval=20, ping_timeout=20)
    trio.run(lambda: wstrio.serve({"/ws/echo": echo}, port=7777, config=config))
