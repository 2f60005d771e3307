"""Button lines (issue 27.3) on gpiozero's mock pins, against a real Mosquitto: a glitch shorter
than the minimum press time is not a press, and a line held past ``stuck_s`` is reported in
the device's health at once, while the rest of the device keeps working."""
from __future__ import annotations

import threading
import time

import pytest
from gpiozero import DigitalInputDevice

from callbell.clock import FakeClock, SystemClock
from firmware.button import MIN_PRESS_MS, CallButton
from firmware.config import DeviceConfig, DeviceSection, FieldError, RoomPins
from firmware.device import Device
from firmware.wiring import mock_pins
from tests.helpers import wait_until
from tests.test_device import Rig, events, make_config

STUCK_S = 1.0


def glitch(pin, clock: FakeClock, seconds: float = 0.0001) -> None:
    """The line pulled down for ``seconds`` (default 0.1 ms: a spike on the cable) of the
    clock the button times its edges by. A fake clock: a busy test machine that takes 20 ms
    between two lines of Python does not turn a glitch into a press."""
    pin.drive_low()
    clock.advance(seconds)
    pin.drive_high()


class FakeClockRig(Rig):
    """A device whose buttons time their edges by a fake clock the test moves."""

    def __init__(self, config: DeviceConfig):
        self.factory = mock_pins()
        self.shown = []
        self.clock = FakeClock()
        self.device = Device(config, pin_factory=self.factory, on_display=self._display, clock=self.clock)
        self.config = config

    def press(self, room="room-1", role="call", hold=0.05):
        pin = self.pin(room, role)
        pin.drive_low()
        self.clock.advance(hold)
        time.sleep(hold)
        pin.drive_high()


@pytest.fixture
def fake_rig(tmp_path, broker):
    rig = FakeClockRig(make_config(tmp_path, broker.url))
    rig.device.start()
    assert rig.device.link.wait_connected(5)
    yield rig
    rig.device.stop()


@pytest.fixture
def rig(tmp_path, broker):
    rig = Rig(make_config(tmp_path, broker.url, stuck_s=STUCK_S, heartbeat_s=60))
    rig.device.start()
    assert rig.device.link.wait_connected(5)
    yield rig
    rig.device.stop()


def health_of(recorder, topics) -> list[dict]:
    return recorder.json_of(topics.device_health("pi-test"))


# -- the minimum press time --------------------------------------------------------------------
def button(factory, clock, **kw) -> tuple[CallButton, list]:
    b = CallButton(DigitalInputDevice(17, pull_up=True, pin_factory=factory), clock, hold_s=2.0, **kw)
    seen: list = []
    b.when_down = lambda t: seen.append("down")
    b.when_void = lambda t: seen.append("void")
    b.when_press = lambda t: seen.append("press")
    b.when_short = lambda t: seen.append("short")
    return b, seen


@pytest.mark.parametrize("debounce_ms", [0, 10, 30])
def test_a_glitch_of_a_tenth_of_a_millisecond_is_taken_back_not_pressed(debounce_ms):
    factory, clock = mock_pins(), FakeClock()
    b, seen = button(factory, clock, debounce_ms=debounce_ms)
    try:
        glitch(factory.pin(17), clock)
        wait_until(lambda: "void" in seen, what="the glitch taken back")
        assert seen == ["down", "void"]
    finally:
        b.close()


def test_a_tap_just_over_the_minimum_press_time_is_a_press():
    factory, clock = mock_pins(), FakeClock()
    b, seen = button(factory, clock, debounce_ms=30)
    try:
        glitch(factory.pin(17), clock, (MIN_PRESS_MS + 8) / 1000)
        wait_until(lambda: "short" in seen, what="the tap")
        assert seen == ["down", "press", "short"]
    finally:
        b.close()


def test_a_late_confirmation_timer_decides_from_the_edge_times_not_from_the_pin_it_reads_late():
    """On a busy Pi the timer at min_press_ms may run after the shopper let go: the press
    still counts, because the edges say the line was down long enough."""
    factory, clock = mock_pins(), FakeClock()
    b, seen = button(factory, clock, debounce_ms=30)  # the release falls in the debounce window
    try:
        with b._lock:  # every timer waits here, as behind a busy CPU
            glitch(factory.pin(17), clock, (MIN_PRESS_MS + 5) / 1000)
            time.sleep(0.06)
            b._confirm()  # the confirmation timer's work, run 60 ms late, before the settle check
        wait_until(lambda: "short" in seen, what="the press")
        assert seen == ["down", "press", "short"]
    finally:
        b.close()


def test_a_glitch_on_the_call_line_sends_nothing_and_the_lamp_goes_back_to_dark(fake_rig, recorder, topics):
    rig = fake_rig
    pin = rig.pin("room-1", "call")
    glitch(pin, rig.clock)
    wait_until(lambda: rig.state() == ("idle", "fault") and not rig.lamp_pin_on(), what="the lamp dark again")
    rig.press(hold=0.05)  # then a real press: the only event
    [e] = wait_until(lambda: events(recorder, topics), what="the real press")
    assert e["type"] == "call"
    # the glitch showed the lamp for well under a blink, then it was taken back
    lamps = [s for _, room, what, s in rig.shown if room == "room-1" and what == "lamp"]
    assert lamps == ["idle", "called", "idle", "called"], lamps


def test_a_glitch_on_the_staff_line_records_no_arrival(fake_rig, recorder, topics):
    rig = fake_rig
    pin = rig.pin("room-1", "presence")
    for _ in range(5):
        glitch(pin, rig.clock)
        rig.clock.advance(0.04)
        time.sleep(0.04)
    rig.press(role="presence", hold=0.05)
    rig.press(role="call", hold=0.05)  # events leave in order: once this is in, all before it are
    wait_until(lambda: [e for e in events(recorder, topics) if e["type"] == "call"], what="the call after")
    assert [e["type"] for e in events(recorder, topics)] == ["presence", "call"]


def test_the_minimum_press_time_is_set_per_button_in_device_toml(tmp_path, broker, recorder, topics):
    config = DeviceConfig(
        device=DeviceSection(id="pi-test", store="test-store", broker=broker.url, outbox=tmp_path / "o.db"),
        rooms=[RoomPins(id="room-1", slot=1, min_press_ms={"presence": 80})])
    rig = FakeClockRig(config)
    rig.device.start()
    try:
        rig.press(role="presence", hold=0.04)  # a press for the call button, a glitch for this line
        rig.press(role="call", hold=0.04)
        [e] = wait_until(lambda: events(recorder, topics), what="the call")
        rig.press(role="presence", hold=0.12)
        wait_until(lambda: len(events(recorder, topics)) == 2, what="the long staff press")
        assert [e["type"] for e in events(recorder, topics)] == ["call", "presence"]
    finally:
        rig.device.stop()


def test_a_bad_minimum_press_time_is_refused_with_its_key():
    with pytest.raises(FieldError) as e:
        RoomPins(id="room-1", slot=1, min_press_ms={"staff": 40})
    assert e.value.key == "min_press_ms" and "unknown button 'staff'" in e.value.message
    with pytest.raises(FieldError) as e:
        DeviceSection(id="pi", store="s", hold_s=2.0, stuck_s=1.0)
    assert e.value.key == "stuck_s"


# -- stuck lines -----------------------------------------------------------------------------------
def test_a_line_held_past_stuck_s_is_reported_at_once_and_cleared_at_once_on_release(rig, recorder, topics):
    before = len(health_of(recorder, topics))
    pin = rig.pin("room-1", "call")
    pin.drive_low()
    stuck = wait_until(lambda: [h for h in health_of(recorder, topics)[before:] if h["lines"]["stuck"]],
                       timeout=STUCK_S + 3, what="a health message naming the stuck line")
    [line] = stuck[0]["lines"]["stuck"]
    assert line["room"] == "room-1" and line["button"] == "call" and line["held_s"] >= STUCK_S - 0.05
    assert rig.state("room-1")[1] == "fault", "a stuck call button shows the fault pattern"

    # the rest of the device works: room 2 calls and its lamp lights; room 1's size button calls
    rig.press("room-2")
    wait_until(lambda: events(recorder, topics, "room-2"), what="room 2's call")
    assert rig.lamp_pin_on("room-2")
    rig.press("room-1", "size")
    wait_until(lambda: [e for e in events(recorder, topics, "room-1") if e["type"] == "call"], what="the size call")

    n = len(health_of(recorder, topics))
    pin.drive_high()
    wait_until(lambda: [h for h in health_of(recorder, topics)[n:] if h["lines"]["stuck"] == []],
               what="a health message without the stuck line")  # heartbeat_s is 60: not a heartbeat
    # the stuck line's press was one cancel (the hold), not repeated, and its release sent nothing
    assert [(e["type"], e.get("reason")) for e in events(recorder, topics, "room-1")] == [("cancel", None),
                                                                                          ("call", "size")]
    assert rig.device.rooms["room-1"].stuck == set()


def test_a_stuck_staff_line_is_reported_and_sends_one_presence(rig, recorder, topics):
    pin = rig.pin("room-2", "presence")
    pin.drive_low()
    wait_until(lambda: any(h["lines"]["stuck"] == [{"room": "room-2", "button": "presence",
                                                   "held_s": h["lines"]["stuck"][0]["held_s"]}]
                           for h in health_of(recorder, topics) if h["lines"]["stuck"]),
               timeout=STUCK_S + 3, what="the stuck staff line")
    pin.drive_high()
    wait_until(lambda: health_of(recorder, topics)[-1]["lines"]["stuck"] == [], what="freed")
    assert [e["type"] for e in events(recorder, topics, "room-2")] == ["presence"]


def test_a_line_stuck_while_the_broker_is_away_is_in_the_first_health_after_connecting(tmp_path, broker, recorder, topics):
    rig = Rig(make_config(tmp_path, broker.url, stuck_s=STUCK_S, heartbeat_s=60))
    try:
        rig.pin("room-1", "size").drive_low()
        wait_until(lambda: rig.device.rooms["room-1"].stuck == {"size"}, timeout=STUCK_S + 3, what="stuck")
        rig.device.start()
        h = wait_until(lambda: health_of(recorder, topics), what="the first health")
        assert [(s["room"], s["button"]) for s in h[0]["lines"]["stuck"]] == [("room-1", "size")]
    finally:
        rig.device.stop()


def test_a_button_released_while_its_stuck_timer_fires_ends_quietly(monkeypatch):
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    factory = mock_pins()
    b = CallButton(DigitalInputDevice(17, pull_up=True, pin_factory=factory), SystemClock(), hold_s=0.05,
                   debounce_ms=1, min_press_ms=1, stuck_s=0.1)
    seen = []
    b.when_stuck = lambda t: seen.append("stuck")
    b.when_unstuck = lambda t: seen.append("unstuck")
    try:
        factory.pin(17).drive_low()
        wait_until(lambda: seen == ["stuck"], what="stuck")
        assert b.stuck
        factory.pin(17).drive_high()
        wait_until(lambda: seen == ["stuck", "unstuck"], what="freed")
        assert not b.stuck and errors == []
    finally:
        b.close()


def test_a_misspelt_button_in_a_rooms_minimum_press_table_names_the_file_line_and_key(tmp_path):
    from callbell.settings import ConfigError
    from firmware.config import load_device_config
    path = tmp_path / "device.toml"
    path.write_text('[device]\nid = "pi"\nstore = "s"\n\n[[rooms]]\nid = "r1"\nslot = 1\n'
                    'min_press_ms = { staff = 40 }\n')
    with pytest.raises(ConfigError) as e:
        load_device_config(path)
    assert "line 8: rooms[0].min_press_ms: unknown button 'staff' (use call, size, presence)" in str(e.value)
