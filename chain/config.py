"""The chain config (``chain.toml``): head office's one file, one schema that validates and
documents it. See ``examples/chain.toml``; docs/chain.md walks through it.

Relative paths are relative to the file's folder. Passwords are never in it: a user's
``password_hash`` is what ``callbell password`` prints; the consumer's broker password comes
from the environment (``CALLBELL_CHAIN_MQTT_URL``, written by ``callbell chain broker-config``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from callbell.protocol import DEFAULT_PREFIX, ID_PATTERN
from callbell.settings import load_toml

Id = Field(pattern=ID_PATTERN.pattern, description="1-64 characters of a-z 0-9 - _")

#: The port the chain page is served on, unless configured.
DEFAULT_HTTP_PORT = 8090


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainSection(Strict):
    id: str = Field(pattern=ID_PATTERN.pattern, description="The chain's id (names its central accounts)")
    name: str = Field("", description="Shown on the chain page")


class MqttSection(Strict):
    url: str | None = Field(None, description="Central RabbitMQ's MQTT listener with the consumer's account, "
                            "e.g. mqtt://chain-central:...@127.0.0.1:1883?protocol=3; better from the "
                            "environment: CALLBELL_CHAIN_MQTT_URL")
    prefix: str = Field(DEFAULT_PREFIX, pattern=ID_PATTERN.pattern, description="First topic level, as the stores'")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            from callbell.mqtt import BrokerAddress
            BrokerAddress.parse(v)
        return v


class WarehouseSection(Strict):
    """Where chain statistics live: an embedded chDB folder (default) or a ClickHouse server."""
    path: Path = Field(Path("chain-warehouse"), description="chDB's data folder (embedded ClickHouse)")
    url: str | None = Field(None, pattern=r"^https?://\S+$",
                            description="A ClickHouse server's HTTP interface instead of chDB, e.g. "
                            "http://callbell:...@clickhouse.hq:8123/callbell (database in the path; "
                            "password better from the environment: CALLBELL_CLICKHOUSE_URL)")


class BrokerSection(Strict):
    """How stores reach central (for ``callbell chain broker-config``)."""
    host: str = Field("central.example", description="Central's name as stores reach it, in its certificate")
    addresses: list[str] = Field([], description="host:port of every RabbitMQ node stores may reach, for the "
                                 "bridge's failover (default: host:tls_port)")
    tls_port: int = Field(8883, ge=1, le=65535, description="RabbitMQ's MQTT TLS listener")
    local_port: int = Field(1883, ge=0, le=65535, description="Plain MQTT on 127.0.0.1 for the consumer; 0: none")
    vhost: str = Field("callbell", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="RabbitMQ virtual host")


class HttpSection(Strict):
    host: str = Field("127.0.0.1", description="Address the chain page listens on")
    port: int = Field(DEFAULT_HTTP_PORT, ge=0, le=65535)
    demo: bool = Field(False, description="No sign-in (trials only; the page says so)")


class Region(Strict):
    id: str = Id
    name: str = ""


class Store(Strict):
    id: str = Id
    name: str = ""
    region: str = Field(pattern=ID_PATTERN.pattern, description="The region's id ([[regions]])")


class User(Strict):
    """A head-office user of the chain page. ``chain`` sees every store; ``region`` only the
    stores of its ``regions``."""
    id: str = Id
    name: str = ""
    role: Literal["chain", "region"] = Field(description="chain: every store; region: its regions' stores")
    regions: list[str] = Field([], description="For role region: the regions it sees")
    password_hash: str = Field(description="As 'callbell password' prints it (never the password itself)")

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        from hub.auth import is_password_hash
        if not is_password_hash(v):
            raise ValueError("not a password hash: make one with 'callbell password' and paste the line it prints")
        return v


class ChainConfig(Strict):
    chain: ChainSection
    mqtt: MqttSection = MqttSection()
    warehouse: WarehouseSection = WarehouseSection()
    broker: BrokerSection = BrokerSection()
    http: HttpSection = HttpSection()
    regions: list[Region] = Field(min_length=1)
    stores: list[Store] = Field(min_length=1)
    users: list[User] = []

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo):
        regions = [r.id for r in self.regions]
        for what, ids in (("regions", regions), ("stores", [s.id for s in self.stores]),
                          ("users", [u.id for u in self.users])):
            seen = set()
            for i in ids:
                if i in seen:
                    raise ValueError(f"{what}: id {i!r} is used twice")
                seen.add(i)
        for i, s in enumerate(self.stores):
            if s.region not in regions:
                raise ValueError(f"stores[{i}].region: unknown region {s.region!r} (regions: {', '.join(regions)})")
        for i, u in enumerate(self.users):
            if u.role == "region" and not u.regions:
                raise ValueError(f"users[{i}].regions: a region user needs at least one region")
            for j, r in enumerate(u.regions):
                if r not in regions:
                    raise ValueError(f"users[{i}].regions[{j}]: unknown region {r!r}")
        if not self.users and not self.http.demo:
            raise ValueError("users: nobody can sign in: add [[users]] (or [http] demo = true for a trial)")
        base = (info.context or {}).get("path")
        if base is not None and not self.warehouse.path.is_absolute():
            self.warehouse.path = Path(base).parent / self.warehouse.path
        return self

    def store(self, store_id: str) -> Store | None:
        return next((s for s in self.stores if s.id == store_id), None)

    def stores_of(self, user: User | None) -> list[str]:
        """The store ids ``user`` may see (every store for role chain, or in demo mode)."""
        if user is None or user.role == "chain":
            return [s.id for s in self.stores]
        return [s.id for s in self.stores if s.region in user.regions]


def load_chain_config(path: Path) -> ChainConfig:
    """Read and validate chain.toml; raises ConfigError naming file, line and key."""
    return load_toml(Path(path), ChainConfig)
