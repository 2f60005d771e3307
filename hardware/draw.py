"""Draw Callbell's wiring pictures and the pin map table from ``firmware/pinmap.py``.

Run from the repository root::

    python -m hardware.draw            # (re)writes hardware/*.svg, hardware/pinmap.md and the
                                       # parts and pin tables in hardware/README.md
    python -m hardware.draw --check    # writes nothing; exits 1 if a file is out of date

Everything here is pure Python standard library that writes SVG text, so the pictures need no
drawing program and no new dependency. The same functions are what ``tests/test_hardware.py``
calls to make sure the committed files match the firmware's pin map:

    >>> svgs = render_all()
    >>> sorted(svgs)[0]
    'button-input.svg'
    >>> "| 1 | J1 | call button" in pinmap_markdown()
    True
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: python hardware/draw.py
    sys.path.insert(0, str(HERE.parent))

from firmware.pinmap import BCM_TO_PHYSICAL, DEFAULT_SLOTS, LAMP_SENSE, SUPPLY_SENSE, SlotPins  # noqa: E402

# --------------------------------------------------------------------------------------------
# What is wired where (the pin numbers come from firmware/pinmap.py; the rest is the hardware's)
# --------------------------------------------------------------------------------------------

PINMAP_FILE = "pinmap.md"
PARTS_FILE = "parts.csv"
README_FILE = "README.md"
PARTS_BEGIN = "<!-- parts table: generated from parts.csv by hardware/draw.py -->"
PARTS_END = "<!-- end of parts table -->"
PINS_BEGIN = "<!-- pin map table: generated from firmware/pinmap.py by hardware/draw.py -->"
PINS_END = "<!-- end of pin map table -->"

#: Rooms per Pi with the default pin map.
ROOMS_PER_PI = len(DEFAULT_SLOTS)

#: What each SlotPins field is, in the order of SlotPins.as_dict().
FUNCTIONS: dict[str, tuple[str, str]] = {
    "call": ("call button", "input, pull-up; pressed = 0 V"),
    "size": ("size button (optional)", "input, pull-up; pressed = 0 V"),
    "presence": ("staff presence button / key switch", "input, pull-up; pressed = 0 V"),
    "lamp": ("door lamp (MOSFET gate)", "output, high = on"),
    "light": ("button LED ring (MOSFET gate)", "output, high = on"),
}
INPUTS = ("call", "size", "presence")
SHORT = {"call": "call button", "size": "size button", "presence": "presence button",
         "lamp": "door lamp", "light": "button light"}
OUTPUTS = ("lamp", "light")

# CAT5e/CAT6 conductor colours (T568 colour names).
ORANGE, GREEN, BLUE, BROWN = "#f08a24", "#2f9e44", "#1f6fd1", "#8a5a2b"
WIRES: dict[str, tuple[str, str | None]] = {
    "white/orange": ("#ffffff", ORANGE), "orange": (ORANGE, None),
    "white/green": ("#ffffff", GREEN), "green": (GREEN, None),
    "white/blue": ("#ffffff", BLUE), "blue": (BLUE, None),
    "white/brown": ("#ffffff", BROWN), "brown": (BROWN, None),
}


@dataclass(frozen=True)
class Terminal:
    """One pole of a room connector (J1..J4) and the cable conductor on it."""

    number: int
    key: str      # a SlotPins field, or "gnd", "light+", "lamp+"
    label: str
    wire: str


#: The 8-pole room connector. Pairs: orange = call + common, green = size + presence,
#: blue = button light, brown = door lamp. Striped conductor first, solid second.
TERMINALS: tuple[Terminal, ...] = (
    Terminal(1, "gnd", "GND, button common", "white/orange"),
    Terminal(2, "call", "CALL button", "orange"),
    Terminal(3, "size", "SIZE button", "white/green"),
    Terminal(4, "presence", "PRESENCE button", "green"),
    Terminal(5, "light+", "+12 V, button light", "white/blue"),
    Terminal(6, "light", "button light −, switched", "blue"),
    Terminal(7, "lamp+", "+12 V, door lamp", "white/brown"),
    Terminal(8, "lamp", "door lamp −, switched", "brown"),
)
TERMINAL_BY_KEY = {t.key: t for t in TERMINALS}

#: Header pins that are not GPIOs (40-pin header, every Pi since the B+).
POWER_PINS: dict[int, str] = {
    1: "3V3", 17: "3V3", 2: "5V", 4: "5V",
    6: "GND", 9: "GND", 14: "GND", 20: "GND", 25: "GND", 30: "GND", 34: "GND", 39: "GND",
    27: "ID_SD", 28: "ID_SC",
}

#: GPIOs kept free on purpose, and why (see firmware/pinmap.py).
RESERVED: dict[int, str] = {
    2: "I2C SDA: NFC badge reader",
    3: "I2C SCL: NFC badge reader",
    14: "UART TX: serial console",
    15: "UART RX: serial console",
}

#: At power-on, before Linux runs, GPIO0-8 have their internal pull-up on and GPIO9-27
#: their pull-down (BCM2835/BCM2711 reset state).
BOOT_PULL_UP = range(0, 9)

#: Interfaces that would take pins over if switched on in config.txt: (name, setting) → GPIOs.
SHARED_INTERFACES: dict[tuple[str, str], tuple[int, ...]] = {
    ("SPI", "dtparam=spi=on"): (7, 8, 9, 10, 11),
    ("1-Wire", "dtoverlay=w1-gpio"): (4,),
    ("I2S audio", "dtparam=i2s=on"): (18, 19, 20, 21),
}

#: Fuse ratings used in the drawings (and parts.csv): one fuse per Pi, one PTC per room.
SUPPLY_FUSE = "3.15 A time-lag"
ROOM_PTC = "0.75 A"

SLOT_COLOURS = ("#1f6fd1", "#2f9e44", "#e8590c", "#9c36b5")

INK = "#222222"
MUTED = "#666666"
BOARD = "#fff4d6"
FONT = "Arial, Helvetica, 'Liberation Sans', 'DejaVu Sans', sans-serif"


def bcm(name: str) -> int:
    """``"GPIO17"`` → 17."""
    if not name.startswith("GPIO"):
        raise ValueError(f"not a GPIO name: {name!r}")
    return int(name[4:])


def physical(name: str) -> int:
    """Physical header pin of a gpiozero pin name: ``"GPIO17"`` → 11."""
    return BCM_TO_PHYSICAL[bcm(name)]


# --------------------------------------------------------------------------------------------
# The pin map table
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PinRow:
    slot: int
    connector: str
    function: str      # SlotPins field
    gpio: str
    pin: int
    terminal: Terminal


def pinmap_rows(slots: tuple[SlotPins, ...] = DEFAULT_SLOTS) -> list[PinRow]:
    """One row per (slot, function), in slot order and SlotPins field order."""
    rows = []
    for number, slot in enumerate(slots, start=1):
        for function, gpio in slot.as_dict().items():
            rows.append(PinRow(number, f"J{number}", function, gpio, physical(gpio),
                               TERMINAL_BY_KEY[function]))
    return rows


def output_pins(slots: tuple[SlotPins, ...] = DEFAULT_SLOTS) -> list[str]:
    return [getattr(s, f) for s in slots for f in OUTPUTS]


def boot_config_line(slots: tuple[SlotPins, ...] = DEFAULT_SLOTS) -> str:
    """The config.txt line that drives every lamp gate low from early in boot."""
    return "gpio=" + ",".join(str(bcm(p)) for p in output_pins(slots)) + "=op,dl"


def pinmap_markdown(slots: tuple[SlotPins, ...] = DEFAULT_SLOTS) -> str:
    """The text of hardware/pinmap.md, generated from the firmware's default pin map."""
    rows = pinmap_rows(slots)
    used = {bcm(r.gpio) for r in rows}
    out = io.StringIO()
    w = out.write
    w("<!-- Generated by hardware/draw.py from firmware/pinmap.py (DEFAULT_SLOTS). "
      "Do not edit: run `python -m hardware.draw`. -->\n\n")
    w("# Default pin map\n\n")
    w(f"One Pi serves up to **{len(slots)} rooms** (\"slots\"), {len(rows) // len(slots)} pins "
      f"each: {len(rows)} of the {len(BCM_TO_PHYSICAL)} GPIOs on the 40-pin header. Slot *n* is "
      f"wired to room connector J*n* on the interface board. Buttons switch the line to GND "
      f"(pressed = 0 V); outputs drive the gate of a logic-level MOSFET (high = lamp on). "
      f"\"Pin\" is the physical pin of the 40-pin header (pin 1 is the square pad, 3.3 V).\n\n")
    w("| slot | connector | function | GPIO | header pin | terminal | cable wire | direction |\n")
    w("|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        name, direction = FUNCTIONS[r.function]
        w(f"| {r.slot} | {r.connector} | {name} | {r.gpio} | {r.pin} | "
          f"{r.connector}-{r.terminal.number} | {r.terminal.wire} | {direction} |\n")
    w("\n## The other terminals of each room connector\n\n")
    w("| terminal | cable wire | what |\n|---|---|---|\n")
    for t in TERMINALS:
        if t.key in FUNCTIONS:
            continue
        w(f"| {t.number} | {t.wire} | {t.label} |\n")
    w("\n## Power pins used by the interface board\n\n")
    w("| header pins | what |\n|---|---|\n")
    for label, what in (("3V3", "3.3 V for the button pull-ups (a few mA in total)"),
                        ("GND", "ground: joined to the 12 V supply's minus on the interface "
                                "board, at one point")):
        pins = ", ".join(str(p) for p, n in sorted(POWER_PINS.items()) if n == label)
        w(f"| {pins} | {what} |\n")
    w("| 2, 4 | 5 V: not used by the interface board (never connect it to a GPIO) |\n")
    w("| 27, 28 | ID_SD / ID_SC: reserved for HAT EEPROMs, never use |\n")
    w("\n## GPIOs left free\n\n")
    w("| GPIO | header pin | kept for |\n|---|---|---|\n")
    sense = {bcm(SUPPLY_SENSE): "the 12 V supply sense"}
    sense.update({bcm(p): f"slot {i} lamp sense" for i, p in enumerate(LAMP_SENSE, start=1) if p})
    for n in sorted(set(BCM_TO_PHYSICAL) - used):
        kept = RESERVED.get(n, "spare")
        if n in sense:
            kept += f"; or {sense[n]} (optional supervision, below)"
        w(f"| GPIO{n} | {BCM_TO_PHYSICAL[n]} | {kept} |\n")
    w("\n## Optional supervision inputs\n\n")
    w("The 12 V supply sense and the door-lamp current senses ([supervision.svg](supervision.svg), "
      "[README](README.md#supervision-optional-supply-and-lamp-sense)) take pins the slots leave "
      "free. Each input pulls its line to 0 V while all is well (supply there, lamp drawing "
      "current), so a missing part or a broken wire reads as a fault. Switch them on in "
      "`device.toml` with `supply_sense = true` (in `[device]`) and `lamp_sense = true` (in a "
      "room) for these pins, or give a pin.\n\n")
    w("| input | GPIO | header pin | `device.toml` | note |\n|---|---|---|---|---|\n")
    w(f"| 12 V supply sense (optocoupler) | {SUPPLY_SENSE} | {physical(SUPPLY_SENSE)} | "
      f"`[device] supply_sense = true` | one per Pi |\n")
    for i, pin in enumerate(LAMP_SENSE, start=1):
        if pin is None:
            w(f"| slot {i} door-lamp current sense | — | — | `lamp_sense = \"GPIO..\"` | no free pin "
              f"left: use slot {i}'s size-button pin ({DEFAULT_SLOTS[i - 1].size}) with `no_size = true`, "
              f"or GPIO2/3 on a Pi without an NFC reader |\n")
            continue
        note = RESERVED.get(bcm(pin), "spare")
        note = f"the {note.split(':')[0]} pin: keep the serial console off" if "UART" in note else "was spare"
        w(f"| slot {i} door-lamp current sense (comparator) | {pin} | {physical(pin)} | "
          f"`lamp_sense = true` | {note} |\n")
    w("\n## Lamps stay off while the Pi boots\n\n")
    w("Until the firmware starts, every GPIO is an input. At power-on GPIO0–8 have their "
      "internal pull-up (about 50 kΩ) switched on and GPIO9–27 their pull-down. ")
    risky = [r for r in rows if r.function in OUTPUTS and bcm(r.gpio) in BOOT_PULL_UP]
    if risky:
        names = "; ".join(f"{r.gpio} (slot {r.slot} {SHORT[r.function]})" for r in risky)
        w(f"Outputs among GPIO0–8: {names}. Each gate has a 4.7 kΩ pull-down to GND on the "
          "interface board, which holds it below 0.4 V against that pull-up, so the lamp stays "
          "off (a 100 kΩ pull-down would leave the gate at about 2.2 V, above the MOSFET's "
          "threshold, and light the lamp at every boot). ")
    else:
        w("No output is among GPIO0–8. Each gate still has a 4.7 kΩ pull-down on the interface "
          "board. ")
    w("To drive all gates low as soon as the Pi's firmware starts, also add this line to "
      "`config.txt` on the boot partition (`/boot/firmware/config.txt` on current Raspberry "
      "Pi OS):\n\n")
    w(f"```\n{boot_config_line(slots)}\n```\n\n")
    clashes = []
    for (name, setting), gpios in SHARED_INTERFACES.items():
        taken = sorted(used & set(gpios))
        if taken:
            clashes.append(f"{name} (`{setting}`): GPIO" + ", ".join(str(n) for n in taken))
    if clashes:
        w("Leave these interfaces switched off in `config.txt`; their pins are used by the pin "
          "map, and switching one on hands them to a kernel driver: " + "; ".join(clashes)
          + ".\n")
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# The parts table (README) from parts.csv
# --------------------------------------------------------------------------------------------

def read_parts(text: str | None = None) -> list[dict[str, str]]:
    if text is None:
        text = (HERE / PARTS_FILE).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _qty(value: str, unit: str) -> str:
    if not value:
        return ""
    return value if unit in ("pcs", "") else f"{value} {unit}"


def _eur(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}".rstrip("0").rstrip(".")


def parts_totals(parts: list[dict[str, str]]) -> tuple[float, float]:
    """(per room, per Pi) in EUR, counting required parts only."""
    room = pi = 0.0
    for p in parts:
        if p["need"] != "required":
            continue
        price = float(p["unit_price_eur"])
        room += float(p["qty_per_room"] or 0) * price
        pi += float(p["qty_per_pi"] or 0) * price
    return room, pi


def parts_markdown(parts: list[dict[str, str]] | None = None) -> str:
    """The parts table for hardware/README.md (between the PARTS_BEGIN/PARTS_END markers)."""
    if parts is None:
        parts = read_parts()
    out = io.StringIO()
    w = out.write
    section = None
    for p in parts:
        if p["section"] != section:
            section = p["section"]
            if out.tell():
                w("\n")
            w(f"**{section}**\n\n")
            w("| item | example | per room | per Pi | ≈ EUR each | need | what it is for |\n")
            w("|---|---|---|---|---|---|---|\n")
        w(f"| {p['item']} | {p['example']} | {_qty(p['qty_per_room'], p['unit'])} | "
          f"{_qty(p['qty_per_pi'], p['unit'])} | {_eur(float(p['unit_price_eur']))} | "
          f"{p['need']} | {p['purpose']} |\n")
    room, pi = parts_totals(parts)
    w(f"\nRequired parts only, typical prices: about **{_eur(room)} EUR per room** plus "
      f"**{_eur(pi)} EUR per Pi**, so a set of {ROOMS_PER_PI} rooms costs about "
      f"**{_eur(pi + ROOMS_PER_PI * room)} EUR**. Prices are rough 2024–2025 retail figures "
      f"in EUR incl. VAT; check your supplier.\n")
    return out.getvalue()


def pin_table_markdown(slots: tuple[SlotPins, ...] = DEFAULT_SLOTS) -> str:
    """A compact pin map for hardware/README.md: function × slot → GPIO (header pin)."""
    out = io.StringIO()
    w = out.write
    w("| function | terminal | " + " | ".join(f"slot {i} (J{i})" for i in range(1, len(slots) + 1))
      + " |\n")
    w("|---|---|" + "---|" * len(slots) + "\n")
    for f, (name, _) in FUNCTIONS.items():
        t = TERMINAL_BY_KEY[f]
        cells = " | ".join(f"{getattr(s, f)} (pin {physical(getattr(s, f))})" for s in slots)
        w(f"| {name} | {t.number}, {t.wire} | {cells} |\n")
    return out.getvalue()


def replace_block(text: str, begin: str, end: str, block: str) -> str:
    """``text`` with everything between the ``begin`` and ``end`` markers replaced."""
    start = text.index(begin) + len(begin)
    stop = text.index(end, start)
    return text[:start] + "\n" + block + text[stop:]


def readme_with_tables(readme: str) -> str:
    """hardware/README.md with its generated parts and pin map tables brought up to date."""
    readme = replace_block(readme, PARTS_BEGIN, PARTS_END, parts_markdown())
    return replace_block(readme, PINS_BEGIN, PINS_END, pin_table_markdown())


# --------------------------------------------------------------------------------------------
# A tiny SVG writer
# --------------------------------------------------------------------------------------------

def _num(v: float) -> str:
    v = round(float(v), 2)
    if v == int(v):
        return str(int(v))
    return repr(v)


def _el(tag: str, body: str | None = None, **attrs: object) -> str:
    parts = [tag]
    for key, value in attrs.items():
        if value is None:
            continue
        key = key.rstrip("_").replace("_", "-")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _num(value)
        parts.append(f"{key}={quoteattr(str(value))}")
    head = " ".join(parts)
    if body is None:
        return f"<{head}/>"
    return f"<{head}>{body}</{tag}>"


def _points(points) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


class Canvas:
    """An SVG picture built element by element, rendered with ``svg()``."""

    def __init__(self, width: int, height: int, title: str, desc: str = ""):
        self.width, self.height = width, height
        self.title, self.desc = title, desc
        self.items: list[str] = []

    def line(self, x1, y1, x2, y2, color=INK, width=2.0, dash=None):
        self.items.append(_el("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=color,
                              stroke_width=width, stroke_dasharray=dash, stroke_linecap="round"))

    def polyline(self, points, color=INK, width=2.0, dash=None, fill="none"):
        self.items.append(_el("polyline", points=_points(points), fill=fill, stroke=color,
                              stroke_width=width, stroke_dasharray=dash,
                              stroke_linejoin="round", stroke_linecap="round"))

    def polygon(self, points, fill=INK, color=INK, width=1.5):
        self.items.append(_el("polygon", points=_points(points), fill=fill, stroke=color,
                              stroke_width=width, stroke_linejoin="round"))

    def rect(self, x, y, w, h, fill="none", color=INK, width=2.0, rx=0, dash=None):
        self.items.append(_el("rect", x=x, y=y, width=w, height=h, rx=rx or None, fill=fill,
                              stroke=color, stroke_width=width, stroke_dasharray=dash))

    def circle(self, cx, cy, r, fill="none", color=INK, width=2.0):
        self.items.append(_el("circle", cx=cx, cy=cy, r=r, fill=fill, stroke=color,
                              stroke_width=width))

    def text(self, x, y, s, size=15, anchor="start", bold=False, color=INK, italic=False,
             halo=False):
        """Text with its baseline at y; ``halo`` keeps it readable on top of wires."""
        self.items.append(_el("text", escape(s), x=x, y=y, font_size=size,
                              text_anchor=None if anchor == "start" else anchor,
                              font_weight="bold" if bold else None,
                              font_style="italic" if italic else None,
                              fill=None if color == INK else color,
                              stroke="#ffffff" if halo else None,
                              stroke_width=4 if halo else None,
                              stroke_linejoin="round" if halo else None,
                              paint_order="stroke" if halo else None))

    def lines(self, x, y, texts, size=15, gap=None, **kw):
        """Several lines of text, top line's baseline at y; returns the next free baseline."""
        gap = gap or round(size * 1.35)
        for t in texts:
            self.text(x, y, t, size=size, **kw)
            y += gap
        return y

    @contextmanager
    def group(self, transform: str):
        self.items.append(f'<g transform="{transform}">')
        yield
        self.items.append("</g>")

    def svg(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
                f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
                f'font-family="{FONT}" font-size="15" fill="{INK}">')
        body = [head, _el("title", escape(self.title))]
        if self.desc:
            body.append(_el("desc", escape(self.desc)))
        body.append(_el("rect", x=0, y=0, width=self.width, height=self.height, fill="#ffffff"))
        body.extend(self.items)
        body.append("</svg>")
        return "\n".join(body) + "\n"

    # ---- wiring helpers ------------------------------------------------------------------

    def wire(self, points, name: str, width=5.0):
        """A cable conductor in its colour; striped conductors are drawn white with dashes."""
        base, stripe = WIRES[name]
        self.polyline(points, color="#444444", width=width + 2.5)
        self.polyline(points, color=base, width=width)
        if stripe:
            self.polyline(points, color=stripe, width=width, dash="8 6")

    def netlabel(self, x, y, label):
        """A net name flag whose point touches (x, y) from the right."""
        w = len(label) * 8 + 16
        self.polygon([(x, y), (x + 10, y - 12), (x + w, y - 12), (x + w, y + 12), (x + 10, y + 12)],
                     fill="#ffffff", color=INK, width=1.8)
        self.text(x + 12 + (w - 10) / 2 - 6, y + 5, label, size=13, anchor="middle", bold=True)

    def dot(self, x, y, r=4.0):
        self.circle(x, y, r, fill=INK, color=INK, width=1)

    def ground(self, x, y):
        self.line(x - 13, y, x + 13, y, width=2.5)
        self.line(x - 8, y + 5, x + 8, y + 5, width=2.5)
        self.line(x - 3.5, y + 10, x + 3.5, y + 10, width=2.5)

    def rail(self, x, y, label, color=INK):
        self.line(x - 14, y, x + 14, y, width=3, color=color)
        self.text(x, y - 8, label, size=14, anchor="middle", bold=True, color=color)

    def terminal(self, x, y, number):
        self.rect(x - 7, y - 7, 14, 14, fill="#ffffff", width=1.8)
        self.circle(x, y, 3, fill=INK, width=1)
        self.text(x, y - 11, str(number), size=12, anchor="middle", color=MUTED)

    def part(self, kind, x1, y1, x2, y2, color=INK):
        """A two-terminal component from (x1, y1) to (x2, y2), axis-aligned.

        Diodes, TVS and LEDs point from the first point (anode) to the second (cathode).
        """
        length = math.hypot(x2 - x1, y2 - y1)
        angle = round(math.degrees(math.atan2(y2 - y1, x2 - x1)))
        half = _HALF[kind]
        mid = length / 2
        with self.group(f"translate({_num(x1)},{_num(y1)}) rotate({angle})"):
            self.line(0, 0, mid - half, 0, color=color)
            self.line(mid + half, 0, length, 0, color=color)
            with self.group(f"translate({_num(mid)},0)"):
                _BODIES[kind](self, color)


def _resistor(c: Canvas, color):
    c.rect(-22, -8, 44, 16, fill="#ffffff", color=color)


def _capacitor(c: Canvas, color):
    c.line(-5, -15, -5, 15, color=color, width=3)
    c.line(5, -15, 5, 15, color=color, width=3)


def _diode(c: Canvas, color):
    c.polygon([(-9, -10), (-9, 10), (9, 0)], fill=color, color=color)
    c.line(9, -10, 9, 10, color=color, width=2.5)


def _tvs(c: Canvas, color):
    c.polygon([(-9, -10), (-9, 10), (9, 0)], fill="#ffffff", color=color, width=2)
    c.polyline([(4, -14), (9, -10), (9, 10), (14, 14)], color=color, width=2.5)


def _led(c: Canvas, color):
    _diode(c, color)
    for dx in (-6, 3):
        c.line(dx, -13, dx + 9, -24, color=color, width=1.8)
        c.polygon([(dx + 9, -24), (dx + 3.5, -21.5), (dx + 7.5, -18)], fill=color, color=color,
                  width=1)


def _fuse(c: Canvas, color):
    c.rect(-20, -7, 40, 14, fill="#ffffff", color=color)
    c.line(-20, 0, 20, 0, color=color, width=1.5)


def _ptc(c: Canvas, color):
    c.rect(-22, -8, 44, 16, fill="#ffffff", color=color)
    c.polyline([(-30, 14), (-20, 14), (22, -14)], color=color, width=1.5)


def _switch(c: Canvas, color):
    c.circle(-13, 0, 3, fill="#ffffff", color=color)
    c.circle(13, 0, 3, fill="#ffffff", color=color)
    c.line(-17, -9, 17, -9, color=color, width=2.5)
    c.line(0, -9, 0, -22, color=color, width=2)
    c.line(-6, -22, 6, -22, color=color, width=2.5)


def _keyswitch(c: Canvas, color):
    _switch(c, color)
    c.circle(0, -29, 5, color=color, width=1.8)


def _lamp(c: Canvas, color):
    c.circle(0, 0, 15, fill="#fff3bf", color=color, width=2)
    d = 10.6
    c.line(-d, -d, d, d, color=color)
    c.line(-d, d, d, -d, color=color)


_BODIES = {"resistor": _resistor, "capacitor": _capacitor, "diode": _diode, "tvs": _tvs,
           "led": _led, "fuse": _fuse, "ptc": _ptc, "switch": _switch, "keyswitch": _keyswitch,
           "lamp": _lamp}
_HALF = {"resistor": 22, "capacitor": 5, "diode": 9, "tvs": 9, "led": 9, "fuse": 20, "ptc": 22,
         "switch": 16, "keyswitch": 16, "lamp": 15}


def nmos(c: Canvas, x, y, label="IRLZ44N"):
    """An N-channel enhancement MOSFET, gate lead from the left ending at (x - 40, y).

    Returns the gate, drain (top) and source (bottom) points.
    """
    c.line(x - 40, y, x - 12, y)
    c.line(x - 12, y - 18, x - 12, y + 18, width=2.5)
    for y1, y2 in ((-20, -8), (-6, 6), (8, 20)):
        c.line(x - 4, y + y1, x - 4, y + y2, width=3)
    c.polyline([(x - 4, y - 14), (x + 18, y - 14), (x + 18, y - 45)])
    c.polyline([(x - 4, y + 14), (x + 18, y + 14), (x + 18, y + 45)])
    c.line(x - 4, y, x + 18, y)
    c.line(x + 18, y, x + 18, y + 14)
    c.polygon([(x - 2, y), (x + 8, y - 5), (x + 8, y + 5)])
    c.text(x + 28, y - 4, label, size=14, bold=True)
    c.text(x + 28, y + 14, "N-MOSFET", size=12, color=MUTED)
    c.text(x - 30, y - 8, "G", size=11, color=MUTED)
    c.text(x + 24, y - 30, "D", size=11, color=MUTED)
    c.text(x + 24, y + 40, "S", size=11, color=MUTED)
    return (x - 40, y), (x + 18, y - 45), (x + 18, y + 45)


def _title(c: Canvas, title: str, subtitle: str | None = None):
    c.text(24, 38, title, size=24, bold=True)
    if subtitle:
        c.text(24, 64, subtitle, size=15, color=MUTED)


def _legend_wires(c: Canvas, x, y, columns=2, col_width=330):
    """Swatches of the room cable's conductors with terminal and function."""
    rows = math.ceil(len(TERMINALS) / columns)
    for i, t in enumerate(TERMINALS):
        cx = x + (i // rows) * col_width
        cy = y + (i % rows) * 26
        c.wire([(cx, cy), (cx + 44, cy)], t.wire)
        c.text(cx + 56, cy + 5, f"{t.number}  {t.wire}: {t.label}", size=14)
    return y + rows * 26


def _slot_table(c: Canvas, x, y, functions=tuple(FUNCTIONS), title=True):
    """A small table: function × slot → GPIO (header pin). Returns the y below it."""
    col0, col = 250, 150
    if title:
        c.text(x, y, "GPIO (header pin) for each room slot, from firmware/pinmap.py", size=14,
               bold=True)
        y += 24
    c.text(x, y, "function", size=13, bold=True, color=MUTED)
    for i in range(len(DEFAULT_SLOTS)):
        c.text(x + col0 + i * col, y, f"slot {i + 1} → J{i + 1}", size=13, bold=True,
               color=SLOT_COLOURS[i])
    y += 8
    c.line(x, y, x + col0 + len(DEFAULT_SLOTS) * col - 20, y, color="#bbbbbb", width=1)
    for f in functions:
        y += 22
        c.text(x, y, f"{FUNCTIONS[f][0]}  (J-{TERMINAL_BY_KEY[f].number})", size=13)
        for i, slot in enumerate(DEFAULT_SLOTS):
            g = getattr(slot, f)
            c.text(x + col0 + i * col, y, f"{g}  (pin {physical(g)})", size=13)
    return y + 12


# --------------------------------------------------------------------------------------------
# Circuit building blocks (shared by the detail pictures and the room schematic)
# --------------------------------------------------------------------------------------------

def input_channel(c: Canvas, x_pi, y, x_term, label, term: Terminal):
    """GPIO ← 100 nF ← 1 kΩ ← (4.7 kΩ to 3.3 V, TVS to GND) ← terminal, signal at y."""
    xb, xr1, xr2, xa, xt = x_pi + 70, x_pi + 110, x_pi + 220, x_pi + 280, x_pi + 370
    c.line(x_pi, y, xr1, y)
    c.dot(xb, y)
    c.part("capacitor", xb, y, xb, y + 70)
    c.ground(xb, y + 70)
    c.part("resistor", xr1, y, xr2, y)
    c.line(xr2, y, x_term, y)
    c.dot(xa, y)
    c.part("resistor", xa, y, xa, y - 80)
    c.rail(xa, y - 80, "+3.3 V")
    c.dot(xt, y)
    c.part("tvs", xt, y + 70, xt, y)
    c.ground(xt, y + 70)
    c.terminal(x_term, y, term.number)
    c.text(xb + 18, y + 44, "100 nF", size=14)
    c.text((xr1 + xr2) / 2, y - 14, "1 kΩ", size=14, anchor="middle")
    c.text(xa + 14, y - 36, "4.7 kΩ", size=14)
    c.text(xt + 16, y + 44, "TVS 6.8 V", size=14)
    c.text(x_pi - 8, y - 6, label, size=14, anchor="end", bold=True)


def output_channel(c: Canvas, x_pi, y_plus, x_term, label, t_plus: Terminal, t_minus: Terminal,
                   mosfet="IRLZ44N"):
    """+12 V → terminal (load +); drain → terminal (load −); flyback diode; gate network.

    y_plus is the +12 V line; the drain line is 60 below it and the gate 85 below that.
    """
    y_d = y_plus + 60
    y_g = y_d + 85
    x_q = x_pi + 230
    xr1, xr2, xg = x_pi + 40, x_pi + 130, x_pi + 160
    xdio = x_pi + 330
    # gate network
    c.line(x_pi, y_g, xr1, y_g)
    c.part("resistor", xr1, y_g, xr2, y_g)
    c.line(xr2, y_g, x_q - 40, y_g)
    c.dot(xg, y_g)
    c.part("resistor", xg, y_g, xg, y_g + 75)
    c.ground(xg, y_g + 75)
    c.text((xr1 + xr2) / 2, y_g - 14, "100 Ω", size=14, anchor="middle")
    c.text(xg + 14, y_g + 42, "4.7 kΩ", size=14)
    _, drain, source = nmos(c, x_q, y_g, mosfet)
    c.line(*source, source[0], source[1] + 30)
    c.ground(source[0], source[1] + 30)
    # drain line and +12 V line to the terminals
    c.polyline([drain, (drain[0], y_d), (x_term, y_d)])
    c.rail(x_pi + 140, y_plus - 30, "+12 V room")
    c.polyline([(x_pi + 140, y_plus - 30), (x_pi + 140, y_plus), (x_term, y_plus)])
    c.dot(xdio, y_plus)
    c.dot(xdio, y_d)
    c.part("diode", xdio, y_d, xdio, y_plus)
    c.text(xdio + 16, y_plus + 36, "1N4007", size=14)
    c.terminal(x_term, y_plus, t_plus.number)
    c.terminal(x_term, y_d, t_minus.number)
    c.text(x_pi - 8, y_g - 6, label, size=14, anchor="end", bold=True)


# --------------------------------------------------------------------------------------------
# The pictures
# --------------------------------------------------------------------------------------------

def button_input_svg() -> str:
    """Detail: one button line from the room to a GPIO, with the protection network."""
    c = Canvas(1260, 640, "Callbell button input: from a button in the room to a GPIO",
               "External 4.7 kOhm pull-up to 3.3 V, 1 kOhm series resistor, 100 nF to ground "
               "and a TVS diode at the cable entry, for each call, size and presence button.")
    _title(c, "Button input: one button line, from the room to the Pi",
           "The same for every call, size and presence button (3 per room). "
           "Pressed = the line is pulled to 0 V.")
    y, y_gnd = 250, 390
    x_pi, x_term = 250, 760
    # Pi
    c.rect(40, 130, 210, 300, fill="#e6f4ea", color="#2f9e44", rx=10)
    c.text(145, 160, "Raspberry Pi", size=17, anchor="middle", bold=True)
    c.lines(60, 190, ["GPIO input", "internal pull-up on", "(~50 kΩ, set by the", "firmware)"],
            size=13, color=MUTED)
    c.text(60, y + 30, "→ pin from the pin map", size=13, color=MUTED)
    c.lines(60, 330, ["3.3 V: header pin 1 or 17", "GND: e.g. header pin 6",
                      "(via the ribbon cable)"], size=13, color=MUTED)
    # board
    c.rect(275, 100, 515, 400, fill=BOARD, color="#c9a227", rx=8, dash="8 5")
    c.text(290, 124, "interface board (next to the Pi)", size=14, bold=True, color="#8a6d00")
    input_channel(c, x_pi, y, x_term, "", TERMINAL_BY_KEY["call"])
    c.terminal(x_term, y_gnd, 1)
    c.line(x_term - 50, y_gnd, x_term, y_gnd)
    c.line(x_term - 50, y_gnd, x_term - 50, y_gnd + 20)
    c.ground(x_term - 50, y_gnd + 20)
    c.text(x_term - 16, y + 28, "J-2", size=12, color=MUTED, anchor="end")
    c.text(x_term - 16, y_gnd - 12, "J-1", size=12, color=MUTED, anchor="end")
    # cable and room
    x_btn = 1060
    c.wire([(x_term + 8, y), (x_btn, y), (x_btn, y + 40)], "orange")
    c.wire([(x_term + 8, y_gnd), (x_btn, y_gnd), (x_btn, y_gnd - 40)], "white/orange")
    c.lines(885, y + 56, ["twisted pair", "(orange pair of", "the CAT5e/6 cable),", "up to 30 m"],
            size=14, anchor="middle")
    c.rect(980, 100, 260, 400, color="#1f6fd1", rx=8, dash="8 5")
    c.text(1110, 124, "in the room", size=14, anchor="middle", bold=True, color="#1f6fd1")
    c.part("switch", x_btn, y + 40, x_btn, y_gnd - 40)
    c.text(x_btn - 10, y + 75, "NO", size=12, anchor="end", bold=True)
    c.text(x_btn - 10, y + 101, "C", size=12, anchor="end", bold=True)
    c.text(x_btn + 40, y + 64, "call button", size=14, bold=True)
    c.lines(x_btn + 40, y + 84, ["(or size, or", "presence)"], size=12, color=MUTED)
    # notes
    c.lines(40, 548, [
        "4.7 kΩ pull-up: about 0.7 mA through the contact when pressed, ten times stiffer than "
        "the Pi's internal pull-up, so a long cable does not pick up mains hum or stray presses.",
        "1 kΩ + 100 nF: τ = 0.1 ms low-pass; it swallows spikes and limits the current into the "
        "GPIO. The firmware debounces the press (tens of milliseconds).",
        "TVS 6.8 V (P6KE6.8A) at the cable entry clamps static discharge from the metal button; "
        "the 1 kΩ keeps what is left away from the Pi's own clamp diodes.",
    ], size=14)
    return c.svg()


def lamp_driver_svg() -> str:
    """Detail: the low-side MOSFET switch for a 12/24 V door lamp."""
    c = Canvas(1260, 700, "Callbell lamp driver: a 12/24 V lamp from a 3.3 V GPIO",
               "Logic-level N-MOSFET IRLZ44N as a low-side switch; 100 Ohm gate resistor, "
               "4.7 kOhm gate pull-down, 1N4007 flyback diode, fused 12 V supply.")
    _title(c, "Lamp driver: a 12 V (or 24 V) door lamp switched by a 3.3 V GPIO",
           "Low-side switch: the lamp's + is always at +12 V; the MOSFET connects its − to "
           "GND. GPIO high = lamp on.")
    x_pi, x_term = 250, 760
    # Pi
    c.rect(40, 150, 210, 320, fill="#e6f4ea", color="#2f9e44", rx=10)
    c.text(145, 180, "Raspberry Pi", size=17, anchor="middle", bold=True)
    c.lines(60, 212, ["GPIO output", "active high", "3.3 V = on, 0 V = off"], size=13,
            color=MUTED)
    c.lines(60, 420, ["GND joined to the", "12 V supply's − here"], size=13, color=MUTED)
    # board
    c.rect(275, 100, 515, 430, fill=BOARD, color="#c9a227", rx=8, dash="8 5")
    c.text(290, 124, "interface board (next to the Pi)", size=14, bold=True, color="#8a6d00")
    y_plus = 200
    output_channel(c, x_pi, y_plus, x_term, "", TERMINAL_BY_KEY["lamp+"], TERMINAL_BY_KEY["lamp"])
    c.text(x_term - 14, y_plus + 26, "J-7", size=12, color=MUTED, anchor="end")
    c.text(x_term - 14, y_plus + 86, "J-8", size=12, color=MUTED, anchor="end")
    # cable and lamp
    x_lamp = 1060
    c.wire([(x_term + 8, y_plus), (x_lamp, y_plus), (x_lamp, y_plus + 10)], "white/brown")
    c.wire([(x_term + 8, y_plus + 60), (x_lamp, y_plus + 60), (x_lamp, y_plus + 50)], "brown")
    c.part("lamp", x_lamp, y_plus + 10, x_lamp, y_plus + 50)
    c.text(x_lamp - 26, y_plus + 35, "door lamp", size=14, anchor="end", bold=True)
    c.text(x_lamp + 22, y_plus + 20, "+", size=16, bold=True)
    c.text(x_lamp + 22, y_plus + 52, "−", size=16, bold=True)
    c.text(900, y_plus - 14, "brown pair, CAT5e/6", size=14, anchor="middle")
    c.rect(980, 100, 260, 250, color="#1f6fd1", rx=8, dash="8 5")
    c.text(1110, 124, "above the door", size=14, anchor="middle", bold=True, color="#1f6fd1")
    c.lines(995, 300, ["12 V LED beacon,", "steady mode, ≤ 5 W"], size=13, color=MUTED)
    # supply
    ys = 600
    c.text(40, ys - 30, "Lamp supply (one per Pi):", size=15, bold=True)
    c.rect(40, ys - 16, 150, 56, fill="#f1f3f5", rx=6)
    c.lines(115, ys + 6, ["12 V DC SELV", "plug-in supply"], size=13, anchor="middle")
    c.line(190, ys, 260, ys)
    c.text(196, ys - 6, "+", size=15, bold=True)
    c.part("fuse", 260, ys, 380, ys)
    c.text(320, ys - 14, SUPPLY_FUSE, size=13, anchor="middle")
    c.line(380, ys, 420, ys)
    c.dot(420, ys)
    c.part("ptc", 420, ys, 540, ys)
    c.text(480, ys + 32, f"PTC {ROOM_PTC}, one per room", size=13, anchor="middle")
    c.line(540, ys, 580, ys)
    c.netlabel(580, ys, "+12 V room")
    c.line(190, ys + 30, 260, ys + 30)
    c.text(196, ys + 24, "−", size=15, bold=True)
    c.line(260, ys + 30, 260, ys + 40)
    c.ground(260, ys + 40)
    # notes
    c.lines(700, 570, [
        "Vgs = 3.3 V, IRLZ44N threshold 1–2 V: at lamp currents",
        "(≤ 0.5 A) it drops ≤ 0.15 V and dissipates ≤ 0.07 W.",
        "100 Ω: limits the GPIO's gate-charge current peak.",
        "4.7 kΩ: holds the gate low while the Pi boots.",
        "1N4007: takes the inductive kick at switch-off.",
    ], size=14)
    return c.svg()


def _opamp(c: Canvas, x, y, label="LM393"):
    """A comparator triangle pointing right, inputs at (x, y ∓ 20), output at (x + 90, y).

    Returns the + input, the − input and the output points."""
    c.polygon([(x, y - 45), (x, y + 45), (x + 90, y)], fill="#ffffff", color=INK, width=2.2)
    c.text(x + 8, y - 14, "+", size=16, bold=True)
    c.text(x + 8, y + 27, "−", size=16, bold=True)
    c.text(x + 30, y + 62, label, size=14, bold=True)
    return (x, y - 20), (x, y + 20), (x + 90, y)


def _pulled_gpio(c: Canvas, x, y, gpio: str):
    """From (x, y): 4.7 kΩ up to 3.3 V, 1 kΩ in series, 100 nF down, to the GPIO's flag."""
    c.dot(x + 30, y)
    c.part("resistor", x + 30, y, x + 30, y - 80)
    c.rail(x + 30, y - 80, "+3.3 V")
    c.text(x + 44, y - 36, "4.7 kΩ", size=14)
    c.line(x, y, x + 60, y)
    c.part("resistor", x + 60, y, x + 170, y)
    c.text(x + 115, y - 14, "1 kΩ", size=14, anchor="middle")
    c.line(x + 170, y, x + 210, y)
    c.dot(x + 190, y)
    c.part("capacitor", x + 190, y, x + 190, y + 60)
    c.ground(x + 190, y + 60)
    c.text(x + 204, y + 40, "100 nF", size=13)
    c.netlabel(x + 210, y, f"{gpio} (pin {physical(gpio)})")


def supervision_svg() -> str:
    """The optional sense inputs: the 12 V supply (optocoupler) and a door lamp's current
    (shunt and comparator)."""
    c = Canvas(1260, 1060, "Callbell supervision: 12 V supply sense and door-lamp current sense",
               "Optional. A PC817 optocoupler tells the Pi the lamp supply is there; a 1 Ohm shunt "
               "in the lamp MOSFET's source and an LM393 comparator tell it the lamp draws current.")
    _title(c, "Supervision (optional): is the 12 V there, does each lamp light?",
           "Both pull a GPIO to 0 V while all is well, so a broken wire or a missing part reads "
           "as a fault, never as \"fine\".")
    # -- A: supply sense ----------------------------------------------------------------------
    c.text(40, 120, "A. 12 V supply sense — one per Pi", size=18, bold=True)
    y = 220
    c.rail(110, y - 40, "+12 V (after the fuse)")
    c.polyline([(110, y - 40), (110, y)])
    c.part("resistor", 110, y, 230, y)
    c.text(170, y - 14, "3.3 kΩ (24 V: 6.8 kΩ)", size=13, anchor="middle")
    c.rect(270, y - 40, 190, 150, fill="#ffffff", rx=6)
    c.text(365, y - 50, "PC817 optocoupler", size=14, anchor="middle", bold=True)
    c.polyline([(230, y), (300, y), (300, y + 20)])
    c.part("led", 300, y + 20, 300, y + 70)
    c.polyline([(300, y + 70), (300, y + 90), (230, y + 90), (230, y + 130)])
    c.ground(230, y + 130)
    c.text(280, y + 14, "1", size=11, color=MUTED, anchor="end")
    c.text(280, y + 104, "2", size=11, color=MUTED, anchor="end")
    for dy in (35, 50):  # light from the LED onto the transistor
        c.line(320, y + dy, 350, y + dy, width=1.5)
        c.polygon([(350, y + dy), (343, y + dy - 4), (343, y + dy + 4)], width=1)
    c.line(370, y + 20, 370, y + 70, width=3)
    c.polyline([(370, y + 35), (430, y + 10), (430, y)])
    c.polyline([(370, y + 55), (430, y + 80), (430, y + 90)])
    c.polygon([(430, y + 80), (420, y + 70), (416, y + 80)], width=1)
    c.text(450, y + 14, "4", size=11, color=MUTED)
    c.text(450, y + 104, "3", size=11, color=MUTED)
    c.polyline([(430, y + 90), (430, y + 130)])
    c.ground(430, y + 130)
    c.polyline([(430, y), (430, y - 20), (520, y - 20), (520, y)])
    _pulled_gpio(c, 520, y, SUPPLY_SENSE)
    c.lines(40, y + 185, [
        "12 V there: the LED lights (about 3 mA), the transistor pulls the line to 0 V — the firmware reads",
        "\"supply there\". Supply off, fuse blown or a wire loose: the 4.7 kΩ holds the line at 3.3 V — \"supply lost\".",
        "Take the 12 V after the supply fuse, so a blown fuse counts. The optocoupler keeps the 12 V side",
        "apart from the Pi: a miswired supply cannot reach a GPIO.",
    ], size=14)
    # -- B: lamp current sense ----------------------------------------------------------------
    c.text(40, 510, "B. Door-lamp current sense — one per room (an LM393 has two comparators)", size=18, bold=True)
    x_q, y_g = 230, 660
    c.rail(248, 545, "+12 V room")
    c.polyline([(248, 545), (248, 560)])
    c.part("lamp", 248, 560, 248, 605)
    c.text(275, 590, "door lamp", size=14, bold=True)
    _, drain, source = nmos(c, x_q, y_g)
    c.line(drain[0], 605, drain[0], drain[1])
    c.text(x_q - 50, y_g - 8, "from the gate network", size=12, color=MUTED, anchor="end")
    c.line(source[0], source[1], source[0], 740)
    c.dot(source[0], 740)
    c.part("resistor", source[0], 740, source[0], 850)
    c.ground(source[0], 850)
    c.text(source[0] + 16, 800, "1 Ω 1 W shunt", size=14)
    c.text(source[0] + 16, 818, "1 mV per mA", size=12, color=MUTED)
    # sense path to the comparator's − input
    plus, minus, out = _opamp(c, 640, 720)
    c.line(source[0], 740, 380, 740)
    c.part("resistor", 380, 740, 500, 740)
    c.text(440, 728, "10 kΩ", size=14, anchor="middle")
    c.line(500, 740, minus[0], minus[1])
    c.dot(540, 740)
    c.part("capacitor", 540, 740, 540, 800)
    c.ground(540, 800)
    c.text(552, 790, "100 nF", size=13)
    # threshold divider to the + input: 3.3 V × 1 k / 101 k ≈ 33 mV
    c.rail(600, 540, "+3.3 V")
    c.part("resistor", 600, 540, 600, 640)
    c.text(614, 595, "100 kΩ", size=14)
    c.dot(600, 640)
    c.polyline([(600, 640), (600, plus[1]), plus])
    c.part("resistor", 600, 640, 480, 640)
    c.text(540, 628, "1 kΩ", size=14, anchor="middle")
    c.polyline([(480, 640), (480, 660)])
    c.ground(480, 660)
    c.text(596, 690, "33 mV", size=12, color=MUTED, anchor="end")
    c.lines(650, 800, ["LM393: V+ = 3.3 V (header pin 1),", "GND = header pin 6"], size=12, color=MUTED)
    _pulled_gpio(c, out[0], out[1], LAMP_SENSE[0])
    c.lines(40, 900, [
        "Lamp on and drawing more than about 33 mA: the shunt gives more than the 33 mV threshold, the comparator's",
        "open-collector output pulls the line to 0 V — \"current\". Lamp dead, wire broken, room fuse tripped or",
        "comparator missing: the line stays at 3.3 V. The firmware compares this with what it told the lamp to do.",
        "The shunt lifts the MOSFET's source by at most 0.5 V at 0.5 A; the IRLZ44N still switches fully at 3.3 V.",
        "On/off lamps only (lamp_kind = \"led\"): a dimmed lamp's PWM chops its current. GPIOs: hardware/pinmap.md.",
    ], size=14)
    return c.svg()


def schematic_room_svg() -> str:
    """The full circuit of one room slot: three button inputs, two MOSFET outputs."""
    c = Canvas(1400, 1690, "Callbell schematic of one room slot",
               "Three button inputs and two MOSFET outputs on the interface board, the 8-pole "
               "room connector and the devices in the room.")
    _title(c, "Schematic: one room (one slot of a Pi)",
           "Build this 4 times on the interface board, once per room connector J1–J4. "
           "GPIO numbers per slot are in the table at the bottom.")
    x_pi, x_term, x_dev = 250, 760, 1080
    # Pi
    c.rect(40, 100, 210, 1310, fill="#e6f4ea", color="#2f9e44", rx=10)
    c.text(145, 130, "Raspberry Pi", size=17, anchor="middle", bold=True)
    c.text(145, 150, "40-pin header", size=13, anchor="middle", color=MUTED)
    c.lines(60, 1360, ["3.3 V: pin 1 / 17", "GND: pin 6, 9, 14 …"], size=13, color=MUTED)
    # board
    c.rect(275, 90, 525, 1330, fill=BOARD, color="#c9a227", rx=8, dash="8 5")
    c.text(290, 114, "interface board", size=14, bold=True, color="#8a6d00")
    c.rect(x_term - 16, 130, 32, 1100, fill="#e9ecef", color="#868e96", rx=4)
    c.text(x_term, 1250, "J1–J4", size=13, anchor="middle", bold=True)
    # room
    c.rect(940, 90, 440, 1330, color="#1f6fd1", rx=8, dash="8 5")
    c.text(955, 114, "in the room (via the CAT cable)", size=14, bold=True, color="#1f6fd1")

    # common terminal 1 (GND)
    y1 = 160
    t1 = TERMINAL_BY_KEY["gnd"]
    c.terminal(x_term, y1, t1.number)
    c.polyline([(x_term, y1), (x_term - 60, y1), (x_term - 60, y1 + 12)])
    c.ground(x_term - 60, y1 + 12)
    x_gbus = x_dev + 90
    # inputs
    ys = {"call": 290, "size": 470, "presence": 650}
    for f, y in ys.items():
        t = TERMINAL_BY_KEY[f]
        input_channel(c, x_pi, y, x_term, f.upper(), t)
        c.wire([(x_term + 8, y), (x_dev, y), (x_dev, y + 30)], t.wire)
        kind = "keyswitch" if f == "presence" else "switch"
        c.part(kind, x_dev, y + 30, x_dev, y + 90)
        c.wire([(x_dev, y + 90), (x_dev, y + 110), (x_gbus, y + 110)], t1.wire)
        name = {"call": "call button", "size": "size button (optional)",
                "presence": "presence key switch"}[f]
        c.text(x_dev - 50, y + 58, name, size=14, anchor="end", bold=True)
        c.text(x_dev - 50, y + 76, "outside, by the door" if f == "presence" else "in the room",
               size=12, anchor="end", color=MUTED)
    c.wire([(x_term + 8, y1), (x_gbus, y1), (x_gbus, ys["presence"] + 110)], t1.wire)
    for y in ys.values():
        c.dot(x_gbus, y + 110)
    # outputs
    y_light, y_lamp = 830, 1150
    for f, y_plus in (("light", y_light), ("lamp", y_lamp)):
        output_channel(c, x_pi, y_plus, x_term, f.upper(), TERMINAL_BY_KEY[f + "+"],
                       TERMINAL_BY_KEY[f])
    # devices for the outputs
    for f, y_plus, name, kind in (("light", y_light, "LED ring (12 V)", "led"),
                                  ("lamp", y_lamp, "door lamp 12 V", "lamp")):
        t_plus, t_minus = TERMINAL_BY_KEY[f + "+"], TERMINAL_BY_KEY[f]
        c.wire([(x_term + 8, y_plus), (x_dev, y_plus), (x_dev, y_plus + 12)], t_plus.wire)
        c.wire([(x_term + 8, y_plus + 60), (x_dev, y_plus + 60), (x_dev, y_plus + 48)],
               t_minus.wire)
        c.part(kind, x_dev, y_plus + 12, x_dev, y_plus + 48)
        c.text(x_dev - 50, y_plus + 36, name, size=14, anchor="end", bold=True)
    c.text(x_dev + 30, y_light + 20, "ring +", size=12, color=MUTED)
    c.text(x_dev + 30, y_light + 56, "ring −", size=12, color=MUTED)
    c.lines(x_dev + 30, y_light + 90, ["a size button's ring, if it has one,",
                                       "goes in parallel (same + and −)"], size=12, color=MUTED)
    # supply strip and slot table
    yb = 1460
    c.text(40, yb, "+12 V room:", size=15, bold=True)
    c.text(140, yb, f"12 V supply + → {SUPPLY_FUSE} fuse (one per Pi) → PTC {ROOM_PTC} "
                    f"(one per room) → J-5 and J-7 and the cathodes of both 1N4007.", size=14)
    c.text(40, yb + 24, "GND:", size=15, bold=True)
    c.text(140, yb + 24, "Pi GND, 12 V supply − and J-1 meet on the interface board; "
                         "MOSFET sources go straight to that ground.", size=14)
    _slot_table(c, 40, yb + 70)
    return c.svg()


def _button_face(c: Canvas, x, y, r, ring, label):
    c.circle(x, y, r + 8, fill="#ced4da", color="#868e96", width=1.5)
    c.circle(x, y, r + 3, fill="#ffffff", color=ring, width=5)
    c.circle(x, y, r - 3, fill="#e9ecef", color="#868e96", width=1.5)
    c.text(x, y + 5, label, size=13, anchor="middle", bold=True)


def _sheath(c: Canvas, points, width=16.0):
    """A cable's outer sheath (grey), drawn as a thick line."""
    c.polyline(points, color="#495057", width=width + 3)
    c.polyline(points, color="#ced4da", width=width)


def _lever(c: Canvas, x, y_top, y_bottom):
    """A lever connector (e.g. WAGO 221) joining the wires that enter it at its rows."""
    c.rect(x, y_top - 12, 40, y_bottom - y_top + 24, fill="#f1f3f5", color="#495057", rx=4,
           width=1.5)
    c.rect(x + 26, y_top - 10, 10, y_bottom - y_top + 20, fill="#f08a24", color="#c2410c",
           rx=2, width=1)


def wiring_room_svg() -> str:
    """Wiring diagram: what goes where, colour to colour, for one room."""
    c = Canvas(1400, 1200, "Callbell wiring diagram for one fitting room",
               "Pi enclosure with interface board, one CAT cable per room to a junction box "
               "above the door, door lamp, presence switch outside and call/size buttons inside.")
    _title(c, "Wiring: one fitting room, colour to colour",
           "One CAT5e/6 cable per room from the Pi enclosure to a junction box above the door; "
           "from there short cables to the lamp, the presence switch and the button panel.")

    # ---- Pi enclosure ---------------------------------------------------------------------
    c.rect(30, 90, 390, 410, fill="#f8f9fa", color="#495057", rx=12, width=2.5)
    c.text(46, 116, "Pi enclosure (ceiling void, stock room", size=14, bold=True)
    c.text(46, 134, "or behind the fitting rooms)", size=14, bold=True)
    c.rect(80, 150, 200, 110, fill="#d3f9d8", color="#2f9e44", rx=8)
    c.text(180, 190, "Raspberry Pi", size=15, anchor="middle", bold=True)
    c.text(180, 208, "4 / 5 / Zero 2 W", size=12, anchor="middle", color=MUTED)
    for i in range(20):
        for dy in (236, 245):
            c.rect(98 + i * 8, dy, 5, 5, fill="#868e96", color="#495057", width=0.5)
    c.rect(64, 166, 28, 34, fill="#adb5bd", color="#495057", width=1)
    c.text(60, 220, "LAN", size=11, color=MUTED)
    c.rect(64, 208, 20, 14, fill="#adb5bd", color="#495057", width=1)
    # ribbon down to the interface board
    c.polygon([(98, 252), (258, 252), (258, 300), (98, 300)], fill="#adb5bd", color="#868e96",
              width=1)
    c.text(178, 281, "40-way ribbon", size=12, anchor="middle", bold=True)
    # interface board
    c.rect(50, 300, 300, 130, fill=BOARD, color="#c9a227", rx=6)
    c.text(62, 322, "interface board", size=14, bold=True)
    c.lines(62, 342, ["per room: 3 input filters,", "2 MOSFET drivers, 1 PTC",
                      "(schematic-room.svg)"], size=12, color=MUTED)
    c.rect(62, 396, 56, 26, fill="#e9ecef", color="#495057", rx=3)
    c.text(90, 414, "12 V in", size=11, anchor="middle", bold=True)
    jy = {1: 318, 2: 346, 3: 374, 4: 402}
    for n, y in jy.items():
        col = SLOT_COLOURS[n - 1]
        c.rect(300, y - 12, 44, 24, fill="#ffffff", color=col, width=2.5, rx=3)
        c.text(322, y + 5, f"J{n}", size=13, anchor="middle", bold=True, color=col)
        c.text(292, y + 5, f"room {n}", size=12, anchor="end", color=col)
    # supply and network below the enclosure
    boxes = [(40, "network switch", "(PoE if used)"), (170, "5 V USB-C supply", "or PoE splitter"),
             (300, "12 V supply", "SELV, plug-in")]
    for x, a, b in boxes:
        c.rect(x, 520, 115, 44, fill="#f1f3f5", color="#495057", rx=6)
        c.lines(x + 57, 538, [a, b], size=12, anchor="middle", gap=16)
    c.polyline([(64, 183), (45, 183), (45, 505), (97, 505), (97, 520)], color="#1f6fd1", width=3)
    c.polyline([(64, 215), (55, 215), (55, 494), (227, 494), (227, 520)], color="#adb5bd",
               width=3)
    c.polyline([(90, 422), (90, 470), (357, 470), (357, 520)], color="#c92a2a", width=3)
    c.polyline([(104, 422), (104, 486), (343, 486), (343, 520)], color=INK, width=3)
    c.text(364, 512, "+", size=12, bold=True, color="#c92a2a")
    c.text(328, 512, "−", size=12, bold=True)
    c.part("fuse", 270, 470, 350, 470, color="#c92a2a")
    c.text(310, 460, f"{SUPPLY_FUSE} fuse", size=11, anchor="middle", color="#c92a2a")

    # ---- the room cable from J1 to the junction box ---------------------------------------
    y_cable = jy[1]
    for i, t in enumerate(TERMINALS):
        c.wire([(344, y_cable - 10 + i * 3), (360, y_cable - 10 + i * 3)], t.wire, width=1.5)
    _sheath(c, [(362, y_cable), (760, y_cable), (840, y_cable), (840, 190), (880, 190)])
    c.text(590, y_cable - 22, "CAT5e/6 U/UTP solid, 4 pairs, ≤ 30 m", size=14, anchor="middle",
           bold=True)
    c.text(590, y_cable + 32, "one cable per room: J1 → room 1, J2 → room 2, …", size=12,
           anchor="middle", color=MUTED)
    c.text(590, y_cable + 48, "own duct, ≥ 5 cm away from mains cables", size=12,
           anchor="middle", color=MUTED)

    # ---- aisle view ----------------------------------------------------------------------
    c.rect(760, 90, 620, 480, fill="#f8f9fa", color="#495057", rx=12, width=2.5)
    c.text(776, 116, "Aisle side of the fitting room (front view)", size=14, bold=True)
    floor, scale = 550, 1.75  # px per cm
    def h(cm):
        return floor - cm * scale
    c.line(780, floor, 1360, floor, width=3)
    c.text(1364, floor - 6, "floor", size=11, anchor="end", color=MUTED)
    dx, dw = 1060, 140
    c.rect(dx, h(200), dw, 200 * scale, fill="#e7f5ff", color="#495057", width=2)
    c.circle(dx + dw - 16, h(100), 5, fill="#868e96", color="#495057", width=1)
    c.text(dx + dw / 2, h(110), "door or", size=13, anchor="middle", color=MUTED)
    c.text(dx + dw / 2, h(110) + 16, "curtain", size=13, anchor="middle", color=MUTED)
    for cm in (90, 120, 200):
        c.line(784, h(cm), 800, h(cm), color=MUTED, width=1.5)
        c.text(804, h(cm) + 4, f"{cm} cm", size=11, color=MUTED)
    c.line(784, h(215), 800, h(215), color=MUTED, width=1.5)
    c.text(804, h(215) + 4, "≈ 215 cm", size=11, color=MUTED)
    # lamp above the door
    lx, lb = dx + dw / 2, h(205)
    c.rect(lx - 36, lb - 8, 72, 10, fill="#adb5bd", color="#495057", width=1.5)
    c.polyline([(lx - 28, lb - 8), (lx - 28, lb - 22), (lx - 18, lb - 32), (lx + 18, lb - 32),
                (lx + 28, lb - 22), (lx + 28, lb - 8)], fill="#ffd43b", color="#495057")
    c.lines(lx + 44, lb - 30, ["door lamp", "above the door,", "seen from the aisle"],
            size=12)
    # junction box
    jx, jt = 870, 160
    c.rect(jx, jt, 86, 60, fill="#ffffff", color="#495057", rx=5)
    c.lines(jx + 43, jt + 26, ["junction", "box"], size=12, anchor="middle", bold=True)
    _sheath(c, [(jx + 86, jt + 40), (lx - 28, jt + 40), (lx - 28, lb - 14)], width=9)
    # presence switch outside at 120 cm
    sx, sy = 913, h(120)
    _sheath(c, [(sx, jt + 60), (sx, sy - 26)], width=9)
    c.rect(sx - 26, sy - 26, 52, 52, fill="#e9ecef", color="#495057", rx=6)
    c.circle(sx, sy, 15, fill="#ced4da", color="#495057")
    c.line(sx - 7, sy, sx + 7, sy, width=3)
    c.lines(sx + 36, sy - 8, ["presence key", "switch (staff)"], size=12, bold=True)
    c.lines(sx + 36, sy + 26, ["outside, next to", "the door"], size=12, color=MUTED)
    # panel cable through the wall
    px = 1330
    _sheath(c, [(jx + 60, jt), (jx + 60, 138), (px, 138), (px, h(120) - 2)], width=9)
    c.rect(px - 38, h(120), 76, 30 * scale, color="#1f6fd1", dash="6 4", rx=6, width=2)
    c.lines(px, h(120) + 18, ["button", "panel", "(inside)"], size=12, anchor="middle",
            color="#1f6fd1")
    c.lines(px, h(90) + 22, ["cable goes", "through the", "wall to the", "panel inside"],
            size=12, anchor="middle", color="#1f6fd1", gap=15)

    # ---- junction box detail ---------------------------------------------------------------
    c.rect(30, 600, 680, 430, fill="#f8f9fa", color="#495057", rx=12, width=2.5)
    c.text(46, 626, "Inside the junction box: lever connectors, colour to colour", size=14,
           bold=True)
    row0, pitch = 680, 34
    rows_in = {"green": 0, "white/orange": 1, "orange": 3, "white/green": 4, "white/blue": 5,
               "blue": 6, "white/brown": 7, "brown": 8}
    c.rect(44, row0 - 22, 60, 8 * pitch + 44, fill="#ced4da", color="#495057", rx=8)
    c.lines(74, row0 + 4 * pitch - 10, ["room", "cable", "from", "J1"], size=12,
            anchor="middle", bold=True)
    xl = 260
    for name, r in rows_in.items():
        y = row0 + r * pitch
        c.wire([(104, y), (xl + 4, y)], name, width=4)
        t = next(t for t in TERMINALS if t.wire == name)
        c.text(114, y - 7, f"{t.number} {name}", size=11, color=MUTED)
        c.text(200, y - 7, {"gnd": "GND", "call": "CALL", "size": "SIZE", "presence": "PRES.",
                            "light+": "+12 V", "light": "LIGHT −", "lamp+": "+12 V",
                            "lamp": "LAMP −"}[t.key], size=11, bold=True)
    out = {0: "green", 1: "white/orange", 2: "white/orange", 3: "orange", 4: "white/green",
           5: "white/blue", 6: "blue", 7: "white/brown", 8: "brown"}
    xo = 470
    for r, name in out.items():
        y = row0 + r * pitch
        c.wire([(xl + 36, y), (xo, y)], name, width=4)
    for top, bottom in ((0, 0), (1, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8)):
        _lever(c, xl, row0 + top * pitch, row0 + bottom * pitch)
    groups = [
        (0, 1, "to the presence switch", ["green → NO", "white/orange → C"]),
        (2, 6, "to the button panel", ["same colours on", "to the buttons", "(panel view →)"]),
        (7, 8, "to the door lamp", ["white/brown → +", "brown → −"]),
    ]
    for top, bottom, head, notes in groups:
        y1, y2 = row0 + top * pitch - 14, row0 + bottom * pitch + 14
        c.rect(xo, y1, 22, y2 - y1, fill="#ced4da", color="#495057", rx=6)
        c.text(xo + 32, y1 + 14, head, size=12, bold=True)
        c.lines(xo + 32, y1 + 30, notes, size=12, color=MUTED, gap=15)
    c.lines(46, 1012, ["White/orange (GND) splits in a 3-way connector; every other conductor "
                       "just continues."], size=12, color=MUTED)

    # ---- button panel ----------------------------------------------------------------------
    c.rect(730, 600, 650, 430, fill="#f8f9fa", color="#495057", rx=12, width=2.5)
    c.text(746, 626, "Inside the room: button panel at 90–120 cm, reachable seated", size=14,
           bold=True)
    c.rect(760, 650, 140, 240, fill="#e9ecef", color="#495057", rx=10)
    _button_face(c, 830, 715, 30, "#1f6fd1", "CALL")
    _button_face(c, 830, 820, 24, "#f59f00", "SIZE")
    c.text(830, 880, "front", size=12, anchor="middle", color=MUTED)
    c.text(830, 910, "tactile symbols,", size=12, anchor="middle", color=MUTED)
    c.text(830, 926, "contrasting colour", size=12, anchor="middle", color=MUTED)
    # rear of the buttons
    cx0, sx0, ty = 960, 1170, 830
    def term(x0, i):
        return x0 + 25 + i * 40
    for x0 in (cx0, sx0):
        c.rect(x0, ty - 62, 170, 92, fill="#ffffff", color="#495057", rx=8)
        for i in range(4):
            c.circle(term(x0, i), ty, 8, fill="#dee2e6", color="#495057", width=1.5)
    # panel cable arrives from the top
    _sheath(c, [(1080, 640), (1080, 676)], width=14)
    c.text(1100, 662, "panel cable from the junction box", size=12, color=MUTED)
    feed = [("white/orange", term(cx0, 0)), ("orange", term(cx0, 1)),
            ("white/blue", term(cx0, 2)), ("blue", term(cx0, 3))]
    for i, (name, xt) in enumerate(feed):
        xs = 1066 + i * 7
        c.wire([(xs, 676), (xs, 690 + i * 8), (xt, 690 + i * 8), (xt, ty - 8)], name, width=3)
    c.wire([(1094, 676), (1094, 700), (term(sx0, 1), 700), (term(sx0, 1), ty - 8)],
           "white/green", width=3)
    # bridges from the call button to the size button (in parallel)
    for i, (pin, name) in enumerate(((0, "white/orange"), (2, "white/blue"), (3, "blue"))):
        yb = ty + 46 + i * 16
        c.wire([(term(cx0, pin), ty + 8), (term(cx0, pin), yb), (term(sx0, pin), yb),
                (term(sx0, pin), ty + 8)], name, width=3)
    for x0, name in ((cx0, "CALL button, rear"), (sx0, "SIZE button, rear")):
        c.text(x0 + 85, ty - 42, name, size=12, anchor="middle", bold=True, halo=True)
        for i, pin in enumerate(("C", "NO", "+", "−")):
            c.text(term(x0, i) + 11, ty - 11, pin, size=12, bold=True, halo=True)
    c.lines(760, 965, ["Call button: white/orange → C, orange → NO, white/blue → + (ring), "
                       "blue → − (ring).",
                       "Size button: white/green → NO; its C, + and − are bridged to the call "
                       "button's (short",
                       "jumpers in the same colour). No size button: leave white/green unused "
                       "and insulated.",
                       "Use the NO (normally open) contact, never NC."], size=12, color=MUTED,
            gap=16)

    # ---- legend ----------------------------------------------------------------------------
    c.text(30, 1066, "Room cable conductors, on terminals 1–8 of J1–J4:", size=15, bold=True)
    _legend_wires(c, 40, 1094, columns=2, col_width=360)
    c.lines(780, 1094, ["Orange pair: call button and its common (GND).",
                        "Green pair: size button and presence switch.",
                        "Blue pair: button LED ring (+12 V, switched −).",
                        "Brown pair: door lamp (+12 V, switched −)."], size=13, gap=26)
    return c.svg()


def pi_header_svg() -> str:
    """The 40-pin header with every pin of the default pin map, coloured by room slot."""
    c = Canvas(1200, 1040, "Callbell default pin map on the Raspberry Pi 40-pin header",
               "Pin by pin: which room slot and function each GPIO serves; power, ground, "
               "reserved and spare pins.")
    _title(c, "Pi header: the default pin map (firmware/pinmap.py)",
           "Seen from above with the USB/Ethernet ports at the bottom: pin 1 (square pad) is "
           "top left; odd pins on the left.")
    by_pin: dict[int, tuple[str, str, str]] = {}  # pin → (text, fill colour, text colour)
    for r in pinmap_rows():
        col = SLOT_COLOURS[r.slot - 1]
        arrow = "in" if r.function in INPUTS else "out"
        short = {"call": "CALL", "size": "SIZE", "presence": "PRESENCE", "lamp": "LAMP",
                 "light": "LIGHT"}[r.function]
        by_pin[r.pin] = (f"room {r.slot} {short} ({arrow}) · {r.gpio}", col, col)
    used_bcm = {bcm(r.gpio) for r in pinmap_rows()}
    for n, pin in BCM_TO_PHYSICAL.items():
        if n in used_bcm:
            continue
        if n in RESERVED:
            by_pin[pin] = (f"GPIO{n} · {RESERVED[n]}", "#adb5bd", MUTED)
        else:
            by_pin[pin] = (f"GPIO{n} · spare", "#ffffff", MUTED)
    power_fill = {"3V3": "#f59f00", "5V": "#e03131", "GND": "#212529", "ID_SD": "#dee2e6",
                  "ID_SC": "#dee2e6"}
    for pin, name in POWER_PINS.items():
        what = {"3V3": "3.3 V (pull-ups)", "5V": "5 V (not used)", "GND": "GND",
                "ID_SD": "ID_SD (HAT EEPROM, never use)", "ID_SC": "ID_SC (HAT EEPROM, never use)"}
        by_pin[pin] = (what[name], power_fill[name], INK)
    x_odd, x_even, y0, pitch = 560, 620, 110, 38
    c.rect(x_odd - 30, y0 - 28, x_even - x_odd + 60, pitch * 20 + 18, fill="#343a40",
           color="#212529", rx=6)
    for pin in range(1, 41):
        text, fill, tcol = by_pin[pin]
        row, odd = (pin - 1) // 2, pin % 2 == 1
        x = x_odd if odd else x_even
        y = y0 + row * pitch
        if pin == 1:
            c.rect(x - 11, y - 11, 22, 22, fill=fill, color="#ffffff", width=2)
        else:
            c.circle(x, y, 11, fill=fill, color="#ffffff", width=2)
        c.text(x, y + 4, str(pin), size=10, anchor="middle", bold=True,
               color="#ffffff" if fill in ("#212529", "#e03131", "#1f6fd1", "#2f9e44",
                                           "#e8590c", "#9c36b5", "#f59f00") else INK)
        if odd:
            c.line(x - 30, y, x - 44, y, color="#adb5bd", width=1)
            c.text(x - 50, y + 5, text, size=14, anchor="end", color=tcol,
                   bold=tcol in SLOT_COLOURS)
        else:
            c.line(x + 30, y, x + 44, y, color="#adb5bd", width=1)
            c.text(x + 50, y + 5, text, size=14, color=tcol, bold=tcol in SLOT_COLOURS)
    # legend
    ly = y0 + 20 * pitch + 30
    c.text(40, ly, "Legend", size=15, bold=True)
    items = [(SLOT_COLOURS[i], f"room slot {i + 1} → connector J{i + 1}") for i in range(4)]
    items += [("#f59f00", "3.3 V"), ("#e03131", "5 V"), ("#212529", "GND"),
              ("#adb5bd", "kept free (I2C, UART)"), ("#ffffff", "spare")]
    for i, (fill, label) in enumerate(items):
        x = 40 + (i % 5) * 230
        y = ly + 28 + (i // 5) * 28
        c.circle(x + 10, y - 5, 10, fill=fill, color="#495057", width=1.5)
        c.text(x + 28, y, label, size=14)
    c.text(40, ly + 98, "in = button input (pull-up, pressed = 0 V); out = MOSFET gate "
                        "(high = on). Never connect 5 V or 12 V to a GPIO pin.", size=14,
           color=MUTED)
    return c.svg()


# --------------------------------------------------------------------------------------------
# Putting it together
# --------------------------------------------------------------------------------------------

def render_all() -> dict[str, str]:
    """Every picture, file name → SVG text, without writing anything."""
    return {
        "wiring-room.svg": wiring_room_svg(),
        "schematic-room.svg": schematic_room_svg(),
        "button-input.svg": button_input_svg(),
        "lamp-driver.svg": lamp_driver_svg(),
        "pi-header.svg": pi_header_svg(),
        "supervision.svg": supervision_svg(),
    }


def generated_files() -> dict[str, str]:
    """Every file this script owns (name relative to hardware/ → text)."""
    files = dict(render_all())
    files[PINMAP_FILE] = pinmap_markdown()
    readme = HERE / README_FILE
    if readme.exists():
        files[README_FILE] = readme_with_tables(readme.read_text(encoding="utf-8"))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardware.draw", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generated_files().items():
        path = HERE / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    for name in stale:
        print(f"hardware/{name}: {verb}")
    if not stale:
        print("hardware/: everything up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
