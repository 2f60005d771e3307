// Callbell floor dashboard: the floor plan with every room's state, the open calls, who is
// where, the hub's open troubles (a silent device, a stuck button, the database…) and today's
// figures — live from the hub's SSE stream (live.js).
//
// At /floor the same page is the floor screen (kiosk): signed in once with a display token,
// read-only, the calls as big cards legible from 5 m (the oldest and the overdue biggest), and
// a sound for a new call and for a call that turns overdue.

import { API, Live, fmt, loadStore, reasonOf, syncList, verdict } from "/static/live.js";
import { api, mayAct, signedIn } from "/static/auth.js";
import { PATTERNS } from "/static/ringer.js";
import { describe, kindOf, sortedTroubles } from "/static/troubles.js";

const TICK_MS = 250;                 // timer refresh
const PX_PER_M = 20;                 // floor plan scale: SVG units per metre
const MARGIN_M = 3;                  // space around the outermost rooms, metres
const ROOM_M = 2.3;                  // a room's box on the plan: width, metres (demo rooms are 2.5 m apart)
const ROOM_H_M = 3.2;                // ...and height, metres: room for three lines of text
const AUTO_SPACING_M = 3;            // rooms without positions: laid out in rows, this far apart
const PERSON_R = 9;                  // an associate's dot, SVG units
const DEVICE_POLL_MS = 15_000;       // how often device health (version, queue) is read
const STATS_REFRESH_MS = 60_000;     // today's figures: at least this often, and after a call closes
const STATS_AFTER_CLOSE_MS = 1500;   // ...this long after it (the figures come from the database)
const NARROW_PX = 760;               // below this width the list view is the default
const SVG = "http://www.w3.org/2000/svg";
const KIOSK = location.pathname === "/floor";

const $ = (id) => document.getElementById(id);
let store = { standard_s: 90, rooms: [], associates: [], zones: [] };
let geometry = null;                 // {room: {id: [px, py]}, zone: {id: [px, py]}, ...}
const roomSpots = new Map();         // room id → its SVG group
let statsTimer = null;
let auth = { demo: true, who: null };  // who is signed in (auth.js); demo: nobody needs to be

const live = new Live({ banner: $("offline-banner"), onChange: changed, onCall: chime, onTrouble: chimeTrouble });

// -- the floor screen's sound -------------------------------------------------------------------
// A new call plays the phone's alert tones; a call turning overdue its urgent ones. Calls the
// screen finds when it starts are shown, not sounded.
const heard = new Map();   // call id → "open" | "overdue": what was sounded for it
let audio = null;
function chime(call, { replayed }) {
  if (!KIOSK) return;
  const was = heard.get(call.id);
  if (call.status !== "open" && call.status !== "acknowledged") {
    if (call.status !== "answered") heard.delete(call.id);
    return;
  }
  const quiet = replayed && live.generation <= 1;  // the screen just started
  if (!was) {
    heard.set(call.id, call.overdue ? "overdue" : "open");
    if (!quiet) sound(call.overdue ? PATTERNS.urgent : PATTERNS.alert);
  } else if (call.overdue && was !== "overdue") {
    heard.set(call.id, "overdue");
    if (!quiet) sound(PATTERNS.urgent);
  }
}

// A trouble the screen had not seen plays the urgent tones once (the phones of the people it
// alerts ring until they acknowledge it). Troubles open when the screen starts are shown only.
const troublesHeard = new Set();
function chimeTrouble(t) {
  if (!KIOSK || t.cleared_at || troublesHeard.has(t.id)) return;
  troublesHeard.add(t.id);
  if (live.generation >= 1) sound(PATTERNS.urgent);
}

function sound(pattern) {
  if (!audio) return;
  let t = audio.currentTime;
  for (const [hz, ms] of pattern.tones) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = hz;
    gain.gain.value = pattern.volume;
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + ms / 1000);
    t += (ms + pattern.gap_ms) / 1000;
  }
}

// Browsers start sound after a tap, unless the kiosk browser is started to allow it
// (docs/dashboard.md: --autoplay-policy=no-user-gesture-required).
function unlockSound() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume().then(renderSound, renderSound);
  } catch { audio = null; }
  renderSound();
}
function renderSound() {
  const running = Boolean(audio) && audio.state === "running";
  $("sound-on").hidden = !KIOSK || running;
  document.body.dataset.soundState = running ? "running" : "off";
}

const roomName = (id) => (store.rooms.find((r) => r.id === id) || {}).name || id;
const zoneName = (id) => (store.zones.find((z) => z.id === id) || {}).name || id;
function personName(id) {
  const a = store.associates.find((a) => a.id === id);
  return (a && a.name) || id;
}
function shortRoom(id) {
  const m = roomName(id).match(/(\S+)$/);
  return m ? m[1] : id;
}
function initials(name) {
  const parts = name.replace(/\(.*\)/, "").trim().split(/\s+/);
  return (parts[0][0] + (parts[1] ? parts[1][0] : "")).toUpperCase();
}
function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

// -- layout --------------------------------------------------------------------------------
function buildGeometry() {
  const rooms = {};
  const positioned = store.rooms.every((r) => r.x != null && r.y != null);
  if (positioned) {
    store.rooms.forEach((r) => { rooms[r.id] = [r.x, r.y]; });
  } else {  // no positions configured: each zone a row of rooms, zones side by side
    const zones = [...new Set(store.rooms.map((r) => r.zone || ""))];
    let x = 0;
    zones.forEach((z) => {
      store.rooms.filter((r) => (r.zone || "") === z).forEach((r) => { rooms[r.id] = [x, 0]; x += AUTO_SPACING_M; });
      x += AUTO_SPACING_M;
    });
  }
  const zones = {};
  for (const z of store.zones) {
    const mine = store.rooms.filter((r) => r.zone === z.id).map((r) => rooms[r.id]);
    if (positioned && z.x != null) zones[z.id] = [z.x, z.y];
    else if (mine.length) zones[z.id] = [mine.reduce((s, p) => s + p[0], 0) / mine.length,
                                         mine.reduce((s, p) => s + p[1], 0) / mine.length - (positioned ? 0 : 1.6)];
  }
  const waypoints = {};
  if (positioned) (store.waypoints || []).forEach((w) => { waypoints[w.id] = [w.x, w.y]; });
  const all = [...Object.values(rooms), ...Object.values(zones), ...Object.values(waypoints)];
  const x0 = Math.min(...all.map((p) => p[0])) - MARGIN_M, x1 = Math.max(...all.map((p) => p[0])) + MARGIN_M;
  const y0 = Math.min(...all.map((p) => p[1])) - MARGIN_M, y1 = Math.max(...all.map((p) => p[1])) + MARGIN_M;
  const px = ([x, y]) => [(x - x0) * PX_PER_M, (y1 - y) * PX_PER_M];
  const map = (o) => Object.fromEntries(Object.entries(o).map(([k, p]) => [k, px(p)]));
  return { room: map(rooms), zone: map(zones), waypoint: map(waypoints), px, positioned,
           width: (x1 - x0) * PX_PER_M, height: (y1 - y0) * PX_PER_M };
}

function drawPlan() {
  geometry = buildGeometry();
  const svg = $("plan");
  const g = geometry;
  svg.setAttribute("viewBox", `0 0 ${g.width.toFixed(0)} ${g.height.toFixed(0)}`);
  svg.replaceChildren();
  const defs = el("defs");
  const pattern = el("pattern", { id: "on-the-way", width: 8, height: 8, patternUnits: "userSpaceOnUse",
                                  patternTransform: "rotate(45)" });
  pattern.append(el("rect", { width: 8, height: 8, class: "stripe-bg" }), el("rect", { width: 3, height: 8, class: "stripe" }));
  defs.append(pattern);
  svg.append(defs, el("rect", { x: 0, y: 0, width: g.width, height: g.height, class: "plan-floor" }));
  const node = (id) => g.room[id] || g.waypoint[id];
  for (const w of store.walkways || []) {
    for (let i = 1; i < w.path.length; i++) {
      const a = node(w.path[i - 1]), b = node(w.path[i]);
      if (a && b) svg.append(el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "walkway" }));
    }
  }
  for (const [id, p] of Object.entries(g.zone)) {
    svg.append(el("text", { x: p[0], y: p[1] + 4, class: "zone-label", "text-anchor": "middle" }, zoneName(id)));
  }
  roomSpots.clear();
  const half = (ROOM_M * PX_PER_M) / 2, halfH = (ROOM_H_M * PX_PER_M) / 2;
  for (const r of store.rooms) {
    const [x, y] = g.room[r.id];
    const spot = el("g", { class: "room-spot", "data-room": r.id, "data-verdict": "idle", tabindex: 0 });
    spot.append(el("title"), el("rect", { x: x - half, y: y - halfH, width: 2 * half, height: 2 * halfH, rx: 4, class: "room-box" }),
      el("text", { x, y: y - halfH + 17, class: "room-num", "text-anchor": "middle" }, shortRoom(r.id)),
      el("text", { x, y: y + 6, class: "room-time", "text-anchor": "middle" }, ""),
      el("text", { x, y: y + halfH - 8, class: "room-who", "text-anchor": "middle" }, ""));
    svg.append(spot);
    roomSpots.set(r.id, spot);
  }
  svg.append(el("g", { id: "people-layer" }));
}

// -- rendering -----------------------------------------------------------------------------
function elapsedOf(c) {
  // The response clock stops when someone is at the room.
  const end = c.status === "answered" && c.response_s != null ? c.pressed_ts + c.response_s : live.now();
  return end - c.pressed_ts;
}

function callByRoom() {
  const out = new Map();
  for (const c of live.calls.values()) out.set(c.room, c);
  return out;
}

function paintRoom(spot, c) {
  const [time, who, title] = [spot.querySelector(".room-time"), spot.querySelector(".room-who"), spot.querySelector("title")];
  if (!c) {
    spot.dataset.verdict = "idle";
    spot.dataset.status = "idle";
    time.textContent = "free";
    who.textContent = "";
    title.textContent = `${roomName(spot.dataset.room)}: free`;
    return;
  }
  const elapsed = elapsedOf(c);
  const [cls, words] = verdict(elapsed, store.standard_s);
  const reason = reasonOf(c.reason);
  spot.dataset.verdict = c.status === "answered" ? "answered" : cls;
  spot.dataset.status = c.status;
  time.textContent = fmt(elapsed);
  let line = reason.icon + (c.reminders ? ` ×${c.reminders + 1}` : "");
  if (c.status === "acknowledged") line = `→ ${initials(personName(c.acknowledged_by))}`;
  if (c.status === "answered") line = `✓ ${c.answered_by ? initials(personName(c.answered_by)) : ""}`;
  who.textContent = line;
  let state = `waiting ${fmt(elapsed)}, ${words}`;
  if (c.status === "acknowledged") state = `${personName(c.acknowledged_by)} on the way, ${fmt(elapsed)}, ${words}`;
  if (c.status === "answered") state = `${personName(c.answered_by || "someone")} at the room`;
  title.textContent = `${roomName(c.room)}: ${reason.words} — ${state}`;
}

function personPoint(a) {
  const p = a.position;
  const g = geometry;
  if (!p) return a.home_zone ? g.zone[a.home_zone] : null;
  if (p.x != null && g.positioned) return g.px([p.x, p.y]);
  if (p.room && g.room[p.room]) return [g.room[p.room][0], g.room[p.room][1] + (ROOM_H_M * PX_PER_M) / 2 + PERSON_R + 2];
  if (p.zone && g.zone[p.zone]) return [g.zone[p.zone][0], g.zone[p.zone][1] + 22];
  return null;
}

const STATE_MARK = { available: "●", busy: "◐", break: "☕", off: "○", unreachable: "⚠" };

function drawPeople() {
  const layer = $("people-layer");
  if (!layer) return;
  const groups = new Map();
  for (const a of live.associates.values()) {
    if (a.state === "off") continue;
    const p = personPoint(a);
    if (!p) continue;
    const key = p.map((v) => Math.round(v)).join(",");
    if (!groups.has(key)) groups.set(key, { p, people: [] });
    groups.get(key).people.push(a);
  }
  const nodes = [];
  for (const { p, people } of groups.values()) {
    people.forEach((a, i) => {
      const dx = (i - (people.length - 1) / 2) * (2 * PERSON_R + 3);
      const g = el("g", { class: "person", "data-person": a.id, "data-state": a.state });
      g.append(el("title", {}, `${a.name}: ${a.state}`),
        el("circle", { cx: p[0] + dx, cy: p[1], r: PERSON_R }),
        el("text", { x: p[0] + dx, y: p[1] + 4, "text-anchor": "middle" }, initials(a.name)));
      nodes.push(g);
    });
  }
  layer.replaceChildren(...nodes);
}

function newCard(c) {
  const li = $("call-template").content.firstElementChild.cloneNode(true);
  li.querySelector(".actions").addEventListener("click", (e) => act(e, c.id));
  return li;
}

function renderCalls() {
  const list = $("calls");
  const sorted = [...live.calls.values()].sort((a, b) => a.pressed_ts - b.pressed_ts);
  syncList(list, sorted, newCard, fill);
  if (KIOSK) {  // the oldest call and every overdue one are the biggest
    for (const li of list.children) {
      const c = live.calls.get(li.dataset.id);
      li.dataset.size = c && (c.id === sorted[0].id || c.overdue) && c.status !== "answered" ? "large" : "normal";
    }
  }
  $("empty").hidden = sorted.length > 0;
  $("count-open").textContent = sorted.length;
}

function fill(li, c) {
  li.dataset.status = c.status;
  li.querySelector(".room").textContent = roomName(c.room);
  const reason = reasonOf(c.reason);
  li.querySelector(".reason-icon").textContent = reason.icon;
  const r = li.querySelector(".reason");
  r.textContent = reason.words;
  r.dataset.reason = c.reason;
  const urgency = li.querySelector(".urgency");
  urgency.hidden = !c.reminders;
  urgency.textContent = `pressed ${c.reminders + 1}×`;
  let who = "Waiting for someone";
  if (c.status === "acknowledged") who = `${personName(c.acknowledged_by)} is on the way`;
  if (c.status === "answered") who = `${personName(c.answered_by || "someone")} is at the room`;
  li.querySelector(".who").textContent = who;
  const asked = [...new Map(c.alerted.map((a) => [a.associate, a])).values()].map((a) => personName(a.associate));
  const declined = (c.declined || []).map(personName);
  li.querySelector(".asked").textContent = (asked.length ? `Asked: ${asked.join(", ")}` : "")
    + (declined.length ? ` · not me: ${declined.join(", ")}` : "");
  li.querySelector('[data-action="acknowledge"]').hidden = c.status !== "open";
  li.querySelector('[data-action="answer"]').hidden = c.status === "answered";
  tickCard(li, c);
}

function tickCard(li, c) {
  const elapsed = elapsedOf(c);
  const [cls, words] = verdict(elapsed, store.standard_s);
  li.querySelector(".timer").dataset.verdict = cls;
  li.dataset.verdict = cls;
  li.querySelector(".elapsed").textContent = fmt(elapsed);
  li.querySelector(".verdict").textContent = words;
}

function renderRooms() {
  const byRoom = callByRoom();
  for (const [room, spot] of roomSpots) paintRoom(spot, byRoom.get(room));
}

function renderPeople() {
  const order = { unreachable: 0, available: 1, busy: 2, break: 3, off: 4 };
  const people = [...live.associates.values()].sort((a, b) => order[a.state] - order[b.state] || a.name.localeCompare(b.name));
  $("people").replaceChildren(...people.map((a) => {
    const li = document.createElement("li");
    li.dataset.person = a.id;
    li.dataset.state = a.state;
    const p = a.position || {};
    const where = p.room ? roomName(p.room) : p.zone ? zoneName(p.zone) : a.home_zone ? zoneName(a.home_zone) : "";
    const call = a.call && live.calls.get(a.call);
    const doing = call ? ` — ${call.status === "answered" ? "at" : "on the way to"} ${roomName(call.room)}` : "";
    const same = call && p.room === call.room;  // "at Fitting room 8 · Fitting room 8" says it twice
    // Unreachable: on the floor by their word, but their phone page fell silent (docs/dashboard.md).
    const state = a.state === "unreachable" ? "phone unreachable" : a.state + (a.reachable === false ? ", phone unreachable" : "");
    li.textContent = `${STATE_MARK[a.state] || ""} ${a.name}: ${state}${doing}${where && !same && a.state !== "off" ? ` · ${where}` : ""}`;
    return li;
  }));
  drawPeople();
}

// The devices, each flagged by the hub's open troubles about it (a silent device, one that never
// connected, a stuck button on it): the hub decides what is a fault, not this page's clock.
function renderDevices() {
  const faults = new Map();  // device id → its open troubles
  for (const t of live.troubles.values()) {
    if (t.device) faults.set(t.device, [...(faults.get(t.device) || []), t]);
  }
  // A retired device (POST /api/v1/devices/{id}/retire) is no longer expected: not listed.
  const listed = [...live.devices.values()].filter((d) => d.status !== "retired").map((d) => d.id);
  const ids = [...new Set([...listed, ...faults.keys()])].sort();
  $("devices").replaceChildren(...ids.map((id) => {
    const d = live.devices.get(id) || { id, status: "never" };
    const troubles = faults.get(id) || [];
    const li = document.createElement("li");
    li.dataset.device = id;
    li.dataset.status = d.status || "unknown";
    li.dataset.trouble = troubles.length ? "yes" : "no";
    const h = d.health || {};
    const extra = [h.version && `v${h.version}`, h.outbox ? `${h.outbox} queued` : null].filter(Boolean).join(", ");
    // "never": configured in [[devices]] but never heard of since the hub started.
    const status = d.status === "online" ? `online${extra ? ` (${extra})` : ""}`
      : d.status === "never" ? "NEVER CONNECTED" : (d.status || "unknown").toUpperCase();
    // The kinds of trouble, but not "never connected" twice.
    const kinds = troubles.filter((t) => !(t.kind === "device_never_connected" && d.status === "never"))
      .map((t) => kindOf(t.kind).words);
    const mark = troubles.length ? "⚠" : d.status === "online" ? "●" : "○";
    li.textContent = `${mark} ${id}: ${status}${kinds.length ? ` — ${kinds.join(", ")}` : ""}`;
    return li;
  }));
}

// The open troubles, oldest first, above everything: what is wrong, where, since when, who was
// told and whether they acknowledged. Gone when the hub clears them.
function newTrouble() {
  return $("trouble-template").content.firstElementChild.cloneNode(true);
}

function fillTrouble(li, t) {
  const d = describe(t, { now: live.now(), person: personName, room: roomName, timeZone: store.timezone });
  li.dataset.kind = t.kind;
  li.dataset.acknowledged = t.acknowledged_by ? "yes" : "no";
  li.querySelector(".trouble-icon").textContent = d.icon;
  li.querySelector(".trouble-title").textContent = d.title;
  li.querySelector(".trouble-where").textContent = [d.device, d.rooms].filter(Boolean).join(" · ");
  li.querySelector(".trouble-text").textContent = d.text;
  li.querySelector(".trouble-since").textContent = d.since;
  li.querySelector(".trouble-alerted").textContent = d.alerted;
  li.querySelector(".trouble-state").textContent = d.state;
}

function renderTroubles() {
  const items = sortedTroubles(live.troubles);
  syncList($("trouble-list"), items, newTrouble, fillTrouble);
  $("troubles").hidden = items.length === 0;
  $("troubles-title").textContent = items.length > 1 ? `⚠ ${items.length} troubles` : "⚠ Trouble";
}

function renderRecent() {
  const items = [...live.recent.values()].map((r) => r.call).sort((a, b) => b.pressed_ts - a.pressed_ts);
  $("recent").replaceChildren(...items.map((c) => {
    const li = document.createElement("li");
    li.dataset.id = c.id;
    const how = c.response_s != null ? `, answered in ${fmt(c.response_s)}` : "";
    li.textContent = `${roomName(c.room)} — ${c.status}${how}`;
    return li;
  }));
}

function changed(what) {
  if (what === "call" || what === "connected") {
    renderCalls();
    renderRooms();
    renderRecent();
  }
  if (what === "call" || what === "associate" || what === "connected") renderPeople();
  if (what === "trouble" || what === "connected") renderTroubles();
  if (what === "device" || what === "trouble" || what === "connected") renderDevices();
  if (what === "call" && live.recent.size) scheduleStats(STATS_AFTER_CLOSE_MS);
}

function tick() {
  for (const li of $("calls").children) {
    const c = live.calls.get(li.dataset.id);
    if (c) tickCard(li, c);
  }
  renderRooms();
  for (const li of $("trouble-list").children) {
    const t = live.troubles.get(li.dataset.id);
    if (t) li.querySelector(".trouble-since").textContent = describe(t, { now: live.now(), timeZone: store.timezone }).since;
  }
  if (live.expireRecent()) renderRecent();
}

// -- today's figures -----------------------------------------------------------------------
function todayInStore() {
  // en-CA formats as YYYY-MM-DD; a date alone means midnight in the store's zone to the API.
  return new Intl.DateTimeFormat("en-CA", { timeZone: store.timezone || "UTC" }).format(new Date());
}

function scheduleStats(ms) {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(loadStats, ms);
}

async function loadStats() {
  scheduleStats(STATS_REFRESH_MS);
  try {
    const r = await api(`${API}/stats?from=${todayInStore()}`);
    if (!r.ok) return;
    const t = (await r.json()).total || {};
    const secs = (v) => (v == null ? "–" : `${Math.round(v)} s`);
    $("fig-calls").textContent = t.calls ?? "–";
    $("fig-median").textContent = secs(t.response_median_s);
    $("fig-p90").textContent = secs(t.response_p90_s);
    const share = t.within_standard_share;
    const target = store.target_share;
    $("fig-share").textContent = share == null ? "–" : `${Math.round(share * 100)} %`;
    $("fig-share").dataset.verdict = share == null ? "" : share >= target ? "ok" : "late";
    $("fig-note").textContent = share == null ? "" :
      `${share >= target ? "✓ meets" : "✗ below"} the target of ${Math.round(target * 100)} % within ${store.standard_s} s`;
  } catch { /* offline: the banner says so; the next refresh tries again */ }
}

// -- acting --------------------------------------------------------------------------------
async function act(event, id) {
  const button = event.target.closest("button");
  if (!button) return;
  const li = button.closest("li");
  const error = li.querySelector(".error");
  error.hidden = true;
  button.disabled = true;
  try {
    const r = await api(`${API}/calls/${id}/${button.dataset.action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ associate: $("me").value, source: "dashboard" }),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    live.apply(body);
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function setView(view) {
  document.body.dataset.view = view;
  for (const b of document.querySelectorAll(".view-switch button")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
}

function setup() {
  if (KIOSK) {
    document.body.dataset.kiosk = "yes";
    document.title = `${store.name} — floor screen`;
    $("side").prepend($("floor"));  // the plan beside the calls, which get the room
    $("sound-on").addEventListener("click", unlockSound);
    document.addEventListener("pointerdown", unlockSound);
    unlockSound();
  }
  $("store-name").textContent = store.name;
  $("standard").textContent = store.standard_s;
  $("demo-banner").hidden = !store.demo;
  const me = $("me");
  const saved = localStorage.getItem("callbell.me");
  me.replaceChildren(...store.associates.map((a) => new Option(a.name, a.id, false, a.id === saved)));
  me.addEventListener("change", () => localStorage.setItem("callbell.me", me.value));
  if (auth.who && !mayAct(auth.who.role, "manager")) {
    me.value = auth.who.associate;   // an associate acts only as themselves (the hub checks it too)
    me.disabled = true;
  }
  // Today's figures are statistics: for managers (an associate's session would get a 403).
  $("manager").hidden = !readsStats();
  const view = KIOSK ? "plan" : localStorage.getItem("callbell.view") || (window.innerWidth < NARROW_PX ? "list" : "plan");
  setView(view);
  document.querySelector(".view-switch").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    localStorage.setItem("callbell.view", b.dataset.view);
    setView(b.dataset.view);
  });
  drawPlan();
}

const readsStats = () => !KIOSK && (auth.demo || mayAct(auth.who.role, "manager"));

auth = await signedIn({ title: "Floor", want: KIOSK ? "display" : "associate", display: KIOSK });
store = await loadStore();
setup();
live.connect();
setInterval(tick, TICK_MS);
setInterval(() => live.refreshDevices(), DEVICE_POLL_MS);
live.refreshDevices();
if (readsStats()) loadStats();
