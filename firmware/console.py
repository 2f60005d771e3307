"""The device's line interface with mock pins: a supported seam for tests, demos and
installers without hardware (docs/firmware.md).

Commands on standard input, one per line::

    press ROOM       short press of the call button (a call, reason "help")
    size ROOM        short press of the "size" button (a call, reason "size")
    hold ROOM        hold the call button past hold_s (cancel)
    presence ROOM    press the staff button by the door
    quit             stop (end of input does the same)

Output on standard output, one line per change::

    lamp ROOM STATE      door lamp: idle | called | acknowledged | overdue
    light ROOM PATTERN   button light: idle | pending | called | acknowledged | overdue | fault
    status ok|fault      the device can (not) reach the hub
    error MESSAGE        a command that could not be done, or an event the hub refused
                         (a room or reason the hub's store.toml does not know)
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from gpiozero.pins.mock import MockFactory
from firmware.wiring import mock_pins

from firmware.device import Device

#: How long a simulated short press holds the button down, seconds: a quick human press.
PRESS_S = 0.08


class Console:
    """Drives a Device's mock pins from text commands and reports what its outputs show."""

    def __init__(self, out: TextIO | None = sys.stdout):
        self.out = out
        self._lock = threading.Lock()
        self.factory = mock_pins()
        self._devices: list[tuple[Device, MockFactory]] = []

    def display(self, room: str, what: str, state: str) -> None:
        if self.out is None:
            return
        line = f"{what} {state}" if what in ("status", "error") or not room else f"{what} {room} {state}"
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def attach(self, device: Device, factory: MockFactory | None = None) -> None:
        """Drive ``device``, whose pins come from ``factory`` (default: this console's)."""
        self._devices.append((device, factory or self.factory))

    def device_of(self, room: str) -> tuple[Device, MockFactory]:
        for device, factory in self._devices:
            if room in device.rooms:
                return device, factory
        rooms = ", ".join(r for d, _ in self._devices for r in d.rooms)
        raise KeyError(f"unknown room {room!r} (rooms here: {rooms})")

    def pin(self, room: str, role: str):
        device, factory = self.device_of(room)
        r = next(r for r in device.config.rooms if r.id == room)
        name = getattr(r, role)
        if not name:
            raise KeyError(f"room {room!r} has no {role} button")
        return factory.pin(int(name.removeprefix("GPIO")))

    def push(self, room: str, role: str, seconds: float) -> None:
        pin = self.pin(room, role)
        pin.drive_low()
        time.sleep(seconds)
        pin.drive_high()

    def run_command(self, line: str) -> bool:
        """Do one command; returns False on quit."""
        parts = line.split()
        if not parts:
            return True
        cmd, args = parts[0].lower(), parts[1:]
        if cmd in ("quit", "exit"):
            return False
        try:
            if cmd not in ("press", "size", "hold", "presence") or len(args) != 1:
                raise KeyError(f"unknown command {line.strip()!r}; use press|size|hold|presence ROOM, or quit")
            room = args[0]
            if cmd == "press":
                self.push(room, "call", PRESS_S)
            elif cmd == "size":
                self.push(room, "size", PRESS_S)
            elif cmd == "hold":
                device, _ = self.device_of(room)
                self.push(room, "call", device.config.device.hold_s + 0.2)
            else:
                self.push(room, "presence", PRESS_S)
        except KeyError as e:
            self.display("", "error", str(e).strip("'\""))
        return True

    def serve(self, stream: TextIO = sys.stdin) -> None:
        for line in stream:
            if not self.run_command(line):
                break
