"""The store layout: zones, rooms with positions in metres, the walkway graph, and the walking
distance from wherever an associate is to a fitting room. Pure: no I/O, no clock.

    layout = Layout(
        rooms={"fitting-1": Spot("womens", Point(3, 22)), "fitting-5": Spot("mens", Point(37, 22))},
        zones={"womens": Point(10, 10), "mens": Point(30, 10)},
        waypoints={"aisle": Point(20, 12)},
        walkways=[Walkway(("fitting-1", "aisle", "fitting-5"))],
    )
    layout.distance(Place(point=Point(12, 11)), "fitting-1")   # metres, over the walkways

Distances, in metres:

- With **walkways** (a graph whose nodes are the rooms and named waypoints, each edge as long as
  the straight line between its ends unless a length is given): a position is snapped to the
  nearest node (straight line), then the shortest path over the graph (Dijkstra) to the room.
- With room positions but **no walkways**: the straight line.
- With **no positions at all**: the zone decides — 0 m within the call's zone,
  :data:`OTHER_ZONE_M` elsewhere — so the zone still orders who is asked first.

A position (:class:`Place`) is a room, a zone (stands for the zone's point: its ``x``/``y`` if
configured, else the centre of its rooms) or a point ``x``/``y``.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

#: Walking speed of an associate on a shop floor, metres per second. Free walking is
#: 1.2-1.4 m/s in pedestrian studies; 1.2 allows for displays, shoppers and carrying clothes.
#: Only turns distances into seconds (the store-day simulation, estimates); ranking uses metres.
WALKING_SPEED_M_S = 1.2

#: Without room positions, an associate known to be in another zone than the call's counts as
#: this many metres away (and one in the call's zone as 0): a typical walk between two
#: departments. Larger would change nothing (only the order matters); it must beat 0.
OTHER_ZONE_M = 50.0

#: Distance of a position the layout cannot place (no zone, unknown room): ranked last.
UNKNOWN_M = math.inf


@dataclass(frozen=True)
class Point:
    """A point on the floor plan, metres from its origin (x to the right, y away from the door)."""

    x: float
    y: float

    def to(self, other: "Point") -> float:
        return math.hypot(self.x - other.x, self.y - other.y)


@dataclass(frozen=True)
class Place:
    """Where someone is: exactly one of a room, a zone or a point."""

    room: str | None = None
    zone: str | None = None
    point: Point | None = None

    def as_dict(self) -> dict:
        if self.point is not None:
            return {"x": self.point.x, "y": self.point.y}
        return {"room": self.room} if self.room is not None else {"zone": self.zone}


@dataclass(frozen=True)
class Spot:
    """A room's zone and position (None when the store gives no positions)."""

    zone: str | None = None
    point: Point | None = None


@dataclass(frozen=True)
class Walkway:
    """A walkable path through rooms and waypoints, in order. ``length_m`` (two nodes only)
    overrides the straight line, e.g. for a way around a display."""

    path: tuple[str, ...]
    length_m: float | None = None


class LayoutError(ValueError):
    """A layout that cannot work. ``where`` names the config key, e.g. ``("walkways", 2, "path")``
    or ``("rooms", "fitting-6", "id")`` (a room by id)."""

    def __init__(self, where: tuple, message: str):
        super().__init__(message)
        self.where = where
        self.message = message


class Layout:
    """Zones, room positions and the walkway graph of one store; answers walking distances."""

    def __init__(self, rooms: Mapping[str, Spot], zones: Mapping[str, Point | None] | Iterable[str] = (),
                 waypoints: Mapping[str, Point] | None = None, walkways: Sequence[Walkway] = ()):
        self.rooms: dict[str, Spot] = dict(rooms)
        zone_points = dict(zones) if isinstance(zones, Mapping) else {z: None for z in zones}
        for spot in self.rooms.values():
            if spot.zone is not None:
                zone_points.setdefault(spot.zone, None)
        self.waypoints: dict[str, Point] = dict(waypoints or {})
        self.walkways = tuple(walkways)
        self._check_positions()
        self.positioned = any(s.point is not None for s in self.rooms.values())
        self.zone_points: dict[str, Point | None] = {
            z: p if p is not None else self._centre(z) for z, p in zone_points.items()}
        self._nodes: dict[str, Point] = {}
        self._edges: dict[str, dict[str, float]] = {}
        self._from_room: dict[str, dict[str, float]] = {}
        if self.walkways:
            self._build_graph()

    @classmethod
    def zones_only(cls, rooms: Iterable) -> "Layout":
        """A layout without positions from domain rooms (anything with ``id`` and ``zone``)."""
        return cls({r.id: Spot(r.zone) for r in rooms})

    # -- questions --------------------------------------------------------------------------
    @property
    def zones(self) -> list[str]:
        return list(self.zone_points)

    def zone_of(self, place: Place | None) -> str | None:
        """The zone a position lies in: its room's, its own, or (a point) the zone of the
        nearest room or zone point."""
        if place is None:
            return None
        if place.room is not None:
            spot = self.rooms.get(place.room)
            return spot.zone if spot else None
        if place.zone is not None:
            return place.zone
        best, best_d = None, math.inf
        for z, p in self.zone_points.items():
            if p is not None and place.point.to(p) < best_d:
                best, best_d = z, place.point.to(p)
        for spot in self.rooms.values():
            if spot.point is not None and spot.zone is not None and place.point.to(spot.point) < best_d:
                best, best_d = spot.zone, place.point.to(spot.point)
        return best

    def point_of(self, place: Place | None) -> Point | None:
        if place is None:
            return None
        if place.point is not None:
            return place.point
        if place.room is not None:
            spot = self.rooms.get(place.room)
            return spot.point if spot else None
        return self.zone_points.get(place.zone)

    def distance(self, place: Place | None, room: str) -> float:
        """Walking distance in metres from ``place`` to ``room`` (inf if it cannot be placed)."""
        target = self.rooms[room]
        if not self.positioned:
            zone = self.zone_of(place)
            if zone is None:
                return UNKNOWN_M
            if place.room == room:
                return 0.0
            return 0.0 if zone == target.zone else OTHER_ZONE_M
        p = self.point_of(place)
        if p is None:
            return UNKNOWN_M
        if not self.walkways:
            return p.to(target.point)
        node = place.room if place is not None and place.room in self._nodes else self.snap(p)
        return p.to(self._nodes[node]) + self._from_room[room].get(node, math.inf)

    def snap(self, p: Point) -> str:
        """The walkway node (room or waypoint) nearest to ``p`` in a straight line."""
        return min(self._nodes, key=lambda n: (p.to(self._nodes[n]), n))

    def walk_s(self, metres: float, speed_m_s: float = WALKING_SPEED_M_S) -> float:
        return metres / speed_m_s

    def edges(self) -> list[tuple[str, str, float]]:
        """Every walkway segment once: (node, node, metres). For drawings."""
        out = []
        for a, ends in self._edges.items():
            out += [(a, b, d) for b, d in ends.items() if a < b]
        return sorted(out)

    def node_point(self, node: str) -> Point:
        return self._nodes[node]

    # -- building and checking --------------------------------------------------------------
    def _check_positions(self) -> None:
        with_point = [r for r, s in self.rooms.items() if s.point is not None]
        if with_point and len(with_point) != len(self.rooms):
            missing = next(r for r, s in self.rooms.items() if s.point is None)
            raise LayoutError(("rooms", missing, "x"), f"room {missing!r} has no x and y; once one room "
                              f"has a position ({with_point[0]!r}) every room needs one")
        if not with_point and (self.waypoints or self.walkways):
            what = ("walkways", 0, "path") if self.walkways else ("waypoints", 0, "id")
            raise LayoutError(what, "walkways and waypoints need room positions: give every room x and y (metres)")

    def _centre(self, zone: str) -> Point | None:
        pts = [s.point for s in self.rooms.values() if s.zone == zone and s.point is not None]
        if not pts:
            return None
        return Point(sum(p.x for p in pts) / len(pts), sum(p.y for p in pts) / len(pts))

    def _build_graph(self) -> None:
        for i, w in enumerate(self.waypoints):
            if w in self.rooms:
                raise LayoutError(("waypoints", i, "id"), f"waypoint {w!r} has the id of a room; ids must differ")
        nodes = {**{r: s.point for r, s in self.rooms.items()}, **self.waypoints}
        self._nodes = nodes
        self._edges = {n: {} for n in nodes}
        for i, w in enumerate(self.walkways):
            if len(w.path) < 2:
                raise LayoutError(("walkways", i, "path"), "a walkway needs at least two rooms or waypoints")
            for n in w.path:
                if n not in nodes:
                    raise LayoutError(("walkways", i, "path"), f"unknown room or waypoint {n!r}")
            if w.length_m is not None:
                if len(w.path) != 2:
                    raise LayoutError(("walkways", i, "length_m"),
                                      "length_m is for a walkway between two points; split longer paths")
                if not w.length_m > 0:
                    raise LayoutError(("walkways", i, "length_m"), "length_m must be more than 0")
            for a, b in zip(w.path, w.path[1:]):
                if a == b:
                    raise LayoutError(("walkways", i, "path"), f"{a!r} follows itself")
                d = w.length_m if w.length_m is not None else nodes[a].to(nodes[b])
                d = min(d, self._edges[a].get(b, math.inf))
                self._edges[a][b] = self._edges[b][a] = d
        self._from_room = {r: self._dijkstra(r) for r in self.rooms}
        first = next(iter(self.rooms))
        reach = self._from_room[first]
        for r in self.rooms:
            if r not in reach:
                raise LayoutError(("rooms", r, "id"), f"room {r!r} cannot be reached from {first!r} over the "
                                  "walkways: add a [[walkways]] path to it")
        for i, w in enumerate(self.waypoints):
            if w not in reach:
                raise LayoutError(("waypoints", i, "id"), f"waypoint {w!r} is on no walkway that reaches the rooms")

    def _dijkstra(self, source: str) -> dict[str, float]:
        dist = {source: 0.0}
        heap = [(0.0, source)]
        while heap:
            d, n = heapq.heappop(heap)
            if d > dist.get(n, math.inf):
                continue
            for m, w in self._edges[n].items():
                nd = d + w
                if nd < dist.get(m, math.inf):
                    dist[m] = nd
                    heapq.heappush(heap, (nd, m))
        return dist
