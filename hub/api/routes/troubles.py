"""Troubles: faults of the system itself (hub.domain.troubles) — list, acknowledge; and
retiring a device that is no longer expected."""
from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from callbell.protocol import ID_PATTERN
from hub.api.deps import HubContext, acting_as, allow, hub
from hub.api.errors import ApiError
from hub.auth import Principal
from hub.domain.troubles import KINDS
from hub.views import trouble_object

#: Seconds in a day, for [troubles] history_days.
DAY_S = 86400

# Reading troubles is for a floor screen too; acknowledging asks for an associate itself.
router = APIRouter(prefix="/api/v1", tags=["troubles"], dependencies=[Depends(allow("display"))])


class Alerted(BaseModel):
    associate: str
    at: str


class TroubleObject(BaseModel):
    """A trouble (docs/hub.md, "Troubles"). Times are ISO 8601 with the store's zone; ``duration_s``
    is set once it is cleared; ``text`` says what is wrong in one sentence."""
    model_config = ConfigDict(extra="allow")
    id: str = Field(description='"t-000001"')
    kind: Literal[KINDS]  # type: ignore[valid-type]
    key: str = Field(description="What it is about: a device id, device/room/button, db, broker")
    device: str | None
    room: str | None
    detail: dict
    since: str
    cleared_at: str | None
    duration_s: float | None
    alerted: list[Alerted] = Field(description="Who was alerted, when: the latest 20")
    alerts: int = Field(description="How many alerts in all")
    acknowledged_by: str | None
    acknowledged_at: str | None
    text: str


class TroubleList(BaseModel):
    troubles: list[TroubleObject]


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    associate: str = Field(pattern=ID_PATTERN.pattern, description="Who takes the trouble on (an associate id)")
    source: Literal["phone", "dashboard", "api"] = Field("api", description="Where the action came from")


class RetiredDevice(BaseModel):
    id: str
    status: Literal["retired"]


@router.get("/troubles", response_model=TroubleList)
def list_troubles(h: HubContext = Depends(hub),
                  all: bool = Query(False, description="Also the troubles cleared within [troubles] history_days")):
    """The open troubles, oldest first (as the hub holds them, stored or not); with ``all=1``
    also those cleared lately (from the event log)."""
    open_ = h.dispatcher.open_troubles()
    if not all:
        return {"troubles": open_}
    since = h.clock.time() - h.config.troubles.history_days * DAY_S
    tz, ids = h.config.tz, {t["id"] for t in open_}
    cleared = [trouble_object(t, tz) for t in h.reader.troubles_since(since) if not t.open and t.id not in ids]
    return {"troubles": sorted(open_ + cleared, key=lambda t: (t["since_ts"], t["id"]))}


@router.post("/troubles/{trouble}/acknowledge", response_model=TroubleObject, summary="I take this trouble on")
async def acknowledge(body: AcknowledgeBody, trouble: str = Path(pattern=r"^t-[0-9]{1,12}$"),
                      h: HubContext = Depends(hub), who: Principal = Depends(allow("associate"))):
    """Stops the trouble's alerting; it stays open (and shown) until its fault clears."""
    acting_as(who, body.associate)
    return await asyncio.wrap_future(h.dispatcher.acknowledge_trouble(trouble, body.associate, body.source))


@router.post("/devices/{device}/retire", response_model=RetiredDevice, summary="Take a device out of service")
async def retire(device: str = Path(pattern=ID_PATTERN.pattern), h: HubContext = Depends(hub),
                 who: Principal = Depends(allow("manager"))):
    """The device is no longer expected: its troubles clear, it leaves the dashboard's list.
    Stored as a ``device_retired`` event. Should it be heard again it is expected again
    (a ``device_unretired`` event)."""
    result = await asyncio.wrap_future(h.dispatcher.retire_device(device, who.associate or who.name))
    if result is None:
        raise ApiError("not_found", f"unknown device {device!r}")
    return result
