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
reminding          (unchanged)             fast blink: a press again, on its way
reminded           (unchanged)             two dark winks, then as before: the press again
                                           is taken (the shopper's "still waiting")
cancelling         (unchanged)             fades out while the button is held: holding
                                           on cancels the call (a plain LED: off)
fault              (keeps its call)        short blip every 1.5 s: cannot reach the hub
=================  ======================  =========================================

The printed door card (hardware/door-card.svg, hardware/door_card.py) explains these to the
shopper; it is drawn from LIGHT_MEANINGS, so the card and the code cannot disagree.
"""
from __future__ import annotations

from typing import Callable

#: Flash timing, seconds (on, off). Fast ≈ 2.5 Hz, slow ≈ 0.8 Hz; both below 3 Hz.
FAST = (0.2, 0.2)
SLOW = (0.6, 0.6)
BLIP = (0.1, 1.4)
#: Two dark winks (on, off; twice), 1.7 Hz: "taken" after a press again. Then the light
#: shows its state again.
WINK = (0.3, 0.3)
WINKS = 2
WINK_S = WINKS * sum(WINK)
#: How long the light takes to fade out while the button is held, seconds: about the rest of
#: the default 2 s hold after the 0.5 s it takes to tell a hold from a tap (firmware/button.py).
FADE_S = 1.5

LAMP_PATTERNS = {"idle": "off", "called": "on", "acknowledged": "slow", "overdue": "fast"}
LIGHT_PATTERNS = {"idle": "off", "pending": "fast", "called": "on", "acknowledged": "slow",
                  "overdue": "on", "reminding": "fast", "reminded": "wink", "cancelling": "fade",
                  "fault": "blip"}

#: What each button light state tells the shopper, in the order of the door card.
LIGHT_MEANINGS = (
    ("pending", "Blinks fast", "Your call is on its way."),
    ("called", "On", "We have your call: someone will be with you shortly."),
    ("acknowledged", "Blinks slowly", "Someone is on the way to you."),
    ("reminded", "Winks twice", "Pressed again: we know you are still waiting."),
    ("cancelling", "Fades out", "Holding the button for 2 s cancels your call."),
    ("idle", "Off", "No call. Press once to call."),
    ("fault", "A short flash now and then", "The button cannot reach us: please ask at the desk."),
)
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
        elif pattern == "wink":
            on, off = WINK
            if self.rgb:
                self.led.blink(on_time=on, off_time=off, on_color=self._level(colour), n=WINKS, background=True)
            else:
                self.led.blink(on_time=on, off_time=off, n=WINKS, background=True)
        elif pattern == "fade":
            if hasattr(self.led, "pulse"):  # PWM or RGB: fade from the current level to dark, once
                kw = {"on_color": self._level(colour)} if self.rgb else {}
                self.led.blink(on_time=0, off_time=0.01, fade_in_time=0, fade_out_time=FADE_S, n=1,
                               background=True, **kw)
            else:
                self.led.off()
        else:
            on, off = {"fast": FAST, "slow": SLOW, "blip": BLIP}[pattern]
            if self.rgb:
                self.led.blink(on_time=on, off_time=off, on_color=self._level(colour), background=True)
            else:
                self.led.blink(on_time=on, off_time=off, background=True)
        if self._on_change:
            self._on_change(pattern)

    def hold(self, on: bool, colour: tuple | None = None) -> None:
        """Set the output steady ``on`` (an RGB lamp: the channels of ``colour``) or off, and
        let go of it without releasing its pin, so that it stays so after the program has
        ended. Closing would make the pin an input (gpiozero does that to every pin it holds
        when the program exits), and the gate's pull-down would turn the lamp off; a pin the
        program no longer holds keeps its level (docs/firmware.md, "When the program stops").
        Software PWM dies with the program, so a dimmed lamp is held at full level."""
        channels = getattr(self.led, "_leds", None) or (self.led,)  # an RGBLED's three LEDs
        for i, led in enumerate(channels):
            lit = on and (not self.rgb or colour is None or colour[i] > 0)
            led.on() if lit else led.off()  # stops a blink (an RGBLED's too: it is the channels' controller)
            pin = led.pin
            pin.frequency = None
            pin.state = 1 if lit == led.active_high else 0
            # Forget the pin without closing it: unreserved, out of the factory's table, and the
            # device closed, so no exit handler turns it back into an input.
            factory = led.pin_factory
            factory.release_pins(led, pin.info.name)
            factory.pins.pop(pin.info, None)
            led._pin = None
        self.pattern = "held on" if on else "held off"

    def close(self) -> None:
        self.led.close()
