"""``callbell device selftest``: the installer's check of every lamp and button of a Pi.

1. Every room's door lamp and button light cycle through each pattern, with a line saying what
   should be visible now (see firmware/lamp.py), so a wrong wire or a dead LED shows at once.
2. Then it asks for each button in turn ("press the CALL button in fitting-1") and waits for it;
   a button that does not answer within the timeout is reported with its GPIO and header pin.

It touches no network: it checks the wiring of this Pi alone. The exit code is 0 only when
every button answered. With ``--mock`` the buttons are pressed by the program itself (to try
the flow without hardware).
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from callbell.clock import Clock, SystemClock
from firmware.config import DeviceConfig
from firmware.lamp import LAMP_COLOURS, LAMP_PATTERNS, LIGHT_PATTERNS
from firmware.pinmap import BCM_TO_PHYSICAL
from firmware.wiring import build_room

#: Seconds each pattern is shown: long enough to see a slow blink twice.
PATTERN_S = 2.5
#: Seconds to wait for each button before reporting it as not working.
BUTTON_TIMEOUT_S = 30.0

#: (state shown, what the installer should see)
STEPS = (
    ("called", "door lamp ON steady, button light ON steady"),
    ("acknowledged", "door lamp and button light blink SLOWLY"),
    ("overdue", "door lamp blinks FAST, button light ON steady"),
    ("pending", "door lamp ON, button light blinks FAST"),
    ("fault", "button light gives a SHORT BLIP every 1.5 s"),
    ("idle", "everything OFF"),
)

BUTTON_NAMES = {"call": "CALL", "size": "SIZE", "presence": "STAFF (by the door)"}


def header_pin(gpio: str) -> str:
    bcm = int(gpio.removeprefix("GPIO"))
    return f"{gpio}, header pin {BCM_TO_PHYSICAL.get(bcm, '?')}"


class SelfTest:
    def __init__(self, config: DeviceConfig, *, pin_factory=None, say: Callable[[str], None] = print,
                 pattern_s: float = PATTERN_S, button_timeout_s: float = BUTTON_TIMEOUT_S,
                 press: Callable[[str, str], None] | None = None, clock: Clock | None = None):
        """``press(room, role)``, if given, presses a button for the installer (mock pins);
        ``clock`` times the buttons' edges (default: the system's)."""
        self.config = config
        self.say = say
        self.pattern_s = pattern_s
        self.button_timeout_s = button_timeout_s
        self.press = press
        clock = clock or SystemClock()
        self.parts = {r.id: build_room(r, config.device, clock, pin_factory) for r in config.rooms}
        self.pins = {r.id: r for r in config.rooms}

    def run(self) -> bool:
        try:
            self.lamps()
            results = self.buttons()
        finally:
            for p in self.parts.values():
                p.close()
        failed = [name for name, ok in results if not ok]
        self.say("")
        if failed:
            self.say(f"FAILED: {len(failed)} of {len(results)} buttons did not answer: {', '.join(failed)}")
            self.say("Check those wires and the interface board (hardware/README.md), then run the self-test again.")
            return False
        self.say(f"PASSED: all {len(results)} buttons answered. Lamps: confirm you saw every pattern above.")
        return True

    def lamps(self) -> None:
        self.say(f"Lamp check: each pattern shows for {self.pattern_s:g} s on every room at once.")
        for state, what in STEPS:
            for parts in self.parts.values():
                lamp_state = {"pending": "called", "fault": "called"}.get(state, state)
                parts.lamp.show(LAMP_PATTERNS[lamp_state], LAMP_COLOURS[lamp_state])
                if parts.light:
                    parts.light.show(LIGHT_PATTERNS[state])
            self.say(f"  {state:<13} {what}")
            time.sleep(self.pattern_s)

    def buttons(self) -> list[tuple[str, bool]]:
        self.say(f"Button check: press each button when asked ({self.button_timeout_s:g} s each).")
        results = []
        for room_id, parts in self.parts.items():
            for role, button in parts.buttons().items():
                name = f"{room_id} {role}"
                pressed = threading.Event()
                button.when_press = lambda t, e=pressed: e.set()  # a real press, not a glitch
                button.when_short = button.when_held = None
                parts.lamp.show("fast")  # show which room is being asked for
                self.say(f"  press the {BUTTON_NAMES[role]} button in {room_id} …")
                if self.press:
                    threading.Timer(0.05, self.press, args=(room_id, role)).start()
                ok = pressed.wait(self.button_timeout_s)
                parts.lamp.show("off")
                pin = getattr(self.pins[room_id], role)
                self.say(f"    {'ok' if ok else 'NOT PRESSED'}: {name} ({header_pin(pin)})")
                results.append((name, ok))
        return results
