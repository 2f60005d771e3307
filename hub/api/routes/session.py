"""Phone sign-in: ``POST /api/v1/session {"associate", "pin"}``.

**Not real security yet.** This checks a short PIN from ``store.toml`` and tells the phone page
who it is; it issues no token and no cookie, and every other endpoint stays open to anyone on
the network. Issue 7 adds roles, tokens and session cookies: it will make this route set the
cookie, and the page already goes through it, so nothing else on the page has to change.

- No associate has a ``pin`` (the demo): anyone picks themselves; ``pin`` is ignored.
- Some have: every sign-in needs the associate's own PIN; an associate without one cannot
  sign in on a phone.
"""
from __future__ import annotations

import hmac
import threading
import time

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from callbell.protocol import ID_PATTERN
from hub.api.deps import HubContext, hub
from hub.api.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["session"])

#: Wrong PINs in a row for one associate before sign-ins for them are refused for a while.
#: A 4-digit PIN falls to 10 000 guesses; this slows a casual guesser, nothing more.
MAX_FAILURES = 5

#: Seconds sign-ins for an associate are refused after MAX_FAILURES wrong PINs. Short, so an
#: associate who mistyped is not locked out of their shift.
LOCKOUT_S = 30.0

NOT_SECURE = ("Sign-in checks a short PIN but issues no token yet: anyone on the store network "
              "can still use the API. Roles and real sessions come with issue 7.")


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    associate: str = Field(pattern=ID_PATTERN.pattern, description="Who is signing in (an associate id)")
    pin: str | None = Field(None, max_length=16, description="Their PIN, when the store configures PINs")


class _Failures:
    """Wrong-PIN counts per associate (in memory: a hub restart forgets them)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by: dict[str, tuple[int, float]] = {}

    def locked(self, who: str, now: float) -> float:
        with self._lock:
            count, at = self._by.get(who, (0, 0.0))
            return max(0.0, at + LOCKOUT_S - now) if count >= MAX_FAILURES else 0.0

    def fail(self, who: str, now: float) -> None:
        with self._lock:
            count, at = self._by.get(who, (0, 0.0))
            if count >= MAX_FAILURES and now - at >= LOCKOUT_S:
                count = 0
            self._by[who] = (count + 1, now)

    def clear(self, who: str) -> None:
        with self._lock:
            self._by.pop(who, None)


_failures = _Failures()


def _person(a) -> dict:
    return {"id": a.id, "name": a.name or a.id, "role": a.role, "zone": a.zone}


@router.get("/session", summary="How the phone page signs in")
def sign_in_options(h: HubContext = Depends(hub)):
    """Whether a PIN is needed, and who can sign in (no PINs are ever sent)."""
    c = h.config
    people = [a for a in c.associates if a.pin or not c.pins_required]
    return {"pin_required": c.pins_required, "demo": c.http.demo, "secure": False, "note": NOT_SECURE,
            "associates": [_person(a) for a in people]}


@router.post("/session", summary="Sign in on the phone page")
def sign_in(body: SessionBody, h: HubContext = Depends(hub)):
    c = h.config
    person = next((a for a in c.associates if a.id == body.associate), None)
    if person is None:
        raise ApiError("unknown_associate", f"unknown associate {body.associate!r}")
    if c.pins_required:
        now = time.monotonic()
        wait = _failures.locked(person.id, now)
        if wait:
            raise ApiError("locked", f"too many wrong PINs for {person.id}: try again in {wait:.0f} s", 429)
        if not person.pin:
            raise ApiError("no_pin", f"{person.id} has no PIN configured: ask the manager", 403)
        if not hmac.compare_digest((body.pin or "").encode(), person.pin.encode()):
            _failures.fail(person.id, now)
            raise ApiError("wrong_pin", "wrong PIN", 401)
        _failures.clear(person.id)
    return {"associate": _person(person), "pin_checked": c.pins_required, "secure": False, "note": NOT_SECURE}
