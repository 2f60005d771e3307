"""Web Push (hub/push.py): the hub's public key, the phones' subscriptions, and what a phone's
service worker posts back from a push — its delivery receipt and a tap on "On my way" or
"Not me". Those two carry the subscription's token instead of a session: a locked phone's
service worker has no page, so no session's CSRF token. ntfy's buttons (hub.notify) post the
same tap with an alert token and its associate: ntfy's app has no session either."""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from callbell.protocol import ID_PATTERN
from hub.api.deps import HubContext, acting_as, allow, hub
from hub.api.errors import ApiError, error_responses
from hub.api.params import BodyTime, parse_time
from hub.api.routes.calls import receipt_for
from hub.api.routes.troubles import TroubleObject
from hub.auth import Principal, digest
from hub.domain.call import DomainError, Floor
from hub.push import WebPush, endpoint_allowed
from hub.push import trouble_token
from hub.views import call_object

router = APIRouter(prefix="/api/v1/push", tags=["push"], responses=error_responses(401))

#: Longest endpoint URL accepted (FCM's are about 200 characters, Apple's about 250).
MAX_ENDPOINT = 1000


def _push(request: Request) -> WebPush:
    push = getattr(request.app.state, "push", None)
    if push is None:
        raise ApiError("not_found", "Web Push is off on this hub ([alerts] web_push = false)")
    return push


def _b64url(value: str, size: int, name: str, first: int | None = None) -> None:
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("bad_request", f"keys.{name} must be base64url") from None
    if len(raw) != size or (first is not None and raw[0] != first):
        raise ApiError("bad_request", f"keys.{name} must encode {size} bytes"
                                      + (" (an uncompressed P-256 point)" if first else ""))


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p256dh: str = Field(max_length=100, description="The phone's P-256 public key, base64url")
    auth: str = Field(max_length=40, description="The phone's 16-byte auth secret, base64url")


class SubscriptionBody(BaseModel):
    """What ``PushSubscription.toJSON()`` gives, and whose alerts it is for."""
    model_config = ConfigDict(extra="forbid")
    associate: str = Field(pattern=ID_PATTERN.pattern, description="Whose alerts (an associate id)")
    endpoint: str = Field(max_length=MAX_ENDPOINT, description="The push service's URL for this phone")
    expirationTime: float | None = Field(None, description="Ignored (browsers send null)")
    keys: SubscriptionKeys


class PushReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=20, max_length=100, description="The token the push carried")
    call: str = Field(pattern=ID_PATTERN.pattern)
    alerted_at: BodyTime = Field(description="The alert's time as the push gave it")
    stage: Literal["delivered", "shown"]


class PushActBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=20, max_length=100, description="The token the push carried")
    call: str = Field(pattern=ID_PATTERN.pattern)
    action: Literal["acknowledge", "decline"] = Field(description="On my way, or Not me")
    associate: str | None = Field(None, pattern=ID_PATTERN.pattern,
                                  description="With an alert token (ntfy's buttons): whose alert it is. "
                                              "Without: the token is a Web Push subscription's")


@router.get("/key", summary="The hub's VAPID public key (applicationServerKey)",
            dependencies=[Depends(allow("associate"))], responses=error_responses(403))
def public_key(request: Request):
    push = getattr(request.app.state, "push", None)
    return {"enabled": push is not None, "public_key": push.keys.public_key if push else None}


@router.post("/subscriptions", status_code=201, summary="Alerts on this phone by Web Push",
             responses=error_responses(400, 403, 404, 413, 422))
def subscribe(body: SubscriptionBody, request: Request, h: HubContext = Depends(hub),
              who: Principal = Depends(allow("associate"))):
    acting_as(who, body.associate)
    push = _push(request)
    if body.associate not in {a.id for a in h.config.associates}:
        raise ApiError("unknown_associate", f"unknown associate {body.associate!r}")
    if not endpoint_allowed(body.endpoint, push.services):
        raise ApiError("bad_request", "endpoint is not at a push service this hub allows "
                                      f"({', '.join(push.services)}; [alerts] push_services)")
    _b64url(body.keys.p256dh, 65, "p256dh", first=4)
    _b64url(body.keys.auth, 16, "auth")
    at = h.clock.time()
    token = push.keys.token_for(body.endpoint, body.associate, at)
    push.subscriptions.add(body.endpoint, body.associate, body.keys.p256dh, body.keys.auth, digest(token), at)
    push.subscribed(body.associate)
    return {"associate": body.associate, "endpoint": body.endpoint}


@router.delete("/subscriptions", status_code=204, response_class=Response, summary="No more Web Push to this phone",
               responses=error_responses(403, 404, 422))
def unsubscribe(request: Request, endpoint: str = Query(max_length=MAX_ENDPOINT),
                associate: str = Query(pattern=ID_PATTERN.pattern),
                who: Principal = Depends(allow("associate"))):
    acting_as(who, associate)
    push = _push(request)
    if push.subscriptions.remove(endpoint, associate):
        push.unsubscribed(associate)
    return Response(status_code=204)


def _subscription(request: Request, token: str) -> dict:
    sub = _push(request).subscriptions.by_token(digest(token))
    if sub is None:
        raise ApiError("unauthorized", "unknown push token (the subscription was removed)")
    return sub


@router.post("/receipt", summary="A phone's service worker has the pushed alert / showed it",
             responses=error_responses(400, 404, 409, 413, 422, 503))
async def push_receipt(body: PushReceiptBody, request: Request, h: HubContext = Depends(hub)):
    sub = await asyncio.to_thread(_subscription, request, body.token)
    at = parse_time(str(body.alerted_at)[:40], "alerted_at", h.config.tz)
    return await receipt_for(h, body.call, sub["associate"], at, body.stage, "push")


def _alert_token_holder(request: Request, h: HubContext, body: PushActBody) -> str:
    """The associate an alert token (hub.push.PushKeys.alert_token) was made for, if it was
    made for this call and associate; else unauthorized."""
    keys = getattr(request.app.state, "alert_keys", None)
    row = h.reader.call(body.call) if keys is not None else None
    if row is None or not keys.alert_token_matches(body.token, body.call, row["pressed_at"], body.associate):
        raise ApiError("unauthorized", "the alert token does not match this call and associate")
    return body.associate


@router.post("/act", summary="On my way / Not me, tapped on a pushed notification (Web Push or ntfy)",
             responses=error_responses(400, 401, 404, 409, 413, 422, 503))
async def push_act(body: PushActBody, request: Request, h: HubContext = Depends(hub)):
    if body.associate is not None:
        associate = await asyncio.to_thread(_alert_token_holder, request, h, body)
    else:
        associate = (await asyncio.to_thread(_subscription, request, body.token))["associate"]

    def action(floor: Floor, now: float):
        return getattr(floor, body.action)(body.call, associate, now, "phone")
    try:
        row = await asyncio.wrap_future(h.dispatcher.command(action, body.call))
    except DomainError as e:
        if e.code == "not_found" and h.reader.call(body.call) is not None:
            raise ApiError("conflict", f"call {body.call} was closed meanwhile") from None
        raise
    return call_object(row if row is not None else h.reader.call(body.call), h.config.tz)


class PushAcknowledgeBody(BaseModel):
    """A tap on "Acknowledge" of a pushed trouble: from a service worker with its subscription's
    token, or from ntfy's button with a trouble token (hub.push.trouble_token) and its associate."""
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=20, max_length=100, description="The token the push or the ntfy button carried")
    trouble: str = Field(pattern=r"^t-[0-9]{1,12}$", description="The trouble's id")
    associate: str | None = Field(None, pattern=ID_PATTERN.pattern,
                                  description="With a trouble token (ntfy's button): whose it is. "
                                              "Without: the token is a Web Push subscription's")


def _trouble_token_holder(request: Request, h: HubContext, body: PushAcknowledgeBody) -> str:
    """The associate a trouble token was made for, if it was made for this open trouble and
    associate; else not_found (no such open trouble) or unauthorized."""
    trouble = next((t for t in h.dispatcher.open_troubles() if t["id"] == body.trouble), None)
    if trouble is None:
        raise ApiError("not_found", f"no open trouble {body.trouble!r} (cleared meanwhile?)")
    keys = getattr(request.app.state, "alert_keys", None)
    expected = trouble_token(keys, body.trouble, trouble["since_ts"], body.associate) if keys is not None else ""
    if not expected or not hmac.compare_digest(body.token.encode(), expected.encode()):
        raise ApiError("unauthorized", "the token does not match this trouble and associate")
    return body.associate


@router.post("/acknowledge", summary="Acknowledge, tapped on a pushed trouble (Web Push or ntfy)",
             response_model=TroubleObject,
             responses=error_responses(400, 401, 404, 409, 413, 422, 503))
async def push_acknowledge(body: PushAcknowledgeBody, request: Request, h: HubContext = Depends(hub)):
    """The trouble object; a trouble cleared meanwhile is 404, one someone else took 409."""
    if body.associate is None:
        associate = (await asyncio.to_thread(_subscription, request, body.token))["associate"]
    else:
        associate = _trouble_token_holder(request, h, body)
    return await asyncio.wrap_future(h.dispatcher.acknowledge_trouble(body.trouble, associate, "phone"))
