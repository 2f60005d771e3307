"""``GET /api/v1/stream``: Server-Sent Events (see hub.stream for the message kinds)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from hub.api.deps import HubContext, allow, hub, still_signed_in
from hub.stream import Connection, chunk_writer

router = APIRouter(prefix="/api/v1", tags=["stream"], dependencies=[Depends(allow("associate"))])

#: The key under which :func:`noting_server_send` keeps the server's own ``send`` in a scope.
SERVER_SEND = "callbell.server_send"


def noting_server_send(app):
    """Wrap the ASGI ``app`` so that every HTTP request's scope holds the server's own
    ``send``, as it is before the framework's middleware wraps it: the stream writes live
    messages through it (hub.stream.chunk_writer). The hub serves this wrapper."""
    async def noted(scope, receive, send):
        if scope["type"] == "http":
            scope[SERVER_SEND] = send
        await app(scope, receive, send)
    return noted


class EventStreamResponse(StreamingResponse):
    """A streaming response that, once started, hands the server's ``send`` to the stream
    (``connection``), so live messages can be written to this page without waking its task."""

    def __init__(self, content, connection: Connection, **kw):
        super().__init__(content, **kw)
        self.connection = connection

    async def __call__(self, scope, receive, send):
        async def send_and_note(message):
            await send(message)
            if message["type"] == "http.response.start":
                self.connection.send = send
                self.connection.direct = chunk_writer(scope.get(SERVER_SEND))
        await super().__call__(scope, receive, send_and_note)


@router.get("/stream", response_class=StreamingResponse)
async def stream(request: Request, h: HubContext = Depends(hub),
                 last_event_id: str | None = Header(None),
                 last: str | None = Query(None, description="Same as the Last-Event-ID header")):
    connection = Connection()
    body = h.stream.events(last_event_id or last, request.is_disconnected,
                           lambda: still_signed_in(request, "associate"), connection)
    return EventStreamResponse(body, connection, media_type="text/event-stream",
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
