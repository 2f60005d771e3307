"""``GET /api/v1/stats/receipts``: how well alerts reached people over a period — the share of
alerts the phones confirmed, in time for the escalation, and how long they took
(hub.domain.receipts; docs/statistics.md)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from hub.api.deps import HubContext, allow, hub
from hub.api.errors import ApiError, error_responses
from hub.api.params import parse_time, time_query
from hub.domain.receipts import receipt_figures

router = APIRouter(prefix="/api/v1", tags=["stats"], dependencies=[Depends(allow("manager"))],
                   responses=error_responses(400, 401, 403, 422))

#: The period when none is given, seconds: the last 7 days, as the other statistics.
DEFAULT_PERIOD_S = 7 * 86_400.0


@router.get("/stats/receipts", summary="Alerts confirmed by the phones, and how fast")
def receipts(h: HubContext = Depends(hub),
             from_: str | None = time_query(alias="from", description="Start (ISO 8601 or epoch seconds); default 7 days before until"),
             until: str | None = time_query(description="End, excluded (default now)")):
    tz = h.config.tz
    end = parse_time(until, "until", tz) or h.clock.time()
    start = parse_time(from_, "from", tz)
    start = end - DEFAULT_PERIOD_S if start is None else start
    if start >= end:
        raise ApiError("bad_request", "from must come before until")
    alerts, got = h.reader.alerts_and_receipts(start, end)
    return {"from": start, "until": end,
            **receipt_figures(alerts, got, h.config.alerts.receipt_s, pages=h.reader.receipt_senders(end))}
