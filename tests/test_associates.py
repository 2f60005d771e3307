"""Associates (hub.domain.associates): declared and derived states, which position counts, and
the location feed's payload."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbell.protocol import Location, ProtocolError
from hub.domain.associates import DRIFT_M_PER_S, Associate, Roster
from hub.domain.call import DomainError, Floor, Room, Transition
from hub.domain.layout import Layout, Place, Point, Spot

T0 = 1_000_000.0
LAYOUT = Layout({"r1": Spot("a", Point(0, 0)), "r2": Spot("b", Point(30, 0))})


@pytest.fixture
def roster():
    return Roster([Associate("ana", home_zone="a"), Associate("max", role="manager")], LAYOUT.zones)


def test_a_fresh_associate_is_off_shift_and_taken_to_be_in_their_home_zone(roster):
    [ana] = [c for c in roster.candidates([], LAYOUT, T0) if c.id == "ana"]
    assert ana.state == "off" and not ana.free and ana.place == Place(zone="a") and ana.zone == "a"


def test_declaring_a_state_is_an_event_and_repeating_it_is_not(roster):
    [t] = roster.set_state("ana", "available", T0, "phone")
    assert (t.kind, t.actor, t.source, t.detail) == ("associate_state", "ana", "phone", {"state": "available", "was": "off"})
    assert roster.set_state("ana", "available", T0 + 1, "phone") == []


def test_busy_is_derived_from_the_calls_and_cannot_be_declared(roster):
    with pytest.raises(DomainError, match="busy is derived"):
        roster.set_state("ana", "busy", T0, "api")
    roster.set_state("ana", "available", T0, "api")
    floor = Floor([Room("r1", "a")])
    floor.press("r1", "help", T0, T0)
    floor.acknowledge(floor.current("r1").id, "ana", T0 + 5, "phone")
    view = roster.view("ana", floor.active_calls(), LAYOUT, T0 + 6)
    assert view["state"] == "busy" and view["declared"] == "available" and view["call"] == "c-000001"


def test_an_unknown_associate_or_zone_is_refused(roster):
    with pytest.raises(DomainError) as e:
        roster.set_state("zed", "available", T0, "api")
    assert e.value.code == "unknown_associate"
    with pytest.raises(DomainError, match="unknown zone 'kids'"):
        roster.choose_zone("ana", "kids", T0, "phone")


def test_the_location_feed_beats_presence_which_beats_the_chosen_zone_which_beats_home(roster):
    ana = roster.get("ana")
    assert ana.position(T0).source == "home"
    roster.choose_zone("ana", "b", T0, "phone")
    assert ana.position(T0).source == "zone"
    roster.observe(_answered("r1", "ana", T0))
    assert ana.position(T0).source == "presence"
    roster.locate("ana", Place(point=Point(3, 4)), T0)
    assert ana.position(T0).source == "feed"


def test_a_feed_more_than_60_s_older_than_a_presence_ranks_below_it(roster):
    roster.locate("ana", Place(point=Point(3, 4)), T0)
    roster.observe(_answered("r2", "ana", T0 + 60))
    assert roster.get("ana").position(T0 + 60).source == "feed"  # a tie goes to the feed
    roster.observe(_answered("r2", "ana", T0 + 61))
    assert roster.get("ana").position(T0 + 61).source == "presence"


def test_a_sighting_gives_way_to_the_chosen_zone_as_it_ages(roster):
    roster.choose_zone("ana", "b", T0, "phone")
    roster.observe(_answered("r1", "ana", T0))
    assert DRIFT_M_PER_S == 0.05
    assert roster.get("ana").position(T0 + 199).source == "presence"
    assert roster.get("ana").position(T0 + 201).source == "zone"


def test_whoever_finished_a_call_has_waited_since_it_closed(roster):
    floor = Floor([Room("r1", "a")])
    floor.press("r1", "help", T0, T0)
    floor.done(floor.current("r1").id, "ana", T0 + 40, "phone")
    roster.settle(floor.take_changed())
    assert roster.get("ana").idle_since == T0 + 40


def test_a_restored_roster_has_the_last_stored_state_zone_and_presence(roster):
    roster.restore(states={"ana": ("break", T0)}, zones={"ana": ("b", T0)}, presences={"ana": ("r2", T0 + 5)},
                   idle={"ana": T0 - 50})
    ana = roster.get("ana")
    assert ana.state == "break" and ana.positions["zone"].place == Place(zone="b")
    assert ana.position(T0 + 5).place == Place(room="r2") and ana.idle_since == T0 - 50


def _answered(room, who, at):
    return Transition("answered", room, at, "device", "c-000001", who)


# -- the location feed's payload (callbell.protocol.Location) ---------------------------------
@pytest.mark.parametrize("payload, expect", [
    (b'{"room": "fitting-1"}', Location(room="fitting-1")),
    (b'{"zone": "womens", "rssi": -70}', Location(zone="womens")),  # extra fields are ignored
    (b'{"x": 12.5, "y": 3}', Location(x=12.5, y=3.0)),
])
def test_a_location_is_a_room_a_zone_or_a_point(payload, expect):
    assert Location.from_json(payload) == expect
    assert Location.from_json(expect.to_json()) == expect


@pytest.mark.parametrize("payload", [b"{}", b'{"room": "a", "x": 1, "y": 2}', b'{"x": 1}', b'{"x": "1", "y": 2}',
                                     b'{"x": 1e9, "y": 0}', b'{"room": "Fitting 1"}', b'"room"', b"\xff"])
def test_a_bad_location_is_a_protocol_error(payload):
    with pytest.raises(ProtocolError):
        Location.from_json(payload)


@given(st.one_of(st.binary(max_size=64), st.dictionaries(st.sampled_from(["room", "zone", "x", "y", "v"]),
                                                          st.one_of(st.none(), st.integers(), st.floats(),
                                                                    st.text(max_size=8), st.booleans()))))
def test_the_location_decoder_never_fails_other_than_with_a_protocol_error(payload):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    try:
        loc = Location.from_json(raw)
    except ProtocolError:
        return
    assert (loc.room, loc.zone, loc.x) != (None, None, None)
