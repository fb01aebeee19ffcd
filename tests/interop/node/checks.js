// The checks of wstrio's interop matrix (tests/interop) for a JavaScript WebSocket: the
// browser's own (Chromium loads this file into a page) or the `ws` package's (client.js).
// `runChecks(WebSocketClass, base, prefix, hooks)` resolves to one record per check, the same
// records as tests/interop/interop_peers.py's `run_checks` writes. Hooks, all optional:
// `create(url, protocols)` makes the socket, `extensions(ws)` reads the agreed
// Sec-WebSocket-Extensions (default: `ws.extensions`), `ping(ws, data)` pings and resolves to
// whether the pong carried `data` (without it the check records that the API cannot ping).
"use strict";

const SIZES = [0, 125, 126, 65536, 1 << 20, 16 << 20];
const CLOSES = [[1000, ""], [1001, "going away"], [4000, "bye ✓"]];
const PING = "interop-ping";
const OFFER = ["x.unknown", "chat.v1"];
const STEP_MS = 30000;
const AT_ONCE_MS = 5000; // for the pong of a ping sent right after the 101

// Text of exactly `size` UTF-8 bytes ("é✓ab" is 7), or bytes counting 0..250 over and over.
function payload(kind, size) {
  if (kind === "text") {
    return "é✓ab".repeat(Math.floor(size / 7)) + "x".repeat(size % 7);
  }
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes;
}

function verdict(sent, got) {
  const sentText = typeof sent === "string";
  const gotText = typeof got === "string";
  if (sentText && !gotText) return "binary instead of text";
  if (!sentText && gotText) return "text instead of binary";
  if (sentText) {
    return got === sent ? "ok" : `different content (${new TextEncoder().encode(got).length} bytes)`;
  }
  const back = new Uint8Array(got);
  let same = back.length === sent.length;
  for (let i = 0; same && i < back.length; i++) same = back[i] === sent[i];
  return same ? "ok" : `different content (${back.length} bytes)`;
}

// A socket with an inbox: `next()` resolves to {data} or, once the connection ended, {close}.
function open(WS, url, protocols, hooks) {
  const ws = hooks.create ? hooks.create(url, protocols) : new WS(url, protocols);
  ws.binaryType = "arraybuffer";
  const inbox = [];
  const waiting = [];
  let ended = null;
  const push = (item) => (waiting.length ? waiting.shift()(item) : inbox.push(item));
  ws.addEventListener("message", (event) => push({ data: event.data }));
  ws.addEventListener("close", (event) => {
    ended = { close: { code: event.code, reason: event.reason } };
    while (waiting.length) waiting.shift()(ended);
  });
  const conn = {
    ws,
    next() {
      if (inbox.length) return Promise.resolve(inbox.shift());
      if (ended) return Promise.resolve(ended);
      return new Promise((resolve) => waiting.push(resolve));
    },
    async recv() {
      const item = await conn.next();
      if (item.close) throw new Error(`closed with ${item.close.code} ${item.close.reason}`);
      return item.data;
    },
    async untilClosed() {
      for (;;) {
        const item = await conn.next();
        if (item.close) return item.close;
      }
    },
    async close(code, reason) {
      ws.close(code, reason);
      return conn.untilClosed();
    },
  };
  return new Promise((resolve, reject) => {
    ws.addEventListener("open", () => resolve(conn));
    ws.addEventListener("close", (event) => reject(new Error(`no connection: ${event.code}`)));
  });
}

async function runChecks(WS, base, prefix, hooks = {}) {
  const connect = (path, protocols = []) => open(WS, base + path, protocols, hooks);
  const extensionsOf = hooks.extensions || ((ws) => ws.extensions);
  const query = (params) => new URLSearchParams(params).toString();

  const steps = {
    async echo() {
      const conn = await connect("/echo");
      const out = { extensions: extensionsOf(conn.ws) };
      for (const kind of ["text", "binary"]) {
        out[kind] = [];
        for (const size of SIZES) {
          const message = payload(kind, size);
          conn.ws.send(message);
          out[kind].push(verdict(message, await conn.recv()));
        }
      }
      await conn.close(1000, "");
      return out;
    },
    async ping_from_client() {
      if (!hooks.ping) return { unsupported: "api" };
      const conn = await connect("/echo");
      const answered = await hooks.ping(conn.ws, PING);
      await conn.close(1000, "");
      return { answered };
    },
    async close_from_server() {
      const seen = [];
      for (const [code, reason] of CLOSES) {
        const conn = await connect(`/close?${query({ code, reason })}`);
        seen.push(await conn.untilClosed());
      }
      return { seen };
    },
    async close_from_client() {
      const seen = [];
      for (const [code, reason] of CLOSES) {
        const id = query({ id: `${prefix}-${code}` });
        const conn = await connect(`/observe?${id}`);
        await conn.recv(); // "observing": the route runs
        try {
          await conn.close(code, reason);
        } catch (error) {
          seen.push({ refused: error.name }); // the API would not send this code
          await conn.close(1000, "");
          continue;
        }
        const report = await connect(`/report?${id}`);
        seen.push(JSON.parse(await report.recv()));
        await report.untilClosed();
      }
      return { seen };
    },
    async ping_from_server() {
      const conn = await connect("/ping");
      conn.ws.send("ping me");
      const text = await conn.recv();
      await conn.close(1000, "");
      return { text };
    },
    async ping_at_once() {
      const conn = await connect("/ping-at-once");
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no pong after ${AT_ONCE_MS} ms`)), AT_ONCE_MS);
      });
      try {
        const text = await Promise.race([conn.recv(), late]);
        await conn.close(1000, "");
        return { text };
      } finally {
        clearTimeout(timer);
      }
    },
    async subprotocol() {
      const conn = await connect("/proto", OFFER);
      const server = await conn.recv();
      const client = conn.ws.protocol;
      await conn.close(1000, "");
      return { client, server };
    },
  };

  const records = [];
  for (const [name, step] of Object.entries(steps)) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms`)), STEP_MS);
    });
    try {
      records.push({ check: name, ...(await Promise.race([step(), timeout])) });
    } catch (error) {
      records.push({ check: name, error: `${error.name}: ${error.message}` });
    } finally {
      clearTimeout(timer);
    }
  }
  return records;
}

if (typeof module !== "undefined") module.exports = { runChecks };
