"""The default pin map: which GPIO pins each room "slot" of a Pi uses.

This is the single source for the firmware's defaults, the example ``device.toml`` and the
wiring documentation in ``hardware/`` (a test keeps them from drifting apart). Pin names are
gpiozero's (``GPIO17`` is BCM 17, physical pin 11 on the 40-pin header).

Why these pins: I2C (GPIO2/3) stays free for an NFC badge reader and has fixed 1.8 kΩ pull-ups
that fight a button; UART (GPIO14/15) stays free for a serial console; GPIO9/10 stay spare.
Buttons switch to ground and use the Pi's internal pull-up; lamps and button lights drive the
gate of a logic-level MOSFET (active high), never a 12/24 V load directly. Every output is on a
pin the Pi pulls *down* at boot (GPIO9-27), so no lamp flashes while the Pi starts; GPIO4-8,
pulled up at boot, carry only buttons.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SlotPins:
    """The pins of one room on a Pi.

    call: the shopper's call button (short press: call; hold 2 s: cancel).
    size: the optional second button ("bring another size").
    presence: the staff button or key switch by the door.
    lamp: the door lamp's MOSFET gate.
    light: the call button's own LED ring (via its MOSFET).
    """

    call: str
    size: str
    presence: str
    lamp: str
    light: str

    def as_dict(self) -> dict[str, str]:
        return {"call": self.call, "size": self.size, "presence": self.presence,
                "lamp": self.lamp, "light": self.light}


#: Four rooms per Pi with every button fitted (5 pins each, 20 of the 26 usable GPIOs).
DEFAULT_SLOTS: tuple[SlotPins, ...] = (
    SlotPins(call="GPIO17", size="GPIO27", presence="GPIO22", lamp="GPIO23", light="GPIO24"),
    SlotPins(call="GPIO5", size="GPIO6", presence="GPIO13", lamp="GPIO19", light="GPIO26"),
    SlotPins(call="GPIO16", size="GPIO20", presence="GPIO21", lamp="GPIO12", light="GPIO25"),
    SlotPins(call="GPIO8", size="GPIO4", presence="GPIO7", lamp="GPIO18", light="GPIO11"),
)

#: Optional supervision inputs (hardware/README.md, "Supervision"), all on pins the slots leave free.
#: The 12 V lamp supply's sense (an optocoupler pulls the line low while the supply is there).
SUPPLY_SENSE = "GPIO9"
#: Each slot's door-lamp current sense (a comparator pulls the line low while the lamp draws
#: current). Six GPIOs are left free by the slots; the supply takes GPIO9, slots 1-3 take
#: GPIO10 and the UART's GPIO14/15 (the serial console must then stay off, as it is by
#: default). Slot 4 has no default: GPIO2/3 stay free for the NFC reader. Give it its size
#: button's pin (GPIO4, with ``no_size``) or an I2C pin on a Pi without a reader.
LAMP_SENSE: tuple[str | None, ...] = ("GPIO10", "GPIO14", "GPIO15", None)

#: BCM number → physical header pin (40-pin header), for wiring tables.
BCM_TO_PHYSICAL = {
    2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33,
    14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18,
    25: 22, 26: 37, 27: 13,
}
