"""Statistics roll-ups: closed calls summed per local hour, day and month, so a year of
statistics reads a few thousand rows instead of millions of calls. Pure: no I/O.

A roll-up row holds, for the closed calls pressed in one *bucket* (a local hour, day or month of
the store's time zone) that share one *dimension value* (all calls; or one zone, room, reason or
answering associate), everything :func:`hub.domain.stats.figures` needs: counts, the exact
number within the standard, the handling sum, the exact slowest response, and histograms of
the response, wait-to-acknowledge, walk and handling times.

A histogram is one Python integer: bin ``i``'s count sits in bits ``32·i`` to ``32·i + 31``.
Adding two histograms is then a single big-integer addition (C speed, no loop over bins), which
is what makes merging thousands of rows cheap. A count per bin stays far below 2³².

Percentiles from a histogram take each call as the middle of its bin, then interpolate as the
exact method does (docs/statistics.md): with 1-second bins a figure is within half a second of
the exact one (the slowest bin ends at the exact maximum). Counts, shares within the standard, the maximum and the handling mean stay exact.

Calls still open are never rolled up (their figures change with time); readers take them, and
the partial hours at the ends of a period, from the calls table directly (:class:`Agg.add_live`).
"""
from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass, fields
from datetime import datetime, tzinfo

from hub.domain.call import CANCELLED, DONE, MISSED

#: Bin width of the response, wait and walk histograms, seconds: percentiles to within half of it.
RESOLUTION_S = 1.0
#: Bin width of the handling-time histogram, seconds: handling is minutes long, and only its
#: median is shown, so 10 s bins keep the rows small.
HANDLING_RESOLUTION_S = 10.0
#: Times beyond this share the last bin, seconds (its figures use the exact maximum as its top).
MAX_S = 3600.0
FIELD_BITS = 32
_FIELD_BYTES = FIELD_BITS // 8

#: The buckets, finest first. A query takes the coarsest ones its grouping allows.
GRAINS = ("hour", "day", "month")
#: Dimensions rolled up: "" is every call; the others are calls columns (associate = who answered).
DIM_COLUMNS = {"": None, "zone": "zone", "room": "room", "reason": "reason", "associate": "answered_by"}
CLOSED = (DONE, CANCELLED, MISSED)
#: The calls columns a roll-up is made from.
COLUMNS = ("pressed_at", "status", "response_s", "wait_ack_s", "handling_s", "reminders", "auto_closed",
           "zone", "room", "reason", "answered_by")
#: Histogram names and their bin widths, seconds.
HISTOGRAMS = {"resp": RESOLUTION_S, "wait": RESOLUTION_S, "walk": RESOLUTION_S, "handling": HANDLING_RESOLUTION_S}

assert array("I").itemsize == _FIELD_BYTES


def _one(x: float, width: float) -> int:
    """The histogram holding a single value ``x`` seconds."""
    i = min(int(max(x, 0.0) // width), int(MAX_S // width))
    return 1 << (FIELD_BITS * i)


def to_blob(h: int) -> bytes | None:
    return h.to_bytes((h.bit_length() + 7) // 8, "little") if h else None


def from_blob(b: bytes | None) -> int:
    return int.from_bytes(b, "little") if b else 0


def counts(h: int) -> array:
    """The per-bin counts of histogram ``h``."""
    n = (h.bit_length() + FIELD_BITS - 1) // FIELD_BITS
    a = array("I")
    a.frombytes(h.to_bytes(n * _FIELD_BYTES, "little"))
    if sys.byteorder == "big":
        a.byteswap()
    return a


def percentiles(h: int, ps: tuple[float, ...], width: float, top: float | None = None) -> list[float | None]:
    """The ``ps`` percentiles (0-100) of histogram ``h`` with bins ``width`` s wide, by the
    exact method's rule (linear interpolation between closest ranks), each value taken as the
    middle of its bin. ``top``: the largest value, if known (bounds the last bins)."""
    c = counts(h)
    n = sum(c)
    if n == 0:
        return [None] * len(ps)
    ranks = sorted({k for p in ps for k in _ranks(n, p)})
    values: dict[int, float] = {}
    cum, i, last_bin = 0, 0, len(c) - 1
    for k in ranks:
        while cum + c[i] <= k:
            cum += c[i]
            i += 1
        lo = i * width
        hi = lo + width if i < int(MAX_S // width) else max(top or lo, lo)
        v = (lo + hi) / 2
        values[k] = min(v, top) if top is not None and i == last_bin else v
    out = []
    for p in ps:
        rank = (n - 1) * p / 100.0
        lo = math.floor(rank)
        a = values[lo]
        b = values[min(lo + 1, n - 1)]
        out.append(a + (b - a) * (rank - lo))
    return out


def _ranks(n: int, p: float) -> tuple[int, int]:
    lo = math.floor((n - 1) * p / 100.0)
    return lo, min(lo + 1, n - 1)


@dataclass(slots=True)
class Agg:
    """Sums over a set of calls that merge by addition. Times in seconds."""

    calls: int = 0
    answered: int = 0
    missed: int = 0
    cancelled: int = 0
    active: int = 0          # open, acknowledged or answered (live rows only)
    late: int = 0            # open or acknowledged and already past the standard (live rows only)
    reminders: int = 0
    within: int = 0
    handling_n: int = 0
    handling_sum: float = 0.0
    response_max: float | None = None
    resp: int = 0
    wait: int = 0
    walk: int = 0
    handling: int = 0

    def add_closed(self, r: dict, standard_s: float) -> "Agg":
        """Add one closed call (a calls row with at least :data:`COLUMNS`)."""
        self.calls += 1
        status = r["status"]
        if status == MISSED:
            self.missed += 1
        elif status == CANCELLED:
            self.cancelled += 1
        self.reminders += r["reminders"] or 0
        x, w = r["response_s"], r["wait_ack_s"]
        if x is not None:
            self.answered += 1
            self.within += x <= standard_s
            self.resp += _one(x, RESOLUTION_S)
            if self.response_max is None or x > self.response_max:
                self.response_max = x
            if w is not None:
                self.walk += _one(x - w, RESOLUTION_S)
        if w is not None:
            self.wait += _one(w, RESOLUTION_S)
        h = r["handling_s"]
        if h is not None and not r["auto_closed"]:
            self.handling_n += 1
            self.handling_sum += h
            self.handling += _one(h, HANDLING_RESOLUTION_S)
        return self

    def add_live(self, r: dict, standard_s: float, now: float) -> "Agg":
        """Add a call read from the calls table, whatever its status, as of ``now``."""
        status = r["status"]
        if status in CLOSED:
            return self.add_closed(r, standard_s)
        self.add_closed(r, standard_s)  # counts its times so far; status counts below
        self.active += 1
        if status != "answered" and r["pressed_at"] < now - standard_s:
            self.late += 1
        return self

    def merge(self, o: "Agg") -> "Agg":
        self.calls += o.calls
        self.answered += o.answered
        self.missed += o.missed
        self.cancelled += o.cancelled
        self.active += o.active
        self.late += o.late
        self.reminders += o.reminders
        self.within += o.within
        self.handling_n += o.handling_n
        self.handling_sum += o.handling_sum
        if o.response_max is not None and (self.response_max is None or o.response_max > self.response_max):
            self.response_max = o.response_max
        self.resp += o.resp
        self.wait += o.wait
        self.walk += o.walk
        self.handling += o.handling
        return self

    def subtract(self, o: "Agg") -> "Agg":
        """Take out calls added before (a call re-opened, or changed after it closed). The
        maximum cannot be taken out; the store recomputes it (``max_stale``)."""
        for f in ("calls", "answered", "missed", "cancelled", "active", "late", "reminders", "within",
                  "handling_n", "handling_sum", "resp", "wait", "walk", "handling"):
            setattr(self, f, getattr(self, f) - getattr(o, f))
        return self

    def max_stale(self, removed: "Agg") -> bool:
        return removed.response_max is not None and self.response_max is not None \
            and removed.response_max >= self.response_max

    def figures(self, standard_s: float, target_share: float | None = None) -> dict:
        """The same figures, under the same names, as :func:`hub.domain.stats.figures`."""
        med, p90, p95 = percentiles(self.resp, (50, 90, 95), RESOLUTION_S, self.response_max)
        w50, w90 = percentiles(self.wait, (50, 90), RESOLUTION_S)
        h50, = percentiles(self.handling, (50,), HANDLING_RESOLUTION_S)
        decided = self.answered + self.missed + self.late
        share = self.within / decided if decided else None
        return {
            "calls": self.calls,
            "answered": self.answered,
            "missed": self.missed,
            "cancelled": self.cancelled,
            "open": self.active,
            "reminders": self.reminders,
            "response_median_s": _r(med),
            "response_p90_s": _r(p90),
            "response_p95_s": _r(p95),
            "response_max_s": _r(self.response_max),
            "within_standard": self.within,
            "within_standard_share": _r(share),
            "decided": decided,
            "meets_target": None if share is None or target_share is None else share >= target_share,
            "wait_ack_median_s": _r(w50),
            "wait_ack_p90_s": _r(w90),
            "handling_median_s": _r(h50),
            "handling_mean_s": _r(self.handling_sum / self.handling_n) if self.handling_n else None,
        }

    def walk_median(self) -> float | None:
        return percentiles(self.walk, (50,), RESOLUTION_S)[0]

    # -- storage form (the store keeps histograms as little-endian blobs) ------------------
    def to_row(self) -> dict:
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("active", "late")}
        for name in HISTOGRAMS:
            row[name] = to_blob(row[name])
        return row

    #: The stored columns, in the order :meth:`from_values` takes them.
    STORED = ("calls", "answered", "missed", "cancelled", "reminders", "within", "handling_n", "handling_sum",
              "response_max", "resp", "wait", "walk", "handling")

    @classmethod
    def from_row(cls, row) -> "Agg":
        return cls.from_values(*(row[k] for k in cls.STORED))

    @classmethod
    def from_values(cls, calls, answered, missed, cancelled, reminders, within, handling_n, handling_sum,
                    response_max, resp, wait, walk, handling) -> "Agg":
        f = int.from_bytes
        return cls(calls, answered, missed, cancelled, 0, 0, reminders, within, handling_n, handling_sum,
                   response_max, f(resp, "little") if resp else 0, f(wait, "little") if wait else 0,
                   f(walk, "little") if walk else 0, f(handling, "little") if handling else 0)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# -- buckets of the store's time zone ---------------------------------------------------------
#: Every time zone's offset is a whole number of quarter hours and changes on a quarter hour, so
#: all times in one quarter share their buckets; they are computed once per quarter.
QUARTER_S = 900


class Buckets:
    """The local hour, day and month a time falls in, as the epoch seconds they start at."""

    def __init__(self, tz: tzinfo):
        self.tz = tz
        self._cache: dict[int, tuple[float, float, float]] = {}
        self._slots: dict[int, int] = {}

    def of(self, t: float) -> tuple[float, float, float]:
        """(hour start, day start, month start) of time ``t``."""
        q = int(t // QUARTER_S)
        k = self._cache.get(q)
        if k is None:
            d = datetime.fromtimestamp(q * QUARTER_S, self.tz)
            h = d.replace(minute=0, second=0, microsecond=0)
            day = _midnight(d)
            k = self._cache[q] = (h.timestamp(), day.timestamp(), _midnight(d.replace(day=1)).timestamp())
        return k

    def slot(self, t: float) -> int:
        """The hour of the week ``t`` falls in: weekday (0 = Monday) × 24 + local hour."""
        q = int(t // QUARTER_S)
        k = self._slots.get(q)
        if k is None:
            d = datetime.fromtimestamp(q * QUARTER_S, self.tz)
            k = self._slots[q] = d.weekday() * 24 + d.hour
        return k

    def start(self, grain: str, t: float) -> float:
        return self.of(t)[GRAINS.index(grain)]

    def next(self, grain: str, start: float) -> float:
        """The start of the bucket after the one starting at ``start``."""
        # Step past the longest possible bucket (an hour of 60 min; a day of 25 h; 31 days),
        # but not past the next one (an hour after; a day of 23 h; 28 days), and take its start.
        step = {"hour": 3600, "day": 26 * 3600, "month": 32 * 86400}[grain]
        return self.start(grain, start + step)

    def keys(self, r: dict) -> list[tuple[str, float, str, str]]:
        """Every roll-up row a closed call counts in: (grain, start, dimension, value)."""
        starts = self.of(r["pressed_at"])
        out = []
        for dim, column in DIM_COLUMNS.items():
            value = "" if column is None else (r[column] or "")
            for grain, start in zip(GRAINS, starts):
                out.append((grain, start, dim, value))
        return out


def _midnight(d: datetime) -> datetime:
    m = d.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    # A zone that skips midnight (clocks forward at 00:00) starts that day at 01:00: normalise
    # through UTC so the start is a real instant.
    return datetime.fromtimestamp(m.timestamp(), d.tzinfo)


def segments(start: float, end: float, buckets: Buckets, coarsest: str) -> list[tuple[str | None, float, float]]:
    """Cover [start, end) with runs of whole buckets no coarser than ``coarsest``, coarsest in
    the middle, and raw pieces (grain None, read from the calls table) at the ends where no
    whole hour fits: a list of (grain, start of the run, its end), in time order."""
    allowed = GRAINS[:GRAINS.index(coarsest) + 1]

    def cover(a: float, b: float, level: int) -> list:
        if a >= b:
            return []
        if level < 0:
            return [(None, a, b)]
        grain = allowed[level]
        first = buckets.start(grain, a)
        if first < a:
            first = buckets.next(grain, first)
        last = buckets.start(grain, b)  # every bucket from first up to here is whole
        if first >= last:
            return cover(a, b, level - 1)
        return cover(a, first, level - 1) + [(grain, first, last)] + cover(last, b, level - 1)

    return cover(start, end, len(allowed) - 1)


#: Bump when what a roll-up row holds changes: stores then rebuild them once.
VERSION = 1


@dataclass(frozen=True)
class Rules:
    """What roll-ups depend on besides the calls: the store's zone and its standard, seconds."""

    tz: tzinfo
    standard_s: float

    def signature(self) -> str:
        return f"v{VERSION} {getattr(self.tz, 'key', str(self.tz))} {self.standard_s:g}"
