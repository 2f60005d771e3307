// Troubles — faults of the system itself (a silent device, a stuck button, the database, the
// broker) — as the pages show them: the dashboard's and floor screen's trouble panel, the phone
// page's trouble cards. The hub says what is wrong (`text`); this module adds the kind's name
// and symbol, the rooms it touches, how long it has lasted and who was told.
//
//   import { describe } from "/static/troubles.js";
//   const d = describe(trouble, { now: live.now(), person: (id) => name, room: (id) => name });
//   // d.icon "📡", d.title "Device silent", d.text "Device pi-1 has not been heard…",
//   // d.rooms "Room 1, Room 2", d.since "since 18:02 (3:10)", d.alerted "Alerted: Maria 18:02",
//   // d.state "Acknowledged by Maria" or "Waiting for Maria to acknowledge"

import { fmt } from "/static/live.js";

// Each kind's name and symbol (hub/domain/troubles.py KINDS). Colour is never the only sign.
export const KINDS = {
  device_silent: { icon: "📡", words: "Device silent" },
  device_never_connected: { icon: "📡", words: "Device never connected" },
  stuck_line: { icon: "⛔", words: "Button stuck" },
  supply: { icon: "⚡", words: "12 V supply" },
  lamp: { icon: "💡", words: "Lamp fault" },
  storm: { icon: "🌊", words: "Message storm" },
  database: { icon: "💾", words: "Database error" },
  broker: { icon: "🔌", words: "Broker unreachable" },
  broker_dropping: { icon: "🔌", words: "Broker dropping messages" },
};

export function kindOf(kind) {
  return KINDS[kind] || { icon: "⚠", words: kind.replaceAll("_", " ") };
}

// A time of day in the store's zone (a floor screen's computer may be set to another).
const clock = (iso, timeZone) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23",
                                                                       timeZone });

// The rooms a trouble touches: its own room, or those the hub lists in its detail (a device).
export function roomsOf(t) {
  const ids = t.room ? [t.room] : Array.isArray(t.detail && t.detail.rooms) ? t.detail.rooms : [];
  return [...new Set(ids)];
}

// Who was told, once each, in the order they were told.
export function alertedOf(t) {
  return [...new Map((t.alerted || []).map((a) => [a.associate, a])).values()];
}

// Everything a trouble card or banner line says. `now` in the hub's seconds (live.now());
// `timeZone` the store's (store.timezone).
export function describe(t, { now, person = (id) => id, room = (id) => id, timeZone }) {
  const kind = kindOf(t.kind);
  const told = alertedOf(t);
  const rooms = roomsOf(t).map(room).join(", ");
  const sinceS = sinceOf(t);
  let state = told.length ? `Waiting for ${told.map((a) => person(a.associate)).join(" or ")} to acknowledge`
                          : "Nobody to alert (no one with the alert role)";
  if (t.acknowledged_by) state = `Acknowledged by ${person(t.acknowledged_by)} at ${clock(t.acknowledged_at, timeZone)}`;
  return {
    icon: kind.icon,
    title: kind.words,
    text: t.text || [kind.words, t.device].filter(Boolean).join(": "),
    device: t.device || "",
    rooms,
    since: `since ${clock(t.since, timeZone)} (${fmt(now - sinceS)})`,
    alerted: told.length ? `Alerted: ${told.map((a) => `${person(a.associate)} ${clock(a.at, timeZone)}`).join(", ")}` : "",
    state,
  };
}

// When a trouble began, seconds since the epoch (the hub sends it as a number too).
const sinceOf = (t) => t.since_ts ?? Date.parse(t.since) / 1000;

// Open troubles, oldest first.
export function sortedTroubles(troubles) {
  return [...troubles.values()].sort((a, b) => sinceOf(a) - sinceOf(b) || a.id.localeCompare(b.id));
}
