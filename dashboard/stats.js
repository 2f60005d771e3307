// The statistics page for managers: a period and filters, charts drawn as SVG by hand (no
// library, nothing from the internet), the figures in tables, and a CSV of the table shown.
// Figures come from the hub's /api/v1/stats* routes (docs/statistics.md).

import { api, signedIn } from "/static/auth.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const DAY_MS = 86400000;

// Columns of the figures table, and of its CSV (the CSV uses the API's field names).
const COLUMNS = [
  ["key", "group"], ["calls", "calls"], ["answered", "answered"],
  ["response_median_s", "median s"], ["response_p90_s", "p90 s"], ["response_p95_s", "p95 s"],
  ["response_max_s", "max s"], ["within_standard_share", "within standard"],
  ["wait_ack_median_s", "wait to ack. s"], ["missed", "missed"], ["cancelled", "cancelled"],
  ["reminders", "reminders"], ["handling_median_s", "handling s"],
];

const state = { store: null, days: 7, stats: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function text(x, y, s, attrs = {}) {
  const t = el("text", { x, y, ...attrs });
  t.textContent = s;
  return t;
}

function isoDate(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function pct(x) { return x == null ? "–" : `${(x * 100).toFixed(1)} %`; }
function secs(x) { return x == null ? "–" : `${Math.round(x)} s`; }

function setPreset(days) {
  state.days = days;
  const today = new Date();
  $("until").value = isoDate(today);
  $("from").value = isoDate(new Date(today.getTime() - (days - 1) * DAY_MS));
  for (const b of document.querySelectorAll(".st-presets button")) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.days) === days));
  }
}

// The query string for the period and filters. "Until" on the page includes its day.
function query(extra = {}) {
  const q = new URLSearchParams();
  if ($("from").value) q.set("from", $("from").value);
  if ($("until").value) {
    const next = new Date(`${$("until").value}T00:00:00`);
    next.setDate(next.getDate() + 1);
    q.set("until", isoDate(next));
  }
  for (const f of ["zone", "room", "associate", "reason"]) if ($(f).value) q.set(f, $(f).value);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q.toString();
}

async function get(path) {
  const r = await api(path);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? body.error.message : `${r.status}`);
  return body;
}

// The weekdays the period on the page covers (Mon … Sun, as the API names them): all seven
// for a week or more. The heat map and the staffing table show only these.
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
function periodDays() {
  const from = $("from").value, until = $("until").value;
  if (!from || !until) return { days: 7, weekdays: WEEKDAYS };
  const a = new Date(`${from}T12:00:00`), b = new Date(`${until}T12:00:00`);
  const days = Math.max(1, Math.round((b - a) / DAY_MS) + 1);
  if (days >= 7) return { days, weekdays: WEEKDAYS };
  const seen = new Set();
  for (let i = 0; i < days; i++) seen.add(WEEKDAYS[(new Date(a.getTime() + i * DAY_MS).getDay() + 6) % 7]);
  return { days, weekdays: WEEKDAYS.filter((w) => seen.has(w)) };
}

// The trend's step for the period: a day by hour, up to a month by day, longer by week.
const TREND_DAYS_BY_DAY = 31;
function trendStep(days) { return days <= 1 ? "hour" : days <= TREND_DAYS_BY_DAY ? "day" : "week"; }

function fillSelect(id, items) {
  const sel = $(id);
  for (const [value, label] of items) sel.append(new Option(label, value));
}

async function start() {
  await signedIn({ title: "Statistics", want: "manager" });
  const store = await get("/api/v1/store");
  state.store = store;
  $("store-name").textContent = store.name;
  fillSelect("zone", store.zones.map((z) => [z.id, z.name || z.id]));
  fillSelect("room", store.rooms.map((r) => [r.id, r.name || r.id]));
  fillSelect("associate", store.associates.map((a) => [a.id, a.name]));
  const reasons = [...new Set(store.rooms.flatMap((r) => r.reasons || []))];
  fillSelect("reason", reasons.map((r) => [r, r]));
  setPreset(7);
  for (const b of document.querySelectorAll(".st-presets button")) {
    b.addEventListener("click", () => { setPreset(Number(b.dataset.days)); refresh(); });
  }
  for (const id of ["from", "until"]) {
    $(id).addEventListener("change", () => {
      for (const b of document.querySelectorAll(".st-presets button")) b.setAttribute("aria-pressed", "false");
      refresh();
    });
  }
  for (const id of ["zone", "room", "associate", "reason", "by"]) $(id).addEventListener("change", refresh);
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  $("download").addEventListener("click", download);
  await refresh();
}

let generation = 0;
async function refresh() {
  const mine = ++generation;
  const q = query();
  try {
    // One request: the hub reads the period's calls once for every chart and table.
    const span = periodDays();
    const step = trendStep(span.days);
    const all = await get(`/api/v1/stats/overview?${query({ by: $("by").value, trend: step })}`);
    const { stats, trend, heatmap: heat, distribution: dist, staffing: staff } = all;
    if (mine !== generation) return; // a newer request is on its way
    state.stats = stats;
    $("error").hidden = true;
    summary(stats);
    distribution(dist);
    heatmap(heat, span.weekdays);
    trendChart(trend, step);
    staffing(staff, span.weekdays);
    groupsTable(stats);
    serviceFigures(await get(`/api/v1/stats/service?${q}`));
    receiptsTable(await get(`/api/v1/stats/receipts?${q}`));
    const period = new URLSearchParams(q);
    const exp = new URLSearchParams();
    if (period.get("from")) exp.set("since", period.get("from"));
    if (period.get("until")) exp.set("until", period.get("until"));
    $("export-calls").href = `/api/v1/calls.csv?${exp}`;
    $("export-events").href = `/api/v1/events.csv?${exp}`;
    $("export-jsonl").href = `/api/v1/events.jsonl?${exp}`;
    document.body.dataset.loaded = "true";
  } catch (e) {
    $("error").textContent = `Could not load the statistics: ${e.message}`;
    $("error").hidden = false;
  }
}

function summary(s) {
  const t = s.total;
  const v = $("verdict");
  if (t.within_standard_share == null) {
    v.dataset.verdict = "none";
    v.textContent = t.calls ? "No call decided yet in this period." : "No calls in this period.";
  } else {
    v.dataset.verdict = t.meets_target ? "ok" : "late";
    v.textContent = `${pct(t.within_standard_share)} of calls answered within ${s.standard_s} s — target ${pct(s.target_share)}` +
      (t.meets_target ? " ✓ met" : " ✗ missed");
  }
  const figs = [
    ["Calls", t.calls], ["Median response", secs(t.response_median_s)], ["p90", secs(t.response_p90_s)],
    ["p95", secs(t.response_p95_s)], ["Slowest", secs(t.response_max_s)],
    ["Wait to acknowledge (median)", secs(t.wait_ack_median_s)], ["Missed", t.missed], ["Cancelled", t.cancelled],
    ["Reminders", t.reminders], ["Handling (median)", secs(t.handling_median_s)], ["Still open", t.open],
  ];
  $("figures").replaceChildren(...figs.map(([k, val]) => {
    const d = document.createElement("div");
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = val;
    d.append(dt, dd);
    return d;
  }));
  // Long periods come from the hub's roll-ups: percentiles to the nearest half second.
  $("method").textContent = s.percentiles === "histogram"
    ? "Percentiles from 1-second histograms (within 0.5 s); counts and shares exact." : "";
  $("busiest").textContent = s.busiest_hours.length
    ? s.busiest_hours.map((b) => `${b.weekday} ${String(b.hour).padStart(2, "0")}:00 (${b.calls})`).join(", ")
    : "–";
}

// Response-time histogram with the standard as a vertical line.
function distribution(d) {
  const svg = $("chart-distribution");
  const W = 560, H = 220, L = 40, B = 30, T = 10, R = 10;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const bins = d.bins;
  const max = Math.max(1, ...bins.map((b) => b.calls));
  const bw = (W - L - R) / bins.length;
  const y = (n) => H - B - (n / max) * (H - B - T);
  const kids = [el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" })];
  bins.forEach((b, i) => {
    const late = b.to_s == null || b.to_s > d.standard_s;
    const r = el("rect", { x: L + i * bw + 1, y: y(b.calls), width: Math.max(1, bw - 2), height: H - B - y(b.calls),
      class: late ? "bar late" : "bar ok", "data-from": b.from_s, "data-calls": b.calls });
    r.append(el("title", {}, `${b.from_s}–${b.to_s == null ? "" : b.to_s} s: ${b.calls} calls`));
    kids.push(r);
    if (i % 3 === 0) kids.push(text(L + i * bw, H - B + 16, b.to_s == null ? `${b.from_s}+` : `${b.from_s}`, { class: "tick" }));
  });
  kids.push(text(L - 6, y(max) + 4, String(max), { class: "tick", "text-anchor": "end" }));
  kids.push(text(L - 6, H - B, "0", { class: "tick", "text-anchor": "end" }));
  const xs = L + (d.standard_s / d.bin_s) * bw;
  kids.push(el("line", { x1: xs, y1: T, x2: xs, y2: H - B, class: "standard", id: "standard-line" }));
  kids.push(text(xs + 4, T + 12, `standard ${d.standard_s} s`, { class: "standard-label" }));
  svg.replaceChildren(...kids);
}

// Share within standard by weekday (rows) × hour (columns), one row per weekday of the period:
// "Today" is a single row of hours.
function heatmap(h, weekdays) {
  const svg = $("chart-heatmap");
  const oneDay = weekdays.length === 1;
  $("heat-title").textContent = oneDay ? `Share within standard by hour, ${weekdays[0]}` : "Share within standard, hour × weekday";
  $("heat-note").textContent = oneDay
    ? "Each square is one hour of the day, with its calls below; red is below the target share."
    : "Each square is one hour of the week over the period; red is below the target share.";
  const hoursWith = h.cells.map((c) => c.hour);
  const lo = hoursWith.length ? Math.min(...hoursWith) : 9, hi = hoursWith.length ? Math.max(...hoursWith) : 20;
  const cols = hi - lo + 1, L = 40, T = 18, S = Math.min(36, Math.floor(520 / cols));
  const W = L + cols * S + 10, H = T + weekdays.length * S + 6 + (oneDay ? 16 : 0);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  // Never drawn larger than its natural size: a few hours' squares would fill the card.
  svg.style.maxWidth = `${W * 1.2}px`;
  const byKey = new Map(h.cells.map((c) => [`${c.weekday} ${c.hour}`, c]));
  const kids = [];
  for (let x = 0; x < cols; x++) kids.push(text(L + x * S + S / 2, T - 5, String(lo + x), { class: "tick", "text-anchor": "middle" }));
  weekdays.forEach((wd, row) => {
    kids.push(text(L - 6, T + row * S + S / 2 + 4, wd, { class: "tick", "text-anchor": "end" }));
    for (let x = 0; x < cols; x++) {
      const c = byKey.get(`${wd} ${lo + x}`);
      const share = c ? c.within_standard_share : null;
      const r = el("rect", { x: L + x * S + 1, y: T + row * S + 1, width: S - 2, height: S - 2, rx: 3,
        class: "cell", fill: shareColour(share, h.target_share), "data-weekday": wd, "data-hour": lo + x,
        "data-share": share == null ? "" : share });
      r.append(el("title", {}, c ? `${wd} ${lo + x}:00 — ${c.calls} calls, ${pct(share)} within standard` : `${wd} ${lo + x}:00 — no calls`));
      kids.push(r);
      if (share != null && S >= 30) {
        kids.push(text(L + x * S + S / 2, T + row * S + S / 2 + 4, String(Math.round(share * 100)), { class: "cell-label", "text-anchor": "middle" }));
      }
      if (oneDay) {
        kids.push(text(L + x * S + S / 2, T + S + 14, c ? String(c.calls) : "", { class: "tick calls", "text-anchor": "middle" }));
      }
    }
  });
  svg.replaceChildren(...kids);
}

// Green at or above the target, through amber to red the further below it.
function shareColour(share, target) {
  if (share == null) return "#eceff3";
  if (share >= target) return "#b9e4c4";
  const gap = Math.min(1, (target - share) / 0.3);
  const hue = 45 * (1 - gap);
  return `hsl(${hue}, 85%, ${80 - 20 * gap}%)`;
}

// Calls per step (bars: hour, day or week) and share within standard (line) against the
// target (dashed). By hour, the hours between the first and last with calls are all shown.
const TREND_TITLE = { hour: "Trend by hour", day: "Trend by day", week: "Trend by week" };
function trendChart(s, step) {
  const svg = $("chart-trend");
  const W = 560, H = 220, L = 40, R = 40, T = 10, B = 30;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  $("trend-title").textContent = TREND_TITLE[step];
  $("trend-note").textContent = `Bars: calls per ${step}. Line: share within standard; dashed: the target.`;
  let g = s.groups || [];
  if (step === "hour" && g.length) {
    const have = new Map(g.map((x) => [x.key, x]));
    const lo = Math.min(...g.map((x) => x.key)), hi = Math.max(...g.map((x) => x.key));
    g = Array.from({ length: hi - lo + 1 }, (_, i) => have.get(lo + i) || { key: lo + i, calls: 0, within_standard_share: null });
  }
  const label = (k) => (step === "hour" ? String(k).padStart(2, "0") : String(k).slice(5)); // 14, 12-06, W49
  const kids = [el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" })];
  if (!g.length) { svg.replaceChildren(...kids, text(W / 2, H / 2, "No calls in this period", { class: "tick", "text-anchor": "middle" })); return; }
  const max = Math.max(1, ...g.map((x) => x.calls));
  const dx = (W - L - R) / g.length;
  const yShare = (v) => H - B - v * (H - B - T);
  g.forEach((w, i) => {
    const h = (w.calls / max) * (H - B - T);
    const r = el("rect", { x: L + i * dx + dx * 0.15, y: H - B - h, width: dx * 0.7, height: h, class: "bar week", "data-key": w.key });
    r.append(el("title", {}, `${w.key}: ${w.calls} calls, ${pct(w.within_standard_share)} within standard, median ${secs(w.response_median_s)}`));
    kids.push(r);
    if (g.length <= 14 || i % Math.ceil(g.length / 10) === 0) kids.push(text(L + i * dx + dx / 2, H - B + 16, label(w.key), { class: "tick", "text-anchor": "middle" }));
  });
  const pts = g.map((w, i) => [L + i * dx + dx / 2, w.within_standard_share]).filter(([, v]) => v != null);
  if (pts.length) {
    kids.push(el("polyline", { points: pts.map(([x, v]) => `${x},${yShare(v)}`).join(" "), class: "share-line" }));
    for (const [x, v] of pts) kids.push(el("circle", { cx: x, cy: yShare(v), r: 3, class: "share-dot" }));
  }
  kids.push(el("line", { x1: L, x2: W - R, y1: yShare(s.target_share), y2: yShare(s.target_share), class: "target" }));
  kids.push(text(W - R + 4, yShare(s.target_share) + 4, pct(s.target_share).replace(".0 ", " "), { class: "tick" }));
  kids.push(text(W - R + 4, yShare(1) + 4, "100 %", { class: "tick" }));
  kids.push(text(L - 6, T + 8, String(max), { class: "tick", "text-anchor": "end" }));
  svg.replaceChildren(...kids);
}

function staffing(s, weekdays) {
  const table = $("staffing");
  $("staff-title").textContent = weekdays.length === 1 ? `Staffing per hour, ${weekdays[0]}` : "Staffing per hour of the week";
  const active = s.slots.filter((x) => x.rate_per_h > 0 || x.signed_in > 0);
  $("staff-note").textContent = `Associates needed for ${pct(s.target_share)} of calls within ${s.standard_s} s ` +
    `(Erlang C; walk ${s.walk_s} s ${s.walk_measured ? "measured" : "assumed"}, handling ${s.handling_s} s on average) ` +
    "next to how many were signed in (available), on average to the nearest person. Red: fewer than needed.";
  if (!active.length) { table.replaceChildren(); return; }
  const hours = [...new Set(active.map((x) => x.hour))].sort((a, b) => a - b);
  const bySlot = new Map(s.slots.map((x) => [`${x.weekday} ${x.hour}`, x]));
  const head = document.createElement("tr");
  head.append(th("hour"), ...weekdays.map((w) => th(w)));
  const rows = hours.map((h) => {
    const tr = document.createElement("tr");
    tr.append(th(`${String(h).padStart(2, "0")}:00`));
    for (const wd of weekdays) {
      const x = bySlot.get(`${wd} ${h}`);
      const td = document.createElement("td");
      if (x && (x.rate_per_h > 0 || x.signed_in > 0)) {
        // People come whole: the cell shows the time-weighted average rounded to a person
        // (1.7 on the floor reads "2"); the exact average is in the tooltip and the API.
        const people = Math.round(x.signed_in);
        td.textContent = `${x.needed == null ? "∞" : x.needed} / ${people}`;
        td.title = `${x.rate_per_h} calls an hour; needs ${x.needed == null ? "more than the model allows" : x.needed}; ` +
          `${x.signed_in.toFixed(1)} signed in on average over the hour`;
        td.dataset.short = String(x.needed == null || people < x.needed);
      }
      tr.append(td);
    }
    return tr;
  });
  const cap = document.createElement("caption");
  cap.textContent = "needed / signed in";
  table.replaceChildren(cap, head, ...rows);
}

function th(s) { const t = document.createElement("th"); t.textContent = s; return t; }

function cell(key, value) {
  if (value == null) return "–";
  if (key === "within_standard_share") return pct(value);
  if (key.endsWith("_s")) return value.toFixed(1);
  return String(value);
}

// The service standards (GET /api/v1/stats/service): each figure with what it counts.
function serviceFigures(f) {
  const q = f.instant_vs_queued, h = f.handoffs, a = f.arrivals;
  const of = (k, n) => (n ? `${k} of ${n}` : "no calls");
  const figs = [
    ["First-contact resolution", pct(f.first_contact.share), of(f.first_contact.resolved, f.first_contact.calls), "first-contact"],
    ["Queued (waited for someone free)", pct(q.queued_share), of(q.queued, q.calls), "queued"],
    ["Queued wait (median / p90)", q.queued_wait_median_s == null ? "–" : `${secs(q.queued_wait_median_s)} / ${secs(q.queued_wait_p90_s)}`,
      `${q.instant} instant`, "queued-wait"],
    ["Time to abandon (median / p90)", f.abandon.median_s == null ? "–" : `${secs(f.abandon.median_s)} / ${secs(f.abandon.p90_s)}`,
      `${f.abandon.cancelled} cancelled`, "abandon"],
    ["Handoffs per call", h.per_call == null ? "–" : h.per_call.toFixed(2), h.calls ? `${pct(h.with_handoff_share)} with one or more` : "no calls", "handoffs"],
    ["Verified arrivals (at the door)", pct(a.verified_share), `${a.self_reported} tapped on a phone`, "verified"],
  ];
  const o = f.occupancy;
  if (o) {
    const band = `${Math.round(o.band[0] * 100)}–${Math.round(o.band[1] * 100)} %`;
    figs.push([`Occupancy (band ${band})`, pct(o.occupancy),
      o.occupancy == null ? "nobody signed in" : `hours: ${o.hours_under} under, ${o.hours_over} over`, "occupancy"]);
  }
  $("service").replaceChildren(...figs.map(([k, val, sub, name]) => {
    const d = document.createElement("div");
    d.dataset.figure = name;
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = val;
    const small = document.createElement("small"); small.textContent = sub;
    d.append(dt, dd, small);
    return d;
  }));
}

// Receipts (GET /api/v1/stats/receipts): one row per associate, then everyone.
function receiptsTable(r) {
  const ms = (x) => (x == null ? "–" : x < 10 ? `${Math.round(x * 1000)} ms` : `${Math.round(x)} s`);
  $("reach-note").textContent = `Alerts the phones confirmed having (delivered) and ringing (shown), and how fast. ` +
    `An alert not confirmed within ${r.receipt_s} s goes on to the next person.`;
  const cols = [["Associate", (w, g) => w], ["Alerts", (w, g) => g.alerts], ["Delivered", (w, g) => pct(g.delivered_share)],
    [`In ${r.receipt_s} s`, (w, g) => pct(g.delivered_in_time_share)], ["Delivered, median", (w, g) => ms(g.delivered_median_s)],
    ["p90", (w, g) => ms(g.delivered_p90_s)], ["Rang", (w, g) => pct(g.shown_share)],
    ["Rang, median", (w, g) => ms(g.shown_median_s)],
    ["By", (w, g) => Object.entries(g.delivered_via).map(([k, n]) => `${k} ${n}`).join(", ") || "–"]];
  const names = new Map((state.store.associates || []).map((a) => [a.id, a.name]));
  const head = document.createElement("tr");
  head.append(...cols.map(([label]) => th(label)));
  const everyone = r.alerts_without_phone_page ? "Everyone with a phone page" : "Everyone";
  const rows = [...Object.entries(r.by_associate).map(([who, g]) => [names.get(who) || who, g]), [everyone, r.total]];
  $("receipts").replaceChildren(head, ...rows.map(([who, g], i) => {
    const tr = document.createElement("tr");
    if (i === rows.length - 1) tr.className = "total";
    if (g.phone_page === false) {
      // No phone page (floor screen, ntfy only): no receipts by design, so no shares to show.
      const [name, alerts] = [document.createElement("td"), document.createElement("td")];
      name.textContent = who;
      alerts.textContent = String(g.alerts);
      const none = document.createElement("td");
      none.colSpan = cols.length - 2;
      none.className = "no-page";
      none.textContent = "no phone page";
      none.title = "No receipt from a phone page of theirs yet: their alerts reach them another way (floor screen, ntfy)";
      tr.append(name, alerts, none);
      return tr;
    }
    for (const [, value] of cols) {
      const td = document.createElement("td");
      td.textContent = value(who, g);
      tr.append(td);
    }
    return tr;
  }));
}

// The group of calls without a value (the API's key null), labelled for what it is. By
// associate these are the calls nobody answered (cancelled, missed, still waiting): not a
// person, so a line of their own, without the red or green of a verdict.
const NO_KEY = { associate: "not answered", zone: "no zone", room: "no room", reason: "no reason" };

function groupsTable(s) {
  const table = $("groups");
  $("table-title").textContent = "Figures by";
  const head = document.createElement("tr");
  head.append(...COLUMNS.map(([, label]) => th(label)));
  const rows = [...(s.groups || []), { ...s.total, key: "all" }].map((g) => {
    const tr = document.createElement("tr");
    const none = g.key == null;
    if (g.key === "all") tr.className = "total";
    if (none) tr.className = "no-key";
    for (const [k] of COLUMNS) {
      const td = document.createElement("td");
      td.textContent = k === "key" ? (none ? NO_KEY[s.by] || "none" : String(g.key)) : cell(k, g[k]);
      if (k === "within_standard_share" && g.meets_target != null && !(none && s.by === "associate")) {
        td.dataset.verdict = g.meets_target ? "ok" : "late";
      }
      tr.append(td);
    }
    return tr;
  });
  table.replaceChildren(head, ...rows);
}

// The CSV of the table shown: the API's numbers, unformatted, one row per group and a total.
function csvText(s) {
  const esc = (v) => {
    const t = v == null ? "" : String(v);
    return /[",\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
  };
  const lines = [COLUMNS.map(([k]) => k).join(",")];
  for (const g of [...(s.groups || []), { ...s.total, key: "all" }]) lines.push(COLUMNS.map(([k]) => esc(g[k])).join(","));
  return lines.join("\r\n") + "\r\n";
}

function download() {
  if (!state.stats) return;
  const s = state.stats;
  const blob = new Blob([csvText(s)], { type: "text/csv" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `callbell-stats-by-${s.by}-${s.from.slice(0, 10)}-${s.until.slice(0, 10)}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

start().catch((e) => {
  $("error").textContent = `Could not start: ${e.message}`;
  $("error").hidden = false;
});
