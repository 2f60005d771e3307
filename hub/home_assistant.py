"""Home Assistant MQTT discovery: every room shows up in Home Assistant as a device.

Off unless ``[home_assistant] enabled = true``. The hub publishes one retained discovery config
per entity on ``<discovery_prefix>/<component>/callbell_<store>/<room>_<entity>/config``
(Home Assistant's documented discovery topic, node id and object id of ``[a-zA-Z0-9_-]``), and
announces them all again whenever Home Assistant publishes ``online`` on
``<discovery_prefix>/status`` (its birth message, after a restart) and whenever the hub
(re)connects to the broker.

Entities of a room (the device; its name is the room's, its suggested area the zone's):

============== ============= ========================================================
entity         component     state read from
============== ============= ========================================================
Call           binary_sensor the room's lamp topic (retained): ON unless the lamp is idle,
                             i.e. while the shopper waits for someone (open, acknowledged)
Waiting        sensor        ``room/{room}/waiting`` (retained), published by this module:
                             seconds since the press while nobody is at the door, else 0;
                             device class duration, unit s; refreshed every
                             WAITING_REFRESH_S because Home Assistant only updates on messages
Lamp           sensor (enum) the lamp topic: idle, called, acknowledged, overdue
Device online  binary_sensor ``device/{device}/status`` (retained by the device; ``offline`` is
                             its last will): device class connectivity; for a room that a
                             ``[[devices]]`` entry serves, else the availability topic of the
                             room's Zigbee2MQTT or Shelly button (Button.online), if any
============== ============= ========================================================

Every entity's availability is the hub's own status topic (``online``/``offline``, the hub's
last will): while the hub is down, what the topics hold is not the hub's truth any more.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Callable

from callbell import __version__
from callbell.clock import Clock
from callbell.protocol import LAMP_STATES, OFFLINE, ONLINE, Topics
from hub.dispatcher import Batch
from hub.domain.call import WAITING, Floor
from hub.plugins import HubParts, Plugin
from hub.third_party_buttons import Button

log = logging.getLogger("callbell.hub.home_assistant")

#: Seconds between refreshes of a waiting room's ``waiting_s``. Home Assistant's sensor only
#: changes when a message arrives; 5 s is fine enough for a dashboard or an automation
#: ("waiting over 60 s") and costs one small message per waiting room.
WAITING_REFRESH_S = 5.0

#: Home Assistant's birth message payload on ``<prefix>/status`` (its MQTT settings' default).
BIRTH = "online"

Publish = Callable[..., int]  # MqttLink.publish(topic, payload, qos=, retain=)


class HomeAssistant(Plugin):
    """Announces the rooms to Home Assistant and keeps each room's ``waiting`` topic current.

    A plug-in: the dispatcher hands it every batch (on its thread) with :meth:`send`; it reads
    Home Assistant's status topic and announces again on its birth and on every reconnect.
    ``floor`` returns the dispatcher's current Floor (read on the dispatcher thread only).
    """

    def __init__(self, config, topics: Topics, *, clock: Clock, floor: Callable[[], Floor]):
        self.prefix = config.home_assistant.discovery_prefix
        self.status_topic = f"{self.prefix}/status"
        self.topics = topics
        self.clock = clock
        self._floor = floor
        self._rooms = list(config.rooms)
        self._zones = {z.id: z.name or z.id for z in config.zones}
        self._device_of = {room: d.id for d in config.devices for room in d.rooms}
        self._button_of: dict[str, dict] = {}  # room → its third-party button's online topic
        for b in config.buttons:
            online = Button.from_config(b).online
            if online is not None:
                self._button_of.setdefault(b.room, online)
        self._node = f"callbell_{topics.store}"
        self._publish: Publish | None = None
        self._lock = threading.Lock()
        self._state: dict[str, dict] = {}  # room → {"call", "status", "pressed_at"}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.announcements = 0

    @classmethod
    def for_hub(cls, hub: HubParts) -> "HomeAssistant | None":
        if not hub.config.home_assistant.enabled:
            return None
        return cls(hub.config, hub.topics, clock=hub.clock, floor=hub.floor)

    @property
    def mqtt_subscriptions(self) -> list[tuple[str, int]]:
        return [(self.status_topic, 1)]

    def decode(self, message, at: float) -> list | None:
        """Home Assistant's status: nothing for the dispatcher (acknowledged at once)."""
        if message.topic != self.status_topic:
            return None
        try:
            self.on_status(message.payload)
        except Exception:
            log.exception("could not announce to Home Assistant")
        return []

    def connected(self) -> None:
        self.announce()

    # -- life cycle -------------------------------------------------------------------------
    def attach(self, publish: Publish) -> None:
        """Publish through this (the hub's MQTT link) from now on."""
        self._publish = publish

    def start(self) -> "HomeAssistant":
        self._thread = threading.Thread(target=self._refresh_loop, name="home-assistant", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    # -- discovery --------------------------------------------------------------------------
    def discovery(self) -> list[tuple[str, dict]]:
        """Every entity's (config topic, config payload), in Home Assistant's discovery schema."""
        out = []
        availability = [{"topic": self.topics.hub_status, "payload_available": ONLINE,
                         "payload_not_available": OFFLINE}]
        origin = {"name": "Callbell", "sw_version": __version__}
        for room in self._rooms:
            device = {"identifiers": [f"{self._node}_{room.id}"], "name": room.name or room.id,
                      "manufacturer": "Callbell", "model": "Fitting-room call point", "sw_version": __version__}
            if room.zone:
                device["suggested_area"] = self._zones.get(room.zone, room.zone)
            lamp = self.topics.lamp(room.id)

            def entity(component: str, what: str, name: str, **fields) -> None:
                config = {"name": name, "unique_id": f"{self._node}_{room.id}_{what}", "device": device,
                          "origin": origin, "availability": availability, "qos": 1, **fields}
                out.append((f"{self.prefix}/{component}/{self._node}/{room.id}_{what}/config", config))

            entity("binary_sensor", "call", "Call", state_topic=lamp,
                   value_template="{{ 'OFF' if value_json.state == 'idle' else 'ON' }}",
                   payload_on="ON", payload_off="OFF", icon="mdi:bell-ring")
            entity("sensor", "waiting", "Waiting", state_topic=self.topics.waiting(room.id),
                   value_template="{{ value_json.waiting_s }}", json_attributes_topic=self.topics.waiting(room.id),
                   device_class="duration", unit_of_measurement="s", state_class="measurement",
                   icon="mdi:timer-sand")
            entity("sensor", "lamp", "Lamp", state_topic=lamp, value_template="{{ value_json.state }}",
                   json_attributes_topic=lamp, device_class="enum", options=list(LAMP_STATES),
                   icon="mdi:alarm-light")
            if room.id in self._device_of:
                entity("binary_sensor", "device_online", "Device online",
                       state_topic=self.topics.device_status(self._device_of[room.id]),
                       payload_on=ONLINE, payload_off=OFFLINE, device_class="connectivity",
                       entity_category="diagnostic")
            elif room.id in self._button_of:  # a Zigbee2MQTT or Shelly button serves the room
                entity("binary_sensor", "device_online", "Device online", **self._button_of[room.id],
                       device_class="connectivity", entity_category="diagnostic")
        return out

    def announce(self) -> None:
        """Publish every discovery config (retained) and every room's waiting state."""
        if self._publish is None:
            return
        for topic, config in self.discovery():
            self._publish(topic, json.dumps(config, separators=(",", ":")).encode(), qos=1, retain=True)
        with self._lock:
            rooms = list(self._state)
        for room in rooms:
            self._publish_waiting(room, qos=1)
        self.announcements += 1
        log.info("announced %d room(s) to Home Assistant under %s/", len(self._rooms), self.prefix)

    def on_status(self, payload: bytes) -> None:
        """Home Assistant's status message: re-announce on its birth (it forgot non-retained
        state, and a discovery config removed meanwhile comes back)."""
        if payload.decode("utf-8", "replace").strip() == BIRTH:
            self.announce()

    # -- the dispatcher thread --------------------------------------------------------------
    def send(self, batch: Batch) -> None:
        rooms = set(batch.lamps) | {row["room"] for _, row in batch.calls.values()}
        if not rooms:
            return
        floor = self._floor()
        for room in rooms:
            call = floor.current(room)
            state = ({"call": call.id, "status": call.status, "pressed_at": call.pressed_at} if call
                     else {"call": None, "status": "idle", "pressed_at": None})
            with self._lock:
                changed = self._state.get(room) != state
                self._state[room] = state
            if changed:
                self._publish_waiting(room, qos=1)

    # -- waiting ----------------------------------------------------------------------------
    def waiting_payload(self, room: str) -> dict:
        with self._lock:
            state = dict(self._state.get(room) or {"call": None, "status": "idle", "pressed_at": None})
        waited = 0
        if state["status"] in WAITING and state["pressed_at"] is not None:
            waited = max(0, round(self.clock.time() - state["pressed_at"]))
        return {"v": 1, "call": state["call"], "status": state["status"], "waiting_s": waited}

    def _publish_waiting(self, room: str, qos: int) -> None:
        if self._publish is not None:
            self._publish(self.topics.waiting(room), json.dumps(self.waiting_payload(room)).encode(),
                          qos=qos, retain=True)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(WAITING_REFRESH_S):
            with self._lock:
                waiting = [room for room, s in self._state.items() if s["status"] in WAITING]
            for room in waiting:
                try:
                    self._publish_waiting(room, qos=0)
                except Exception:  # a refresh must never end the loop
                    log.exception("could not refresh the waiting time of %s", room)
