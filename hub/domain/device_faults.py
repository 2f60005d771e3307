"""Which troubles a device's health message opens and clears. Pure: no I/O, no clock.

A device reports its own faults in its health (docs/protocol.md, "Device health"):

    "lines":  {"stuck": [{"room": "r1", "button": "call", "held_s": 31.2}]}
    "supply": {"ok": false, "lost_s": 3.0}     (null: no supply sense fitted)
    "lamps":  {"r1": {"ok": false, "fault": "dark", "for_s": 2.0}, "r2": {"ok": true}}

Each fault is a trouble (hub.domain.troubles), keyed so that one fault is one trouble:

    stuck_line  "device/room/button"
    supply      "device"
    lamp        "device/room"

    report, clear = judge("pi-1", health, open_keys=[("lamp", "pi-1/r2")])

A field the message leaves out says nothing (a device older than the field): the troubles of
that kind stay as they are. A field that is present and no longer names a fault clears it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from hub.domain.call import DomainError

#: The trouble kinds a device's health decides.
KINDS = ("stuck_line", "supply", "lamp")
#: The buttons a device may report stuck (firmware: call, size, presence).
BUTTONS = ("call", "size", "presence")
#: The lamp faults a device may report: switched on and drawing nothing, or switched off and
#: drawing current (a shorted switch).
LAMP_FAULTS = ("dark", "lit_when_off")
#: Entries one health message may list. A Pi has 4 rooms of 3 buttons; more is not a device.
MAX_ENTRIES = 64


@dataclass(frozen=True)
class Fault:
    """A trouble to report: ``kind``, ``key``, the room it is about and small facts."""
    kind: str
    key: str
    room: str | None = None
    detail: dict = field(default_factory=dict)


def line_key(device: str, room: str, button: str) -> str:
    return f"{device}/{room}/{button}"


def lamp_key(device: str, room: str) -> str:
    return f"{device}/{room}"


def _bad(what: str) -> DomainError:
    return DomainError("invalid", f"health: {what}")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or "/" in value:
        raise _bad(f"{what} must be a name, got {value!r}")
    return value


def _seconds(entry: dict, key: str) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(float(value), 1)


def faults(device: str, health: dict) -> dict[str, list[Fault]]:
    """The faults a health message reports, by trouble kind, for the kinds it speaks of
    (a kind missing from the result: the message said nothing about it). Raises DomainError
    ("invalid") on a field of the wrong shape."""
    out: dict[str, list[Fault]] = {}
    rooms = health.get("rooms") if isinstance(health.get("rooms"), list) else []
    if "lines" in health:
        lines = health["lines"]
        stuck = lines.get("stuck") if isinstance(lines, dict) else None
        if not isinstance(stuck, list) or len(stuck) > MAX_ENTRIES:
            raise _bad(f"lines.stuck must be a list of at most {MAX_ENTRIES} entries")
        found = []
        for entry in stuck:
            if not isinstance(entry, dict):
                raise _bad("lines.stuck entries must be objects with room and button")
            room, button = _name(entry.get("room"), "lines.stuck room"), entry.get("button")
            if button not in BUTTONS:
                raise _bad(f"lines.stuck button must be one of {', '.join(BUTTONS)}, got {button!r}")
            found.append(Fault("stuck_line", line_key(device, room, button), room,
                               {"button": button, "held_s": _seconds(entry, "held_s")}))
        out["stuck_line"] = found
    if "supply" in health:
        supply = health["supply"]
        if supply is not None and not (isinstance(supply, dict) and isinstance(supply.get("ok"), bool)):
            raise _bad("supply must be null or an object with ok: true/false")
        lost = supply is not None and not supply["ok"]
        out["supply"] = [Fault("supply", device, None, {"lost_s": _seconds(supply, "lost_s"),
                                                        "rooms": [r for r in rooms if isinstance(r, str)]})] if lost else []
    if "lamps" in health:
        lamps = health["lamps"]
        if not isinstance(lamps, dict) or len(lamps) > MAX_ENTRIES:
            raise _bad(f"lamps must be an object of at most {MAX_ENTRIES} rooms")
        found = []
        for room, state in lamps.items():
            _name(room, "lamps room")
            if not (isinstance(state, dict) and isinstance(state.get("ok"), bool)):
                raise _bad(f"lamps.{room} must be an object with ok: true/false")
            if state["ok"]:
                continue
            fault = state.get("fault")
            if fault not in LAMP_FAULTS:
                raise _bad(f"lamps.{room}.fault must be one of {', '.join(LAMP_FAULTS)}, got {fault!r}")
            found.append(Fault("lamp", lamp_key(device, room), room, {"fault": fault, "for_s": _seconds(state, "for_s")}))
        out["lamp"] = found
    return out


def judge(device: str, health: dict, open_keys: Iterable[tuple[str, str]]) -> tuple[list[Fault], list[tuple[str, str]]]:
    """What one health message of ``device`` does to its troubles: the faults to report (a
    fault whose trouble is open already is reported again, which changes nothing) and the
    ``(kind, key)`` of open troubles to clear. ``open_keys``: the open troubles of this device
    of the kinds in KINDS."""
    found = faults(device, health)
    report = [f for kind in KINDS for f in found.get(kind, [])]
    still = {(f.kind, f.key) for f in report}
    clear = [(kind, key) for kind, key in open_keys if kind in found and (kind, key) not in still]
    return report, clear
