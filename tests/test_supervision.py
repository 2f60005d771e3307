"""Lamp and supply supervision (issue 27.4): the pure checks, then the sense inputs on
gpiozero's mock pins against a real Mosquitto — the device's health names the fault at once —
and what the lamps do when the device program stops."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import gpiozero
import pytest

from callbell.protocol import LampState
from firmware.config import DeviceConfig, DeviceSection, FieldError, RoomPins
from firmware.supervision import LAMP_FAULT_READINGS, SENSE_POLL_S, SUPPLY_LOST_S, LampCheck, SupplyCheck
from tests.helpers import wait_until
from tests.test_device import Rig

ROOT = Path(__file__).resolve().parent.parent


# -- the pure checks ---------------------------------------------------------------------------
def test_the_supply_is_lost_only_after_it_has_read_absent_for_supply_lost_s_and_back_at_once():
    s = SupplyCheck()
    assert not s.reading(0.0, present=False) and not s.lost
    assert not s.reading(SUPPLY_LOST_S - 0.1, present=False), "a brown-out is not a loss"
    assert s.reading(SUPPLY_LOST_S, present=False) and s.lost and s.since == 0.0
    assert s.reading(SUPPLY_LOST_S + 0.1, present=True) and not s.lost


def readings(check: LampCheck, pattern, seconds: float, current=lambda on, i: on) -> list:
    """Feed ``seconds`` of readings every SENSE_POLL_S; ``pattern(t)`` says whether the lamp is
    switched on; returns the faults seen."""
    seen, t, i = [], 0.0, 0
    while t < seconds:
        on = pattern(t)
        check.reading(t, on, current(on, i))
        seen.append(check.fault)
        t, i = t + SENSE_POLL_S, i + 1
    return seen


def test_a_lamp_switched_on_that_draws_nothing_is_dark_after_enough_readings():
    check = LampCheck()
    seen = readings(check, lambda t: True, 1.0, current=lambda on, i: False)
    assert seen[LAMP_FAULT_READINGS - 2] is None and seen[LAMP_FAULT_READINGS - 1] == "dark"
    assert check.reading(1.0, on=True, current=True) and check.fault is None, "one good reading clears it"


def test_a_healthy_blinking_lamp_read_wrongly_at_its_switching_instants_never_faults():
    check = LampCheck()
    fast = lambda t: int(t / 0.2) % 2 == 0  # noqa: E731  (2.5 Hz, the overdue pattern)
    # every third reading catches the sense a moment behind the switch: it disagrees
    seen = readings(check, fast, 30.0, current=lambda on, i: (not on) if i % 3 == 0 else on)
    assert set(seen) == {None}


def test_a_lamp_that_draws_current_while_switched_off_cannot_be_switched_off():
    check = LampCheck()
    seen = readings(check, lambda t: False, 1.0, current=lambda on, i: True)
    assert seen[-1] == "lit_when_off"
    assert check.reading(1.0, on=False, current=False) and check.fault is None


def test_a_dead_lamp_that_blinks_is_dark_too():
    check = LampCheck()
    slow = lambda t: int(t / 0.6) % 2 == 0  # noqa: E731
    assert readings(check, slow, 3.0, current=lambda on, i: False)[-1] == "dark"


def test_a_lamp_sense_is_only_for_an_on_off_lamp_and_slot_4_has_no_default_pin():
    with pytest.raises(FieldError) as e:
        RoomPins(id="r", slot=1, lamp_kind="pwm", lamp_brightness=0.5, lamp_sense=True)
    assert e.value.key == "lamp_sense" and "PWM" in e.value.message
    with pytest.raises(FieldError) as e:
        RoomPins(id="r", slot=4, lamp_sense=True)
    assert "GPIO4" in e.value.message
    assert RoomPins(id="r", slot=4, no_size=True, lamp_sense="GPIO4").lamp_sense == "GPIO4"
    with pytest.raises(FieldError) as e:
        DeviceConfig(DeviceSection(id="pi", store="s", supply_sense="GPIO10"),
                     [RoomPins(id="r", slot=1, lamp_sense=True)])
    assert "GPIO10 is already used by device.supply_sense" in str(e.value)


# -- on mock pins, with a real broker ------------------------------------------------------------
def sensed_config(tmp_path: Path, broker_url: str, rooms=("room-1", "room-2"), **device) -> DeviceConfig:
    return DeviceConfig(
        device=DeviceSection(id="pi-test", store="test-store", broker=broker_url, outbox=tmp_path / "outbox.db",
                             hold_s=0.5, debounce_ms=10, heartbeat_s=60, supply_sense=True, **device),
        rooms=[RoomPins(id=r, slot=i + 1, lamp_sense=True) for i, r in enumerate(rooms)])


class SensedRig(Rig):
    def sense(self, room: str | None = None):
        """The supply's sense pin, or a room's lamp sense pin (low = supply there / current)."""
        name = self.config.device.supply_sense if room is None else \
            next(r for r in self.config.rooms if r.id == room).lamp_sense
        return self.factory.pin(int(name.removeprefix("GPIO")))


@pytest.fixture
def rig(tmp_path, broker, recorder, topics):
    rig = SensedRig(sensed_config(tmp_path, broker.url))
    rig.sense().drive_low()  # the supply is there
    recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
    rig.device.start()
    assert rig.device.link.wait_connected(5)
    yield rig
    rig.device.stop()


def last_health(recorder, topics) -> dict:
    return recorder.last(topics.device_health("pi-test")) or {}


def test_the_health_says_the_supply_is_there_and_the_lamps_are_well(rig, recorder, topics):
    h = wait_until(lambda: last_health(recorder, topics), what="health")
    assert h["supply"] == {"ok": True}
    assert h["lamps"] == {"room-1": {"ok": True}, "room-2": {"ok": True}}


def test_a_lost_supply_is_reported_at_once_and_its_return_too(rig, recorder, topics):
    wait_until(lambda: last_health(recorder, topics), what="the first health")
    rig.sense().drive_high()
    h = wait_until(lambda: last_health(recorder, topics)["supply"]["ok"] is False and last_health(recorder, topics),
                   timeout=SUPPLY_LOST_S + 3, what="supply lost in health (heartbeat_s is 60: not a heartbeat)")
    assert h["supply"]["lost_s"] >= 0
    rig.sense().drive_low()
    wait_until(lambda: last_health(recorder, topics)["supply"] == {"ok": True}, what="the supply back")


def test_a_lamp_switched_on_that_draws_no_current_is_reported_and_cleared_when_it_does(rig, recorder, topics):
    recorder.publish(topics.lamp("room-1"), LampState("called", "c-1", "help", 1.0).to_json(), retain=True,
                     expiry_s=None)
    wait_until(lambda: rig.lamp_pin_on("room-1"), what="the lamp switched on")
    # the lamp sense stays high: no current
    h = wait_until(lambda: last_health(recorder, topics).get("lamps", {}).get("room-1", {}).get("ok") is False
                   and last_health(recorder, topics), timeout=5, what="the dark lamp in health")
    assert h["lamps"]["room-1"]["fault"] == "dark" and h["lamps"]["room-2"] == {"ok": True}
    rig.sense("room-1").drive_low()  # it draws current now
    wait_until(lambda: last_health(recorder, topics)["lamps"]["room-1"] == {"ok": True}, what="cleared")


def test_a_lamp_drawing_current_while_switched_off_is_reported(rig, recorder, topics):
    rig.sense("room-2").drive_low()
    h = wait_until(lambda: last_health(recorder, topics).get("lamps", {}).get("room-2", {}).get("ok") is False
                   and last_health(recorder, topics), timeout=5, what="the lamp that cannot go off")
    assert h["lamps"]["room-2"]["fault"] == "lit_when_off"


def test_without_the_supply_the_dark_lamps_are_not_reported_as_lamp_faults(rig, recorder, topics):
    rig.sense().drive_high()
    wait_until(lambda: last_health(recorder, topics).get("supply", {}).get("ok") is False, timeout=5,
               what="supply lost")
    recorder.publish(topics.lamp("room-1"), LampState("called", "c-1", "help", 1.0).to_json(), retain=True,
                     expiry_s=None)
    wait_until(lambda: rig.lamp_pin_on("room-1"), what="the lamp switched on")
    polls = rig.device.sense_polls
    wait_until(lambda: rig.device.sense_polls >= polls + 2 * LAMP_FAULT_READINGS, what="readings without supply")
    checks = rig.device.lamp_checks["room-1"]
    assert checks.fault is None
    n = len(recorder.of(topics.device_health("pi-test")))
    rig.sense().drive_low()  # the supply comes back, the lamp still draws nothing: now it is a lamp fault
    wait_until(lambda: last_health(recorder, topics)["lamps"]["room-1"].get("fault") == "dark", timeout=5,
               what="the lamp fault once the supply is back")
    first_dark = next(i for i, h in enumerate(recorder.json_of(topics.device_health("pi-test"))) if
                      h["lamps"]["room-1"].get("fault"))
    assert first_dark >= n, "no lamp fault was reported while the supply was away"
    assert checks.fault == "dark"


# -- when the program stops ----------------------------------------------------------------------
def states(factory, config) -> dict:
    return {r.id: factory.pin(int(r.lamp.removeprefix("GPIO"))) for r in config.rooms}


def test_a_stopped_device_leaves_a_called_lamp_lit_an_acknowledged_one_steady_and_an_idle_one_dark(
        tmp_path, broker, recorder, topics):
    rig = Rig(DeviceConfig(
        device=DeviceSection(id="pi-test", store="test-store", broker=broker.url, outbox=tmp_path / "o.db"),
        rooms=[RoomPins(id=f"room-{i}", slot=i) for i in (1, 2, 3)]))
    recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
    recorder.publish(topics.lamp("room-1"), LampState("called", "c-1", "help", 1.0).to_json(), retain=True, expiry_s=None)
    recorder.publish(topics.lamp("room-2"), LampState("acknowledged", "c-2", "help", 1.0, "ana").to_json(),
                     retain=True, expiry_s=None)
    rig.device.start()
    wait_until(lambda: rig.state("room-1") == ("called", "called") and rig.state("room-2")[0] == "acknowledged",
               what="the hub's lamps shown")
    lamps = states(rig.factory, rig.config)  # the pin objects, kept: the factory forgets held pins
    light1 = rig.pin("room-1", "light")
    rig.device.stop()
    # gpiozero's own exit handler, as at the end of the process, on this factory
    before, gpiozero.Device.pin_factory = gpiozero.Device.pin_factory, rig.factory
    try:
        gpiozero.devices._devices_shutdown()
    finally:
        gpiozero.Device.pin_factory = before
    assert {room: (p.function, p.state) for room, p in lamps.items()} == {
        "room-1": ("output", 1), "room-2": ("output", 1), "room-3": ("output", 0)}
    assert (light1.function, light1.state) == ("output", 1), "the shopper's light keeps saying 'we have it'"


SIGTERMED = """
import atexit, json, sys
pins = {}
# registered before gpiozero is imported, so it runs after gpiozero's own exit handler
atexit.register(lambda: print(json.dumps({k: [p.function, p.state] for k, p in pins.items()}), flush=True))
import gpiozero
from callbell.protocol import LampState
from app.signals import wait_for_signal
from firmware.config import load_device_config
from firmware.device import Device
from firmware.wiring import mock_pins
config = load_device_config(sys.argv[1])
gpiozero.Device.pin_factory = factory = mock_pins()   # as on a Pi: the default factory
device = Device(config)
for r in config.rooms:
    pins[r.id] = factory.pin(int(r.lamp.removeprefix("GPIO")))
device.rooms["room-1"].show_hub(LampState("called", "c-1", "help", 1.0))
device.rooms["room-2"].show_hub(LampState("overdue", "c-2", "help", 1.0))
import signal, threading, time
def ready():  # once wait_for_signal has its handler in place
    while signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        time.sleep(0.01)
    print("ready", flush=True)
threading.Thread(target=ready, daemon=True).start()
wait_for_signal()
device.stop()
"""


def test_a_device_process_stopped_by_sigterm_with_a_call_lit_leaves_its_lamp_lit(tmp_path):
    toml = tmp_path / "device.toml"
    toml.write_text(textwrap.dedent("""
        [device]
        id = "pi-term"
        store = "test-store"
        broker = "mqtt://127.0.0.1:1"
        [[rooms]]
        id = "room-1"
        slot = 1
        [[rooms]]
        id = "room-2"
        slot = 2
        [[rooms]]
        id = "room-3"
        slot = 3
        """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", SIGTERMED, str(toml)], stdout=subprocess.PIPE, text=True,
                         cwd=tmp_path, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 0
    assert json.loads(out.strip().splitlines()[-1]) == {
        "room-1": ["output", 1], "room-2": ["output", 1], "room-3": ["output", 0]}


# -- the docs say what the code does ---------------------------------------------------------------
def test_the_firmware_docs_quote_the_line_and_supervision_constants_of_the_code():
    from firmware.button import MIN_PRESS_MS, STUCK_S
    from firmware.supervision import LAMP_FAULT_S
    doc = (ROOT / "docs" / "firmware.md").read_text()
    for quoted in (f"({MIN_PRESS_MS:g} ms, `MIN_PRESS_MS`", f"({STUCK_S:g} s, `STUCK_S`)",
                   f"{SUPPLY_LOST_S:g} s (`SUPPLY_LOST_S`)", f"{LAMP_FAULT_S:g} s (`LAMP_FAULT_S`)",
                   f"at least {LAMP_FAULT_READINGS}", f"ten times a\nsecond (`SENSE_POLL_S`"):
        assert quoted in doc, quoted
    assert SENSE_POLL_S == 0.1


def test_every_device_toml_key_is_in_the_firmware_docs_configuration_table():
    import dataclasses
    doc = (ROOT / "docs" / "firmware.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    keys = {f.name for cls in (DeviceSection, RoomPins) for f in dataclasses.fields(cls)}
    missing = sorted(k for k in keys if f"`{k}`" not in doc and f"`[device] {k}`" not in doc
                     and f"`[[rooms]] {k}`" not in doc)
    assert not missing, f"docs/firmware.md's configuration table lacks {missing}"


def test_every_field_of_the_device_health_is_in_the_protocol_docs(tmp_path):
    rig = SensedRig(sensed_config(tmp_path, "mqtt://127.0.0.1:1"))
    try:
        fields = set(rig.device.health())
    finally:
        rig.device.stop()
    doc = (ROOT / "docs" / "protocol.md").read_text().split("### Device status and health", 1)[1].split("\n### ", 1)[0]
    missing = sorted(f for f in fields if f"| `{f}` |" not in doc)
    assert not missing, f"docs/protocol.md's health table lacks {missing}"


def test_a_stopped_device_holds_a_blinking_rgb_lamp_steady_in_its_colour(tmp_path, broker, recorder, topics):
    rig = Rig(DeviceConfig(
        device=DeviceSection(id="pi-test", store="test-store", broker=broker.url, outbox=tmp_path / "o.db"),
        rooms=[RoomPins(id="room-1", call="GPIO17", lamp="GPIO23", lamp_green="GPIO9", lamp_blue="GPIO10",
                        lamp_kind="rgb", no_size=True, no_presence=True)]))
    recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
    recorder.publish(topics.lamp("room-1"), LampState("overdue", "c-1", "help", 1.0).to_json(), retain=True, expiry_s=None)
    rig.device.start()
    wait_until(lambda: rig.device.rooms["room-1"].lamp.pattern == "fast", what="the red fast blink")
    red, green, blue = (rig.factory.pin(n) for n in (23, 9, 10))
    rig.device.stop()
    assert [(p.function, p.state) for p in (red, green, blue)] == [("output", 1), ("output", 0), ("output", 0)]
    assert rig.device.rooms["room-1"].lamp.led._blink_thread is None, "no blink left to change the pins"
