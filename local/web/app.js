// calsync's reference client (issue 15, docs/adr/0024-reference-web-page.md): a person's meetings,
// a room panel and colleagues' presence, from the public HTTP API only, kept current by the live
// channel (AWS AppSync Events' WebSocket protocol, docs/adr/0015). No dependency, no build step.
//
// A live event is {"type": "meetings"|"room"|"presence", "id", "version", ...}. A presence event
// usually carries the answer itself ("presence", the JSON GET /v1/users/{id}/presence returns at that
// version, and "etag", its ETag: docs/adr/0018): the view shows it and reads nothing (what the cost
// model counts, docs/adr/0026). Otherwise the view refetches with If-None-Match (304 when it is
// current). Versions only grow, so one conditional refetch covers any gap; after every
// (re)subscription the view refetches once, which is what makes a reconnect lose nothing.
// Which meetings and in which order is the API's business (rules U*, R*): the page shows what it gets.
"use strict";

const settings = new URLSearchParams(window.location.hash.slice(1));
const token = settings.get("token") || "";
const claims = decodeClaims(token);
const me = claims.sub || "";
const locationId = settings.get("location") || (Array.isArray(claims.locations) ? claims.locations[0] : "");
const liveUrl = settings.get("live") || "";
const roomId = settings.get("room") || "";
const people = (settings.get("people") || "").split(",").map((p) => p.trim()).filter(Boolean);

// answered: reads whose answer is shown; applied: events whose own answer is shown (no read)
const counters = { fetches: 0, answered: 0, notModified: 0, events: 0, applied: 0, connects: 0 };
const views = new Map(); // "<type>:<id>" (the live event's type and id) -> view

function decodeClaims(jwt) {
  try {
    return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function showProblem(text) {
  const box = document.getElementById("problem");
  box.hidden = !text;
  box.textContent = text || "";
}

function showCounters() {
  const text = `— ${counters.fetches} reads (${counters.notModified} answered 304), ${counters.events} live events, ${counters.connects} connections`;
  const node = document.getElementById("counters");
  node.textContent = text;
  for (const [name, value] of Object.entries(counters)) node.dataset[name] = String(value);
}

// ---- views: one per answer of the API, each with its ETag --------------------------------------
function addView(type, id, path, channel, render) {
  views.set(`${type}:${id}`, { path, channel, render, etag: null, version: null, busy: false, again: false });
}

async function refresh(view) {
  if (view.busy) {
    view.again = true; // one more read once this one is done: it may have started before the change
    return;
  }
  view.busy = true;
  try {
    do {
      view.again = false;
      const headers = { Authorization: `Bearer ${token}` };
      if (view.etag) headers["If-None-Match"] = view.etag;
      counters.fetches += 1;
      const answer = await fetch(view.path, { headers, cache: "no-store" });
      if (answer.status === 304) {
        counters.notModified += 1;
      } else if (answer.ok) {
        view.etag = answer.headers.get("ETag");
        view.render(await answer.json());
      } else {
        const problem = await answer.json().catch(() => ({}));
        showProblem(`${view.path}: ${answer.status} ${problem.detail || problem.title || problem.message || ""}`);
      }
      counters.answered += 1;
    } while (view.again);
  } catch (error) {
    showProblem(`${view.path}: ${error}`);
  } finally {
    view.busy = false;
    showCounters();
  }
}

function when(meeting, timeZone) {
  // in the owner's time zone (the person's, the room's), as the answer gives it
  if (meeting.allDay) return `${meeting.startDate} (all day)`;
  const start = new Date(meeting.start);
  const end = new Date(meeting.end);
  const day = start.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short", timeZone });
  const time = { hour: "2-digit", minute: "2-digit", timeZone };
  return `${day} ${start.toLocaleTimeString([], time)}–${end.toLocaleTimeString([], time)}`;
}

function renderMeetings(listId) {
  return (answer) => {
    const items = (answer.meetings || []).map((m) =>
      el(
        "li",
        { "data-id": m.id },
        el("span", { class: "when" }, when(m, answer.timeZone || undefined)),
        el("span", { class: "title" }, m.title === null ? "(private)" : m.title),
        ...(m.meetingLink ? [" ", el("a", { href: m.meetingLink, target: "_blank", rel: "noopener" }, "join")] : []),
      ),
    );
    document.getElementById(listId).replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "nothing coming up")]));
  };
}

function renderPresence(answer) {
  const item = document.querySelector(`#presence li[data-user="${CSS.escape(answer.userId)}"]`);
  const parts = [];
  if (!answer.acceptsCalls && answer.status !== "offline") parts.push("no calls");
  if (answer.inMeetingUntil) parts.push(`in a meeting until ${new Date(answer.inMeetingUntil).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
  if (answer.message) parts.push(`“${answer.message}”`);
  item.dataset.status = answer.status;
  item.replaceChildren(
    el("span", { class: "when" }, answer.userId),
    el("span", { class: `status status-${answer.status}` }, answer.status),
    parts.length ? ` — ${parts.join(", ")}` : "",
  );
}

// ---- the live channel ---------------------------------------------------------------------------
function base64url(text) {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function showLive(state, text) {
  const node = document.getElementById("live");
  node.dataset.state = state;
  node.textContent = `live channel: ${text}`;
}

let retryMs = 1000;

function connect() {
  // AppSync Events: the authorization travels in a "header-" subprotocol; "host" is the API's HTTP
  // host in AWS (#liveHost=), the socket's own host locally
  const host = settings.get("liveHost") || new URL(liveUrl).host;
  const authorization = { host, Authorization: token };
  const socket = new WebSocket(liveUrl, ["aws-appsync-event-ws", `header-${base64url(JSON.stringify(authorization))}`]);
  const subscriptions = new Map(); // subscription id -> view
  let silence = null;
  let timeoutMs = 300000;

  function expectKeepAlive() {
    clearTimeout(silence);
    silence = setTimeout(() => socket.close(), timeoutMs); // no "ka" in time: the connection is gone
  }

  socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init" }));
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "connection_ack") {
      retryMs = 1000;
      counters.connects += 1;
      timeoutMs = frame.connectionTimeoutMs || timeoutMs;
      expectKeepAlive();
      showLive("open", "connected");
      for (const view of views.values()) {
        const id = crypto.randomUUID();
        subscriptions.set(id, view);
        socket.send(JSON.stringify({ type: "subscribe", id, channel: view.channel, authorization }));
      }
    } else if (frame.type === "ka") {
      expectKeepAlive();
    } else if (frame.type === "subscribe_success") {
      const view = subscriptions.get(frame.id);
      if (view) refresh(view); // subscribed: whatever changed while it was not is read once now
    } else if (frame.type === "subscribe_error") {
      showProblem(`cannot subscribe to ${subscriptions.get(frame.id)?.channel}: ${JSON.stringify(frame.errors)}`);
    } else if (frame.type === "data") {
      counters.events += 1;
      onEvent(typeof frame.event === "string" ? JSON.parse(frame.event) : frame.event);
    } else if (frame.type === "connection_error" || frame.type === "error") {
      showProblem(`live channel: ${JSON.stringify(frame.errors)}`);
    }
  };
  socket.onclose = () => {
    clearTimeout(silence);
    const wait = retryMs / 2 + Math.random() * (retryMs / 2); // jittered exponential backoff (AWS's advice)
    showLive("closed", `reconnecting in ${(wait / 1000).toFixed(1)} s`);
    setTimeout(connect, wait);
    retryMs = Math.min(retryMs * 2, 30000);
  };
}

function onEvent(event) {
  const view = views.get(`${event.type}:${event.id}`);
  if (!view || typeof event.version !== "number") return;
  if (view.version !== null && event.version <= view.version) return; // seen already
  view.version = event.version;
  const carried = event.type === "presence" && event.presence && typeof event.etag === "string";
  if (carried && !view.busy) {
    // the answer at this version: nothing to read (a read in flight may be older: then read again)
    view.etag = event.etag;
    view.render(event.presence);
    counters.applied += 1;
    showCounters();
    return;
  }
  refresh(view); // one conditional read, whether versions were skipped or not
}

// ---- start --------------------------------------------------------------------------------------
function start() {
  if (!token) {
    showProblem("No token: open the link the banner of `make run` prints, or add #token=<JWT> (calsync-local token --user alice --location hq).");
    return;
  }
  document.getElementById("who").textContent = `— ${me} (${locationId})`;
  addView("meetings", me, "/v1/me/meetings", `/calsync/users/${me}`, renderMeetings("meetings"));
  if (roomId) {
    document.getElementById("room-name").textContent = roomId;
    addView("room", roomId, `/v1/rooms/${encodeURIComponent(roomId)}/meetings`, `/calsync/locations/${locationId}/rooms/${roomId}`, renderMeetings("room"));
  }
  if (people.length) {
    document.getElementById("presence").replaceChildren(...people.map((p) => el("li", { "data-user": p }, p)));
  }
  for (const person of people) {
    addView("presence", person, `/v1/users/${encodeURIComponent(person)}/presence`, `/calsync/locations/${locationId}/presence/${person}`, renderPresence);
  }
  for (const view of views.values()) refresh(view);
  if (liveUrl) connect();
  else showLive("closed", "not configured (#live=wss://…/event/realtime): the page shows what it read at load");
}

start();
