"""What the shopper sees on the button light (issue 19 B), on gpiozero's mock pins against a
real Mosquitto and hub: every press is answered — a press again winks twice once it is taken,
a hold fades the light before it cancels."""
from __future__ import annotations

import time

import pytest

from firmware.config import DeviceConfig, DeviceSection, RoomPins
from firmware.lamp import LIGHT_MEANINGS, LIGHT_PATTERNS, WINK_S
from tests.helpers import wait_until
from tests.test_device import Rig

HOLD_S = 2.0  # the default hold: long enough to show "cancelling" before the cancel


@pytest.fixture
def rig(hub, tmp_path):
    config = DeviceConfig(
        device=DeviceSection(id="pi-test", store="test-store", broker=hub.broker_url,
                             outbox=tmp_path / "outbox.db", hold_s=HOLD_S, debounce_ms=10),
        rooms=[RoomPins(id="room-1", slot=1)])
    rig = Rig(config)
    rig.device.start()
    wait_until(lambda: not rig.device.fault, what="the device sees the hub")
    yield rig
    rig.device.stop()


def lights(rig) -> list[str]:
    return [state for _, room, what, state in rig.shown if what == "light"]


def test_a_press_again_while_the_call_waits_blinks_then_winks_twice_then_shows_the_call(rig):
    rig.press()
    wait_until(lambda: rig.state() == ("called", "called"), what="the hub has the call")
    rig.shown.clear()
    rig.press()
    wait_until(lambda: "reminded" in lights(rig), what="the press again taken")
    taken = time.monotonic()
    wait_until(lambda: lights(rig)[-1] == "called", timeout=WINK_S + 3, what="the call shown again")
    assert time.monotonic() - taken >= WINK_S - 0.05, "the winks are seen whole"
    seen = lights(rig)
    assert seen.index("reminding") < seen.index("reminded") < len(seen) - 1, seen
    assert rig.state() == ("called", "called") and rig.device.rooms["room-1"].light.pattern == "on"


def test_holding_fades_the_light_before_the_cancel_and_letting_go_early_keeps_the_call(rig):
    rig.press()
    wait_until(lambda: rig.state() == ("called", "called"), what="the hub has the call")
    pin = rig.pin("room-1", "call")
    pin.drive_low()
    wait_until(lambda: rig.state()[1] == "cancelling", timeout=2, what="the light fading")
    assert rig.device.rooms["room-1"].light.pattern == "fade"
    pin.drive_high()  # let go after about 0.5 s: a press again, not a cancel
    wait_until(lambda: rig.state() == ("called", "called"), timeout=WINK_S + 2, what="the call shown again")
    rig.press(hold=HOLD_S + 0.2)  # and now held through
    assert "cancelling" in lights(rig)
    wait_until(lambda: rig.state() == ("idle", "idle"), what="cancelled")


def test_every_light_state_has_a_pattern_and_the_door_card_explains_what_a_shopper_sees():
    shown_to_shoppers = {"idle", "pending", "called", "acknowledged", "reminded", "cancelling", "fault"}
    assert {state for state, _, _ in LIGHT_MEANINGS} == shown_to_shoppers
    assert shown_to_shoppers | {"overdue", "reminding"} == set(LIGHT_PATTERNS)
    # No pattern flashes at 3 Hz or more (photosensitivity guidance for public spaces).
    from firmware.lamp import BLIP, FAST, SLOW, WINK
    assert all(1 / sum(p) < 3 for p in (FAST, SLOW, BLIP, WINK))


def test_the_door_card_is_drawn_from_the_firmware_and_up_to_date():
    from hardware import door_card
    svg = door_card.card_svg()
    assert door_card.OUT.read_text() == svg, "hardware/door-card.svg is out of date: run python -m hardware.door_card"
    for _, look, _ in LIGHT_MEANINGS:
        assert f">{look}<" in svg
    assert door_card.main(["--check"]) == 0
