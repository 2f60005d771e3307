"""``POST /api/v1/display/session``: a floor screen signs in with a ``display`` token.

The screen on the wall (the kiosk page, ``/floor``) reads the calls, the associates and the
stream and acts on nothing, so it takes no person's PIN and no person gets its credit. Whoever
installs it makes a token once (``callbell token create --role display --name floor-screen``)
and types it into the screen; the hub answers with a session cookie that lasts
DISPLAY_SESSION_TTL_S (a browser's event stream cannot send an ``Authorization`` header, so
the token itself cannot do). Revoking the token ends the screen's session at its next check.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import HubContext, authenticator, hub
from hub.api.errors import ApiError, error_responses
from hub.auth import DISPLAY_SESSION_TTL_S, SESSION_COOKIE

router = APIRouter(prefix="/api/v1", tags=["session"])


class DisplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=8, max_length=200, description="A token of role display (callbell token create)")


@router.post("/display/session", summary="A floor screen signs in with its display token",
             responses=error_responses(400, 401, 403, 413, 422))
def display_sign_in(body: DisplayBody, request: Request, response: Response, h: HubContext = Depends(hub)):
    if h.config.http.demo:
        return {"role": "admin", "demo": True, "name": "demo"}
    auth = authenticator(request)
    found = auth.token(body.token.strip())
    if found is None:
        raise ApiError("unauthorized", "unknown or revoked token")
    if found.role != "display":
        raise ApiError("forbidden", f"token {found.name!r} has role {found.role}: a floor screen takes a token "
                                    "of role display (callbell token create --role display)")
    session_id, who = auth.start_session(found.name, "display", DISPLAY_SESSION_TTL_S)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(DISPLAY_SESSION_TTL_S), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return {"role": "display", "name": found.name, "demo": False, "csrf": who.csrf, "expires_at": who.expires_at}
