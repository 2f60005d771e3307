"""Headers every answer of the hub carries, so a browser holds the pages to what they are:
scripts, styles and requests from the hub itself only, never inside another site's frame, no
guessing of content types, no address leaked to other sites (docs/security.md, "Hub web").

The pages are plain files with no inline script or style and no third-party resource, so the
policy can be strict. A page change that needs more (an inline ``style=``, a CDN) is refused
by the browser, and the page tests fail on the violation (tests/browser.py).
"""
from __future__ import annotations

#: The Content Security Policy of every answer. ``data:`` images: the browser's own icons.
#: ``frame-ancestors 'none'``: no other page may frame the hub's (clickjacking on "On my way").
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "font-src 'self'", "manifest-src 'self'", "worker-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"))

HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # links out (ntfy, docs) say nothing of the hub's URLs
)


class SecurityHeaders:
    """ASGI middleware: adds :data:`HEADERS` to every HTTP response that does not set them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                have = {name.lower() for name, _ in message.get("headers", ())}
                message = {**message, "headers": [*message.get("headers", ()),
                                                  *(h for h in HEADERS if h[0] not in have)]}
            await send(message)
        await self.app(scope, receive, send_with_headers)
