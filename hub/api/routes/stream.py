"""``GET /api/v1/stream``: Server-Sent Events (see hub.stream for the message kinds)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from hub.api.deps import HubContext, allow, hub, still_signed_in
from hub.api.errors import error_responses
from hub.api.page_writer import page_writer
from hub.stream import Connection

#: One message of the stream, as the API description says it (each ``data`` is a JSON object).
MESSAGE_SCHEMA = {
    "type": "object", "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "description": "snapshot, call, device, associate, rejected, resumed or "
                                                   "heartbeat (hub/stream.py says what each holds)"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string", "description": "For Last-Event-ID; a heartbeat has none"},
        "retry": {"type": "integer", "minimum": 0},
    },
}

router = APIRouter(prefix="/api/v1", tags=["stream"], dependencies=[Depends(allow("display"))],
                   responses=error_responses(401, 403, 422))


class EventStreamResponse(StreamingResponse):
    """A streaming response that, once started, gives the stream (``connection``) a way to
    write live messages to this page without waking its task (hub.api.page_writer)."""
    media_type = "text/event-stream"

    def __init__(self, content, connection: Connection, **kw):
        super().__init__(content, **kw)
        self.connection = connection

    async def __call__(self, scope, receive, send):
        async def send_and_note(message):
            await send(message)
            if message["type"] == "http.response.start":
                page_writer(scope, send, self.connection)
        await super().__call__(scope, receive, send_and_note)


@router.get("/stream", response_class=EventStreamResponse, status_code=200,
            responses={200: {"description": "Server-Sent Events, one message per change (hub/stream.py)",
                             "content": {"text/event-stream": {"itemSchema": MESSAGE_SCHEMA}}}})
async def stream(request: Request, h: HubContext = Depends(hub),
                 last_event_id: str | None = Header(None),
                 last: str | None = Query(None, description="Same as the Last-Event-ID header")):
    connection = Connection()
    body = h.stream.events(last_event_id or last, request.is_disconnected,
                           lambda: still_signed_in(request, "display"), connection)
    return EventStreamResponse(body, connection,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
