"""The MQTT edge: what a message must pass before it may queue for the dispatcher.

Runs on the MQTT thread, so that what one device sends cannot delay another device's press
(issue 28): the rate check of a device the topic names comes before the payload is even
parsed (``early``), the rest right after the decoder (hub.inputs, ``admit``). For each message
of the store's own topics:

1. it is attributed to a device: the device that owns the room of an event topic (store.toml
   gives every room at most one device, and the broker's ACL lets only that device's account
   write it), the device named by a status or health topic, or — in a store without
   [[devices]], where the broker has no accounts either — the device the payload names;
2. a retained room event is ignored with one log line naming the device (the broker replays
   it at every subscribe: it is not a press now);
3. the device's token bucket (hub.domain.admission) must pay for it. The first message it
   cannot pay for starts a *storm*: one ``storm`` trouble, and every message of that device
   is refused until it has kept to its rate for a minute;
4. what the store's config alone can refuse is refused here: an unknown room, a device that
   is not the store's or does not serve that room, a payload that is not the contract.

A refused message is acknowledged at once (the broker must not send it again) and summed per
device and minute (hub.api.refusals, channel ``mqtt``): the first few of a minute are recorded
one by one — in ``rejected``, on the device's own ``device/{id}/rejected`` and on
``hub/rejected`` — the rest as one row with a count. So a flood costs the dispatcher at most a
few records a minute, and each refused message a few microseconds here.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Collection, Mapping

from callbell.clock import Clock
from callbell.mqtt import Message
from callbell.protocol import ID_PATTERN, ProtocolError, Topics, check_device
from hub.api.refusals import FLUSH_EVERY_S, Refusals
from hub.domain.admission import Admission
from hub.inputs import DeviceEvent, DeviceHealth, DeviceStatus, Received, RetainedEvent, Unreadable

log = logging.getLogger("callbell.hub.mqtt")

#: Source of a refused message no device can be named for (a topic the hub cannot parse).
UNATTRIBUTED = "(unattributed)"  # not an id: never a device topic

#: Mosquitto's count of messages it dropped since it started (a client's queue past
#: ``max_queued_messages``, or its in-flight limit), and of the messages it holds. Published
#: every ``sys_interval`` seconds when they change (callbell/broker.py sets it); the hub's
#: account may read them (app/broker_config.py).
SYS_DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_STORED = "$SYS/broker/store/messages/count"

#: Seconds the broker's dropped count must stay still before ``broker_dropping`` clears: a
#: queue that overflows keeps dropping, so a few quiet minutes mean it has drained.
BROKER_DROPPING_CLEAR_S = 300.0


class BrokerWatch:
    """Watches Mosquitto's ``$SYS`` counters: when the dropped count moves, the broker has thrown
    away messages it had acknowledged (a queue past ``max_queued_messages``) — it says so
    nowhere else — so the hub raises one ``broker_dropping`` trouble and shows the counts in
    /metrics (``callbell_broker_dropped_messages``, ``callbell_broker_stored_messages``)."""

    subscriptions = [(SYS_DROPPED, 0), (SYS_STORED, 0)]

    def __init__(self, trouble: Callable[..., None], clock: Clock, clear_after_s: float = BROKER_DROPPING_CLEAR_S):
        self.trouble, self.clock, self.clear_after_s = trouble, clock, clear_after_s
        self.dropped: int | None = None   # the broker's count, last seen
        self.stored: int | None = None
        self._moved_at: float | None = None  # when the dropped count last moved, while its trouble is open

    def claims(self, topic: str) -> bool:
        return topic in (SYS_DROPPED, SYS_STORED)

    def read(self, message: Message) -> None:
        try:
            value = int(message.payload.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            log.warning("unreadable broker counter on %s: %r", message.topic, message.payload[:40])
            return
        if message.topic == SYS_STORED:
            self.stored = value
            return
        before, self.dropped = self.dropped, value
        # The count starts at 0 with the broker: above it (first reading included — a queue
        # that overflowed while the hub was away), or up since the last reading, is a loss.
        if value > (before if before is not None and value >= before else 0):
            lost = value - (before if before is not None and value >= before else 0)
            log.error("the MQTT broker dropped %d message(s) (%d since it started): a queue is past "
                      "max_queued_messages", lost, value)
            self._moved_at = self.clock.time()
            self.trouble("broker_dropping", "broker", True, detail={"dropped": value, "lost": lost})

    def tick(self) -> None:
        if self._moved_at is not None and self.clock.time() - self._moved_at >= self.clear_after_s:
            self._moved_at = None
            self.trouble("broker_dropping", "broker", False)


class MqttEdge:
    """Admits or refuses each decoded message (``admit``); refusals are acknowledged with
    ``ack`` and recorded through ``record`` (the dispatcher's ``reject``); ``trouble(kind, key,
    raise_it, device=, detail=)`` raises or clears the ``storm`` trouble. ``start``/``stop`` run
    the minute summaries and the end of storms."""

    subscriptions = BrokerWatch.subscriptions

    def __init__(self, topics: Topics, *, rooms: Collection[str], devices: Mapping[str, Collection[str]] | None,
                 ack: Callable[[Message], None], record: Callable[..., None],
                 trouble: Callable[..., None], clock: Clock, admission: Admission | None = None):
        self.topics, self.rooms, self.devices = topics, set(rooms), devices
        self.owner = {room: d for d, served in (devices or {}).items() for room in served}
        self.ack, self.trouble, self.clock = ack, trouble, clock
        self.admission = admission or Admission()
        self.broker = BrokerWatch(trouble, clock)
        self.refusals = Refusals(record, clock, channel="mqtt", what="messages")
        self._lock = threading.Lock()  # admission: the MQTT thread, and the ticker ending storms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Since start, for /metrics: messages refused (over a device's rate, or invalid),
        #: retained events ignored, storms begun.
        self.counters = {"over_rate": 0, "refused": 0, "retained": 0, "storms": 0}
        #: (device or UNATTRIBUTED, "over_rate" | "invalid") → messages refused here.
        self.refused_by_device: dict[tuple[str, str], int] = {}

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "MqttEdge":
        self._thread = threading.Thread(target=self._run, name="mqtt-edge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.refusals.flush(everything=True)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the edge must keep ending storms
                log.exception("MQTT edge: could not record refusals or end storms")

    def tick(self) -> None:
        """Record the minute summaries that are due, and clear the storms that are over."""
        self.refusals.flush()
        self.broker.tick()
        with self._lock:
            over = self.admission.calmed(self.clock.time())
        for storm in over:
            log.warning("device %s is within its rate again; %d message(s) were refused during its storm",
                        storm.device, storm.refused)
            self.trouble("storm", storm.device, False)

    # -- the MQTT thread ----------------------------------------------------------------------
    def early(self, message: Message, at: float) -> tuple[bool, str | None]:
        """Before the payload is read: the broker's counters, and the rate of a device the
        topic names (a status or health topic, or a room that belongs to a configured device),
        so a storm's messages cost a topic split and a dict look-up, not a JSON parse.
        Returns (go on to decode, the device already charged for it)."""
        if self.broker.claims(message.topic):
            self.broker.read(message)
            return False, None  # QoS 0: nothing to acknowledge
        kind, _, rest = message.topic.removeprefix(self.topics.base + "/").partition("/")
        ident, _, leaf = rest.partition("/")
        device = self._named(ident) if kind == "device" and leaf in ("status", "health") else \
            self.owner.get(ident) if kind == "room" and leaf == "event" else None
        if device is None:
            return True, None
        return self._charge(message, device, device, at), device

    def admit(self, received: Received, charged: str | None = None) -> bool:
        """True: hand ``received`` to the dispatcher. False: it was refused or ignored here, and
        already acknowledged. ``charged``: the device :meth:`early` already charged for it."""
        message = received.message
        try:
            kind, ident = self.topics.parse(message.topic)
        except ProtocolError:
            kind, ident = "", ""  # a plug-in's topic, or one refused below as unreadable
        if kind not in ("event", "status", "health"):
            return self._unreadable(received, UNATTRIBUTED)
        device = charged or self._device(kind, ident, received)
        source = device or UNATTRIBUTED
        if charged is None and not self._charge(message, source, device, received.at):
            return False
        for inp in received.inputs:
            if isinstance(inp, RetainedEvent):
                self.counters["retained"] += 1
                log.warning("ignored a retained event on %s from device %s: a device never retains a press "
                            "(clear it: mosquitto_pub -r -n -t '%s')", message.topic,
                            device or inp.device or "unknown", message.topic)
                self.ack(message)
                return False
        if self._unreadable(received, source) is False:
            return False
        try:
            for inp in received.inputs:
                if isinstance(inp, DeviceEvent) and not inp.configured:
                    if inp.room not in self.rooms:
                        raise ProtocolError(f"unknown room {inp.room!r}")
                    check_device(inp.event.device, inp.room, self.devices)
                elif isinstance(inp, (DeviceStatus, DeviceHealth)):
                    check_device(inp.device, None, self.devices)
        except ProtocolError as e:
            return self._refuse(message, source, "invalid", str(e))
        return True

    def _charge(self, message: Message, source: str, device: str | None, at: float) -> bool:
        """Charge ``source``'s bucket for ``message``; False: refused (a storm), acknowledged."""
        with self._lock:
            verdict = self.admission.admit(source, at)
        if verdict.admitted:
            return True
        a = self.admission
        if verdict.storm_began:
            self.counters["storms"] += 1
            log.error("device %s sends faster than %g messages/s (beyond a burst of %d): its messages are "
                      "refused until it keeps to that rate for %g s", source, a.rate_per_s, a.burst, a.calm_s)
            rooms = sorted((self.devices or {}).get(source, ()))
            self.trouble("storm", source, True, device=device,
                         detail={"rate_per_s": a.rate_per_s, "burst": a.burst, "calm_s": a.calm_s,
                                 **({"rooms": rooms} if rooms else {})})
        return self._refuse(message, source, "over_rate", f"device {source} sends more than {a.rate_per_s:g} "
                            f"messages/s: refused until it keeps to that rate for {a.calm_s:g} s")

    def _device(self, kind: str, ident: str, received: Received) -> str | None:
        """The device a message of the store's topics comes from (see the module's docstring)."""
        if kind in ("status", "health"):
            return self._named(ident)
        if ident in self.owner:
            return self.owner[ident]
        if self.devices is None:
            for inp in received.inputs:
                if isinstance(inp, DeviceEvent):
                    return inp.event.device
        return None

    def _named(self, ident: str) -> str | None:
        """The device a status or health topic names: one of the store's (any valid id in a
        store without [[devices]]); an invented name gets no bucket of its own."""
        if self.devices is not None:
            return ident if ident in self.devices else None
        return ident if ID_PATTERN.match(ident) else None

    def _unreadable(self, received: Received, source: str) -> bool:
        """Refuse a message of the store's topics that could not be read; True otherwise."""
        for inp in received.inputs:
            if isinstance(inp, Unreadable) and inp.channel == "mqtt":
                r = inp.rejection
                return self._refuse(received.message, source, "invalid", r.reason, r.excerpt)
        return True

    def _refuse(self, message: Message, source: str, why: str, reason: str, excerpt: str | None = None) -> bool:
        self.counters["refused" if why == "invalid" else why] += 1
        key = (source, why)
        self.refused_by_device[key] = self.refused_by_device.get(key, 0) + 1
        if excerpt is None:
            excerpt = message.payload[:200].decode("utf-8", "replace")
        self.refusals.note(source if ID_PATTERN.match(source) else UNATTRIBUTED, message.topic, reason, excerpt)
        self.ack(message)
        return False
