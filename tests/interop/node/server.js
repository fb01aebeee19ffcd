// Node's `ws` as a server of wstrio's interop matrix: `node server.js` serves the peer routes
// (see tests/interop/interop_peers.py) on 127.0.0.1, prints {"port": N} and stops when its
// standard input closes. permessage-deflate is on (ws's server leaves it off by default);
// messages of up to 16 MiB are read; the subprotocol chat.v1 is spoken.
"use strict";

const { WebSocketServer } = require("ws");

const PING = "interop-ping";
const seen = new Map(); // id -> {code, reason}
const waiting = new Map(); // id -> [resolve]

function record(id, end) {
  seen.set(id, end);
  for (const resolve of waiting.get(id) || []) resolve(end);
  waiting.delete(id);
}

function observed(id) {
  if (seen.has(id)) return Promise.resolve(seen.get(id));
  return new Promise((resolve) => waiting.set(id, [...(waiting.get(id) || []), resolve]));
}

const routes = {
  "/echo": (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })),
  "/close": (ws, query) => ws.close(Number(query.get("code")), query.get("reason") || ""),
  "/observe": (ws, query) => {
    ws.on("close", (code, reason) => record(query.get("id"), { code, reason: reason.toString() }));
    ws.send("observing");
  },
  "/report": async (ws, query) => {
    ws.send(JSON.stringify(await observed(query.get("id"))));
    ws.close(1000, "");
  },
  "/ping": (ws) => {
    ws.on("pong", (data) => data.toString() === PING && ws.send("pong received"));
    ws.once("message", () => ws.ping(PING));
  },
  "/ping-at-once": (ws) => {
    ws.on("pong", (data) => data.toString() === PING && ws.send("pong received"));
    ws.ping(PING);
  },
  "/proto": (ws) => ws.send(ws.protocol),
};

const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: true,
  maxPayload: 16 << 20,
  handleProtocols: (protocols) => (protocols.has("chat.v1") ? "chat.v1" : false),
});
server.on("listening", () => console.log(JSON.stringify({ port: server.address().port })));
server.on("connection", (ws, request) => {
  const url = new URL(request.url, "ws://127.0.0.1");
  const route = routes[url.pathname];
  if (route) route(ws, url.searchParams);
  else ws.close(4404, `no route ${url.pathname}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
