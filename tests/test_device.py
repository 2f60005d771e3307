"""The device program on gpiozero's mock pins, against a real Mosquitto (and the real hub
where the hub's answer matters)."""
import json
import time
from pathlib import Path

import pytest
from firmware.wiring import mock_pins

from callbell.broker import AUTOSAVE_S, Broker
from callbell.protocol import LampState
from firmware.config import DeviceConfig, DeviceSection, RoomPins
from firmware.device import Device
from tests.helpers import Recorder, wait_until

HOLD_S = 0.5


def make_config(tmp_path: Path, broker_url: str, rooms=("room-1", "room-2"), **device) -> DeviceConfig:
    return DeviceConfig(
        device=DeviceSection(id="pi-test", store="test-store", broker=broker_url,
                             outbox=tmp_path / "outbox.db", hold_s=HOLD_S, debounce_ms=30, **device),
        rooms=[RoomPins(id=r, slot=i + 1) for i, r in enumerate(rooms)])


class Rig:
    """A device on mock pins with a log of everything its outputs showed."""

    def __init__(self, config: DeviceConfig):
        self.factory = mock_pins()
        self.shown: list[tuple[float, str, str, str]] = []
        self.device = Device(config, pin_factory=self.factory, on_display=self._display)
        self.config = config

    def _display(self, room, what, state):
        self.shown.append((time.monotonic(), room, what, state))

    def pin(self, room: str, role: str):
        r = next(r for r in self.config.rooms if r.id == room)
        return self.factory.pin(int(getattr(r, role).removeprefix("GPIO")))

    def press(self, room="room-1", role="call", hold=0.05):
        pin = self.pin(room, role)
        pin.drive_low()
        time.sleep(hold)
        pin.drive_high()

    def lamp_pin_on(self, room="room-1") -> bool:
        return self.pin(room, "lamp").state == 1

    def state(self, room="room-1") -> tuple[str, str]:
        r = self.device.rooms[room]
        return r.lamp_state, r.light_state


@pytest.fixture
def rig(tmp_path, broker):
    rig = Rig(make_config(tmp_path, broker.url))
    rig.device.start()
    assert rig.device.link.wait_connected(5)
    yield rig
    rig.device.stop()


def events(recorder, topics, room="room-1"):
    return recorder.json_of(topics.event(room))


def test_a_press_lights_the_lamp_before_anything_is_published(tmp_path, broker, recorder, topics):
    rig = Rig(make_config(tmp_path, broker.url))
    published = []
    real_publish = rig.device.link.publish
    rig.device.link.publish = lambda topic, *a, **k: (published.append(topic), real_publish(topic, *a, **k))[1]
    rig.device.start()
    rig.device.link.wait_connected(5)
    try:
        rig.pin("room-1", "call").drive_low()
        # mock pins call back synchronously: the lamp is already on when drive_low returns
        assert rig.lamp_pin_on(), "the lamp is on as soon as the button is down"
        assert topics.event("room-1") not in published, "nothing is published before the lamp lights"
        time.sleep(0.05)  # a shopper's tap (shorter than MIN_PRESS_MS is a glitch, not a press)
        rig.pin("room-1", "call").drive_high()
        [e] = wait_until(lambda: events(recorder, topics), what="the call event")
        assert e["type"] == "call" and e["reason"] == "help" and e["device"] == "pi-test"
        assert e["age_ms"] >= 0 and e["id"].startswith("pi-test-")
        assert rig.state()[1] in ("pending", "fault"), "the button light blinks until the hub confirms"
    finally:
        rig.device.stop()


def test_holding_the_button_sends_cancel_not_call(rig, recorder, topics):
    rig.press(hold=HOLD_S + 0.2)
    [e] = wait_until(lambda: events(recorder, topics), what="the cancel event")
    assert e["type"] == "cancel"
    time.sleep(0.2)
    assert len(events(recorder, topics)) == 1
    assert rig.state()[0] == "idle"


def test_the_size_button_calls_with_reason_size(rig, recorder, topics):
    rig.press(role="size")
    [e] = wait_until(lambda: events(recorder, topics), what="the size call")
    assert e["reason"] == "size"


def test_the_staff_button_sends_presence(rig, recorder, topics):
    rig.press(role="presence")
    [e] = wait_until(lambda: events(recorder, topics), what="presence")
    assert e["type"] == "presence"


def test_contact_bounce_is_one_press(rig, recorder, topics):
    pin = rig.pin("room-1", "call")
    for _ in range(5):  # 5 ms of chatter, then a clean press
        pin.drive_low()
        time.sleep(0.001)
        pin.drive_high()
        time.sleep(0.001)
    pin.drive_low()
    time.sleep(0.08)
    pin.drive_high()
    wait_until(lambda: events(recorder, topics), what="the call")
    time.sleep(0.3)
    assert len(events(recorder, topics)) == 1


def test_a_tap_shorter_than_the_debounce_window_still_counts(rig, recorder, topics):
    pin = rig.pin("room-1", "call")
    pin.drive_low()
    time.sleep(0.025)  # under debounce_ms (30), over MIN_PRESS_MS (20)
    pin.drive_high()
    [e] = wait_until(lambda: events(recorder, topics), what="the short tap")
    assert e["type"] == "call"


def test_two_presses_a_second_apart_are_two_events(rig, recorder, topics):
    rig.press()
    time.sleep(0.2)
    rig.press()
    wait_until(lambda: len(events(recorder, topics)) == 2, what="two events")
    ids = {e["id"] for e in events(recorder, topics)}
    assert len(ids) == 2


def test_the_hub_lamp_state_drives_lamp_and_light(rig, recorder, topics):
    recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
    wait_until(lambda: not rig.device.fault, what="no fault once the hub is online")
    recorder.publish(topics.lamp("room-1"), LampState("acknowledged", "c-1", "help", 1.0, "ana").to_json(),
                     retain=True, expiry_s=None)
    wait_until(lambda: rig.state() == ("acknowledged", "acknowledged"), what="acknowledged pattern")
    assert rig.device.rooms["room-1"].lamp.pattern == "slow"
    recorder.publish(topics.lamp("room-1"), LampState("overdue", "c-1", "help", 1.0).to_json(), retain=True, expiry_s=None)
    wait_until(lambda: rig.state() == ("overdue", "overdue"), what="overdue pattern")
    assert rig.device.rooms["room-1"].lamp.pattern == "fast"


def test_hub_offline_shows_fault_and_its_return_restores_the_hub_state(rig, recorder, topics):
    recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
    recorder.publish(topics.lamp("room-1"), LampState("called", "c-1", "help", 1.0).to_json(), retain=True, expiry_s=None)
    wait_until(lambda: rig.state() == ("called", "called"), what="called")
    recorder.publish(topics.hub_status, "offline", retain=True, expiry_s=None)
    wait_until(lambda: rig.state() == ("called", "fault"), what="fault light, lamp keeps the call")
    assert rig.device.rooms["room-1"].light.pattern == "blip"
    recorder.publish(topics.lamp("room-1"), LampState("acknowledged", "c-1", "help", 2.0, "ben").to_json(),
                     retain=True, expiry_s=None)
    recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
    wait_until(lambda: rig.state() == ("acknowledged", "acknowledged"), what="the hub's state wins")


def test_losing_the_broker_shows_fault(tmp_path, broker, recorder, topics):
    recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
    rig = Rig(make_config(tmp_path, broker.url))
    rig.device.start()
    try:
        wait_until(lambda: not rig.device.fault, what="hub seen")
        time.sleep(AUTOSAVE_S + 1.5)  # the hub's retained status is long on disk in a real store
        broker.kill()
        wait_until(lambda: rig.device.fault, timeout=15, what="fault after the broker died")
        broker.start()
        wait_until(lambda: not rig.device.fault, timeout=15, what="recovered after the broker came back")
    finally:
        rig.device.stop()


def test_the_device_reports_online_health_and_its_last_will(tmp_path, broker, recorder, topics):
    rig = Rig(make_config(tmp_path, broker.url, heartbeat_s=0.2))
    rig.device.start()
    wait_until(lambda: recorder.of(topics.device_status("pi-test"))[-1:] == [b"online"], what="online")
    health = wait_until(lambda: len(recorder.of(topics.device_health("pi-test"))) >= 3 and
                        recorder.json_of(topics.device_health("pi-test"))[-1], what="heartbeats")
    assert {"uptime_s", "outbox", "version", "reconnects", "last_hub_contact_s"} <= set(health)
    # a crash (no clean disconnect) makes the broker publish the will
    rig.device.link._client._sock.close()
    rig.device.link._client.loop_stop()
    wait_until(lambda: recorder.of(topics.device_status("pi-test"))[-1:] == [b"offline"], timeout=15,
               what="the last will")
    rig.device._stop.set()


def test_presses_while_the_broker_is_down_survive_a_device_kill_and_arrive_once(tmp_path, recorder, topics):
    """Broker stopped; 20 presses queued on disk; the device 'dies'; device and broker come back."""
    broker = Broker(tmp_path / "b2").start()
    hub_side = Recorder(broker.url, [topics.all_events], client_id="hub-side")
    hub_side.client.disconnect()
    hub_side.client.loop_stop()
    rig = Rig(make_config(tmp_path, broker.url, rooms=("room-1", "room-2", "room-3", "room-4")))
    rig.device.start()
    wait_until(lambda: rig.device.link.connected, what="connected")
    broker.kill()
    wait_until(lambda: not rig.device.link.connected, timeout=15, what="device noticed")
    truth = []
    for i in range(20):
        room = f"room-{i % 4 + 1}"
        truth.append((room, time.time()))
        rig.press(room, hold=0.03)
        time.sleep(0.05)
    assert len(rig.device.outbox) == 20
    # Power cut: the process is gone without a goodbye; only the outbox file remains.
    rig.device.link._client.loop_stop()
    rig.device.outbox.close()
    time.sleep(1.5)  # time passes before anything comes back

    broker.start()
    again = Rig(make_config(tmp_path, broker.url, rooms=("room-1", "room-2", "room-3", "room-4")))
    collector = Recorder(broker.url, [topics.all_events], client_id="collector")
    received_at = {}
    orig = collector._on_message

    def stamp(client, userdata, msg):
        received_at.setdefault(json.loads(msg.payload)["id"], time.time())
        orig(client, userdata, msg)
    collector.client.on_message = stamp
    again.device.start()
    try:
        wait_until(lambda: len(received_at) == 20, timeout=20, what="all 20 presses")
        got = [(t, json.loads(p)) for t, p, _ in collector.messages]
        assert len({e["id"] for _, e in got}) == 20
        wait_until(lambda: len(again.device.outbox) == 0, what="outbox emptied after broker acks")
        for (room, pressed), (topic, e) in zip(truth, sorted(got, key=lambda x: x[1]["id"])):
            assert topic == topics.event(room)
            estimated = received_at[e["id"]] - e["age_ms"] / 1000.0
            assert abs(estimated - pressed) < 1.0, f"press time off by {estimated - pressed:.2f} s"
    finally:
        again.device.stop()
        collector.close()
        broker.stop()


def test_a_full_outbox_refuses_the_newest_and_says_so(tmp_path, caplog):
    config = make_config(tmp_path, "mqtt://127.0.0.1:1", outbox_limit=10)
    rig = Rig(config)
    for _ in range(12):
        rig.press(hold=0.03)
        time.sleep(0.04)
    assert len(rig.device.outbox) == 10 and rig.device.outbox.refused == 2
    assert "outbox full" in caplog.text
    rig.device.stop()


def test_an_event_acknowledged_just_before_a_broker_crash_is_sent_again(tmp_path, topics):
    """Mosquitto acknowledges before it saves; the outbox keeps acknowledged events a while and
    resends them when the connection drops, so a crash in that window loses nothing."""
    broker = Broker(tmp_path / "b3").start()
    hub_side = Recorder(broker.url, [topics.all_events], client_id="hub-side", persistent=True)
    hub_side.client.disconnect()
    hub_side.client.loop_stop()
    time.sleep(AUTOSAVE_S + 1.5)  # the hub's session is long on disk in a real store
    rig = Rig(make_config(tmp_path, broker.url))
    rig.device.start()
    try:
        wait_until(lambda: rig.device.link.connected, what="connected")
        rig.press()
        wait_until(lambda: len(rig.device.outbox) == 0, what="the broker's acknowledgement")
        broker.kill()  # at once: the broker may not have saved the message
        broker.start()
        wait_until(lambda: rig.device.link.connected and rig.device.link.reconnects == 1, timeout=15,
                   what="the device to reconnect")
        hub_side = Recorder(broker.url, [topics.all_events], client_id="hub-side", persistent=True)
        got = wait_until(lambda: hub_side.json_of(topics.event("room-1")), timeout=10,
                         what="the event, from the broker's disk or resent by the device")
        assert {e["type"] for e in got} == {"call"} and len({e["id"] for e in got}) == 1
        hub_side.close()
    finally:
        rig.device.stop()
        broker.stop()


def test_an_rgb_door_lamp_shows_colour_as_well_as_rhythm(tmp_path, broker, recorder, topics):
    config = DeviceConfig(
        device=DeviceSection(id="pi-rgb", store="test-store", broker=broker.url, outbox=tmp_path / "o.db"),
        rooms=[RoomPins(id="room-1", call="GPIO17", lamp="GPIO23", lamp_green="GPIO9", lamp_blue="GPIO10",
                        lamp_kind="rgb", no_size=True, no_presence=True)])
    rig = Rig(config)
    rig.device.start()
    try:
        recorder.publish(topics.hub_status, "online", retain=True, expiry_s=None)
        recorder.publish(topics.lamp("room-1"), LampState("called", "c-1", "help", 1.0).to_json(), retain=True, expiry_s=None)
        lamp = rig.device.rooms["room-1"].lamp
        wait_until(lambda: lamp.pattern == "on", what="the lamp on")
        assert lamp.led.value == (1.0, 0.45, 0.0)  # amber
        recorder.publish(topics.lamp("room-1"), LampState("overdue", "c-1", "help", 1.0).to_json(), retain=True, expiry_s=None)
        wait_until(lambda: lamp.pattern == "fast", what="fast blink")
        assert lamp.colour == (1.0, 0.0, 0.0)  # red
    finally:
        rig.device.stop()


def test_a_pwm_lamp_is_dimmed_to_its_brightness(tmp_path, broker):
    config = DeviceConfig(
        device=DeviceSection(id="pi-pwm", store="test-store", broker=broker.url, outbox=tmp_path / "o.db"),
        rooms=[RoomPins(id="room-1", slot=1, lamp_kind="pwm", lamp_brightness=0.4)])
    rig = Rig(config)
    try:
        rig.press()
        assert rig.device.rooms["room-1"].lamp.led.value == 0.4
    finally:
        rig.device.stop()


def test_a_mock_pin_remembers_only_its_recent_changes_so_a_simulated_device_does_not_grow():
    from firmware.wiring import MOCK_PIN_HISTORY
    factory = mock_pins()
    pin = factory.pin(17)
    pin.function = "output"
    for i in range(5 * MOCK_PIN_HISTORY):
        pin.state = i % 2
    assert MOCK_PIN_HISTORY <= len(pin.states) <= 2 * MOCK_PIN_HISTORY + 1
    assert pin.states[-1].state == (5 * MOCK_PIN_HISTORY - 1) % 2


def test_an_event_older_than_the_outbox_keeps_one_is_dropped_unsent_and_counted(tmp_path, broker, recorder, topics):
    from callbell.protocol import OUTBOX_MAX_AGE_S
    rig = Rig(make_config(tmp_path, broker.url))
    outbox = rig.device.outbox
    old = outbox.add("room-1", "call", "help", mono=time.monotonic() - OUTBOX_MAX_AGE_S - 3600)
    fresh = outbox.add("room-1", "call", "help")
    rig.device.start()
    try:
        sent = wait_until(lambda: events(recorder, topics), what="the fresh event published")
        health = wait_until(lambda: recorder.last(topics.device_health("pi-test")), what="a health message")
        assert [e["id"] for e in sent] == [fresh.id]
        assert old.id not in [e["id"] for e in events(recorder, topics)]
        assert outbox.expired == 1 and health["outbox_expired"] == 1
    finally:
        rig.device.stop()
