"""The store config (``store.toml``): one schema that validates the file and documents it.

See ``examples/store.toml`` for a complete, commented example. Relative paths are relative to
the config file's folder.
"""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from callbell.protocol import DEFAULT_PREFIX, ID_PATTERN
from callbell.settings import load_toml
from hub.domain.call import DEFAULT_EXPIRY_S, DEFAULT_HANDLING_LIMIT_S, DEFAULT_STANDARD_S, Room, Timing

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


class Zone(Strict):
    id: str = Id
    name: str = ""


class RoomConfig(Strict):
    id: str = Id
    name: str = ""
    zone: str | None = None
    reasons: list[str] = Field(default_factory=lambda: ["help", "size"],
                               description="Call reasons this room's buttons send")

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, v: list[str]) -> list[str]:
        for r in v:
            if not ID_PATTERN.match(r):
                raise ValueError(f"reason {r!r} must be 1-64 characters of a-z 0-9 - _")
        if not v:
            raise ValueError("a room needs at least one reason (normally 'help')")
        return v


class Associate(Strict):
    id: str = Id
    name: str = ""
    zone: str | None = None
    role: str = Field("associate", pattern="^(associate|manager)$")


class StoreConfig(Strict):
    store: StoreSection
    mqtt: MqttSection = MqttSection()
    database: DatabaseSection = DatabaseSection()
    http: HttpSection = HttpSection()
    zones: list[Zone] = []
    rooms: list[RoomConfig] = Field(min_length=1)
    associates: list[Associate] = []

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
        base = (info.context or {}).get("path")
        if base is not None and not self.database.path.is_absolute():
            self.database.path = Path(base).parent / self.database.path
        return self

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
