"""Statistics against the service standard, the hour × weekday heat map, the response-time
distribution and the staffing model (docs/statistics.md). Figures come from hub/domain/stats.py
and hub/domain/staffing.py over the calls the store reads for the period and filters."""
from __future__ import annotations

import json
import statistics as pystats
from typing import Literal

from fastapi import APIRouter, Depends, Query

from hub.api.deps import HubContext, allow, hub
from hub.api.errors import error_responses
from hub.api.params import parse_time, time_query
from hub.domain import rollup, service_standards, staffing
from hub.domain.stats import BUSIEST_TOP, WEEKDAYS, distribution, heatmap, statistics
from hub.rollup_view import RollupView, supported
from hub.views import iso

router = APIRouter(prefix="/api/v1", tags=["statistics"], dependencies=[Depends(allow("manager"))],
                   responses=error_responses(400, 401, 403, 422))

STAT_COLUMNS = ("room", "zone", "reason", "status", "pressed_at", "response_s", "wait_ack_s", "handling_s",
                "reminders", "answered_by", "auto_closed")

#: Default period when none is given: the last 7 days, seconds.
DEFAULT_PERIOD_S = 7 * 24 * 3600
#: Response-time distribution: bin width and the last bin's start, seconds. 10 s bins read well
#: against a 90 s standard; slower than 5 minutes is one bar.
DIST_BIN_S, DIST_MAX_S = 10.0, 300.0
#: Staffing: the walk (acknowledged → at the door) assumed when the period has no acknowledged
#: and answered call to measure it from, seconds (50 m at 1.2 m/s, about half a mid-size floor).
DEFAULT_WALK_S = 40.0
#: Staffing: the handling time assumed when the period has none measured, seconds.
DEFAULT_HANDLING_S = 180.0
#: Staffing: an hour of the week needs this many handled calls to use its own mean handling
#: time; below, the period's mean is used (a mean of two calls is noise).
MIN_SLOT_HANDLED = 10

#: Periods with up to this many calls are computed exactly from the calls (well under 100 ms);
#: longer ones from the roll-ups, with percentiles from 1-second histograms (docs/statistics.md).
EXACT_UP_TO_CALLS = 5_000

By = Literal["hour", "weekday", "day", "week", "zone", "room", "associate", "reason"]
Percentiles = Literal["auto", "exact", "histogram"]


class Period:
    """The period and filters every statistics route takes, parsed once."""

    def __init__(self, h: HubContext, from_: str | None, until: str | None, zone: str | None,
                 room: str | None, associate: str | None, reason: str | None):
        tz, now = h.config.tz, h.clock.time()
        self.tz, self.now = tz, now
        self.end = parse_time(until, "until", tz) or now
        start = parse_time(from_, "from", tz)
        self.start = self.end - DEFAULT_PERIOD_S if start is None else start
        self.filters = {"zone": zone, "room": room, "associate": associate, "reason": reason}
        self.method: str = "auto"
        self._view: RollupView | None = None
        self._big: bool | None = None

    def rows(self, h: HubContext, columns=STAT_COLUMNS) -> list[dict]:
        return h.reader.calls_between(self.start, self.end, columns, self.filters)

    def view(self, h: HubContext, by: str | None) -> RollupView | None:
        """The roll-ups, when this query should be answered from them: asked for, or (``auto``)
        a period of more than EXACT_UP_TO_CALLS calls; and the roll-ups can answer it."""
        if self.method == "exact" or not supported(by, self.filters):
            return None
        rules = rollup.Rules(self.tz, h.config.store.standard_s)
        if self._view is None:
            if not h.reader.rollups_ready(rules):
                return None
            self._view = RollupView(h.reader, rules, self.start, self.end, self.filters, self.now)
        if self.method == "auto":
            if self._big is None:
                self._big = self._view.count() > EXACT_UP_TO_CALLS
            if not self._big:
                return None
        return self._view

    def head(self, method: str | None = None) -> dict:
        out = {"from": iso(self.start, self.tz), "until": iso(self.end, self.tz),
               "filters": {k: v for k, v in self.filters.items() if v is not None}}
        if method:
            out["percentiles"] = method
        return out


def period(h: HubContext = Depends(hub),
           from_: str | None = time_query(alias="from", description="Start (ISO 8601 or epoch s); default 7 days before until"),
           until: str | None = time_query(description="End, exclusive (ISO 8601 or epoch s); default now"),
           zone: str | None = Query(None, description="Only calls of this zone"),
           room: str | None = Query(None, description="Only calls of this room"),
           associate: str | None = Query(None, description="Only calls this associate answered"),
           reason: str | None = Query(None, description="Only calls with this reason"),
           percentiles: Percentiles = Query(
               "auto", description="exact: from every call; histogram: from the roll-ups (1-second "
                                   "histograms); auto: exact up to 5,000 calls")) -> Period:
    p = Period(h, from_, until, zone, room, associate, reason)
    p.method = percentiles
    return p


@router.get("/stats")
def stats(h: HubContext = Depends(hub), p: Period = Depends(period), by: By | None = Query(None)):
    """Figures for the period, and per group with ``by``."""
    return _stats(h, p, _Rows(h, p), by)


@router.get("/stats/heatmap")
def stats_heatmap(h: HubContext = Depends(hub), p: Period = Depends(period)):
    """Calls and share within the standard for each hour of the week (weekday × hour)."""
    return _heatmap(h, p, _Rows(h, p))


@router.get("/stats/distribution")
def stats_distribution(h: HubContext = Depends(hub), p: Period = Depends(period),
                       bin_s: float = Query(DIST_BIN_S, ge=0.5, le=600), max_s: float = Query(DIST_MAX_S, gt=0, le=3600)):
    """Response times in bins, for a histogram against the standard."""
    return _distribution(h, p, _Rows(h, p, ("response_s",)), bin_s, max_s)


@router.get("/stats/staffing")
def stats_staffing(h: HubContext = Depends(hub), p: Period = Depends(period),
                   walk_s: float | None = Query(None, ge=0, le=900,
                                                description="Walk to the room, s; default: measured median")):
    """Associates needed per hour of the week (Erlang C with the walk), next to those signed in."""
    return _staffing(h, p, _Rows(h, p, ("pressed_at", "status", "response_s", "wait_ack_s", "handling_s",
                                        "auto_closed")), walk_s)


@router.get("/stats/service")
def stats_service(h: HubContext = Depends(hub), p: Period = Depends(period)):
    """The service standards (hub.domain.service_standards): first-contact resolution, instant
    vs queued calls, time to abandon, handoffs per call, verified vs self-reported arrivals.
    Always exact, from the calls and their "answered" events (no roll-ups)."""
    calls = h.reader.service_calls(p.start, p.end, p.filters)
    for c in calls:
        c["alerted"] = json.loads(c["alerted"] or "[]")
    # Occupancy: time on calls against time signed in, per hour of the week, for the whole
    # store or one associate (people are not signed in to a zone, room or reason: those
    # filters do not apply to it). A call pressed in the period counts its busy time,
    # clipped to the period.
    who = p.filters["associate"]
    local = staffing.LocalHours(p.start, p.end, p.tz)
    initial, changes = h.reader.associate_states(p.start, p.end)
    if who is not None:
        initial = {k: v for k, v in initial.items() if k == who}
        changes = [c for c in changes if c[1] == who]
    on = staffing.signed_in(initial, changes, p.start, p.end, local)
    others = any(v is not None for k, v in p.filters.items() if k != "associate")
    mine = h.reader.service_calls(p.start, p.end, {"associate": who}) if others else calls
    busy = staffing.hours_in(service_standards.busy_intervals(mine), local)
    band = tuple(h.config.store.occupancy_band)
    return {**p.head("exact"), **service_standards.service_standards(calls, p.now),
            "occupancy": service_standards.occupancy(busy, on, band, WEEKDAYS)}


@router.get("/stats/overview")
def stats_overview(h: HubContext = Depends(hub), p: Period = Depends(period), by: By | None = Query(None),
                   trend: Literal["hour", "day", "week"] = Query(
                       "week", description="The trend's steps: hour (a day's), day or week")):
    """What the statistics page shows, from one read of the period's calls: ``stats`` (grouped
    ``by``), ``trend`` (by ``trend``: week unless told), ``heatmap``, ``distribution`` and
    ``staffing`` — each the same as its own route's answer."""
    rows = _Rows(h, p)
    heat = _heatmap(h, p, rows)  # first: its hour roll-ups serve the busiest hours and staffing too
    return {"stats": _stats(h, p, rows, by), "trend": _stats(h, p, rows, trend),
            "heatmap": heat, "distribution": _distribution(h, p, rows, DIST_BIN_S, DIST_MAX_S),
            "staffing": _staffing(h, p, rows, None)}


class _Rows:
    """The period's calls, read once and only if the exact path needs them."""

    def __init__(self, h: HubContext, p: Period, columns=STAT_COLUMNS):
        self.h, self.p, self.columns = h, p, columns
        self._rows: list[dict] | None = None

    def get(self) -> list[dict]:
        if self._rows is None:
            self._rows = self.p.rows(self.h, self.columns)
        return self._rows


def _stats(h: HubContext, p: Period, rows: _Rows, by: str | None) -> dict:
    s = h.config.store
    v = p.view(h, by)
    if v is None:
        out = statistics(rows.get(), by=by, standard_s=s.standard_s, target_share=s.target_share, tz=p.tz, now=p.now)
        return {**p.head("exact"), **out}
    total, groups = v.groups(by)
    out = {"standard_s": s.standard_s, "target_share": s.target_share,
           "total": total.figures(s.standard_s, s.target_share), "busiest_hours": v.busiest_hours(BUSIEST_TOP)}
    if by:
        order = (lambda k: WEEKDAYS.index(k)) if by == "weekday" else (lambda k: (k is None, k))
        out["by"] = by
        out["groups"] = [{"key": k, **g.figures(s.standard_s, s.target_share)}
                         for k, g in sorted(groups.items(), key=lambda kv: order(kv[0]))]
    return {**p.head("histogram"), **out}


def _heatmap(h: HubContext, p: Period, rows: _Rows) -> dict:
    s = h.config.store
    v = p.view(h, "hour")
    if v is None:
        cells, method = heatmap(rows.get(), standard_s=s.standard_s, tz=p.tz, now=p.now), "exact"
    else:
        cells, method = [], "histogram"
        for (wd, hr), agg in sorted(v.week_cells().items()):
            f = agg.figures(s.standard_s)
            cells.append({"weekday": WEEKDAYS[wd], "hour": hr, "calls": f["calls"], "decided": f["decided"],
                          "within_standard_share": f["within_standard_share"],
                          "response_median_s": f["response_median_s"]})
    return {**p.head(method), "standard_s": s.standard_s, "target_share": s.target_share,
            "weekdays": list(WEEKDAYS), "cells": cells}


def _distribution(h: HubContext, p: Period, rows: _Rows, bin_s: float, max_s: float) -> dict:
    v = p.view(h, None)
    if v is None:
        bins, method = distribution(rows.get(), bin_s=bin_s, max_s=max_s), "exact"
    else:
        bins, method = v.distribution(bin_s, max_s), "histogram"
    return {**p.head(method), "standard_s": h.config.store.standard_s, "bin_s": bin_s, "bins": bins}


def _staffing(h: HubContext, p: Period, rows: _Rows, walk_s: float | None) -> dict:
    s = h.config.store
    # The period's hours counted per hour of the week, not listed: over 1970-2100 that is a
    # million hours, and the cost must follow the calls (issue 17).
    local = staffing.LocalHours(p.start, p.end, p.tz)
    occurrences = local.counts()
    v = p.view(h, "hour")
    if v is None:
        method = "exact"
        calls, handled, measured_walk = _staffing_inputs(rows.get(), local)
    else:
        method = "histogram"
        calls, sums, walk_hist = v.staffing_inputs(local)
        handled = {k: (n, total) for k, (n, total) in sums.items() if n}
        measured_walk = rollup.percentiles(walk_hist, (50,), rollup.RESOLUTION_S)[0]
    walk = walk_s if walk_s is not None else (measured_walk if measured_walk is not None else DEFAULT_WALK_S)
    n_all = sum(n for n, _ in handled.values())
    default_handling = sum(t for _, t in handled.values()) / n_all if n_all else DEFAULT_HANDLING_S
    handling = {k: t / n for k, (n, t) in handled.items() if n >= MIN_SLOT_HANDLED}
    initial, changes = h.reader.associate_states(p.start, p.end)
    on = staffing.signed_in(initial, changes, p.start, p.end, local)
    slots = staffing.plan(calls, occurrences, handling, on, walk_s=walk, standard_s=s.standard_s,
                          target_share=s.target_share, default_handling_s=default_handling)
    return {**p.head(method), "model": "erlang-c", "standard_s": s.standard_s, "target_share": s.target_share,
            "walk_s": round(walk, 1), "walk_measured": walk_s is None and measured_walk is not None,
            "handling_s": round(default_handling, 1), "weekdays": list(WEEKDAYS),
            "slots": [{**x.as_dict(), "weekday": WEEKDAYS[x.weekday]} for x in slots]}


def _staffing_inputs(rows: list[dict], local: staffing.LocalHours) -> tuple[dict, dict, float | None]:
    """From the calls: calls per hour of the week (by the local hour a call began in; calls
    before the period's first whole hour left out), (count, total handling s) of the handled
    ones, and the median walk (acknowledged → at the door), s."""
    walks = [r["response_s"] - r["wait_ack_s"] for r in rows
             if r["response_s"] is not None and r["wait_ack_s"] is not None]
    calls: dict = {}
    handled: dict = {}
    for r in rows:
        if local.first is None or r["pressed_at"] < local.first:
            continue
        slot = local.slot(r["pressed_at"])
        calls[slot] = calls.get(slot, 0) + 1
        if r["handling_s"] is not None and not r["auto_closed"]:
            n, t = handled.get(slot, (0, 0.0))
            handled[slot] = (n + 1, t + r["handling_s"])
    return calls, handled, (pystats.median(walks) if walks else None)
