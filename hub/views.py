"""The call object of the HTTP API, the SSE stream and the ``call/{call}`` MQTT topic
(docs/spec/PROTOCOL.md): one shape, built here from a stored calls row; likewise the trouble
object (hub.domain.troubles). Times are ISO 8601 with the store's zone; durations are seconds."""
from __future__ import annotations

import json
from datetime import datetime, tzinfo

from hub.domain.troubles import Trouble, text

TIME_FIELDS = ("pressed_at", "acknowledged_at", "answered_at", "done_at", "closed_at")


def iso(t: float | None, tz: tzinfo) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz).isoformat(timespec="milliseconds")


def call_object(row: dict, tz: tzinfo) -> dict:
    """A stored calls row → the API's call object."""
    alerted = json.loads(row.get("alerted") or "[]")
    return {
        "id": row["id"],
        "room": row["room"],
        "zone": row["zone"],
        "reason": row["reason"],
        "status": row["status"],
        **{f: iso(row.get(f), tz) for f in TIME_FIELDS},
        "acknowledged_by": row.get("acknowledged_by"),
        "answered_by": row.get("answered_by"),
        "done_by": row.get("done_by"),
        "response_s": row.get("response_s"),
        "wait_ack_s": row.get("wait_ack_s"),
        "handling_s": row.get("handling_s"),
        "reminders": row.get("reminders") or 0,
        "urgency": 1 + (row.get("reminders") or 0),
        # delivered_at / shown_at: when the associate's phone confirmed it had the alert, and
        # that it rang (None until then; hub.domain.call.Floor.receipt).
        "alerted": [{"associate": a["associate"], "at": iso(a["at"], tz), "step": a["step"],
                     "delivered_at": iso(a.get("delivered_at"), tz), "shown_at": iso(a.get("shown_at"), tz)}
                    for a in alerted],
        "declined": json.loads(row.get("declined") or "[]"),
        "overdue": bool(row.get("overdue")),
        "auto_closed": bool(row.get("auto_closed")),
        # Seconds since the epoch too, so a page can run its timer without parsing dates.
        "pressed_ts": row["pressed_at"],
        "reopened_at": iso(row.get("reopened_at"), tz),
    }


def associate_object(view: dict, tz: tzinfo, now: float) -> dict:
    """An associate (hub.domain.associates.Roster.views) → the API's associate object."""
    pos = view.get("position")
    if pos is not None:
        at = pos.get("at")
        pos = {**pos, "at": iso(at, tz), "age_s": None if at is None else round(max(0.0, now - at), 1)}
    return {**view, "state_at": iso(view.get("state_at"), tz), "idle_since": iso(view.get("idle_since"), tz),
            "heard_at": iso(view.get("heard_at"), tz), "position": pos}


#: A trouble object lists at most this many of its alerts, the latest: one nobody acknowledges
#: is alerted again every minute, and its object goes to every page at each round.
TROUBLE_ALERTS_SHOWN = 20


def trouble_object(t: Trouble, tz: tzinfo) -> dict:
    """A trouble → the API's, the SSE stream's and the webhook's trouble object. ``alerted``
    holds the latest TROUBLE_ALERTS_SHOWN alerts; ``alerts`` counts them all."""
    return {
        "id": t.id, "kind": t.kind, "key": t.key, "device": t.device, "room": t.room, "detail": t.detail,
        "since": iso(t.since, tz), "cleared_at": iso(t.cleared_at, tz), "duration_s": t.duration_s,
        "alerted": [{"associate": a["associate"], "at": iso(a["at"], tz)} for a in t.alerted[-TROUBLE_ALERTS_SHOWN:]],
        "alerts": len(t.alerted),
        "acknowledged_by": t.acknowledged_by, "acknowledged_at": iso(t.acknowledged_at, tz),
        "text": text(t),
        # Seconds since the epoch too, so a page can run its timer without parsing dates.
        "since_ts": t.since,
    }


#: Columns of the calls CSV export, in order.
CSV_CALL_COLUMNS = ("id", "room", "zone", "reason", "status", "pressed_at", "acknowledged_at",
                    "answered_at", "done_at", "closed_at", "acknowledged_by", "answered_by",
                    "done_by", "response_s", "wait_ack_s", "handling_s", "reminders", "overdue",
                    "auto_closed")
CSV_EVENT_COLUMNS = ("seq", "at", "recorded_at", "kind", "call", "room", "actor", "source", "detail")


def csv_call(row: dict, tz: tzinfo) -> list:
    return [iso(row[c], tz) if c in TIME_FIELDS else row[c] for c in CSV_CALL_COLUMNS]


def csv_event(row: dict, tz: tzinfo) -> list:
    return [iso(row[c], tz) if c in ("at", "recorded_at") else row[c] for c in CSV_EVENT_COLUMNS]
