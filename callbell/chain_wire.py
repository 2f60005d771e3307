"""The chain wire contract: what a store's hub sends up to head office, and what head office
answers. Additive to contract v1 (docs/spec/PROTOCOL.md): new topics under the store's own
prefix, carried by the store broker's bridge to the chain's central RabbitMQ (docs/chain.md).

| topic | direction | QoS | retained | payload |
|---|---|---|---|---|
| ``{p}/{store}/chain/events`` | hub → central | 1 | no | a *range* of the store's event log (below) |
| ``{p}/{store}/chain/received`` | central → hub | 1 | yes | ``{"v": 1, "seq": N}``: central holds every event of the store up to ``seq`` |
| ``{p}/{store}/chain/bridge`` | store broker → hub | 1 | yes | ``1`` / ``0``: the bridge to central is up / down (Mosquitto's bridge notification, never sent to central) |

A range covers the log from just after ``after`` up to ``last`` and holds *every* event of
the store's log in it, so central can tell a gap (``after`` beyond what it holds) from a
repeat (``last`` not beyond it) without trusting that sequence numbers have no holes::

    {"v": 1, "store": "store-1", "tz": "Europe/Berlin", "standard_s": 90,
     "after": 1200, "last": 1203, "events": [
       {"seq": 1201, "at": 1763800000.125, "recorded_at": 1763800000.140, "kind": "pressed",
        "call": "c-000184", "room": "fitting-1", "actor": null, "source": "device",
        "detail": {"reason": "help"}, "pressed_at": 1763800000.125}, ...]}

``pressed_at`` is the press time of the event's call (null for events of no call): with it
every event of a call is placed in the hour the call belongs to, without central having to
have seen the press. ``tz`` and ``standard_s`` are the store's time zone and service standard
when the range was sent. Nothing here does I/O.

    >>> t = ChainTopics("callbell", "store-1")
    >>> t.events
    'callbell/store-1/chain/events'
    >>> parse_events_topic("callbell", "callbell/store-1/chain/events")
    'store-1'
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callbell.protocol import ID_PATTERN, ProtocolError, check_id

CHAIN_VERSION = 1

#: Events in one range message at most. 200 events are ~50 KB of JSON: large enough that a
#: back-fill of a day's log (a few thousand events) takes tens of messages, small enough that
#: one message is never a noticeable stall on the bridge or a big loss to redo.
MAX_RANGE_EVENTS = 200

#: Largest range message central reads, bytes: MAX_RANGE_EVENTS events of the largest detail
#: a hub writes, with room to spare. Anything bigger is refused before parsing.
MAX_RANGE_BYTES = 512 * 1024

#: Longest ``detail`` of one event, as JSON, characters. A hub's details are below 1 KB.
MAX_DETAIL_CHARS = 8192

#: Longest call, room, actor or source, characters (a badge id as actor may exceed an id's 64).
MAX_TEXT_CHARS = 256

#: Fields every event of a range carries, and the JSON types each may have.
EVENT_FIELDS = {
    "seq": (int,), "at": (int, float), "recorded_at": (int, float, type(None)), "kind": (str,),
    "call": (str, type(None)), "room": (str, type(None)), "actor": (str, type(None)),
    "source": (str, type(None)), "detail": (dict, type(None)), "pressed_at": (int, float, type(None)),
}


@dataclass(frozen=True)
class ChainTopics:
    """The chain topics of one store (``prefix`` is ``{p}``)."""

    prefix: str
    store: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.store}/chain"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def received(self) -> str:
        return f"{self.base}/received"

    @property
    def bridge(self) -> str:
        return f"{self.base}/bridge"


def all_events_filter(prefix: str) -> str:
    """Central's subscription: every store's ranges."""
    return f"{prefix}/+/chain/events"


def parse_events_topic(prefix: str, topic: str) -> str:
    """The store id of a ``{p}/{store}/chain/events`` topic; ProtocolError otherwise."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != prefix or parts[2:] != ["chain", "events"]:
        raise ProtocolError(f"not a chain events topic: {topic!r:.120}")
    return check_id(parts[1], "store")


@dataclass(frozen=True)
class ChainEvent:
    """One event of a store's log as it travels up (the hub's ``events`` row, plus its call's
    press time). Times are seconds since the epoch."""

    seq: int
    at: float
    kind: str
    recorded_at: float | None = None
    call: str | None = None
    room: str | None = None
    actor: str | None = None
    source: str | None = None
    detail: dict | None = None
    pressed_at: float | None = None

    def as_dict(self) -> dict:
        return {"seq": self.seq, "at": self.at, "recorded_at": self.recorded_at, "kind": self.kind,
                "call": self.call, "room": self.room, "actor": self.actor, "source": self.source,
                "detail": self.detail, "pressed_at": self.pressed_at}


@dataclass(frozen=True)
class EventRange:
    """Every event of ``store``'s log with ``after`` < seq ≤ ``last`` (see the module docstring)."""

    store: str
    after: int
    last: int
    events: tuple[ChainEvent, ...]
    tz: str = "UTC"
    standard_s: float = 90.0

    def to_json(self) -> bytes:
        return json.dumps({"v": CHAIN_VERSION, "store": self.store, "tz": self.tz, "standard_s": self.standard_s,
                           "after": self.after, "last": self.last,
                           "events": [e.as_dict() for e in self.events]}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes, store: str) -> "EventRange":
        """Parse and check a range sent on ``store``'s topic; ProtocolError saying what is wrong."""
        if len(payload) > MAX_RANGE_BYTES:
            raise ProtocolError(f"range is {len(payload)} bytes; the limit is {MAX_RANGE_BYTES}")
        try:
            data = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ProtocolError(f"range is not valid JSON: {str(e):.120}") from None
        if not isinstance(data, dict):
            raise ProtocolError(f"range must be a JSON object, got {type(data).__name__}")
        if data.get("v") != CHAIN_VERSION:
            raise ProtocolError(f"range field 'v' must be {CHAIN_VERSION}, got {data.get('v')!r:.20}")
        if data.get("store") != store:
            raise ProtocolError(f"range names store {data.get('store')!r:.70} on the topic of store {store!r}")
        after, last = data.get("after"), data.get("last")
        if not (_is_int(after) and _is_int(last) and 0 <= after < last):
            raise ProtocolError(f"range needs whole numbers 0 <= after < last, got after={after!r:.20} last={last!r:.20}")
        tz = data.get("tz")
        if not isinstance(tz, str) or not _known_zone(tz):
            raise ProtocolError(f"range field 'tz' must be an IANA time zone, got {tz!r:.70}")
        standard = data.get("standard_s")
        if not _is_number(standard) or not 0 < standard <= 3600:
            raise ProtocolError(f"range field 'standard_s' must be a number of seconds in (0, 3600], got {standard!r:.20}")
        raw = data.get("events")
        if not isinstance(raw, list) or len(raw) > MAX_RANGE_EVENTS:
            raise ProtocolError(f"range field 'events' must be a list of at most {MAX_RANGE_EVENTS} events")
        events, previous = [], after
        for i, e in enumerate(raw):
            event = _event(e, i)
            if not previous < event.seq <= last:
                raise ProtocolError(f"events[{i}].seq {event.seq} is out of order or outside the range ({after}, {last}]")
            previous = event.seq
            events.append(event)
        return cls(store, after, last, tuple(events), tz, float(standard))


def received_payload(seq: int) -> bytes:
    """Central's answer: it holds every event of the store up to ``seq``."""
    return json.dumps({"v": CHAIN_VERSION, "seq": seq}).encode()


def parse_received(payload: bytes) -> int:
    """The ``seq`` of a ``chain/received`` message; ProtocolError if it is not one."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"received mark is not valid JSON: {str(e):.80}") from None
    seq = data.get("seq") if isinstance(data, dict) else None
    if not _is_int(seq) or seq < 0:
        raise ProtocolError(f"received mark needs a whole number 'seq' >= 0, got {payload[:60]!r}")
    return seq


def parse_bridge_state(payload: bytes) -> bool:
    """Mosquitto's bridge notification: ``1`` connected, ``0`` not."""
    text = payload.strip()
    if text not in (b"0", b"1"):
        raise ProtocolError(f"bridge state must be 0 or 1, got {payload[:20]!r}")
    return text == b"1"


# -- checks -----------------------------------------------------------------------------------
def _refuse_constant(name: str):
    raise ProtocolError(f"{name} is not a JSON number")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _event(e: object, i: int) -> ChainEvent:
    if not isinstance(e, dict):
        raise ProtocolError(f"events[{i}] must be an object")
    for key, types in EVENT_FIELDS.items():
        value = e.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ProtocolError(f"events[{i}].{key} has the wrong type: {value!r:.40}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError(f"events[{i}].{key} is not a finite number")
    if e["seq"] < 1:
        raise ProtocolError(f"events[{i}].seq must be at least 1")
    if not ID_PATTERN.match(e["kind"]):
        raise ProtocolError(f"events[{i}].kind must be 1-64 characters of a-z 0-9 - _")
    for key in ("call", "room", "actor", "source"):
        if e[key] is not None and len(e[key]) > MAX_TEXT_CHARS:
            raise ProtocolError(f"events[{i}].{key} is longer than {MAX_TEXT_CHARS} characters")
    if e["detail"] is not None and len(json.dumps(e["detail"])) > MAX_DETAIL_CHARS:
        raise ProtocolError(f"events[{i}].detail is longer than {MAX_DETAIL_CHARS} characters of JSON")
    return ChainEvent(seq=e["seq"], at=float(e["at"]), kind=e["kind"],
                      recorded_at=None if e["recorded_at"] is None else float(e["recorded_at"]),
                      call=e["call"], room=e["room"], actor=e["actor"], source=e["source"], detail=e["detail"],
                      pressed_at=None if e["pressed_at"] is None else float(e["pressed_at"]))
