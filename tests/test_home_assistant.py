"""Home Assistant MQTT discovery (hub.home_assistant) against a real Mosquitto and the real hub:
the configs follow Home Assistant's documented discovery schema, their state topics carry what
their templates read, and everything is announced again on Home Assistant's birth message."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from callbell.broker import free_port
from callbell.protocol import LAMP_STATES
from hub import home_assistant
from tests.helpers import Recorder, event, running_hub, wait_until, write_store

HA = """
[home_assistant]
enabled = true

[[devices]]
id = "pi-a"
rooms = ["room-1"]

[[buttons]]
source = "zigbee2mqtt"
name = "Room 2 button"
room = "room-2"
actions = {single = "call"}
"""

#: Home Assistant's discovery topic: <prefix>/<component>/[<node_id>/]<object_id>/config,
#: node and object ids of [a-zA-Z0-9_-].
DISCOVERY_TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config$")

#: The configuration variables Home Assistant documents for MQTT sensors and binary sensors
#: (home-assistant.io/integrations/sensor.mqtt and binary_sensor.mqtt), by their full names.
COMMON_KEYS = {"availability", "availability_mode", "availability_template", "availability_topic", "device",
               "device_class", "enabled_by_default", "encoding", "entity_category", "entity_picture",
               "expire_after", "force_update", "icon", "json_attributes_template", "json_attributes_topic",
               "name", "default_entity_id", "object_id", "origin", "payload_available", "payload_not_available",
               "platform", "qos", "state_topic", "unique_id", "value_template"}
KEYS = {"sensor": COMMON_KEYS | {"last_reset_value_template", "options", "state_class",
                                 "suggested_display_precision", "unit_of_measurement"},
        "binary_sensor": COMMON_KEYS | {"off_delay", "payload_off", "payload_on"}}
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
               "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
BINARY_SENSOR_CLASSES = {"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
                         "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
                         "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
                         "smoke", "sound", "tamper", "update", "vibration", "window"}
#: A few of the sensor device classes, with the units Home Assistant accepts for them.
SENSOR_CLASS_UNITS = {"duration": {"d", "h", "min", "s", "ms"}, "enum": {None}, "timestamp": {None}}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}


def check_discovery_config(component: str, config: dict) -> None:
    """Fail unless ``config`` follows Home Assistant's documented MQTT discovery schema."""
    unknown = set(config) - KEYS[component]
    assert not unknown, f"keys Home Assistant does not know for {component}: {unknown}"
    assert isinstance(config["state_topic"], str) and "#" not in config["state_topic"] and "+" not in config["state_topic"]
    assert isinstance(config["unique_id"], str) and config["unique_id"]
    assert isinstance(config["name"], str) and config["name"]
    assert config.get("qos", 0) in (0, 1, 2)
    device = config["device"]
    assert set(device) <= DEVICE_KEYS, set(device) - DEVICE_KEYS
    assert isinstance(device["identifiers"], list) and device["identifiers"]
    assert all(isinstance(i, str) for i in device["identifiers"])
    assert all(isinstance(device[k], str) for k in device if k != "identifiers")
    origin = config["origin"]
    assert set(origin) <= ORIGIN_KEYS and isinstance(origin["name"], str)
    for a in config["availability"]:
        assert set(a) <= AVAILABILITY_KEYS and isinstance(a["topic"], str)
        assert all(isinstance(v, str) for v in a.values())
    for key in ("value_template", "json_attributes_topic", "icon", "payload_on", "payload_off"):
        assert key not in config or isinstance(config[key], str), key
    assert config.get("entity_category") in (None, "config", "diagnostic")
    dc = config.get("device_class")
    if component == "binary_sensor":
        assert dc is None or dc in BINARY_SENSOR_CLASSES
    else:
        if dc is not None:
            assert dc in SENSOR_CLASS_UNITS
            assert config.get("unit_of_measurement") in SENSOR_CLASS_UNITS[dc]
        if dc == "enum":  # an enum sensor lists its options and has no unit or state class
            assert isinstance(config["options"], list) and all(isinstance(o, str) for o in config["options"])
            assert "state_class" not in config
        assert config.get("state_class") in STATE_CLASSES | {None}


def ha_store(tmp_path: Path, broker_url: str, extra: str = HA) -> Path:
    path = write_store(tmp_path / "store.toml", broker_url=broker_url, http_port=free_port())
    path.write_text(path.read_text() + extra)
    return path


def configs(recorder: Recorder) -> dict[str, dict]:
    with recorder._lock:
        found = [(t, p, r) for t, p, r in recorder.messages if t.endswith("/config")]
    return {t: json.loads(p) for t, p, _ in found}


@pytest.fixture
def ha(broker):
    r = Recorder(broker.url, ["homeassistant/#", "callbell/#"])
    yield r
    r.close()


@pytest.fixture
def ha_hub(tmp_path, broker, monkeypatch):
    monkeypatch.setattr(home_assistant, "WAITING_REFRESH_S", 0.3)  # so the test sees the timer move
    with running_hub(ha_store(tmp_path, broker.url)) as service:
        yield service


#: Call, waiting, lamp for each of 3 rooms; device online for room-1 (pi-a) and room-2 (its
#: Zigbee2MQTT button); none for room-3, which nothing is known to serve.
EXPECTED = 3 * 3 + 2


def test_discovery_configs_follow_home_assistants_documented_schema(ha_hub, broker):
    # Retained: Home Assistant, subscribing later, gets them all at once.
    late = Recorder(broker.url, ["homeassistant/#"])
    try:
        found = wait_until(lambda: len(configs(late)) >= EXPECTED and configs(late), what="the discovery configs")
        assert all(retained for t, _, retained in late.messages if t.endswith("/config"))
    finally:
        late.close()
    assert len(found) == EXPECTED
    for topic, config in found.items():
        match = DISCOVERY_TOPIC.match(topic)
        assert match, topic
        check_discovery_config(match.group(1), config)
    assert len({c["unique_id"] for c in found.values()}) == EXPECTED
    by_id = {c["unique_id"]: c for c in found.values()}
    call = by_id["callbell_test-store_room-1_call"]
    assert call["state_topic"] == "callbell/test-store/room/room-1/lamp"
    assert call["availability"] == [{"topic": "callbell/test-store/hub/status", "payload_available": "online",
                                     "payload_not_available": "offline"}]
    assert call["device"]["name"] == "Room 1" and call["device"]["suggested_area"] == "a"
    waiting = by_id["callbell_test-store_room-2_waiting"]
    assert (waiting["device_class"], waiting["unit_of_measurement"]) == ("duration", "s")
    assert by_id["callbell_test-store_room-3_lamp"]["options"] == list(LAMP_STATES)
    online = by_id["callbell_test-store_room-1_device_online"]
    assert online["device_class"] == "connectivity"
    assert online["state_topic"] == "callbell/test-store/device/pi-a/status"
    assert (online["payload_on"], online["payload_off"]) == ("online", "offline")
    button = by_id["callbell_test-store_room-2_device_online"]  # Zigbee2MQTT's availability
    assert button["state_topic"] == "zigbee2mqtt/Room 2 button/availability"
    assert (button["payload_on"], button["payload_off"]) == ("online", "offline")
    assert "callbell_test-store_room-3_device_online" not in by_id
    # The entities of a room are one Home Assistant device.
    assert len({json.dumps(c["device"], sort_keys=True) for c in found.values()}) == 3


def test_the_state_topics_carry_what_the_templates_read_and_follow_a_call(ha_hub, ha, topics):
    found = wait_until(lambda: len(configs(ha)) >= EXPECTED and configs(ha), what="the discovery configs")
    ha.publish(topics.event("room-1"), event("e-ha-1", device="pi-a"))
    lamp = wait_until(lambda: (ha.last(topics.lamp("room-1")) or {}).get("state") == "called"
                      and ha.last(topics.lamp("room-1")), what="the lamp called")
    first = wait_until(lambda: (ha.last(topics.waiting("room-1")) or {}).get("status") == "open"
                       and ha.last(topics.waiting("room-1")), what="room-1 waiting")
    assert first["call"] == lamp["call"]
    # Every field a template reads is in the payload of its state topic.
    payloads = {topics.lamp("room-1"): lamp, topics.waiting("room-1"): first}
    for config in found.values():
        if config["state_topic"] in payloads:
            for name in re.findall(r"value_json\.(\w+)", config.get("value_template", "")):
                assert name in payloads[config["state_topic"]], (config["unique_id"], name)
    # The hub refreshes the waiting time while nobody is at the door.
    later = wait_until(lambda: (ha.last(topics.waiting("room-1")) or {}).get("waiting_s", 0) >= 1
                       and ha.last(topics.waiting("room-1")), timeout=5, what="the waiting time to grow")
    assert later["call"] == lamp["call"] and later["status"] == "open"
    # The associate arrives: no longer waiting, back to 0, and the lamp idle.
    ha.publish(topics.event("room-1"), event("e-ha-2", type="presence", device="pi-a"))
    wait_until(lambda: (ha.last(topics.waiting("room-1")) or {}).get("status") == "answered", what="answered")
    assert ha.last(topics.waiting("room-1"))["waiting_s"] == 0
    assert ha.last(topics.lamp("room-1"))["state"] == "idle"
    time.sleep(0.8)  # no refreshes of a room nobody waits in
    assert ha.last(topics.waiting("room-1"))["waiting_s"] == 0


def test_discovery_is_announced_again_when_home_assistant_comes_online(ha_hub, ha):
    wait_until(lambda: len(configs(ha)) >= EXPECTED, what="the first announcement")
    before = ha_hub.home_assistant.announcements
    ha.clear()
    ha.publish("homeassistant/status", "offline", expiry_s=None)  # its last will: nothing to do
    time.sleep(0.5)
    assert configs(ha) == {}
    ha.publish("homeassistant/status", "online", expiry_s=None)  # its birth message after a restart
    again = wait_until(lambda: len(configs(ha)) >= EXPECTED and configs(ha), what="the re-announcement")
    assert len(again) == EXPECTED
    assert ha_hub.home_assistant.announcements == before + 1
    # The status messages were Home Assistant's, not bad input.
    assert ha_hub.api.ok("GET", "/api/v1/rejected") == []


def test_home_assistant_discovery_is_off_unless_enabled(tmp_path, broker, ha):
    with running_hub(ha_store(tmp_path, broker.url, extra="")) as hub:
        wait_until(lambda: hub.mqtt.connected, what="the hub connected")
        ha.publish("homeassistant/status", "online", expiry_s=None)
        time.sleep(0.8)
        assert configs(ha) == {}
        assert hub.home_assistant is None


def test_a_custom_discovery_prefix_is_used(tmp_path, broker):
    extra = '\n[home_assistant]\nenabled = true\ndiscovery_prefix = "ha-test"\n'
    r = Recorder(broker.url, ["ha-test/#", "homeassistant/#"])
    try:
        with running_hub(ha_store(tmp_path, broker.url, extra=extra)):
            found = wait_until(lambda: len(configs(r)) >= 9 and configs(r), what="the discovery configs")
            assert len(found) == 9  # no [[devices]] or [[buttons]]: no device online entities
            assert all(t.startswith("ha-test/") for t in found)
            r.clear()
            r.publish("ha-test/status", "online", expiry_s=None)
            wait_until(lambda: len(configs(r)) >= 9, what="the re-announcement on ha-test/status")
    finally:
        r.close()
