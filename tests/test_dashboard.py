"""The floor dashboard in a real browser (Debian's Chromium driven by Playwright), against the
real hub and a device on mock pins."""
import re
import time

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
# browser is a fixture; CHROMIUM_ARGS and chromium_path are imported from here by older tests.
from tests.browser import CHROMIUM_ARGS, DESK, browser, chromium_path, mock_device, open_page, screenshot  # noqa: F401
from tests.helpers import ROOT, Recorder, event, running_hub, wait_until

pytestmark = pytest.mark.browser



@pytest.fixture
def page(browser):
    with open_page(browser, DESK) as page:
        yield page


@pytest.fixture
def device(hub, tmp_path):
    rig = mock_device(hub.broker_url, tmp_path)
    yield rig
    rig.device.stop()


def test_a_press_shows_on_the_dashboard_within_a_second_and_acknowledging_turns_the_lamp(hub, device, page):
    page.goto(f"http://127.0.0.1:{hub.http_port}/")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#demo-banner")).to_be_visible()  # demo mode says so on the page
    page.select_option("#me", "ben")

    device.press("room-2")
    card = page.locator('.call:has(.room:text("Room 2"))')
    expect(card).to_be_visible(timeout=1000)
    expect(card.locator(".who")).to_have_text("Waiting for someone")
    expect(card.locator(".timer")).to_have_attribute("data-verdict", "ok")
    spot = page.locator('.room-spot[data-room="room-2"]')  # the floor plan too
    expect(spot).to_have_attribute("data-verdict", "ok", timeout=1000)

    card.get_by_role("button", name="On my way").click()
    expect(card.locator(".who")).to_have_text("Ben is on the way")
    expect(spot).to_have_attribute("data-status", "acknowledged")
    expect(spot.locator(".room-who")).to_have_text("→ B")
    wait_until(lambda: device.state("room-2") == ("acknowledged", "acknowledged"), what="lamp acknowledged")

    device.press("room-2", role="presence")
    expect(card.locator(".who")).to_have_text("Ben is at the room")
    card.get_by_role("button", name="Done").click()
    expect(card).to_have_count(0)
    expect(page.locator("#recent li")).to_contain_text("Room 2 — done")
    expect(spot).to_have_attribute("data-verdict", "idle")


def test_a_room_turns_amber_then_red_against_the_standard_and_says_so_in_words(hub, page):
    recorder = Recorder(hub.broker_url, [])
    try:
        page.goto(f"http://127.0.0.1:{hub.http_port}/")
        expect(page.locator("#empty")).to_be_visible()
        recorder.publish("callbell/test-store/room/room-1/event", event("t-1", age_ms=65_000))  # 2/3 of 90 s
        recorder.publish("callbell/test-store/room/room-3/event", event("t-2", age_ms=95_000, reason="size"))
        near = page.locator('.room-spot[data-room="room-1"]')
        late = page.locator('.room-spot[data-room="room-3"]')
        expect(near).to_have_attribute("data-verdict", "near", timeout=2000)
        expect(late).to_have_attribute("data-verdict", "late")
        expect(late.locator(".room-who")).to_have_text("⇅")  # the reason's icon: size
        expect(late.locator(".room-time")).to_have_text(re.compile(r"1:3\d"))
        card = page.locator('.call:has(.room:text("Room 3"))')
        expect(card.locator(".verdict")).to_have_text("over standard")  # text, not only colour
        expect(page.locator('.call:has(.room:text("Room 1")) .verdict')).to_have_text("nearing standard")
    finally:
        recorder.close()


def test_the_dashboard_shows_associates_device_faults_and_today_s_figures(hub, device, page):
    hub.api.ok("POST", "/api/v1/associates/ana/state", {"state": "available"})
    hub.api.ok("POST", "/api/v1/associates/ben/state", {"state": "break"})
    page.goto(f"http://127.0.0.1:{hub.http_port}/")
    expect(page.locator('#people li[data-person="ana"]')).to_contain_text("Ana: available")
    expect(page.locator('#people li[data-person="ben"]')).to_contain_text("Ben: break")
    expect(page.locator('.person[data-person="ana"]')).to_have_count(1)  # a dot on the plan
    expect(page.locator('.person[data-person="ben"]')).to_have_attribute("data-state", "break")

    device.press("room-1")
    card = page.locator('.call:has(.room:text("Room 1"))')
    expect(card.locator(".asked")).to_have_text("Asked: Ana", timeout=2000)  # who the hub alerted
    for verb in ("answer", "done"):  # at the door, then finished: a response time for the figures
        hub.api.ok("POST", f"/api/v1/calls/{card.get_attribute('data-id')}/{verb}", {"associate": "ana"})
    expect(page.locator("#fig-calls")).to_have_text("1", timeout=5000)
    expect(page.locator("#fig-median")).not_to_have_text("–")
    expect(page.locator("#fig-share")).to_have_text("100 %")
    expect(page.locator("a.stats-link")).to_have_attribute("href", "/stats")

    expect(page.locator("#troubles")).to_be_hidden()
    device.device.stop()  # a clean stop publishes offline, as the last will would
    # The broker's word; whether it is a fault is the hub's troubles' (tests/test_trouble_pages.py).
    expect(page.locator("#devices li")).to_contain_text("pi-floor: OFFLINE", timeout=3000)
    # The hub raises the trouble one heartbeat (10 s) after its goodbye unless it is back
    # (OFFLINE_GRACE_BEATS: a restart pages nobody), and retiring it clears it.
    expect(page.locator("#trouble-list .trouble-title")).to_have_text("Device silent", timeout=20_000)
    expect(page.locator('#devices li[data-device="pi-floor"]')).to_have_attribute("data-trouble", "yes")
    hub.api.ok("POST", "/api/v1/devices/pi-floor/retire")  # taken out of service: no longer OFFLINE for ever
    expect(page.locator("#devices li")).to_have_count(0, timeout=3000)
    expect(page.locator("#troubles")).to_be_hidden()


def test_a_configured_device_that_never_connected_is_listed_as_such(tmp_path, broker, page):
    from tests.helpers import write_store
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(),
                        extra='[[devices]]\nid = "pi-gone"\nrooms = ["room-1"]\nheartbeat_s = 0.5\n')
    with running_hub(store) as hub:
        page.goto(f"http://127.0.0.1:{hub.http_port}/")
        # Listed at once; flagged once the hub raises its trouble (after 3 heartbeats).
        expect(page.locator("#devices li")).to_have_text("⚠ pi-gone: NEVER CONNECTED", timeout=5000)
        expect(page.locator("#trouble-list .trouble-title")).to_have_text("Device never connected")


def test_the_list_view_is_the_default_on_a_small_screen(hub, browser):
    with open_page(browser, {"width": 400, "height": 800}) as page:
        page.goto(f"http://127.0.0.1:{hub.http_port}/")
        expect(page.locator("#floor")).to_be_hidden()
        expect(page.locator("#empty")).to_be_visible()
        page.get_by_role("button", name="Plan").click()
        expect(page.locator("#floor")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 400


def test_the_page_shows_a_reconnecting_banner_and_catches_up_when_the_stream_drops(hub, device, page):
    page.goto(f"http://127.0.0.1:{hub.http_port}/")
    device.press("room-1")
    expect(page.locator(".call")).to_have_count(1, timeout=2000)
    hub.stream.close()  # every open stream ends, as when the hub stops
    expect(page.locator("#offline-banner")).to_be_visible(timeout=3000)
    device.press("room-3")  # happens while the page is away
    expect(page.locator("#offline-banner")).to_be_hidden(timeout=10_000)
    expect(page.locator(".call")).to_have_count(2, timeout=5000)  # caught up, no duplicate rows
    device.press("room-1")  # a reminder: the same card, not a new one
    room1 = page.locator('.call:has(.room:text("Room 1"))')
    expect(room1.locator(".urgency")).to_have_text("pressed 2×", timeout=3000)
    expect(page.locator(".call")).to_have_count(2)


def test_a_real_hub_restart_leaves_the_page_correct_after_it_reconnects(store_file, broker, tmp_path, page):
    rig = mock_device(broker.url, tmp_path, hub_up=False)
    try:
        with running_hub(store_file) as first:
            wait_until(lambda: not rig.device.fault, what="device sees the hub")
            page.goto(f"http://127.0.0.1:{first.http_port}/")
            rig.press("room-1")
            expect(page.locator(".call")).to_have_count(1, timeout=2000)
            port = first.http_port
        # The hub is stopped: its HTTP port is closed, its stream ended.
        expect(page.locator("#offline-banner")).to_be_visible(timeout=3000)
        rig.press("room-3")  # waits at the broker for the hub's persistent session
        rig.press("room-1")  # a reminder for the call the page already shows
        time.sleep(0.5)
        with running_hub(store_file) as second:  # a new hub: same port, same database
            assert second.http_port == port
            expect(page.locator("#offline-banner")).to_be_hidden(timeout=15_000)
            expect(page.locator(".call")).to_have_count(2, timeout=5000)
            room1 = page.locator('.call:has(.room:text("Room 1"))')
            expect(room1).to_have_count(1)  # no duplicate row
            expect(room1.locator(".urgency")).to_have_text("pressed 2×", timeout=3000)
            room3 = page.locator('.call:has(.room:text("Room 3"))')
            second.api.ok("POST", f"/api/v1/calls/{room3.get_attribute('data-id')}/acknowledge", {"associate": "ana"})
            expect(room3.locator(".who")).to_have_text("Ana is on the way", timeout=2000)
    finally:
        rig.device.stop()


def demo_store(folder, broker_url: str) -> "tuple":
    """The demo store of examples/store.toml (its floor plan), on a free port and the test broker."""
    text = (ROOT / "examples" / "store.toml").read_text()
    port = free_port()
    text = text.replace('host = "0.0.0.0"\nport = 8080', f'host = "127.0.0.1"\nport = {port}')
    text = text.replace('prefix = "callbell"', f'prefix = "callbell"\nurl = "{broker_url}"', 1)
    path = folder / "store.toml"
    path.write_text(text)
    return path, port


def test_the_demo_store_on_the_floor_plan(broker, tmp_path, browser):
    """Also makes docs/images/dashboard.png with CALLBELL_SCREENSHOTS=1."""
    path, port = demo_store(tmp_path, broker.url)
    recorder = Recorder(broker.url, [])
    t = "callbell/demo-store"
    with running_hub(path) as hub, open_page(browser, DESK) as page:
        recorder.publish(f"{t}/associate/dev/location", {"x": 34, "y": 14}, qos=0, expiry_s=None)
        recorder.publish(f"{t}/room/fitting-2/event", event("s-1", age_ms=64_000))
        recorder.publish(f"{t}/room/fitting-6/event", event("s-2", age_ms=101_000, reason="size"))
        recorder.publish(f"{t}/room/fitting-6/event", event("s-3", age_ms=30_000))
        recorder.publish(f"{t}/room/fitting-7/event", event("s-4", age_ms=12_000))
        recorder.publish(f"{t}/room/fitting-4/event", event("s-5", age_ms=40_000))
        wait_until(lambda: len(hub.api.ok("GET", "/api/v1/calls?status=open")) == 4, what="four calls")
        calls = {c["room"]: c["id"] for c in hub.api.ok("GET", "/api/v1/calls?status=open")}
        hub.api.ok("POST", f"/api/v1/calls/{calls['fitting-4']}/acknowledge", {"associate": "ben"})
        hub.api.ok("POST", "/api/v1/associates/ana/state", {"state": "break"})
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator(".room-spot")).to_have_count(8)
        expect(page.locator('.room-spot[data-room="fitting-6"]')).to_have_attribute("data-verdict", "late")
        expect(page.locator('.room-spot[data-room="fitting-2"]')).to_have_attribute("data-verdict", "near")
        expect(page.locator('.room-spot[data-room="fitting-4"] .room-who')).to_have_text("→ B")
        expect(page.locator('.person[data-person="dev"]')).to_have_count(1)
        expect(page.locator(".zone-label")).to_have_count(2)
        page.wait_for_timeout(300)
        screenshot(page, "dashboard")
    recorder.close()
