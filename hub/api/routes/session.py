"""Sign-in for the pages: ``GET/POST/DELETE /api/v1/session`` (docs/security.md, "Hub web").

- **Demo mode** (``[http] demo = true``): authentication is off. Sign-in only tells the page who
  you are (checking a PIN if the store configures PINs) and issues no session.
- **Otherwise** ``POST`` signs in with a PIN (role ``associate``: the floor) or a password (the
  associate's configured role, e.g. ``manager``) and sets the session cookie (``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` over HTTPS). It answers with the session's CSRF token, which
  the page sends as ``X-Callbell-CSRF`` on every request that changes something. ``GET`` tells a
  page how to sign in and, with a live cookie, who it is and its CSRF token again (after a
  reload). ``DELETE`` signs out.

Wrong PINs and passwords are counted per associate and per client address; past the limits,
sign-ins are refused for a while (429), even with the right secret.
"""
from __future__ import annotations

import hmac
import threading

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from callbell.protocol import ID_PATTERN
from hub.api.deps import HubContext, authenticator, hub, principal
from hub.api.errors import ApiError
from hub.auth import SESSION_COOKIE, SESSION_TTL_S, check_password

router = APIRouter(prefix="/api/v1", tags=["session"])

#: Wrong PINs or passwords in a row for one associate before sign-ins for them are refused for
#: a while. A 4-digit PIN falls to 10 000 guesses; with this, a guesser gets 5 per LOCKOUT_S.
MAX_FAILURES = 5

#: Seconds sign-ins for an associate are refused after MAX_FAILURES wrong secrets. Short, so an
#: associate who mistyped is not locked out of their shift.
LOCKOUT_S = 30.0

#: Wrong secrets from one client address (for any associates) before that address may not
#: sign in for ADDRESS_LOCKOUT_S. Stops one phone trying a few PINs for everyone; generous,
#: because a shared tablet sees every associate's typos. Behind a reverse proxy every client
#: has the proxy's address: raise it there, or rate-limit in the proxy.
ADDRESS_MAX_FAILURES = 20
#: Seconds an address is refused after ADDRESS_MAX_FAILURES.
ADDRESS_LOCKOUT_S = 300.0

DEMO_NOTE = ("Demo mode: authentication is off, so sign-in only says who you are and anyone on the "
             "network can use the API. Turn demo off for real sessions (docs/security.md).")
SECURE_NOTE = "Signed in: a session cookie for this browser, ended by signing out or after a shift."


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    associate: str = Field(pattern=ID_PATTERN.pattern, description="Who is signing in (an associate id)")
    pin: str | None = Field(None, max_length=16, description="Their PIN: signs in to the floor (role associate)")
    password: str | None = Field(None, max_length=200,
                                 description="Their password: signs in with their configured role")


class _Failures:
    """Wrong-secret counts per key ("associate:ana", "address:10.0.0.7"), in memory: a hub
    restart forgets them. Times are the hub clock's monotonic seconds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by: dict[str, tuple[int, float]] = {}

    def locked(self, who: str, now: float, limit: int = MAX_FAILURES, lockout_s: float = LOCKOUT_S) -> float:
        """Seconds ``who`` must still wait (0: may try)."""
        with self._lock:
            count, at = self._by.get(who, (0, 0.0))
            return max(0.0, at + lockout_s - now) if count >= limit else 0.0

    def fail(self, who: str, now: float, limit: int = MAX_FAILURES, lockout_s: float = LOCKOUT_S) -> None:
        with self._lock:
            count, at = self._by.get(who, (0, 0.0))
            if count >= limit and now - at >= lockout_s:
                count = 0
            self._by[who] = (count + 1, now)

    def clear(self, who: str) -> None:
        with self._lock:
            self._by.pop(who, None)


_failures = _Failures()


def _person(a) -> dict:
    return {"id": a.id, "name": a.name or a.id, "role": a.role, "zone": a.zone}


@router.get("/session", summary="How to sign in, and who this browser is")
def sign_in_options(request: Request, h: HubContext = Depends(hub)):
    """Who can sign in and with what (never a PIN or a hash); with a live session cookie, who
    this is and the session's CSRF token."""
    c = h.config
    demo = c.http.demo
    if demo:
        people = [a for a in c.associates if a.pin or not c.pins_required]
    else:
        people = [a for a in c.associates if a.pin or a.password_hash]
    who = None if demo else principal(request)
    if who is not None and who.kind != "session":
        who = None  # a token's client has no page session
    names = {a.id: a.name or a.id for a in c.associates}
    return {"pin_required": c.pins_required or not demo, "demo": demo, "secure": not demo,
            "note": DEMO_NOTE if demo else SECURE_NOTE,
            # Without authentication, only what picking yourself needs: no roles, no zones.
            "associates": [{**(_person(a) if demo else {"id": a.id, "name": a.name or a.id}),
                            "pin": bool(a.pin), "password": bool(a.password_hash)} for a in people],
            "signed_in": {**who.as_dict(), "name": names.get(who.associate, who.associate)} if who else None,
            "csrf": who.csrf if who else None}


def _check(h: HubContext, person, body: SessionBody, address: str) -> str:
    """The role ``body``'s secret signs ``person`` in with; raises (and counts) if wrong."""
    now = h.clock.monotonic()
    for key, limit, lockout in ((f"associate:{person.id}", MAX_FAILURES, LOCKOUT_S),
                                (f"address:{address}", ADDRESS_MAX_FAILURES, ADDRESS_LOCKOUT_S)):
        wait = _failures.locked(key, now, limit, lockout)
        if wait:
            what = person.id if key.startswith("associate") else "this address"
            raise ApiError("locked", f"too many wrong PINs or passwords for {what}: try again in {wait:.0f} s", 429)

    def wrong(code: str, message: str):
        _failures.fail(f"associate:{person.id}", now)
        _failures.fail(f"address:{address}", now, ADDRESS_MAX_FAILURES, ADDRESS_LOCKOUT_S)
        return ApiError(code, message, 401)

    if body.password is not None and not h.config.http.demo:
        if not person.password_hash or not check_password(body.password, person.password_hash):
            raise wrong("wrong_password", "wrong name or password")
        role = person.role
    elif h.config.pins_required or not h.config.http.demo:
        if not person.pin:
            raise ApiError("no_pin", f"{person.id} has no PIN configured: ask the manager", 403)
        if not hmac.compare_digest((body.pin or "").encode(), person.pin.encode()):
            raise wrong("wrong_pin", "wrong PIN")
        role = "associate"  # a short PIN opens the floor only, whatever the person's role
    else:
        role = person.role  # demo without PINs: anyone picks themselves
    _failures.clear(f"associate:{person.id}")
    return role


@router.post("/session", summary="Sign in")
def sign_in(body: SessionBody, request: Request, response: Response, h: HubContext = Depends(hub)):
    c = h.config
    person = next((a for a in c.associates if a.id == body.associate), None)
    if person is None:
        raise ApiError("unknown_associate", f"unknown associate {body.associate!r}")
    role = _check(h, person, body, request.client.host if request.client else "unknown")
    if c.http.demo:
        return {"associate": _person(person), "role": role, "pin_checked": c.pins_required, "secure": False,
                "note": DEMO_NOTE, "csrf": None}
    session_id, who = authenticator(request).start_session(person.id, role)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(SESSION_TTL_S), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return {"associate": _person(person), "role": role, "pin_checked": body.password is None, "secure": True,
            "note": SECURE_NOTE, "csrf": who.csrf, "expires_at": who.expires_at}


@router.delete("/session", summary="Sign out", status_code=204, response_class=Response)
def sign_out(request: Request):
    """Ends this browser's session (if any) on the hub and clears its cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        authenticator(request).end_session(session_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response
