"""What the page tests share: Debian's Chromium driven by Playwright, a device on mock pins,
and screenshots for the docs (written only with CALLBELL_SCREENSHOTS=1)."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from firmware.config import DeviceConfig, DeviceSection, RoomPins
from tests.helpers import ROOT, wait_until
from tests.test_device import Rig

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: The README's and docs' pictures, made by the tests that show what they show.
IMAGES = ROOT / "docs" / "images"

PHONE = {"width": 360, "height": 740}
#: What a phone on shift allows the page (see open_page).
ON_SHIFT = ("notifications", "wakeLockScreen")
DESK = {"width": 1280, "height": 800}


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is not installed: run scripts/setup (apt-get install chromium)"
    return path


def screenshot(page, name: str, full_page: bool = False) -> None:
    """Save ``docs/images/{name}.png`` when CALLBELL_SCREENSHOTS=1 (never otherwise)."""
    if os.environ.get("CALLBELL_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextmanager
def open_page(browser, viewport=DESK, grant: tuple[str, ...] = (), **context_options):
    """A page in a fresh browser context; fails the test on any JavaScript error. ``grant``:
    permissions as Chromium's DevTools protocol names them (``notifications``,
    ``wakeLockScreen``); Playwright's own list has no wake lock, and granting through it
    refuses every permission not listed."""
    context = browser.new_context(viewport=viewport, **context_options)
    page = context.new_page()
    if grant:
        cdp = context.new_cdp_session(page)
        context_id = cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
        cdp.send("Browser.grantPermissions", {"permissions": list(grant), "browserContextId": context_id})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Whatever the hub's Content Security Policy blocks (hub/api/security_headers.py) is a bug.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text
            else None)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def mock_device(broker_url: str, folder: Path, rooms=(1, 2, 3), store: str = "test-store",
                prefix: str = "room-", hub_up: bool = True) -> Rig:
    """A started device on mock pins for ``rooms`` (stop it with ``rig.device.stop()``);
    with ``hub_up``, once it sees the hub online."""
    config = DeviceConfig(
        device=DeviceSection(id="pi-floor", store=store, broker=broker_url,
                             outbox=folder / "outbox.db", debounce_ms=10),
        rooms=[RoomPins(id=f"{prefix}{i}", slot=n + 1) for n, i in enumerate(rooms)])
    rig = Rig(config)
    rig.device.start()
    if hub_up:
        wait_until(lambda: not rig.device.fault, what="device sees the hub")
    else:
        assert rig.device.link.wait_connected(5), "device connects to the broker"
    return rig
