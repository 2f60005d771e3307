"""Draw a store's layout (rooms, zones, waypoints, walkways with their lengths) as an SVG.

    python -m hub.layout_drawing examples/store.toml docs/images/layout.svg

Plain SVG text written with the standard library, from the same checked config the hub reads,
so the picture in the docs is the layout the hub computes distances on. The street is at the
bottom (y grows away from it), one metre is :data:`PX_PER_M` pixels.
"""
from __future__ import annotations

import argparse
import sys
from html import escape
from pathlib import Path

from callbell.settings import ConfigError
from hub.config import StoreConfig, load_store_config
from hub.domain.layout import Point

#: Pixels per metre of floor.
PX_PER_M = 20
#: Margin around the floor, metres.
MARGIN_M = 3.0
#: Zone colours, in the order the zones are configured (colour-blind-safe Okabe-Ito palette).
ZONE_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442")
NO_ZONE = "#999999"


def draw(config: StoreConfig) -> str:
    """The SVG text of ``config``'s layout. Raises ValueError if the rooms have no positions."""
    layout = config.layout
    if not layout.positioned:
        raise ValueError("the rooms have no positions (x, y): nothing to draw")
    points = [s.point for s in layout.rooms.values()] + list(layout.waypoints.values())
    points += [p for p in layout.zone_points.values() if p is not None]
    x0 = min(p.x for p in points) - MARGIN_M
    x1 = max(p.x for p in points) + MARGIN_M
    y0 = min(p.y for p in points) - MARGIN_M
    y1 = max(p.y for p in points) + MARGIN_M
    legend_h = 70
    width, height = (x1 - x0) * PX_PER_M, (y1 - y0) * PX_PER_M + legend_h

    def xy(p: Point) -> tuple[float, float]:
        return round((p.x - x0) * PX_PER_M, 1), round((y1 - p.y) * PX_PER_M, 1)

    colour = {z.id: ZONE_COLOURS[i % len(ZONE_COLOURS)] for i, z in enumerate(config.zones)}
    names = {z.id: z.name or z.id for z in config.zones}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
           f"<title>{escape(config.store.name or config.store.id)}: store layout</title>",
           f'<rect x="0" y="0" width="{width:.0f}" height="{height - legend_h:.0f}" fill="#fbfaf7" stroke="#444"/>']
    # walkways, with their lengths
    for a, b, metres in layout.edges():
        (ax, ay), (bx, by) = xy(layout.node_point(a)), xy(layout.node_point(b))
        out.append(f'<line x1="{ax}" y1="{ay}" x2="{bx}" y2="{by}" stroke="#bbb" stroke-width="4" '
                   'stroke-linecap="round"/>')
        straight = layout.node_point(a).to(layout.node_point(b))
        if metres >= 2.5:
            label = f"{metres:.1f} m" + (" *" if metres > straight + 0.05 else "")
            out.append(f'<text x="{(ax + bx) / 2:.1f}" y="{(ay + by) / 2 - 5:.1f}" text-anchor="middle" '
                       f'fill="#777" font-size="10">{label}</text>')
    # zone points
    for zone, p in layout.zone_points.items():
        if p is None:
            continue
        x, y = xy(p)
        c = colour.get(zone, NO_ZONE)
        out.append(f'<circle cx="{x}" cy="{y}" r="16" fill="{c}" fill-opacity="0.18" stroke="{c}" '
                   'stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x}" y="{y + 32}" text-anchor="middle" fill="{c}" font-weight="bold">'
                   f"{escape(names.get(zone, zone))}</text>")
    # waypoints
    for w, p in layout.waypoints.items():
        x, y = xy(p)
        out.append(f'<circle cx="{x}" cy="{y}" r="4" fill="#666"/>')
        out.append(f'<text x="{x + 7}" y="{y - 6}" fill="#555" font-size="10">{escape(w)}</text>')
    # rooms
    for room, spot in layout.rooms.items():
        x, y = xy(spot.point)
        c = colour.get(spot.zone, NO_ZONE)
        out.append(f'<rect x="{x - 9}" y="{y - 9}" width="18" height="18" rx="3" fill="{c}" stroke="#333"/>')
        label = room.rsplit("-", 1)[-1] if room.rsplit("-", 1)[-1].isdigit() else room
        out.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle" font-size="10" fill="#000">{escape(label)}</text>')
    # legend and scale bar
    ly = height - legend_h + 22
    out.append(f'<line x1="12" y1="{ly}" x2="{12 + 5 * PX_PER_M}" y2="{ly}" stroke="#333" stroke-width="2"/>')
    out.append(f'<text x="12" y="{ly + 16}" font-size="10">5 m</text>')
    lx = start = 30 + 5 * PX_PER_M
    items = [(lambda x, y, c=colour[z.id]: f'<rect x="{x}" y="{y - 9}" width="14" height="14" rx="3" '
              f'fill="{c}" stroke="#333"/>', f"fitting room, {z.name or z.id}") for z in config.zones]
    items.append((lambda x, y: f'<circle cx="{x + 7}" cy="{y - 2}" r="4" fill="#666"/>', "waypoint"))
    items.append((lambda x, y: f'<line x1="{x}" y1="{y - 2}" x2="{x + 14}" y2="{y - 2}" stroke="#bbb" '
                  'stroke-width="4"/>', "walkway (* longer than the straight line)"))
    for shape, text in items:
        w = 30 + 6.2 * len(text)
        if lx + w > width and lx > start:
            lx, ly = start, ly + 20
        out.append(shape(lx, ly))
        out.append(f'<text x="{lx + 20}" y="{ly + 3}">{escape(text)}</text>')
        lx += w
    out.append(f'<text x="12" y="{height - 10}" fill="#777" font-size="10">street side at the bottom; '
               f"drawn by hub/layout_drawing.py from the store config</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.layout_drawing", description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="store config (store.toml)")
    parser.add_argument("output", type=Path, help="SVG file to write")
    args = parser.parse_args(argv)
    try:
        svg = draw(load_store_config(args.config))
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(svg, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
