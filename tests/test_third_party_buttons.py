"""Third-party buttons as call buttons: Zigbee2MQTT and Shelly messages, in the formats those
projects publish, through a real Mosquitto into the real hub (hub.third_party_buttons)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from callbell.broker import free_port
from callbell.settings import ConfigError
from hub.config import load_store_config
from tests.helpers import Recorder, running_hub, wait_until, write_store

Z2M_NAME = "Fitting room 2 button"
Z2M_TOPIC = f"zigbee2mqtt/{Z2M_NAME}"
SHELLY2_ID = "shellyplusi4-a8032ab12345"
SHELLY2_TOPIC = f"{SHELLY2_ID}/events/rpc"
SHELLY1_ID = "shellybutton1-A4CF12F45301"
SHELLY1_TOPIC = f"shellies/{SHELLY1_ID}/input_event/0"

BUTTONS = f"""
[[devices]]
id = "pi-a"
rooms = ["room-1"]

[[buttons]]
source = "zigbee2mqtt"
name = "{Z2M_NAME}"
room = "room-2"
actions = {{single = "call", double = "call:size", hold = "cancel"}}

[[buttons]]
source = "shelly"
name = "{SHELLY2_ID}"
room = "room-3"
actions = {{single_push = "call", long_push = "cancel", double_push = "presence"}}

[[buttons]]
source = "shelly-gen1"
name = "{SHELLY1_ID}"
room = "room-1"
actions = {{S = "call", L = "cancel"}}
"""


def button_store(tmp_path: Path, broker_url: str, extra: str = BUTTONS) -> Path:
    path = write_store(tmp_path / "store.toml", broker_url=broker_url, http_port=free_port())
    path.write_text(path.read_text() + extra)
    return path


@pytest.fixture
def button_hub(tmp_path, broker):
    with running_hub(button_store(tmp_path, broker.url)) as service:
        yield service


def open_call(hub, room: str) -> dict | None:
    calls = [c for c in hub.api.ok("GET", "/api/v1/calls?status=open") if c["room"] == room]
    return calls[0] if calls else None


def shelly_notify(ts: float, *events: str, component: str = "input:0") -> dict:
    """A Shelly Gen2 NotifyEvent as the device publishes it on <id>/events/rpc."""
    return {"src": SHELLY2_ID, "dst": f"{SHELLY2_ID}/events", "method": "NotifyEvent",
            "params": {"ts": ts, "events": [{"component": component, "id": int(component.split(":")[1]),
                                             "event": e, "ts": ts} for e in events]}}


def publish(recorder: Recorder, topic: str, payload: dict | str, qos: int = 0, retain: bool = False) -> None:
    """As a third-party publisher does: no MQTT 5 message expiry."""
    recorder.publish(topic, payload, qos=qos, retain=retain, expiry_s=None)


def test_a_zigbee2mqtt_single_press_opens_a_call_in_the_mapped_room(button_hub, recorder, topics):
    publish(recorder, Z2M_TOPIC, {"action": "single", "battery": 97, "linkquality": 120, "voltage": 3000})
    call = wait_until(lambda: open_call(button_hub, "room-2"), what="a call in room-2")
    assert call["reason"] == "help"
    lamp = wait_until(lambda: recorder.last(topics.lamp("room-2")), what="room-2's lamp")
    assert lamp["state"] == "called" and lamp["call"] == call["id"]
    # The press is recorded like a device's, with the button as its device.
    events = button_hub.api.ok("GET", "/api/v1/events.csv")
    assert "zigbee2mqtt-fitting-room-2-button" in events
    # Holding it cancels (mapped hold = "cancel"), even though [[devices]] does not list it.
    publish(recorder, Z2M_TOPIC, {"action": "hold", "battery": 97})
    wait_until(lambda: button_hub.api.ok("GET", f"/api/v1/calls/{call['id']}")["status"] == "cancelled",
               what="the call cancelled")
    assert not button_hub.api.ok("GET", "/api/v1/rejected")


def test_a_zigbee2mqtt_double_press_calls_with_the_mapped_reason(button_hub, recorder):
    publish(recorder, Z2M_TOPIC, {"action": "double"})
    call = wait_until(lambda: open_call(button_hub, "room-2"), what="a call in room-2")
    assert call["reason"] == "size"


def test_zigbee2mqtt_state_reports_and_the_cleared_action_are_not_presses(button_hub, recorder):
    publish(recorder, Z2M_TOPIC, {"battery": 96, "linkquality": 90})
    publish(recorder, Z2M_TOPIC, {"action": "", "battery": 96})
    publish(recorder, Z2M_TOPIC, {"action": None, "battery": 96})
    publish(recorder, Z2M_TOPIC, {"action": "single"})  # then a real press, as a marker
    wait_until(lambda: open_call(button_hub, "room-2"), what="a call in room-2")
    assert open_call(button_hub, "room-2")["reminders"] == 0
    assert not button_hub.api.ok("GET", "/api/v1/rejected")


def test_a_shelly_gen2_push_opens_a_call_and_a_repeated_notification_is_ignored(button_hub, recorder, topics):
    ts = round(time.time(), 2)
    # What a Shelly Plus i4 sends for one short push: contact down, contact up, then the push.
    publish(recorder, SHELLY2_TOPIC, shelly_notify(ts, "btn_down"))
    publish(recorder, SHELLY2_TOPIC, shelly_notify(ts + 0.1, "btn_up"))
    publish(recorder, SHELLY2_TOPIC, shelly_notify(ts + 0.3, "single_push"), qos=1)
    call = wait_until(lambda: open_call(button_hub, "room-3"), what="a call in room-3")
    # The same notification again (a QoS 1 repeat) is the same event id: ignored.
    publish(recorder, SHELLY2_TOPIC, shelly_notify(ts + 0.3, "single_push"), qos=1)
    # Status notifications on the same topic and other inputs are not presses of this button.
    publish(recorder, SHELLY2_TOPIC, {"src": SHELLY2_ID, "method": "NotifyStatus",
                                      "params": {"ts": ts, "input:0": {"id": 0, "state": False}}})
    publish(recorder, SHELLY2_TOPIC, shelly_notify(ts + 0.5, "single_push", component="input:1"))
    # A second, later push is a reminder on the open call.
    publish(recorder, SHELLY2_TOPIC, shelly_notify(ts + 5, "single_push"), qos=1)
    wait_until(lambda: open_call(button_hub, "room-3")["reminders"] == 1, what="one reminder")
    time.sleep(0.3)
    assert open_call(button_hub, "room-3")["reminders"] == 1
    assert open_call(button_hub, "room-3")["id"] == call["id"]
    # A double push is presence (mapped): the associate at the door answers the call.
    publish(recorder, SHELLY2_TOPIC, shelly_notify(ts + 9, "double_push"))
    wait_until(lambda: button_hub.api.ok("GET", f"/api/v1/calls/{call['id']}")["status"] == "answered",
               what="the call answered")
    assert not button_hub.api.ok("GET", "/api/v1/rejected")


def test_a_shelly_gen1_input_event_opens_a_call_and_a_repeated_count_is_ignored(button_hub, recorder):
    publish(recorder, SHELLY1_TOPIC, {"event": "S", "event_cnt": 7})
    call = wait_until(lambda: open_call(button_hub, "room-1"), what="a call in room-1")
    publish(recorder, SHELLY1_TOPIC, {"event": "S", "event_cnt": 7})  # republished on reconnect
    publish(recorder, SHELLY1_TOPIC, {"event": "S", "event_cnt": 8})
    wait_until(lambda: open_call(button_hub, "room-1")["reminders"] == 1, what="one reminder")
    time.sleep(0.3)
    assert open_call(button_hub, "room-1")["reminders"] == 1
    publish(recorder, SHELLY1_TOPIC, {"event": "L", "event_cnt": 9})
    wait_until(lambda: button_hub.api.ok("GET", f"/api/v1/calls/{call['id']}")["status"] == "cancelled",
               what="the call cancelled")


def test_an_unmapped_action_or_a_malformed_message_is_rejected_with_a_reason_and_the_hub_keeps_serving(
        button_hub, recorder, topics):
    publish(recorder, Z2M_TOPIC, {"action": "triple"})
    publish(recorder, Z2M_TOPIC, "not json {")
    publish(recorder, SHELLY1_TOPIC, {"event": "S"})  # no event_cnt
    publish(recorder, SHELLY2_TOPIC, shelly_notify(time.time(), "triple_push"))
    rejected = wait_until(lambda: len(button_hub.api.ok("GET", "/api/v1/rejected")) >= 4 and
                          button_hub.api.ok("GET", "/api/v1/rejected"), what="four rejections")
    reasons: dict[str, list[str]] = {}
    for r in rejected:
        reasons.setdefault(r["topic"], []).append(r["reason"])
    assert all(r["channel"] == "buttons" for r in rejected)
    assert any("'triple'" in x and "not mapped" in x for x in reasons[Z2M_TOPIC])
    assert any("not valid JSON" in x for x in reasons[Z2M_TOPIC])
    assert any("event_cnt" in x for x in reasons[SHELLY1_TOPIC])
    assert any("'triple_push'" in x for x in reasons[SHELLY2_TOPIC])
    notices = wait_until(lambda: len(recorder.json_of(topics.hub_rejected)) >= 4 and recorder.json_of(topics.hub_rejected),
                         what="the notices on hub/rejected")
    assert any("'triple'" in n["reason"] and "(mapped: double, hold, single)" in n["reason"] for n in notices)
    assert any("not valid JSON" in n["reason"] for n in notices)
    # Still serving: a good press works.
    publish(recorder, Z2M_TOPIC, {"action": "single"})
    wait_until(lambda: open_call(button_hub, "room-2"), what="a call in room-2")


def test_a_retained_button_message_is_not_a_press(tmp_path, broker, recorder):
    # An old press the broker kept (a publisher that retains) is replayed on every subscription.
    publish(recorder, Z2M_TOPIC, {"action": "single"}, qos=1, retain=True)
    with running_hub(button_store(tmp_path, broker.url)) as hub:
        wait_until(lambda: hub.mqtt.connected, what="the hub connected")
        time.sleep(0.5)
        assert open_call(hub, "room-2") is None
        publish(recorder, Z2M_TOPIC, {"action": "single"})  # a live press still counts
        wait_until(lambda: open_call(hub, "room-2"), what="a call in room-2")


@pytest.mark.parametrize("button, key", [
    ('source = "zigbee2mqtt"\nname = "b"\nroom = "room-9"\nactions = {single = "call"}', "buttons[0].room"),
    ('source = "zigbee2mqtt"\nname = "b"\nroom = "room-1"\nactions = {single = "press"}', "buttons[0].actions.single"),
    ('source = "zigbee2mqtt"\nname = "b"\nroom = "room-1"\nactions = {single = "call:shoes"}', "buttons[0].actions.single"),
    ('source = "zigbee2mqtt"\nname = "b/#"\nroom = "room-1"\nactions = {single = "call"}', "buttons[0].name: 'b/#' cannot be part of an MQTT topic"),
    ('source = "hue"\nname = "b"\nroom = "room-1"\nactions = {single = "call"}', "buttons[0].source"),
])
def test_a_bad_button_config_is_refused_naming_the_key(tmp_path, button, key):
    path = write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1883", http_port=free_port())
    path.write_text(path.read_text() + f"\n[[buttons]]\n{button}\n")
    with pytest.raises(ConfigError) as e:
        load_store_config(path)
    assert key in str(e.value)


def test_two_buttons_mapping_the_same_action_of_the_same_input_are_refused(tmp_path):
    path = write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1883", http_port=free_port())
    one = '\n[[buttons]]\nsource = "shelly"\nname = "shelly-x"\nroom = "{room}"\nactions = {{single_push = "call"}}\n'
    path.write_text(path.read_text() + one.format(room="room-1") + one.format(room="room-2"))
    with pytest.raises(ConfigError) as e:
        load_store_config(path)
    assert "buttons[1].actions.single_push" in str(e.value) and "buttons[0]" in str(e.value)


def test_one_shelly_with_four_inputs_serves_four_rooms(tmp_path, broker, recorder):
    extra = "".join(f'\n[[buttons]]\nsource = "shelly"\nname = "{SHELLY2_ID}"\nroom = "room-{i + 1}"\ninput = {i}\n'
                    f'actions = {{single_push = "call"}}\n' for i in range(3))
    with running_hub(button_store(tmp_path, broker.url, extra)) as hub:
        ts = time.time()
        publish(recorder, SHELLY2_TOPIC, shelly_notify(ts, "single_push", component="input:2"))
        wait_until(lambda: open_call(hub, "room-3"), what="a call in room-3")
        assert open_call(hub, "room-1") is None and open_call(hub, "room-2") is None
        assert hub.api.ok("GET", "/api/v1/rejected") == []
