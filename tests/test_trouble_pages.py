"""Troubles where people look, in Chromium against a real hub: a trouble (a fault of the system
itself: docs/dashboard.md#troubles) shows on the dashboard and on the floor screen with what,
where, since when and who was told; it rings on the phone page of the manager it alerted — the
same ringer as a call: sound, vibration, repeats — until she taps "Acknowledge"; and it is gone
from every page when it clears. The dashboard's device list is flagged from the hub's troubles.

What the page asks of the speaker and the vibration motor is recorded in the page
(tests/test_ringing.py RECORD_RINGS). The troubles are raised and cleared through the hub's
dispatcher (``report_trouble``, ``clear_trouble``), as the hub's own supervision does.

Makes docs/images/troubles-floor-screen.png and docs/images/troubles-phone.png with
CALLBELL_SCREENSHOTS=1."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
from tests.browser import DESK, ON_SHIFT, PHONE, browser, mock_device, open_page, screenshot  # noqa: F401
from tests.helpers import running_hub, wait_until, write_store
from tests.push_service import PushService
from tests.test_phone import sign_in
from tests.test_web_push_page import STUB_SUBSCRIPTION, ServiceWorkers
from tests.test_floor_screen import URGENT_TONES, tones
from tests.test_ringing import ALERT_BUZZ, RECORD_RINGS, rings

pytestmark = pytest.mark.browser

FULL_HD = {"width": 1920, "height": 1080}
#: A device nobody runs in these tests: nothing the hub hears can clear its trouble.
GONE = "pi-back"


@pytest.fixture
def hub(tmp_path, broker):
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), rooms=4,
                       extra="[alerts]\nring_repeat_s = 3\n")
    path.write_text(path.read_text().replace('id = "maria"\n', 'id = "maria"\nname = "Maria"\n'))
    with running_hub(path) as h:
        yield h


def open_troubles(hub) -> list[dict]:
    return hub.api.ok("GET", "/api/v1/troubles")["troubles"]


def test_a_trouble_rings_the_manager_until_acknowledged_shows_on_every_screen_and_goes_when_cleared(hub, browser):
    with open_page(browser, PHONE) as phone, open_page(browser, DESK) as dashboard, \
            open_page(browser, FULL_HD) as floor:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Maria")
        dashboard.goto(f"http://127.0.0.1:{hub.http_port}/")
        floor.goto(f"http://127.0.0.1:{hub.http_port}/floor")
        expect(floor.locator("body")).to_have_attribute("data-kiosk", "yes")
        expect(dashboard.locator("#troubles")).to_be_hidden()

        hub.dispatcher.report_trouble("device_silent", GONE, device=GONE, detail={"rooms": ["room-3", "room-4"], "silent_s": 31})
        [trouble] = wait_until(lambda: open_troubles(hub), what="the trouble open")
        assert [a["associate"] for a in trouble["alerted"]] == ["maria"]

        # The phone: at the top, ringing like a call until Acknowledge.
        card = phone.locator("#my-troubles .trouble")
        expect(card).to_have_count(1, timeout=3000)
        expect(card.locator(".trouble-title")).to_have_text("Device silent")
        expect(card.locator(".trouble-where")).to_have_text("pi-back · Room 3, Room 4")
        expect(card.locator(".ring")).to_have_text("🔔 Rings every 3 s until you tap Acknowledge")
        top = phone.locator("#my-troubles-section").bounding_box()
        assert top["y"] < phone.locator("#mine-title").bounding_box()["y"], "troubles come before the calls"
        wait_until(lambda: len(rings(phone)) >= 2, timeout=10, what="two rings")
        times = [r["t"] for r in rings(phone)]
        assert times[1] - times[0] >= 2900, "again every ring_repeat_s"
        assert all(r["vibrate"] == ALERT_BUZZ for r in rings(phone))
        assert phone.evaluate("window.__tones.length") >= 4  # two tones a ring

        # The dashboard and the floor screen: what, where, since when, who was told.
        for page in (dashboard, floor):
            row = page.locator("#trouble-list .trouble")
            expect(row).to_have_count(1, timeout=3000)
            expect(row.locator(".trouble-title")).to_have_text("Device silent")
            expect(row.locator(".trouble-where")).to_have_text("pi-back · Room 3, Room 4")
            expect(row.locator(".trouble-text")).to_have_text(trouble["text"])
            expect(row.locator(".trouble-since")).to_contain_text("since ")
            expect(row.locator(".trouble-alerted")).to_contain_text("Alerted: Maria")
            expect(row.locator(".trouble-state")).to_have_text("Waiting for Maria to acknowledge")
            expect(page.locator(f'#devices li[data-device="{GONE}"]')).to_have_attribute("data-trouble", "yes")
        title = floor.locator("#trouble-list .trouble-title")
        assert float(title.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 32, "legible from 5 m"
        assert floor.locator("#troubles").bounding_box()["y"] < floor.locator("#calls-title").bounding_box()["y"]
        screenshot(phone, "troubles-phone")

        card.get_by_role("button", name="Acknowledge").click()
        acked = phone.locator("#other-troubles .trouble")
        expect(acked).to_have_count(1)
        expect(acked.locator(".trouble-state")).to_contain_text("Acknowledged by you at ")
        expect(phone.locator("#my-troubles-section")).to_be_hidden()
        expect(dashboard.locator("#trouble-list .trouble-state")).to_contain_text("Acknowledged by Maria")
        assert open_troubles(hub)[0]["acknowledged_by"] == "maria"
        count = len(rings(phone))
        phone.wait_for_timeout(4000)  # more than a repeat
        assert len(rings(phone)) == count, "it rang after Acknowledge"

        hub.dispatcher.clear_trouble("device_silent", GONE)
        for page in (dashboard, floor):
            expect(page.locator("#troubles")).to_be_hidden(timeout=3000)
            expect(page.locator(f'#devices li[data-device="{GONE}"]')).to_have_count(0)
        expect(phone.locator("#other-troubles-section")).to_be_hidden()
        assert open_troubles(hub) == []


def test_a_trouble_open_when_the_phone_page_opens_rings_and_clearing_it_stops_the_ringing(hub, browser):
    hub.dispatcher.report_trouble("stuck_line", f"{GONE}/room-2/call", device=GONE, room="room-2",
                                  detail={"button": "call", "held_s": 31})
    wait_until(lambda: open_troubles(hub), what="the trouble open")
    with open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Maria")
        card = phone.locator("#my-troubles .trouble")
        expect(card.locator(".trouble-title")).to_have_text("Button stuck", timeout=3000)
        expect(card.locator(".trouble-where")).to_have_text("pi-back · Room 2")
        wait_until(lambda: rings(phone), timeout=5, what="the first ring")
        hub.dispatcher.clear_trouble("stuck_line", f"{GONE}/room-2/call")
        expect(phone.locator("#my-troubles-section")).to_be_hidden(timeout=3000)
        count = len(rings(phone))
        phone.wait_for_timeout(4000)  # more than a repeat
        assert len(rings(phone)) == count, "it rang after the trouble cleared"


def test_an_associate_not_alerted_sees_the_trouble_below_the_calls_without_ringing(hub, browser):
    with open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Ana")
        hub.dispatcher.report_trouble("device_silent", GONE, device=GONE)
        other = phone.locator("#other-troubles .trouble")
        expect(other).to_have_count(1, timeout=3000)
        expect(other.get_by_role("button", name="Acknowledge")).to_be_hidden()
        expect(phone.locator("#my-troubles-section")).to_be_hidden()
        assert other.bounding_box()["y"] > phone.locator("#all-title").bounding_box()["y"]
        assert rings(phone) == []


def test_with_sign_in_on_the_manager_acknowledges_from_her_phone_with_her_session(tmp_path, broker, browser):
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), demo=False)
    path.write_text(path.read_text().replace('id = "maria"\n', 'id = "maria"\nname = "Maria"\npin = "8642"\n'))
    with running_hub(path) as hub, open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Maria", pin="8642")
        hub.dispatcher.report_trouble("device_silent", GONE, device=GONE)
        card = phone.locator("#my-troubles .trouble")
        wait_until(lambda: rings(phone), timeout=10, what="the first ring")
        card.get_by_role("button", name="Acknowledge").click()
        acked = phone.locator("#other-troubles .trouble")
        expect(acked.locator(".trouble-state")).to_contain_text("Acknowledged by you", timeout=10_000)
        expect(acked.locator(".error")).to_be_hidden()
        # The pages see a batch before its commit; the hub's own list follows once it is stored.
        wait_until(lambda: [t["acknowledged_by"] for t in hub.dispatcher.open_troubles()] == ["maria"],
                   timeout=10, what="the acknowledgement stored as Maria's")


def test_the_device_list_flags_a_device_by_the_hubs_troubles_not_the_browsers_clock(hub, browser, tmp_path):
    rig = mock_device(hub.broker_url, tmp_path, rooms=(1, 2))
    try:
        with open_page(browser, DESK) as dashboard:
            dashboard.goto(f"http://127.0.0.1:{hub.http_port}/")
            li = dashboard.locator('#devices li[data-device="pi-floor"]')
            expect(li).to_have_text(re.compile(r"^● pi-floor: online"), timeout=3000)
            expect(li).to_have_attribute("data-trouble", "no")
            hub.dispatcher.report_trouble("stuck_line", "pi-floor/room-1/call", device="pi-floor", room="room-1",
                                          detail={"button": "call", "held_s": 31})
            expect(li).to_have_text(re.compile(r"^⚠ pi-floor: online.* — Button stuck$"), timeout=3000)
            expect(li).to_have_attribute("data-trouble", "yes")
            hub.dispatcher.clear_trouble("stuck_line", "pi-floor/room-1/call")
            expect(li).to_have_attribute("data-trouble", "no", timeout=3000)
    finally:
        rig.device.stop()


def test_a_configured_device_that_stops_is_a_trouble_on_the_dashboard_until_it_is_back(tmp_path, broker, browser):
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(),
                       extra='[[devices]]\nid = "pi-floor"\nrooms = ["room-1", "room-2"]\n')
    with running_hub(path) as hub, open_page(browser, DESK) as dashboard:
        rig = mock_device(hub.broker_url, tmp_path, rooms=(1, 2))
        try:
            dashboard.goto(f"http://127.0.0.1:{hub.http_port}/")
            li = dashboard.locator('#devices li[data-device="pi-floor"]')
            expect(li).to_have_attribute("data-trouble", "no", timeout=3000)
            rig.device.stop()  # a clean stop publishes offline, as the last will would
            row = dashboard.locator("#trouble-list .trouble")
            # Silent one heartbeat (10 s) after its goodbye, unless it is back (OFFLINE_GRACE_BEATS).
            expect(row.locator(".trouble-title")).to_have_text("Device silent", timeout=20_000)
            expect(row.locator(".trouble-where")).to_have_text("pi-floor · Room 1, Room 2")
            expect(li).to_have_text("⚠ pi-floor: OFFLINE — Device silent")
        finally:
            rig.device.stop()
        rig = mock_device(hub.broker_url, tmp_path, rooms=(1, 2))  # back
        try:
            expect(dashboard.locator("#troubles")).to_be_hidden(timeout=5000)
            expect(li).to_have_attribute("data-trouble", "no")
        finally:
            rig.device.stop()


def test_the_floor_screen_with_a_trouble_and_calls_at_1920_by_1080(hub, browser, tmp_path):
    """A new trouble sounds the urgent tones once; the picture for the docs: a silent device's
    trouble above the calls."""
    rig = mock_device(hub.broker_url, tmp_path, rooms=(1, 2))
    try:
        with open_page(browser, FULL_HD) as floor:
            floor.add_init_script(RECORD_RINGS)
            floor.goto(f"http://127.0.0.1:{hub.http_port}/floor")
            # Chromium lets some pages start audio without a tap; else a tap turns it on (test_floor_screen).
            # (Polled from here: a string polled in the page would be an eval, which the hub's CSP refuses.)
            wait_until(lambda: floor.evaluate("document.getElementById('sound-on').hidden === false || "
                                              "document.body.dataset.soundState === 'running'"),
                       timeout=10, what="the sound on, or a button to turn it on")
            if floor.locator("#sound-on").is_visible():
                floor.locator("#sound-on").click()
            for room in ("room-1", "room-2"):
                rig.press(room)
            expect(floor.locator("#calls .call")).to_have_count(2, timeout=5000)
            assert not tones(floor) & URGENT_TONES
            hub.dispatcher.report_trouble("device_silent", GONE, device=GONE, detail={"rooms": ["room-3", "room-4"], "silent_s": 31})
            expect(floor.locator("#trouble-list .trouble")).to_have_count(1, timeout=5000)
            wait_until(lambda: tones(floor) & URGENT_TONES, timeout=5, what="the trouble's sound")
            box = floor.locator("#troubles").bounding_box()
            assert box["y"] + box["height"] < FULL_HD["height"] / 3, "the trouble band leaves the calls the screen"
            assert floor.evaluate("document.documentElement.scrollWidth") <= FULL_HD["width"]
            screenshot(floor, "troubles-floor-screen")
    finally:
        rig.device.stop()


#: Records, in the service worker, every notification it shows (title and options).
RECORD_WORKER_NOTIFICATIONS = """() => {
  self.__shown = [];
  const show = self.registration.showNotification.bind(self.registration);
  self.registration.showNotification = (title, options) => {
    self.__shown.push({ title, options: JSON.parse(JSON.stringify(options)) });
    return show(title, options);
  };
}"""


def test_a_pushed_trouble_reaches_a_closed_page_and_acknowledge_on_the_notification_takes_it(tmp_path, broker, browser):
    service = PushService().start()
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(),
                       extra=f'[alerts]\nring_repeat_s = 30\npush_services = ["{service.origin}"]\n')
    path.write_text(path.read_text().replace('id = "maria"\n', 'id = "maria"\nname = "Maria"\n'))
    try:
        with running_hub(path) as hub, open_page(browser, PHONE, grant=ON_SHIFT) as page:
            phone = service.phone()
            page.add_init_script(STUB_SUBSCRIPTION % json.dumps(phone.to_json()))
            workers = ServiceWorkers(page)
            sign_in(page, hub, "Maria")
            expect(page.locator("#push-status")).to_have_text("Locked-phone alerts: on.")
            wait_until(lambda: hub.api.ok("GET", "/api/v1/associates/maria")["push"], what="Maria reachable by push")
            page.evaluate("navigator.serviceWorker.ready")
            page.goto("about:blank")  # the phone locked, the page closed: only the worker is left

            sw = wait_until(lambda: next((w for w in page.context.service_workers if w.url.endswith("/sw.js")), None),
                            what="the service worker")
            sw.evaluate(RECORD_WORKER_NOTIFICATIONS)
            hub.dispatcher.report_trouble("device_silent", GONE, device=GONE, detail={"rooms": ["room-3"]})
            [msg] = service.wait_for(phone, 1)
            assert msg.payload["kind"] == "trouble"
            workers.deliver(f"http://127.0.0.1:{hub.http_port}", msg.payload)
            [shown] = wait_until(lambda: sw.evaluate("self.__shown"), timeout=5, what="the worker shows the trouble")
            assert shown["title"] == "⚠ Trouble — Device silent"
            assert [a["title"] for a in shown["options"]["actions"]] == ["Acknowledge"]
            assert shown["options"]["data"] == {"trouble": msg.payload["trouble"], "token": msg.payload["token"]}
            # "Acknowledge", tapped on the notification the worker showed.
            tapped = sw.evaluate("""async (tag) => {
                const [n] = await self.registration.getNotifications({ tag });
                if (!n) return false;  // headless Chromium sometimes does not list it (tests/test_phone.py)
                self.dispatchEvent(new NotificationEvent("notificationclick", { notification: n, action: "acknowledge" }));
                return true;
            }""", msg.payload["trouble"])
            if not tapped:  # tap as the worker would, with what it was given
                hub.api.ok("POST", "/api/v1/push/acknowledge", {"token": msg.payload["token"],
                                                                "trouble": msg.payload["trouble"]})
            wait_until(lambda: hub.api.ok("GET", "/api/v1/troubles")["troubles"][0]["acknowledged_by"] == "maria",
                       what="acknowledged from the notification")
    finally:
        service.stop()
