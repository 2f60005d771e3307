"""The device config (``device.toml``): which rooms this Pi serves and on which pins.

A room either names a ``slot`` of the default pin map (firmware.pinmap, the same table as the
wiring docs in hardware/) or lists its pins. See ``examples/device.toml``.
"""
from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from callbell.protocol import DEFAULT_PREFIX, ID_PATTERN
from callbell.settings import load_toml
from firmware.pinmap import DEFAULT_SLOTS

#: Seconds between health messages (PROTOCOL.md default).
DEFAULT_HEARTBEAT_S = 10.0
#: Holding the call button this long cancels the call (PRODUCT.md).
DEFAULT_HOLD_S = 2.0
#: Contact bounce of a push button lasts a few ms; edges closer than this are the same press.
DEFAULT_DEBOUNCE_MS = 30.0
#: Events kept on disk while the broker is unreachable. At one press a second that is almost
#: three hours of a stuck button; real outages queue a handful.
DEFAULT_OUTBOX_LIMIT = 10_000

PIN_NAME = re.compile(r"^(GPIO|BCM)?([0-9]{1,2})$|^(BOARD|J8:)([0-9]{1,2})$")
USABLE_BCM = range(2, 28)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_pin(value: str | int, what: str) -> str:
    """Normalise a pin to gpiozero's ``GPIOn`` name; reject what the 40-pin header has not."""
    text = str(value).strip().upper()
    m = PIN_NAME.match(text)
    if not m:
        raise ValueError(f"{what}: bad pin name {value!r} (use GPIO17 or BCM17 or 17)")
    if m.group(2):
        bcm = int(m.group(2))
        if bcm not in USABLE_BCM:
            raise ValueError(f"{what}: GPIO{bcm} is not a usable GPIO (2-27)")
        return f"GPIO{bcm}"
    from firmware.pinmap import BCM_TO_PHYSICAL
    board = int(m.group(4))
    for bcm, phys in BCM_TO_PHYSICAL.items():
        if phys == board:
            return f"GPIO{bcm}"
    raise ValueError(f"{what}: header pin {board} is not a GPIO")


class DeviceSection(Strict):
    id: str = Field(pattern=ID_PATTERN.pattern, description="This device's id (topics, logs)")
    store: str = Field(pattern=ID_PATTERN.pattern, description="The store id, as in the hub's store.toml")
    broker: str = Field("mqtt://localhost:1883", description="Broker URL, e.g. mqtt://hub.local:1883")
    prefix: str = Field(DEFAULT_PREFIX, pattern=ID_PATTERN.pattern)
    outbox: Path = Field(Path("outbox.db"), description="On-disk queue of unsent events (relative to this file)")
    outbox_limit: int = Field(DEFAULT_OUTBOX_LIMIT, ge=10)
    heartbeat_s: float = Field(DEFAULT_HEARTBEAT_S, gt=0, le=300)
    hold_s: float = Field(DEFAULT_HOLD_S, gt=0.2, le=10, description="Hold this long to cancel, seconds")
    debounce_ms: float = Field(DEFAULT_DEBOUNCE_MS, ge=0, le=500)

    @model_validator(mode="after")
    def _broker(self):
        from callbell.mqtt import BrokerAddress
        try:
            BrokerAddress.parse(self.broker)
        except ValueError as e:
            raise ValueError(f"device.broker: {e}") from None
        return self


class RoomPins(Strict):
    id: str = Field(pattern=ID_PATTERN.pattern)
    slot: int | None = Field(None, ge=1, le=len(DEFAULT_SLOTS), description="Default pin map slot")
    call: str | None = None
    size: str | None = None
    presence: str | None = None
    lamp: str | None = None
    light: str | None = None
    lamp_active_high: bool = Field(True, description="False for relay boards that switch on low")
    light_active_high: bool = True
    size_reason: str = Field("size", pattern=ID_PATTERN.pattern)
    no_size: bool = Field(False, description="True when the room has no second button")
    no_presence: bool = Field(False, description="True when the room has no staff button")

    @model_validator(mode="after")
    def _pins(self):
        defaults = DEFAULT_SLOTS[self.slot - 1].as_dict() if self.slot else {}
        for role in ("call", "size", "presence", "lamp", "light"):
            value = getattr(self, role) or defaults.get(role)
            if role == "size" and self.no_size or role == "presence" and self.no_presence:
                value = None
            if value is None and role in ("call", "lamp"):
                raise ValueError(f"{role}: pin missing (give slot = 1..{len(DEFAULT_SLOTS)} or {role} = \"GPIO..\")")
            setattr(self, role, check_pin(value, role) if value is not None else None)
        return self

    def pins(self) -> dict[str, str]:
        return {r: getattr(self, r) for r in ("call", "size", "presence", "lamp", "light") if getattr(self, r)}


class DeviceConfig(Strict):
    device: DeviceSection
    rooms: list[RoomPins] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_pin_twice(self, info: ValidationInfo):
        used: dict[str, str] = {}
        seen_rooms = set()
        for i, room in enumerate(self.rooms):
            if room.id in seen_rooms:
                raise ValueError(f"rooms[{i}].id: room {room.id!r} is listed twice")
            seen_rooms.add(room.id)
            for role, pin in room.pins().items():
                if pin in used:
                    raise ValueError(f"rooms[{i}].{role}: {pin} is already used by {used[pin]}")
                used[pin] = f"{room.id}.{role}"
        base = (info.context or {}).get("path")
        if base is not None and not self.device.outbox.is_absolute():
            self.device.outbox = Path(base).parent / self.device.outbox
        return self


def load_device_config(path: Path) -> DeviceConfig:
    return load_toml(Path(path), DeviceConfig)
