"""The store layout (hub.domain.layout) and its config: walking distances over the walkway graph,
and a layout mistake reported with its line and key."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbell.settings import ConfigError
from hub.config import load_store_config
from hub.domain.layout import Layout, LayoutError, Place, Point, Spot, Walkway
from hub.layout_drawing import draw
from tests.helpers import ROOT

EXAMPLE = ROOT / "examples" / "store.toml"


@pytest.fixture(scope="module")
def example():
    return load_store_config(EXAMPLE)


def room(r: str) -> Place:
    return Place(room=r)


def test_walking_distance_follows_the_walkways_not_the_straight_line(example):
    layout = example.layout
    straight = layout.rooms["fitting-4"].point.to(layout.rooms["fitting-5"].point)
    walk = layout.distance(room("fitting-4"), "fitting-5")
    assert straight == pytest.approx(21.0)
    # fitting-4 → womens-fitting 3.2, the staff corridor 11 + 11, mens-fitting → fitting-5 3.2
    assert walk == pytest.approx(28.4, abs=0.05)
    assert layout.distance(room("fitting-5"), "fitting-4") == pytest.approx(walk)


def test_a_walkway_length_overrides_the_straight_line():
    rooms = {"a": Spot("z", Point(0, 0)), "b": Spot("z", Point(10, 0))}
    assert Layout(rooms, walkways=[Walkway(("a", "b"))]).distance(room("a"), "b") == 10
    assert Layout(rooms, walkways=[Walkway(("a", "b"), 25)]).distance(room("a"), "b") == 25


def test_without_walkways_distances_are_straight_lines():
    layout = Layout({"a": Spot("z", Point(0, 0)), "b": Spot("z", Point(30, 40))})
    assert layout.distance(room("a"), "b") == 50
    assert layout.distance(Place(point=Point(3, 4)), "a") == 5


def test_a_point_is_snapped_to_the_nearest_walkway_node(example):
    layout = example.layout
    # a metre from the cash desk: 1 m to it, then the cash desk's way to fitting-1
    near = layout.distance(Place(point=Point(20, 13)), "fitting-1")
    assert layout.snap(Point(20, 13)) == "cash-desk"
    assert near == pytest.approx(1 + layout.distance(Place(point=Point(20, 12)), "fitting-1"))


def test_a_zone_stands_for_its_point_or_the_centre_of_its_rooms(example):
    assert example.layout.point_of(Place(zone="womens")) == Point(10, 10)  # configured
    layout = Layout({"a": Spot("z", Point(0, 0)), "b": Spot("z", Point(10, 4))})
    assert layout.point_of(Place(zone="z")) == Point(5, 2)  # the centre of its rooms
    assert layout.zone_of(Place(point=Point(9, 3))) == "z"


def test_without_positions_the_zone_decides():
    layout = Layout({"a": Spot("women"), "b": Spot("men")})
    assert not layout.positioned
    assert layout.distance(Place(zone="women"), "a") == 0
    assert layout.distance(Place(zone="men"), "a") > 0
    assert layout.distance(room("b"), "a") == layout.distance(Place(zone="men"), "a")
    assert math.isinf(layout.distance(None, "a"))


@pytest.mark.parametrize("build, where, message", [
    (lambda: Layout({"a": Spot("z", Point(0, 0)), "b": Spot("z")}), ("rooms", "b", "x"), "every room needs one"),
    (lambda: Layout({"a": Spot("z", Point(0, 0)), "b": Spot("z", Point(1, 0))}, walkways=[Walkway(("a", "c"))]),
     ("walkways", 0, "path"), "unknown room or waypoint 'c'"),
    (lambda: Layout({"a": Spot("z", Point(0, 0)), "b": Spot("z", Point(1, 0)), "c": Spot("z", Point(5, 5))},
                    walkways=[Walkway(("a", "b"))]), ("rooms", "c", "id"), "cannot be reached"),
    (lambda: Layout({"a": Spot("z", Point(0, 0)), "b": Spot("z", Point(1, 0))}, waypoints={"w": Point(2, 2)},
                    walkways=[Walkway(("a", "w", "b"), 5)]), ("walkways", 0, "length_m"), "two points"),
    (lambda: Layout({"a": Spot("z")}, walkways=[Walkway(("a", "a"))]), ("walkways", 0, "path"), "need room positions"),
])
def test_a_layout_that_cannot_work_is_refused_naming_the_key(build, where, message):
    with pytest.raises(LayoutError) as e:
        build()
    assert e.value.where == where and message in e.value.message


# -- the config ------------------------------------------------------------------------------
GOOD = """
[store]
id = "s1"

[[zones]]
id = "a"

[[rooms]]
id = "r1"
zone = "a"
x = 0
y = 0

[[rooms]]
id = "r2"
zone = "a"
x = 10
y = 0

[[waypoints]]
id = "aisle"
x = 5
y = 5

[[walkways]]
path = ["r1", "aisle", "r2"]

[escalation]
reack_s = 120

[[escalation.steps]]
after_s = 0
who = "nearest"

[[escalation.steps]]
after_s = 60
who = "manager"

[[associates]]
id = "ana"
zone = "a"

[[associates]]
id = "max"
role = "manager"
"""


def load(tmp_path: Path, text: str):
    p = tmp_path / "store.toml"
    p.write_text(text)
    return load_store_config(p)


def test_a_store_config_with_a_layout_and_a_ladder_loads(tmp_path):
    c = load(tmp_path, GOOD)
    assert c.layout.distance(room("r1"), "r2") == pytest.approx(2 * math.hypot(5, 5))
    assert [(s.after_s, s.who) for s in c.ladder.steps] == [(0, "nearest"), (60, "manager")]
    assert c.ladder.reack_s == 120
    assert [a.state for a in c.domain_associates()] == ["off", "off"]


def test_without_an_escalation_section_the_ladder_follows_the_standard(tmp_path):
    text = GOOD.replace("[escalation]", "[store_]").split("[store_]")[0] + GOOD.split('who = "manager"')[1]
    c = load(tmp_path, text.replace('id = "s1"', 'id = "s1"\nstandard_s = 60'))
    assert [s.after_s for s in c.ladder.steps] == [0, 13, 30, 40, 60]


@pytest.mark.parametrize("change, expect", [
    (lambda t: t.replace('path = ["r1", "aisle", "r2"]', 'path = ["r1", "hall", "r2"]'),
     "line 26: walkways[0].path: unknown room or waypoint 'hall'"),
    (lambda t: t.replace('path = ["r1", "aisle", "r2"]', 'path = ["r1", "aisle"]'),
     "line 15: rooms[1].id: room 'r2' cannot be reached from 'r1' over the walkways"),
    (lambda t: t.replace('x = 10\ny = 0\n', 'x = 10\n'), "line 14: rooms[1].y: give both x and y"),
    (lambda t: t.replace('x = 10\ny = 0\n', ''), "rooms[1].x: room 'r2' has no x and y"),
    (lambda t: t.replace('role = "manager"', 'role = "associate"'), "associates: no manager"),
    (lambda t: t.replace('id = "ana"\nzone = "a"', 'id = "ana"\nzone = "b"'), "line 41: associates[0].zone: unknown zone 'b'"),
    (lambda t: t.replace('id = "ana"\nzone = "a"', 'id = "ana"\nstate = "busy"'), "associates[0].state"),
    (lambda t: t.replace("after_s = 60", "after_s = 120"),
     "line 36: escalation.steps[1].after_s: the manager must be alerted by the standard (90 s)"),
    (lambda t: t.replace('after_s = 60\nwho = "manager"', 'after_s = 60\nwho = "zone"'),
     "escalation.steps: no 'manager' step"),
    (lambda t: t.replace("after_s = 0", "after_s = 70"), "line 36: escalation.steps[1].after_s: steps must be in order"),
    (lambda t: t.replace('who = "nearest"', 'who = "everyone"'), "line 33: escalation.steps[0].who"),
    (lambda t: t.replace("reack_s = 120", "reack_s = 0"), "line 29: escalation.reack_s"),
])
def test_a_layout_or_ladder_mistake_names_line_and_key(tmp_path, change, expect):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, change(GOOD))
    assert expect in str(e.value)


def test_the_example_store_has_positions_walkways_a_ladder_and_a_manager(example):
    assert example.layout.positioned and len(example.layout.edges()) >= 10
    assert [s.who for s in example.ladder.steps] == ["nearest", "next", "zone", "all", "manager"]
    assert [a.id for a in example.associates if a.role == "manager"] == ["maria"]


def test_the_layout_drawing_in_the_docs_is_drawn_from_the_example_store(example, tmp_path):
    out = tmp_path / "layout.svg"
    r = subprocess.run([sys.executable, "-m", "hub.layout_drawing", str(EXAMPLE), str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    assert svg.startswith("<svg") and svg.count("<rect") >= 9 and "fitting" in svg
    assert (ROOT / "docs" / "images" / "layout.svg").read_text() == draw(example), \
        "docs/images/layout.svg is stale: python -m hub.layout_drawing examples/store.toml docs/images/layout.svg"


# -- properties -------------------------------------------------------------------------------
@st.composite
def graphs(draw_):
    n = draw_(st.integers(2, 7))
    pts = draw_(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=n, max_size=n, unique=True))
    rooms = {f"r{i}": Spot("z", Point(*p)) for i, p in enumerate(pts)}
    names = list(rooms)
    # a random spanning tree keeps every room reachable; extra edges make shortcuts
    walkways = [Walkway((names[i], names[draw_(st.integers(0, i - 1))])) for i in range(1, n)]
    for a, b in draw_(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=5)):
        if a != b:
            walkways.append(Walkway((a, b), draw_(st.one_of(st.none(), st.floats(60, 120)))))
    return Layout(rooms, walkways=walkways)


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_walking_is_never_shorter_than_the_straight_line_and_the_same_both_ways(layout):
    for a in layout.rooms:
        for b in layout.rooms:
            d = layout.distance(room(a), b)
            assert d + 1e-9 >= layout.rooms[a].point.to(layout.rooms[b].point)
            assert d == pytest.approx(layout.distance(room(b), a))
