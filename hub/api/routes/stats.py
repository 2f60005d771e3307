"""Statistics against the service standard (first version: computed from the calls table)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query

from hub.api.deps import HubContext, hub
from hub.api.params import parse_time
from hub.domain.stats import statistics
from hub.views import iso

router = APIRouter(prefix="/api/v1", tags=["statistics"])

STAT_COLUMNS = ("room", "zone", "status", "pressed_at", "response_s", "wait_ack_s", "handling_s",
                "reminders", "answered_by", "auto_closed")

#: Default period when none is given: the last 7 days, seconds.
DEFAULT_PERIOD_S = 7 * 24 * 3600


@router.get("/stats")
def stats(
    h: HubContext = Depends(hub),
    from_: str | None = Query(None, alias="from", description="Start (ISO 8601 or epoch s); default 7 days ago"),
    until: str | None = Query(None, description="End, exclusive; default now"),
    by: Literal["hour", "weekday", "zone", "room", "associate", "day"] | None = Query(None),
):
    tz, now = h.config.tz, h.clock.time()
    end = parse_time(until, "until", tz) or now
    start = parse_time(from_, "from", tz)
    if start is None:
        start = end - DEFAULT_PERIOD_S
    rows = h.reader.calls_between(start, end, STAT_COLUMNS)
    out = statistics(rows, by=by, standard_s=h.config.store.standard_s,
                     target_share=h.config.store.target_share, tz=tz, now=now)
    return {"from": iso(start, tz), "until": iso(end, tz), **out}
