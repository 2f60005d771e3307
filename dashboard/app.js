// Callbell floor dashboard: open calls live from the hub's SSE stream.
// State lives in `calls` (id → call object); the stream's `snapshot` replaces it, `call`
// messages update it. EventSource reconnects by itself and sends Last-Event-ID, so the hub
// replays what changed meanwhile: no reload, no duplicate rows.

const API = "/api/v1";
const RECENT_KEEP_MS = 60_000;   // how long a finished call stays under "Just finished"
const TICK_MS = 250;             // timer refresh
const ACTIVE = new Set(["open", "acknowledged", "answered"]);

const calls = new Map();         // active calls
const recent = new Map();        // closed calls, id → {call, until}
const devices = new Map();
let store = { standard_s: 90, rooms: [], associates: [] };
let clockOffset = 0;             // server seconds − browser seconds

const $ = (id) => document.getElementById(id);
const nowS = () => Date.now() / 1000 + clockOffset;

function roomName(id) {
  const r = store.rooms.find((r) => r.id === id);
  return (r && r.name) || id;
}
function personName(id) {
  const a = store.associates.find((a) => a.id === id);
  return (a && a.name) || id;
}
function fmt(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// Green well inside the standard, amber in its last third, red past it. Text says the same.
function verdict(elapsed) {
  const std = store.standard_s;
  if (elapsed >= std) return ["late", "over standard"];
  if (elapsed >= (2 * std) / 3) return ["near", "nearing standard"];
  return ["ok", "within standard"];
}

async function loadStore() {
  const r = await fetch(`${API}/store`);
  store = await r.json();
  $("store-name").textContent = store.name;
  $("standard").textContent = store.standard_s;
  $("demo-banner").hidden = !store.demo;
  const me = $("me");
  const saved = localStorage.getItem("callbell.me");
  me.replaceChildren(...store.associates.map((a) => new Option(a.name, a.id, false, a.id === saved)));
  me.addEventListener("change", () => localStorage.setItem("callbell.me", me.value));
}

function upsert(call) {
  if (ACTIVE.has(call.status)) {
    calls.set(call.id, call);
    recent.delete(call.id);
  } else {
    calls.delete(call.id);
    recent.set(call.id, { call, until: Date.now() + RECENT_KEEP_MS });
  }
}

function render() {
  const list = $("calls");
  const sorted = [...calls.values()].sort((a, b) => a.pressed_ts - b.pressed_ts);
  const keep = new Set(sorted.map((c) => c.id));
  for (const li of [...list.children]) if (!keep.has(li.dataset.id)) li.remove();
  sorted.forEach((c, i) => {
    let li = list.querySelector(`[data-id="${c.id}"]`);
    if (!li) {
      li = $("call-template").content.firstElementChild.cloneNode(true);
      li.dataset.id = c.id;
      li.querySelector(".actions").addEventListener("click", (e) => act(e, c.id));
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    fill(li, c);
  });
  $("empty").hidden = sorted.length > 0;
  $("count-open").textContent = sorted.length;
  renderRecent();
  renderDevices();
}

function fill(li, c) {
  li.dataset.status = c.status;
  li.querySelector(".room").textContent = roomName(c.room);
  const reason = li.querySelector(".reason");
  reason.textContent = c.reason === "size" ? "Size" : c.reason === "help" ? "Help" : c.reason;
  reason.dataset.reason = c.reason;
  const urgency = li.querySelector(".urgency");
  urgency.hidden = !c.reminders;
  urgency.textContent = `pressed ${c.reminders + 1}×`;
  let who = "Waiting for someone";
  if (c.status === "acknowledged") who = `${personName(c.acknowledged_by)} is on the way`;
  if (c.status === "answered") who = `${personName(c.answered_by || "someone")} is at the room`;
  li.querySelector(".who").textContent = who;
  li.querySelector('[data-action="acknowledge"]').hidden = c.status !== "open";
  li.querySelector('[data-action="answer"]').hidden = c.status === "answered";
  tickOne(li, c);
}

function tickOne(li, c) {
  // The response clock stops when someone is at the room.
  const end = c.status === "answered" && c.response_s != null ? c.pressed_ts + c.response_s : nowS();
  const elapsed = end - c.pressed_ts;
  const [cls, words] = verdict(elapsed);
  const timer = li.querySelector(".timer");
  timer.dataset.verdict = cls;
  li.querySelector(".elapsed").textContent = fmt(elapsed);
  li.querySelector(".verdict").textContent = words;
}

function tick() {
  for (const li of $("calls").children) {
    const c = calls.get(li.dataset.id);
    if (c) tickOne(li, c);
  }
  const before = recent.size;
  for (const [id, r] of recent) if (r.until < Date.now()) recent.delete(id);
  if (recent.size !== before) renderRecent();
}

function renderRecent() {
  const items = [...recent.values()].map((r) => r.call).sort((a, b) => b.pressed_ts - a.pressed_ts);
  $("recent").replaceChildren(...items.map((c) => {
    const li = document.createElement("li");
    li.dataset.id = c.id;
    const how = c.response_s != null ? `answered in ${fmt(c.response_s)}` : c.status;
    li.textContent = `${roomName(c.room)} — ${c.status}${c.response_s != null ? `, ${how}` : ""}`;
    return li;
  }));
}

function renderDevices() {
  const items = [...devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("devices").replaceChildren(...items.map((d) => {
    const li = document.createElement("li");
    li.dataset.status = d.status || "unknown";
    li.textContent = `${d.id}: ${d.status === "online" ? "● online" : "○ OFFLINE"}`;
    return li;
  }));
}

async function act(event, id) {
  const button = event.target.closest("button");
  if (!button) return;
  const li = button.closest("li");
  const error = li.querySelector(".error");
  error.hidden = true;
  const associate = $("me").value;
  button.disabled = true;
  try {
    const r = await fetch(`${API}/calls/${id}/${button.dataset.action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ associate, source: "dashboard" }),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    upsert(body);
    render();
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function connect() {
  const source = new EventSource(`${API}/stream`);
  source.addEventListener("open", () => { $("offline-banner").hidden = true; });
  source.addEventListener("error", () => { $("offline-banner").hidden = false; });
  source.addEventListener("snapshot", (e) => {
    const data = JSON.parse(e.data);
    clockOffset = data.now - Date.now() / 1000;
    calls.clear();
    data.calls.forEach(upsert);
    devices.clear();
    data.devices.forEach((d) => devices.set(d.id, d));
    $("offline-banner").hidden = true;
    render();
  });
  source.addEventListener("call", (e) => { upsert(JSON.parse(e.data)); render(); });
  source.addEventListener("device", (e) => {
    const d = JSON.parse(e.data);
    devices.set(d.id, { ...devices.get(d.id), ...d });
    renderDevices();
  });
  source.addEventListener("resumed", () => { $("offline-banner").hidden = true; });
}

await loadStore();
connect();
setInterval(tick, TICK_MS);
