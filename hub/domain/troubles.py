"""Troubles: faults of the call system itself that must reach a person. Pure: no I/O, no clock.

A call is a shopper asking for help; a *trouble* is the system saying it cannot be sure it
hears or shows one: a device that fell silent, a stuck line, the broker or the database gone.
Nurse-call supervision (DIN VDE 0834, UL 1069) is the model: every fault is shown and alerted
to staff until someone acknowledges it, and it closes when the fault clears.

    troubles = Troubles()
    troubles.report("device_silent", "pi-1", now, device="pi-1", detail={"rooms": ["r1"]})
    troubles.alert(["maria"], now)          # who (pick_alerted) is rung, and rung again
    troubles.acknowledge("t-000001", "maria", now + 20)
    troubles.clear("device_silent", "pi-1", now + 60)

Every change returns the :class:`~hub.domain.call.Transition` records it caused (kinds
``trouble_opened``, ``trouble_alerted``, ``trouble_acknowledged``, ``trouble_cleared``), stored
in the event log like every other transition: a restarted hub rebuilds its open troubles from
them (:func:`rebuild`). A trouble is about one thing (``key``): at most one trouble of a kind is
open for a key, so reporting a fault again changes nothing.

Device supervision (:class:`DeviceWatch`) decides from what the hub hears when a configured
device is silent or never connected, and raises and clears those troubles; :class:`BrokerWatch`
does the same for the hub's link to the broker. Who is alerted: :func:`pick_alerted`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from hub.domain.call import DomainError, Transition

KINDS = ("device_silent", "device_never_connected", "stuck_line", "supply", "lamp",
         "storm", "database", "broker", "broker_dropping")
#: Kinds that make the hub's health ``degraded`` while open: the hub itself cannot do its work.
DEGRADING = ("database", "broker")

OPENED, ALERTED, ACKNOWLEDGED, CLEARED = ("trouble_opened", "trouble_alerted", "trouble_acknowledged",
                                          "trouble_cleared")
#: The transition kinds of troubles, as stored in the event log.
TRANSITIONS = (OPENED, ALERTED, ACKNOWLEDGED, CLEARED)

#: An open trouble nobody acknowledged is alerted again this often, seconds. A call's alert
#: rings until someone acts; a trouble's alert is the same ring, repeated with fresh pushes so
#: a missed one is not the end of it. Shorter nags more on a long fault; longer lets a
#: dead device sit unseen longer after a push that went unread.
REALERT_S = 60.0

#: The role alerted by default ([troubles] alert_role).
DEFAULT_ALERT_ROLE = "manager"

#: A device is silent after this many of its heartbeats without a word (issue 27: a killed
#: device reaches a person within 3 × heartbeat_s + 5 s). Two would flag a device that lost one
#: heartbeat to a Wi-Fi roam; the device's health message is QoS 0.
SILENT_AFTER_BEATS = 3

#: The broker unreachable this long, seconds, is a trouble. A restarted Mosquitto is back within
#: a second or two and the hub reconnects at once; a blip is logged, not rung on phones. Longer
#: would leave every button and lamp cut off unnoticed for longer.
BROKER_GRACE_S = 5.0


def trouble_id(seq: int) -> str:
    return f"t-{seq:06d}"


def trouble_seq(tid: str) -> int:
    """The number of a trouble id ("t-000012" → 12); 0 for anything else."""
    head, _, num = tid.partition("-")
    return int(num) if head == "t" and num.isdigit() else 0


@dataclass
class Trouble:
    """One fault: what (``kind``), about what (``key``: a device id, "device/room/button",
    "db", "broker"), since when and until when (seconds since the epoch), who was alerted and
    who acknowledged it."""

    id: str
    kind: str
    key: str
    device: str | None
    room: str | None
    detail: dict
    since: float
    cleared_at: float | None = None
    alerted: list[dict] = field(default_factory=list)  # [{"associate": "maria", "at": 1765000000.0}]
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None

    @property
    def open(self) -> bool:
        return self.cleared_at is None

    @property
    def duration_s(self) -> float | None:
        """How long the fault lasted, seconds (None while it is open)."""
        return None if self.cleared_at is None else round(self.cleared_at - self.since, 3)

    @property
    def last_alerted_at(self) -> float | None:
        return max((a["at"] for a in self.alerted), default=None)


def text(t: Trouble) -> str:
    """One human sentence saying what is wrong (the pages, push and ntfy show it)."""
    d = t.detail
    rooms = d.get("rooms") or ([t.room] if t.room else [])
    where = f" (rooms {', '.join(rooms)})" if len(rooms) > 1 else f" (room {rooms[0]})" if rooms else ""
    if t.kind == "device_silent":
        if d.get("last_will"):
            return f"Device {t.device} went offline{where}"
        return f"Device {t.device} has not been heard for {d.get('silent_s', 0):.0f} s{where}"
    if t.kind == "device_never_connected":
        return f"Device {t.device} has not connected since the hub started {d.get('waited_s', 0):.0f} s ago{where}"
    if t.kind == "stuck_line":
        return f"The {d.get('button', 'button')} line of room {t.room} on device {t.device} is held or shorted"
    if t.kind == "supply":
        return f"The 12 V supply of device {t.device} has failed{where}"
    if t.kind == "lamp":
        return f"A door lamp on device {t.device} draws no current{where}"
    if t.kind == "storm":
        return f"Device {t.device} is flooding the hub with messages{where}"
    if t.kind == "database":
        return "The hub cannot write its database" + (f": {d['error']}" if d.get("error") else "")
    if t.kind == "broker":
        return "The hub cannot reach the MQTT broker: buttons and lamps are cut off"
    if t.kind == "broker_dropping":
        return "The MQTT broker is dropping messages"
    return f"Trouble {t.kind} {t.key}"


class Troubles:
    """The open troubles of a store, and every change to them as transitions.

    ``last_seq``: the highest trouble number handed out so far (ids go on from it)."""

    def __init__(self, last_seq: int = 0, realert_s: float = REALERT_S):
        self.realert_s = realert_s
        self._seq = last_seq
        self._open: dict[tuple[str, str], Trouble] = {}  # (kind, key) → open trouble
        self._changed: dict[str, Trouble] = {}  # id → trouble changed since take_changed()

    # -- queries ----------------------------------------------------------------------------
    def is_open(self, kind: str, key: str) -> bool:
        return (kind, key) in self._open

    def open(self) -> list[Trouble]:
        """The open troubles, oldest first."""
        return sorted(self._open.values(), key=lambda t: (t.since, t.id))

    def get(self, trouble_id: str) -> Trouble | None:
        return next((t for t in self._open.values() if t.id == trouble_id), None)

    def take_changed(self) -> list[Trouble]:
        """The troubles changed since the last call (copies), for the communicators."""
        changed = [replace(t, alerted=list(t.alerted)) for t in self._changed.values()]
        self._changed.clear()
        return changed

    @property
    def last_seq(self) -> int:
        return self._seq

    # -- changes ----------------------------------------------------------------------------
    def report(self, kind: str, key: str, now: float, *, device: str | None = None, room: str | None = None,
               detail: dict | None = None) -> list[Transition]:
        """A fault seen at ``now``: opens a trouble unless one of (kind, key) is open already."""
        if kind not in KINDS:
            raise DomainError("invalid", f"unknown trouble kind {kind!r} (kinds: {', '.join(KINDS)})")
        if (kind, key) in self._open:
            return []
        self._seq += 1
        t = Trouble(trouble_id(self._seq), kind, key, device, room, dict(detail or {}), now)
        self._open[(kind, key)] = self._changed[t.id] = t
        return [self._transition(OPENED, t, now, "hub", None, device=device, detail=t.detail)]

    def clear(self, kind: str, key: str, now: float) -> list[Transition]:
        """The fault of (kind, key) is gone; [] when no such trouble is open."""
        t = self._open.pop((kind, key), None)
        if t is None:
            return []
        t.cleared_at = max(now, t.since)
        self._changed[t.id] = t
        return [self._transition(CLEARED, t, t.cleared_at, "hub", None, duration_s=t.duration_s)]

    def acknowledge(self, trouble_id: str, associate: str, now: float, source: str = "api") -> list[Transition]:
        """``associate`` has seen the trouble and takes it on: its alerting stops. Repeating it
        changes nothing; someone else's acknowledgement stands (a conflict)."""
        t = self.get(trouble_id)
        if t is None:
            raise DomainError("not_found", f"no open trouble {trouble_id!r}")
        if t.acknowledged_by is not None:
            if t.acknowledged_by == associate:
                return []
            raise DomainError("conflict", f"trouble {trouble_id} was acknowledged by {t.acknowledged_by}")
        t.acknowledged_by, t.acknowledged_at = associate, now
        self._changed[t.id] = t
        return [self._transition(ACKNOWLEDGED, t, now, source, associate)]

    def alert(self, recipients: Iterable[str], now: float) -> list[Transition]:
        """Alert ``recipients`` (:func:`pick_alerted`) of every open trouble nobody acknowledged
        that is due: never alerted, or last alerted ``realert_s`` ago. A trouble found nobody to
        alert is tried again at the next call."""
        who = list(dict.fromkeys(recipients))
        out: list[Transition] = []
        if not who:
            return out
        for t in self.open():
            if t.acknowledged_by is not None:
                continue
            last = t.last_alerted_at
            if last is not None and now < last + self.realert_s:
                continue
            rounds = len({a["at"] for a in t.alerted}) + 1
            for a in who:
                t.alerted.append({"associate": a, "at": now})
                out.append(self._transition(ALERTED, t, now, "hub", a, round=rounds))
            self._changed[t.id] = t
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`alert` next has something to do (an alert to repeat), epoch seconds;
        None when nothing waits. A trouble never alerted is due at once: the dispatcher runs
        ``alert`` after every batch, so it is not a deadline."""
        due = [t.last_alerted_at + self.realert_s for t in self._open.values()
               if t.acknowledged_by is None and t.alerted]
        return min(due, default=None)

    def restore(self, troubles: Iterable[Trouble], last_seq: int) -> None:
        """Take up the open troubles a stopped hub left (:func:`rebuild` from the event log)."""
        self._seq = max(self._seq, last_seq)
        for t in troubles:
            if t.open:
                self._open[(t.kind, t.key)] = t
                self._seq = max(self._seq, trouble_seq(t.id))

    @staticmethod
    def _transition(kind: str, t: Trouble, at: float, source: str, actor: str | None, **extra) -> Transition:
        return Transition(kind, t.room or "", at, source, None, actor,
                          {"trouble": t.id, "kind": t.kind, "key": t.key, **extra})


def rebuild(transitions: Iterable[Transition]) -> dict[str, Trouble]:
    """Troubles as stored transitions tell them (in order), by id: open and cleared ones. A
    trouble whose opening is not among them is left out."""
    out: dict[str, Trouble] = {}
    for tr in transitions:
        d = tr.detail or {}
        tid = d.get("trouble")
        if tr.kind == OPENED and tid:
            out[tid] = Trouble(tid, d.get("kind", ""), d.get("key", ""), d.get("device"), tr.room or None,
                               dict(d.get("detail") or {}), tr.at)
            continue
        t = out.get(tid)
        if t is None:
            continue
        if tr.kind == ALERTED and tr.actor:
            t.alerted.append({"associate": tr.actor, "at": tr.at})
        elif tr.kind == ACKNOWLEDGED:
            t.acknowledged_by, t.acknowledged_at = tr.actor, tr.at
        elif tr.kind == CLEARED:
            t.cleared_at = tr.at
    return out


def pick_alerted(associates: Iterable[tuple[str, str, str]], role: str = DEFAULT_ALERT_ROLE) -> list[str]:
    """Who is alerted of a trouble, from ``(id, role, state)`` of every associate: those with
    ``role`` who are on shift (any state but ``off``); if none is, everyone with ``role``
    (a fault must reach someone, as the escalation's manager step does)."""
    having = [(a, state) for a, r, state in associates if r == role]
    on_shift = [a for a, state in having if state != "off"]
    return on_shift or [a for a, _ in having]


@dataclass(frozen=True)
class Expected:
    """A configured device: the rooms it serves and how often it sends its health, seconds."""

    rooms: tuple[str, ...]
    heartbeat_s: float


class DeviceWatch:
    """Supervision of the configured devices: silent, never connected, retired.

        watch = DeviceWatch({"pi-1": Expected(("r1", "r2"), 10.0)}, troubles, started_at=now)
        watch.heard("pi-1", now + 1)      # any message: health, status, event
        watch.check(now + 40)             # silent 3 × 10 s → device_silent opened
        watch.offline("pi-1", now + 41)   # its last will: silent at once

    A device not heard for ``SILENT_AFTER_BEATS`` × its ``heartbeat_s`` is silent; one never
    heard since the hub started, after the same time, never connected. Hearing it again clears
    either. A retired device is no longer expected (its troubles clear); one heard again is
    expected again. With ``adopt_heartbeat_s`` (a store that lists no devices), a device heard
    once is expected from then on with that heartbeat. All times are seconds since the epoch."""

    def __init__(self, expected: Mapping[str, Expected], troubles: Troubles, started_at: float,
                 retired: Iterable[str] = (), adopt_heartbeat_s: float | None = None):
        self.expected = dict(expected)
        self.troubles = troubles
        self.started_at = started_at
        self.retired: set[str] = set(retired)
        self.adopt_heartbeat_s = adopt_heartbeat_s
        self._heard: dict[str, float] = {}  # device → when last heard (this hub's run)

    def grace_s(self, device: str) -> float:
        return SILENT_AFTER_BEATS * self.expected[device].heartbeat_s

    def _facts(self, device: str, **more) -> dict:
        e = self.expected.get(device)
        return {"rooms": list(e.rooms) if e else [], **more}

    def _room(self, device: str) -> str | None:
        e = self.expected.get(device)
        return e.rooms[0] if e and len(e.rooms) == 1 else None

    def heard(self, device: str, now: float, room: str | None = None) -> list[Transition]:
        """A message from ``device`` at ``now`` (about ``room``, if an event): it is alive. A
        retired device is un-retired."""
        self._heard[device] = max(now, self._heard.get(device, now))
        if self.adopt_heartbeat_s is not None:
            e = self.expected.get(device)
            if e is None or (room and room not in e.rooms):
                rooms = (e.rooms if e else ()) + ((room,) if room else ())
                self.expected[device] = Expected(rooms, e.heartbeat_s if e else self.adopt_heartbeat_s)
        out: list[Transition] = []
        if device in self.retired:
            self.retired.discard(device)
            out.append(Transition("device_unretired", "", now, "hub", None, device,
                                  {"device": device, "why": "heard again"}))
        out += self.troubles.clear("device_silent", device, now)
        out += self.troubles.clear("device_never_connected", device, now)
        return out

    def offline(self, device: str, now: float) -> list[Transition]:
        """Its last will (or its own goodbye): silent at once, no need to wait out the grace.
        A device going offline is a fault until it is retired."""
        self._heard.setdefault(device, now)
        if device not in self.expected and self.adopt_heartbeat_s is not None:
            self.expected[device] = Expected((), self.adopt_heartbeat_s)
        if device not in self.expected or device in self.retired:
            return []
        return self.troubles.report("device_silent", device, now, device=device, room=self._room(device),
                                    detail=self._facts(device, last_will=True, silent_s=0))

    def retire(self, device: str, now: float, actor: str | None = None, source: str = "api") -> list[Transition]:
        """``device`` is taken out of service: no longer expected, its troubles clear."""
        if (device not in self.expected and device not in self._heard
                and not any(t.device == device for t in self.troubles.open())):
            raise DomainError("not_found", f"unknown device {device!r}")
        if device in self.retired:
            return []
        self.retired.add(device)
        out = [Transition("device_retired", "", now, source, None, actor, {"device": device})]
        for kind in ("device_silent", "device_never_connected"):
            out += self.troubles.clear(kind, device, now)
        for t in self.troubles.open():  # stuck lines, supply, lamp, storm: the device is gone
            if t.device == device:
                out += self.troubles.clear(t.kind, t.key, now)
        return out

    def check(self, now: float) -> list[Transition]:
        """Open the troubles of devices whose silence has lasted their grace at ``now``."""
        out: list[Transition] = []
        for device in sorted(self.expected):
            if device in self.retired:
                continue
            grace = self.grace_s(device)
            last = self._heard.get(device)
            if last is None:
                if self.troubles.is_open("device_silent", device):
                    continue  # silent before the hub (re)started: one trouble is enough
                if now >= self.started_at + grace:
                    out += self.troubles.report(
                        "device_never_connected", device, now, device=device, room=self._room(device),
                        detail=self._facts(device, waited_s=round(now - self.started_at, 1)))
            elif now >= last + grace and not self.troubles.is_open("device_silent", device):
                out += self.troubles.report("device_silent", device, now, device=device, room=self._room(device),
                                            detail=self._facts(device, silent_s=round(now - last, 1)))
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`check` next may open a trouble, epoch seconds (None: nothing to watch)."""
        due = []
        for device in self.expected:
            if device in self.retired:
                continue
            last = self._heard.get(device)
            if last is None:
                if not (self.troubles.is_open("device_never_connected", device)
                        or self.troubles.is_open("device_silent", device)):
                    due.append(self.started_at + self.grace_s(device))
            elif not self.troubles.is_open("device_silent", device):
                due.append(last + self.grace_s(device))
        return min(due, default=None)

    def status(self, device: str, now: float) -> str:
        """"retired", "never" (not heard since the hub started), "silent" or "ok"."""
        if device in self.retired:
            return "retired"
        last = self._heard.get(device)
        if last is None:
            return "never"
        if device in self.expected and now >= last + self.grace_s(device):
            return "silent"
        return "ok"


class BrokerWatch:
    """The hub's link to the MQTT broker: a ``broker`` trouble once it has been down for
    ``grace_s`` seconds (BROKER_GRACE_S), cleared when it is up again.

        watch = BrokerWatch(troubles)
        watch.down(now)          # not connected (yet, or any more)
        watch.check(now + 5)     # → trouble_opened
        watch.up(now + 9)        # → trouble_cleared

    Nothing is watched until the first ``down`` or ``up``: a hub run without a broker link
    (tests, tools) raises no broker trouble."""

    def __init__(self, troubles: Troubles, grace_s: float = BROKER_GRACE_S):
        self.troubles = troubles
        self.grace_s = grace_s
        self.down_since: float | None = None

    def down(self, now: float) -> list[Transition]:
        if self.down_since is None:
            self.down_since = now
        return []

    def up(self, now: float) -> list[Transition]:
        self.down_since = None
        return self.troubles.clear("broker", "broker", now)

    def check(self, now: float) -> list[Transition]:
        if self.down_since is None or now < self.down_since + self.grace_s:
            return []
        return self.troubles.report("broker", "broker", now,
                                    detail={"down_s": round(now - self.down_since, 1)})

    def next_deadline(self) -> float | None:
        if self.down_since is None or self.troubles.is_open("broker", "broker"):
            return None
        return self.down_since + self.grace_s
