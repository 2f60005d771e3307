"""A room's parts, built from its config: the buttons and outputs gpiozero drives.

Used by the device program and by the installer's self-test, so both see the same wiring.
``pin_factory`` is gpiozero's seam: None on a Pi (real GPIO), a MockFactory elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from gpiozero import LED, PWMLED, RGBLED, DigitalInputDevice
from gpiozero.pins.mock import MockFactory, MockPWMPin

from callbell.clock import Clock
from firmware.button import CallButton
from firmware.config import DeviceSection, RoomPins
from firmware.lamp import Output


@dataclass
class RoomParts:
    call: CallButton
    lamp: Output
    light: Output | None
    size: CallButton | None
    presence: CallButton | None
    #: The door lamp's current sense: active (line pulled low) while the lamp draws current.
    lamp_sense: DigitalInputDevice | None = None

    def buttons(self) -> dict[str, CallButton]:
        return {k: b for k, b in (("call", self.call), ("size", self.size), ("presence", self.presence)) if b}

    def close(self) -> None:
        for part in (self.call, self.size, self.presence, self.lamp, self.light, self.lamp_sense):
            if part:
                part.close()


def build_room(room: RoomPins, device: DeviceSection, clock: Clock, pin_factory=None) -> RoomParts:
    kw = {"pin_factory": pin_factory} if pin_factory is not None else {}

    def button(role: str) -> CallButton | None:
        pin = getattr(room, role)
        if not pin:
            return None
        return CallButton(DigitalInputDevice(pin, pull_up=True, **kw), clock, device.hold_s, device.debounce_ms,
                          min_press_ms=room.min_press_of(role, device.min_press_ms), stuck_s=device.stuck_s)

    if room.lamp_kind == "rgb":
        lamp_led = RGBLED(room.lamp, room.lamp_green, room.lamp_blue, active_high=room.lamp_active_high, **kw)
    elif room.lamp_kind == "pwm":
        lamp_led = PWMLED(room.lamp, active_high=room.lamp_active_high, **kw)
    else:
        lamp_led = LED(room.lamp, active_high=room.lamp_active_high, **kw)
    light = Output(LED(room.light, active_high=room.light_active_high, **kw)) if room.light else None
    sense = DigitalInputDevice(room.lamp_sense, pull_up=True, **kw) if room.lamp_sense else None
    return RoomParts(call=button("call"), lamp=Output(lamp_led, room.lamp_brightness), light=light,
                     size=button("size"), presence=button("presence"), lamp_sense=sense)


#: Pin changes a mock pin remembers. gpiozero's mock pins keep every change for tests to
#: inspect; a simulated device running for days would grow without end (about 1.7 KB a call).
MOCK_PIN_HISTORY = 50


class BoundedMockPWMPin(MockPWMPin):
    """gpiozero's PWM-capable mock pin, remembering only its last MOCK_PIN_HISTORY changes."""

    def _change_state(self, value):
        changed = super()._change_state(value)
        if len(self.states) > 2 * MOCK_PIN_HISTORY:  # trimmed in batches, not on every change
            del self.states[:-MOCK_PIN_HISTORY]
        return changed


def mock_pins() -> MockFactory:
    """gpiozero's mock pin factory, with PWM-capable pins so PWM and RGB lamps work too."""
    return MockFactory(pin_class=BoundedMockPWMPin)
