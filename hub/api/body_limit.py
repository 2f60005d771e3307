"""A cap on request bodies, before any route reads one: the API takes small JSON bodies (an
associate id, a state), so anything large is a mistake or an attack and is refused with 413
instead of being read into memory."""
from __future__ import annotations

import json

#: The largest request body the hub reads, bytes. The largest real body is a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """ASGI middleware: 413 for a declared Content-Length over the cap, and for a body sent
    without one (chunked) once it passes the cap; ``on_refused(method, path, reason, client)``
    records it (``client``: the client's address)."""

    def __init__(self, app, on_refused=None, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.on_refused, self.max_bytes = app, on_refused, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await self._refuse(scope, send, 400, "bad_request", "Content-Length is not a number")
            if size > self.max_bytes:
                return await self._refuse(scope, send, 413, "too_large",
                                          f"request body of {size} bytes; at most {self.max_bytes} are read")
            return await self.app(scope, receive, send)
        # No length declared: read up to the cap here, then hand the body on in one piece.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(scope, send, 413, "too_large",
                                          f"request body over {self.max_bytes} bytes")
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        return await self.app(scope, replay, send)

    async def _refuse(self, scope, send, status: int, code: str, message: str) -> None:
        if self.on_refused is not None:
            client = scope.get("client") or ("unknown", 0)
            self.on_refused(scope.get("method", "?"), scope.get("path", "?"), message, client[0])
        payload = json.dumps({"error": {"code": code, "message": message}}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
