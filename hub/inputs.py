"""What the MQTT side hands the dispatcher: typed inputs, decoded at the edge.

Bytes and topics are read here, on the MQTT thread (hub/mqtt_channel.py), and by the plug-ins
that read topics of their own (hub/plugins.py); the dispatcher works these dataclasses and
never parses a payload. A message that cannot be read becomes :class:`Unreadable`, with the
reason, and is recorded like every refusal; it is still acknowledged after the batch is
stored, so a broker never redelivers garbage forever.

Whether an input makes sense for this store (a known room, a device allowed in that room, a
known associate) is the dispatcher's question: it needs the store's current state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Union

from callbell.mqtt import Message
from callbell.protocol import (Event, Location, ProtocolError, Rejection, Topics, held_at_broker_s,
                               parse_device_status, parse_health)


@dataclass(frozen=True)
class DeviceEvent:
    """A press, cancel or presence from a room's device, or from a third-party button."""
    room: str
    event: Event
    #: Wall clock when it left the device, seconds: arrival minus the time it was held at the
    #: broker (its Message Expiry Interval), never a guess. The press time is this − age_ms.
    sent_at: float
    #: A third-party button that store.toml maps to ``room``: that mapping is its device check.
    configured: bool = False


@dataclass(frozen=True)
class DeviceStatus:
    """A device's retained ``online`` / ``offline`` (its last will)."""
    device: str
    status: str


@dataclass(frozen=True)
class DeviceHealth:
    """A device's heartbeat: uptime, outbox length, version and what else it reports."""
    device: str
    health: dict


@dataclass(frozen=True)
class LocationFix:
    """The location feed: where an associate is now (a room, a zone, or a point in metres)."""
    associate: str
    location: Location


@dataclass(frozen=True)
class Unreadable:
    """A message that is not what its topic promises: refused, with the reason."""
    channel: str  # "mqtt" for Callbell's own topics, "buttons" for third-party buttons
    rejection: Rejection


@dataclass(frozen=True)
class RetainedEvent:
    """A room event the broker kept with the retain flag and replays at every subscribe: not a
    press now (a Callbell device never retains one). Ignored, with one log line (hub.mqtt_edge)."""
    room: str
    device: str | None  # as the payload names it, if it can be read


Input = Union[DeviceEvent, DeviceStatus, DeviceHealth, LocationFix, Unreadable, RetainedEvent]


@dataclass
class Received:
    """One MQTT message off the socket, and what it means."""
    message: Message          # acknowledged to the broker once what it caused is stored
    inputs: tuple[Input, ...]
    at: float                 # wall clock when it came off the socket, seconds
    #: perf_counter() at the same moment, seconds: the start of press→lamp latency (metrics).
    mono: float = field(default_factory=time.perf_counter)


class Decoder:
    """Reads the store's topics, and asks each plug-in first about the topics it reads."""

    def __init__(self, topics: Topics, plugins: Iterable = ()):
        self.topics = topics
        self.plugins = [p for p in plugins if p.mqtt_subscriptions]

    def decode(self, message: Message, at: float) -> Received:
        """``at``: wall clock when ``message`` came off the socket, seconds."""
        for plugin in self.plugins:
            inputs = plugin.decode(message, at)
            if inputs is not None:
                return Received(message, tuple(inputs), at)
        return Received(message, self._ours(message, at), at)

    def _ours(self, message: Message, at: float) -> tuple[Input, ...]:
        try:
            kind, ident = self.topics.parse(message.topic)
            if kind == "event" and message.retain:
                return (RetainedEvent(ident, _device_named(message.payload)),)
            if kind == "event":
                ev = Event.from_json(message.payload)
                return (DeviceEvent(ident, ev, at - held_at_broker_s(ev.expiry_s, message.expiry_s)),)
            if kind == "status":
                return (DeviceStatus(ident, parse_device_status(message.payload)),)
            if kind == "health":
                return (DeviceHealth(ident, parse_health(message.payload)),)
            if kind == "location":
                return (LocationFix(ident, Location.from_json(message.payload)),)
            return ()  # our own publications (lamps, hub status) are not inputs
        except ProtocolError as e:
            return (Unreadable("mqtt", Rejection.of(message.topic, str(e), message.payload)),)


def _device_named(payload: bytes) -> str | None:
    """The ``device`` a payload names, if it is a readable event (for a log line only)."""
    try:
        return Event.from_json(payload).device
    except ProtocolError:
        return None
