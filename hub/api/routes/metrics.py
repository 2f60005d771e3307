"""``GET /metrics``: Prometheus metrics (hub.metrics), text exposition format 0.0.4."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from hub.api.deps import HubContext, allow, hub
from hub.api.errors import ApiError, error_responses
from hub.metrics import CONTENT_TYPE

# Monitoring reads no staff data: a device token (the least) is enough to scrape it.
router = APIRouter(tags=["operations"], dependencies=[Depends(allow("device"))],
                   responses=error_responses(401, 403, 503))


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"description": "Prometheus text exposition format 0.0.4"}})
def metrics(request: Request, h: HubContext = Depends(hub)):
    collector = getattr(request.app.state, "metrics", None)
    if collector is None:  # an app built without a running hub's collector (set by hub.service)
        raise ApiError("unavailable", "metrics are not collected by this hub")
    body = collector.render(h.reader.devices(), broker_connected=h.broker_connected())
    return PlainTextResponse(body, media_type=CONTENT_TYPE)
