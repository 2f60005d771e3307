// Callbell phone page service worker: makes the page installable and usable for a moment
// offline (the page itself shows "reconnecting"), and handles taps on alert notifications:
// "On my way" / "Not me" call the hub's API without opening the page.
//
// Network first, always: the page must never run stale code against a newer hub. The cache is
// only a fallback for when the hub cannot be reached. The API and the event stream pass through.

const CACHE = "callbell-phone-v3";
const SHELL = ["/phone", "/static/phone.js", "/static/phone.css", "/static/live.js", "/static/auth.js",
               "/static/ringer.js",
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

self.addEventListener("notificationclick", (event) => {
  const { call, associate, csrf } = event.notification.data || {};
  event.notification.close();
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
