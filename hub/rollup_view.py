"""A period's statistics from the roll-ups (hub/domain/rollup.py) instead of every call.

The period is covered by whole months, days and hours of roll-ups, as coarse as the grouping
allows (by hour of day needs hours; by day, week or weekday needs days; anything else takes
months), plus the calls themselves for the partial hours at either end and for every call still
open (open calls are never rolled up). Each piece becomes an :class:`~hub.domain.rollup.Agg`
under its group's key; merging them gives the same figures as the exact path, with percentiles
from 1-second histograms (docs/statistics.md).

Roll-ups hold one dimension at a time, so a view can answer a grouping plus at most one filter
on the same dimension, or one filter with a time grouping; :func:`supported` says which.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import tzinfo

from hub.domain import rollup
from hub.domain.call import ACTIVE
from hub.domain.staffing import LocalHours
from hub.domain.stats import WEEKDAYS, LocalCalendar
from hub.store import Reader

TIME_GROUPS = ("hour", "weekday", "day", "week")
#: The coarsest roll-up a grouping can use.
COARSEST = {"hour": "hour", "weekday": "day", "day": "day", "week": "day"}


def _dimension(by: str | None, filters: dict[str, str | None]) -> tuple[str, str | None] | None:
    """(dimension, value or None for all) to read for grouping ``by`` under ``filters``; None
    when the roll-ups cannot answer it."""
    given = {k: v for k, v in filters.items() if v is not None}
    if len(given) > 1:
        return None
    (fdim, fvalue), = given.items() if given else ((None, None),)
    if by is None or by in TIME_GROUPS:
        return (fdim, fvalue) if fdim else ("", "")
    if fdim is None or fdim == by:
        return by, fvalue
    return None


def supported(by: str | None, filters: dict[str, str | None]) -> bool:
    return _dimension(by, filters) is not None


class RollupView:
    """Sums of one period under one set of filters, read from the roll-ups on demand."""

    def __init__(self, reader: Reader, rules: rollup.Rules, start: float, end: float,
                 filters: dict[str, str | None], now: float):
        self.reader, self.rules = reader, rules
        self.start, self.end, self.now = start, end, now
        self.filters = {k: v for k, v in filters.items() if v is not None}
        self.tz: tzinfo = rules.tz
        self.cal = LocalCalendar(rules.tz)
        self.buckets = rollup.Buckets(rules.tz)
        self._live: list[dict] | None = None
        self._cache: dict = {}

    # -- reading ---------------------------------------------------------------------------
    def pieces(self, coarsest: str, dim: str, value: str | None) -> list[tuple[float, str, int, rollup.Agg]]:
        """(bucket start, dimension value, hour of the week, sums) of every roll-up row covering
        the period, as coarse as ``coarsest``."""
        key = (coarsest, dim, value)
        if key not in self._cache:
            out = []
            for grain, a, b in rollup.segments(self.start, self.end, self.buckets, coarsest):
                if grain is not None:
                    out += self.reader.rollup_rows(grain, dim, a, b, value)
            self._cache[key] = out
        return self._cache[key]

    def live(self) -> list[dict]:
        """The calls read directly: every call of the partial hours at the ends, and every call
        still open elsewhere in the period."""
        if self._live is None:
            raw = [(a, b) for g, a, b in rollup.segments(self.start, self.end, self.buckets, "hour") if g is None]
            rows = []
            for a, b in raw:
                rows += self.reader.calls_between(a, b, rollup.COLUMNS, self.filters)
            for r in self.reader.calls_between(self.start, self.end, rollup.COLUMNS, self.filters, ACTIVE):
                if not any(a <= r["pressed_at"] < b for a, b in raw):
                    rows.append(r)
            self._live = rows
        return self._live

    def count(self) -> int:
        """Calls in the period under the filters, from call counts only (cheap)."""
        dim, value = _dimension(None, self.filters)
        n = len(self.live())
        for grain, a, b in rollup.segments(self.start, self.end, self.buckets, "month"):
            if grain is not None:
                n += self.reader.rollup_sums(grain, dim, a, b, value).get(0, (0,))[0]
        return n

    def _live_agg(self, r: dict) -> rollup.Agg:
        return rollup.Agg().add_live(r, self.rules.standard_s, self.now)

    # -- sums by group ---------------------------------------------------------------------
    def groups(self, by: str | None) -> tuple[rollup.Agg, dict]:
        """(sums over the period, {group key: sums})."""
        dim, value = _dimension(by, self.filters)
        coarsest = COARSEST.get(by, "month")
        groups: dict = defaultdict(rollup.Agg)
        for start, v, slot, agg in self.pieces(coarsest, dim, value):
            key = None if not by else self._time_key(start, slot, by) if by in TIME_GROUPS else (v or None)
            groups[key].merge(agg)
        for r in self.live():
            groups[self.cal.key(r, by) if by else None].merge(self._live_agg(r))
        total = rollup.Agg()
        for g in groups.values():
            total.merge(g)
        return total, (groups if by else {})

    def _time_key(self, start: float, slot: int, by: str):
        if by == "hour":
            return slot % 24
        if by == "weekday":
            return WEEKDAYS[slot // 24]
        _, _, day, week = self.cal.keys(start)
        return day if by == "day" else week

    def hourly(self) -> list[tuple[float, int, rollup.Agg]]:
        """(start, hour of the week, sums) per local hour with calls; live calls one by one."""
        dim, value = _dimension(None, self.filters)
        out = [(start, slot, agg) for start, _, slot, agg in self.pieces("hour", dim, value)]
        out += [(r["pressed_at"], self.buckets.slot(r["pressed_at"]), self._live_agg(r)) for r in self.live()]
        return out

    def week_cells(self) -> dict[tuple[int, int], rollup.Agg]:
        """Sums per hour of the week: (weekday 0 = Monday, hour) → sums."""
        cells: dict = defaultdict(rollup.Agg)
        for _, slot, agg in self.hourly():
            cells[divmod(slot, 24)].merge(agg)
        return cells

    def busiest_hours(self, top: int) -> list[dict]:
        """Like :func:`hub.domain.stats.busiest_hours`, from call counts only."""
        counts: dict = defaultdict(int)
        for slot, (n, _, _) in self._slot_sums().items():
            counts[divmod(slot, 24)] += n
        for r in self.live():
            counts[divmod(self.buckets.slot(r["pressed_at"]), 24)] += 1
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return [{"weekday": WEEKDAYS[wd], "hour": h, "calls": n} for (wd, h), n in best]

    def staffing_inputs(self, local: LocalHours):
        """What the staffing model needs per hour of the week: calls, and handled calls' count
        and total handling time, counted as the exact path does (by the hour a call began in,
        calls before the first whole hour of ``local`` left out); and the period's walk histogram."""
        calls: dict = defaultdict(int)
        handled: dict = defaultdict(lambda: [0, 0.0])
        for slot, (n, hn, hs) in self._slot_sums().items():
            key = divmod(slot, 24)
            calls[key] += n
            handled[key][0] += hn
            handled[key][1] += hs
        walk = self._walk()
        for r in self.live():
            agg = self._live_agg(r)
            walk += agg.walk
            if local.first is None or r["pressed_at"] < local.first:
                continue
            slot = local.slot(r["pressed_at"])
            calls[slot] += 1
            handled[slot][0] += agg.handling_n
            handled[slot][1] += agg.handling_sum
        return calls, handled, walk

    def _hour_pieces(self):
        """The hour roll-ups of the period if another figure has read them already, else None."""
        dim, value = _dimension(None, self.filters)
        return self._cache.get(("hour", dim, value))

    def _slot_sums(self) -> dict[int, tuple[int, int, float]]:
        """{hour of the week: (calls, handled calls, handling s)} of the rolled-up hours: from
        the hour roll-ups when already read (the page's heat map), else summed by SQLite."""
        pieces = self._hour_pieces()
        out: dict = {}
        if pieces is not None:
            for _, _, slot, agg in pieces:
                n, hn, hs = out.get(slot, (0, 0, 0.0))
                out[slot] = (n + agg.calls, hn + agg.handling_n, hs + agg.handling_sum)
            return out
        dim, value = _dimension(None, self.filters)
        for grain, a, b in rollup.segments(self.start, self.end, self.buckets, "hour"):
            if grain is not None:
                for slot, (n, hn, hs) in self.reader.rollup_sums(grain, dim, a, b, value, per_slot=True).items():
                    m, hm, hsm = out.get(slot, (0, 0, 0.0))
                    out[slot] = (m + n, hm + hn, hsm + hs)
        return out

    def _walk(self) -> int:
        """The walk histogram of the rolled-up part of the period (any grain will do)."""
        pieces = self._hour_pieces()
        if pieces is not None:
            return sum(agg.walk for _, _, _, agg in pieces)
        dim, value = _dimension(None, self.filters)
        return sum(self.reader.rollup_histogram("walk", grain, dim, a, b, value)
                   for grain, a, b in rollup.segments(self.start, self.end, self.buckets, "month") if grain)

    def distribution(self, bin_s: float, max_s: float) -> list[dict]:
        """Like :func:`hub.domain.stats.distribution`, from the 1-second histograms: exact
        when ``bin_s`` is a whole number of seconds; otherwise each second goes to the bin its
        start falls in."""
        total, _ = self.groups(None)
        n_bins = max(1, math.ceil(max_s / bin_s))
        out = [0] * (n_bins + 1)
        for i, c in enumerate(rollup.counts(total.resp)):
            if c:
                out[min(int(i * rollup.RESOLUTION_S // bin_s), n_bins)] += c
        return [{"from_s": round(i * bin_s, 3), "to_s": round((i + 1) * bin_s, 3) if i < n_bins else None,
                 "calls": n} for i, n in enumerate(out)]

