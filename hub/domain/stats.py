"""Response-time statistics against the service standard. Pure: rows in, figures out.

Definitions (also in docs/statistics.md):

- *response time* = answered − pressed, seconds, for answered calls (and done calls, which
  were answered first).
- *percentiles* use linear interpolation between closest ranks (Hyndman & Fan type 7, the
  method of NumPy's default and Excel's PERCENTILE.INC); the median is the 50th percentile.
- *share within standard* = calls answered within the standard ÷ calls that needed an answer
  and whose outcome is known: answered or done, missed, and calls still waiting that are
  already past the standard (they can no longer meet it). Cancelled calls are left out: the
  shopper withdrew. Calls still waiting inside the standard are left out until decided.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, tzinfo
from typing import Iterable

GROUPINGS = ("hour", "weekday", "day", "zone", "room", "associate")
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


def figures(rows: list[dict], standard_s: float, now: float) -> dict:
    """Figures for one group of calls (rows with status, pressed_at, response_s, ...)."""
    responses = sorted(r["response_s"] for r in rows if r.get("response_s") is not None)
    waits = sorted(r["wait_ack_s"] for r in rows if r.get("wait_ack_s") is not None)
    handling = sorted(r["handling_s"] for r in rows
                      if r.get("handling_s") is not None and not r.get("auto_closed"))
    missed = sum(1 for r in rows if r["status"] == "missed")
    cancelled = sum(1 for r in rows if r["status"] == "cancelled")
    late_waiting = sum(1 for r in rows if r["status"] in ("open", "acknowledged")
                       and now - r["pressed_at"] > standard_s)
    within = sum(1 for x in responses if x <= standard_s)
    decided = len(responses) + missed + late_waiting
    return {
        "calls": len(rows),
        "answered": len(responses),
        "missed": missed,
        "cancelled": cancelled,
        "open": sum(1 for r in rows if r["status"] in ("open", "acknowledged", "answered")),
        "reminders": sum(r.get("reminders") or 0 for r in rows),
        "response_median_s": _r(percentile(responses, 50)),
        "response_p90_s": _r(percentile(responses, 90)),
        "response_p95_s": _r(percentile(responses, 95)),
        "response_max_s": _r(responses[-1] if responses else None),
        "within_standard": within,
        "within_standard_share": _r(within / decided) if decided else None,
        "wait_ack_median_s": _r(percentile(waits, 50)),
        "handling_median_s": _r(percentile(handling, 50)),
    }


def group_key(row: dict, by: str, tz: tzinfo) -> str | int | None:
    if by == "hour":
        return datetime.fromtimestamp(row["pressed_at"], tz).hour
    if by == "weekday":
        return WEEKDAYS[datetime.fromtimestamp(row["pressed_at"], tz).weekday()]
    if by == "day":
        return datetime.fromtimestamp(row["pressed_at"], tz).date().isoformat()
    if by == "zone":
        return row.get("zone")
    if by == "room":
        return row["room"]
    if by == "associate":
        return row.get("answered_by")
    raise ValueError(f"cannot group by {by!r}; use one of {', '.join(GROUPINGS)}")


def statistics(rows: Iterable[dict], *, by: str | None, standard_s: float, target_share: float,
               tz: tzinfo, now: float) -> dict:
    """Totals and, with ``by``, the same figures per group (sorted by key)."""
    rows = list(rows)
    out = {"standard_s": standard_s, "target_share": target_share,
           "total": figures(rows, standard_s, now)}
    if by:
        groups: dict = defaultdict(list)
        for r in rows:
            groups[group_key(r, by, tz)].append(r)
        order = (lambda k: WEEKDAYS.index(k)) if by == "weekday" else (lambda k: (k is None, k))
        out["by"] = by
        out["groups"] = [{"key": k, **figures(g, standard_s, now)} for k, g in
                         sorted(groups.items(), key=lambda kv: order(kv[0]))]
    return out
