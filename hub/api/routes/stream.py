"""``GET /api/v1/stream``: Server-Sent Events (see hub.stream for the message kinds)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from hub.api.deps import HubContext, allow, hub, still_signed_in

router = APIRouter(prefix="/api/v1", tags=["stream"], dependencies=[Depends(allow("associate"))])


@router.get("/stream", response_class=StreamingResponse)
async def stream(request: Request, h: HubContext = Depends(hub),
                 last_event_id: str | None = Header(None),
                 last: str | None = Query(None, description="Same as the Last-Event-ID header")):
    body = h.stream.events(last_event_id or last, request.is_disconnected,
                           lambda: still_signed_in(request, "associate"))
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
