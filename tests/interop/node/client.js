// Node's `ws` as a client of wstrio's interop matrix: `node client.js BASE PREFIX` runs the
// checks of checks.js against the server at BASE (ws://host:port) and prints one JSON object
// per check. Compression is ws's default offer; messages of up to 16 MiB are read.
"use strict";

const WebSocket = require("ws");
const { runChecks } = require("./checks.js");

const hooks = {
  create(url, protocols) {
    const ws = new WebSocket(url, protocols, { maxPayload: 16 << 20 });
    ws.on("upgrade", (response) => {
      ws.agreedExtensions = response.headers["sec-websocket-extensions"] || "";
    });
    return ws;
  },
  extensions: (ws) => ws.agreedExtensions,
  ping: (ws, data) =>
    new Promise((resolve) => {
      ws.once("pong", (pong) => resolve(pong.toString() === data));
      ws.ping(data);
    }),
};

const [base, prefix] = process.argv.slice(2);
runChecks(WebSocket, base, prefix, hooks).then((records) => {
  for (const record of records) console.log(JSON.stringify(record));
  process.exit(0);
});
