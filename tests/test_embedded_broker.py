"""The embedded broker: `callbell hub` with no broker configured runs its own Mosquitto,
durable enough that no press is lost while the hub's client, the hub or the broker is down."""
import time

import pytest

from callbell.broker import AUTOSAVE_S, free_port
from hub.config import load_store_config
from tests.helpers import HubProcess, Recorder, event, running_hub, wait_until, write_store


@pytest.fixture
def embedded_store(tmp_path):
    return write_store(tmp_path / "store.toml", broker_url=None, http_port=free_port())


def open_rooms(api):
    return sorted(c["room"] for c in api.ok("GET", "/api/v1/calls?status=open"))


def test_the_hub_starts_its_own_broker_and_it_keeps_a_press_while_the_hubs_client_is_down(embedded_store, topics):
    with running_hub(embedded_store) as service:
        api = service.api
        assert service.broker is not None and service.broker.running
        device = Recorder(service.broker_url, [topics.all_events])
        service.mqtt.link.stop()  # the hub's MQTT client goes away (its session stays)
        assert api.ok("GET", "/api/v1/health")["broker"] is False
        device.publish(topics.event("room-1"), event("while-away"))
        time.sleep(0.5)
        assert open_rooms(api) == []
        service.mqtt.link.start()  # and comes back: the broker delivers what it kept
        wait_until(lambda: open_rooms(api) == ["room-1"], what="the press kept by the broker")
        device.close()
    assert not service.broker.running


def test_a_hub_killed_with_its_broker_takes_it_over_on_restart_and_loses_nothing(embedded_store, tmp_path, topics):
    config = load_store_config(embedded_store)
    hub = HubProcess(embedded_store, config.http.port, tmp_path / "hub.log").start()
    url = f"mqtt://127.0.0.1:{config.mqtt.embedded_port}"
    try:
        device = Recorder(url, [], client_id="device")
        device.publish(topics.event("room-1"), event("before"))
        wait_until(lambda: open_rooms(hub.api) == ["room-1"], what="first call")
        hub.kill9()  # the orphaned broker keeps running; devices still reach it
        device.publish(topics.event("room-2"), event("during"))
        device.close()
        hub.start()
        wait_until(lambda: open_rooms(hub.api) == ["room-1", "room-2"], timeout=20,
                   what="the press made while the hub was dead")
        assert "taking over from a broker" in hub.output()
    finally:
        hub.stop()


def test_the_embedded_broker_is_restarted_after_a_crash_without_losing_queued_presses(embedded_store, topics):
    with running_hub(embedded_store) as service:
        api = service.api
        service.mqtt.link.stop()
        device = Recorder(service.broker_url, [], client_id="device")
        device.publish(topics.event("room-3"), event("queued"))
        device.close()
        # Mosquitto acknowledges first and saves within AUTOSAVE_S; a Callbell device covers
        # that window by resending after a drop (tests/test_device.py). A plain client waits.
        time.sleep(AUTOSAVE_S + 1.5)  # Mosquitto checks its save timer about once a second
        service.broker.kill()  # crash: only what was saved to disk survives
        wait_until(lambda: service.broker.running and service.broker.restarts == 1, timeout=10,
                   what="the supervisor to restart the broker")
        service.mqtt.link.start()
        wait_until(lambda: open_rooms(api) == ["room-3"], timeout=15, what="the press queued before the crash")
