// Callbell associate phone page: sign in, my alerts first, then every open call; one tap to
// act; break, shift and zone. A new alert for me sounds, vibrates and shows a system
// notification (where permitted); the screen is kept awake while on shift.
//
// Troubles (faults of the system itself: a silent device, a stuck button, the database) that
// the hub alerted me for ring the same way, at the very top, until I tap "Acknowledge" or the
// fault clears; every other open trouble is listed below the calls for everyone.
//
// Sign-in goes through POST /api/v1/session with the associate's PIN: the hub sets a session
// cookie (HttpOnly) and answers with the CSRF token every action sends (auth.js). In demo mode
// (authentication off) there is no session: the page only remembers who you said you are, in
// this browser, and the banner says it is not secure.

import { API, Live, fmt, loadStore, reasonOf, syncList, verdict } from "/static/live.js";
import { PATTERNS, Ringer } from "/static/ringer.js";
import { describe, sortedTroubles } from "/static/troubles.js";
import { disablePush, enablePush } from "/static/push.js";
import { api, csrfToken, sessionOptions, setCsrf, showDemoBanner, signOut as endSession } from "/static/auth.js";

const TICK_MS = 500;                   // timer refresh
// How often the ringer looks at my alerts, ms: repeats are [alerts] ring_repeat_s apart, and
// an alert that rings anew (a reminder, overdue) rings within this of the change at worst.
const RING_TICK_MS = 1000;
// Longest wait for the hub to answer a receipt or a ping, ms. On a Wi-Fi that swallows packets a
// request would otherwise hang for minutes, holding one of the browser's six connections to the
// hub: a few of those and the stream itself cannot reconnect.
const QUICK_REQUEST_MS = 4000;
// A tap that gets no answer from the hub (offline) is tried again every ACTION_RETRY_MS for
// ACTION_RETRY_FOR_MS: long enough for a Wi-Fi roam or a hub restart, short enough that the
// person is not left thinking the tap took.
const ACTION_RETRY_MS = 2000;
const ACTION_RETRY_FOR_MS = 30_000;
const ME_KEY = "callbell.phone.me";
// After signing in, wait at most this long for the live state before choosing "available".
const FIRST_SNAPSHOT_WAIT_MS = 3000;

const $ = (id) => document.getElementById(id);
let store = { standard_s: 90, rooms: [], associates: [], zones: [] };
let me = null;                         // {id, name, ...} once signed in
let audio = null;                      // AudioContext, created on a tap (browsers require one)
let wakeLock = null;
let options = { demo: true };          // GET /api/v1/session: demo mode, who may sign in, who I am
let started = false;                   // store loaded and the live stream connected
let ringer = new Ringer();             // which of my alerts and troubles ring, and when again (ringer.js)

const live = new Live({ banner: $("offline-banner"), onChange: render, onCall: onCallMessage, onHeard: pingHub,
                        onTrouble: () => ringNow() });

const roomName = (id) => (store.rooms.find((r) => r.id === id) || {}).name || id;
const personName = (id) => (store.associates.find((a) => a.id === id) || {}).name || id;

// -- sign-in -------------------------------------------------------------------------------
async function showSignIn() {
  $("app").hidden = true;
  $("sign-in").hidden = false;
  options = await sessionOptions();
  $("pin-row").hidden = !options.pin_required;
  $("sign-in-hint").textContent = options.pin_required ? "Who are you? Then your PIN." : "Who are you?";
  const box = $("people");
  const people = options.demo ? options.associates : options.associates.filter((a) => a.pin);
  box.replaceChildren(...people.map((a) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "person big";
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", "false");
    b.dataset.id = a.id;
    b.textContent = a.name;
    return b;
  }));
  box.onclick = (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    for (const x of box.children) x.setAttribute("aria-checked", String(x === b));
    $("sign-in-button").disabled = false;
    if (!$("pin-row").hidden) $("pin").focus();
  };
}

async function signIn(event) {
  event.preventDefault();
  const chosen = $("people").querySelector('[aria-checked="true"]');
  if (!chosen) return;
  unlockAudio();
  askNotifications();  // must run inside the tap
  const error = $("sign-in-error");
  error.hidden = true;
  try {
    const r = await fetch(`${API}/session`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ associate: chosen.dataset.id, pin: $("pin").value || null }),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    setCsrf(body.csrf);
    me = body.associate;
    localStorage.setItem(ME_KEY, JSON.stringify(me));
    $("pin").value = "";
    await begin();
    await firstSnapshot();
    const current = live.associates.get(me.id);
    if (!current || current.declared === "off") await setState("available");
    showApp();
  } catch (e) {
    $("pin").value = "";  // a wrong PIN is typed again from the start
    error.textContent = e instanceof TypeError ? "No connection to the hub: check the Wi-Fi and try again." : e.message;
    error.hidden = false;
  }
}

async function signOut() {
  // Signing out ends the shift: nobody should be alerted on a phone that left the floor.
  await disablePush(me.id);  // this phone is no longer hers
  try { await setState("off"); } catch { /* offline: the hub finds the phone silent (presence_s) */ }
  for (const id of ringer.state.keys()) closeNotification(id);
  ringer = new Ringer({ repeatS: ringer.repeatS });
  localStorage.removeItem(ME_KEY);
  me = null;
  releaseWake();
  if (!options.demo) {
    await endSession();
    location.reload();  // nothing of the session stays on the page (the stream, the store)
    return;
  }
  showSignIn();
}

// Wait (a little) for the stream's first snapshot, so my recorded state is known.
async function firstSnapshot() {
  const until = Date.now() + FIRST_SNAPSHOT_WAIT_MS;
  while (live.generation === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

function showApp() {
  $("sign-in").hidden = true;
  $("app").hidden = false;
  window.scrollTo(0, 0);  // the sign-in form may have been scrolled (large text): start at the top
  $("my-name").textContent = me.name;
  const zone = $("zone");
  zone.replaceChildren(...store.zones.map((z) => new Option(z.name || z.id, z.id)));
  render();
  pingHub();
  ringNow();  // an alert already waiting for me rings now (it is the call's state that counts)
  setUpPush();
}

// Web Push, once notifications are allowed: alerts reach this phone locked or with the page closed.
let pushTried = null;
async function setUpPush() {
  if (!me || (store.alerts && store.alerts.web_push === false)) return;
  if (pushTried === me.id && $("push-status").dataset.on === "yes") return;
  pushTried = me.id;
  const { on, words } = await enablePush(me.id);
  $("push-status").textContent = words;
  $("push-status").dataset.on = on ? "yes" : "no";
  $("push-status").hidden = false;
}

// -- alerts: ringing until I act, receipts, pings -----------------------------------------------
function myAlerts(call) {
  return call.alerted.filter((a) => me && a.associate === me.id);
}

// My alerts in the call's current round (since the press, or since it was re-opened).
function myRoundAlerts(call) {
  const start = (call.reopened_at ? Date.parse(call.reopened_at) : call.pressed_ts * 1000) - 1;
  return myAlerts(call).filter((a) => Date.parse(a.at) >= start);
}

function onFloor() {
  const a = me && live.associates.get(me.id);
  return !a || a.declared === "available";
}

// Whether `call` rings for me: decided by its state now, however old the alert is.
function ringsForMe(call) {
  return Boolean(me) && onFloor() && call.status === "open" && myRoundAlerts(call).length > 0
    && !(call.declined || []).includes(me.id);
}

const roundKey = (call) => myRoundAlerts(call).map((a) => a.at).join(",");

function isMine(c) {
  if (!me) return false;
  if (c.acknowledged_by === me.id || (c.status === "answered" && c.answered_by === me.id)) return true;
  return c.status === "open" && myAlerts(c).length > 0 && !(c.declined || []).includes(me.id);
}

// Every call message: confirm to the hub that the alert reached this phone, then ring.
function onCallMessage(call) {
  if (!me) return;
  for (const a of myRoundAlerts(call)) if (!a.delivered_at && call.status === "open") sendReceipt(call, a, "delivered", "page");
  ringNow();
}

// A trouble rings for me while it is open, the hub alerted me for it and nobody acknowledged it.
function troubleRingsForMe(t) {
  return Boolean(me) && !t.cleared_at && !t.acknowledged_by && (t.alerted || []).some((a) => a.associate === me.id);
}

const troubleRound = (t) => (t.alerted || []).filter((a) => a.associate === me.id).map((a) => a.at).join(",");

function ringNow() {
  if (!me) return;
  // Calls and troubles ring through the one ringer (their ids differ: "c-…", "t-…").
  const troubles = new Set(live.troubles.keys());
  const rings = (x) => (troubles.has(x.id) ? troubleRingsForMe(x) : ringsForMe(x));
  const round = (x) => (troubles.has(x.id) ? troubleRound(x) : roundKey(x));
  const due = ringer.due([...live.calls.values(), ...live.troubles.values()], rings, round, Date.now());
  for (const id of ringer.stopped) closeNotification(id);
  if (due.length) {
    // One sound for the lot (the most urgent), before the page is drawn again: a ring does not
    // wait for rendering, and it comes ring_repeat_s after the last one, not that plus a render.
    const loudest = due.find((d) => d.urgent) || due[0];
    sound(loudest.urgent ? PATTERNS.urgent : PATTERNS.alert);
    document.body.classList.add("flash");
    setTimeout(() => document.body.classList.remove("flash"), 1500);
  }
  if (ringer.stopped.length || due.length) render();
  // A notification for each call and trouble.
  for (const d of due) {
    if (troubles.has(d.call.id)) announceTrouble(d.call, d.why);
    else announce(d);
  }
}

// A system notification for a trouble, with "Acknowledge" (sw.js posts it).
function announceTrouble(t, why) {
  const d = describe(t, { now: live.now(), person: personName, room: roomName, timeZone: store.timezone });
  const body = `${d.text} — ${d.since}.${why === "repeat" ? " Still not acknowledged." : ""}`;
  notify(`⚠ Trouble — ${d.title}`, body, t.id, { trouble: t.id }, [{ action: "acknowledge", title: "Acknowledge" }], false);
}

async function announce({ call, why, urgent }) {
  const reason = reasonOf(call.reason);
  const title = `${urgent ? "⚠ " : ""}${roomName(call.room)} — ${reason.words}`;
  const waited = fmt(live.now() - call.pressed_ts);
  const lines = [call.overdue ? `Over the standard: waiting ${waited}.` : `A shopper is waiting (${waited}).`];
  if (call.reminders) lines.push(`Pressed ${call.reminders + 1} times.`);
  lines.push(why === "new" || why === "again" ? "Tap to open." : "Still nobody on the way.");
  const shown = await notify(title, lines.join(" "), call.id, { call: call.id },
                             [{ action: "acknowledge", title: "On my way" }, { action: "decline", title: "Not me" }], urgent);
  const [alert] = myRoundAlerts(call).slice(-1);
  const visible = document.visibilityState === "visible";
  if (alert && (visible || shown)) sendReceipt(call, alert, "shown", visible ? "page" : "notification");
}

// Receipts: each (alert, stage) once per page; one that could not be sent is tried again at
// the next ring tick. A 409 (the call closed, or the alert is not this one) ends it too.
const receipts = new Map();  // "call|at|stage" → "sending" | "sent"

async function sendReceipt(call, alert, stage, via) {
  if (alert[`${stage}_at`]) return;
  const key = `${call.id}|${alert.at}|${stage}`;
  if (receipts.has(key)) return;
  receipts.set(key, "sending");
  try {
    const r = await api(`${API}/calls/${encodeURIComponent(call.id)}/receipt`, {
      method: "POST", headers: { "Content-Type": "application/json" }, signal: AbortSignal.timeout(QUICK_REQUEST_MS),
      body: JSON.stringify({ associate: me.id, alerted_at: alert.at, stage, via }),
    });
    if (r.ok || r.status === 409 || r.status === 404) receipts.set(key, "sent");
    else receipts.delete(key);
  } catch {
    receipts.delete(key);  // offline: the next tick tries again
  }
}

function ringTick() {
  if (!me) return;
  for (const c of live.calls.values()) {
    if (!ringsForMe(c)) continue;
    for (const a of myRoundAlerts(c)) if (!a.delivered_at) sendReceipt(c, a, "delivered", "page");
  }
  ringNow();
  pingHub();
}

// "My phone is here": every ping_every_s while on the floor, so the hub can tell a phone that
// went quiet (docs/dashboard.md). Driven by the stream's messages as well as a timer, because
// browsers slow timers down in a background tab but still deliver its network events.
let lastPing = 0;
let pingedGeneration = 0;  // the stream's snapshot count at the last ping: a restarted hub has forgotten us
let pinging = false;
async function pingHub() {
  if (!me || pinging || !onFloor() || $("app").hidden) return;
  const every = (store.alerts && store.alerts.ping_every_s) || 30;
  if (Date.now() - lastPing < every * 1000 && live.generation === pingedGeneration) return;
  const generation = live.generation;
  pinging = true;
  try {
    const r = await api(`${API}/associates/${encodeURIComponent(me.id)}/heard`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ source: "phone" }),
      signal: AbortSignal.timeout(QUICK_REQUEST_MS),
    });
    if (r.ok) { lastPing = Date.now(); pingedGeneration = generation; }
  } catch { /* offline: the banner says so */ } finally {
    pinging = false;
  }
}

function unlockAudio() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
  } catch { audio = null; }
  renderSound();
}

function sound(pattern) {
  if (navigator.vibrate) navigator.vibrate(pattern.vibrate);
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

function askNotifications() {
  if (!("Notification" in window)) return;
  if (Notification.permission === "default") Notification.requestPermission().then(() => { renderNotice(); setUpPush(); });
}

// A system notification for a call or a trouble (one per `tag`, its id: shown again on a
// repeat), with `actions` that sw.js carries out from `data` ({call} or {trouble}).
// Resolves true once it was shown, false when it could not be.
async function notify(title, body, tag, data, actions, urgent) {
  if (!("Notification" in window) || Notification.permission !== "granted") return false;
  const options = {
    body, tag, renotify: true, requireInteraction: true, icon: "/static/icon-192.png",
    badge: "/static/icon-192.png", vibrate: (urgent ? PATTERNS.urgent : PATTERNS.alert).vibrate,
    // sw.js acts from the notification: with a session it needs the CSRF token too.
    data: { ...data, associate: me.id, ...(csrfToken() ? { csrf: csrfToken() } : {}) },
    actions,
  };
  try {
    const reg = await registration();
    if (reg) {
      await reg.showNotification(title, options);
    } else {
      delete options.actions;  // only a service worker's notifications can have buttons
      new Notification(title, options);
    }
    return true;
  } catch {
    return false;
  }
}

async function closeNotification(tag) {
  const reg = await registration();
  if (!reg) return;
  for (const n of await reg.getNotifications({ tag })) n.close();
}

// The service worker's registration once it is active (its notifications can carry buttons
// and outlive the page), or null: no worker, or not active within SW_WAIT_MS.
const SW_WAIT_MS = 3000;
async function registration() {
  if (!("serviceWorker" in navigator)) return null;
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), SW_WAIT_MS));
  try {
    return await Promise.race([navigator.serviceWorker.ready, timeout]);
  } catch { return null; }
}

// -- keeping the screen awake while on shift -------------------------------------------------
async function keepAwake(onShift) {
  const wake = $("wake");
  if (!onShift) { releaseWake(); wake.hidden = true; return; }
  wake.hidden = false;
  if (!("wakeLock" in navigator)) { wake.textContent = "Keep this page open: this browser may let the screen sleep."; return; }
  if (wakeLock || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
    wake.textContent = "Screen stays on while you are on shift.";
  } catch (e) {
    // Refused (not visible yet, battery saver...): the next tap on the page tries again.
    wake.textContent = "The screen may sleep: tap the page to keep it on.";
    document.addEventListener("pointerdown", () => render(), { once: true });
  }
}

function releaseWake() {
  if (wakeLock) wakeLock.release();
  wakeLock = null;
}

// -- acting --------------------------------------------------------------------------------
async function post(path, body) {
  const r = await api(`${API}${path}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error ? data.error.message : r.statusText);
  return data;
}

async function act(event, id) {
  const button = event.target.closest("button");
  if (!button || !me) return;
  unlockAudio();
  const li = button.closest("li");
  const error = li.querySelector(".error");
  error.hidden = true;
  button.disabled = true;
  const action = button.dataset.action;
  const until = Date.now() + ACTION_RETRY_FOR_MS;
  try {
    for (;;) {
      try {
        live.apply(await post(`/calls/${id}/${action}`, { associate: me.id, source: "phone" }));
        error.hidden = true;
        if (action !== "decline") closeNotification(id);
        return;
      } catch (e) {
        if (!(e instanceof TypeError)) throw e;  // the hub answered no: say why
        // No answer at all (Wi-Fi gone, hub restarting): say so, and try again for a while.
        if (Date.now() > until || !live.calls.has(id)) {
          throw new Error("Could not reach the hub. Tap again once the red banner is gone.");
        }
        error.textContent = "No connection to the hub — trying again…";
        error.hidden = false;
        await new Promise((r) => setTimeout(r, ACTION_RETRY_MS));
      }
    }
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// "Acknowledge" on a trouble of mine: the hub records who took it, and it stops ringing for all.
async function acknowledgeTrouble(event, id) {
  const button = event.target.closest("button");
  if (!button || !me) return;
  unlockAudio();
  const error = button.closest("li").querySelector(".error");
  error.hidden = true;
  button.disabled = true;
  try {
    live.applyTrouble(await post(`/troubles/${encodeURIComponent(id)}/acknowledge`, { associate: me.id, source: "phone" }));
    closeNotification(id);
    ringNow();
  } catch (e) {
    error.textContent = e instanceof TypeError ? "Could not reach the hub. Tap again once the red banner is gone." : e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function setState(state) {
  const a = await post(`/associates/${me.id}/state`, { state, source: "phone" });
  live.associates.set(a.id, a);
  render();
}

// -- rendering -----------------------------------------------------------------------------
function render() {
  if (!me || $("app").hidden) return;
  const calls = [...live.calls.values()].sort((a, b) => a.pressed_ts - b.pressed_ts);
  const mine = calls.filter(isMine);
  const others = calls.filter((c) => !isMine(c));
  fillList($("mine"), mine);
  fillList($("all"), others);
  $("mine-empty").hidden = mine.length > 0;
  $("all-empty").hidden = others.length > 0;
  const troubles = sortedTroubles(live.troubles);
  const mineT = troubles.filter(troubleRingsForMe);
  const othersT = troubles.filter((t) => !troubleRingsForMe(t));
  syncList($("my-troubles"), mineT, newTroubleCard, fillTrouble);
  syncList($("other-troubles"), othersT, newTroubleCard, fillTrouble);
  $("my-troubles-section").hidden = mineT.length === 0;
  $("other-troubles-section").hidden = othersT.length === 0;
  const a = live.associates.get(me.id);
  if (a) {
    const words = { available: "● free", busy: "◐ busy", break: "☕ on break", off: "○ off shift" };
    $("my-state").textContent = words[a.state] || a.state;
    $("my-state").dataset.state = a.state;
    $("break").textContent = a.declared === "break" ? "End break" : "Start break";
    $("break").disabled = a.declared === "off";
    $("shift").textContent = a.declared === "off" ? "Start shift" : "End shift";
    const zone = (a.position && a.position.source === "zone" && a.position.zone) || a.home_zone;
    if (zone && document.activeElement !== $("zone")) $("zone").value = zone;
    keepAwake(a.declared !== "off");
  }
  renderNotice();
}

function renderNotice() {
  const can = "Notification" in window;
  $("enable-alerts").hidden = !can || Notification.permission !== "default";
  renderSound();
}

// Browsers start sound only after a tap on the page: say so until there has been one.
function renderSound() {
  if (!me || $("app").hidden) return;
  $("sound-off").hidden = Boolean(audio) && audio.state === "running";
}

function newCard(c) {
  const li = $("call-template").content.firstElementChild.cloneNode(true);
  li.querySelector(".actions").addEventListener("click", (e) => act(e, c.id));
  return li;
}

function newTroubleCard(t) {
  const li = $("trouble-template").content.firstElementChild.cloneNode(true);
  li.querySelector(".actions").addEventListener("click", (e) => acknowledgeTrouble(e, t.id));
  return li;
}

function fillTrouble(li, t) {
  const person = (id) => (me && id === me.id ? "you" : personName(id));
  const d = describe(t, { now: live.now(), person, room: roomName, timeZone: store.timezone });
  li.dataset.kind = t.kind;
  li.querySelector(".trouble-icon").textContent = d.icon;
  li.querySelector(".trouble-title").textContent = d.title;
  li.querySelector(".trouble-where").textContent = [d.device, d.rooms].filter(Boolean).join(" · ");
  li.querySelector(".trouble-text").textContent = d.text;
  li.querySelector(".trouble-since").textContent = d.since;
  li.querySelector(".trouble-state").textContent = d.state;
  const ringing = ringer.isRinging(t.id);
  li.dataset.ringing = ringing ? "yes" : "no";
  const ring = li.querySelector(".ring");
  ring.hidden = !ringing;
  ring.textContent = `🔔 Rings every ${ringer.repeatS} s until you tap Acknowledge`;
  li.querySelector('[data-action="acknowledge"]').hidden = !troubleRingsForMe(t);
}

function fillList(list, calls) {
  syncList(list, calls, newCard, fill);
}

function fill(li, c) {
  li.dataset.status = c.status;
  const reason = reasonOf(c.reason);
  li.querySelector(".reason-icon").textContent = reason.icon;
  li.querySelector(".room").textContent = roomName(c.room);
  li.querySelector(".reason").textContent = reason.words + (c.reminders ? ` · pressed ${c.reminders + 1}×` : "");
  let who = "Waiting for someone";
  if (c.status === "acknowledged") who = c.acknowledged_by === me.id ? "You are on the way" : `${personName(c.acknowledged_by)} is on the way`;
  if (c.status === "answered") who = c.answered_by === me.id ? "You are at the room" : `${personName(c.answered_by || "someone")} is at the room`;
  if (c.status === "open" && myAlerts(c).length) who = "You were asked";
  if (c.status === "open" && (c.declined || []).includes(me.id)) who = "You said not me";
  li.querySelector(".who").textContent = who;
  const ringing = ringer.isRinging(c.id);
  li.dataset.ringing = ringing ? "yes" : "no";
  const ring = li.querySelector(".ring");
  ring.hidden = !ringing;
  ring.textContent = `🔔 Rings every ${ringer.repeatS} s until you tap On my way or Not me`;
  const show = (action, on) => { li.querySelector(`[data-action="${action}"]`).hidden = !on; };
  const askedMe = myAlerts(c).length > 0 && !(c.declined || []).includes(me.id);
  show("acknowledge", c.status === "open");
  show("decline", c.status === "open" && askedMe);
  show("answer", c.status === "open" || c.status === "acknowledged");
  show("done", c.status === "answered");  // after Arrived (or presence): "Done" alone records no arrival
  tickCard(li, c);
}

function tickCard(li, c) {
  const end = c.status === "answered" && c.response_s != null ? c.pressed_ts + c.response_s : live.now();
  const elapsed = end - c.pressed_ts;
  const [cls, words] = verdict(elapsed, store.standard_s);
  li.dataset.verdict = cls;
  li.querySelector(".timer").dataset.verdict = cls;
  li.querySelector(".elapsed").textContent = fmt(elapsed);
  li.querySelector(".verdict").textContent = words;
}

function tick() {
  for (const list of [$("mine"), $("all")]) {
    for (const li of list.children) {
      const c = live.calls.get(li.dataset.id);
      if (c) tickCard(li, c);
    }
  }
  for (const list of [$("my-troubles"), $("other-troubles")]) {
    for (const li of list.children) {
      const t = live.troubles.get(li.dataset.id);
      if (t) li.querySelector(".trouble-since").textContent = describe(t, { now: live.now(), timeZone: store.timezone }).since;
    }
  }
}

// -- start ---------------------------------------------------------------------------------
function wire() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("allow-notifications").addEventListener("click", askNotifications);
  $("break").addEventListener("click", () => {
    const a = live.associates.get(me.id);
    setState(a && a.declared === "break" ? "available" : "break");
  });
  $("shift").addEventListener("click", () => {
    const a = live.associates.get(me.id);
    setState(a && a.declared === "off" ? "available" : "off");
  });
  $("zone").addEventListener("change", () => post(`/associates/${me.id}/zone`, { zone: $("zone").value, source: "phone" }));
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") render(); });
  document.addEventListener("pointerdown", unlockAudio);
  $("sound-on").addEventListener("click", unlockAudio);
}

// The store and the live stream: at once in demo mode or with a session, else after sign-in
// (without one the hub answers neither).
async function begin() {
  if (started) return;
  started = true;
  store = await loadStore();
  $("store-name").textContent = store.name;
  document.title = `${store.name} — my calls`;
  ringer = new Ringer({ repeatS: (store.alerts && store.alerts.ring_repeat_s) || 15 });
  live.connect();
  setInterval(tick, TICK_MS);
  setInterval(ringTick, RING_TICK_MS);
}

options = await sessionOptions();
if (options.demo) showDemoBanner("Demo mode: no sign-in — not secure: anyone on this network can act as anyone.");
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js", { scope: "/phone" }).catch(() => {});
wire();
if (options.demo) {
  await begin();
  try { me = JSON.parse(localStorage.getItem(ME_KEY)); } catch { me = null; }
} else if (options.signed_in) {
  await begin();
  me = store.associates.find((a) => a.id === options.signed_in.associate) || null;
}
if (me && store.associates.some((a) => a.id === me.id)) showApp();
else { me = null; await showSignIn(); }
