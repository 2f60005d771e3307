"""The Callbell wire contract, version 1: MQTT topic names and payload shapes.

Defined once, here, and used by the firmware, the hub, the simulator and the tests alike.
Nothing in this module does I/O; it only builds and parses topics and payloads. Parsing is
strict about what the contract requires and lenient about additive extras (unknown JSON fields
are ignored), so that newer devices can talk to an older hub.

    >>> t = Topics("callbell", "store-1")
    >>> t.event("fitting-1")
    'callbell/store-1/room/fitting-1/event'
    >>> t.parse("callbell/store-1/room/fitting-1/event")
    ('event', 'fitting-1')
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Collection, Mapping

PROTOCOL_VERSION = 1
DEFAULT_PREFIX = "callbell"

#: Ids of stores, rooms, devices, associates and calls: 1-64 of a-z 0-9 - _
ID_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}$")

#: Largest payload the hub reads, bytes. A real event is ~150 bytes and a device's health
#: ~300; anything near this is junk or an attack, and refusing it before parsing keeps a flood
#: from costing JSON time. The broker is not given the same limit: it may carry other systems'
#: larger messages (Zigbee2MQTT's device lists run to tens of kilobytes).
MAX_PAYLOAD_BYTES = 4096

#: Deepest JSON nesting accepted, counting the payload's own object as 1. The contract's
#: payloads are flat objects (a device's health holds one list of rooms: depth 2); a little room
#: is left for additive fields. Deeper is junk, and would only cost the parser recursion.
MAX_JSON_DEPTH = 4

#: Longest string accepted anywhere in a JSON payload, characters, extra fields included. Every
#: string of the contract is at most 64; this bounds what the hub stores and echoes.
MAX_STRING_CHARS = 256

#: Characters refused inside ids and badges that are otherwise free text: C0 controls and DEL
#: would corrupt logs, CSV exports and terminal output.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: An event id is unique per event and at most this long (docs/spec/PROTOCOL.md).
MAX_EVENT_ID_LENGTH = 64

#: Longest a device's outbox keeps an unsent event, seconds (firmware/outbox.py drops older
#: ones, logged and counted). A week, like the sessions and EVENT_EXPIRY_S: a press that could
#: not be sent for a week is history, not a call for help.
OUTBOX_MAX_AGE_S = 7 * 24 * 3600

#: Largest ``age_ms`` the hub accepts, milliseconds: the outbox's maximum age. An older press
#: cannot come from a Callbell device; accepted, it would land in a past week as ``missed``
#: and in that week's statistics (issue 28: a device could backdate by a year).
MAX_AGE_MS = OUTBOX_MAX_AGE_S * 1000

#: Characters of a device id that begin each of its event ids (then "-"): ids stay within
#: MAX_EVENT_ID_LENGTH with the outbox's token and a sequence of up to 18 digits.
EVENT_ID_DEVICE_CHARS = 40

#: MQTT 5 Message Expiry Interval a Callbell device sets on every event, seconds, and declares
#: in the event's ``expiry_s`` field (an additive part of contract v1). The broker counts it
#: down while it holds the message, so the hub learns how long a press waited at the broker
#: (e.g. while the hub was down) and adds that to ``age_ms``. A week, like the sessions: a
#: press is never dropped for being old, only dated correctly.
EVENT_EXPIRY_S = 7 * 24 * 3600

EVENT_TYPES = ("call", "cancel", "presence")
LAMP_STATES = ("idle", "called", "acknowledged", "overdue")
#: What a device shows on its own while it cannot reach the hub; never sent on the wire.
FAULT = "fault"
DEFAULT_REASON = "help"

ONLINE = "online"
OFFLINE = "offline"


class ProtocolError(ValueError):
    """A topic or payload that does not follow the contract. The message says why, for humans
    (it is what the hub publishes on ``hub/rejected``)."""


def held_at_broker_s(declared_expiry_s: int | None, remaining_expiry_s: int | None) -> float:
    """Seconds an event waited at the broker: the Message Expiry Interval the sender declared
    in the event (``expiry_s``) minus what was left of it on arrival. 0 when either is
    unknown (a sender that does not declare it, or MQTT 3.1.1) — never a guess."""
    if declared_expiry_s is None or remaining_expiry_s is None:
        return 0.0
    if not 0 <= remaining_expiry_s <= declared_expiry_s:
        return 0.0
    # The broker counts whole seconds (the difference of two truncated clock readings), so the
    # true hold time lies within 1 s either side of this: a fresh message that crossed a
    # second boundary reads as 1 s, one held 1.9 s as 1 or 2. Unbiased, error < 1 s.
    return float(declared_expiry_s - remaining_expiry_s)


def event_id_prefix(device: str) -> str:
    """What every event id made by ``device`` begins with: its id (the first
    EVENT_ID_DEVICE_CHARS characters of a longer one) and "-".

    >>> event_id_prefix("pi-a")
    'pi-a-'
    """
    return device[:EVENT_ID_DEVICE_CHARS] + "-"


def make_event_id(device: str, token: str, seq: int) -> str:
    """An event id as a Callbell device makes it: ``{device}-{token}-{seq:06d}``, where token
    is the outbox's own (a wiped outbox starts a new run) and seq counts its events.

    >>> make_event_id("pi-a", "7f3c", 123)
    'pi-a-7f3c-000123'
    """
    return f"{event_id_prefix(device)}{token}-{seq:06d}"


def check_id(value: object, what: str) -> str:
    """Return ``value`` if it is a valid id, else raise ProtocolError naming ``what``."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ProtocolError(f"{what} must be 1-64 characters of a-z 0-9 - _, got {value!r:.80}")
    return value


@dataclass(frozen=True)
class Topics:
    """Topic names for one store. ``prefix`` is ``{p}``, ``store`` is ``{store}``."""

    prefix: str = DEFAULT_PREFIX
    store: str = "store"

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.store}"

    def event(self, room: str) -> str:
        return f"{self.base}/room/{room}/event"

    def lamp(self, room: str) -> str:
        return f"{self.base}/room/{room}/lamp"

    def waiting(self, room: str) -> str:
        """Hub → integrations, retained (additive): ``{"v": 1, "call": id or null, "status":
        "open"|…|"idle", "waiting_s": n}``, the seconds the room's shopper has waited for
        someone at the door; refreshed while waiting (Home Assistant's sensor reads it)."""
        return f"{self.base}/room/{room}/waiting"

    def device_status(self, device: str) -> str:
        return f"{self.base}/device/{device}/status"

    def device_health(self, device: str) -> str:
        return f"{self.base}/device/{device}/health"

    def device_rejected(self, device: str) -> str:
        """Hub → that device only (its account may read no other): the refusals of its messages."""
        return f"{self.base}/device/{device}/rejected"

    @property
    def hub_status(self) -> str:
        return f"{self.base}/hub/status"

    @property
    def hub_rejected(self) -> str:
        return f"{self.base}/hub/rejected"

    def associate_location(self, associate: str) -> str:
        return f"{self.base}/associate/{associate}/location"

    def call(self, call: str) -> str:
        return f"{self.base}/call/{call}"

    # Subscription filters.
    @property
    def all_events(self) -> str:
        return f"{self.base}/room/+/event"

    @property
    def all_device_status(self) -> str:
        return f"{self.base}/device/+/status"

    @property
    def all_device_health(self) -> str:
        return f"{self.base}/device/+/health"

    @property
    def all_locations(self) -> str:
        return f"{self.base}/associate/+/location"

    def parse(self, topic: str) -> tuple[str, str]:
        """Split a topic of this store into (kind, id).

        kind is one of ``event``, ``lamp``, ``waiting``, ``status``, ``health``, ``rejected``,
        ``location``, ``call``, ``hub-status``, ``hub-rejected``. Raises ProtocolError for anything else.
        """
        base = self.base + "/"
        if not topic.startswith(base):
            raise ProtocolError(f"topic {topic!r:.120} is not under {self.base}")
        parts = topic[len(base):].split("/")
        if parts == ["hub", "status"]:
            return "hub-status", ""
        if parts == ["hub", "rejected"]:
            return "hub-rejected", ""
        if len(parts) == 3:
            scope, ident, leaf = parts
            kinds = {
                ("room", "event"): "event",
                ("room", "lamp"): "lamp",
                ("room", "waiting"): "waiting",
                ("device", "status"): "status",
                ("device", "health"): "health",
                ("device", "rejected"): "rejected",
                ("associate", "location"): "location",
            }
            kind = kinds.get((scope, leaf))
            if kind:
                return kind, check_id(ident, scope)
        if len(parts) == 2 and parts[0] == "call":
            return "call", check_id(parts[1], "call")
        raise ProtocolError(f"unknown topic {topic!r:.120}")


def _refuse_constant(name: str):
    raise ProtocolError(f"{name} is not a JSON number (NaN and Infinity are refused)")


def _check_encodable(text: str, what: str) -> None:
    """Refuse a string holding half of a UTF-16 pair: JSON may spell one (``"\\ud800"``) and
    Python keeps it, but it is no character, and SQLite refuses to store it: accepted, it would
    fail the hub's write of a whole batch."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ProtocolError(f"{what} holds a lone surrogate (U+{ord(text[e.start]):04X}) in a string: "
                            "half of a UTF-16 pair is not text") from None


def _check_shape(data: object, what: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH, strings longer than MAX_STRING_CHARS and
    lone surrogates, anywhere in the parsed value (iteratively: a deep value cannot exhaust the stack here)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                raise ProtocolError(f"{what} holds a string of {len(value)} characters; the limit is {MAX_STRING_CHARS}")
            if not value.isascii():
                _check_encodable(value, what)
        elif isinstance(value, float) and not math.isfinite(value):  # 1e999 parses as inf
            raise ProtocolError(f"{what} holds a number too large for a float")
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ProtocolError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    stack.append((key, depth))
                stack.append((item, depth + 1))


def load_json_object(payload: bytes | str, what: str) -> dict:
    """A payload that must be a JSON object, checked against the limits above (size, UTF-8,
    finite numbers, nesting, string length); ProtocolError naming ``what`` otherwise. Every
    JSON decoder of MQTT input starts here, third-party formats included."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"{what} is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"{what} is not valid JSON: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as e:  # also too many digits for an int
        raise ProtocolError(f"{what} is not valid JSON: {str(e):.120}") from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{what} must be a JSON object, got {type(data).__name__}")
    _check_shape(data, what)
    return data


def _number(data: dict, key: str, what: str, *, required: bool = True) -> float | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{what} field {key!r} must be a number, got {value!r:.40}")
    try:
        number = float(value)  # an int of 400 digits is valid JSON but no float
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ProtocolError(f"{what} field {key!r} must be a finite number, got {str(value):.40}")
    return number


def _version(data: dict, what: str) -> None:
    v = data.get("v")
    if type(v) is not int or v != PROTOCOL_VERSION:  # not True, not 1.0
        raise ProtocolError(f"{what} field 'v' must be {PROTOCOL_VERSION}, got {v!r:.20}")


def _text(value: object, what: str) -> str:
    """A free-text id (event id, badge): a string of 1-64 characters without control characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EVENT_ID_LENGTH or _CONTROL.search(value):
        raise ProtocolError(f"{what} must be a string of 1-{MAX_EVENT_ID_LENGTH} characters without "
                            f"control characters, got {value!r:.80}")
    return value


@dataclass(frozen=True)
class Event:
    """A device → hub event: a shopper's call or cancel, or staff presence at the door.

    ``age_ms`` is the time between the physical press and the publish, in milliseconds, on
    the device's monotonic clock; ``at`` is the device's wall clock at the press (seconds since
    the epoch, diagnostics only).
    """

    id: str
    device: str
    type: str
    age_ms: float = 0
    reason: str | None = None
    at: float | None = None
    badge: str | None = None
    #: The MQTT 5 Message Expiry Interval the device set on this message, seconds (additive).
    expiry_s: int | None = None
    v: int = PROTOCOL_VERSION

    def to_json(self) -> bytes:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> "Event":
        data = load_json_object(payload, "event")
        _version(data, "event")
        ident = _text(data.get("id"), "event field 'id'")
        device = check_id(data.get("device"), "event field 'device'")
        kind = data.get("type")
        if kind not in EVENT_TYPES:
            raise ProtocolError(f"event field 'type' must be one of {', '.join(EVENT_TYPES)}, got {kind!r:.40}")
        age_ms = _number(data, "age_ms", "event")
        if not 0 <= age_ms <= MAX_AGE_MS:
            raise ProtocolError(f"event field 'age_ms' must be between 0 and {MAX_AGE_MS} (a device's outbox "
                                f"keeps an event at most {OUTBOX_MAX_AGE_S // 86400} days), got {age_ms:g}")
        at = _number(data, "at", "event", required=False)
        reason = data.get("reason")
        if kind == "call":
            reason = DEFAULT_REASON if reason is None else check_id(reason, "event field 'reason'")
        else:
            reason = None
        badge = data.get("badge")
        if badge is not None:
            if kind != "presence":
                raise ProtocolError(f"event field 'badge' is only allowed on a presence event, not on {kind!r}")
            _text(badge, "event field 'badge'")
        expiry = data.get("expiry_s")
        if expiry is not None and (isinstance(expiry, bool) or not isinstance(expiry, int)
                                   or not 1 <= expiry <= EVENT_EXPIRY_S):
            # Above a week, a sender could claim a long wait at the broker and so backdate.
            raise ProtocolError(f"event field 'expiry_s' must be a whole number of seconds (1 to {EVENT_EXPIRY_S})")
        if not ident.startswith(event_id_prefix(device)):
            # Ids are de-duplicated per device; one made by another device is a forgery.
            raise ProtocolError(f"event field 'id' must begin with its device's id "
                                f"{event_id_prefix(device)!r}, got {ident!r:.80}")
        return cls(id=ident, device=device, type=kind, age_ms=age_ms, reason=reason, at=at, badge=badge,
                   expiry_s=expiry)


@dataclass(frozen=True)
class LampState:
    """Hub → device, retained: what a room's lamp shows. ``since`` is seconds since the epoch;
    ``by`` names who is on the way once acknowledged."""

    state: str = "idle"
    call: str | None = None
    reason: str | None = None
    since: float | None = None
    by: str | None = None
    v: int = PROTOCOL_VERSION

    def to_json(self) -> bytes:
        return json.dumps(
            {"v": self.v, "state": self.state, "call": self.call, "reason": self.reason,
             "since": self.since, "by": self.by},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> "LampState":
        data = load_json_object(payload, "lamp state")
        _version(data, "lamp state")
        state = data.get("state")
        if state not in LAMP_STATES:
            raise ProtocolError(f"lamp field 'state' must be one of {', '.join(LAMP_STATES)}, got {state!r:.40}")
        since = _number(data, "since", "lamp state", required=False)
        call, reason, by = data.get("call"), data.get("reason"), data.get("by")
        for key, value in (("call", call), ("reason", reason), ("by", by)):
            if value is not None and not isinstance(value, str):
                raise ProtocolError(f"lamp field {key!r} must be a string or null")
        return cls(state=state, call=call, reason=reason, since=since, by=by)


def parse_device_status(payload: bytes | str) -> str:
    """A device's retained status (``device/{device}/status``): plain text ``online`` or
    ``offline``; surrounding whitespace is ignored. Anything else raises ProtocolError."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    status = payload[:64].decode("utf-8", "replace").strip()
    if len(payload) > 64 or status not in (ONLINE, OFFLINE):
        raise ProtocolError(f"device status must be 'online' or 'offline', got {status[:40]!r}")
    return status


#: Fields every device health message has (docs/spec/PROTOCOL.md), with what each must be.
HEALTH_FIELDS = {"uptime_s": "a number of seconds, at least 0",
                 "outbox": "a whole number of queued events, at least 0",
                 "version": "a string"}


def parse_health(payload: bytes | str) -> dict:
    """A device's heartbeat (``device/{device}/health``): a JSON object with at least
    ``uptime_s`` (seconds), ``outbox`` (events waiting on the device) and ``version``; further
    fields are kept as they are, within the general limits. Returns the object."""
    data = load_json_object(payload, "device health")
    uptime = data.get("uptime_s")
    outbox = data.get("outbox")
    checks = {"uptime_s": not isinstance(uptime, bool) and isinstance(uptime, (int, float)) and uptime >= 0,
              "outbox": type(outbox) is int and outbox >= 0,
              "version": isinstance(data.get("version"), str)}
    for key, ok in checks.items():
        if not ok:
            raise ProtocolError(f"device health field {key!r} must be {HEALTH_FIELDS[key]}, "
                                f"got {data.get(key)!r:.40}")
    return data


def check_device(device: str, room: str | None, devices: Mapping[str, Collection[str]] | None) -> None:
    """Refuse a device the store does not know, or an event it sends for a room it does not
    serve. ``devices`` maps each configured device id to its rooms; None (no devices
    configured) lets any device speak for any room. ``room`` None checks only the device."""
    if devices is None:
        return
    if device not in devices:
        raise ProtocolError(f"unknown device {device!r}: it is not among the store's configured devices")
    if room is not None and room not in devices[device]:
        rooms = ", ".join(sorted(devices[device])) or "none"
        raise ProtocolError(f"device {device!r} does not serve room {room!r} (its rooms: {rooms})")


@dataclass(frozen=True)
class Rejection:
    """What the hub publishes on ``hub/rejected`` for a message it could not accept."""

    topic: str
    reason: str
    excerpt: str = field(default="")
    #: The device whose message it was, when known: it is told on ``device/{device}/rejected``.
    device: str | None = None

    #: How much of the offending payload to echo back: enough to recognise it, not to amplify.
    EXCERPT_CHARS = 200

    @classmethod
    def of(cls, topic: str, reason: str, payload: bytes) -> "Rejection":
        return cls(topic=topic, reason=reason,
                   excerpt=payload[: cls.EXCERPT_CHARS].decode("utf-8", "replace"))

    def to_json(self) -> bytes:
        return json.dumps({"topic": self.topic, "reason": self.reason, "excerpt": self.excerpt}).encode()


#: Largest |x| or |y| of a location, metres: a floor plan bigger than 10 km is a unit mistake.
MAX_LOCATION_M = 10_000.0


@dataclass(frozen=True)
class Location:
    """Location feed → hub (``associate/{associate}/location``): where an associate is now.

    Exactly one of a room id, a zone id, or a point ``x``/``y`` in metres on the store's floor
    plan. Unknown extra fields are ignored. Which rooms and zones exist is the hub's business.
    """

    room: str | None = None
    zone: str | None = None
    x: float | None = None
    y: float | None = None

    def to_json(self) -> bytes:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> "Location":
        data = load_json_object(payload, "location")
        given = [k for k in ("room", "zone") if data.get(k) is not None]
        has_point = data.get("x") is not None or data.get("y") is not None
        if len(given) + has_point != 1:
            raise ProtocolError('location must have exactly one of "room", "zone", or "x" and "y" (metres)')
        if has_point:
            x = _number(data, "x", "location")
            y = _number(data, "y", "location")
            if not (abs(x) <= MAX_LOCATION_M and abs(y) <= MAX_LOCATION_M):
                raise ProtocolError(f"location x and y must be within {MAX_LOCATION_M:g} m of the plan's origin")
            return cls(x=x, y=y)
        key = given[0]
        return cls(**{key: check_id(data[key], f"location field {key!r}")})

