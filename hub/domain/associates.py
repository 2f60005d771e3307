"""Associates: who is on the floor, in what state, and where. Pure: no I/O, no clock of its own.

State. An associate *declares* ``available``, ``break`` or ``off`` (off shift), from the phone
page or the API; the hub derives ``busy`` while they have a call they acknowledged or answered.
A fresh hub starts everyone in the state the config gives (``off`` unless told otherwise), so
nobody who is not at work is alerted; after that the last declared state is kept (stored as an
event, restored on restart). The configured state applies until someone declares one; where a
start puts someone in a state the log does not already hold for them (their first start, a
changed config, an associate added or removed), the hub records it as a state event of its own
(:meth:`Roster.record_start`), so the log holds every state anyone was in and the signed-in
figures (docs/statistics.md) can be computed from it alone.

Position. Up to four sources, each with the time it was seen:

=========== ===================================================== ===============
source      what                                                  typical error
=========== ===================================================== ===============
``feed``    the MQTT location feed (RTLS, BLE beacons): a room,   2 m, growing
            a zone or x/y
``presence`` the room where they last pressed presence / answered 5 m, growing
            / finished a call
``zone``    the zone they chose on the phone or through the API   15 m, fixed
``home``    their home zone from the config                       20 m, fixed
=========== ===================================================== ===============

**Staleness rule.** A sighting (feed, presence) gets less certain as it ages, because people
move: its expected error is its typical error plus :data:`DRIFT_M_PER_S` for every second of age.
A chosen or home zone is a statement, not a sighting, and does not age. The position used is the
one with the smallest expected error (ties: the order of the table). With the defaults, a feed
position ranks below a presence that is more than 60 s fresher, below the chosen zone once it is
260 s old; a presence ranks below the chosen zone once it is 200 s old.

Reach. An associate's phone page tells the hub it is there (a ping every quarter of
``presence_s``; every receipt and tap counts too). Once it has pinged this shift, they are
*tracked*: if it
then falls silent for ``presence_s`` (default 2 min), they are ``unreachable`` — skipped by
the escalation like someone on a break and shown so on the floor screen — until it is heard
again. An associate with a Web Push subscription can be reached with the page closed, so
silence alone does not make them unreachable; an alert of theirs that got no receipt within
``receipt_s`` does. Someone who never opened the phone page (the floor screen, ntfy only) is
not tracked: the hub cannot tell, and alerts them as before. Going off shift ends tracking.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from hub.domain.call import ACKNOWLEDGED, ANSWERED, Call, DomainError, Transition
from hub.domain.layout import Layout, Place

AVAILABLE, BUSY, BREAK, OFF, UNREACHABLE = "available", "busy", "break", "off", "unreachable"
#: What an associate can declare; ``busy`` is derived from their calls, ``unreachable`` from
#: their phone's silence (Reach, above).
DECLARED = (AVAILABLE, BREAK, OFF)
STATES = (AVAILABLE, BUSY, BREAK, OFF, UNREACHABLE)
ASSOCIATE, MANAGER = "associate", "manager"

FEED, PRESENCE, ZONE, HOME = "feed", "presence", "zone", "home"
SOURCES = (FEED, PRESENCE, ZONE, HOME)

#: Typical error of a fresh position from each source, metres. A location feed (RTLS, BLE) is
#: good to a couple of metres; presence puts them at a door; a zone is a department (~15 m
#: across in a mid-size store); the home zone from the config is a default, not a statement.
SOURCE_ERROR_M = {FEED: 2.0, PRESENCE: 5.0, ZONE: 15.0, HOME: 20.0}

#: How fast a sighting's error grows with its age, metres per second. An associate walks
#: 1.2 m/s but mostly works in place; 0.05 m/s (3 m a minute) keeps a presence better than the
#: chosen zone for 200 s. Higher trusts sightings less; 0 would trust a feed that stopped an
#: hour ago.
DRIFT_M_PER_S = 0.05

#: A tracked phone silent this long, seconds, makes its associate ``unreachable``. The page
#: pings every quarter of it (PING_EVERY_FRACTION), so three lost pings in a row are
#: forgiven; shorter finds a dead phone sooner but marks a phone roaming between access points.
DEFAULT_PRESENCE_S = 120.0
#: The phone page pings this fraction of ``presence_s`` apart (the page reads it from the hub).
PING_EVERY_FRACTION = 0.25

#: Transition kinds stored for associates (besides the call transitions they act in).
STATE_EVENT, ZONE_EVENT, REACH_EVENT = "associate_state", "associate_zone", "associate_reach"
#: ``detail["from"]`` of a state event the hub wrote at start from the config (not declared):
#: restored states skip these, so the config's state keeps applying until one is declared.
FROM_CONFIG = "config"
#: Call transitions that put the acting associate at the call's room (a presence position).
AT_ROOM_KINDS = ("answered", "done", "presence")


@dataclass(frozen=True)
class Position:
    """Where an associate was seen or said they are, from which source, when (None: config)."""

    source: str
    place: Place
    at: float | None = None

    def error_m(self, now: float) -> float:
        """Expected error in metres at ``now`` (the staleness rule above)."""
        base = SOURCE_ERROR_M[self.source]
        if self.source in (FEED, PRESENCE) and self.at is not None:
            return base + DRIFT_M_PER_S * max(0.0, now - self.at)
        return base


@dataclass
class Associate:
    """One member of staff.

        Associate("ana", home_zone="womens")                      # an associate, off shift
        Associate("maria", role="manager", state="available")     # the failsafe manager
    """

    id: str
    name: str = ""
    role: str = ASSOCIATE
    home_zone: str | None = None
    state: str = OFF
    state_at: float | None = None
    positions: dict[str, Position] = field(default_factory=dict)
    #: When they last became free: a call of theirs ended, or they became available. Ties in
    #: distance go to whoever has waited longest since then (None: never, longest of all).
    idle_since: float | None = None
    #: When their phone was last heard this shift (None: not tracked; see Reach above).
    heard_at: float | None = None
    #: They have a Web Push subscription: reachable with the page closed.
    push: bool = False

    def __post_init__(self):
        if self.state not in DECLARED:
            raise ValueError(f"state must be one of {', '.join(DECLARED)}, got {self.state!r}")
        if self.home_zone is not None and HOME not in self.positions:
            self.positions[HOME] = Position(HOME, Place(zone=self.home_zone))

    @property
    def manager(self) -> bool:
        return self.role == MANAGER

    def position(self, now: float) -> Position | None:
        """The best position now (see the staleness rule in the module docstring)."""
        if not self.positions:
            return None
        return min(self.positions.values(), key=lambda p: (p.error_m(now), SOURCES.index(p.source)))


@dataclass(frozen=True)
class Candidate:
    """What the escalation needs to know of an associate at one moment."""

    id: str
    manager: bool
    state: str  # effective: available | busy | break | off
    place: Place | None
    zone: str | None
    idle_since: float | None
    #: Their phone sends delivery receipts (it has been heard this shift): an alert without
    #: one in time goes on to the next person (hub.domain.escalation).
    expects_receipt: bool = False

    @property
    def free(self) -> bool:
        return self.state == AVAILABLE


def busy_with(calls: Iterable[Call]) -> dict[str, str]:
    """associate → the call that makes them busy (acknowledged by them, or answered by them)."""
    out: dict[str, str] = {}
    for c in sorted(calls, key=lambda c: c.pressed_at):
        who = c.acknowledged_by if c.status == ACKNOWLEDGED else c.answered_by if c.status == ANSWERED else None
        if who is not None:
            out.setdefault(who, c.id)
    return out


class Roster:
    """Every associate of the store, their declared states and positions.

        roster = Roster([Associate("ana", home_zone="womens")], zones=["womens", "mens"])
        roster.set_state("ana", "available", at=now, source="phone")   # → [Transition]
        roster.locate("ana", Place(room="fitting-3"), at=now)            # location feed
        roster.candidates(floor.active_calls(), layout, now)             # for the escalation
    """

    def __init__(self, associates: Iterable[Associate], zones: Iterable[str] = (),
                 presence_s: float = DEFAULT_PRESENCE_S, receipt_s: float = 5.0):
        self._all: dict[str, Associate] = {a.id: replace(a, positions=dict(a.positions)) for a in associates}
        self.zones = set(zones)
        self.presence_s = presence_s  # seconds of silence before a tracked phone is unreachable
        self.receipt_s = receipt_s    # seconds an alert waits for its receipt (hub.domain.escalation)
        self._reach: dict[str, bool] = {}  # who → reachable, as last recorded (reach())
        self._logged: dict[str, str] = {}  # who → the last state the event log holds (restore())

    def __contains__(self, associate: str) -> bool:
        return associate in self._all

    def __iter__(self):
        return iter(self._all.values())

    def get(self, associate: str) -> Associate:
        try:
            return self._all[associate]
        except KeyError:
            raise DomainError("unknown_associate", f"unknown associate {associate!r}") from None

    @property
    def managers(self) -> list[str]:
        return [a.id for a in self._all.values() if a.manager]

    # -- changes ----------------------------------------------------------------------------
    def set_state(self, associate: str, state: str, at: float, source: str) -> list[Transition]:
        """Declare available, break or off. Repeating the current state changes nothing."""
        a = self.get(associate)
        if state not in DECLARED:
            raise DomainError("invalid", f"state must be one of {', '.join(DECLARED)} (busy is derived "
                                         f"from calls), got {state!r}")
        if a.state == state:
            return []
        was = a.state
        a.state, a.state_at = state, at
        if state == OFF:
            a.heard_at = None  # off shift: no longer tracked (Reach)
        if state == AVAILABLE:
            a.idle_since = at if a.idle_since is None else max(a.idle_since, at)
        return [Transition(STATE_EVENT, "", at, source, None, associate, {"state": state, "was": was})]

    def choose_zone(self, associate: str, zone: str, at: float, source: str) -> list[Transition]:
        """The zone they say they work in now (a position of source ``zone``)."""
        a = self.get(associate)
        if zone not in self.zones:
            raise DomainError("invalid", f"unknown zone {zone!r} (zones: {', '.join(sorted(self.zones)) or 'none'})")
        a.positions[ZONE] = Position(ZONE, Place(zone=zone), at)
        return [Transition(ZONE_EVENT, "", at, source, None, associate, {"zone": zone})]

    def locate(self, associate: str, place: Place, at: float) -> None:
        """A location-feed position (kept in memory only: a feed is frequent and soon stale)."""
        self.get(associate).positions[FEED] = Position(FEED, place, at)

    def heard(self, associate: str, at: float) -> list[Transition]:
        """Their phone was heard at ``at`` (a ping from the phone page). Stores nothing: a
        change of reach is recorded by :meth:`reach`."""
        a = self.get(associate)
        if a.state != OFF:
            a.heard_at = at if a.heard_at is None else max(a.heard_at, at)
        return []

    def set_push(self, associate: str, on: bool) -> None:
        """They have (``on``) or no longer have a Web Push subscription."""
        self.get(associate).push = on

    def keep_presence(self, other: "Roster") -> None:
        """Take what is kept in memory only (phones heard, push) from ``other``, the roster this
        one replaces after a failed write."""
        for a in self._all.values():
            old = other._all.get(a.id)
            if old is not None and a.state != OFF:
                a.heard_at, a.push = old.heard_at, old.push
        self._reach = dict(other._reach)

    def observe(self, t: Transition) -> None:
        """Learn from a stored transition: presence at a room, a call ending, a phone heard."""
        a = self._all.get(t.actor) if t.actor else None
        if a is None:
            return
        if t.source == "phone" and a.state != OFF and a.heard_at is not None:
            a.heard_at = max(a.heard_at, t.at)  # a tap or a receipt is as good as a ping
        if t.kind in AT_ROOM_KINDS and t.room:
            old = a.positions.get(PRESENCE)
            if old is None or old.at is None or old.at <= t.at:
                a.positions[PRESENCE] = Position(PRESENCE, Place(room=t.room), t.at)

    def settle(self, calls: Iterable[Call]) -> None:
        """Learn from changed calls: whoever had taken a call that closed is free since then."""
        for c in calls:
            if not c.active and c.closed_at is not None:
                for who in {c.acknowledged_by, c.answered_by, c.done_by} - {None}:
                    self.call_ended(who, c.closed_at)

    def call_ended(self, associate: str | None, at: float) -> None:
        """A call this associate had taken closed: they have been free since ``at``."""
        a = self._all.get(associate) if associate else None
        if a is not None:
            a.idle_since = at if a.idle_since is None else max(a.idle_since, at)

    def restore(self, states: Mapping[str, tuple[str, float]] = {}, zones: Mapping[str, tuple[str, float]] = {},
                presences: Mapping[str, tuple[str, float]] = {}, idle: Mapping[str, float] = {},
                logged: Mapping[str, str] = {}) -> None:
        """Take back what was stored before a restart (the last of each per associate):
        ``states`` declared (not the hub's own records of a start), ``logged`` the last state
        event of any kind (for :meth:`record_start`)."""
        self._logged = dict(logged)
        for who, (state, at) in states.items():
            if who in self._all and state in DECLARED:
                a = self._all[who]
                a.state, a.state_at = state, at
                if state == AVAILABLE:
                    self.call_ended(who, at)
        for who, (zone, at) in zones.items():
            if who in self._all and zone in self.zones:
                self._all[who].positions[ZONE] = Position(ZONE, Place(zone=zone), at)
        for who, (room, at) in presences.items():
            if who in self._all:
                self._all[who].positions[PRESENCE] = Position(PRESENCE, Place(room=room), at)
        for who, at in idle.items():
            self.call_ended(who, at)

    def record_start(self, at: float) -> list[Transition]:
        """State events for everyone this start puts in a state the log does not hold for them
        (no event counts as ``off``: nobody is on the floor before the hub knows them): the
        config's starting state at a first start or after the config changed it, and ``off``
        for associates no longer in the config. Nothing when the log already agrees, so a
        restart writes nothing."""
        out = []
        for who in sorted(self._all.keys() | self._logged.keys()):
            a = self._all.get(who)
            state = a.state if a is not None else OFF
            was = self._logged.get(who)
            if state != (was or OFF):
                self._logged[who] = state
                out.append(Transition(STATE_EVENT, "", at, "hub", None, who,
                                      {"state": state, "was": was, "from": FROM_CONFIG}))
        return out

    # -- reach ------------------------------------------------------------------------------
    def reachable(self, a: Associate, calls: Iterable[Call], now: float) -> bool:
        """Whether ``a``'s phone can be counted on now (Reach, in the module docstring)."""
        if a.heard_at is None or a.state == OFF:
            return True  # not tracked
        if now - a.heard_at < self.presence_s:
            return True
        if not a.push:
            return False
        # Silent, but reachable by push unless a push since then went without a receipt.
        for c in calls:
            for alert in c.alerted:
                if (alert.associate == a.id and alert.at > a.heard_at and alert.delivered_at is None
                        and now >= alert.at + self.receipt_s):
                    return False
        return True

    def reach(self, calls: Iterable[Call], now: float) -> list[Transition]:
        """Record who became unreachable or reachable again since the last call."""
        calls = list(calls)
        out = []
        for a in self._all.values():
            on = self.reachable(a, calls, now)
            if self._reach.get(a.id, True) != on:
                self._reach[a.id] = on
                out.append(Transition(REACH_EVENT, "", now, "hub", None, a.id,
                                      {"reachable": on, "heard_at": a.heard_at}))
        return out

    def next_deadline(self, now: float) -> float | None:
        """When a tracked phone that is still counted on falls silent for too long (push
        subscribers are checked by their receipts instead: hub.domain.escalation's deadlines)."""
        times = [a.heard_at + self.presence_s for a in self._all.values()
                 if a.heard_at is not None and a.state != OFF and not a.push and a.heard_at + self.presence_s > now]
        return min(times, default=None)

    # -- views ------------------------------------------------------------------------------
    def _state(self, a: Associate, busy: dict, calls: list[Call], now: float) -> tuple[str, bool]:
        """(effective state, reachable): busy over unreachable over what they declared."""
        reachable = self.reachable(a, calls, now)
        if a.id in busy:
            return BUSY, reachable
        if a.state == AVAILABLE and not reachable:
            return UNREACHABLE, reachable
        return a.state, reachable

    def candidates(self, calls: Iterable[Call], layout: Layout, now: float) -> list[Candidate]:
        calls = list(calls)
        busy = busy_with(calls)
        out = []
        for a in self._all.values():
            pos = a.position(now)
            place = pos.place if pos else None
            state, _ = self._state(a, busy, calls, now)
            out.append(Candidate(a.id, a.manager, state, place, layout.zone_of(place), a.idle_since,
                                 expects_receipt=a.heard_at is not None))
        return out

    def view(self, associate: str, calls: Iterable[Call], layout: Layout, now: float) -> dict:
        """An associate as the API shows it (times as seconds since the epoch)."""
        return self.views(calls, layout, now)[associate]

    def views(self, calls: Iterable[Call], layout: Layout, now: float) -> dict[str, dict]:
        calls = list(calls)
        busy = busy_with(calls)
        out = {}
        for a in self._all.values():
            pos = a.position(now)
            state, reachable = self._state(a, busy, calls, now)
            out[a.id] = {
                "id": a.id, "name": a.name or a.id, "role": a.role, "home_zone": a.home_zone,
                "state": state, "declared": a.state, "state_at": a.state_at,
                "reachable": reachable, "heard_at": a.heard_at, "push": a.push,
                "call": busy.get(a.id),
                "position": None if pos is None else {
                    "source": pos.source, **pos.place.as_dict(), "zone": layout.zone_of(pos.place), "at": pos.at},
                "idle_since": a.idle_since,
            }
        return out
