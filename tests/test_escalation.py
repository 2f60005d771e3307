"""Who gets alerted, and when (hub.domain.escalation) — on a fake clock: no broker, no disk.

The floor plan of these tests (metres), two zones, five associates and a manager::

    y
    0   r1 (0,0) ── r2 (10,0) ─────────────────── r3 (40,0)
        └─ zone a ─┘                              └ zone b
"""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbell.clock import FakeClock
from hub.domain.associates import Associate, Roster
from hub.domain.call import Floor, Room, Timing
from hub.domain.escalation import Escalation, Ladder, Step
from hub.domain.layout import Layout, Place, Point, Spot

T0 = 1_000_000.0
ROOMS = {"r1": Spot("a", Point(0, 0)), "r2": Spot("a", Point(10, 0)), "r3": Spot("b", Point(40, 0))}
STAFF = [Associate("ana", home_zone="a"), Associate("ben", home_zone="a"), Associate("cleo", home_zone="a"),
         Associate("dan", home_zone="b"), Associate("eve", home_zone="b"),
         Associate("maria", role="manager")]


class Store:
    """A floor, a roster and the ladder, driven like the hub drives them: run the escalation
    after every change and at every deadline the domain announces."""

    def __init__(self, ladder: Ladder | None = None, staff=STAFF, layout: Layout | None = None,
                 standard_s: float = 90):
        self.clock = FakeClock(T0)
        self.layout = layout or Layout(ROOMS)
        self.floor = Floor([Room(r, s.zone) for r, s in self.layout.rooms.items()],
                           Timing(standard_s=standard_s, expiry_s=900, handling_limit_s=600))
        self.roster = Roster(staff, self.layout.zones)
        self.esc = Escalation(ladder or Ladder.default(standard_s), self.layout)
        self.calls = {}  # every call seen, by id (closed ones too)

    @property
    def now(self) -> float:
        return self.clock.time()

    def on_shift(self, *who: str) -> "Store":
        for w in who:
            self.roster.set_state(w, "available", self.now, "api")
        return self

    def at(self, who: str, x: float, y: float = 0.0) -> "Store":
        self.roster.locate(who, Place(point=Point(x, y)), self.now)
        return self

    def run(self):
        out = self.floor.tick(self.now) + self.esc.run(self.floor, self.roster, self.now)
        for t in out:
            self.roster.observe(t)
        changed = self.floor.take_changed()
        self.roster.settle(changed)
        self.calls.update((c.id, c) for c in changed)
        return out

    def press(self, room: str = "r1") -> str:
        t = self.floor.press(room, "help", self.now, self.now)
        for x in t:
            self.roster.observe(x)
        self.run()
        return t[-1].call

    def advance(self, seconds: float) -> None:
        """Let time pass, waking at every deadline like the dispatcher does."""
        end = self.now + seconds
        while True:
            calls = self.floor.active_calls()
            times = [t for t in (self.floor.next_deadline(), self.esc.next_deadline(calls, self.now))
                     if t is not None and t <= end]
            if not times:
                break
            self.clock.advance(max(0.0, min(times) - self.now))
            self.run()
        self.clock.advance(end - self.now)
        self.run()

    def until(self, seconds: float) -> None:
        """Let time pass until ``seconds`` after T0."""
        self.advance(T0 + seconds - self.now)

    def alerted(self, call: str) -> list[tuple[str, int, float]]:
        """(associate, step, seconds after the press) for every alert of ``call``."""
        c = self.calls[call]
        return [(a.associate, a.step, round(a.at - c.pressed_at, 3)) for a in c.alerted]

    def who(self, call: str) -> list[str]:
        return [a for a, _, _ in self.alerted(call)]

    def act(self, verb: str, call: str, who: str):
        t = getattr(self.floor, verb)(call, who, self.now, "phone")
        for x in t:
            self.roster.observe(x)
        return t + self.run()


@pytest.fixture
def store() -> Store:
    return Store().on_shift("ana", "ben", "cleo", "dan", "eve").at("ana", 22).at("ben", 5).at("cleo", 20) \
        .at("dan", 45).at("eve", 60)


def test_alerts_the_nearest_free_associate_first(store):
    c = store.press("r1")
    assert store.alerted(c) == [("ben", 0, 0.0)]


def test_skips_an_associate_on_break(store):
    store.roster.set_state("ben", "break", store.now, "phone")
    c = store.press("r1")
    assert store.who(c) == ["cleo"]


def test_skips_an_associate_who_is_off_shift(store):
    store.roster.set_state("ben", "off", store.now, "phone")
    store.roster.set_state("cleo", "off", store.now, "phone")
    assert store.who(store.press("r1")) == ["ana"]


def test_skips_a_busy_associate(store):
    first = store.press("r2")  # ben (5 m) is nearest to r2 too
    store.act("acknowledge", first, "ben")
    c = store.press("r1")
    assert store.who(c) == ["cleo"]


def test_a_tie_in_distance_goes_to_whoever_has_waited_longest_since_their_last_call():
    s = Store().on_shift("ana", "ben").at("ana", 10).at("ben", 10)
    old = s.press("r3")
    s.act("done", old, "ben")  # ben finished a call at r3 just now ...
    s.clock.advance(60)
    s.act("done", s.press("r3"), "ana")  # ... and ana more recently
    s.at("ana", 10).at("ben", 10)
    s.clock.advance(5)
    assert s.who(s.press("r1")) == ["ben"]


def test_alerts_the_next_nearest_at_20_s_when_nobody_acknowledged(store):
    c = store.press("r1")
    store.until(19.9)
    assert store.who(c) == ["ben"]
    store.until(20)
    assert store.alerted(c) == [("ben", 0, 0.0), ("cleo", 1, 20.0)]


def test_escalates_to_the_zone_at_45_s_when_nobody_acknowledged(store):
    c = store.press("r1")
    store.advance(45)
    # ana is the only free associate of zone a not asked yet; dan and eve work in zone b
    assert store.alerted(c) == [("ben", 0, 0.0), ("cleo", 1, 20.0), ("ana", 2, 45.0)]


def test_reaches_the_manager_at_the_standard_and_the_lamp_turns_overdue(store):
    c = store.press("r1")
    store.until(89.9)
    assert "maria" not in store.who(c) and store.floor.lamp("r1").state == "called"
    store.until(90)
    assert store.alerted(c)[-1] == ("maria", 4, 90.0)
    assert store.floor.lamp("r1").state == "overdue"


def test_the_manager_is_alerted_even_when_on_break_or_off_shift(store):
    assert store.roster.get("maria").state == "off"
    c = store.press("r1")
    store.advance(90)
    assert "maria" in store.who(c)


def test_acknowledging_stops_the_alerting_of_others(store):
    c = store.press("r1")
    store.clock.advance(8)
    store.act("acknowledge", c, "ben")
    store.advance(120)
    assert store.who(c) == ["ben"]


def test_a_decline_by_everyone_alerted_escalates_at_once(store):
    c = store.press("r1")
    store.clock.advance(3)
    store.act("decline", c, "ben")
    assert store.alerted(c) == [("ben", 0, 0.0), ("cleo", 1, 3.0)]
    store.clock.advance(2)
    store.act("decline", c, "cleo")
    assert store.alerted(c)[-1] == ("ana", 2, 5.0)  # the zone step, at once
    store.advance(20)
    assert store.who(c) == ["ben", "cleo", "ana"]  # its time does not bring the next step again


def test_a_decline_by_some_of_those_alerted_waits_for_the_clock(store):
    c = store.press("r1")
    store.advance(20)
    store.act("decline", c, "ben")
    store.advance(10)
    assert store.who(c) == ["ben", "cleo"]
    store.advance(15)
    assert store.who(c) == ["ben", "cleo", "ana"]


def test_when_everyone_declines_the_next_step_is_at_once_up_to_the_manager(store):
    c = store.press("r1")
    for who in ("ben", "cleo", "ana"):
        store.act("decline", c, who)
    assert store.who(c) == ["ben", "cleo", "ana", "dan", "eve"]  # the zone said no: the whole store
    for who in ("dan", "eve"):
        store.act("decline", c, who)
    assert store.alerted(c)[-1] == ("maria", 4, 0.0)


def test_the_default_ladder_reaches_free_associates_in_other_zones_before_the_manager(store):
    for who in ("ben", "cleo"):  # of zone a only Ana is free
        store.roster.set_state(who, "break", store.now, "phone")
    c = store.press("r1")
    store.until(59.9)
    assert store.who(c) == ["ana", "dan"]  # the nearest, then the next nearest (from zone b)
    store.until(60)
    assert store.alerted(c)[-1] == ("eve", 3, 60.0)  # at 60 s: everyone free in the store
    store.until(90)
    assert store.alerted(c)[-1] == ("maria", 4, 90.0)


def test_an_associate_who_took_another_call_counts_as_declined(store):
    c = store.press("r1")
    other = store.press("r2")
    store.act("acknowledge", other, "ben")  # ben was alerted for c, and took r2's call
    assert store.who(c) == ["ben", "cleo"]


def test_re_alerts_an_acknowledged_call_not_answered_in_3_min(store):
    c = store.press("r1")
    store.clock.advance(10)
    store.act("acknowledge", c, "ben")
    store.until(189.9)
    assert store.floor.call(c).status == "acknowledged"
    store.until(190)
    call = store.floor.call(c)
    assert call.status == "open" and call.reopened_at == T0 + 190 and call.acknowledged_by is None
    # as if new: the nearest free associate first (ben again: he is still nearest), then the ladder
    assert store.alerted(c)[-1] == ("ben", 0, 190.0)
    store.until(210)
    assert store.alerted(c)[-1] == ("cleo", 1, 210.0)


def test_the_re_alert_time_is_configurable():
    s = Store(Ladder.default(90, reack_s=60)).on_shift("ana").at("ana", 1)
    c = s.press("r1")
    s.act("acknowledge", c, "ana")
    s.advance(60)
    assert s.floor.call(c).status == "open"


def test_an_associate_who_becomes_free_is_alerted_for_a_waiting_call(store):
    for who in ("ana", "ben", "cleo", "dan", "eve"):
        store.roster.set_state(who, "break", store.now, "phone")
    c = store.press("r1")
    assert store.who(c) == []
    store.clock.advance(7)
    store.roster.set_state("eve", "available", store.now, "phone")
    store.run()
    assert store.alerted(c) == [("eve", 0, 7.0)]


def test_two_calls_at_once_go_to_two_associates(store):
    a, b = store.press("r1"), store.press("r2")
    assert store.who(a) == ["ben"] and store.who(b) == ["cleo"]


def test_a_stale_location_feed_ranks_below_a_fresher_presence():
    s = Store().on_shift("ana", "ben")
    s.at("ana", 1)  # the feed saw ana next to r1 ...
    s.act("done", s.press("r3"), "ben")
    s.clock.advance(100)
    s.act("done", s.press("r3"), "ana")  # ... but she pressed presence at r3 100 s later
    s.at("ben", 2)
    assert s.roster.get("ana").position(s.now).source == "presence"
    assert s.who(s.press("r1")) == ["ben"]


def test_with_no_positions_the_call_s_zone_comes_first():
    layout = Layout({"r1": Spot("a"), "r3": Spot("b")})
    s = Store(layout=layout).on_shift("dan", "ana")
    assert s.who(s.press("r1")) == ["ana"] and s.who(s.press("r3")) == ["dan"]


def test_a_restarted_hub_carries_on_where_the_ladder_stood(store):
    store.press("r1")
    store.advance(25)
    restarted = Escalation(store.esc.ladder, store.layout)  # no state of its own to lose
    calls = store.floor.active_calls()
    assert restarted.plan(calls, store.roster.candidates(calls, store.layout, store.now), store.now) == []
    assert restarted.next_deadline(calls, store.now) == T0 + 45


def test_the_default_ladder_follows_the_standard():
    assert [(s.after_s, s.who) for s in Ladder.default(90).steps] == [
        (0, "nearest"), (20, "next"), (45, "zone"), (60, "all"), (90, "manager")]
    assert [s.after_s for s in Ladder.default(60).steps] == [0, 13, 30, 40, 60]
    assert Ladder.default(90).reack_s == 180


@pytest.mark.parametrize("steps, problem", [
    ([Step(0, "nearest"), Step(20, "zone")], "no 'manager' step"),
    ([Step(0, "nearest"), Step(120, "manager")], "by the standard (90 s)"),
    ([Step(30, "nearest"), Step(20, "next"), Step(90, "manager")], "in order"),
    ([Step(0, "everyone"), Step(90, "manager")], "who must be one of"),
])
def test_a_ladder_without_a_reachable_manager_or_out_of_order_is_refused(steps, problem):
    problems = Ladder(tuple(steps)).problems(90)
    assert any(problem in m for _, m in problems), problems


# -- properties -------------------------------------------------------------------------------
coords = st.floats(0, 60, allow_nan=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people=st.lists(st.tuples(coords, coords, st.sampled_from(["available", "break", "off"])),
                       min_size=1, max_size=8),
       room=st.sampled_from(["r1", "r2", "r3"]))
def test_the_chosen_associate_is_never_farther_than_another_available_one(people, room):
    staff = [Associate(f"p{i}") for i in range(len(people))] + [Associate("boss", role="manager")]
    s = Store(staff=staff)
    for i, (x, y, state) in enumerate(people):
        s.roster.set_state(f"p{i}", state, s.now, "api")
        s.at(f"p{i}", x, y)
    c = s.press(room)
    free = [f"p{i}" for i, (_, _, state) in enumerate(people) if state == "available"]
    chosen = s.who(c)
    assert len(chosen) == (1 if free else 0)
    if chosen:
        d = lambda who: s.layout.distance(Place(point=Point(*people[int(who[1:])][:2])), room)
        assert all(d(chosen[0]) <= d(other) + 1e-9 for other in free)


@st.composite
def ladders(draw, standard_s=90.0):
    times = sorted(draw(st.lists(st.floats(0, 200, allow_nan=False), min_size=0, max_size=5)))
    steps = [Step(t, draw(st.sampled_from(["nearest", "next", "zone", "all"]))) for t in times]
    manager_at = draw(st.floats(0, standard_s, allow_nan=False))
    steps.append(Step(manager_at, "manager"))
    return Ladder(tuple(sorted(steps, key=lambda s: s.after_s)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ladder=ladders(),
       states=st.lists(st.sampled_from(["available", "break", "off"]), min_size=5, max_size=5),
       declines=st.lists(st.tuples(st.floats(0, 90, allow_nan=False), st.integers(0, 5)), max_size=8),
       manager_state=st.sampled_from(["available", "break", "off"]))
def test_every_call_reaches_the_manager_by_the_standard_if_unacknowledged(ladder, states, declines, manager_state):
    assert ladder.problems(90) == []
    s = Store(ladder)
    for who, state in zip(("ana", "ben", "cleo", "dan", "eve"), states):
        s.roster.set_state(who, state, s.now, "api")
    s.roster.set_state("maria", manager_state, s.now, "api")
    c = s.press("r1")
    names = ["ana", "ben", "cleo", "dan", "eve", "maria"]
    for at, who in sorted(declines):
        s.until(max(at, s.now - T0))
        if names[who] in s.who(c):
            s.act("decline", c, names[who])
    s.until(90)
    manager = [at for who, _, at in s.alerted(c) if who == "maria"]
    assert manager and manager[0] <= 90 + 1e-6
    assert not math.isinf(manager[0])


def test_the_store_day_simulation_runs_on_these_modules_and_answers_every_call():
    import importlib.util
    import sys

    from tests.helpers import ROOT
    spec = importlib.util.spec_from_file_location("store_day", ROOT / "bench" / "store_day.py")
    store_day = importlib.util.module_from_spec(spec)
    sys.modules["store_day"] = store_day  # dataclasses look their module up there
    spec.loader.exec_module(store_day)
    rows = {r.policy: r for r in store_day.simulate(days=2, seed=3, bystanders=(0.0,))}
    broadcast, ladder = rows["broadcast to all"], rows["ladder, no feed"]
    assert broadcast.calls == ladder.calls > 150  # the same shoppers under every policy
    assert ladder.alerts_per_call < broadcast.alerts_per_call
    assert all(r.median_s < 90 and r.within > 0.8 for r in rows.values())
