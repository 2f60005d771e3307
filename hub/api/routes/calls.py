"""Calls: list, read, and the associate's actions (on my way, not me, arrived, done)."""
from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from callbell.protocol import ID_PATTERN
from hub.api.deps import HubContext, acting_as, allow, hub
from hub.auth import Principal
from hub.api.errors import ApiError, error_responses
from hub.api.params import BodyTime, parse_time, time_query
from hub.domain.call import ACTIVE, DomainError, Floor
from hub.views import call_object

# Reading calls is for a floor screen too; every action asks for an associate itself.
router = APIRouter(prefix="/api/v1", tags=["calls"], dependencies=[Depends(allow("display"))],
                   responses=error_responses(401, 403, 422))
#: What an action on a call may be refused with, beyond a sign-in: an unknown associate or
#: time, no such call, a call already closed, a body over the cap, a change not stored.
ACTION_ERRORS = error_responses(400, 404, 409, 413, 503)

SOURCES = ("phone", "dashboard", "api")


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    associate: str = Field(pattern=ID_PATTERN.pattern, description="Who is acting (an associate id)")
    source: Literal["phone", "dashboard", "api"] = Field("api", description="Where the action came from")


class CallObject(BaseModel):
    """A call (docs/spec/PROTOCOL.md). Times are ISO 8601 with the store's zone; durations in seconds."""
    model_config = ConfigDict(extra="allow")
    id: str
    room: str
    zone: str | None
    reason: str
    status: Literal["open", "acknowledged", "answered", "done", "cancelled", "missed"]
    pressed_at: str
    acknowledged_at: str | None
    answered_at: str | None
    done_at: str | None
    acknowledged_by: str | None
    answered_by: str | None
    response_s: float | None
    reminders: int
    alerted: list[dict]
    overdue: bool


@router.get("/calls", response_model=list[CallObject], responses=error_responses(400))
def list_calls(
    h: HubContext = Depends(hub),
    status: Literal["open", "closed", "all"] = Query("all", description="open: not yet done, cancelled or missed"),
    since: str | None = time_query(description="Pressed at or after (ISO 8601 or epoch seconds)"),
    until: str | None = time_query(description="Pressed before (ISO 8601 or epoch seconds)"),
    room: str | None = Query(None, pattern=ID_PATTERN.pattern),
    limit: int = Query(1000, ge=1, le=100_000),
):
    tz = h.config.tz
    rows = h.reader.calls(status, parse_time(since, "since", tz), parse_time(until, "until", tz), room, limit)
    return [call_object(r, tz) for r in rows]


@router.get("/calls/{call}", response_model=CallObject, responses=error_responses(404))
def get_call(call: str, h: HubContext = Depends(hub)):
    row = h.reader.call(call)
    if row is None:
        raise ApiError("not_found", f"no call {call!r}")
    return call_object(row, h.config.tz)


async def _act(h: HubContext, call: str, body: ActionBody, verb: str, who: Principal) -> dict:
    acting_as(who, body.associate)
    if body.associate not in {a.id for a in h.config.associates}:
        raise ApiError("unknown_associate", f"unknown associate {body.associate!r}")
    stored = h.reader.call(call)
    if stored is None:
        raise ApiError("not_found", f"no call {call!r}")
    if stored["status"] not in ACTIVE:
        raise ApiError("conflict", f"call {call} is already {stored['status']}")

    def action(floor: Floor, now: float):
        return getattr(floor, verb)(call, body.associate, now, body.source)

    try:
        row = await asyncio.wrap_future(h.dispatcher.command(action, call))
    except DomainError as e:
        if e.code == "not_found":  # closed between our read and the dispatcher's turn
            raise ApiError("conflict", f"call {call} was closed meanwhile") from None
        raise
    if row is None:  # no change (a repeat of the same action)
        row = h.reader.call(call)
    return call_object(row, h.config.tz)


class ReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    associate: str = Field(pattern=ID_PATTERN.pattern, description="Whose alert it is (an associate id)")
    alerted_at: BodyTime = Field(description="The alert's ``at``, as the call object gives it "
                            "(ISO 8601, or seconds since the epoch)")
    stage: Literal["delivered", "shown"] = Field(
        description="delivered: the phone has the alert; shown: it rang (sound, vibration or a notification)")
    via: Literal["page", "notification", "push"] = Field(
        "page", description="What had it: the open page, its system notification, or a Web Push")


async def receipt_for(h: HubContext, call: str, associate: str, alerted_at: float, stage: str,
                      via: str) -> dict:
    """Record a delivery receipt on the dispatcher; the call object afterwards."""
    def action(floor: Floor, now: float):
        return floor.receipt(call, associate, alerted_at, stage, now, "phone", via)
    try:
        row = await asyncio.wrap_future(h.dispatcher.command(action, call))
    except DomainError as e:
        if e.code == "not_found" and h.reader.call(call) is not None:
            raise ApiError("conflict", e.message if "no alert" in e.message else f"call {call} is closed") from None
        raise
    return call_object(row if row is not None else h.reader.call(call), h.config.tz)


@router.post("/calls/{call}/receipt", response_model=CallObject, summary="My phone has the alert / rang",
             responses=ACTION_ERRORS)
async def receipt(call: str, body: ReceiptBody, h: HubContext = Depends(hub),
                  who: Principal = Depends(allow("associate"))):
    """A delivery receipt (docs/dashboard.md): an alert with none within ``[alerts] receipt_s``
    goes on to the next person at once. Repeats change nothing."""
    acting_as(who, body.associate)
    at = parse_time(str(body.alerted_at)[:40], "alerted_at", h.config.tz)
    return await receipt_for(h, call, body.associate, at, body.stage, body.via)


@router.post("/calls/{call}/acknowledge", response_model=CallObject, summary="On my way", responses=ACTION_ERRORS)
async def acknowledge(call: str, body: ActionBody, h: HubContext = Depends(hub),
                      who: Principal = Depends(allow("associate"))):
    return await _act(h, call, body, "acknowledge", who)


@router.post("/calls/{call}/decline", response_model=CallObject, summary="Not me", responses=ACTION_ERRORS)
async def decline(call: str, body: ActionBody, h: HubContext = Depends(hub),
                  who: Principal = Depends(allow("associate"))):
    return await _act(h, call, body, "decline", who)


@router.post("/calls/{call}/answer", response_model=CallObject, summary="Arrived at the room", responses=ACTION_ERRORS)
async def answer(call: str, body: ActionBody, h: HubContext = Depends(hub),
                 who: Principal = Depends(allow("associate"))):
    return await _act(h, call, body, "answer", who)


@router.post("/calls/{call}/done", response_model=CallObject, summary="Finished", responses=ACTION_ERRORS)
async def done(call: str, body: ActionBody, h: HubContext = Depends(hub),
               who: Principal = Depends(allow("associate"))):
    return await _act(h, call, body, "done", who)
