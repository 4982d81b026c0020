// Live pages. The page names the topics it follows (main[data-live-topics]); each element with
// data-live-events ("*" for any event) is fetched again from the server when one of its events arrives,
// so every row is drawn by the same template as on first load, filters and all. The page holds no
// token: the WebSocket handshake carries the session cookie (HttpOnly: this script cannot read it).
"use strict";

(function () {
  const main = document.querySelector("main[data-live-topics]");
  const status = document.getElementById("live-status");
  if (!main || !status) return;
  const topics = main.dataset.liveTopics.split(" ").filter(Boolean);
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws";
  const RETRIES = 6;
  const SETTLE_MS = 150; // a burst of events costs one fetch
  const GAP_MS = 1000; // and a busy topic at most one a second
  let failures = 0;
  let lastId = null;
  let stale = new Set();
  let timer = null;
  let lastFetch = 0;
  let fetching = false; // one fetch at a time, so an older page never replaces a newer one

  function show(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function watching(eventName) {
    return Array.from(document.querySelectorAll("[data-live-events][id]")).filter(function (element) {
      const names = element.dataset.liveEvents.split(" ");
      return eventName === null || names.includes("*") || names.includes(eventName);
    });
  }

  function markStale(elements) {
    elements.forEach(function (element) { stale.add(element.id); });
    if (stale.size && timer === null && !fetching) {
      timer = setTimeout(refresh, Math.max(SETTLE_MS, lastFetch + GAP_MS - Date.now()));
    }
  }

  async function refresh() {
    timer = null;
    lastFetch = Date.now();
    fetching = true;
    const ids = stale;
    stale = new Set();
    try {
      await swapIn(ids);
    } catch (e) {
      ids.forEach(function (id) { stale.add(id); }); // tried again with the next event or reconnect
      return;
    } finally {
      fetching = false;
    }
    markStale([]); // events that came during the fetch
  }

  async function swapIn(ids) {
    const response = await fetch(location.href, { headers: { Accept: "text/html" }, redirect: "manual" });
    if (response.status !== 200) {
      show("closed", "session ended: reload the page");
      return;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    ids.forEach(function (id) {
      const now = document.getElementById(id);
      const then = fresh.getElementById(id);
      if (now && then) now.replaceWith(document.importNode(then, true));
    });
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
        if (failures > 0) markStale(watching(null)); // what changed while we were away
        failures = 0;
        show("live", "live");
      } else if (message.type === "event") {
        lastId = message.id;
        markStale(watching(message.event));
      } else if (message.type === "resync") {
        lastId = null;
        markStale(watching(null));
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
