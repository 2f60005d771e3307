"""The floor screen (kiosk, /floor; issue 19 A) in Chromium: legible from 5 m at 1920 × 1080 —
every call card above the fold, timers of 48 px and more, the oldest and the overdue calls
biggest — a sound for a new call and for one turning overdue, fine at 360 px too; and the
display role: signed in once with a display token, it reads everything and acts on nothing.

Makes docs/images/floor-screen.png with CALLBELL_SCREENSHOTS=1."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
from hub.auth import digest, new_token
from hub.store import Credentials
from tests.browser import browser, mock_device, open_page, screenshot  # noqa: F401
from tests.helpers import running_hub, wait_until, write_store
from tests.test_ringing import RECORD_RINGS

pytestmark = pytest.mark.browser

FULL_HD = {"width": 1920, "height": 1080}
ALERT_TONES, URGENT_TONES = {880, 1175}, {1319, 988, 1568}  # dashboard/ringer.js


@pytest.fixture
def quick_store(tmp_path, broker):
    """Four rooms (one device's worth) and a 6 s standard, so calls turn overdue in the test."""
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), rooms=4, standard_s=6)
    with running_hub(path) as hub:
        rig = mock_device(hub.broker_url, tmp_path, rooms=(1, 2, 3, 4))
        try:
            yield hub, rig
        finally:
            rig.device.stop()


def tones(page) -> set[int]:
    return {round(t["hz"]) for t in page.evaluate("window.__tones")}


def test_at_1920_by_1080_the_calls_are_big_above_the_fold_and_sound_when_new_and_overdue(quick_store, browser):
    hub, rig = quick_store
    with open_page(browser, FULL_HD) as page:
        page.add_init_script(RECORD_RINGS)
        page.goto(f"http://127.0.0.1:{hub.http_port}/floor")
        expect(page.locator("body")).to_have_attribute("data-kiosk", "yes")
        # Chromium lets some pages start their audio without a tap (its autoplay policy): then
        # the button is never shown; else a tap on it turns the sound on.
        page.wait_for_function("document.getElementById('sound-on').hidden === false || "
                               "document.body.dataset.soundState === 'running'", timeout=10_000)
        if page.locator("#sound-on").is_visible():
            page.locator("#sound-on").click()
        expect(page.locator("#sound-on")).to_be_hidden()
        rig.press("room-1")
        wait_until(lambda: tones(page) >= ALERT_TONES, timeout=5, what="the new-call sound")
        assert not tones(page) & URGENT_TONES
        for room in ("room-2", "room-3"):
            rig.press(room)
        cards = page.locator("#calls .call")
        expect(cards).to_have_count(3, timeout=5000)
        expect(page.locator('#calls .call[data-size="large"]')).to_have_count(3, timeout=10_000)  # all overdue at 6 s
        wait_until(lambda: tones(page) & URGENT_TONES, timeout=5, what="the overdue sound")
        rig.press("room-4")  # a new call among overdue ones: normal size
        expect(cards).to_have_count(4, timeout=5000)
        new = page.locator('#calls .call:has(.room:text("Room 4"))')
        expect(new).to_have_attribute("data-size", "normal")
        for card in cards.all():
            box = card.bounding_box()
            assert box["y"] + box["height"] <= FULL_HD["height"], f"{card.inner_text()[:20]!r} falls below the fold"
            size = float(card.locator(".timer").evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
            assert size >= 48, f"a {size} px timer"
        big, small = cards.first.bounding_box(), new.bounding_box()
        assert big["width"] * big["height"] >= 1.8 * small["width"] * small["height"]
        assert page.locator("#calls .actions:visible").count() == 0  # read-only
        assert page.evaluate("document.documentElement.scrollWidth") <= FULL_HD["width"]
        screenshot(page, "floor-screen")


def test_at_360_px_the_floor_screen_does_not_scroll_sideways(quick_store, browser):
    hub, rig = quick_store
    with open_page(browser, {"width": 360, "height": 740}) as page:
        page.goto(f"http://127.0.0.1:{hub.http_port}/floor")
        rig.press("room-1")
        rig.press("room-2")
        expect(page.locator("#calls .call")).to_have_count(2, timeout=5000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        size = float(page.locator("#calls .call .timer").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
        assert size >= 48


def display_token(hub, name="floor-screen", role="display") -> str:
    token = new_token()
    Credentials(hub.config.database.path).add_token(name, role, digest(token), time.time())
    return token


def test_a_floor_screen_signs_in_once_with_its_display_token_reads_everything_and_acts_on_nothing(
        tmp_path, broker, browser):
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), demo=False)
    with running_hub(path) as hub:
        token = display_token(hub)
        manager_token = display_token(hub, "grafana", "manager")
        rig = mock_device(hub.broker_url, tmp_path)
        try:
            with open_page(browser, FULL_HD) as page:
                page.goto(f"http://127.0.0.1:{hub.http_port}/floor")
                page.fill("#auth-secret", manager_token)
                page.get_by_role("button", name="Show the floor").click()
                expect(page.locator("#auth-error")).to_contain_text("a floor screen takes a token of role display")
                page.fill("#auth-secret", token)
                page.get_by_role("button", name="Show the floor").click()
                expect(page.locator("body")).to_have_attribute("data-kiosk", "yes")
                rig.press("room-1")
                expect(page.locator("#calls .call .room")).to_have_text("Room 1", timeout=5000)
                session = page.evaluate("fetch('/api/v1/session').then(r => r.json())")
                assert session["signed_in"]["role"] == "display" and session["signed_in"]["associate"] == "floor-screen"
                # A year, not a shift: nobody signs the wall in again each morning.
                assert session["signed_in"]["expires_at"] - time.time() > 300 * 86400
                call_id = page.locator("#calls .call").get_attribute("data-id")
                answer = page.evaluate("""(id) => fetch(`/api/v1/calls/${id}/acknowledge`, {method: "POST",
                    headers: {"Content-Type": "application/json", "X-Callbell-CSRF": %r},
                    body: JSON.stringify({associate: "ana"})}).then(r => r.status)""" % session["csrf"], call_id)
                assert answer == 403
                page.reload()  # still signed in: the screen comes back by itself
                expect(page.locator("#calls .call .room")).to_have_text("Room 1", timeout=5000)
                Credentials(hub.config.database.path).revoke_token("floor-screen", time.time())
                again = page.evaluate("fetch('/api/v1/session').then(r => r.json())")
                assert again["signed_in"] is None  # revoking the token signs the screen out
        finally:
            rig.device.stop()
