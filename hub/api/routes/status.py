"""Health of the hub and its store layout (rooms, zones, associates) for the pages.
Health and devices are readable by a ``device`` token (monitoring); the layout needs a
signed-in associate; the record of rejected input is for admins (it holds raw excerpts)."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends

from hub.api.deps import HubContext, allow, hub
from hub.domain.associates import PING_EVERY_FRACTION
from hub.domain.troubles import DEGRADING
from hub.stream import HEARTBEAT_S
from hub.views import iso

router = APIRouter(prefix="/api/v1", tags=["status"])


@router.get("/health", dependencies=[Depends(allow("device"))])
def health(h: HubContext = Depends(hub)):
    broker, db = h.broker_connected(), h.reader.ping() and h.dispatcher.healthy
    troubles = h.dispatcher.open_troubles()
    # The hub cannot do its work while one of these is open (docs/hub.md, "Troubles").
    failing = any(t["kind"] in DEGRADING for t in troubles)
    return {"status": "ok" if broker and db and not failing else "degraded", "broker": broker, "db": db,
            "backlog": h.dispatcher.backlog, "stream_clients": h.stream.clients, "troubles": len(troubles)}


@router.get("/store", dependencies=[Depends(allow("display"))])
def store(h: HubContext = Depends(hub)):
    c = h.config
    return {
        "id": c.store.id, "name": c.store.name or c.store.id, "timezone": c.store.timezone,
        "standard_s": c.store.standard_s, "target_share": c.store.target_share,
        "demo": c.http.demo,
        "zones": [z.model_dump() for z in c.zones],
        "rooms": [r.model_dump() for r in c.rooms],
        "associates": [{"id": a.id, "name": a.name or a.id, "zone": a.zone, "role": a.role}
                       for a in c.associates],
        "waypoints": [w.model_dump() for w in c.waypoints],
        "walkways": [w.model_dump() for w in c.walkways],
        "escalation": {"steps": [s.as_dict() for s in c.ladder.steps], "reack_s": c.ladder.reack_s},
        "alerts": alert_settings(c),
    }


def alert_settings(c) -> dict:
    """What the pages need to ring, confirm and stay in touch (docs/dashboard.md)."""
    a = c.alerts
    return {"ring_repeat_s": a.ring_repeat_s, "receipt_s": a.receipt_s, "presence_s": a.presence_s,
            "ping_every_s": round(a.presence_s * PING_EVERY_FRACTION, 3), "heartbeat_s": HEARTBEAT_S,
            "web_push": a.web_push}


@router.get("/devices", dependencies=[Depends(allow("device"))])
def devices(h: HubContext = Depends(hub)):
    tz = h.config.tz
    return [{"id": d["id"], "status": d["status"], "status_at": iso(d["status_at"], tz),
             "health": json.loads(d["health"]) if d["health"] else None,
             "health_at": iso(d["health_at"], tz)} for d in h.reader.devices()]


@router.get("/rejected", dependencies=[Depends(allow("admin"))])
def rejected(h: HubContext = Depends(hub), limit: int = 100):
    tz = h.config.tz
    return [{**r, "at": iso(r["at"], tz)} for r in h.reader.rejected(min(max(limit, 1), 1000))]
