// The live state of the store, shared by the floor dashboard and the phone page.
//
//   const store = await loadStore();
//   const live = new Live({ banner: document.getElementById("offline-banner"), onChange: render });
//   live.connect();
//
// `live.calls` (active calls), `live.recent` (just closed), `live.devices`, `live.associates`,
// `live.troubles` (open troubles: faults of the system itself, docs/dashboard.md#troubles) are
// Maps kept up to date from the hub's SSE stream (`snapshot`, `call`, `device`, `associate`,
// `trouble`, `resumed`, `heartbeat`). When the stream drops — the hub restarts, the Wi-Fi
// blips — the banner shows and the page reconnects with the last event id it saw, so the hub
// replays what changed meanwhile: no reload, no lost change, no duplicate row.
//
// A stream can also stall without closing (a Wi-Fi that loses packets, a proxy that holds the
// connection): the browser still says "open" and nothing arrives. The hub sends a heartbeat
// after `heartbeat_s` of silence; a page that hears nothing for two beats (STALL_BEATS) shows
// the banner and reconnects at once: within 10 s of the stall.

export const API = "/api/v1";
export const ACTIVE = new Set(["open", "acknowledged", "answered"]);

// How long a closed call stays in `recent` ("Just finished").
const RECENT_KEEP_MS = 60_000;
// Reconnect pauses when the browser gave up on its own (an error page from a proxy, say): from
// RECONNECT_MIN_MS doubling to RECONNECT_MAX_MS. The browser's own retry (about 3 s) handles
// the common case of a hub that is simply not there for a moment.
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10_000;
// Heartbeats missed before the stream counts as stalled, plus a margin for a busy hub or phone:
// 2 beats of 4 s and 1 s make 9 s, inside the 10 s in which a person must learn of it.
const STALL_BEATS = 2;
const STALL_MARGIN_MS = 1000;
const DEFAULT_HEARTBEAT_S = 4;  // until the snapshot says (hub/stream.py HEARTBEAT_S)
const WATCHDOG_MS = 500;

export async function loadStore() {
  const r = await fetch(`${API}/store`);
  if (r.status === 401) {  // the session ended as the page started: its sign-in form comes back
    location.reload();
    return new Promise(() => {});
  }
  if (!r.ok) throw new Error(`GET /store: ${r.status}`);
  return r.json();
}

export function fmt(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// Green well inside the standard, amber in its last third, red past it; the words say the same.
export function verdict(elapsed, standard) {
  if (elapsed >= standard) return ["late", "over standard"];
  if (elapsed >= (2 * standard) / 3) return ["near", "nearing standard"];
  return ["ok", "within standard"];
}

export const REASONS = {
  help: { icon: "?", words: "Help" },
  size: { icon: "⇅", words: "Size" },
};
export function reasonOf(id) {
  return REASONS[id] || { icon: "!", words: id };
}

// Keep the <li> rows of `list` in the order of `items`, one per id: missing rows are made by
// `create(item)`, every row is updated by `update(li, item)`. No flicker, no duplicates.
export function syncList(list, items, create, update) {
  const keep = new Set(items.map((item) => item.id));
  for (const li of [...list.children]) if (!keep.has(li.dataset.id)) li.remove();
  items.forEach((item, i) => {
    let li = [...list.children].find((el) => el.dataset.id === item.id);
    if (!li) {
      li = create(item);
      li.dataset.id = item.id;
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    update(li, item);
  });
}

export class Live {
  constructor({ banner, onChange, onCall, onHeard, onTrouble } = {}) {
    this.banner = banner;
    this.onChange = onChange || (() => {});
    this.onCall = onCall || (() => {});   // (call, {replayed}) for every call message
    this.onHeard = onHeard || (() => {});  // every message heard, heartbeats included
    this.onTrouble = onTrouble || (() => {});  // (trouble) for every trouble message
    this.calls = new Map();
    this.recent = new Map();
    this.devices = new Map();
    this.associates = new Map();
    this.troubles = new Map();   // trouble id → trouble object, open ones only
    this.info = {};
    this.clockOffset = 0;      // hub seconds − browser seconds
    this.lastId = null;        // id of the last message applied
    this.connected = false;
    this.generation = 0;       // snapshots seen: 1 after the first
    this.heartbeatS = DEFAULT_HEARTBEAT_S;
    this.lastHeard = Date.now();  // browser ms of the last byte of the stream (or of connecting)
    this.stalls = 0;              // streams given up as stalled (for the tests and the curious)
    this._pause = RECONNECT_MIN_MS;
  }

  // How long the stream may stay silent before it counts as stalled, ms.
  get stallMs() { return STALL_BEATS * this.heartbeatS * 1000 + STALL_MARGIN_MS; }

  now() { return Date.now() / 1000 + this.clockOffset; }

  connect() {
    const url = this.lastId == null ? `${API}/stream` : `${API}/stream?last=${encodeURIComponent(this.lastId)}`;
    const source = (this.source = new EventSource(url));
    this.lastHeard = Date.now();
    if (!this._watchdog) this._watchdog = setInterval(() => this._watch(), WATCHDOG_MS);
    const heard = (e) => {
      if (source !== this.source) return;
      this.lastHeard = Date.now();
      if (e && e.lastEventId) this.lastId = e.lastEventId;
      this.onHeard();
    };
    source.addEventListener("open", () => { heard(); });
    source.addEventListener("heartbeat", (e) => {
      heard(e);
      try { this.clockOffset = JSON.parse(e.data).now - Date.now() / 1000; } catch { /* keep the old one */ }
    });
    source.addEventListener("error", () => {
      this._setConnected(false);
      if (source.readyState === EventSource.CLOSED) {
        this._checkSignedIn();
        this._retryLater();
      }
    });
    source.addEventListener("snapshot", (e) => {
      heard(e);
      const data = JSON.parse(e.data);
      this.info = data;
      this.clockOffset = data.now - Date.now() / 1000;
      if (data.heartbeat_s) this.heartbeatS = data.heartbeat_s;
      this.calls.clear();
      data.calls.forEach((c) => this._upsert(c));
      this.devices.clear();
      data.devices.forEach((d) => this.devices.set(d.id, d));
      this.associates.clear();
      (data.associates || []).forEach((a) => this.associates.set(a.id, a));
      if (data.troubles) this._setTroubles(data.troubles);
      else this.refreshTroubles();  // a hub whose snapshot does not carry them
      this.generation += 1;
      data.calls.forEach((c) => this.onCall(c, { replayed: true }));
      this._setConnected(true);
    });
    source.addEventListener("call", (e) => {
      heard(e);
      const call = JSON.parse(e.data);
      this._upsert(call);
      this.onCall(call, { replayed: false });
      this.onChange("call");
    });
    source.addEventListener("device", (e) => {
      heard(e);
      const d = JSON.parse(e.data);
      this.devices.set(d.id, { ...this.devices.get(d.id), ...d });
      this.onChange("device");
    });
    source.addEventListener("associate", (e) => {
      heard(e);
      const a = JSON.parse(e.data);
      this.associates.set(a.id, a);
      this.onChange("associate");
    });
    source.addEventListener("trouble", (e) => {
      heard(e);
      this._upsertTrouble(JSON.parse(e.data));
      this.onChange("trouble");
    });
    source.addEventListener("resumed", (e) => {
      const data = JSON.parse(e.data);
      if (data.to < data.from) {  // the hub's database was reset: start again from a snapshot
        this.lastId = null;
        this._restart();
        return;
      }
      heard(e);
      this._setConnected(true);
      this.refreshDevices();   // device changes during the gap are not replayed
      this.refreshTroubles();  // nor are trouble changes
    });
  }

  // The open troubles from GET /api/v1/troubles: after a replay, which carries calls only.
  async refreshTroubles() {
    try {
      const r = await fetch(`${API}/troubles`);
      if (!r.ok) return;
      this._setTroubles((await r.json()).troubles);
    } catch { /* offline: the banner already says so */ }
  }

  // Apply a trouble object we got from an action's reply (it may be newer than the stream).
  applyTrouble(trouble) {
    this._upsertTrouble(trouble);
    this.onChange("trouble");
  }

  _setTroubles(list) {
    this.troubles.clear();
    list.forEach((t) => this._upsertTrouble(t));
    this.onChange("trouble");
  }

  _upsertTrouble(t) {
    if (t.cleared_at) this.troubles.delete(t.id);
    else this.troubles.set(t.id, t);
    this.onTrouble(t);
  }

  async refreshDevices() {
    try {
      const r = await fetch(`${API}/devices`);
      if (!r.ok) return;
      for (const d of await r.json()) {
        this.devices.set(d.id, { ...this.devices.get(d.id), id: d.id, status: d.status, at: d.status_at,
                                 health: d.health, health_at: d.health_at });
      }
      this.onChange("device");
    } catch { /* offline: the banner already says so */ }
  }

  // Apply a call object we got from an action's reply (it may be newer than the stream).
  apply(call) {
    this._upsert(call);
    this.onChange("call");
  }

  _upsert(call) {
    if (ACTIVE.has(call.status)) {
      this.calls.set(call.id, call);
      this.recent.delete(call.id);
    } else {
      this.calls.delete(call.id);
      this.recent.set(call.id, { call, until: Date.now() + RECENT_KEEP_MS });
    }
  }

  expireRecent() {
    let changed = false;
    for (const [id, r] of this.recent) if (r.until < Date.now()) { this.recent.delete(id); changed = true; }
    return changed;
  }

  _setConnected(on) {
    if (on) this._pause = RECONNECT_MIN_MS;
    if (this.connected === on) { if (on) this.onChange("connected"); return; }
    this.connected = on;
    if (this.banner) this.banner.hidden = on;
    document.documentElement.dataset.connected = on ? "yes" : "no";
    this.onChange("connected");
  }

  _restart() {
    if (this.source) this.source.close();
    this.connect();
  }

  // Nothing heard for two heartbeats: the stream is stalled, even if the browser says it is
  // open. Say so, and reconnect now with the last id (the hub replays what was missed).
  _watch() {
    if (Date.now() - this.lastHeard < this.stallMs) return;
    this.stalls += 1;
    this._setConnected(false);
    clearTimeout(this._timer);
    this._restart();
  }

  // The hub refused the stream (the browser closes it on any answer but 200): if that is
  // because the session ended or expired, reload, so the page shows its sign-in form.
  async _checkSignedIn() {
    try {
      const options = await (await fetch(`${API}/session`)).json();
      if (!options.demo && !options.signed_in) location.reload();
    } catch { /* the hub is away: the banner says so and we retry */ }
  }

  _retryLater() {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._restart(), this._pause);
    this._pause = Math.min(RECONNECT_MAX_MS, this._pause * 2);
  }
}
