// Browsers cannot set headers on a WebSocket handshake: the token goes in the query string
// (or in a cookie the page's origin set). A 401 before the upgrade shows as a failed connection.
const params = new URLSearchParams(location.search);
const room = params.get("room") || "lobby";
document.getElementById("room").textContent = room;
const url = new URL(`/c/${encodeURIComponent(room)}`, location.href);
url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
url.searchParams.set("token", params.get("token") || "");
const ws = new WebSocket(url);
const log = (text) => {
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById("log").append(item);
};
ws.onmessage = (event) => {
  const data = JSON.parse(event.data);
  log(data.joined ? `${data.joined} joined` : `${data.from}: ${data.text}`);
};
ws.onclose = (event) => log(`closed ${event.code} (a bad token never opens)`);
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
