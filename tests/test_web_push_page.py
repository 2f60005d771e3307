"""Web Push end to end in Chromium: the phone page subscribes, the hub pushes (checked and
decrypted by the tests' push service), the message is handed to the page's service worker with
DevTools' ServiceWorker.deliverPushMessage — as a browser's push service would hand it — and
the worker shows the alert, confirms it to the hub, and takes "On my way" from the notification.

Headless Chromium has no push service of its own (pushManager.subscribe() needs Google's), so
the page is given a subscription to the tests' push service instead (STUB_SUBSCRIPTION): that
is the one part of the path that is the browser vendor's, not ours."""
from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
from tests.browser import ON_SHIFT, PHONE, browser, mock_device, open_page  # noqa: F401
from tests.helpers import running_hub, wait_until, write_store
from tests.push_service import PushService
from tests.test_phone import sign_in

pytestmark = pytest.mark.browser

#: pushManager.subscribe() and getSubscription() answer with a subscription at the tests' push
#: service; everything else (the page's code, the hub, the worker) is the real thing.
STUB_SUBSCRIPTION = """
(() => {
  const sub = %s;
  let current = null;
  const make = (key) => ({
    endpoint: sub.endpoint, expirationTime: null, options: { userVisibleOnly: true, applicationServerKey: key.buffer },
    toJSON: () => sub, unsubscribe: async () => { current = null; return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    window.__subscribedWith = Array.from(new Uint8Array(options.applicationServerKey));
    current = make(new Uint8Array(options.applicationServerKey));
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
})();
"""


@pytest.fixture
def push_service():
    service = PushService().start()
    yield service
    service.stop()


@pytest.fixture
def hub(tmp_path, broker, push_service):
    extra = f"""
[alerts]
ring_repeat_s = 30
push_services = ["{push_service.origin}"]
"""
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), extra=extra)
    with running_hub(path) as h:
        yield h


@pytest.fixture
def device(hub, tmp_path):
    rig = mock_device(hub.broker_url, tmp_path)
    yield rig
    rig.device.stop()


class ServiceWorkers:
    """DevTools' ServiceWorker domain on a page: the registration id, and pushes delivered to it."""

    def __init__(self, page):
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.registrations: dict[str, str] = {}  # scope → id
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", self._updated)
        self.cdp.send("ServiceWorker.enable")

    def _updated(self, event):
        for r in event["registrations"]:
            if not r["isDeleted"]:
                self.registrations[r["scopeURL"]] = r["registrationId"]

    def deliver(self, origin: str, data: dict) -> None:
        reg = wait_until(lambda: next((i for s, i in self.registrations.items() if s.endswith("/phone")), None),
                         what="the phone page's service worker registered")
        self.cdp.send("ServiceWorker.deliverPushMessage",
                      {"origin": origin, "registrationId": reg, "data": json.dumps(data)})


def alert_of(hub, call_id: str) -> dict:
    return hub.api.ok("GET", f"/api/v1/calls/{call_id}")["alerted"][0]


def test_a_pushed_alert_reaches_a_closed_page_through_its_service_worker(hub, device, push_service, browser):
    phone = push_service.phone()
    base = f"http://127.0.0.1:{hub.http_port}"
    with open_page(browser, PHONE, grant=ON_SHIFT) as page:
        page.add_init_script(STUB_SUBSCRIPTION % json.dumps(phone.to_json()))
        workers = ServiceWorkers(page)
        sign_in(page, hub, "Ana")
        expect(page.locator("#push-status")).to_have_text("Locked-phone alerts: on.")
        key = hub.api.ok("GET", "/api/v1/push/key")["public_key"]
        from tests.push_service import b64url_decode
        assert page.evaluate("window.__subscribedWith") == list(b64url_decode(key))
        wait_until(lambda: hub.api.ok("GET", "/api/v1/associates/ana")["push"], what="Ana reachable by push")
        page.evaluate("navigator.serviceWorker.ready")
        page.goto("about:blank")  # the phone locked, the page closed: only the worker is left

        device.press("room-1")
        [msg] = push_service.wait_for(phone, 1)
        assert msg.payload["title"] == "Room 1 — Help" and msg.payload["receipt"] is True
        workers.deliver(base, msg.payload)
        alert = wait_until(lambda: (lambda a: a if a["shown_at"] else None)(alert_of(hub, msg.payload["call"])),
                           timeout=10, what="the worker's receipts")
        assert alert["delivered_at"] <= alert["shown_at"]

        # "On my way", tapped on the notification the worker showed.
        sw = wait_until(lambda: next((w for w in page.context.service_workers if w.url.endswith("/sw.js")), None),
                        what="the service worker")
        tapped = sw.evaluate("""async () => {
            const [n] = await self.registration.getNotifications();
            if (!n) return null;  // headless Chromium sometimes does not list it (tests/test_phone.py)
            self.dispatchEvent(new NotificationEvent("notificationclick", { notification: n, action: "acknowledge" }));
            return n.title;
        }""")
        if tapped is None:  # tap as the worker would, with the token the push carried
            hub.api.ok("POST", "/api/v1/push/act", {"token": msg.payload["token"], "call": msg.payload["call"],
                                                    "action": "acknowledge"})
        else:
            assert tapped == "Room 1 — Help"
        wait_until(lambda: hub.api.ok("GET", f"/api/v1/calls/{msg.payload['call']}")["acknowledged_by"] == "ana",
                   what="acknowledged from the notification")


def test_signing_out_removes_the_phones_subscription(hub, push_service, browser):
    phone = push_service.phone()
    with open_page(browser, PHONE, grant=ON_SHIFT) as page:
        page.add_init_script(STUB_SUBSCRIPTION % json.dumps(phone.to_json()))
        sign_in(page, hub, "Ana")
        expect(page.locator("#push-status")).to_have_text("Locked-phone alerts: on.")
        wait_until(lambda: hub.api.ok("GET", "/api/v1/associates/ana")["push"], what="subscribed")
        page.get_by_role("button", name="Sign out").click()
        wait_until(lambda: not hub.api.ok("GET", "/api/v1/associates/ana")["push"], what="unsubscribed")
        assert hub.push.subscriptions.of("ana") == []


def test_without_notifications_the_page_says_locked_phone_alerts_need_them(hub, browser):
    with open_page(browser, PHONE) as page:  # notifications not granted
        sign_in(page, hub, "Ana")
        expect(page.locator("#push-status")).to_have_text("Locked-phone alerts: allow notifications first.")
