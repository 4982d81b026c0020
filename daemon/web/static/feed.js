// The dashboard's live event feed. The page holds no token: the WebSocket handshake carries the
// session cookie (HttpOnly, so this script cannot read it either) and the gateway authenticates it.
"use strict";

(function () {
  const feed = document.getElementById("feed");
  const status = document.getElementById("feed-status");
  if (!feed || !status) return;
  const topics = (feed.dataset.topics || "me").split(" ").filter(Boolean);
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws";
  const MAX_ITEMS = 200;
  const RETRIES = 6;
  let failures = 0;
  let lastId = null;

  function show(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  // A line a person can read: what happened, and to what.
  function subject(message) {
    const data = message.data || {};
    return data.email || data.name || data.session_id || data.id || "";
  }

  function add(message) {
    const item = document.createElement("li");
    item.dataset.event = message.event;
    const at = document.createElement("time");
    at.dateTime = message.at;
    at.textContent = new Date(message.at).toLocaleTimeString();
    const name = document.createElement("span");
    name.className = "event";
    name.textContent = message.event;
    const what = document.createElement("span");
    what.textContent = subject(message) + "  (" + message.topic + ")";
    item.append(at, name, what);
    feed.prepend(item);
    while (feed.children.length > MAX_ITEMS) feed.lastElementChild.remove();
  }

  function connect() {
    const socket = new WebSocket(url);
    socket.addEventListener("open", function () {
      const subscribe = { type: "subscribe", topics: topics };
      if (lastId) subscribe.since = lastId; // after a reconnect, replay what was missed
      socket.send(JSON.stringify(subscribe));
    });
    socket.addEventListener("message", function (raw) {
      let message;
      try { message = JSON.parse(raw.data); } catch (e) { return; }
      if (message.type === "subscribed") {
        failures = 0;
        show("live", "live");
      } else if (message.type === "event") {
        lastId = message.id;
        add(message);
      } else if (message.type === "resync") {
        lastId = null;
      }
    });
    socket.addEventListener("close", function (event) {
      failures += 1;
      if (failures > RETRIES) {
        show("closed", event.code === 4401 ? "session ended: reload the page" : "disconnected: reload the page");
        return;
      }
      // An expired access token closes with 4401 too; reconnecting lets the server refresh it.
      show("connecting", "reconnecting…");
      setTimeout(connect, Math.min(30000, 500 * 2 ** failures));
    });
  }

  connect();
})();
