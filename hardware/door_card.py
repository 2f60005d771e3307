"""Draw the printable card for the fitting-room door (or inside the room, by the button): what
the button light tells the shopper. Drawn from ``firmware/lamp.py`` (LIGHT_MEANINGS and the
patterns' timings), so the card cannot say what the device does not do.

    python -m hardware.door_card            # (re)writes hardware/door-card.svg
    python -m hardware.door_card --check    # writes nothing; exits 1 if it is out of date

The card is A6 (105 × 148 mm), black on white with one accent colour, text at 11 pt and up so
it reads at arm's length; print it at 100 % (browsers: "actual size") and laminate it.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: python hardware/door_card.py
    sys.path.insert(0, str(HERE.parent))

from firmware.lamp import BLIP, FADE_S, FAST, LIGHT_MEANINGS, LIGHT_PATTERNS, SLOW, WINK, WINKS  # noqa: E402

OUT = HERE / "door-card.svg"

#: Card size, millimetres (A6 portrait).
WIDTH_MM, HEIGHT_MM = 105, 148
#: Seconds of each light's rhythm drawn as a strip.
STRIP_S = 3.0
ACCENT = "#c26a00"  # amber: the lamp's "called" colour
#: Characters per line of a meaning (3.2 mm type in the 64 mm beside the strips).
MEANING_CHARS = 34


def _strip(pattern: str, x: float, y: float, w: float, h: float) -> list[str]:
    """The light's rhythm over STRIP_S as dark (off) and lit (on) blocks, like a timing chart."""
    out = [f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="#fff" stroke="#000" stroke-width="0.3"/>']
    scale = w / STRIP_S

    def lit(t0: float, t1: float, opacity: float = 1.0) -> None:
        t0, t1 = max(0.0, t0), min(STRIP_S, t1)
        if t1 > t0:
            out.append(f'<rect x="{x + t0 * scale:.2f}" y="{y:.1f}" width="{(t1 - t0) * scale:.2f}" height="{h:.1f}" '
                       f'fill="{ACCENT}" fill-opacity="{opacity:.2f}"/>')

    if pattern == "on":
        lit(0, STRIP_S)
    elif pattern in ("fast", "slow", "blip"):
        on, off = {"fast": FAST, "slow": SLOW, "blip": BLIP}[pattern]
        t = 0.0
        while t < STRIP_S:
            lit(t, t + on)
            t += on + off
    elif pattern == "wink":  # lit, two dark winks, lit again
        on, off = WINK
        lit(0, 0.5)
        t = 0.5
        for _ in range(WINKS):
            lit(t, t + on)
            t += on + off
        lit(t, STRIP_S)
    elif pattern == "fade":  # lit, then fading out over FADE_S
        lit(0, 0.5)
        steps = 12
        for i in range(steps):
            a = 0.5 + FADE_S * i / steps
            lit(a, a + FADE_S / steps, 1 - i / steps)
    return out


def card_svg() -> str:
    """The card as SVG text (millimetre units)."""
    s: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_MM}mm" height="{HEIGHT_MM}mm" '
        f'viewBox="0 0 {WIDTH_MM} {HEIGHT_MM}" font-family="DejaVu Sans, Arial, sans-serif">',
        "<title>Callbell door card: what the button light means</title>",
        f'<rect x="0" y="0" width="{WIDTH_MM}" height="{HEIGHT_MM}" fill="#fff"/>',
        f'<rect x="3" y="3" width="{WIDTH_MM - 6}" height="{HEIGHT_MM - 6}" fill="none" stroke="#000" stroke-width="0.4" rx="3"/>',
        f'<text x="{WIDTH_MM / 2}" y="13" font-size="7" font-weight="bold" text-anchor="middle">Need another size?</text>',
        f'<text x="{WIDTH_MM / 2}" y="20" font-size="4.4" text-anchor="middle">Press the button once. We come to you.</text>',
        f'<circle cx="{WIDTH_MM / 2}" cy="29.5" r="5.5" fill="{ACCENT}" stroke="#000" stroke-width="0.6"/>',
        f'<text x="{WIDTH_MM / 2}" y="31.2" font-size="4" font-weight="bold" text-anchor="middle" fill="#fff">CALL</text>',
        '<text x="8" y="43" font-size="4" font-weight="bold">The light on the button</text>',
    ]
    y = 47.0
    for state, look, meaning in LIGHT_MEANINGS:
        s += _strip(LIGHT_PATTERNS[state], 8, y, 24, 5)
        s.append(f'<text x="36" y="{y + 2.2:.1f}" font-size="3.6" font-weight="bold">{escape(look)}</text>')
        lines = textwrap.wrap(meaning, MEANING_CHARS)
        for i, line in enumerate(lines):
            s.append(f'<text x="36" y="{y + 6.2 + i * 3.8:.1f}" font-size="3.2">{escape(line)}</text>')
        y += 6.9 + 3.8 * len(lines)
    for i, line in enumerate(textwrap.wrap(f"Timing strips: {STRIP_S:g} seconds, lit in colour. A second button, "
                                           "if fitted, asks for another size.", 76)):
        s.append(f'<text x="8" y="{HEIGHT_MM - 9 + i * 3.2:.1f}" font-size="2.6" fill="#444">{escape(line)}</text>')
    s.append("</svg>")
    return "\n".join(s) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hardware.door_card", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if hardware/door-card.svg is out of date")
    args = ap.parse_args(argv)
    svg = card_svg()
    if args.check:
        if not OUT.exists() or OUT.read_text() != svg:
            print(f"{OUT.name} is out of date: run python -m hardware.door_card", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(svg)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
