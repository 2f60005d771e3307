// Web Push for this phone: alerts reach it locked, or with the page closed (hub/push.py). The
// service worker (sw.js) shows them and tells the hub it has them.
//
//   const { on, words } = await enablePush("ana");   // after notifications are allowed
//   await disablePush("ana");                        // on sign-out: this phone is not hers now

import { API } from "/static/live.js";
import { api } from "/static/auth.js";

const b64urlBytes = (text) => {
  const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
};

function sameKey(subscription, key) {
  const had = subscription.options && subscription.options.applicationServerKey;
  if (!had) return true;  // this browser does not say: keep it
  const a = new Uint8Array(had);
  return a.length === key.length && a.every((v, i) => v === key[i]);
}

// Subscribe this phone for `associate`'s alerts. Resolves { on, words }: whether it worked,
// and what to tell the person.
export async function enablePush(associate) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    return { on: false, words: "Locked-phone alerts: not in this browser. Keep this page open (or use ntfy)." };
  }
  if (!window.isSecureContext) {
    return { on: false, words: "Locked-phone alerts need the hub over HTTPS (docs/dashboard.md)." };
  }
  if (!("Notification" in window) || Notification.permission !== "granted") {
    return { on: false, words: "Locked-phone alerts: allow notifications first." };
  }
  try {
    const info = await (await api(`${API}/push/key`)).json();
    if (!info.enabled) return { on: false, words: "Locked-phone alerts are off on this hub." };
    const key = b64urlBytes(info.public_key);
    const reg = await navigator.serviceWorker.ready;
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub, key)) {  // made for another hub's key: it would never deliver
      await sub.unsubscribe();
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    const r = await api(`${API}/push/subscriptions`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ associate, ...sub.toJSON() }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      return { on: false, words: `Locked-phone alerts: the hub refused (${body.error ? body.error.message : r.status}).` };
    }
    return { on: true, words: "Locked-phone alerts: on." };
  } catch (e) {
    return { on: false, words: `Locked-phone alerts: not available here (${e.message || e}).` };
  }
}

// Stop pushing `associate`'s alerts to this phone.
export async function disablePush(associate) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return;
  try {
    const reg = await navigator.serviceWorker.ready;
    const sub = await reg.pushManager.getSubscription();
    if (!sub) return;
    const query = new URLSearchParams({ associate, endpoint: sub.endpoint });
    await api(`${API}/push/subscriptions?${query}`, { method: "DELETE" });
  } catch { /* offline: the next subscription for this phone replaces it */ }
}
