"""A price ticker: `python examples/ticker.py`, then ws://127.0.0.1:7777/ws/ticker?symbols=ACME,TYRELL.

One task moves the prices several times a second and broadcasts each update to
the room of its symbol; each subscriber joins the rooms it asked for. Only the
latest price matters, so a subscriber that falls behind loses its oldest
queued updates ("drop_oldest") instead of holding anyone up.
"""

import json
import logging
import random
import sys

import trio

import wstrio

SYMBOLS = ("ACME", "GLOBEX", "INITECH", "TYRELL")


class Ticker:
    def __init__(self, hub: wstrio.Hub, *, interval: float = 0.2, seed: int | None = None) -> None:
        self.hub = hub
        self.interval = interval
        self.random = random.Random(seed)
        self.prices = {symbol: 100.0 for symbol in SYMBOLS}
        self.serial = 0

    def tick(self) -> None:
        """Move every price a little and broadcast it to its room (never waits)."""
        self.serial += 1
        for symbol, price in self.prices.items():
            price = round(max(0.01, price * (1 + self.random.gauss(0, 0.002))), 2)
            self.prices[symbol] = price
            update = {"symbol": symbol, "price": price, "serial": self.serial}
            self.hub.room(symbol).broadcast(json.dumps(update))

    async def publish(self) -> None:
        while True:
            await trio.sleep(self.interval)
            self.tick()

    async def subscribe(self, session: wstrio.Session) -> None:
        wanted = session.query.get("symbols", ",".join(SYMBOLS)).split(",")
        unknown = sorted(set(wanted) - set(SYMBOLS))
        if unknown:
            raise wstrio.CloseConnection(1008, f"unknown symbols: {', '.join(unknown)}"[:120])
        for symbol in wanted:
            self.hub.room(symbol).join(session)
        async for _ in session:  # subscribers only listen; this waits for the close
            pass


async def main(port: int = 7777) -> None:
    ticker = Ticker(wstrio.Hub(policy="drop_oldest"))
    config = wstrio.Config(outbox_size=16)
    routes = {"/ws/ticker": ticker.subscribe}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker.publish)
        print(f"subscribe at ws://127.0.0.1:{port}/ws/ticker?symbols=ACME,TYRELL")
        # until Ctrl-C or SIGTERM, then every session gets 1001 and this returns
        await wstrio.serve_until_signalled(routes, port=port, config=config)
        nursery.cancel_scope.cancel()  # the server has stopped: so does the publisher


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 7777)
