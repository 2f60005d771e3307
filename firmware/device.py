"""The device program: the rooms of one Pi, their outbox, and the link to the hub.

    device = Device(load_device_config("device.toml"))            # real GPIO
    device = Device(config, pin_factory=mock_pins())               # a laptop, tests, the demo
    device.start()

What it does:

- a press lights the room at once (firmware.room), is written to the outbox (firmware.outbox),
  then published QoS 1; it leaves the outbox only when the broker acknowledges it;
- on every connect it publishes ``online`` (retained; ``offline`` is its last will) and sends
  whatever the outbox still holds, oldest first;
- it follows each room's retained lamp topic and the hub's status; while it has no broker
  connection or the hub says ``offline``, every room shows the fault pattern;
- every ``heartbeat_s`` it publishes its health, retained — and at once when a button line
  is stuck or freed, or the lamp supply or a door lamp fails or recovers (firmware.supervision);
- when it stops, each lamp is left steady in a state that needs no program (FittingRoom.
  stop_holding_lamps).
- run by systemd with ``WatchdogSec=``, it pings systemd's watchdog only while a press would be
  handled: the pings pass through the locks every press takes (see :meth:`Device.stuck_part`).
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable

from gpiozero import DigitalInputDevice

from callbell import __version__
from callbell.clock import Clock, SystemClock
from callbell.mqtt import Message, MqttLink
from callbell.protocol import (EVENT_EXPIRY_S, MAX_AGE_MS, OFFLINE, ONLINE, Event, LampState, ProtocolError,
                               Topics)
from callbell.systemd_notify import SystemdNotify
from firmware.config import DeviceConfig
from firmware.outbox import Outbox, OutboxFull, Pending
from firmware.room import FittingRoom
from firmware.supervision import SENSE_POLL_S, LampCheck, SupplyCheck
from firmware.wiring import build_room

log = logging.getLogger("callbell.device")

#: Seconds within which an acknowledgement that overtook its own publish() call is matched to
#: it. The overtaking takes microseconds; message ids repeat only every 65 535 messages.
EARLY_ACK_S = 5.0

#: Rounds of the watchdog loop per ping interval. The presses are handled in the GPIO library's
#: callback thread, which runs only on an edge and is not ours to ping from; so a loop of our
#: own walks the press path's locks (buttons, rooms, outbox) and pings only when every one is
#: free. Two rounds per interval keep the longest gap between pings under 1.5 intervals.
WATCHDOG_ROUNDS_PER_PING = 2

#: Where the Pi reports its SoC temperature, millidegrees Celsius.
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature_c() -> float | None:
    try:
        return round(int(THERMAL_ZONE.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


class Device:
    def __init__(self, config: DeviceConfig, *, pin_factory=None, clock: Clock | None = None,
                 on_display: Callable[[str, str, str], None] | None = None,
                 broker_url: str | None = None, systemd: SystemdNotify | None = None):
        self.config = config
        #: Readiness and watchdog pings to systemd (a no-op unless run by systemd).
        self.systemd = systemd or SystemdNotify.from_environment()
        d = config.device
        self.id = d.id
        self.clock = clock or SystemClock()
        self.topics = Topics(d.prefix, d.store)
        self.outbox = Outbox(d.outbox, d.id, self.clock, d.outbox_limit)
        self._on_display = on_display
        self._inflight: dict[int, Pending] = {}  # paho mid → outbox entry
        self._early: dict[int, float] = {}  # mid → when acknowledged before _publish noted it
        self._queued: set[int] = set()  # outbox seqs handed to paho and not yet acknowledged
        self._lock = threading.RLock()
        self._started = self.clock.monotonic()
        self._connected_since = float("inf")
        self._hub_online = False
        self.refusals = 0  # events of ours the hub refused (misconfiguration)
        self._last_hub_contact: float | None = None
        self._stop = threading.Event()
        self._stuck: dict[tuple[str, str], float] = {}  # (room, button) → monotonic press time
        self.rooms: dict[str, FittingRoom] = {}
        self._lamp_senses = {}  # room → its lamp's current sense input
        for r in config.rooms:
            self.rooms[r.id] = self._build_room(r, pin_factory)
        kw = {"pin_factory": pin_factory} if pin_factory is not None else {}
        self._supply_sense = DigitalInputDevice(d.supply_sense, pull_up=True, **kw) if d.supply_sense else None
        self.supply = SupplyCheck() if self._supply_sense else None
        self.lamp_checks = {room: LampCheck() for room in self._lamp_senses}
        self.sense_polls = 0  # readings of the sense inputs so far
        self.link = MqttLink(
            broker_url or d.broker,
            f"callbell-device-{d.id}",
            will=(self.topics.device_status(d.id), OFFLINE.encode()),
            subscriptions=[(self.topics.hub_status, 1), (self.topics.device_rejected(d.id), 0)]
                          + [(self.topics.lamp(r), 1) for r in self.rooms],
            on_message=self._message,
            on_connected=self._connected,
            on_disconnected=self._disconnected,
            on_published=self._published,
            fresh_resend=True,  # age_ms must be computed when a message is (re)sent
        )
        self._set_fault(True)  # until the hub is seen

    def _build_room(self, r, pin_factory) -> FittingRoom:
        parts = build_room(r, self.config.device, self.clock, pin_factory)
        if parts.lamp_sense:
            self._lamp_senses[r.id] = parts.lamp_sense
        return FittingRoom(r.id, call=parts.call, lamp=parts.lamp, light=parts.light, send=self.send,
                           size=parts.size, presence=parts.presence, size_reason=r.size_reason,
                           on_display=self._on_display, on_line=self._line)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.link.start()
        self._heartbeat_thread = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._heartbeat_thread.start()
        if self.supply or self.lamp_checks:
            self._sense_thread = threading.Thread(target=self._supervise, name="supervision", daemon=True)
            self._sense_thread.start()
        if self.systemd.watchdog:
            threading.Thread(target=self._watchdog, name="watchdog", daemon=True).start()
        self.systemd.ready(f"rooms {', '.join(self.rooms)}")

    def stop(self) -> None:
        """Stop: say ``offline``, and leave every lamp steady in the state it showed (lit for a
        room with a call, dark for an idle one) after the program has gone. A second stop does
        nothing (the pins are let go already)."""
        if self._stop.is_set():
            return
        self.systemd.stopping()
        self._stop.set()
        self.link.stop(farewell=[(self.topics.device_status(self.id), OFFLINE.encode(), 1, True)])
        if getattr(self, "_sense_thread", None):
            self._sense_thread.join(2)  # it reads the lamps' pins, about to be let go
        for room in self.rooms.values():
            room.stop_holding_lamps()
        for sense in [self._supply_sense, *self._lamp_senses.values()]:
            if sense:
                sense.close()
        self.outbox.close()

    # -- events out -------------------------------------------------------------------------
    def send(self, room: str, type: str, reason: str | None, pressed_mono: float) -> str | None:
        """Queue an event durably, then publish it if connected. Returns its id."""
        wall = self.clock.time() - (self.clock.monotonic() - pressed_mono)
        try:
            entry = self.outbox.add(room, type, reason, mono=pressed_mono, wall=wall)
        except OutboxFull:
            return None
        log.info("%s %s%s queued as %s", room, type, f" ({reason})" if reason else "", entry.id)
        if self.link.connected:
            self._publish(entry)
        return entry.id

    # Lock order: paho calls on_publish while holding its own mutex, and publish() takes that
    # mutex. So self._lock is never held while calling into paho — otherwise a press and an
    # acknowledgement arriving together deadlock (found by tests/chaos). The price: an
    # acknowledgement can arrive before we have noted the message id; _early remembers it.
    def _publish(self, entry: Pending) -> None:
        with self._lock:
            if entry.seq in self._queued:
                return
            self._queued.add(entry.seq)
        age_ms = entry.age_ms(self.clock, self.outbox.boot)
        if age_ms > MAX_AGE_MS:  # the hub would refuse it: a week unsent is history, not a call
            self.outbox.expire(entry, age_ms)
            with self._lock:
                self._queued.discard(entry.seq)
            return
        event = Event(id=entry.id, device=self.id, type=entry.type, reason=entry.reason,
                      age_ms=age_ms, at=round(entry.wall, 3),
                      badge=entry.badge, expiry_s=EVENT_EXPIRY_S)
        mid = self.link.publish(self.topics.event(entry.room), event.to_json(), qos=1,
                                expiry_s=EVENT_EXPIRY_S)
        with self._lock:
            # Only a very recent early ack counts: paho reuses message ids after 65 535 messages.
            acked_already = self.clock.monotonic() - self._early.pop(mid, -EARLY_ACK_S) < EARLY_ACK_S
            if not acked_already:
                self._inflight[mid] = entry
        if acked_already:
            self._delivered(entry)

    def _published(self, mid: int) -> None:
        with self._lock:
            entry = self._inflight.pop(mid, None)
            if entry is None:  # _publish has not noted it yet, or it is not an event
                now = self.clock.monotonic()
                self._early[mid] = now
                if len(self._early) > 100:  # acks of status and health messages pile up
                    self._early = {m: t for m, t in self._early.items() if now - t < EARLY_ACK_S}
                return
        self._delivered(entry)

    def _delivered(self, entry: Pending) -> None:
        with self._lock:
            self._queued.discard(entry.seq)
        self.outbox.delivered(entry.seq)
        self.outbox.sweep(self._connected_since)
        room = self.rooms.get(entry.room)
        if room:
            room.delivered(entry.id)

    def _flush(self) -> None:
        """Publish every outbox event not in flight right now: unsent ones, and acknowledged
        ones still lingering (the hub ignores the repeats)."""
        for entry in self.outbox.pending():
            self._publish(entry)

    # -- link -------------------------------------------------------------------------------
    def _connected(self, session_present: bool) -> None:
        with self._lock:
            # paho's copies were dropped (fresh_resend): everything unsent goes again from the
            # outbox, with its age measured now.
            self._inflight.clear()
            self._queued.clear()
            self._early.clear()
            self._connected_since = self.clock.monotonic()
        self.link.publish(self.topics.device_status(self.id), ONLINE.encode(), qos=1, retain=True)
        self._flush()
        self._publish_health()

    def _disconnected(self) -> None:
        self._connected_since = float("inf")  # events acked so far stay, to be sent again
        self._set_fault(True)

    def _message(self, msg: Message) -> None:
        try:
            kind, ident = self.topics.parse(msg.topic)
            if kind == "hub-status":
                self._hub_online = msg.payload.strip() == ONLINE.encode()
                self._last_hub_contact = self.clock.time()
                self._set_fault(not self._hub_online)
                if self._hub_online and self.link.connected:
                    # The hub says "online" after every (re)connect, once subscribed. If the broker
                    # lost the hub's session, events sent before that went nowhere: send again
                    # whatever is still lingering in the outbox.
                    self._flush()
            elif kind == "rejected" and ident == self.id:  # the hub tells each device its own
                self._refused(msg.payload)
            elif kind == "lamp" and ident in self.rooms:
                self._last_hub_contact = self.clock.time()
                self.rooms[ident].show_hub(LampState.from_json(msg.payload))
        except ProtocolError as e:
            log.warning("ignored a bad message on %s: %s", msg.topic, e)

    def _refused(self, payload: bytes) -> None:
        """The hub refused a message. If it was one of ours — a room the hub does not know, a
        reason the room has no button for — say so loudly: it is a configuration mistake an
        installer must see, and the press it concerns will never light the hub's side."""
        try:
            notice = json.loads(payload)
            topic, reason = notice["topic"], notice["reason"]
        except (ValueError, KeyError, TypeError):
            return
        ours = {self.topics.event(r): r for r in self.rooms}
        if topic in ours:
            self.refusals += 1
            log.error("the hub refused an event of room %s: %s — check device.toml against the "
                      "hub's store.toml", ours[topic], reason)
            if self._on_display:
                self._on_display(ours[topic], "error", f"hub refused {ours[topic]}: {reason}")

    def _set_fault(self, fault: bool) -> None:
        for room in self.rooms.values():
            room.set_fault(fault)
        if self._on_display:
            self._on_display("", "status", "fault" if fault else "ok")

    @property
    def fault(self) -> bool:
        return any(r.fault for r in self.rooms.values())

    # -- lines and supervision ------------------------------------------------------------
    def _line(self, room: str, button: str, stuck: bool, pressed_mono: float) -> None:
        """A button line became stuck or free: say so at once, not at the next heartbeat."""
        with self._lock:
            if stuck:
                self._stuck[(room, button)] = pressed_mono
            else:
                self._stuck.pop((room, button), None)
        log.log(logging.ERROR if stuck else logging.WARNING, "%s %s button line %s", room, button,
                "stuck down (a jammed button or a shorted cable)" if stuck else "free again")
        self._health_now()

    def _supervise(self) -> None:
        """Read the sense inputs every SENSE_POLL_S; a changed verdict is reported at once."""
        while not self._stop.wait(SENSE_POLL_S):
            self.sense_polls += 1
            now = self.clock.monotonic()
            changed = False
            if self.supply:
                changed |= self.supply.reading(now, self._supply_sense.is_active)
            if not (self.supply and self.supply.lost):  # no supply: every lamp is dark, and says nothing
                for room, check in self.lamp_checks.items():
                    changed |= check.reading(now, self.rooms[room].lamp.led.is_lit,
                                             self._lamp_senses[room].is_active)
            if changed:
                log.warning("supervision: %s", json.dumps({k: v for k, v in self.health().items()
                                                            if k in ("supply", "lamps")}))
                self._health_now()

    def _health_now(self) -> None:
        if self.link.connected:
            self._publish_health()

    # -- health -----------------------------------------------------------------------------
    def health(self) -> dict:
        now = self.clock.time()
        mono = self.clock.monotonic()
        with self._lock:
            stuck = sorted(self._stuck.items())
        return {
            "uptime_s": round(self.clock.monotonic() - self._started, 1),
            "outbox": len(self.outbox),
            "outbox_refused": self.outbox.refused,
            "outbox_expired": self.outbox.expired,
            "version": __version__,
            "temperature_c": cpu_temperature_c(),
            "last_hub_contact_s": None if self._last_hub_contact is None else round(now - self._last_hub_contact, 1),
            "reconnects": self.link.reconnects,
            "refused_by_hub": self.refusals,
            "rooms": sorted(self.rooms),
            "lines": {"stuck": [{"room": room, "button": button, "held_s": round(mono - t, 1)}
                                for (room, button), t in stuck]},
            "supply": None if self.supply is None else (
                {"ok": False, "lost_s": round(mono - self.supply.since, 1)} if self.supply.lost else {"ok": True}),
            "lamps": {room: ({"ok": False, "fault": c.fault, "for_s": round(mono - c.since, 1)} if c.fault
                             else {"ok": True}) for room, c in sorted(self.lamp_checks.items())},
        }

    def _publish_health(self) -> None:
        self.link.publish(self.topics.device_health(self.id), json.dumps(self.health()).encode(),
                          qos=0, retain=True)

    def stuck_part(self, wait_s: float) -> str | None:
        """What a press would wait behind for ``wait_s`` seconds or more ("room-1 call
        button", "outbox"), or None when a press would be handled now. Each lock a press takes
        is taken and let go in turn, never two at once (no new lock order)."""
        for room in self.rooms.values():
            part = room.stuck_part(wait_s)
            if part:
                return f"{room.id} {part}"
        return None if self.outbox.free(wait_s) else "outbox"

    def _watchdog(self) -> None:
        """Pings systemd's watchdog while the press path is free; a stuck press stops it."""
        interval = self.systemd.ping_interval_s
        stuck_before = None
        while not self._stop.wait(interval / WATCHDOG_ROUNDS_PER_PING):
            stuck = self.stuck_part(interval / WATCHDOG_ROUNDS_PER_PING)
            if stuck is None:
                self.systemd.ping()
            elif stuck != stuck_before:
                log.error("presses are stuck behind the %s: not pinging the watchdog (systemd "
                          "restarts the program after %.0f s)", stuck, self.systemd.watchdog_s)
            stuck_before = stuck

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.config.device.heartbeat_s):
            if self.link.connected:
                self.outbox.sweep(self._connected_since)
                self._publish_health()
