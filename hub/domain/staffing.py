"""How many associates an hour needs to meet the service standard: an Erlang C (M/M/c) model
with the walk to the room included. Pure: numbers in, numbers out (docs/statistics.md).

The model. Calls arrive at random (a Poisson stream) at ``rate`` calls per hour. Each call
takes one associate for ``walk_s + handling_s`` seconds: they walk to the room, then serve the
shopper. ``c`` associates are on the floor; a call that finds them all busy waits (first come,
first served) for the first one to become free. Service times are taken as exponential with that
mean. Then (Erlang C), with the offered load ``a = rate × (walk_s + handling_s)`` in associates:

- probability a call has to wait: ``C(c, a)`` (Erlang's C formula), and
- ``P(wait > t) = C(c, a) · exp(−(c − a) · t / (walk_s + handling_s))``.

A call's *response time* (press → associate at the door) is its wait plus the walk, so it meets
the standard when the wait is at most ``standard_s − walk_s``. The hour is staffed when

    share within standard = 1 − C(c, a) · exp(−(c − a) · (standard_s − walk_s) / (walk_s + handling_s))

is at least the target share. :func:`needed` gives the smallest such ``c``.

Assumptions, and what they do to the answer (more in docs/statistics.md): arrivals are Poisson
and steady within the hour (bursts need more people); service is exponential (real handling
times are less variable, so the model errs on the safe side); every associate on the floor serves
calls and nothing else (restocking, tills: they are not all free, so sign in more); a free
associate sets off at once (a slow reaction eats into the standard); the walk is the same for
every call (the measured median from acknowledged to at the door).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

#: The most associates :func:`needed` will try for one hour; beyond it the hour is reported as
#: not reachable (a store hour needing more than this has a different problem).
MAX_ASSOCIATES = 200


def erlang_c(c: int, a: float) -> float:
    """Probability that a call has to wait, with ``c`` servers and offered load ``a`` (Erlangs).

    1.0 when ``a >= c`` (the queue grows without end). Computed through Erlang B's recursion,
    which stays stable for large ``c``.

    >>> round(erlang_c(2, 1.0), 4)
    0.3333
    >>> erlang_c(1, 0.5)
    0.5
    """
    if c <= 0 or a >= c:
        return 1.0
    if a <= 0:
        return 0.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1 - b))


def wait_exceeds(c: int, a: float, service_s: float, t: float) -> float:
    """P(wait > ``t`` seconds) in an M/M/c queue with mean service ``service_s`` seconds."""
    if a >= c:
        return 1.0
    if t < 0:
        return 1.0
    return erlang_c(c, a) * math.exp(-(c - a) * t / service_s)


def share_within(c: int, rate_per_h: float, handling_s: float, walk_s: float, standard_s: float) -> float:
    """Expected share of calls answered within ``standard_s`` with ``c`` associates on the floor."""
    if rate_per_h <= 0:
        return 1.0
    if walk_s > standard_s or c <= 0:
        return 0.0
    service_s = walk_s + handling_s
    a = rate_per_h / 3600.0 * service_s
    return 1.0 - wait_exceeds(c, a, service_s, standard_s - walk_s)


def needed(rate_per_h: float, handling_s: float, walk_s: float, standard_s: float,
           target_share: float) -> int | None:
    """The fewest associates that meet ``target_share`` of calls within ``standard_s``.

    0 when no calls come; None when no number of associates can (the walk alone is longer than
    the standard, or more than :data:`MAX_ASSOCIATES` would be needed).

    >>> needed(20, 150, 25, 90, 0.9)   # 20 calls an hour, 2.5 min each, 25 s walk
    3
    """
    if rate_per_h <= 0:
        return 0
    if walk_s >= standard_s and target_share > 0:
        return None
    service_s = walk_s + handling_s
    a = rate_per_h / 3600.0 * service_s
    for c in range(max(1, math.floor(a) + 1), MAX_ASSOCIATES + 1):
        if share_within(c, rate_per_h, handling_s, walk_s, standard_s) >= target_share:
            return c
    return None


@dataclass(frozen=True)
class Slot:
    """One hour of the week: its arrivals and what the model says about it."""

    weekday: int  # 0 = Monday
    hour: int  # local hour of day, 0-23
    rate_per_h: float  # calls per hour, averaged over the occurrences of this hour in the period
    handling_s: float | None
    needed: int | None
    expected_share: float | None  # the model's share within standard with ``needed`` associates
    signed_in: float | None  # associates signed in (not off), time-weighted average

    def as_dict(self) -> dict:
        r = lambda x, n=2: None if x is None else round(x, n)  # noqa: E731
        return {"weekday": self.weekday, "hour": self.hour, "rate_per_h": r(self.rate_per_h),
                "handling_s": r(self.handling_s, 1), "needed": self.needed,
                "expected_share": r(self.expected_share, 3), "signed_in": r(self.signed_in),
                "short": None if self.needed is None or self.signed_in is None
                else round(max(0.0, self.needed - self.signed_in), 2)}


def plan(calls: dict[tuple[int, int], int], occurrences: dict[tuple[int, int], int],
         handling: dict[tuple[int, int], float | None], signed_in: dict[tuple[int, int], float],
         *, walk_s: float, standard_s: float, target_share: float,
         default_handling_s: float) -> list[Slot]:
    """A :class:`Slot` for every hour of the week that occurs in the period.

    ``calls``: calls per (weekday, hour); ``occurrences``: how many times that hour occurred in
    the period; ``handling``: mean handling time per slot (None: too few, ``default_handling_s``
    is used); ``signed_in``: associates signed in, summed over the occurrences (associate-hours).
    """
    out = []
    for key in sorted(occurrences):
        n = occurrences[key]
        if n <= 0:
            continue
        rate = calls.get(key, 0) / n
        h = handling.get(key) or default_handling_s
        c = needed(rate, h, walk_s, standard_s, target_share)
        share = None if c is None else share_within(c, rate, h, walk_s, standard_s)
        out.append(Slot(key[0], key[1], rate, h if calls.get(key) else None, c, share,
                        signed_in.get(key, 0.0) / n))
    return out


#: The declared state that counts as "on the floor" for the signed-in figure (``busy`` is derived
#: from calls and is not stored; an associate serving a call is still declared available).
ON_FLOOR_STATES = ("available",)


def hours(start: float, end: float, tz) -> list[tuple[float, tuple[int, int]]]:
    """Every local hour that begins in [start, end): (its start, (weekday, hour)). An hour that
    happens twice when clocks go back is listed twice; one skipped when they go forward, not.
    One entry per hour: for short periods and tests; :class:`LocalHours` counts them without
    listing them."""
    first = datetime.fromtimestamp(start, tz).replace(minute=0, second=0, microsecond=0)
    t = first.timestamp()
    if t < start:
        t += 3600
    out = []
    while t < end:
        d = datetime.fromtimestamp(t, tz)
        out.append((t, (d.weekday(), d.hour)))
        t += 3600
    return out


#: Hours in a week: the slots of the staffing model.
WEEK_HOURS = 7 * 24
#: 1970-01-01, where epoch days start, was a Thursday (Monday = 0).
EPOCH_WEEKDAY = 3


def _offset(tz, t: float) -> float:
    return datetime.fromtimestamp(t, tz).utcoffset().total_seconds()


#: How far apart :func:`_clock_changes` looks at a zone's offset, seconds. No zone of the tz
#: database changes its clocks and back within a week between 1970 and 2100 (looking daily
#: and weekly finds the same changes in all 599 zones); tests/test_staffing.py checks the
#: zones that change most often.
CLOCK_LOOK_S = 7 * 86400


@functools.lru_cache(maxsize=8192)
def _clock_changes(tz, year: int) -> tuple[tuple[float, float], ...]:
    """Every change of ``tz``'s UTC offset in the UTC year ``year``: (instant, offset after, s).
    Found by looking every CLOCK_LOOK_S and narrowing a change down to the second (about 60
    lookups a year). Cached: a zone's rules do not change while the hub runs."""
    # From the year's last second before it, so a change at its very first second is found
    # here (and one at the next year's first second there).
    stop = datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp() - 1
    t = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp() - 1
    changes = []
    before = _offset(tz, t)
    while t < stop:
        nxt = min(t + CLOCK_LOOK_S, stop)
        after = _offset(tz, nxt)
        if after != before:
            lo, hi = t, nxt  # the offset is ``before`` at lo and ``after`` at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, mid) == before:
                    lo = mid
                else:
                    hi = mid
            changes.append((hi, after))
            before = after
        t = nxt
    return tuple(changes)


class LocalHours:
    """The local hours that begin in [``start``, ``end``) in ``tz``, counted per hour of the week
    (weekday 0 = Monday, hour) without listing them: the cost follows the clock changes in the
    period (about two a year), not its length in hours. An hour begins where the local clock
    shows a whole hour, so the hour that happens twice when clocks go back counts twice and
    the one skipped in spring not at all, as :func:`hours` lists them.

    >>> from zoneinfo import ZoneInfo
    >>> week = LocalHours(0, 7 * 86400, ZoneInfo("UTC"))
    >>> sum(week.counts().values()), week.counts()[(3, 0)]   # 1970-01-01 was a Thursday
    (168, 1)
    """

    def __init__(self, start: float, end: float, tz):
        self.start, self.end, self.tz = start, end, tz
        self._slots: dict[int, tuple[int, int]] = {}
        self.stretches = self._stretches(start, end)  # (from, to, UTC offset s), in time order
        firsts = (h for a, b, off in self.stretches if (h := self._first_hour(a, off)) < b)
        #: Start of the first local hour beginning in the period, epoch s; None if none does.
        self.first: float | None = next(firsts, None)

    def _stretches(self, start: float, end: float) -> list[tuple[float, float, float]]:
        if end <= start:
            return []
        out, a, off = [], start, _offset(self.tz, start)
        y0 = datetime.fromtimestamp(start, timezone.utc).year
        y1 = datetime.fromtimestamp(end, timezone.utc).year
        for year in range(y0, y1 + 1):
            for at, after in _clock_changes(self.tz, year):
                if start < at < end:
                    out.append((a, at, off))
                    a, off = at, after
        out.append((a, end, off))
        return out

    @staticmethod
    def _first_hour(t: float, offset: float) -> float:
        """The first instant at or after ``t`` at which a clock ``offset`` s from UTC shows a whole hour."""
        return math.ceil((t + offset) / 3600) * 3600 - offset

    def hour_start(self, t: float) -> float:
        """Where the local hour holding ``t`` began, epoch s."""
        off = _offset(self.tz, t)
        return math.floor((t + off) / 3600) * 3600 - off

    def slot(self, t: float) -> tuple[int, int]:
        """(weekday, hour) of ``t`` on the local clock; computed once per quarter hour (every
        zone's offset is a whole number of quarter hours)."""
        q = int(t // 900)
        s = self._slots.get(q)
        if s is None:
            d = datetime.fromtimestamp(q * 900, self.tz)
            s = self._slots[q] = (d.weekday(), d.hour)
        return s

    def counts(self, a: float | None = None, b: float | None = None) -> dict[tuple[int, int], int]:
        """How many local hours of the period begin in [``a``, ``b``) (default: the whole
        period), per (weekday, hour); hours that never begin are left out."""
        a = self.start if a is None else max(a, self.start)
        b = self.end if b is None else min(b, self.end)
        whole_weeks = 0
        extra = [0] * (WEEK_HOURS + 1)  # +1 on a run of slots, as differences (a run may wrap)
        for s, e, off in self.stretches:
            s, e = max(s, a), min(e, b)
            if s >= e:
                continue
            t0 = self._first_hour(s, off)
            if t0 >= e:
                continue
            n = math.ceil((e - t0) / 3600)  # whole hours of this clock beginning in [t0, e)
            local = int(round(t0 + off))
            first = ((local // 86400 + EPOCH_WEEKDAY) % 7) * 24 + (local % 86400) // 3600
            weeks, rest = divmod(n, WEEK_HOURS)
            whole_weeks += weeks
            last = first + rest
            extra[first] += 1
            if last <= WEEK_HOURS:
                extra[last] -= 1
            else:  # the run wraps past Sunday 23:00
                extra[WEEK_HOURS] -= 1
                extra[0] += 1
                extra[last - WEEK_HOURS] -= 1
        out, running = {}, 0
        for i in range(WEEK_HOURS):
            running += extra[i]
            if whole_weeks + running:
                out[divmod(i, 24)] = whole_weeks + running
        return out


def signed_in(initial: dict[str, str], changes: list[tuple[float, str, str]], start: float, end: float,
              local: "LocalHours") -> dict[tuple[int, int], float]:
    """Associate-hours on the floor per hour of the week, summed over the local hours of the
    period (``local``: :class:`LocalHours` of [start, end)).

    ``initial``: each associate's declared state at ``start``; ``changes``: (at, associate, new
    state) in time order. Time-weighted: someone on the floor for 30 minutes of an hour counts ½.
    """
    state = dict(initial)
    since = {a: start for a in state}
    intervals: list[tuple[float, float]] = []
    for at, who, new in sorted(changes):
        if at >= end:
            break
        old = state.get(who)
        if old in ON_FLOOR_STATES and new not in ON_FLOOR_STATES:
            intervals.append((since[who], at))
        if new in ON_FLOOR_STATES and old not in ON_FLOOR_STATES:
            since[who] = max(at, start)
        state[who] = new
    intervals += [(since[a], end) for a, s in state.items() if s in ON_FLOOR_STATES]
    return hours_in(intervals, local)


def hours_in(intervals: Iterable[tuple[float, float]], local: "LocalHours") -> dict[tuple[int, int], float]:
    """Hours covered by ``intervals`` (from, to: epoch s; overlapping ones count twice) per
    hour of the week, summed over the local hours of ``local``'s period; time before its first
    whole hour or after its end belongs to none."""
    # Per interval: its partial first and last hours as fractions, the whole hours between
    # counted per hour of the week (LocalHours.counts: no walk through the hours).
    out: dict[tuple[int, int], float] = {}

    def add(slot: tuple[int, int], x: float) -> None:
        out[slot] = out.get(slot, 0.0) + x
    if local.first is None:
        return out
    for lo, hi in intervals:
        lo = max(lo, local.first)  # time before the first listed hour belongs to no hour
        hi = min(hi, local.end)
        if hi <= lo:
            continue
        h = local.hour_start(lo)
        if h < lo:  # lo is inside an hour: its part of that hour
            add(local.slot(h), (min(hi, h + 3600) - lo) / 3600)
            lo = h + 3600
            if hi <= lo:
                continue
        h = local.hour_start(hi)
        if h < hi:  # hi is inside an hour
            add(local.slot(h), (hi - h) / 3600)
            hi = h
        for slot, n in local.counts(lo, hi).items():
            add(slot, n)
    return {k: v for k, v in out.items() if v > 0}
