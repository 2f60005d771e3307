"""Phone page flow fixes (issue 19 C), in Chromium: an offline tap says so and is tried again;
a wrong PIN is cleared; a declined call says so."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
from tests.browser import PHONE, browser, mock_device, open_page  # noqa: F401
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
