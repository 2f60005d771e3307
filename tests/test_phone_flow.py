"""Phone page flow fixes (issue 19 C), in Chromium: an offline tap says so and is tried again;
a wrong PIN is cleared; a declined call says so; 200 % text leaves the screen to the alerts."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
from tests.browser import PHONE, browser, mock_device, open_page, screenshot  # noqa: F401
from tests.helpers import running_hub, wait_until, write_store
from tests.test_phone import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def device(hub, tmp_path):
    rig = mock_device(hub.broker_url, tmp_path)
    yield rig
    rig.device.stop()


def test_a_tap_while_offline_says_so_and_goes_through_once_back(hub, device, browser):
    with open_page(browser, PHONE) as phone:
        sign_in(phone, hub, "Ana")
        device.press("room-1")
        card = phone.locator("#mine .call")
        expect(card).to_have_count(1, timeout=3000)
        phone.context.set_offline(True)
        card.get_by_role("button", name="On my way").click()
        expect(card.locator(".error")).to_have_text("No connection to the hub — trying again…")
        phone.context.set_offline(False)
        wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open")[0]["acknowledged_by"] == "ana",
                   timeout=10, what="the tap through once online")
        expect(card.locator(".error")).to_be_hidden()
        expect(card.locator(".who")).to_have_text("You are on the way")


def test_a_wrong_pin_is_cleared_for_the_next_try(tmp_path, broker, browser):
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    path.write_text(path.read_text().replace('id = "ana"\nname = "Ana"', 'id = "ana"\nname = "Ana"\npin = "4321"'))
    with running_hub(path) as hub, open_page(browser, PHONE) as phone:
        phone.goto(f"http://127.0.0.1:{hub.http_port}/phone")
        phone.get_by_role("radio", name="Ana").click()
        phone.fill("#pin", "1111")
        phone.get_by_role("button", name="Start").click()
        expect(phone.locator("#sign-in-error")).to_have_text("wrong PIN")
        expect(phone.locator("#pin")).to_have_value("")


def _text_size(page, percent: int) -> None:
    """The browser's text size setting (Chromium's default font size; 16 px is 100 %), as a
    person with low vision sets it: the page must follow it, not pin its own size in px."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Page.setFontSizes", {"fontSizes": {"standard": 16 * percent // 100, "fixed": 13 * percent // 100}})


def _covered(page) -> float:
    """Share of the screen's height covered by what stays put when the page scrolls."""
    return page.evaluate("""() => {
        let px = 0;
        for (const e of document.querySelectorAll('body *')) {
            const s = getComputedStyle(e);
            if ((s.position === 'sticky' || s.position === 'fixed') && e.offsetParent !== null || s.position === 'fixed') {
                const r = e.getBoundingClientRect();
                if (r.height && r.bottom > 0 && r.top < innerHeight) px += Math.min(r.bottom, innerHeight) - Math.max(r.top, 0);
            }
        }
        return px / innerHeight;
    }""")


@pytest.fixture
def store_hub(tmp_path, broker):
    """A store as installed: sign-in on (no demo banner), Ana with a PIN."""
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), demo=False)
    path.write_text(path.read_text().replace('id = "ana"\nname = "Ana"', 'id = "ana"\nname = "Ana"\npin = "4321"'))
    with running_hub(path) as hub:
        yield hub


def test_at_200_percent_text_the_controls_leave_the_screen_to_the_alerts(store_hub, browser, tmp_path):
    hub = store_hub
    device = mock_device(hub.broker_url, tmp_path)
    with open_page(browser, PHONE) as phone:
        _text_size(phone, 200)
        sign_in(phone, hub, "Ana", pin="4321")
        assert phone.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)") >= 32
        device.press("room-1")
        card = phone.locator("#mine .call")
        expect(card).to_have_count(1, timeout=3000)
        screenshot(phone, "phone-text-200")
        # who is signed in reads whole, not "An…"
        assert phone.evaluate("(e => e.scrollWidth <= e.clientWidth && e.scrollHeight <= e.clientHeight)"
                              "(document.querySelector('header .me'))"), "the name is cut off"
        expect(phone.locator("#my-name")).to_be_in_viewport(ratio=1)
        # my alert is on the first screen, above the one-time prompts
        expect(card.get_by_role("button", name="On my way")).to_be_in_viewport()
        assert _covered(phone) <= 0.25, f"{_covered(phone):.0%} of the screen stays covered at 200 % text"
        wide = phone.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth)"
                              ".map(e => `${e.tagName}#${e.id}.${e.className} ${e.getBoundingClientRect().right}`)")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide
        # the controls are still there, at the end of the page
        phone.get_by_role("button", name="Start break").scroll_into_view_if_needed()
        expect(phone.get_by_role("button", name="Start break")).to_be_in_viewport()

    with open_page(browser, PHONE) as phone:  # at 100 % they stay in thumb reach, at the bottom
        sign_in(phone, hub, "Ana", pin="4321")
        box = phone.get_by_role("button", name="Start break").bounding_box()
        assert box["y"] + box["height"] <= PHONE["height"] and box["y"] > PHONE["height"] / 2
    device.device.stop()
