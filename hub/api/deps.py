"""What every route needs, declared once: the running hub's parts, handed in by FastAPI."""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Callable

from fastapi import Request

from callbell.clock import Clock
from hub.api.errors import ApiError
from hub.api.refusals import Refusals
from hub.auth import CSRF_HEADER, DEMO, RANK, SESSION_COOKIE, Authenticator, Principal
from hub.config import StoreConfig
from hub.database_watch import DatabaseWatch
from hub.dispatcher import Dispatcher
from hub.store import Reader
from hub.stream import StreamChannel


@dataclass
class HubContext:
    config: StoreConfig
    reader: Reader
    dispatcher: Dispatcher
    stream: StreamChannel
    clock: Clock
    broker_connected: Callable[[], bool]
    refusals: Refusals  # refused requests, summed per client and minute
    database: DatabaseWatch | None = None  # the database file's health (hub.database_watch)


def hub(request: Request) -> HubContext:
    return request.app.state.hub


# -- who is asking (hub/auth.py; docs/security.md "Hub web") ---------------------------------
#: Methods that change nothing: no CSRF header needed for them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def authenticator(request: Request) -> Authenticator:
    return request.app.state.auth


def _principal(request: Request) -> Principal | None:
    """Who sent ``request``: the demo principal in demo mode, else a token's client or a
    session's associate; None if neither. A bad token is an error (its sender meant to
    authenticate); a stale cookie is only "not signed in" (the page shows its sign-in form)."""
    if request.app.state.hub.config.http.demo:
        return DEMO
    auth = authenticator(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("unauthorized", "the Authorization header must be 'Bearer <token>'")
        found = auth.token(token.strip())
        if found is None:
            raise ApiError("unauthorized", "unknown or revoked token")
        return found
    cookie = request.cookies.get(SESSION_COOKIE)
    return auth.session(cookie) if cookie else None


def still_signed_in(request: Request, role: str) -> bool:
    """Whether the credentials ``request`` came with still hold ``role`` (for a long-lived
    request, the event stream): not after sign-out, expiry or a revoked token."""
    try:
        who = _principal(request)
    except ApiError:
        return False
    return who is not None and who.may(role)


def principal(request: Request) -> Principal | None:
    """Who is asking, or None; worked out once per request."""
    if not hasattr(request.state, "principal"):
        request.state.principal = _principal(request)
    return request.state.principal


def signed_in(request: Request) -> Principal:
    """Any authenticated caller; a cookie request that changes something must also prove it
    comes from the hub's own pages (CSRF_HEADER), which another site's form or script cannot."""
    who = principal(request)
    if who is None:
        raise ApiError("unauthorized", "sign in first (a session cookie), or send 'Authorization: Bearer <token>'")
    if who.kind == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER.lower(), "")
        if not hmac.compare_digest(sent.encode(), (who.csrf or "").encode()):
            raise ApiError("csrf", f"a signed-in page must send the {CSRF_HEADER} header it got at sign-in "
                                   "(a request from another site is refused)", 403)
    return who


def allow(role: str) -> Callable[[Request], Principal]:
    """A dependency: the caller must have ``role`` or a higher one (hub.auth.ROLES)."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")

    def check(request: Request) -> Principal:
        who = signed_in(request)
        if not who.may(role):
            raise ApiError("forbidden", f"{who.name} has role {who.role}; this needs {role} or above")
        return who
    check.role = role  # read by the tests that check every route has a role
    return check


def acting_as(who: Principal, associate: str) -> None:
    """An associate acts only as themselves (a manager or admin for anyone)."""
    if not who.may("manager") and who.associate != associate:
        raise ApiError("forbidden", f"{who.name} may act only as themselves, not as {associate!r}")
