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

import bisect
import math
from dataclasses import dataclass
from datetime import datetime

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
    happens twice when clocks go back is listed twice; one skipped when they go forward, not."""
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


def signed_in(initial: dict[str, str], changes: list[tuple[float, str, str]], start: float, end: float,
              hour_list: list[tuple[float, tuple[int, int]]]) -> dict[tuple[int, int], float]:
    """Associate-hours on the floor per hour of the week, summed over the period.

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
    # Hours an interval covers whole count 1 through a difference array (one step per interval,
    # not per hour: a year has thousands of sign-ins and hours); its partial ends count a fraction.
    starts = [t for t, _ in hour_list]
    n = len(hour_list)
    part = [0.0] * n
    whole = [0] * (n + 1)
    for lo, hi in intervals:
        i = max(0, bisect.bisect_right(starts, lo) - 1)
        j = bisect.bisect_left(starts, hi)  # hours from j on begin at or after hi
        if i >= j:
            continue
        first_whole = i if starts[i] >= lo else i + 1
        last_whole = j - 1 if starts[j - 1] + 3600 <= hi else j - 2  # inclusive
        if first_whole <= last_whole:
            whole[first_whole] += 1
            whole[last_whole + 1] -= 1
        for k in {i, j - 1} - set(range(first_whole, last_whole + 1)):
            overlap = min(hi, starts[k] + 3600) - max(lo, starts[k])
            if overlap > 0:
                part[k] += overlap / 3600
    out: dict[tuple[int, int], float] = {}
    running = 0
    for k, (_, slot) in enumerate(hour_list):
        running += whole[k]
        if running or part[k]:
            out[slot] = out.get(slot, 0.0) + running + part[k]
    return out
