"""Associates: who is on the floor, their state (available, busy, on break, off shift) and
where they are; an associate sets their state and zone from the phone page or through here."""
from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from callbell.protocol import ID_PATTERN
from hub.api.deps import HubContext, acting_as, allow, hub
from hub.auth import Principal
from hub.api.errors import ApiError, error_responses
from hub.domain.associates import Roster
from hub.views import associate_object

# Reading who is where is for a floor screen too; every change asks for an associate itself.
router = APIRouter(prefix="/api/v1", tags=["associates"], dependencies=[Depends(allow("display"))],
                   responses=error_responses(401, 403))
#: What a change to an associate may be refused with: an unknown zone, no such associate, a
#: body over the cap or not as described, a change not stored.
CHANGE_ERRORS = error_responses(400, 404, 413, 422, 503)


class StateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["available", "break", "off"] = Field(
        description="available: on the floor, can be alerted; break; off: off shift. "
                    "busy is not set but derived: it means having an acknowledged or answered call")
    source: Literal["phone", "dashboard", "api"] = Field("api", description="Where the change came from")


class ZoneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zone: str = Field(pattern=ID_PATTERN.pattern, description="The zone they work in now")
    source: Literal["phone", "dashboard", "api"] = Field("api", description="Where the change came from")


class Position(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: Literal["feed", "presence", "zone", "home"]
    room: str | None = None
    zone: str | None = None
    x: float | None = None
    y: float | None = None
    at: str | None
    age_s: float | None


class AssociateObject(BaseModel):
    """An associate. ``state`` is what counts for alerting (busy while they have a call);
    ``declared`` what they last set; ``position`` the best one known (see docs/escalation.md)."""
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    role: Literal["associate", "manager"]
    home_zone: str | None
    state: Literal["available", "busy", "break", "off", "unreachable"]
    declared: Literal["available", "break", "off"]
    state_at: str | None
    call: str | None
    position: Position | None
    idle_since: str | None
    reachable: bool = Field(description="False when their phone page fell silent (docs/escalation.md, reach)")
    heard_at: str | None = Field(description="When their phone page was last heard this shift (None: not tracked)")
    push: bool = Field(description="They have a Web Push subscription")


def _known(h: HubContext, associate: str) -> None:
    if associate not in h.dispatcher.associates():
        raise ApiError("not_found", f"no associate {associate!r}")


@router.get("/associates", response_model=list[AssociateObject])
def list_associates(h: HubContext = Depends(hub)):
    now = h.clock.time()
    return [associate_object(v, h.config.tz, now) for v in h.dispatcher.associates().values()]


@router.get("/associates/{associate}", response_model=AssociateObject, responses=error_responses(404, 422))
def get_associate(associate: str, h: HubContext = Depends(hub)):
    _known(h, associate)
    return associate_object(h.dispatcher.associates()[associate], h.config.tz, h.clock.time())


async def _change(h: HubContext, associate: str, action) -> dict:
    _known(h, associate)
    view = await asyncio.wrap_future(h.dispatcher.associate_command(associate, action))
    return associate_object(view, h.config.tz, h.clock.time())


@router.post("/associates/{associate}/state", response_model=AssociateObject, summary="Available, break or off",
             responses=CHANGE_ERRORS)
async def set_state(associate: str, body: StateBody, h: HubContext = Depends(hub),
                    who: Principal = Depends(allow("associate"))):
    acting_as(who, associate)
    def action(roster: Roster, now: float):
        return roster.set_state(associate, body.state, now, body.source)
    return await _change(h, associate, action)


class HeardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["phone"] = Field("phone", description="Only a phone page pings")


@router.post("/associates/{associate}/heard", response_model=AssociateObject,
             summary="My phone page is here (a ping)", responses=CHANGE_ERRORS)
async def heard(associate: str, body: HeardBody, h: HubContext = Depends(hub),
                who: Principal = Depends(allow("associate"))):
    """The phone page pings every quarter of ``[alerts] presence_s``: an associate whose page
    has pinged this shift and then falls silent for ``presence_s`` is ``unreachable``."""
    acting_as(who, associate)

    def action(roster: Roster, now: float):
        return roster.heard(associate, now)
    return await _change(h, associate, action)


@router.post("/associates/{associate}/zone", response_model=AssociateObject, summary="The zone I work in now",
             responses=CHANGE_ERRORS)
async def set_zone(associate: str, body: ZoneBody, h: HubContext = Depends(hub),
                   who: Principal = Depends(allow("associate"))):
    acting_as(who, associate)
    def action(roster: Roster, now: float):
        return roster.choose_zone(associate, body.zone, now, body.source)
    return await _change(h, associate, action)
