"""The floor dashboard in a real browser (Debian's Chromium driven by Playwright), against the
real hub and a device on mock pins."""
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from firmware.config import DeviceConfig, DeviceSection, RoomPins
from tests.test_device import Rig
from tests.helpers import wait_until

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is not installed: run scripts/setup (apt-get install chromium)"
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def device(hub, tmp_path):
    config = DeviceConfig(
        device=DeviceSection(id="pi-floor", store="test-store", broker=hub.broker_url,
                             outbox=tmp_path / "outbox.db", debounce_ms=10),
        rooms=[RoomPins(id=f"room-{i}", slot=i) for i in (1, 2, 3)])
    rig = Rig(config)
    rig.device.start()
    wait_until(lambda: not rig.device.fault, what="device sees the hub")
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

    card.get_by_role("button", name="On my way").click()
    expect(card.locator(".who")).to_have_text("Ben is on the way")
    wait_until(lambda: device.state("room-2") == ("acknowledged", "acknowledged"), what="lamp acknowledged")

    device.press("room-2", role="presence")
    expect(card.locator(".who")).to_have_text("Ben is at the room")
    card.get_by_role("button", name="Done").click()
    expect(card).to_have_count(0)
    expect(page.locator("#recent li")).to_contain_text("Room 2 — done")


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
