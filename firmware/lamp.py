"""The door lamp and the call button's light: what each state looks like.

One-colour outputs tell states apart by rhythm — at most two flash rates, both under 3 Hz
(photosensitivity guidance for public spaces). An RGB door lamp adds colour.

=================  ======================  =========================================
state              door lamp (RGB colour)  button light (inside the room)
=================  ======================  =========================================
idle               off                     off
pending            on (amber)              fast blink: sent, not yet confirmed by the hub
called             on (amber)              on: the hub has the call
acknowledged       slow blink (blue)       slow blink: someone is on the way
overdue            fast blink (red)        on
fault              (keeps its call)        short blip every 1.5 s: cannot reach the hub
=================  ======================  =========================================
"""
from __future__ import annotations

from typing import Callable

#: Flash timing, seconds (on, off). Fast ≈ 2.5 Hz, slow ≈ 0.8 Hz; both below 3 Hz.
FAST = (0.2, 0.2)
SLOW = (0.6, 0.6)
BLIP = (0.1, 1.4)

LAMP_PATTERNS = {"idle": "off", "called": "on", "acknowledged": "slow", "overdue": "fast"}
LIGHT_PATTERNS = {"idle": "off", "pending": "fast", "called": "on", "acknowledged": "slow",
                  "overdue": "on", "fault": "blip"}
#: Colours of an RGB door lamp (red, green, blue; 0-1). Amber reads as "waiting" from afar,
#: blue as "handled", red as "late"; the rhythm carries the same meaning for colour-blind eyes.
LAMP_COLOURS = {"idle": None, "called": (1.0, 0.45, 0.0), "acknowledged": (0.0, 0.35, 1.0),
                "overdue": (1.0, 0.0, 0.0)}
WHITE = (1.0, 1.0, 1.0)


class Output:
    """An LED, PWMLED or RGBLED (in practice: a MOSFET gate) that shows a named pattern.

        lamp = Output(LED("GPIO23"))
        lamp.show("slow")
        rgb = Output(RGBLED("GPIO23", "GPIO9", "GPIO10"))
        rgb.show("on", colour=(1.0, 0.45, 0.0))

    ``brightness`` (0-1) applies to PWM and RGB outputs.
    """

    def __init__(self, led, brightness: float = 1.0, on_change: Callable[[str], None] | None = None):
        self.led = led
        self.brightness = brightness
        self.rgb = hasattr(led, "color")
        self.pattern = "off"
        self.colour = None
        self._on_change = on_change

    def _level(self, colour):
        b = self.brightness
        if self.rgb:
            return tuple(c * b for c in (colour or WHITE))
        return b

    def show(self, pattern: str, colour: tuple | None = None) -> None:
        if (pattern, colour) == (self.pattern, self.colour):
            return
        self.pattern, self.colour = pattern, colour
        if pattern == "off":
            self.led.off()
        elif pattern == "on":
            self.led.value = self._level(colour) if (self.rgb or self.brightness < 1) else 1
        else:
            on, off = {"fast": FAST, "slow": SLOW, "blip": BLIP}[pattern]
            if self.rgb:
                self.led.blink(on_time=on, off_time=off, on_color=self._level(colour), background=True)
            else:
                self.led.blink(on_time=on, off_time=off, background=True)
        if self._on_change:
            self._on_change(pattern)

    def close(self) -> None:
        self.led.close()
