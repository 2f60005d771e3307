"""Sign-in for the pages: ``GET/POST/DELETE /api/v1/session`` (docs/security.md, "Hub web").

- **Demo mode** (``[http] demo = true``): authentication is off. Sign-in only tells the page who
  you are (checking a PIN if the store configures PINs) and issues no session.
- **Otherwise** ``POST`` signs in with a PIN (role ``associate``: the floor) or a password (the
  associate's configured role, e.g. ``manager``) and sets the session cookie (``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` over HTTPS). It answers with the session's CSRF token, which
  the page sends as ``X-Callbell-CSRF`` on every request that changes something. ``GET`` tells a
  page how to sign in and, with a live cookie, who it is and its CSRF token again (after a
  reload). ``DELETE`` signs out.

Wrong PINs and passwords are counted per associate, per kind of secret and per source: the
browser, if it has signed in as that associate before (a ``callbell_browser`` cookie), else
the client's address. Past a few, each further try from that source waits twice as long as the
last (429 with Retry-After), up to a few minutes: a guesser is slowed down, nobody is locked
out. Strangers' wrong tries for an associate, from every address together, are also counted
and slowed down the same way, so many addresses guess no faster than one; the associate's own
known browsers are not held up by them. A try is counted before its secret is checked, so
tries sent in parallel cannot all slip through. See docs/security.md, "Limits".
"""
from __future__ import annotations

import hmac
import math
import secrets
import threading

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from callbell.protocol import ID_PATTERN
from hub.api.deps import HubContext, authenticator, hub, principal
from hub.api.errors import ApiError, error_responses
from hub.auth import SECRET_BYTES, SESSION_COOKIE, SESSION_TTL_S, check_password, digest

router = APIRouter(prefix="/api/v1", tags=["session"])

#: Wrong tries from one source (a known browser, else an address) for one associate and kind
#: of secret (PIN or password) that need no wait: enough for a few typos on a cold phone.
FREE_TRIES = 5
#: Seconds the first try after FREE_TRIES waits; each further wrong try doubles the wait...
BACKOFF_FIRST_S = 2.0
#: ...up to this, seconds. A mistyping associate waits 2, 4, 8 s; a guesser from one address
#: gets about 12 tries an hour once at the cap.
BACKOFF_MAX_S = 300.0

#: Wrong tries for one associate and kind of secret from all unknown sources together that
#: need no wait. Higher than FREE_TRIES: two strangers' typos (a new phone, a borrowed tablet)
#: should not slow each other down.
ACCOUNT_FREE_TRIES = 10
#: Longest wait, seconds, for a try from an unknown source once the associate's strangers'
#: tries are past ACCOUNT_FREE_TRIES: however many addresses guess, together they get 4 tries
#: an hour at the cap (a 4-digit PIN: about 52 days on average). The cost: during such an
#: attack, signing in from a new browser waits as long; a known one does not wait at all.
ACCOUNT_BACKOFF_MAX_S = 900.0

#: Seconds without a wrong try after which a count is forgotten. A day: an attacker who pauses
#: gets back no more free tries than a day's worth.
FORGET_S = 24 * 3600.0

#: Most sources tracked at once (addresses are plentiful to an attacker with IPv6); past it
#: the oldest are forgotten. The per-associate counts of strangers are never forgotten early.
MAX_SOURCES = 10_000

#: Password checks (scrypt: 16 MiB and ~85 ms each, hub/auth.py) run at once at most; the
#: others wait their turn. Without it, parallel guesses from many addresses take a small hub's
#: memory and CPU.
PASSWORD_CHECKS_AT_ONCE = 2

#: The cookie that tells the hub a browser has signed in as someone before (its wrong tries
#: then count apart from strangers'); a random id, stored hashed (``browsers`` table).
BROWSER_COOKIE = "callbell_browser"
#: Its lifetime, seconds: 400 days, the longest Chromium keeps a cookie.
BROWSER_TTL_S = 400 * 86400

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
    """Tries per key ("ana:pin:address:10.0.0.7", "account:ana:pin"), in memory: a hub restart
    forgets them. Times are the hub clock's monotonic seconds. A try is counted when it is
    taken (:meth:`take`), before its secret is checked, and a right one gives it back
    (:meth:`right`)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by: dict[str, list] = {}  # key → [tries counted, time of the last]

    @staticmethod
    def wait_s(count: int, free: int, longest_s: float) -> float:
        """Seconds after the last of ``count`` wrong tries before the next may come."""
        return 0.0 if count < free else min(longest_s, BACKOFF_FIRST_S * 2 ** (count - free))

    def take(self, keys: list[tuple[str, int, float]], now: float) -> float:
        """Count a try on every (key, free tries, longest wait) of ``keys``, or none if any of
        them must still wait: returns 0, or the seconds to wait."""
        with self._lock:
            wait = 0.0
            for key, free, longest_s in keys:
                entry = self._by.get(key)
                if entry is not None and now - entry[1] >= FORGET_S:
                    del self._by[key]
                    entry = None
                if entry is not None:
                    wait = max(wait, entry[1] + self.wait_s(entry[0], free, longest_s) - now)
            if wait > 0:
                return wait
            for key, _, _ in keys:
                entry = self._by.setdefault(key, [0, now])
                entry[0] += 1
                entry[1] = now
            self._forget_oldest()
            return 0.0

    def right(self, source: str, others: list[str]) -> None:
        """A right secret: ``source``'s count is cleared, the try given back on ``others``."""
        with self._lock:
            self._by.pop(source, None)
            for key in others:
                entry = self._by.get(key)
                if entry is not None:
                    entry[0] = max(0, entry[0] - 1)

    def _forget_oldest(self) -> None:
        if len(self._by) <= MAX_SOURCES:
            return
        for key in [k for k in self._by if not k.startswith("account:")][:len(self._by) - MAX_SOURCES]:
            del self._by[key]


_failures = _Failures()
_password_checks = threading.BoundedSemaphore(PASSWORD_CHECKS_AT_ONCE)


def _person(a) -> dict:
    return {"id": a.id, "name": a.name or a.id, "role": a.role, "zone": a.zone}


@router.get("/session", summary="How to sign in, and who this browser is",
            responses=error_responses(401))
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


def _check(h: HubContext, person, body: SessionBody, address: str, browser: str | None = None) -> str:
    """The role ``body``'s secret signs ``person`` in with; raises if wrong, or if the source
    must wait. ``browser``: the hash of a browser cookie known for ``person``, or None."""
    demo = h.config.http.demo
    if body.password is not None and not demo:
        kind = "password"
    elif h.config.pins_required or not demo:
        kind = "pin"
        if not person.pin:
            raise ApiError("no_pin", f"{person.id} has no PIN configured: ask the manager", 403)
    else:
        return person.role  # demo without PINs: anyone picks themselves
    source = f"{person.id}:{kind}:" + (f"browser:{browser[:16]}" if browser else f"address:{address}")
    keys = [(source, FREE_TRIES, BACKOFF_MAX_S)]
    if browser is None:  # a stranger: counted with every other stranger's tries for this person
        keys.append((f"account:{person.id}:{kind}", ACCOUNT_FREE_TRIES, ACCOUNT_BACKOFF_MAX_S))
    wait = _failures.take(keys, h.clock.monotonic())
    if wait:
        seconds = math.ceil(wait)
        raise ApiError("locked", f"too many wrong {'PINs' if kind == 'pin' else 'passwords'} for {person.id}: "
                       f"try again in {seconds} s", 429, headers={"Retry-After": str(seconds)})
    if kind == "password":
        with _password_checks:  # scrypt is slow and large on purpose: a few at a time
            right = bool(person.password_hash) and check_password(body.password, person.password_hash)
        if not right:
            raise ApiError("wrong_password", "wrong name or password", 401)
        role = person.role
    else:
        if not hmac.compare_digest((body.pin or "").encode(), person.pin.encode()):
            raise ApiError("wrong_pin", "wrong PIN", 401)
        role = "associate"  # a short PIN opens the floor only, whatever the person's role
    _failures.right(source, [k for k, _, _ in keys[1:]])
    return role


@router.post("/session", summary="Sign in", responses=error_responses(400, 401, 403, 413, 422, 429))
def sign_in(body: SessionBody, request: Request, response: Response, h: HubContext = Depends(hub)):
    c = h.config
    person = next((a for a in c.associates if a.id == body.associate), None)
    if person is None:
        raise ApiError("unknown_associate", f"unknown associate {body.associate!r}")
    cookie = request.cookies.get(BROWSER_COOKIE) if not c.http.demo else None
    browser = digest(cookie) if cookie and h.reader.known_browser(digest(cookie), person.id) else None
    role = _check(h, person, body, request.client.host if request.client else "unknown", browser)
    if c.http.demo:
        return {"associate": _person(person), "role": role, "pin_checked": c.pins_required, "secure": False,
                "note": DEMO_NOTE, "csrf": None}
    session_id, who = authenticator(request).start_session(person.id, role)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(SESSION_TTL_S), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    if browser is None:  # from now on this browser's wrong tries for them count apart from strangers'
        cookie = cookie if cookie and len(cookie) >= SECRET_BYTES else secrets.token_urlsafe(SECRET_BYTES)
        authenticator(request).credentials.add_browser(digest(cookie), person.id, h.clock.time())
        response.set_cookie(BROWSER_COOKIE, cookie, max_age=BROWSER_TTL_S, path="/api/v1/session", httponly=True,
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
