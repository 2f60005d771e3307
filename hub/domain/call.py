"""The call state machine of docs/spec/PRODUCT.md, pure: no I/O, no clock of its own.

Every method takes the time it happens at (seconds since the epoch) and returns the
:class:`Transition` records it caused; the hub stores those append-only and publishes the
changed lamps. States::

    open ──acknowledge──▶ acknowledged ──presence/answer──▶ answered ──presence/done──▶ done
      │  └────────────presence/answer──────────────────────▲
      ├──cancel (hold 2 s)──▶ cancelled
      └──no answer within the expiry (15 min)──▶ missed

An acknowledged call nobody answered in time is *re-opened* (back to open, alerted again; the
escalation ladder in hub/domain/escalation.py decides when). Pressing again while a call is open
or acknowledged is a *reminder* (urgency rises). A press on a room whose call was answered
closes that call (the shopper was served) and opens a new one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from callbell.protocol import LampState

OPEN, ACKNOWLEDGED, ANSWERED, DONE, CANCELLED, MISSED = (
    "open", "acknowledged", "answered", "done", "cancelled", "missed")
STATUSES = (OPEN, ACKNOWLEDGED, ANSWERED, DONE, CANCELLED, MISSED)
ACTIVE = (OPEN, ACKNOWLEDGED, ANSWERED)
WAITING = (OPEN, ACKNOWLEDGED)  # nobody at the room yet

#: Where a transition came from (stored with every event).
SOURCES = ("device", "phone", "dashboard", "api", "hub")

#: Service standard: an associate at the door within this many seconds (docs/spec/PRODUCT.md default).
DEFAULT_STANDARD_S = 90.0
#: A call nobody answered within this many seconds is missed (docs/spec/PRODUCT.md default: 15 min).
DEFAULT_EXPIRY_S = 15 * 60.0
#: An answered call nobody marked done is closed automatically after this many seconds, so a
#: forgotten "done" does not leave the room busy all day. Its handling time is then flagged.
DEFAULT_HANDLING_LIMIT_S = 15 * 60.0


class DomainError(Exception):
    """An action that the state of the call does not allow. ``code`` maps to HTTP."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # "not_found" | "conflict" | "unknown_room" | "invalid"
        self.message = message


#: Stages of a delivery receipt, in order: the alert ``delivered`` to the associate's phone
#: (the page or its service worker has it), then ``shown`` (it rang: sound, vibration or a
#: system notification the person can see).
DELIVERED, SHOWN = "delivered", "shown"
RECEIPT_STAGES = (DELIVERED, SHOWN)

#: How far apart, seconds, an alert's time as a page quotes it (ISO 8601 to the millisecond)
#: may be from the stored one and still name it.
ALERT_MATCH_S = 0.002


@dataclass
class Alert:
    """``associate`` was alerted at ``at`` (seconds since the epoch) at escalation ``step``;
    their phone confirmed it had the alert at ``delivered_at`` and rang at ``shown_at``."""

    associate: str
    at: float
    step: int
    delivered_at: float | None = None
    shown_at: float | None = None

    def as_dict(self) -> dict:
        d = {"associate": self.associate, "at": self.at, "step": self.step}
        if self.delivered_at is not None:
            d["delivered_at"] = self.delivered_at
        if self.shown_at is not None:
            d["shown_at"] = self.shown_at
        return d


@dataclass
class Call:
    id: str
    room: str
    zone: str | None
    reason: str
    pressed_at: float
    status: str = OPEN
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    answered_at: float | None = None
    answered_by: str | None = None
    done_at: float | None = None
    done_by: str | None = None
    closed_at: float | None = None  # when it left the active states, whatever the outcome
    reminders: int = 0
    overdue: bool = False
    alerted: list[Alert] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)
    #: True when the call was closed by the hub (handling limit), not by a person.
    auto_closed: bool = False
    #: When an acknowledged call nobody answered in time was re-opened (alerting starts again).
    reopened_at: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def response_s(self) -> float | None:
        """answered − pressed, seconds: the service-standard figure."""
        return None if self.answered_at is None else round(self.answered_at - self.pressed_at, 3)

    @property
    def wait_ack_s(self) -> float | None:
        return None if self.acknowledged_at is None else round(self.acknowledged_at - self.pressed_at, 3)

    @property
    def handling_s(self) -> float | None:
        if self.done_at is None or self.answered_at is None:
            return None
        return round(self.done_at - self.answered_at, 3)

    @property
    def urgency(self) -> int:
        return 1 + self.reminders

    def lamp(self) -> LampState:
        """What the room's lamp shows for this call."""
        if self.status == OPEN:
            return LampState("overdue" if self.overdue else "called", self.id, self.reason, self.pressed_at)
        if self.status == ACKNOWLEDGED:
            return LampState("acknowledged", self.id, self.reason, self.acknowledged_at, self.acknowledged_by)
        return LampState("idle")  # the same as a room with no call: one retained message, not two


@dataclass(frozen=True)
class Transition:
    """One stored event: what happened to which call, when, by whom, from where."""

    kind: str  # pressed reminder acknowledged declined answered done cancelled missed overdue presence alerted receipt
    room: str
    at: float
    source: str
    call: str | None = None
    actor: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Room:
    id: str
    zone: str | None = None
    reasons: tuple[str, ...] = ("help", "size")


@dataclass(frozen=True)
class Timing:
    """The store's timing rules, seconds."""

    standard_s: float = DEFAULT_STANDARD_S
    expiry_s: float = DEFAULT_EXPIRY_S
    handling_limit_s: float = DEFAULT_HANDLING_LIMIT_S


def call_id(seq: int) -> str:
    return f"c-{seq:06d}"


class Floor:
    """All rooms of a store and their calls: the one place the call state machine lives.

        floor = Floor([Room("fitting-1", "womens")], Timing(standard_s=90))
        t = floor.press("fitting-1", "help", pressed_at=now, now=now, source="device", actor="pi-a")
        floor.acknowledge(floor.current("fitting-1").id, "ana", now + 12, "phone")
    """

    def __init__(self, rooms: Iterable[Room], timing: Timing = Timing(), last_seq: int = 0):
        self.rooms = {r.id: r for r in rooms}
        self.timing = timing
        self._seq = last_seq
        self._current: dict[str, Call] = {}  # room → its active call
        self._calls: dict[str, Call] = {}  # call id → active call
        self._changed: dict[str, Call] = {}  # calls changed since take_changed()

    # -- queries ----------------------------------------------------------------------------
    def current(self, room: str) -> Call | None:
        return self._current.get(room)

    def call(self, call: str) -> Call | None:
        return self._calls.get(call)

    def active_calls(self) -> list[Call]:
        return sorted(self._calls.values(), key=lambda c: c.pressed_at)

    def lamp(self, room: str) -> LampState:
        call = self._current.get(room)
        return call.lamp() if call else LampState("idle")

    def take_changed(self) -> list[Call]:
        """The calls changed (including closed) since the last call of this method."""
        changed, self._changed = list(self._changed.values()), {}
        return changed

    def room(self, room: str) -> Room:
        try:
            return self.rooms[room]
        except KeyError:
            raise DomainError("unknown_room", f"unknown room {room!r}") from None

    def restore(self, calls: Iterable[Call], last_seq: int) -> None:
        """Take back the active calls stored before a restart."""
        self._seq = max(self._seq, last_seq)
        for c in calls:
            if c.active:
                self._current[c.room] = c
                self._calls[c.id] = c

    # -- shopper ----------------------------------------------------------------------------
    def press(self, room: str, reason: str, pressed_at: float, now: float, source: str = "device",
              actor: str | None = None) -> list[Transition]:
        """A shopper's short press. Opens a call, or records a reminder on the open one."""
        r = self.room(room)
        if reason not in r.reasons:
            raise DomainError("invalid", f"room {room!r} has no {reason!r} button (has: {', '.join(r.reasons)})")
        out: list[Transition] = []
        call = self._current.get(room)
        if call and call.status in WAITING:
            call.reminders += 1
            self._touch(call)
            return [Transition("reminder", room, pressed_at, source, call.id, actor,
                               {"reminders": call.reminders, "reason": reason})]
        if call and call.status == ANSWERED:
            # Served and a new need: the previous call ended at the latest now.
            out += self._finish(call, DONE, min(max(pressed_at, call.answered_at), now), source, None,
                                {"auto": True, "why": "new press after answer"})
            call.auto_closed = True
        self._seq += 1
        call = Call(id=call_id(self._seq), room=room, zone=r.zone, reason=reason, pressed_at=pressed_at)
        self._current[room] = call
        self._calls[call.id] = call
        self._touch(call)
        detail = {"reason": reason, "received_at": now}
        out.append(Transition("pressed", room, pressed_at, source, call.id, actor, detail))
        return out + self.tick(now)  # a press delivered late may already be overdue or missed

    def cancel(self, room: str, at: float, source: str = "device", actor: str | None = None) -> list[Transition]:
        """The shopper held the button: withdraws a call nobody has reached yet."""
        self.room(room)
        call = self._current.get(room)
        if not call or call.status not in WAITING:
            return []
        return self._finish(call, CANCELLED, at, source, actor)

    # -- associates -------------------------------------------------------------------------
    def presence(self, room: str, at: float, source: str = "device", actor: str | None = None) -> list[Transition]:
        """Staff at the door: answers a waiting call, completes an answered one, or (idle room)
        only records that someone was there."""
        self.room(room)
        call = self._current.get(room)
        if call is None:
            return [Transition("presence", room, at, source, None, actor)]
        if call.status in WAITING:
            return self._answer(call, actor or call.acknowledged_by, at, source)
        return self._finish(call, DONE, at, source, actor or call.answered_by)

    def acknowledge(self, call_id: str, associate: str, at: float, source: str) -> list[Transition]:
        """"On my way". Repeating it by the same associate changes nothing."""
        call = self._active(call_id)
        if call.status == ACKNOWLEDGED and call.acknowledged_by == associate:
            return []
        if call.status != OPEN:
            who = call.acknowledged_by or call.answered_by
            raise DomainError("conflict", f"call {call_id} is already {call.status}" + (f" by {who}" if who else ""))
        call.status = ACKNOWLEDGED
        call.acknowledged_at = max(at, call.pressed_at)
        call.acknowledged_by = associate
        self._touch(call)
        return [Transition("acknowledged", call.room, call.acknowledged_at, source, call.id, associate)]

    def decline(self, call_id: str, associate: str, at: float, source: str) -> list[Transition]:
        """"Not me". Recorded; the escalation ladder decides what follows."""
        call = self._active(call_id)
        if call.status != OPEN:
            raise DomainError("conflict", f"call {call_id} is already {call.status}; nothing to decline")
        if associate in call.declined:
            return []
        call.declined.append(associate)
        self._touch(call)
        return [Transition("declined", call.room, at, source, call.id, associate)]

    def answer(self, call_id: str, associate: str, at: float, source: str) -> list[Transition]:
        """"Arrived", the same as the presence button."""
        call = self._active(call_id)
        if call.status == ANSWERED:
            if call.answered_by == associate:
                return []
            raise DomainError("conflict", f"call {call_id} is already answered by {call.answered_by}")
        return self._answer(call, associate, at, source)

    def done(self, call_id: str, associate: str, at: float, source: str) -> list[Transition]:
        """Finished with the shopper. On a call nobody was recorded at (no presence, no
        "Arrived"), no arrival is made up: the call is done with no response time, because
        "On my way" then "Done" does not say when anyone reached the door."""
        call = self._active(call_id)
        if call.status in WAITING:
            return self._finish(call, DONE, at, source, associate, {"arrival": "not recorded"})
        return self._finish(call, DONE, at, source, associate)

    def reopen(self, call_id: str, at: float, source: str = "hub") -> list[Transition]:
        """An acknowledged call nobody answered in time goes back to ``open``: whoever was on
        the way is no longer counted on, and alerting starts again as if the call were new."""
        call = self._active(call_id)
        if call.status != ACKNOWLEDGED:
            raise DomainError("conflict", f"call {call_id} is {call.status}; only an acknowledged call re-opens")
        was = call.acknowledged_by
        call.status = OPEN
        call.acknowledged_at = call.acknowledged_by = None
        call.reopened_at = max(at, call.pressed_at)
        self._touch(call)
        return [Transition("reopened", call.room, call.reopened_at, source, call.id, None, {"acknowledged_by": was})]

    def alert(self, call_id: str, associates: Iterable[str], at: float, step: int) -> list[Transition]:
        """Record that ``associates`` were alerted for a call at escalation ``step``."""
        call = self._active(call_id)
        out = []
        for a in associates:
            call.alerted.append(Alert(a, at, step))
            self._touch(call)
            out.append(Transition("alerted", call.room, at, "hub", call.id, a, {"step": step}))
        return out

    def receipt(self, call_id: str, associate: str, alerted_at: float, stage: str, at: float,
                source: str = "phone", via: str = "page") -> list[Transition]:
        """The associate's phone confirms an alert (the one of ``alerted_at``): ``delivered``
        (it has it) or ``shown`` (it rang; implies delivered). Repeats change nothing; a
        receipt for a closed call is refused (not_found), as for any action."""
        if stage not in RECEIPT_STAGES:
            raise DomainError("invalid", f"stage must be one of {', '.join(RECEIPT_STAGES)}, got {stage!r}")
        call = self._active(call_id)
        mine = [a for a in call.alerted if a.associate == associate and abs(a.at - alerted_at) <= ALERT_MATCH_S]
        if not mine:
            raise DomainError("not_found", f"call {call_id} has no alert for {associate!r} at that time")
        alert = min(mine, key=lambda a: abs(a.at - alerted_at))
        out = []
        at = max(at, alert.at)
        for name in RECEIPT_STAGES[: RECEIPT_STAGES.index(stage) + 1]:
            if getattr(alert, f"{name}_at") is None:
                setattr(alert, f"{name}_at", at)
                out.append(Transition("receipt", call.room, at, source, call.id, associate,
                                      {"stage": name, "step": alert.step, "via": via,
                                       "alerted_at": alert.at, "latency_s": round(at - alert.at, 3)}))
        if out:
            self._touch(call)
        return out

    # -- time -------------------------------------------------------------------------------
    def tick(self, now: float) -> list[Transition]:
        """Apply what time alone changes: overdue at the standard, missed at the expiry,
        answered calls closed at the handling limit."""
        t = self.timing
        out: list[Transition] = []
        for call in list(self._calls.values()):
            if call.status in WAITING:
                if not call.overdue and now >= call.pressed_at + t.standard_s:
                    call.overdue = True
                    self._touch(call)
                    out.append(Transition("overdue", call.room, call.pressed_at + t.standard_s, "hub", call.id))
                if now >= call.pressed_at + t.expiry_s:
                    out += self._finish(call, MISSED, call.pressed_at + t.expiry_s, "hub", None)
            elif call.status == ANSWERED and now >= call.answered_at + t.handling_limit_s:
                call.auto_closed = True
                out += self._finish(call, DONE, call.answered_at + t.handling_limit_s, "hub", None,
                                    {"auto": True, "why": "handling limit"})
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`tick` would change something, or None."""
        t = self.timing
        times = []
        for call in self._calls.values():
            if call.status in WAITING:
                if not call.overdue:
                    times.append(call.pressed_at + t.standard_s)
                times.append(call.pressed_at + t.expiry_s)
            elif call.status == ANSWERED:
                times.append(call.answered_at + t.handling_limit_s)
        return min(times, default=None)

    # -- internals --------------------------------------------------------------------------
    def _touch(self, call: Call) -> None:
        self._changed[call.id] = call

    def _active(self, call_id: str) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise DomainError("not_found", f"call {call_id} is not active (unknown, or already closed)")
        return call

    def _answer(self, call: Call, associate: str | None, at: float, source: str) -> list[Transition]:
        call.status = ANSWERED
        call.answered_at = max(at, call.pressed_at)
        call.answered_by = associate
        self._touch(call)
        if call.response_s > self.timing.standard_s:
            call.overdue = True
        return [Transition("answered", call.room, call.answered_at, source, call.id, associate,
                           {"response_s": call.response_s})]

    def _finish(self, call: Call, status: str, at: float, source: str, actor: str | None,
                detail: dict | None = None) -> list[Transition]:
        call.status = status
        call.closed_at = max(at, call.pressed_at)
        if status == DONE:
            call.done_at = max(call.closed_at, call.answered_at or call.closed_at)
            call.done_by = actor
        self._touch(call)
        del self._calls[call.id]
        if self._current.get(call.room) is call:
            del self._current[call.room]
        return [Transition(status, call.room, call.closed_at, source, call.id, actor, detail or {})]
