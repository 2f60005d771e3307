"""The door lamp and the call button's light: what each state looks like.

One-colour outputs, so states are told apart by rhythm — at most two flash rates, both under
3 Hz (photosensitivity guidance for public spaces):

=================  ====================  =========================================
state              door lamp             button light (inside the room)
=================  ====================  =========================================
idle               off                   off
pending            on                    fast blink: sent, not yet confirmed by the hub
called             on                    on: the hub has the call
acknowledged       slow blink            slow blink: someone is on the way
overdue            fast blink            on
fault              (keeps its call)      short blip every 1.5 s: cannot reach the hub
=================  ====================  =========================================
"""
from __future__ import annotations

from typing import Callable

from gpiozero import LED

#: Flash timing, seconds (on, off). Fast ≈ 2.5 Hz, slow ≈ 0.8 Hz; both below 3 Hz.
FAST = (0.2, 0.2)
SLOW = (0.6, 0.6)
BLIP = (0.1, 1.4)

LAMP_PATTERNS = {"idle": "off", "called": "on", "acknowledged": "slow", "overdue": "fast"}
LIGHT_PATTERNS = {"idle": "off", "pending": "fast", "called": "on", "acknowledged": "slow",
                  "overdue": "on", "fault": "blip"}


class Output:
    """An LED-like output (a MOSFET gate) that shows a named pattern.

        lamp = Output(LED("GPIO23"))
        lamp.show("slow")
    """

    def __init__(self, led: LED, on_change: Callable[[str], None] | None = None):
        self.led = led
        self.pattern = "off"
        self._on_change = on_change

    def show(self, pattern: str) -> None:
        if pattern == self.pattern:
            return
        self.pattern = pattern
        if pattern == "off":
            self.led.off()
        elif pattern == "on":
            self.led.on()
        else:
            on, off = {"fast": FAST, "slow": SLOW, "blip": BLIP}[pattern]
            self.led.blink(on_time=on, off_time=off, background=True)
        if self._on_change:
            self._on_change(pattern)

    def close(self) -> None:
        self.led.close()
