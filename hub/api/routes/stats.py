"""Statistics against the service standard, the hour × weekday heat map, the response-time
distribution and the staffing model (docs/statistics.md). Figures come from hub/domain/stats.py
and hub/domain/staffing.py over the calls the store reads for the period and filters."""
from __future__ import annotations

import bisect
import statistics as pystats
from typing import Literal

from fastapi import APIRouter, Depends, Query

from hub.api.deps import HubContext, hub
from hub.api.params import parse_time
from hub.domain import staffing
from hub.domain.stats import WEEKDAYS, distribution, heatmap, statistics
from hub.views import iso

router = APIRouter(prefix="/api/v1", tags=["statistics"])

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

By = Literal["hour", "weekday", "day", "week", "zone", "room", "associate", "reason"]


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

    def rows(self, h: HubContext, columns=STAT_COLUMNS) -> list[dict]:
        return h.reader.calls_between(self.start, self.end, columns, self.filters)

    def head(self) -> dict:
        return {"from": iso(self.start, self.tz), "until": iso(self.end, self.tz),
                "filters": {k: v for k, v in self.filters.items() if v is not None}}


def period(h: HubContext = Depends(hub),
           from_: str | None = Query(None, alias="from", description="Start (ISO 8601 or epoch s); default 7 days before until"),
           until: str | None = Query(None, description="End, exclusive (ISO 8601 or epoch s); default now"),
           zone: str | None = Query(None, description="Only calls of this zone"),
           room: str | None = Query(None, description="Only calls of this room"),
           associate: str | None = Query(None, description="Only calls this associate answered"),
           reason: str | None = Query(None, description="Only calls with this reason")) -> Period:
    return Period(h, from_, until, zone, room, associate, reason)


@router.get("/stats")
def stats(h: HubContext = Depends(hub), p: Period = Depends(period), by: By | None = Query(None)):
    """Figures for the period, and per group with ``by``."""
    return _stats(h, p, p.rows(h), by)


@router.get("/stats/heatmap")
def stats_heatmap(h: HubContext = Depends(hub), p: Period = Depends(period)):
    """Calls and share within the standard for each hour of the week (weekday × hour)."""
    return _heatmap(h, p, p.rows(h))


@router.get("/stats/distribution")
def stats_distribution(h: HubContext = Depends(hub), p: Period = Depends(period),
                       bin_s: float = Query(DIST_BIN_S, gt=0, le=600), max_s: float = Query(DIST_MAX_S, gt=0, le=3600)):
    """Response times in bins, for a histogram against the standard."""
    return _distribution(h, p, p.rows(h, ("response_s",)), bin_s, max_s)


@router.get("/stats/staffing")
def stats_staffing(h: HubContext = Depends(hub), p: Period = Depends(period),
                   walk_s: float | None = Query(None, ge=0, le=900,
                                                description="Walk to the room, s; default: measured median")):
    """Associates needed per hour of the week (Erlang C with the walk), next to those signed in."""
    return _staffing(h, p, p.rows(h, ("pressed_at", "status", "response_s", "wait_ack_s", "handling_s",
                                      "auto_closed")), walk_s)


@router.get("/stats/overview")
def stats_overview(h: HubContext = Depends(hub), p: Period = Depends(period), by: By | None = Query(None)):
    """What the statistics page shows, from one read of the period's calls: ``stats`` (grouped
    ``by``), ``trend`` (by week), ``heatmap``, ``distribution`` and ``staffing`` — each the same
    as its own route's answer."""
    rows = p.rows(h)
    return {"stats": _stats(h, p, rows, by), "trend": _stats(h, p, rows, "week"),
            "heatmap": _heatmap(h, p, rows), "distribution": _distribution(h, p, rows, DIST_BIN_S, DIST_MAX_S),
            "staffing": _staffing(h, p, rows, None)}


def _stats(h: HubContext, p: Period, rows: list[dict], by: str | None) -> dict:
    out = statistics(rows, by=by, standard_s=h.config.store.standard_s,
                     target_share=h.config.store.target_share, tz=p.tz, now=p.now)
    return {**p.head(), **out}


def _heatmap(h: HubContext, p: Period, rows: list[dict]) -> dict:
    cells = heatmap(rows, standard_s=h.config.store.standard_s, tz=p.tz, now=p.now)
    return {**p.head(), "standard_s": h.config.store.standard_s, "target_share": h.config.store.target_share,
            "weekdays": list(WEEKDAYS), "cells": cells}


def _distribution(h: HubContext, p: Period, rows: list[dict], bin_s: float, max_s: float) -> dict:
    bins = distribution(rows, bin_s=bin_s, max_s=max_s)
    return {**p.head(), "standard_s": h.config.store.standard_s, "bin_s": bin_s, "bins": bins}


def _staffing(h: HubContext, p: Period, rows: list[dict], walk_s: float | None) -> dict:
    s = h.config.store
    walks = [r["response_s"] - r["wait_ack_s"] for r in rows
             if r["response_s"] is not None and r["wait_ack_s"] is not None]
    measured_walk = pystats.median(walks) if walks else None
    walk = walk_s if walk_s is not None else (measured_walk if measured_walk is not None else DEFAULT_WALK_S)
    hour_list = staffing.hours(p.start, p.end, p.tz)
    occurrences: dict = {}
    for t, slot in hour_list:
        occurrences[slot] = occurrences.get(slot, 0) + 1
    calls: dict = {}
    handled: dict = {}
    starts = [t for t, _ in hour_list]
    for r in rows:
        i = bisect.bisect_right(starts, r["pressed_at"]) - 1
        if i < 0:
            continue
        slot = hour_list[i][1]
        calls[slot] = calls.get(slot, 0) + 1
        if r["handling_s"] is not None and not r["auto_closed"]:
            handled.setdefault(slot, []).append(r["handling_s"])
    all_handled = [x for xs in handled.values() for x in xs]
    default_handling = sum(all_handled) / len(all_handled) if all_handled else DEFAULT_HANDLING_S
    handling = {k: sum(v) / len(v) for k, v in handled.items() if len(v) >= MIN_SLOT_HANDLED}
    initial, changes = h.reader.associate_states(p.start, p.end)
    on = staffing.signed_in(initial, changes, p.start, p.end, hour_list)
    slots = staffing.plan(calls, occurrences, handling, on, walk_s=walk, standard_s=s.standard_s,
                          target_share=s.target_share, default_handling_s=default_handling)
    return {**p.head(), "model": "erlang-c", "standard_s": s.standard_s, "target_share": s.target_share,
            "walk_s": round(walk, 1), "walk_measured": walk_s is None and measured_walk is not None,
            "handling_s": round(default_handling, 1), "weekdays": list(WEEKDAYS),
            "slots": [{**x.as_dict(), "weekday": WEEKDAYS[x.weekday]} for x in slots]}
