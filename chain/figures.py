"""Chain statistics: the same figures as a store's, for any set of stores, by hour of day or
weekday, over whole local months. Definitions as on the hub (docs/statistics.md):

- response time = answered − pressed, seconds; percentiles by linear interpolation between
  closest ranks (type 7: ClickHouse's ``quantileExactInclusive``, the hub's ``percentile``);
- share within standard = answered within the store's standard ÷ (answered + missed): calls
  whose outcome is known. Cancelled calls are left out; a call is counted once decided.

Two ways to the same figures: from the rows, exact; or from the roll-ups (chain/schema.py),
where the counts and shares are exact and the percentiles come from histograms of 1 s bins
up to 5 minutes (to within half a second, as on the hub's page; 10 s bins beyond). A selection of up to EXACT_MAX_CALLS answered
calls is worked from the rows.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chain.schema import HISTOGRAM_PERCENTILES, ROLLUP_SELECT
from chain.warehouse import Warehouse

#: Selections of at most this many answered calls get exact percentiles from the rows. The
#: rows cost ~60 ns a call on 2 cores (bench/chain_queries.py): 2 M calls in ~0.1 s.
EXACT_MAX_CALLS = 2_000_000

KEYS = ("hour", "weekday")


@dataclass(frozen=True)
class Period:
    """Whole local months: ``since`` (first day of a month) up to, not including, ``until``."""
    since: dt.date
    until: dt.date

    @classmethod
    def months(cls, last: dt.date, count: int) -> "Period":
        """The ``count`` months up to and including the month of ``last``."""
        end = _add_months(last.replace(day=1), 1)
        return cls(_add_months(end, -count), end)

    @classmethod
    def everything(cls) -> "Period":
        return cls(dt.date(1970, 1, 1), dt.date(2149, 6, 1))


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return dt.date(y, m + 1, 1)


def _row(store: str, key: int | None, answered: int, missed: int, cancelled: int, within: int,
         q: list[float] | None, exact: bool) -> dict:
    decided = answered + missed
    q = q if answered else [None, None, None]
    return {"store": store, "key": key, "answered": answered, "missed": missed, "cancelled": cancelled,
            "calls": answered + missed + cancelled, "within": within,
            "share": round(within / decided, 4) if decided else None,
            "p50": _r(q[0]), "p90": _r(q[1]), "p95": _r(q[2]), "exact": exact}


def _r(x):
    return None if x is None else round(float(x), 3)


def figures(wh: Warehouse, stores: list[str], period: Period, by: str | None = None,
            exact: bool | None = None) -> list[dict]:
    """Figures per store (and per hour or weekday with ``by``). ``exact``: True from the rows,
    False from the roll-ups, None (default) from the rows when the selection is small."""
    if by is not None and by not in KEYS:
        raise ValueError(f"by must be one of {', '.join(KEYS)}, got {by!r}")
    if not stores:
        return []
    params = {"stores": stores, "since": period.since.isoformat(), "until": period.until.isoformat()}
    where = "store IN {stores:Array(String)} AND month >= {since:Date} AND month < {until:Date}"
    group = "store" + (f", {by}" if by else "")
    key = by or "0"
    if exact is not True:
        # by_hour / by_weekday answer this (keys and aggregates as in chain.schema); without
        # ``by``, ClickHouse sums the by_hour roll-up.
        rows = wh.rows(f"SELECT store, k, answered, missed, cancelled, within, {HISTOGRAM_PERCENTILES} FROM ("
                       f"SELECT store, {key} AS k, {ROLLUP_SELECT}, arrayCumSum(histogram) AS cum, "
                       f"arraySum(histogram) AS n FROM events WHERE {where} GROUP BY {group}) ORDER BY store, k", params)
        if exact is False or sum(r[2] for r in rows) > EXACT_MAX_CALLS:
            return [_row(r[0], None if by is None else r[1], *r[2:6], r[6], False) for r in rows]
    rows = wh.rows(
        f"SELECT store, {key}, countIf(outcome = 'answered'), countIf(outcome = 'missed'), "
        f"countIf(outcome = 'cancelled'), sum(within), "
        f"quantilesExactInclusiveIf(0.5, 0.9, 0.95)(response_s, outcome = 'answered') "
        f"FROM events WHERE {where} AND outcome != '' GROUP BY {group} ORDER BY {group}", params)
    return [_row(r[0], None if by is None else r[1], *r[2:6], r[6], True) for r in rows]


def ranking(rows: list[dict]) -> list[dict]:
    """Stores best first: highest share within the standard, then lowest p90 (undecided last)."""
    return sorted(rows, key=lambda r: (r["share"] is None, -(r["share"] or 0), r["p90"] if r["p90"] is not None else 1e18,
                                       r["store"]))
