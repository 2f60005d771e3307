"""The device config (``device.toml``): which rooms this Pi serves and on which pins.

A room either names a ``slot`` of the default pin map (firmware.pinmap, the same table as the
wiring docs in hardware/) or lists its pins. See ``examples/device.toml`` and docs/firmware.md.

Plain dataclasses that check themselves in ``__post_init__`` (pydantic would cost the Pi ~12 MB
of memory). Building one in code raises :class:`FieldError`; :func:`load_device_config` turns
those into a ConfigError naming the file, line and key.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from callbell.mqtt import BrokerAddress
from callbell.protocol import DEFAULT_PREFIX, ID_PATTERN
from callbell.settings import read_toml, report
from firmware.button import MIN_PRESS_MS, STUCK_S
from firmware.pinmap import BCM_TO_PHYSICAL, DEFAULT_SLOTS, LAMP_SENSE, SUPPLY_SENSE

#: Seconds between health messages (docs/spec/PROTOCOL.md default).
DEFAULT_HEARTBEAT_S = 10.0
#: Holding the call button this long cancels the call (docs/spec/PRODUCT.md).
DEFAULT_HOLD_S = 2.0
#: Contact bounce of a push button lasts a few ms; edges closer than this are the same press.
DEFAULT_DEBOUNCE_MS = 30.0
#: Events kept on disk while the broker is unreachable. At one press a second that is almost
#: three hours of a stuck button; real outages queue a handful.
DEFAULT_OUTBOX_LIMIT = 10_000

#: The buttons a room may have; ``min_press_ms`` may be given per button.
BUTTONS = ("call", "size", "presence")

PIN_NAME = re.compile(r"^(GPIO|BCM)?([0-9]{1,2})$|^(BOARD|J8:)([0-9]{1,2})$")
USABLE_BCM = range(2, 28)
ROLES = ("call", "size", "presence", "lamp", "light", "lamp_green", "lamp_blue")
#: led: on/off (a MOSFET or relay); pwm: dimmable (lamp_brightness); rgb: three MOSFETs,
#: ``lamp`` is red, ``lamp_green`` and ``lamp_blue`` the others.
LAMP_KINDS = ("led", "pwm", "rgb")


class FieldError(ValueError):
    """A bad value; ``key`` is its place in the file, e.g. ``call`` or ``rooms[1].call``."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def check_pin(value: object, what: str) -> str:
    """Normalise a pin to gpiozero's ``GPIOn`` name; reject what the 40-pin header has not."""
    text = str(value).strip().upper()
    m = PIN_NAME.match(text)
    if not m:
        raise FieldError(what, f"bad pin name {value!r} (use GPIO17 or BCM17 or 17 or BOARD11)")
    if m.group(2):
        bcm = int(m.group(2))
        if bcm not in USABLE_BCM:
            raise FieldError(what, f"GPIO{bcm} is not a usable GPIO (2-27)")
        return f"GPIO{bcm}"
    board = int(m.group(4))
    for bcm, phys in BCM_TO_PHYSICAL.items():
        if phys == board:
            return f"GPIO{bcm}"
    raise FieldError(what, f"header pin {board} is not a GPIO")


def _id(value: object, key: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise FieldError(key, f"must be 1-64 characters of a-z 0-9 - _, got {value!r}")
    return value


def _number(value: object, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(key, f"must be a number, got {value!r}")
    if not low <= value <= high:
        raise FieldError(key, f"must be between {low:g} and {high:g}, got {value:g}")
    return value


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise FieldError(key, f"must be true or false, got {value!r}")
    return value


@dataclass
class DeviceSection:
    id: str
    store: str
    broker: str = "mqtt://localhost:1883"
    prefix: str = DEFAULT_PREFIX
    outbox: Path = Path("outbox.db")
    outbox_limit: int = DEFAULT_OUTBOX_LIMIT
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    hold_s: float = DEFAULT_HOLD_S
    debounce_ms: float = DEFAULT_DEBOUNCE_MS
    min_press_ms: float = MIN_PRESS_MS
    stuck_s: float = STUCK_S
    #: The 12 V supply sense input (an optocoupler; hardware/README.md): a pin, ``true`` for
    #: the default pin map's, or absent (not fitted).
    supply_sense: str | bool | None = None

    def __post_init__(self):
        _id(self.id, "id")
        _id(self.store, "store")
        _id(self.prefix, "prefix")
        if not isinstance(self.broker, str):
            raise FieldError("broker", "must be a URL such as mqtt://hub.local:1883")
        try:
            BrokerAddress.parse(self.broker)
        except ValueError as e:
            raise FieldError("broker", str(e)) from None
        if not isinstance(self.outbox, (str, Path)):
            raise FieldError("outbox", "must be a file path")
        self.outbox = Path(self.outbox)
        self.outbox_limit = int(_number(self.outbox_limit, "outbox_limit", 10, 10_000_000))
        _number(self.heartbeat_s, "heartbeat_s", 0.05, 300)
        _number(self.hold_s, "hold_s", 0.2, 10)
        _number(self.debounce_ms, "debounce_ms", 0, 500)
        _number(self.min_press_ms, "min_press_ms", 0, 200)
        _number(self.stuck_s, "stuck_s", 0.5, 3600)
        if self.stuck_s <= self.hold_s:
            raise FieldError("stuck_s", f"must be longer than hold_s ({self.hold_s:g} s): a hold cancels, "
                                        f"a line held past stuck_s is a fault")
        if self.supply_sense is True:
            self.supply_sense = SUPPLY_SENSE
        elif self.supply_sense is False:
            self.supply_sense = None
        if self.supply_sense is not None:
            self.supply_sense = check_pin(self.supply_sense, "supply_sense")


@dataclass
class RoomPins:
    id: str
    slot: int | None = None
    call: str | None = None
    size: str | None = None
    presence: str | None = None
    lamp: str | None = None
    light: str | None = None
    lamp_green: str | None = None
    lamp_blue: str | None = None
    lamp_kind: str = "led"
    lamp_brightness: float = 1.0
    lamp_active_high: bool = True
    light_active_high: bool = True
    size_reason: str = "size"
    no_size: bool = False
    no_presence: bool = False
    #: Milliseconds a line must be down to be a press: a number for every button of the room,
    #: or a table by button, e.g. ``{ presence = 40 }``; the rest take ``[device] min_press_ms``.
    min_press_ms: float | dict | None = None
    #: The door lamp's current sense input (hardware/README.md): a pin, ``true`` for the
    #: slot's default, or absent (not fitted).
    lamp_sense: str | bool | None = None

    def __post_init__(self):
        _id(self.id, "id")
        _id(self.size_reason, "size_reason")
        for key in ("lamp_active_high", "light_active_high", "no_size", "no_presence"):
            _bool(getattr(self, key), key)
        if self.lamp_kind not in LAMP_KINDS:
            raise FieldError("lamp_kind", f"must be one of {', '.join(LAMP_KINDS)}, got {self.lamp_kind!r}")
        _number(self.lamp_brightness, "lamp_brightness", 0.05, 1.0)
        if self.lamp_brightness < 1 and self.lamp_kind == "led":
            raise FieldError("lamp_brightness", "needs lamp_kind = \"pwm\" or \"rgb\" (an on/off lamp cannot dim)")
        rgb_pins = (self.lamp_green, self.lamp_blue)
        if self.lamp_kind == "rgb" and None in rgb_pins:
            raise FieldError("lamp_green" if self.lamp_green is None else "lamp_blue",
                             "an RGB lamp needs lamp (red), lamp_green and lamp_blue pins")
        if self.lamp_kind != "rgb" and rgb_pins != (None, None):
            raise FieldError("lamp_kind", "lamp_green and lamp_blue are only for lamp_kind = \"rgb\"")
        if self.slot is not None and (isinstance(self.slot, bool) or self.slot not in range(1, len(DEFAULT_SLOTS) + 1)):
            raise FieldError("slot", f"must be 1 to {len(DEFAULT_SLOTS)} (the default pin map), got {self.slot!r}")
        defaults = DEFAULT_SLOTS[self.slot - 1].as_dict() if self.slot else {}
        for role in ROLES:
            value = getattr(self, role) or defaults.get(role)
            if role in ("lamp_green", "lamp_blue"):
                value = getattr(self, role)
            if role == "size" and self.no_size or role == "presence" and self.no_presence:
                value = None
            if value is None and role in ("call", "lamp"):
                raise FieldError(role, f"pin missing (give slot = 1..{len(DEFAULT_SLOTS)} or {role} = \"GPIO..\")")
            setattr(self, role, check_pin(value, role) if value is not None else None)
        self._check_min_press()
        self._check_lamp_sense()

    def _check_min_press(self) -> None:
        value = self.min_press_ms
        if value is None or isinstance(value, dict):
            for button, ms in (value or {}).items():
                if button not in BUTTONS:
                    raise FieldError("min_press_ms", f"unknown button {button!r} (use {', '.join(BUTTONS)})")
                _number(ms, f"min_press_ms.{button}", 0, 200)
        else:
            _number(value, "min_press_ms", 0, 200)

    def _check_lamp_sense(self) -> None:
        if self.lamp_sense is False:
            self.lamp_sense = None
        if self.lamp_sense is None:
            return
        if self.lamp_kind != "led":
            raise FieldError("lamp_sense", "supervises on/off lamps only (lamp_kind = \"led\"): a dimmed "
                                           "lamp's current is chopped by its PWM and reads as on and off")
        if self.lamp_sense is True:
            default = LAMP_SENSE[self.slot - 1] if self.slot else None
            if default is None:
                raise FieldError("lamp_sense", "no default pin here (slot 4 has none, see "
                                               "hardware/pinmap.md): give one, e.g. lamp_sense = \"GPIO4\" "
                                               "with no_size = true")
            self.lamp_sense = default
        self.lamp_sense = check_pin(self.lamp_sense, "lamp_sense")

    def min_press_of(self, button: str, default: float) -> float:
        """The minimum press time of one of this room's buttons, milliseconds."""
        if isinstance(self.min_press_ms, dict):
            return self.min_press_ms.get(button, default)
        return default if self.min_press_ms is None else self.min_press_ms

    def pins(self) -> dict[str, str]:
        pins = {r: getattr(self, r) for r in ROLES if getattr(self, r)}
        if self.lamp_sense:
            pins["lamp_sense"] = self.lamp_sense
        return pins


@dataclass
class DeviceConfig:
    device: DeviceSection
    rooms: list[RoomPins] = field(default_factory=list)

    def __post_init__(self):
        if not self.rooms:
            raise FieldError("rooms", "at least one [[rooms]] entry is needed")
        used: dict[str, str] = {}
        if self.device.supply_sense:
            used[self.device.supply_sense] = "device.supply_sense"
        seen = set()
        for i, room in enumerate(self.rooms):
            if room.id in seen:
                raise FieldError(f"rooms[{i}].id", f"room {room.id!r} is listed twice")
            seen.add(room.id)
            for role, pin in room.pins().items():
                if pin in used:
                    raise FieldError(f"rooms[{i}].{role}", f"{pin} is already used by {used[pin]}")
                used[pin] = f"{room.id}.{role}"


def _build(cls, table: object, where: tuple, problems: list) -> object | None:
    """Construct ``cls`` from a TOML table, collecting (loc, message) problems."""
    if not isinstance(table, dict):
        problems.append((where, "must be a table"))
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    bad = [k for k in table if k not in names]
    for k in bad:
        problems.append((where + (k,), "unknown key (misspelt?)"))
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in table]
    for k in missing:
        problems.append((where + (k,), "missing"))
    if missing:
        return None
    try:  # the known keys are checked beside the unknown ones: every mistake at once
        built = cls(**{k: v for k, v in table.items() if k in names})
    except FieldError as e:
        problems.append((where + (e.key,), e.message))
        return None
    return None if bad else built


def load_device_config(path: Path) -> DeviceConfig:
    """Read and check a device config; raises ConfigError naming file, line and key."""
    path = Path(path)
    text, data = read_toml(path)
    problems: list[tuple[tuple, str]] = []
    for k in data:
        if k not in ("device", "rooms"):
            problems.append(((k,), "unknown section (misspelt?)"))
    if "device" not in data:
        problems.append((("device",), "missing: a [device] section with id and store"))
    device = _build(DeviceSection, data.get("device", {}), ("device",), problems) if "device" in data else None
    rooms_data = data.get("rooms")
    rooms = []
    if not isinstance(rooms_data, list) or not rooms_data:
        problems.append((("rooms",), "missing: at least one [[rooms]] entry"))
    else:
        for i, table in enumerate(rooms_data):
            rooms.append(_build(RoomPins, table, ("rooms", i), problems))
    if problems:
        raise report(path, text, problems)
    if not device.outbox.is_absolute():
        device.outbox = path.parent / device.outbox
    try:
        return DeviceConfig(device, rooms)
    except FieldError as e:
        raise report(path, text, [((), f"{e.key}: {e.message}")]) from None
