"""An alert reaches a person, in Chromium: it rings until they act (or someone else does), a
reminder or an overdue call rings with the urgent pattern, the phone confirms each alert to
the hub, a phone that falls silent is unreachable, and signing out ends the shift.

What the page asks of the speaker and the vibration motor is recorded in the page
(RECORD_RINGS): that is what a person would hear and feel."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
from callbell.clock import FakeClock
from tests.browser import DESK, ON_SHIFT, PHONE, browser, mock_device, open_page  # noqa: F401
from tests.helpers import running_hub, wait_until, write_store
from tests.test_phone import sign_in

pytestmark = pytest.mark.browser

#: Records every vibration and every tone the page starts, with the browser's time (ms).
RECORD_RINGS = """
window.__rings = [];
window.__tones = [];
Object.defineProperty(Navigator.prototype, "vibrate", { configurable: true, value(pattern) {
  window.__rings.push({ t: Date.now(), vibrate: Array.from(pattern) });
  return true;
}});
const make = BaseAudioContext.prototype.createOscillator;
BaseAudioContext.prototype.createOscillator = function () {
  const osc = make.call(this);
  const start = osc.start.bind(osc);
  osc.start = (when) => { window.__tones.push({ t: Date.now(), hz: osc.frequency.value }); return start(when); };
  return osc;
};
"""

ALERT_BUZZ = [300, 150, 300, 150, 600]             # dashboard/ringer.js PATTERNS.alert
URGENT_BUZZ = [700, 120, 700, 120, 700, 120, 1400]  # PATTERNS.urgent

ALERTS = """
[alerts]
ring_repeat_s = 3
presence_s = 10
"""


@pytest.fixture
def store_file(tmp_path, broker):
    return write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), extra=ALERTS)


@pytest.fixture
def device(hub, tmp_path):
    rig = mock_device(hub.broker_url, tmp_path)
    yield rig
    rig.device.stop()


def rings(page) -> list[dict]:
    return page.evaluate("window.__rings")


def open_call(hub, room: str) -> dict:
    return wait_until(lambda: next((c for c in hub.api.ok("GET", "/api/v1/calls?status=open") if c["room"] == room), None),
                      what=f"{room}'s call stored")


def test_an_alert_rings_again_every_ring_repeat_s_until_on_my_way(hub, device, browser):
    with open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Ana")
        device.press("room-1")
        card = phone.locator("#mine .call")
        expect(card.locator(".ring")).to_have_text("🔔 Rings every 3 s until you tap On my way or Not me", timeout=3000)
        wait_until(lambda: len(rings(phone)) >= 3, timeout=20, what="three rings")
        times = [r["t"] for r in rings(phone)]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= 2900 for g in gaps), gaps  # every 3 s, not faster
        assert all(r["vibrate"] == ALERT_BUZZ for r in rings(phone))
        assert phone.evaluate("window.__tones.length") >= 6  # two tones a ring
        card.get_by_role("button", name="On my way").click()
        expect(card.locator(".ring")).to_be_hidden()
        count = len(rings(phone))
        phone.wait_for_timeout(4000)  # more than a repeat
        assert len(rings(phone)) == count, "it rang after On my way"


def test_someone_else_taking_the_call_stops_the_ringing(hub, device, browser):
    with open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Ana")
        device.press("room-2")
        wait_until(lambda: rings(phone), timeout=5, what="the first ring")
        call = open_call(hub, "room-2")
        hub.api.ok("POST", f"/api/v1/calls/{call['id']}/acknowledge", {"associate": "ben", "source": "dashboard"})
        expect(phone.locator("#all .call .who")).to_have_text("Ben is on the way")
        count = len(rings(phone))
        phone.wait_for_timeout(4000)
        assert len(rings(phone)) == count


def test_not_me_stops_the_ringing_and_the_card_says_so(hub, device, browser):
    with open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Ana")
        device.press("room-1")
        phone.locator("#mine .call").get_by_role("button", name="Not me").click()
        expect(phone.locator("#all .call .who")).to_have_text("You said not me")
        count = len(rings(phone))
        phone.wait_for_timeout(4000)
        assert len(rings(phone)) == count


def test_a_reminder_press_rings_at_once_with_the_urgent_pattern(hub, device, browser):
    with open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        sign_in(phone, hub, "Ana")
        device.press("room-3")
        [first] = wait_until(lambda: rings(phone), timeout=5, what="the first ring")
        assert first["vibrate"] == ALERT_BUZZ
        tones = {t["hz"] for t in phone.evaluate("window.__tones")}
        assert tones == {880, 1175}
        pressed = time.time()
        device.press("room-3")  # the shopper presses again
        urgent = wait_until(lambda: [r for r in rings(phone) if r["vibrate"] == URGENT_BUZZ], timeout=5,
                            what="an urgent ring")
        # At once, not at the next repeat: well before the 3 s a repeat would take.
        assert urgent[0]["t"] / 1000 - pressed < 2.5, urgent[0]["t"] / 1000 - pressed
        assert {1319, 988, 1568} <= {t["hz"] for t in phone.evaluate("window.__tones")}
        expect(phone.locator("#mine .call .reason")).to_contain_text("pressed 2×")


def test_the_phone_confirms_each_alert_to_the_hub(hub, device, browser):
    with open_page(browser, PHONE) as phone:
        sign_in(phone, hub, "Ana")
        device.press("room-1")
        call = open_call(hub, "room-1")

        def receipted():
            [a] = hub.api.ok("GET", f"/api/v1/calls/{call['id']}")["alerted"]
            return a if a["delivered_at"] and a["shown_at"] else None
        alert = wait_until(receipted, timeout=5, what="delivered and shown receipts")
        assert alert["associate"] == "ana" and alert["delivered_at"] >= alert["at"]
        ana = hub.api.ok("GET", "/api/v1/associates/ana")
        assert ana["heard_at"] is not None and ana["reachable"] is True


def test_an_alert_waiting_when_the_page_opens_rings_however_old_it_is(tmp_path, broker, browser):
    clock = FakeClock(time.time())
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), extra=ALERTS)
    with running_hub(path, clock=clock) as hub, open_page(browser, PHONE) as phone:
        phone.add_init_script(RECORD_RINGS)
        hub.api.ok("POST", "/api/v1/associates/ana/state", {"state": "available"})
        rig = mock_device(hub.broker_url, tmp_path)
        try:
            rig.press("room-1")
            call = open_call(hub, "room-1")
            assert [a["associate"] for a in call["alerted"]] == ["ana"]
            clock.advance(75)  # the alert is 75 s old by the hub's clock when the page opens
            sign_in(phone, hub, "Ana")
            wait_until(lambda: rings(phone), timeout=5, what="a ring for the waiting alert")
        finally:
            rig.device.stop()


def test_signing_out_ends_the_shift(hub, browser):
    with open_page(browser, PHONE) as phone:
        sign_in(phone, hub, "Ana")
        wait_until(lambda: hub.api.ok("GET", "/api/v1/associates/ana")["declared"] == "available", what="on shift")
        phone.get_by_role("button", name="Sign out").click()
        expect(phone.locator("#sign-in")).to_be_visible()
        wait_until(lambda: hub.api.ok("GET", "/api/v1/associates/ana")["declared"] == "off", what="off shift")


def test_a_phone_that_falls_silent_is_unreachable_skipped_and_shown_on_the_floor_screen(hub, device, browser):
    with open_page(browser, DESK) as floor:
        floor.goto(f"http://127.0.0.1:{hub.http_port}/")
        with open_page(browser, PHONE) as phone:
            sign_in(phone, hub, "Ana")
            wait_until(lambda: hub.api.ok("GET", "/api/v1/associates/ana")["heard_at"], what="the phone heard")
            expect(floor.locator('#people li[data-person="ana"]')).to_have_text("● Ana: available · a")
        # The phone's page is gone (closed, flat, out of range) without signing out.
        expect(floor.locator('#people li[data-person="ana"]')).to_have_text("⚠ Ana: phone unreachable · a",
                                                                           timeout=15_000)
        ana = hub.api.ok("GET", "/api/v1/associates/ana")
        assert (ana["state"], ana["declared"], ana["reachable"]) == ("unreachable", "available", False)
        hub.api.ok("POST", "/api/v1/associates/ben/state", {"state": "available"})
        device.press("room-1")  # Ana's zone, but her phone is gone: Ben is asked
        call = open_call(hub, "room-1")
        assert [a["associate"] for a in call["alerted"]] == ["ben"]
