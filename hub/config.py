"""The store config (``store.toml``): one schema that validates the file and documents it.

See ``examples/store.toml`` for a complete, commented example. Relative paths are relative to
the config file's folder.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from callbell.protocol import DEFAULT_PREFIX, ID_PATTERN
from callbell.settings import load_toml
from hub.domain import associates as staff
from hub.domain.call import DEFAULT_EXPIRY_S, DEFAULT_HANDLING_LIMIT_S, DEFAULT_STANDARD_S, Room, Timing
from hub.domain.escalation import DEFAULT_REACK_S, DEFAULT_RECEIPT_S, Ladder, Step
from hub.domain.layout import Layout, LayoutError, Point, Spot, Walkway
from hub.domain import troubles as trouble_rules
from hub.third_party_buttons import Button, parse_meaning

Id = Field(pattern=ID_PATTERN.pattern, description="1-64 characters of a-z 0-9 - _")

#: The HTTP port the hub serves the dashboard and API on, unless configured.
DEFAULT_HTTP_PORT = 8080


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSection(Strict):
    id: str = Field(pattern=ID_PATTERN.pattern, description="Store id, used in every MQTT topic")
    name: str = Field("", description="Shown on the dashboard")
    timezone: str = Field("UTC", description="IANA zone for statistics by hour and day, e.g. Europe/Berlin")
    standard_s: float = Field(DEFAULT_STANDARD_S, gt=0, le=3600,
                              description="Service standard: an associate at the door within this many seconds")
    target_share: float = Field(0.9, gt=0, le=1, description="Share of calls that should meet the standard")
    expiry_s: float = Field(DEFAULT_EXPIRY_S, gt=0, description="A call nobody answered is missed after this many seconds")
    handling_limit_s: float = Field(DEFAULT_HANDLING_LIMIT_S, gt=0,
                                    description="An answered call not marked done is closed after this many seconds")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Europe/Berlin)") from None
        return v

    @model_validator(mode="after")
    def _expiry_after_standard(self):
        if self.expiry_s <= self.standard_s:
            raise ValueError(f"expiry_s ({self.expiry_s:g}) must be longer than standard_s ({self.standard_s:g})")
        return self


class MqttSection(Strict):
    url: str | None = Field(None, description="Broker URL, e.g. mqtt://broker.local:1883. "
                                              "Omit to start the embedded broker.")
    prefix: str = Field(DEFAULT_PREFIX, pattern=ID_PATTERN.pattern, description="First topic level")
    embedded_port: int = Field(1883, ge=1, le=65535, description="Port of the embedded broker")
    embedded_host: str = Field("127.0.0.1", description="Address the embedded broker listens on. "
                               "It allows anonymous clients: keep it on 127.0.0.1 unless the LAN is trusted.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            from callbell.mqtt import BrokerAddress
            BrokerAddress.parse(v)
        return v


class DatabaseSection(Strict):
    path: Path = Field(Path("callbell.db"), description="SQLite file (created if missing)")


class HttpSection(Strict):
    host: str = Field("0.0.0.0", description="Address to listen on")
    port: int = Field(DEFAULT_HTTP_PORT, ge=0, le=65535)
    demo: bool = Field(False, description="Run without sign-in (demo only; every page says so)")
    certfile: Path | None = Field(None, description="TLS certificate (PEM, with its chain) to serve HTTPS "
                                  "itself; phones only notify and install the page over HTTPS")
    keyfile: Path | None = Field(None, description="The certificate's private key (PEM)")
    public_url: str | None = Field(None, pattern=r"^https?://[^/\s]+(/.*)?$",
                                   description="The hub's address as phones reach it, e.g. "
                                   "https://callbell.store.lan:8443 (links and buttons in push notifications)")
    trusted_proxies: list[str] = Field([], description="Addresses or networks of reverse proxies in front of "
                                       "the hub, e.g. [\"127.0.0.1\"]: only their X-Forwarded-For and "
                                       "X-Forwarded-Proto are believed (default: nobody's)")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return v

    @model_validator(mode="after")
    def _tls_pair(self):
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError(f"{'keyfile' if self.keyfile is None else 'certfile'}: "
                             "give both certfile and keyfile for HTTPS, or neither")
        return self


class NotifySection(Strict):
    """Alerts beyond the open page: ntfy (phone push) and a generic webhook. Both optional."""
    ntfy_url: str | None = Field(None, pattern=r"^https?://[^/\s]+/?$",
                                 description="ntfy server root, e.g. https://ntfy.sh or http://ntfy.store.lan; "
                                 "associates with an ntfy_topic get their alerts there")
    ntfy_token: str | None = Field(None, description="ntfy access token (tk_...) for protected topics; "
                                   "better from the environment: CALLBELL_NTFY_TOKEN")
    webhook_url: str | None = Field(None, pattern=r"^https?://\S+$",
                                    description="POST every alert and call change as JSON to this URL")
    webhook_secret: str | None = Field(None, min_length=16,
                                       description="Signs every webhook request (HMAC-SHA256, header "
                                       "X-Callbell-Signature; docs/integrations.md); better from the "
                                       "environment: CALLBELL_WEBHOOK_SECRET")


class HomeAssistantSection(Strict):
    """Home Assistant MQTT discovery (docs/integrations.md): each room appears as a device."""
    enabled: bool = Field(False, description="Announce the rooms to Home Assistant over MQTT discovery")
    discovery_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
                                  description="Home Assistant's discovery prefix (its MQTT setting)")


class ButtonConfig(Strict):
    """A third-party button serving a room (docs/integrations.md): Zigbee2MQTT or Shelly."""
    source: Literal["zigbee2mqtt", "shelly", "shelly-gen1"] = Field(
        description="zigbee2mqtt; shelly (Gen2 and later, BLU through a gateway); shelly-gen1")
    name: str = Field(min_length=1, max_length=200,
                      description="Zigbee2MQTT friendly name; Shelly Gen2 MQTT topic prefix (its device id "
                      "unless changed); Shelly Gen1 device id, e.g. shellybutton1-A4CF12F45301")
    room: str = Id
    actions: dict[str, str] = Field(min_length=1, description='What each action means: "call", '
                                    '"call:<reason>", "cancel" or "presence", e.g. {single = "call", hold = "cancel"}')
    ignore: list[str] | None = Field(None, description="Actions that are not presses (default for Shelly "
                                     "Gen2: btn_down, btn_up); any other unmapped action is rejected")
    input: int = Field(0, ge=0, le=99, description="Shelly input number")
    component: str | None = Field(None, pattern=r"^[a-z0-9_]+:[0-9]+$",
                                  description="Shelly Gen2 component whose events count (default input:<input>; "
                                  "a BLU button through a gateway: e.g. bthomedevice:200)")
    base_topic: str | None = Field(None, pattern=r"^[^#+\s]+$", description="Zigbee2MQTT base_topic, if not zigbee2mqtt")
    device: str | None = Field(None, pattern=ID_PATTERN.pattern,
                               description="Device id its events are recorded with (default from source and name)")

    @field_validator("name")
    @classmethod
    def _topic_level(cls, v: str) -> str:
        if re.search(r"[#+\x00-\x1f]", v) or v.startswith("/") or v.endswith("/") or "//" in v:
            raise ValueError(f"{v!r} cannot be part of an MQTT topic: no # or +, no control characters, "
                             "no empty level (leading, trailing or double /)")
        return v


def _both_or_neither(model, what: str):
    if (model.x is None) != (model.y is None):
        raise ValueError(f"{'y' if model.y is None else 'x'}: give both x and y (metres) for {what}, or neither")
    return model


class Zone(Strict):
    id: str = Id
    name: str = ""
    x: float | None = Field(None, allow_inf_nan=False,
                            description="Where a position 'in this zone' stands, metres (default: centre of its rooms)")
    y: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _xy(self):
        return _both_or_neither(self, "a zone")


class RoomConfig(Strict):
    id: str = Id
    name: str = ""
    zone: str | None = None
    reasons: list[str] = Field(default_factory=lambda: ["help", "size"],
                               description="Call reasons this room's buttons send")
    x: float | None = Field(None, allow_inf_nan=False, description="Position of the room's door, metres")
    y: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _xy(self):
        return _both_or_neither(self, "a room")

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, v: list[str]) -> list[str]:
        for r in v:
            if not ID_PATTERN.match(r):
                raise ValueError(f"reason {r!r} must be 1-64 characters of a-z 0-9 - _")
        if not v:
            raise ValueError("a room needs at least one reason (normally 'help')")
        return v


class Waypoint(Strict):
    """A named point of the walkway graph that is not a room: an aisle crossing, a door."""
    id: str = Id
    name: str = ""
    x: float = Field(allow_inf_nan=False, description="metres")
    y: float = Field(allow_inf_nan=False, description="metres")


class WalkwayConfig(Strict):
    """A walkable path through rooms and waypoints, each leg as long as the straight line."""
    path: list[str] = Field(min_length=2, description="Room and waypoint ids, in walking order")
    length_m: float | None = Field(None, gt=0, allow_inf_nan=False,
                                   description="Length of a two-point walkway when longer than the straight line")


class StepConfig(Strict):
    after_s: float = Field(ge=0, allow_inf_nan=False, description="Seconds after the press (or re-opening)")
    who: Literal["nearest", "next", "zone", "all", "manager"] = Field(
        description="nearest/next: one more associate, nearest first; zone: every free associate in the "
                    "call's zone; all: every free associate; manager: the managers")


class EscalationSection(Strict):
    steps: list[StepConfig] | None = Field(
        None, description="The ladder; default from the standard: 0 s nearest, 20/90 next, 45/90 zone, "
                          "60/90 all, at the standard the manager")
    reack_s: float = Field(DEFAULT_REACK_S, gt=0, allow_inf_nan=False,
                           description="An acknowledged call not answered within this many seconds alerts again")


#: An alert for me rings again this often, seconds, until I act or someone else takes the call.
#: 15 s is a nurse call's repeat: often enough that a phone in a pocket is heard within the
#: first steps of the ladder, rare enough that the person is not driven to mute it.
DEFAULT_RING_REPEAT_S = 15.0


class AlertsSection(Strict):
    """How an alert reaches a person and keeps at it (docs/dashboard.md, "What you hear and see")."""
    ring_repeat_s: float = Field(DEFAULT_RING_REPEAT_S, ge=3, le=600, allow_inf_nan=False,
                                 description="An alert rings again this often (sound, vibration, "
                                 "notification) until its associate taps On my way or Not me, or "
                                 "someone else takes the call")
    receipt_s: float = Field(DEFAULT_RECEIPT_S, gt=0, le=120, allow_inf_nan=False,
                             description="An alert whose phone sends no delivery receipt within this many "
                             "seconds goes on to the next person at once")
    presence_s: float = Field(staff.DEFAULT_PRESENCE_S, ge=10, le=3600, allow_inf_nan=False,
                              description="An associate whose phone page has not been heard for this many "
                              "seconds is unreachable: skipped by the escalation, shown on the floor screen")
    web_push: bool = Field(True, description="Offer Web Push to phones (alerts on a locked phone, with the page "
                           "closed); the hub makes its VAPID keys at the first start")
    push_contact: str | None = Field(None, pattern=r"^(mailto:\S+@\S+|https://\S+)$",
                                     description="Who push services may contact about this hub (VAPID 'sub'): "
                                     "mailto:it@store.example or an https URL; default [http] public_url")
    push_services: list[str] | None = Field(
        None, description="Origins of the push services phones may subscribe at, e.g. "
        "[\"https://fcm.googleapis.com\"]; '*.' matches subdomains. Default: Google (Chrome, Android), "
        "Mozilla, Apple and Windows (hub/push.py DEFAULT_PUSH_SERVICES)")

    @field_validator("push_services")
    @classmethod
    def _origins(cls, v: list[str] | None) -> list[str] | None:
        for i, origin in enumerate(v or []):
            if not re.fullmatch(r"https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(f"[{i}]: {origin!r} is not an origin like https://push.example.com")
        return v


class AssociateConfig(Strict):
    id: str = Id
    name: str = ""
    zone: str | None = Field(None, description="Home zone: where they are taken to be when nothing better is known")
    role: str = Field("associate", pattern="^(associate|manager)$")
    state: Literal["available", "break", "off"] = Field(
        "off", description="State on a hub's first start, before any is recorded (then the last recorded)")
    pin: str | None = Field(None, pattern=r"^[0-9]{4,8}$",
                            description="4-8 digits to sign in on the phone page (a PIN signs in to the "
                            "floor only: role associate). Once any associate has one, every sign-in needs one")
    password_hash: str | None = Field(None, description="Password for signing in with this associate's role "
                                      "(managers: statistics, exports), as 'callbell password' prints it; "
                                      "never the password itself (docs/security.md)")
    ntfy_topic: str | None = Field(None, pattern=r"^[-_A-Za-z0-9]{1,64}$",
                                   description="ntfy topic their alerts are published to (pick a hard-to-guess "
                                   "name: on a public server the topic is the password)")
    ntfy_url: str | None = Field(None, pattern=r"^https?://[^/\s]+/?$",
                                 description="This associate's ntfy server, if not [notify] ntfy_url")

    @field_validator("password_hash")
    @classmethod
    def _password_hash(cls, v: str | None) -> str | None:
        from hub.auth import is_password_hash
        if v is not None and not is_password_hash(v):
            raise ValueError("not a password hash: make one with 'callbell password' and paste the line it "
                             "prints (never put the password itself in the file)")
        return v


Associate = AssociateConfig  # the name before issue 4


class DeviceConfig(Strict):
    """A device (a Raspberry Pi) and the rooms it serves: its broker account may publish only
    those rooms' events and read only their lamps (``callbell broker-config``, docs/security.md)."""
    id: str = Id
    name: str = ""
    rooms: list[str] = Field(min_length=1, description="Ids of the rooms this device serves")
    heartbeat_s: float | None = Field(None, ge=0.05, le=300, allow_inf_nan=False,
                                      description="How often this device sends its health, seconds (its own "
                                      "heartbeat_s); default [troubles] device_heartbeat_s")


#: What the firmware sends its health every, seconds, unless its config says otherwise
#: (firmware/config.py DEFAULT_HEARTBEAT_S; the hub does not import the firmware).
DEFAULT_DEVICE_HEARTBEAT_S = 10.0


class TroublesSection(Strict):
    """Faults of the system itself that must reach a person (docs/hub.md, "Troubles")."""
    alert_role: Literal["associate", "manager"] = Field(
        trouble_rules.DEFAULT_ALERT_ROLE, description="Who is alerted of a trouble: the associates with this role "
        "on shift (not off); if none is, every one with it")
    device_heartbeat_s: float = Field(DEFAULT_DEVICE_HEARTBEAT_S, ge=0.05, le=300, allow_inf_nan=False,
                                      description="How often devices send their health, seconds (the firmware's "
                                      "heartbeat_s); a device silent for 3 of them is a trouble")
    history_days: int = Field(7, ge=1, le=366, description="GET /api/v1/troubles?all=1 lists troubles cleared "
                              "within this many days")


class ChainSection(Strict):
    """The store's place in a chain (docs/chain.md): its event log goes up to head office."""
    enabled: bool = Field(False, description="Send the event log to head office through the store broker's bridge")
    url: str | None = Field(None, description="The store broker with the uplink's own account (callbell chain "
                            "store-config writes it; better from the environment: CALLBELL_UPLINK_URL); "
                            "default: the hub's broker URL")
    resend_after_s: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False,
                                  description="Resend from central's mark when it has not moved for this many "
                                  "seconds while events beyond it are out")
    window: int = Field(5000, ge=200, le=1_000_000, description="Events sent beyond central's mark at most")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            from callbell.mqtt import BrokerAddress
            BrokerAddress.parse(v)
        return v


class StoreConfig(Strict):
    store: StoreSection
    mqtt: MqttSection = MqttSection()
    database: DatabaseSection = DatabaseSection()
    http: HttpSection = HttpSection()
    zones: list[Zone] = []
    rooms: list[RoomConfig] = Field(min_length=1)
    waypoints: list[Waypoint] = []
    walkways: list[WalkwayConfig] = []
    escalation: EscalationSection = EscalationSection()
    alerts: AlertsSection = AlertsSection()
    notify: NotifySection = NotifySection()
    associates: list[AssociateConfig] = []
    devices: list[DeviceConfig] = Field([], description="Devices and their rooms, for the broker's "
                                        "accounts and ACL; optional without a secured broker")
    home_assistant: HomeAssistantSection = HomeAssistantSection()
    buttons: list[ButtonConfig] = Field([], description="Third-party buttons (Zigbee2MQTT, Shelly) as call buttons")
    chain: ChainSection = ChainSection()
    troubles: TroublesSection = TroublesSection()

    _layout: Layout | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo):
        zones = [z.id for z in self.zones]
        _unique("zones", zones)
        _unique("rooms", [r.id for r in self.rooms])
        _unique("associates", [a.id for a in self.associates])
        for i, r in enumerate(self.rooms):
            if r.zone is not None and r.zone not in zones:
                raise ValueError(f"rooms[{i}].zone: unknown zone {r.zone!r} (zones: {', '.join(zones) or 'none'})")
        for i, a in enumerate(self.associates):
            if a.zone is not None and a.zone not in zones:
                raise ValueError(f"associates[{i}].zone: unknown zone {a.zone!r}")
        self._check_devices()
        if self.associates and not any(a.role == "manager" for a in self.associates):
            raise ValueError("associates: no manager: give one associate role = \"manager\" "
                             "(the failsafe every unanswered call reaches)")
        self._layout = self._build_layout()
        self._check_ladder()
        for i, a in enumerate(self.associates):
            if a.ntfy_topic and not (a.ntfy_url or self.notify.ntfy_url):
                raise ValueError(f"associates[{i}].ntfy_topic: no ntfy server: set [notify] ntfy_url "
                                 "(or ntfy_url on the associate)")
        base = (info.context or {}).get("path")
        if base is not None:
            folder = Path(base).parent
            if not self.database.path.is_absolute():
                self.database.path = folder / self.database.path
            for key in ("certfile", "keyfile"):
                value = getattr(self.http, key)
                if value is not None and not value.is_absolute():
                    setattr(self.http, key, folder / value)
        return self

    @property
    def pins_required(self) -> bool:
        """True once any associate has a PIN: then every phone sign-in needs one."""
        return any(a.pin for a in self.associates)

    def _build_layout(self) -> Layout:
        _unique("waypoints", [w.id for w in self.waypoints])
        rooms = {r.id: Spot(r.zone, None if r.x is None else Point(r.x, r.y)) for r in self.rooms}
        try:
            layout = Layout(rooms, {z.id: None if z.x is None else Point(z.x, z.y) for z in self.zones},
                            {w.id: Point(w.x, w.y) for w in self.waypoints},
                            [Walkway(tuple(w.path), w.length_m) for w in self.walkways])
        except LayoutError as e:
            section, which, *key = e.where
            index = [r.id for r in self.rooms].index(which) if section == "rooms" else which
            raise ValueError(f"{section}[{index}]{''.join('.' + k for k in key)}: {e.message}") from None
        if layout.positioned:
            for i, z in enumerate(self.zones):
                if layout.zone_points.get(z.id) is None:
                    raise ValueError(f"zones[{i}].x: zone {z.id!r} has no rooms: give it x and y (metres)")
        return layout

    @model_validator(mode="after")
    def _check_buttons(self):
        rooms = {r.id: r for r in self.rooms}
        seen: dict[tuple, int] = {}
        for i, b in enumerate(self.buttons):
            if b.room not in rooms:
                raise ValueError(f"buttons[{i}].room: unknown room {b.room!r}")
            for action, meaning in b.actions.items():
                try:
                    kind, reason = parse_meaning(meaning)
                except ValueError as e:
                    raise ValueError(f"buttons[{i}].actions.{action}: {e}") from None
                if reason is not None and reason not in rooms[b.room].reasons:
                    raise ValueError(f"buttons[{i}].actions.{action}: room {b.room!r} has no reason {reason!r} "
                                     f"(its reasons: {', '.join(rooms[b.room].reasons)})")
            button = Button.from_config(b)
            for action in b.actions:
                key = (button.topic, button.component, action)
                if key in seen:
                    raise ValueError(f"buttons[{i}].actions.{action}: already mapped by buttons[{seen[key]}]")
                seen[key] = i
        return self

    def _check_devices(self) -> None:
        _unique("devices", [d.id for d in self.devices])
        rooms = [r.id for r in self.rooms]
        owner: dict[str, str] = {}
        for i, d in enumerate(self.devices):
            for j, room in enumerate(d.rooms):
                if room not in rooms:
                    raise ValueError(f"devices[{i}].rooms[{j}]: unknown room {room!r}")
                if room in owner:
                    raise ValueError(f"devices[{i}].rooms[{j}]: room {room!r} already belongs to "
                                     f"device {owner[room]!r} (a room has one device)")
                owner[room] = d.id

    def _check_ladder(self) -> None:
        for index, message in self.ladder.problems(self.store.standard_s):
            key = "escalation.steps" + (f"[{index}].after_s" if index is not None else "")
            if self.escalation.steps is None:
                key = "store.standard_s"  # the default ladder is derived from it
            raise ValueError(f"{key}: {message}")

    @property
    def layout(self) -> Layout:
        """The store layout (zones, room positions, walkways), checked when the file was read."""
        if self._layout is None:
            self._layout = self._build_layout()
        return self._layout

    @property
    def ladder(self) -> Ladder:
        """The escalation ladder: configured, or derived from the standard."""
        e = self.escalation
        if e.steps is None:
            return Ladder.default(self.store.standard_s, e.reack_s, self.alerts.receipt_s)
        return Ladder(tuple(Step(s.after_s, s.who) for s in e.steps), e.reack_s, self.alerts.receipt_s)

    def domain_associates(self) -> list[staff.Associate]:
        return [staff.Associate(a.id, a.name, a.role, a.zone, a.state) for a in self.associates]

    @property
    def timing(self) -> Timing:
        s = self.store
        return Timing(standard_s=s.standard_s, expiry_s=s.expiry_s, handling_limit_s=s.handling_limit_s)

    def domain_rooms(self) -> list[Room]:
        return [Room(r.id, r.zone, tuple(r.reasons)) for r in self.rooms]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.store.timezone)


def _unique(what: str, ids: list[str]) -> None:
    seen = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{what}: id {i!r} is used twice")
        seen.add(i)


def load_store_config(path: Path) -> StoreConfig:
    """Read and validate a store config; raises ConfigError naming file, line and key."""
    return load_toml(Path(path), StoreConfig)
