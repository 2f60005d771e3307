"""Sign-in on the pages in a real browser (Debian's Chromium driven by Playwright) against the
real hub with authentication on, and the demo banner with it off (docs/security.md)."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from callbell.broker import free_port
from callbell.clock import FakeClock
from callbell.protocol import Topics
from hub.api.routes import session
from tests.browser import DESK, PHONE, browser, open_page  # noqa: F401  (browser is a fixture)
from tests.helpers import Recorder, event, running_hub, write_store
from tests.test_auth import MARIA_PASSWORD, secured_store

pytestmark = pytest.mark.browser


@pytest.fixture
def secured(tmp_path, broker, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())  # lockouts of other tests
    with running_hub(secured_store(tmp_path, broker.url)) as hub:
        hub.url = f"http://127.0.0.1:{hub.http_port}"
        yield hub


def sign_in(page, who: str, secret: str) -> None:
    page.select_option("#auth-who", who)
    page.fill("#auth-secret", secret)
    page.get_by_role("button", name="Sign in").click()


def press(broker_url: str, room: str) -> None:
    r = Recorder(broker_url, [])
    try:
        r.publish(Topics("callbell", "test-store").event(room), event(f"p-{room}-{time.monotonic_ns()}"))
    finally:
        r.close()


def test_the_floor_page_asks_for_sign_in_and_a_manager_then_sees_and_acts_on_the_floor(secured, broker, browser):
    with open_page(browser, DESK) as page:
        page.goto(secured.url + "/")
        expect(page.locator("#auth-form")).to_be_visible()
        expect(page.locator("#floor")).to_be_hidden()
        expect(page.locator("#demo-banner")).to_be_hidden()
        sign_in(page, "maria", "not-her-password")
        expect(page.locator("#auth-error")).to_have_text("wrong name or password")
        sign_in(page, "maria", MARIA_PASSWORD)
        expect(page.locator("#auth-who-am-i")).to_have_text("Signed in as maria (manager)")
        expect(page.locator("#floor")).to_be_visible()
        expect(page.locator("#manager")).to_be_visible()  # today's figures: a manager reads them
        page.select_option("#me", "ben")
        press(broker.url, "room-2")  # the stream works with the session cookie
        card = page.locator('.call:has(.room:text("Room 2"))')
        expect(card).to_be_visible(timeout=3000)
        card.get_by_role("button", name="On my way").click()  # a POST with the CSRF header
        expect(card.locator(".who")).to_have_text("Ben is on the way")
        expect(card.locator(".error")).to_be_hidden()
        cookie = next(c for c in page.context.cookies() if c["name"] == "callbell_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # the page's scripts cannot read the session
        page.reload()
        expect(page.locator("#auth-who-am-i")).to_have_text("Signed in as maria (manager)")
        page.get_by_role("button", name="Sign out").click()
        expect(page.locator("#auth-form")).to_be_visible()
        expect(page.locator("#floor")).to_be_hidden()


def test_an_associate_signed_in_with_a_pin_acts_as_themselves_and_sees_no_statistics(secured, broker, browser):
    with open_page(browser, DESK) as page:
        page.goto(secured.url + "/")
        sign_in(page, "ben", "5678")
        expect(page.locator("#auth-who-am-i")).to_have_text("Signed in as Ben (associate)")
        expect(page.locator("#me")).to_be_disabled()
        expect(page.locator("#me")).to_have_value("ben")
        expect(page.locator("#manager")).to_be_hidden()
        press(broker.url, "room-1")
        card = page.locator('.call:has(.room:text("Room 1"))')
        expect(card).to_be_visible(timeout=3000)
        card.get_by_role("button", name="On my way").click()
        expect(card.locator(".who")).to_have_text("Ben is on the way")
        page.goto(secured.url + "/stats")  # the session is kept, but it is not a manager's
        expect(page.locator("#auth-hint")).to_contain_text("needs a manager")
        sign_in(page, "ben", "5678")
        expect(page.locator("#auth-error")).to_contain_text("this page needs manager")
        sign_in(page, "maria", MARIA_PASSWORD)
        expect(page.locator("#auth-who-am-i")).to_have_text("Signed in as maria (manager)")
        expect(page.locator("#store-name")).to_have_text("Test store")
        expect(page.locator("#error")).to_be_hidden()


def test_the_phone_pin_sign_in_gets_a_session_that_survives_a_reload_and_ends_with_sign_out(secured, browser):
    with open_page(browser, PHONE) as phone:
        phone.goto(secured.url + "/phone")
        expect(phone.locator("#pin-row")).to_be_visible()
        expect(phone.locator("#demo-banner")).to_be_hidden()
        phone.get_by_role("radio", name="Ana").click()
        phone.fill("#pin", "0000")
        phone.get_by_role("button", name="Start").click()
        expect(phone.locator("#sign-in-error")).to_have_text("wrong PIN")
        phone.fill("#pin", "1234")
        phone.get_by_role("button", name="Start").click()
        expect(phone.locator("#my-name")).to_have_text("Ana")
        expect(phone.locator("#my-state")).to_have_attribute("data-state", "available")  # a POST with CSRF
        phone.reload()
        expect(phone.locator("#my-name")).to_have_text("Ana")
        phone.get_by_role("button", name="Start break").click()
        expect(phone.locator("#my-state")).to_have_attribute("data-state", "break")
        phone.get_by_role("button", name="Sign out").click()
        expect(phone.locator("#sign-in")).to_be_visible()
        phone.reload()
        expect(phone.locator("#sign-in")).to_be_visible()
        expect(phone.locator("#app")).to_be_hidden()


def test_every_page_shows_the_demo_banner_in_demo_mode_and_no_sign_in_form(tmp_path, broker, browser):
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    with running_hub(path) as hub, open_page(browser, DESK) as page:
        for where in ("/", "/stats", "/phone"):
            page.goto(f"http://127.0.0.1:{hub.http_port}{where}")
            expect(page.locator("#demo-banner")).to_be_visible()
            expect(page.locator("#demo-banner")).to_contain_text("not secure")
            expect(page.locator("#auth-form")).to_have_count(0)


def test_an_expired_session_brings_the_sign_in_form_back(tmp_path, broker, browser, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())
    clock = FakeClock(time.time())
    with running_hub(secured_store(tmp_path, broker.url), clock=clock) as hub, open_page(browser, DESK) as page:
        page.goto(f"http://127.0.0.1:{hub.http_port}/")
        sign_in(page, "maria", MARIA_PASSWORD)
        expect(page.locator("#floor")).to_be_visible()
        # Let the page finish starting before time jumps: it reads the store, lists the
        # associates, then reads today's figures. A read refused mid-start reloads the page on
        # its own, and that reload raced the test's (it failed once in a full run).
        expect(page.locator("#me option")).not_to_have_count(0)
        expect(page.locator("#fig-calls")).to_have_text(re.compile(r"^\d+$"))
        clock.advance(session.SESSION_TTL_S + 1)
        page.reload()
        expect(page.locator("#auth-form")).to_be_visible()


def test_a_session_that_ends_while_the_page_starts_brings_the_sign_in_form_back(tmp_path, broker, browser, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())
    clock = FakeClock(time.time())
    with running_hub(secured_store(tmp_path, broker.url), clock=clock) as hub, open_page(browser, DESK) as page:
        page.goto(f"http://127.0.0.1:{hub.http_port}/")

        def expire_first(route):  # the session runs out just as the page asks for the store
            clock.advance(session.SESSION_TTL_S + 1)
            route.continue_()
        page.route("**/api/v1/store", expire_first)
        sign_in(page, "maria", MARIA_PASSWORD)
        expect(page.locator("#auth-form")).to_be_visible()  # after a reload, not a page error
