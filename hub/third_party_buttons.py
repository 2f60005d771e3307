"""Third-party buttons as call buttons: Zigbee2MQTT and Shelly messages become room events.

A battery Zigbee button or a Shelly serves a room without a Pi. Each ``[[buttons]]`` entry of
``store.toml`` names the source, the button's name there, the room, and what each of its
actions means (``call``, ``call:<reason>``, ``cancel`` or ``presence``: docs/spec/PROTOCOL.md's event
types). The hub subscribes to the buttons' own topics; what a button sends enters the
dispatcher exactly like a device's event (same inbox, same lamp, same rejection log).

Formats, as each project documents them:

- **Zigbee2MQTT** publishes a device's state as JSON on ``<base_topic>/<friendly name>``; a press
  shows as ``{"action": "single", "battery": 97, "linkquality": 120}``. Messages without an
  action (battery and link reports) and the empty action Zigbee2MQTT sends to clear the value
  are not presses and are skipped quietly.
- **Shelly Gen2 and later** (Plus, Pro, Gen3 inputs; BLU buttons through a gateway) send JSON-RPC
  notifications on ``<topic prefix>/events/rpc``: ``{"src": "shellyplusi4-…", "method":
  "NotifyEvent", "params": {"ts": 1763800000.12, "events": [{"component": "input:0", "id": 0,
  "event": "single_push", "ts": 1763800000.12}]}}``. Other methods (NotifyStatus, …) on that
  topic are not presses.
- **Shelly Gen1** (Button1, i3) publishes ``shellies/<device id>/input_event/<input>`` with
  ``{"event": "S", "event_cnt": 12}``; events S, SS, SSS, L, SL, LS.

Duplicates (docs/spec/PROTOCOL.md: the hub acts on an event id once). Retained messages are never
presses: a broker replays them on every subscription. Beyond that:

- Shelly Gen2: the event id is built from the notification's ``ts`` (the device's clock, to the
  hundredth of a second), so a QoS 1 repeat or a redelivery after a hub crash is ignored by the
  inbox like a device's repeat.
- Shelly Gen1: ``event_cnt`` counts the device's presses; a message repeating the last count
  seen for that input is a repeat and is ignored (Gen1 republishes its last input event when it
  reconnects). The count restarts with the device, so any other count is a new press.
- Zigbee2MQTT sends no id: every message with an action is one press (its id is made from the
  arrival time). Zigbee2MQTT publishes at QoS 0 by default, so the broker never repeats one; a
  button that repeats its radio frame is what Zigbee2MQTT's own ``debounce`` option is for.
  At worst a repeat of a call press counts as a reminder on the open call, never a second call.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Iterable

from callbell.mqtt import Message
from callbell.protocol import (EVENT_TYPES, ID_PATTERN, MAX_EVENT_ID_LENGTH, Event, ProtocolError, Rejection,
                               check_id, load_json_object)
from hub.inputs import DeviceEvent, Input, Unreadable
from hub.plugins import HubParts, Plugin

SOURCES = ("zigbee2mqtt", "shelly", "shelly-gen1")
#: How each source is named in rejection reasons.
SOURCE_NAMES = {"zigbee2mqtt": "Zigbee2MQTT", "shelly": "Shelly", "shelly-gen1": "Shelly Gen1"}

#: Zigbee2MQTT's default base topic (its ``mqtt.base_topic`` setting).
ZIGBEE2MQTT_BASE = "zigbee2mqtt"
#: Shelly Gen1's fixed first topic level.
SHELLY_GEN1_BASE = "shellies"

#: Actions a source sends around every press that mean nothing on their own; skipped unless a
#: button maps them. Shelly Gen2 reports the contact closing and opening besides the push.
DEFAULT_IGNORED = {"zigbee2mqtt": (), "shelly": ("btn_down", "btn_up"), "shelly-gen1": ()}

#: Largest message read from a third-party button, bytes. A Zigbee2MQTT state with every
#: attribute is under 1 kB and a Shelly NotifyEvent a few hundred bytes.
MAX_BUTTON_PAYLOAD_BYTES = 8192


def parse_meaning(meaning: str) -> tuple[str, str | None]:
    """``"call"``, ``"call:size"``, ``"cancel"`` or ``"presence"`` → (event type, reason).
    Raises ValueError with a message fit for a config error."""
    kind, _, reason = meaning.partition(":")
    if kind not in EVENT_TYPES:
        raise ValueError(f"{meaning!r} is not an event: use one of {', '.join(EVENT_TYPES)} "
                         "(or call:<reason>)")
    if reason and kind != "call":
        raise ValueError(f"{meaning!r}: only a call has a reason")
    if reason and not ID_PATTERN.match(reason):
        raise ValueError(f"{meaning!r}: the reason must be 1-64 characters of a-z 0-9 - _")
    return kind, (reason or "help") if kind == "call" else None


def default_device_id(source: str, name: str) -> str:
    """The device id a button's events are recorded with, from its source and name:
    ``zigbee2mqtt`` + ``Fitting room 3`` → ``zigbee2mqtt-fitting-room-3``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", f"{source}-{name}".lower()).strip("-")
    if len(slug) > 64:  # keep it unique when cut
        slug = slug[:55] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return slug


@dataclass(frozen=True)
class Button:
    """One configured button (a ``[[buttons]]`` entry, checked by the config)."""

    source: str
    name: str
    room: str
    actions: dict[str, tuple[str, str | None]]   # action → (event type, reason)
    ignore: frozenset[str]
    device: str
    input: int = 0
    component: str = "input:0"
    topic: str = ""

    @property
    def online(self) -> dict | None:
        """Where the button's bridge says whether it is reachable, as Home Assistant discovery
        fields (state_topic, payload_on, payload_off, maybe value_template), or None.

        Zigbee2MQTT (with its availability feature on): ``<base>/<name>/availability``,
        ``{"state": "online"}`` (plain ``online`` from older versions, also accepted). Shelly: ``<prefix>/online`` and
        Gen1 ``shellies/<id>/online``, ``true``/``false`` (retained, the last will). A BLU
        button behind a gateway has none of its own."""
        if self.source == "zigbee2mqtt":
            return {"state_topic": self.topic + "/availability", "payload_on": "online", "payload_off": "offline",
                    "value_template": "{{ value_json.state if value_json is defined else value }}"}
        if self.source == "shelly" and self.component.startswith("input:"):
            return {"state_topic": f"{self.name}/online", "payload_on": "true", "payload_off": "false"}
        if self.source == "shelly-gen1":
            return {"state_topic": f"{SHELLY_GEN1_BASE}/{self.name}/online", "payload_on": "true",
                    "payload_off": "false"}
        return None

    @classmethod
    def from_config(cls, b) -> "Button":
        """From a :class:`hub.config.ButtonConfig` (or anything with its fields)."""
        source = b.source
        if source == "zigbee2mqtt":
            topic = f"{b.base_topic or ZIGBEE2MQTT_BASE}/{b.name}"
        elif source == "shelly":
            topic = f"{b.name}/events/rpc"
        else:
            topic = f"{SHELLY_GEN1_BASE}/{b.name}/input_event/{b.input}"
        ignore = DEFAULT_IGNORED[source] if b.ignore is None else tuple(b.ignore)
        return cls(source=source, name=b.name, room=b.room,
                   actions={a: parse_meaning(m) for a, m in b.actions.items()},
                   ignore=frozenset(ignore), device=b.device or default_device_id(source, b.name),
                   input=b.input, component=b.component or f"input:{b.input}", topic=topic)


@dataclass
class ButtonMap(Plugin):
    """Every configured button, by topic: a plug-in whose messages become device events.
    Decodes on the MQTT thread only (it keeps the last Shelly Gen1 count per input)."""

    buttons: list[Button]
    _by_topic: dict[str, list[Button]] = field(default_factory=dict)
    _last_count: dict[str, int] = field(default_factory=dict)   # Gen1 topic → last event_cnt

    def __post_init__(self) -> None:
        for b in self.buttons:
            self._by_topic.setdefault(b.topic, []).append(b)

    @classmethod
    def from_config(cls, configs: Iterable) -> "ButtonMap":
        return cls([Button.from_config(b) for b in configs])

    @classmethod
    def for_hub(cls, hub: HubParts) -> "ButtonMap | None":
        return cls.from_config(hub.config.buttons) if hub.config.buttons else None

    def decode(self, message: Message, at: float) -> list[Input] | None:
        """A press on a button's topic enters the dispatcher like a device's event, checked by
        the store's mapping (``configured``) instead of a device account."""
        if not self.claims(message.topic):
            return None
        try:
            return [DeviceEvent(room, ev, at, configured=True) for room, ev in self.events(message, at)]
        except ProtocolError as e:
            return [Unreadable("buttons", Rejection.of(message.topic, str(e), message.payload))]

    @property
    def mqtt_subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters to subscribe to (QoS 1: the broker keeps presses while the hub is away,
        for publishers that send at QoS 1)."""
        return [(t, 1) for t in self._by_topic]

    def claims(self, topic: str) -> bool:
        return topic in self._by_topic

    def events(self, message: Message, received_at: float) -> list[tuple[str, Event]]:
        """The room events a message on a button topic means: [(room, event)], possibly empty
        (not a press). Raises ProtocolError, with a reason for ``hub/rejected``, for a payload
        that is not the source's format or an action no button on the topic knows."""
        buttons = self._by_topic[message.topic]
        if message.retain:
            return []  # replayed by the broker on subscribing: an old press, not a new one
        if len(message.payload) > MAX_BUTTON_PAYLOAD_BYTES:
            raise ProtocolError(f"button message is {len(message.payload)} bytes; the limit is "
                                f"{MAX_BUTTON_PAYLOAD_BYTES}")
        source = buttons[0].source
        data = _json_object(message.payload, SOURCE_NAMES[source])
        if source == "zigbee2mqtt":
            return self._zigbee2mqtt(buttons, data, received_at)
        if source == "shelly":
            return self._shelly(buttons, data, received_at)
        return self._shelly_gen1(buttons, message.topic, data, received_at)

    # -- sources ----------------------------------------------------------------------------
    def _zigbee2mqtt(self, buttons: list[Button], data: dict, received_at: float) -> list[tuple[str, Event]]:
        action = data.get("action")
        if action is None or action == "":
            return []  # a state report, or Zigbee2MQTT clearing the last action
        if not isinstance(action, str):
            raise ProtocolError(f"Zigbee2MQTT field 'action' must be a string, got {action!r:.40}")
        key = f"{received_at:.6f}"
        return self._press(buttons, action, key, None)

    def _shelly(self, buttons: list[Button], data: dict, received_at: float) -> list[tuple[str, Event]]:
        if data.get("method") != "NotifyEvent":
            return []  # NotifyStatus, NotifyFullStatus: state, not presses
        params = data.get("params")
        events = params.get("events") if isinstance(params, dict) else None
        if not isinstance(events, list):
            raise ProtocolError("Shelly NotifyEvent needs params.events, a list")
        out = []
        for e in events:
            if not isinstance(e, dict) or not isinstance(e.get("component"), str) or not isinstance(e.get("event"), str):
                raise ProtocolError("each Shelly event needs a 'component' and an 'event' (strings)")
            mine = [b for b in buttons if b.component == e["component"]]
            if not mine:
                continue  # another input of the same Shelly, or a system event (sys, ota, …)
            ts = e.get("ts", params.get("ts"))
            if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
                ts = None  # then the arrival time makes the id: no repeat detection, but no lost press
            key = f"{e['component']}-{e['event']}-" + (f"{ts:.2f}" if ts is not None else f"r{received_at:.6f}")
            out += self._press(mine, e["event"], key, ts)
        return out

    def _shelly_gen1(self, buttons: list[Button], topic: str, data: dict,
                     received_at: float) -> list[tuple[str, Event]]:
        event, count = data.get("event"), data.get("event_cnt")
        if not isinstance(event, str) or isinstance(count, bool) or not isinstance(count, int):
            raise ProtocolError("Shelly input_event needs 'event' (a string) and 'event_cnt' (a whole number)")
        if event == "":
            return []  # no press since the device started
        if self._last_count.get(topic) == count:
            return []  # the device repeating its last event (it does so on reconnecting)
        self._last_count[topic] = count
        return self._press(buttons, event, f"{count}-{received_at:.6f}", None)

    # -- shared -----------------------------------------------------------------------------
    @staticmethod
    def _press(buttons: list[Button], action: str, key: str, at: float | None) -> list[tuple[str, Event]]:
        out = []
        for b in buttons:
            meaning = b.actions.get(action)
            if meaning is None:
                continue
            kind, reason = meaning
            out.append((b.room, Event(id=_event_id(b, key), device=check_id(b.device, "button device"),
                                      type=kind, reason=reason, age_ms=0, at=at)))
        if out or any(action in b.ignore for b in buttons):
            return out
        known = sorted({a for b in buttons for a in b.actions})
        raise ProtocolError(f"{SOURCE_NAMES[buttons[0].source]} button {buttons[0].name!r} sent action {action[:40]!r}, which is not "
                            f"mapped (mapped: {', '.join(known)}); add it to the button's actions or ignore")


def _json_object(payload: bytes, source: str) -> dict:
    """The same limits as our own devices' payloads (size, depth, UTF-8, finite numbers)."""
    return load_json_object(payload, f"{source} message")


def _event_id(button: Button, key: str) -> str:
    """An event id from the button and what makes its press unique, at most 64 characters."""
    ident = f"{button.device}-{key}"
    if len(ident) <= MAX_EVENT_ID_LENGTH:
        return ident
    return f"{button.device[:30]}-{hashlib.sha256(ident.encode()).hexdigest()[:32]}"
