"""Who is alerted for a call, and when: the escalation ladder. Pure: no I/O, no clock.

A ladder is a list of steps in seconds since the press (or since the call was re-opened)::

    Ladder.default(standard_s=90)
    #  0 s  nearest   the nearest free associate
    # 20 s  next      the next nearest free associate too
    # 45 s  zone      every free associate in the call's zone
    # 60 s  all       every free associate in the store, whatever their zone
    # 90 s  manager   the managers (the failsafe); the lamp turns overdue at the standard

Kinds of step: ``nearest`` and ``next`` each add one associate, nearest first by walking
distance (ties: whoever has waited longest since their last call); ``zone`` adds every free
associate in the call's zone, ``all`` every free associate in the store; ``manager`` adds every
manager, whatever their state (the failsafe is never skipped).

Rules (each a test in tests/test_escalation.py):

- Only ``open`` calls alert. Acknowledging stops the alerting of others.
- Busy (with an acknowledged or answered call), on break and off-shift associates are skipped;
  managers are only asked at the ``manager`` step.
- An associate already alerted for another open call, who has not answered it, ranks after
  those who are not, so two calls at once go to two people.
- A step that finds nobody free alerts nobody; an associate who becomes free while the call
  still waits is alerted then (the call keeps its place on the ladder; the times do not move).
- When everyone alerted so far has declined (or has since taken another call, or gone on a
  break), the next step starts at once.
- An acknowledged call not answered within ``reack_s`` (default 3 min) is re-opened and the
  ladder starts again from its first step, as if the call were new.
- An alert whose phone sent no delivery receipt within ``receipt_s`` (default 5 s) counts as
  not reaching its person: as if they had declined, the next step starts at once (nurse call
  does the same). Only associates whose phone is known to send receipts (``Candidate.
  expects_receipt``: their phone page has been heard this shift) are held to this; a
  receipt that comes late changes nothing already done.

The escalation keeps no state of its own: where a call stands is derived from the call (its
``alerted`` list with steps and times, ``declined``, ``reopened_at``), so a restarted hub carries
on where it stopped. The hub calls :meth:`Escalation.plan` after every batch of work and sleeps
no longer than :meth:`Escalation.next_deadline`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from hub.domain.associates import AVAILABLE, Candidate, Roster
from hub.domain.call import ACKNOWLEDGED, OPEN, Call, Floor, Transition
from hub.domain.layout import Layout

NEAREST, NEXT, ZONE, ALL, MANAGER = "nearest", "next", "zone", "all", "manager"
WHO = (NEAREST, NEXT, ZONE, ALL, MANAGER)
#: Steps that add one associate each, nearest first.
ONE_MORE = (NEAREST, NEXT)

#: The default ladder as fractions of the service standard. docs/spec/PRODUCT.md's example for the 90 s
#: standard: 0 s nearest, 20 s next nearest, 45 s the zone, 90 s the manager; we add the whole
#: store at 60 s. 20 s gives the nearest associate time to look at the phone and tap; half the
#: standard leaves the zone time to walk; the manager at the standard is when the lamp turns
#: overdue anyway.
DEFAULT_NEXT_AT = 20 / 90
DEFAULT_ZONE_AT = 45 / 90
#: Then everyone free in the store: without it a call in a zone whose people are all busy
#: reached nobody free elsewhere before the manager. Two thirds of the standard leaves someone
#: from the far side of the store 30 s to walk over.
DEFAULT_ALL_AT = 60 / 90
DEFAULT_MANAGER_AT = 1.0

#: An acknowledged call nobody answered within this many seconds alerts again as if new
#: (docs/spec/PRODUCT.md: 3 min). Shorter nags someone still walking across a big store; longer leaves a
#: shopper waiting for someone who was called away.
DEFAULT_REACK_S = 180.0

#: An alert with no delivery receipt from the associate's phone within this many seconds goes
#: on to the next person at once. A phone on the store Wi-Fi answers in well under a second
#: (docs/benchmarks.md); 5 s rides out a Wi-Fi roam without leaving a shopper waiting on a
#: phone that is flat, in a locker or out of range.
DEFAULT_RECEIPT_S = 5.0


@dataclass(frozen=True)
class Step:
    after_s: float
    who: str

    def as_dict(self) -> dict:
        return {"after_s": self.after_s, "who": self.who}


@dataclass(frozen=True)
class Ladder:
    steps: tuple[Step, ...]
    reack_s: float = DEFAULT_REACK_S
    receipt_s: float = DEFAULT_RECEIPT_S

    @classmethod
    def default(cls, standard_s: float, reack_s: float = DEFAULT_REACK_S,
                receipt_s: float = DEFAULT_RECEIPT_S) -> "Ladder":
        """docs/spec/PRODUCT.md's ladder scaled to the store's standard (rounded to whole seconds)."""
        return cls((Step(0.0, NEAREST), Step(float(round(standard_s * DEFAULT_NEXT_AT)), NEXT),
                    Step(float(round(standard_s * DEFAULT_ZONE_AT)), ZONE),
                    Step(float(round(standard_s * DEFAULT_ALL_AT)), ALL),
                    Step(float(standard_s * DEFAULT_MANAGER_AT), MANAGER)), reack_s, receipt_s)

    def problems(self, standard_s: float) -> list[tuple[int | None, str]]:
        """What is wrong with this ladder: ``(step index or None, message)``; empty if fine."""
        out: list[tuple[int | None, str]] = []
        if not self.steps:
            return [(None, "the ladder needs at least one step, and one of them 'manager'")]
        for i, s in enumerate(self.steps):
            if s.who not in WHO:
                out.append((i, f"who must be one of {', '.join(WHO)}, got {s.who!r}"))
            if not (s.after_s >= 0 and math.isfinite(s.after_s)):
                out.append((i, f"after_s must be 0 or more, got {s.after_s!r}"))
            if i and s.after_s < self.steps[i - 1].after_s:
                out.append((i, f"steps must be in order: {s.after_s:g} s comes after "
                               f"{self.steps[i - 1].after_s:g} s"))
        managers = [s for s in self.steps if s.who == MANAGER]
        if not managers:
            out.append((None, "no 'manager' step: a manager must always be reached (the failsafe)"))
        elif managers[0].after_s > standard_s:
            i = self.steps.index(managers[0])
            out.append((i, f"the manager must be alerted by the standard ({standard_s:g} s), "
                           f"not at {managers[0].after_s:g} s"))
        if not self.reack_s > 0:
            out.append((None, f"reack_s must be more than 0, got {self.reack_s!r}"))
        if not self.receipt_s > 0:
            out.append((None, f"receipt_s must be more than 0, got {self.receipt_s!r}"))
        return out


@dataclass(frozen=True)
class Alerting:
    """Alert ``associate`` for ``call`` at ladder step ``step`` (index into the ladder)."""

    call: str
    associate: str
    step: int


def round_start(call: Call) -> float:
    """When the call's current round of alerting began: the press, or the re-opening."""
    return call.reopened_at if call.reopened_at is not None else call.pressed_at


def _this_round(call: Call, start: float) -> dict[str, list]:
    """associate → their alerts for ``call`` since ``start`` (the current round)."""
    out: dict[str, list] = defaultdict(list)
    for a in call.alerted:
        if a.at >= start:
            out[a.associate].append(a)
    return out


class Escalation:
    """Decides, from the calls and the associates at a moment, who to alert now and when to look
    again.

        esc = Escalation(Ladder.default(90), layout)
        transitions = esc.run(floor, roster, now)        # re-open, then alert whoever is due
        esc.next_deadline(floor.active_calls(), now)    # look again then (or at the next input)
    """

    def __init__(self, ladder: Ladder, layout: Layout):
        self.ladder = ladder
        self.layout = layout

    def run(self, floor: Floor, roster: Roster, now: float) -> list[Transition]:
        """Apply the ladder to ``floor`` at ``now``: re-open acknowledged calls that are overdue
        for an answer, then alert whoever is due. Returns the transitions to store."""
        out: list[Transition] = []
        for call_id, at in self.reopen_due(floor.active_calls(), now):
            out += floor.reopen(call_id, at)
        calls = floor.active_calls()
        for a in self.plan(calls, roster.candidates(calls, self.layout, now), now):
            out += floor.alert(a.call, [a.associate], now, a.step)
        return out

    # -- time -------------------------------------------------------------------------------
    def reopen_due(self, calls: Iterable[Call], now: float) -> list[tuple[str, float]]:
        """Acknowledged calls not answered within ``reack_s``: (call id, when it fell due)."""
        out = []
        for c in calls:
            if c.status == ACKNOWLEDGED and now >= c.acknowledged_at + self.ladder.reack_s:
                out.append((c.id, c.acknowledged_at + self.ladder.reack_s))
        return out

    def next_deadline(self, calls: Iterable[Call], now: float) -> float | None:
        """The earliest time after ``now`` at which the ladder moves for one of ``calls``."""
        times = []
        for c in calls:
            if c.status == OPEN:
                start = round_start(c)
                times += [start + s.after_s for s in self.ladder.steps if start + s.after_s > now][:1]
                # A receipt falling due: whoever is next may have to be asked then.
                times += [a.at + self.ladder.receipt_s for a in c.alerted
                          if a.at >= start and a.delivered_at is None and a.at + self.ladder.receipt_s > now]
            elif c.status == ACKNOWLEDGED:
                times.append(c.acknowledged_at + self.ladder.reack_s)
        return min(times, default=None)

    def step_at(self, call: Call, now: float) -> int:
        """The last step whose time has come for ``call`` (-1: none yet)."""
        start = round_start(call)
        k = -1
        for i, s in enumerate(self.ladder.steps):
            if now >= start + s.after_s:
                k = i
        return k

    # -- who --------------------------------------------------------------------------------
    def rank(self, call: Call, candidates: Iterable[Candidate],
             engaged: dict[str, set[str]] | None = None) -> list[Candidate]:
        """Free associates (not managers) nearest first for ``call``: those not alerted for
        another open call first, then walking distance, then longest waiting since their last
        call, then id."""
        engaged = engaged or {}
        free = [c for c in candidates if c.free and not c.manager]

        def key(c: Candidate):
            elsewhere = bool(engaged.get(c.id, set()) - {call.id})
            return (elsewhere, self.layout.distance(c.place, call.room),
                    -math.inf if c.idle_since is None else c.idle_since, c.id)
        return sorted(free, key=key)

    def plan(self, calls: Iterable[Call], candidates: Sequence[Candidate], now: float) -> list[Alerting]:
        """Who to alert now, for every open call (oldest first). Empty when nothing is due."""
        open_calls = sorted((c for c in calls if c.status == OPEN), key=lambda c: (c.pressed_at, c.id))
        by_id = {c.id: c for c in candidates}
        engaged: dict[str, set[str]] = defaultdict(set)
        for call in open_calls:
            for who in self._live(call, by_id, now):
                engaged[who].add(call.id)
        out: list[Alerting] = []
        for call in open_calls:
            new = self._plan_call(call, candidates, by_id, now, engaged)
            for a in new:
                engaged[a.associate].add(call.id)
            out += new
        return out

    def _live(self, call: Call, by_id: dict[str, Candidate], now: float) -> set[str]:
        """Alerted in this round, not declined, and still able to come."""
        start = round_start(call)
        gone = self._gone(call, by_id, now)
        return {a.associate for a in call.alerted if a.at >= start} - gone

    def _gone(self, call: Call, by_id: dict[str, Candidate], now: float) -> set[str]:
        """Who cannot take this call any more: declined; (not managers) no longer available;
        or alerted in this round by a phone that sent no receipt within ``receipt_s``."""
        gone = set(call.declined)
        start = round_start(call)
        for a in call.alerted:
            c = by_id.get(a.associate)
            if c is not None and not c.manager and c.state != AVAILABLE:
                gone.add(a.associate)
        for who, alerts in _this_round(call, start).items():
            c = by_id.get(who)
            if (c is not None and c.expects_receipt and all(a.delivered_at is None for a in alerts)
                    and now >= min(a.at for a in alerts) + self.ladder.receipt_s):
                gone.add(who)
        return gone

    def _plan_call(self, call: Call, candidates: Sequence[Candidate], by_id: dict[str, Candidate],
                   now: float, engaged: dict[str, set[str]]) -> list[Alerting]:
        start = round_start(call)
        this_round = [a for a in call.alerted if a.at >= start]
        alerted = {a.associate for a in this_round}
        gone = self._gone(call, by_id, now)
        k = min(max([self.step_at(call, now)] + [a.step for a in this_round]), len(self.ladder.steps) - 1)
        while k >= 0:
            new = self._wanted(call, k, candidates, alerted, engaged)
            if new:
                return new
            if alerted and alerted <= gone and k + 1 < len(self.ladder.steps):
                k += 1  # everyone asked said no: the next step at once
                continue
            return []
        return []

    def _wanted(self, call: Call, k: int, candidates: Sequence[Candidate], alerted: set[str],
                engaged: dict[str, set[str]]) -> list[Alerting]:
        """Who steps 0..k want that has not been alerted yet in this round."""
        steps = self.ladder.steps[: k + 1]
        declined = set(call.declined)
        fresh = [c for c in candidates if c.id not in alerted and c.id not in declined]
        out: list[Alerting] = []
        taken: set[str] = set()
        # nearest / next: one each, counting everyone already asked in this round
        one_more = [i for i, s in enumerate(steps) if s.who in ONE_MORE]
        asked = sum(1 for c in candidates if c.id in alerted and not c.manager)
        if len(one_more) > asked:
            for i, c in zip(one_more[asked:], self.rank(call, fresh, engaged)):
                out.append(Alerting(call.id, c.id, i))
                taken.add(c.id)
        for i, s in enumerate(steps):
            if s.who == ZONE:
                group = [c for c in fresh if c.free and not c.manager and call.zone is not None and c.zone == call.zone]
            elif s.who == ALL:
                group = [c for c in fresh if c.free and not c.manager]
            elif s.who == MANAGER:
                group = [c for c in fresh if c.manager]
            else:
                continue
            for c in self.rank(call, group, engaged) if s.who != MANAGER else sorted(group, key=lambda c: c.id):
                if c.id not in taken:
                    out.append(Alerting(call.id, c.id, i))
                    taken.add(c.id)
        return out
