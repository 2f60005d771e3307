"""Response-time statistics against the service standard. Pure: rows in, figures out.

Definitions (also in docs/statistics.md):

- a call belongs to the period, the hour, the day and the week in which it was *pressed*, in the
  store's time zone (a call pressed at 23:59 and answered after midnight counts on its first day;
  on the day clocks go back the hour 02:00-03:00 happens twice and holds both).

- *response time* = answered − pressed, seconds, for calls an associate was recorded at
  (presence or "Arrived"). A call marked done with nobody recorded at the door has none: it
  counts as a call, not in the response figures nor in the share within the standard.
- *percentiles* use linear interpolation between closest ranks (Hyndman & Fan type 7, the
  method of NumPy's default and Excel's PERCENTILE.INC); the median is the 50th percentile.
- *share within standard* = calls answered within the standard ÷ calls that needed an answer
  and whose outcome is known: answered or done, missed, and calls still waiting that are
  already past the standard (they can no longer meet it). Cancelled calls are left out: the
  shopper withdrew. Calls still waiting inside the standard are left out until decided.
"""
from __future__ import annotations

import bisect
import math
from collections import defaultdict
from datetime import datetime, tzinfo
from typing import Iterable

GROUPINGS = ("hour", "weekday", "day", "week", "zone", "room", "associate", "reason")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) of sorted ``values`` by linear interpolation; None if empty.

    >>> percentile([10, 20], 50)
    15.0
    >>> percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)
    9.1
    """
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    rank = (len(values) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(values) - 1)
    return float(values[lo] + (values[hi] - values[lo]) * (rank - lo))


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def figures(rows: list[dict], standard_s: float, now: float, target_share: float | None = None) -> dict:
    """Figures for one group of calls (rows with status, pressed_at, response_s, ...).

    With ``target_share``, ``meets_target`` says whether the share within the standard reaches
    it (None while no call is decided)."""
    responses, waits, handling = [], [], []
    status_count: dict[str, int] = defaultdict(int)
    late_waiting = reminders = 0
    late_before = now - standard_s  # a call still waiting that was pressed before this is late
    for r in rows:  # one pass: this runs over every call of the period
        status = r["status"]
        status_count[status] += 1
        x = r.get("response_s")
        if x is not None:
            responses.append(x)
        x = r.get("wait_ack_s")
        if x is not None:
            waits.append(x)
        x = r.get("handling_s")
        if x is not None and not r.get("auto_closed"):
            handling.append(x)
        if (status == "open" or status == "acknowledged") and r["pressed_at"] < late_before:
            late_waiting += 1
        reminders += r.get("reminders") or 0
    responses.sort()
    waits.sort()
    handling.sort()
    missed, cancelled = status_count["missed"], status_count["cancelled"]
    within = bisect.bisect_right(responses, standard_s)
    decided = len(responses) + missed + late_waiting
    share = within / decided if decided else None
    return {
        "calls": len(rows),
        "answered": len(responses),
        "missed": missed,
        "cancelled": cancelled,
        "open": status_count["open"] + status_count["acknowledged"] + status_count["answered"],
        "reminders": reminders,
        "response_median_s": _r(percentile(responses, 50)),
        "response_p90_s": _r(percentile(responses, 90)),
        "response_p95_s": _r(percentile(responses, 95)),
        "response_max_s": _r(responses[-1] if responses else None),
        "within_standard": within,
        "within_standard_share": _r(share),
        "decided": decided,
        "meets_target": None if share is None or target_share is None else share >= target_share,
        "wait_ack_median_s": _r(percentile(waits, 50)),
        "wait_ack_p90_s": _r(percentile(waits, 90)),
        "handling_median_s": _r(percentile(handling, 50)),
        "handling_mean_s": _r(sum(handling) / len(handling)) if handling else None,
    }


#: Local calendar keys are cached per quarter hour since the epoch: every time zone's offset is
#: a whole number of quarter hours and changes only on a quarter hour, so all times in one
#: quarter share their local hour, day, weekday and week.
QUARTER_S = 900


class LocalCalendar:
    """The store-zone hour, weekday, day and ISO week of times, computed once per quarter hour."""

    def __init__(self, tz: tzinfo):
        self.tz = tz
        self._cache: dict[int, tuple[int, int, str, str]] = {}

    def keys(self, t: float) -> tuple[int, int, str, str]:
        """(hour 0-23, weekday 0 = Monday, day 'YYYY-MM-DD', week 'YYYY-Www')."""
        q = int(t // QUARTER_S)
        k = self._cache.get(q)
        if k is None:
            d = datetime.fromtimestamp(q * QUARTER_S, self.tz)
            year, week, _ = d.isocalendar()
            k = self._cache[q] = (d.hour, d.weekday(), d.date().isoformat(), f"{year}-W{week:02d}")
        return k

    def key(self, row: dict, by: str) -> str | int | None:
        if by == "hour":
            return self.keys(row["pressed_at"])[0]
        if by == "weekday":
            return WEEKDAYS[self.keys(row["pressed_at"])[1]]
        if by == "day":
            return self.keys(row["pressed_at"])[2]
        if by == "week":
            return self.keys(row["pressed_at"])[3]
        return group_key(row, by, self.tz)


def group_key(row: dict, by: str, tz: tzinfo) -> str | int | None:
    if by == "hour":
        return datetime.fromtimestamp(row["pressed_at"], tz).hour
    if by == "weekday":
        return WEEKDAYS[datetime.fromtimestamp(row["pressed_at"], tz).weekday()]
    if by == "day":
        return datetime.fromtimestamp(row["pressed_at"], tz).date().isoformat()
    if by == "week":
        year, week, _ = datetime.fromtimestamp(row["pressed_at"], tz).isocalendar()
        return f"{year}-W{week:02d}"
    if by == "zone":
        return row.get("zone")
    if by == "room":
        return row["room"]
    if by == "associate":
        return row.get("answered_by")
    if by == "reason":
        return row.get("reason")
    raise ValueError(f"cannot group by {by!r}; use one of {', '.join(GROUPINGS)}")


#: How many hours of the week "busiest hours" lists.
BUSIEST_TOP = 5


def busiest_hours(rows: Iterable[dict], tz: tzinfo, top: int = BUSIEST_TOP,
                  calendar: LocalCalendar | None = None) -> list[dict]:
    """The hours of the week with the most calls over the period, busiest first (ties: earlier
    in the week first)."""
    cal = calendar or LocalCalendar(tz)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for r in rows:
        hour, weekday, _, _ = cal.keys(r["pressed_at"])
        counts[(weekday, hour)] += 1
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"weekday": WEEKDAYS[wd], "hour": h, "calls": n} for (wd, h), n in best]


def statistics(rows: Iterable[dict], *, by: str | None, standard_s: float, target_share: float,
               tz: tzinfo, now: float) -> dict:
    """Totals and, with ``by``, the same figures per group (sorted by key)."""
    rows = list(rows)
    cal = LocalCalendar(tz)
    out = {"standard_s": standard_s, "target_share": target_share,
           "total": figures(rows, standard_s, now, target_share),
           "busiest_hours": busiest_hours(rows, tz, calendar=cal)}
    if by:
        groups: dict = defaultdict(list)
        for r in rows:
            groups[cal.key(r, by)].append(r)
        order = (lambda k: WEEKDAYS.index(k)) if by == "weekday" else (lambda k: (k is None, k))
        out["by"] = by
        out["groups"] = [{"key": k, **figures(g, standard_s, now, target_share)} for k, g in
                         sorted(groups.items(), key=lambda kv: order(kv[0]))]
    return out


def heatmap(rows: Iterable[dict], *, standard_s: float, tz: tzinfo, now: float) -> list[dict]:
    """Calls and share within the standard for every hour of the week that has calls."""
    cal = LocalCalendar(tz)
    cells: dict[tuple[int, int], list] = defaultdict(list)
    for r in rows:
        hour, weekday, _, _ = cal.keys(r["pressed_at"])
        cells[(weekday, hour)].append(r)
    out = []
    for (wd, h), group in sorted(cells.items()):
        f = figures(group, standard_s, now)
        out.append({"weekday": WEEKDAYS[wd], "hour": h, "calls": f["calls"], "decided": f["decided"],
                    "within_standard_share": f["within_standard_share"],
                    "response_median_s": f["response_median_s"]})
    return out


def distribution(rows: Iterable[dict], *, bin_s: float, max_s: float) -> list[dict]:
    """Response times in bins of ``bin_s`` seconds from 0 to ``max_s``; the last bin holds
    everything slower (``to_s`` None). Bins are closed on the left: [from_s, to_s)."""
    n_bins = max(1, math.ceil(max_s / bin_s))
    counts = [0] * (n_bins + 1)
    for r in rows:
        x = r.get("response_s")
        if x is None:
            continue
        counts[min(int(x // bin_s), n_bins)] += 1
    return [{"from_s": round(i * bin_s, 3), "to_s": round((i + 1) * bin_s, 3) if i < n_bins else None,
             "calls": n} for i, n in enumerate(counts)]
