"""How the pages' fan-out (hub.stream) writes one live message to one page's HTTP response,
without waking the page's task: the HTTP side of the stream, kept apart from it.

- Under uvicorn's h11 server (how the hub serves), the message, framed once as an HTTP/1.1
  chunk (``Item.chunk``), is written to the page's transport directly (:func:`chunk_writer`):
  the ASGI call chain and h11's framing would otherwise run once per page for the same bytes.
- With any other server, the response's ASGI ``send`` is run to its end at once
  (:func:`write_at_once`).

Either way a page whose connection pushes back is not written to: the stream holds its
messages for a while (hub.stream.PAGE_STALL_S) and then drops it, to reconnect and catch up. The hub serves its app through :func:`noting_server_send`, which
keeps uvicorn's own ``send`` in each request's scope, before the framework's middleware wraps it.
"""
from __future__ import annotations

from typing import Callable

from hub.stream import Connection, Item

#: The key under which :func:`noting_server_send` keeps the server's own ``send`` in a scope.
SERVER_SEND = "callbell.server_send"


def noting_server_send(app):
    """Wrap the ASGI ``app`` so that every HTTP request's scope holds the server's own ``send``."""
    async def noted(scope, receive, send):
        if scope["type"] == "http":
            scope[SERVER_SEND] = send
        await app(scope, receive, send)
    return noted


def page_writer(scope: dict, send: Callable, connection: Connection) -> None:
    """For a response that has started, set how the stream writes to it (hub.stream.Connection):
    ``write(item)`` writes one live message (False: not written); ``direct`` is the chunk writer
    it uses, or None when it goes through ``send`` (the response's ASGI send); ``pushing_back()``
    is true while the page is there but its buffers are full (false: it has gone, or the server
    cannot tell, and the page is dropped); ``abort()`` closes the page's connection."""
    direct = chunk_writer(scope.get(SERVER_SEND))
    if direct is not None:
        connection.write, connection.direct = (lambda item: direct(item.chunk)), direct
        connection.pushing_back, connection.abort = direct.pushing_back, direct.abort
    else:
        connection.write = lambda item: write_at_once(send, item.wire)


def chunk_writer(server_send: Callable | None) -> Callable[[bytes], bool] | None:
    """A writer of ready-framed body chunks straight to the page's transport, when
    ``server_send`` is uvicorn's send of an HTTP/1.1 response whose body h11 sends chunked
    (a streamed response has no length); else None.

    ``write(frame)`` checks what uvicorn's send checks (flow control, the client gone, the
    response complete) and writes. h11 keeps no state for a chunked body, so the response ends
    correctly through the ordinary send. It returns False where uvicorn's send would wait or do
    nothing. Relies on uvicorn's layout (``RequestResponseCycle``: ``transport``, ``flow``,
    ``conn``): a uvicorn laid out otherwise gets None, and tests/test_stream.py fails."""
    cycle = getattr(server_send, "__self__", None)
    if type(cycle).__module__ != "uvicorn.protocols.http.h11_impl":
        return None
    try:  # everything write() reads, read once here
        transport, flow = cycle.transport, cycle.flow
        chunked = (cycle.conn.their_http_version == b"1.1" and cycle.scope["method"] != "HEAD"
                   and cycle.response_started and not flow.write_paused and not cycle.disconnected
                   and not cycle.response_complete and not transport.is_closing())
    except (AttributeError, KeyError):
        return None
    if not chunked:
        return None

    def write(frame: bytes) -> bool:
        if flow.write_paused or cycle.disconnected or cycle.response_complete or transport.is_closing():
            return False
        transport.write(frame)
        return True

    def pushing_back() -> bool:
        return flow.write_paused and not (cycle.disconnected or cycle.response_complete or transport.is_closing())
    write.pushing_back = pushing_back
    write.abort = transport.abort
    return write


def write_at_once(send: Callable, chunk: bytes) -> bool:
    """Run an ASGI ``send`` of one body chunk to its end now, on the event loop, without a task.

    A server's send of a body chunk completes without waiting unless the connection pushes
    back (uvicorn waits for its buffer to drain *before* it writes): then the send is closed
    unsent and False returned, as it is when the send fails (the page has gone)."""
    coro = send({"type": "http.response.body", "body": chunk, "more_body": True})
    try:
        coro.send(None)
    except StopIteration:
        return True
    except Exception:  # noqa: BLE001 - a broken connection: the caller drops the page
        return False
    coro.close()
    return False
