"""The chat server in library form: `python examples/chat.py`, then open http://127.0.0.1:7777/.

The page at `/` has an echo panel and a chat panel; open it in two tabs to chat.
Rooms live in a Hub; a member whose outbox fills up (it stopped reading) is
closed with 1008 "slow consumer" so it can never stall the room.
"""

import functools
import logging
import sys

import trio

import wstrio


def routes(hub: wstrio.Hub) -> wstrio.Routes:
    chat = wstrio.Chat(hub, max_text=500)  # room from ?room=, name from ?name=
    return {
        "/": wstrio.page(),
        "/ws/echo": wstrio.echo,
        "/ws/chat": wstrio.Route(chat, accepts="text"),  # binary frames get 1003
    }


async def main(port: int = 7777) -> None:
    hub = wstrio.Hub(policy="close")
    config = wstrio.Config(outbox_size=32, ping_interval=20, ping_timeout=10)
    serve = functools.partial(wstrio.serve_until_signalled, routes(hub), port=port, config=config)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve)  # serves until Ctrl-C or SIGTERM: every session gets 1001
        print(f"open http://127.0.0.1:{port}/ in two browser tabs")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 7777)
