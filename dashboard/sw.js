// Callbell phone page service worker: makes the page installable and usable for a moment
// offline (the page itself shows "reconnecting"), shows the alerts the hub pushes (Web Push:
// a locked phone, a closed page) and tells the hub it has them, and handles taps on alert
// notifications: "On my way" / "Not me" call the hub's API without opening the page, and so does
// "Acknowledge" on a trouble (a fault of the system itself, docs/dashboard.md#troubles).
//
// Network first, always: the page must never run stale code against a newer hub. The cache is
// only a fallback for when the hub cannot be reached. The API and the event stream pass through.

const CACHE = "callbell-phone-v4";
const SHELL = ["/phone", "/static/phone.js", "/static/phone.css", "/static/live.js", "/static/auth.js",
               "/static/ringer.js", "/static/push.js", "/static/troubles.js",
               "/static/icon.svg", "/static/icon-192.png", "/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).catch(() => {}).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return;  // API, stream, other pages: straight to the network
  event.respondWith((async () => {
    try {
      const response = await fetch(event.request);
      if (response.ok) (await caches.open(CACHE)).put(event.request, response.clone());
      return response;
    } catch (e) {
      const cached = await caches.match(event.request);
      if (cached) return cached;
      throw e;
    }
  })());
});

// The two vibration patterns of dashboard/ringer.js (a worker cannot import the page's module).
const BUZZ = { alert: [300, 150, 300, 150, 600], urgent: [700, 120, 700, 120, 700, 120, 1400] };

// A push from the hub (hub/push.py alert_message): confirm it arrived, then ring — unless the
// page is open in front of the person: it rings itself, from its own stream.
self.addEventListener("push", (event) => {
  let msg = null;
  try { msg = event.data ? event.data.json() : null; } catch { msg = null; }
  event.waitUntil((async () => {
    if (msg && msg.kind === "trouble") {
      await showTrouble(msg);
      return;
    }
    if (!msg || msg.kind !== "alert") {
      // Browsers require every push to show something.
      await self.registration.showNotification("Callbell", { body: "Open the page for your calls.", tag: "callbell" });
      return;
    }
    if (msg.receipt) await pushReceipt(msg, "delivered");
    const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    // Only a page in front of the person (visible and focused) is sure to be running: a page in
    // the background may be frozen. A second alert beats none.
    if (pages.some((c) => c.visibilityState === "visible" && c.focused && new URL(c.url).pathname === "/phone")) return;
    await self.registration.showNotification(msg.title, {
      body: msg.body, tag: msg.call, renotify: true, requireInteraction: true,
      icon: "/static/icon-192.png", badge: "/static/icon-192.png", vibrate: msg.urgent ? BUZZ.urgent : BUZZ.alert,
      data: { call: msg.call, token: msg.token },
      actions: [{ action: "acknowledge", title: "On my way" }, { action: "decline", title: "Not me" }],
    });
    if (msg.receipt) await pushReceipt(msg, "shown");
  })());
});

// A trouble the hub alerts this person for (hub/push.py trouble_message): shown with
// "Acknowledge" unless the page is in front of them (it rings itself). No receipts: the hub
// asks nobody else for a trouble, it rings until acknowledged or cleared.
async function showTrouble(msg) {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  if (pages.some((c) => c.visibilityState === "visible" && c.focused && new URL(c.url).pathname === "/phone")) return;
  await self.registration.showNotification(msg.title, {
    body: msg.body, tag: msg.trouble, renotify: true, requireInteraction: true,
    icon: "/static/icon-192.png", badge: "/static/icon-192.png", vibrate: BUZZ.alert,
    data: { trouble: msg.trouble, token: msg.token },
    actions: [{ action: "acknowledge", title: "Acknowledge" }],
  });
}

async function pushReceipt(msg, stage) {
  try {
    await fetch("/api/v1/push/receipt", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: msg.token, call: msg.call, alerted_at: msg.alerted_at, stage }),
    });
  } catch { /* no network: the hub escalates without the receipt, as it should */ }
}

self.addEventListener("notificationclick", (event) => {
  const { call, trouble, associate, csrf, token } = event.notification.data || {};
  event.notification.close();
  if (trouble && event.action === "acknowledge") {
    // A pushed trouble carries the push token; one the page showed, the session's CSRF token.
    const request = token
      ? fetch("/api/v1/push/acknowledge", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token, trouble }),
      })
      : fetch(`/api/v1/troubles/${encodeURIComponent(trouble)}/acknowledge`, {
        method: "POST", headers: { "Content-Type": "application/json", ...(csrf ? { "X-Callbell-CSRF": csrf } : {}) },
        body: JSON.stringify({ associate, source: "phone" }),
      });
    event.waitUntil(request.catch(() => self.clients.openWindow("/phone")));
    return;
  }
  if (call && token && (event.action === "acknowledge" || event.action === "decline")) {
    // A pushed alert: the push's token stands for the session a locked phone does not have.
    event.waitUntil(fetch("/api/v1/push/act", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token, call, action: event.action }),
    }).catch(() => self.clients.openWindow("/phone")));
    return;
  }
  if (call && associate && (event.action === "acknowledge" || event.action === "decline")) {
    event.waitUntil(fetch(`/api/v1/calls/${encodeURIComponent(call)}/${event.action}`, {
      method: "POST",
      // The session cookie goes along (same origin); the CSRF token came with the notification.
      headers: { "Content-Type": "application/json", ...(csrf ? { "X-Callbell-CSRF": csrf } : {}) },
      body: JSON.stringify({ associate, source: "phone" }),
    }).catch(() => self.clients.openWindow("/phone")));
    return;
  }
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const page = open.find((c) => new URL(c.url).pathname === "/phone");
    if (page) return page.focus();
    return self.clients.openWindow("/phone");
  })());
});
