"""The faults a device reports in its health become troubles (issue 27.3/27.4): the pure
decision, then end to end — a device on gpiozero's mock pins, a real Mosquitto and the real
hub — from a stuck line, a lost supply or a dark lamp to an open trouble, and back."""
from __future__ import annotations

import pytest

from firmware.config import DeviceConfig, DeviceSection, RoomPins
from hub.domain.call import DomainError
from hub.domain.device_faults import Fault, faults, judge
from hub.domain.troubles import Trouble, text
from tests.helpers import wait_until
from tests.test_supervision import SensedRig

HEALTHY = {"uptime_s": 5, "rooms": ["r1", "r2"], "lines": {"stuck": []}, "supply": {"ok": True},
           "lamps": {"r1": {"ok": True}, "r2": {"ok": True}}}


# -- the pure decision -----------------------------------------------------------------------------
def test_a_stuck_line_is_a_trouble_keyed_by_device_room_and_button():
    health = {**HEALTHY, "lines": {"stuck": [{"room": "r1", "button": "call", "held_s": 31.24}]}}
    report, clear = judge("pi-1", health, [])
    assert report == [Fault("stuck_line", "pi-1/r1/call", "r1", {"button": "call", "held_s": 31.2})]
    assert clear == []


def test_a_released_line_clears_its_trouble_and_leaves_the_others():
    open_keys = [("stuck_line", "pi-1/r1/call"), ("stuck_line", "pi-1/r2/size")]
    health = {**HEALTHY, "lines": {"stuck": [{"room": "r2", "button": "size", "held_s": 40}]}}
    report, clear = judge("pi-1", health, open_keys)
    assert [f.key for f in report] == ["pi-1/r2/size"] and clear == [("stuck_line", "pi-1/r1/call")]


def test_a_lost_supply_and_a_dark_lamp_are_troubles_and_their_recovery_clears_them():
    health = {**HEALTHY, "supply": {"ok": False, "lost_s": 3.0},
              "lamps": {"r1": {"ok": False, "fault": "dark", "for_s": 2.0}, "r2": {"ok": True}}}
    report, _ = judge("pi-1", health, [])
    assert [(f.kind, f.key, f.room) for f in report] == [("supply", "pi-1", None), ("lamp", "pi-1/r1", "r1")]
    assert report[0].detail["rooms"] == ["r1", "r2"] and report[1].detail["fault"] == "dark"
    report, clear = judge("pi-1", HEALTHY, [("supply", "pi-1"), ("lamp", "pi-1/r1")])
    assert report == [] and clear == [("supply", "pi-1"), ("lamp", "pi-1/r1")]


def test_a_health_without_a_field_says_nothing_about_its_troubles():
    """A device older than the field: its open troubles of that kind stay as they are."""
    report, clear = judge("pi-1", {"uptime_s": 1}, [("stuck_line", "pi-1/r1/call"), ("lamp", "pi-1/r1")])
    assert report == [] and clear == []


def test_a_supply_sense_that_is_not_fitted_clears_a_supply_trouble():
    assert judge("pi-1", {**HEALTHY, "supply": None}, [("supply", "pi-1")]) == ([], [("supply", "pi-1")])


@pytest.mark.parametrize("health, says", [
    ({"lines": {"stuck": "r1"}}, "lines.stuck must be a list"),
    ({"lines": {"stuck": [{"room": "r1", "button": "door"}]}}, "button must be one of call, size, presence"),
    ({"lines": {"stuck": [{"room": "r1/x", "button": "call"}]}}, "room must be a name"),
    ({"supply": "lost"}, "supply must be null or an object"),
    ({"lamps": {"r1": {"ok": False, "fault": "flicker"}}}, "fault must be one of dark, lit_when_off"),
    ({"lines": {"stuck": [{"room": "r1", "button": "call"}] * 65}}, "at most 64"),
])
def test_a_badly_shaped_fault_field_is_refused_with_what_is_wrong(health, says):
    with pytest.raises(DomainError) as e:
        faults("pi-1", health)
    assert e.value.code == "invalid" and says in e.value.message


def test_a_lamp_that_cannot_be_switched_off_reads_so():
    t = Trouble("t-000001", "lamp", "pi-1/r1", "pi-1", "r1", {"fault": "lit_when_off"}, 0.0)
    assert text(t) == "A door lamp on device pi-1 cannot be switched off (room r1)"


# -- end to end: device on mock pins, Mosquitto, the hub ---------------------------------------------
@pytest.fixture
def rig(hub, tmp_path):
    config = DeviceConfig(
        device=DeviceSection(id="pi-test", store="test-store", broker=hub.broker_url, outbox=tmp_path / "o.db",
                             hold_s=0.5, debounce_ms=10, heartbeat_s=60, stuck_s=1.0, supply_sense=True),
        rooms=[RoomPins(id="room-1", slot=1, lamp_sense=True), RoomPins(id="room-2", slot=2)])
    rig = SensedRig(config)
    rig.sense().drive_low()  # the supply is there
    rig.device.start()
    wait_until(lambda: not rig.device.fault, what="the device sees the hub")
    yield rig
    rig.device.stop()


def troubles(hub, kind: str) -> list[dict]:
    """The open troubles of ``kind``, as GET /api/v1/troubles lists them."""
    return [t for t in hub.api.ok("GET", "/api/v1/troubles")["troubles"] if t["kind"] == kind]


def test_a_stuck_call_line_opens_a_trouble_naming_room_and_button_and_its_release_clears_it(hub, rig):
    pin = rig.pin("room-1", "call")
    pin.drive_low()
    [t] = wait_until(lambda: troubles(hub, "stuck_line"), timeout=5, what="the stuck line trouble")
    assert (t["device"], t["room"], t["detail"]["button"]) == ("pi-test", "room-1", "call")
    assert "call line of room room-1" in t["text"]
    rig.press("room-2")  # the rest of the device works on
    wait_until(lambda: rig.state("room-2")[1] == "called", what="room 2's call confirmed by the hub")
    pin.drive_high()
    wait_until(lambda: not troubles(hub, "stuck_line"), what="the trouble cleared on release")
    [gone] = [t for t in hub.api.ok("GET", "/api/v1/troubles?all=1")["troubles"] if t["kind"] == "stuck_line"]
    assert gone["cleared_at"] is not None and gone["duration_s"] > 0


def test_a_lost_supply_and_a_dark_lamp_open_troubles_that_close_when_they_recover(hub, rig):
    rig.sense().drive_high()
    [t] = wait_until(lambda: troubles(hub, "supply"), timeout=5, what="the supply trouble")
    assert t["device"] == "pi-test" and t["detail"]["rooms"] == ["room-1", "room-2"]
    rig.sense().drive_low()
    wait_until(lambda: not troubles(hub, "supply"), what="the supply trouble cleared")

    rig.press("room-1")  # the hub lights the lamp; the lamp's sense shows no current
    [t] = wait_until(lambda: troubles(hub, "lamp"), timeout=5, what="the lamp trouble")
    assert (t["room"], t["detail"]["fault"]) == ("room-1", "dark")
    rig.sense("room-1").drive_low()  # it draws current now
    wait_until(lambda: not troubles(hub, "lamp"), what="the lamp trouble cleared")


def test_a_health_with_a_badly_shaped_fault_field_is_stored_refused_and_said_so_on_hub_rejected(hub, topics):
    from tests.helpers import Recorder
    rec = Recorder(hub.broker_url, [topics.hub_rejected])
    try:
        bad = {"uptime_s": 1.0, "outbox": 0, "version": "x", "lines": {"stuck": [{"room": "room-1", "button": "door"}]}}
        rec.publish(topics.device_health("pi-odd"), bad, expiry_s=None)
        [notice] = wait_until(lambda: rec.json_of(topics.hub_rejected), what="the refusal on hub/rejected")
        assert "button must be one of call, size, presence" in notice["reason"]
        devices = {d["id"]: d for d in hub.api.ok("GET", "/api/v1/devices")}
        assert devices["pi-odd"]["health"]["uptime_s"] == 1.0, "the rest of the health is kept"
        assert troubles(hub, "stuck_line") == []
    finally:
        rec.close()
