"""Delivery receipts and reach (hub.domain.call.Floor.receipt, hub.domain.escalation,
hub.domain.associates "Reach") — on a fake clock, like the rest of the domain.

Floor plan and staff as in tests/test_escalation.py: ben is nearest to r1, then cleo, then ana.
Default ladder for the 90 s standard: 0 s nearest, 20 s next, 45 s zone, 90 s manager;
receipts due within 5 s; a tracked phone silent for 120 s is unreachable.
"""
from __future__ import annotations

import pytest

from hub.domain.associates import PING_EVERY_FRACTION
from hub.domain.call import DomainError
from hub.domain.escalation import Ladder
from tests.test_escalation import T0, Store


class PhoneStore(Store):
    """The escalation tests' store, plus what the dispatcher adds for phones: it wakes at the
    roster's deadlines too and records changes of reach."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.reach_events = []

    def run(self):
        out = super().run()
        changes = self.roster.reach(self.floor.active_calls(), self.now)
        self.reach_events += [(t.actor, t.detail["reachable"], round(t.at - T0, 3)) for t in changes]
        return out + changes

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            calls = self.floor.active_calls()
            times = [t for t in (self.floor.next_deadline(), self.esc.next_deadline(calls, self.now),
                                 self.roster.next_deadline(self.now)) if t is not None and t <= end]
            if not times:
                break
            self.clock.advance(max(0.0, min(times) - self.now))
            self.run()
        self.clock.advance(end - self.now)
        self.run()

    def phone(self, *who: str) -> "PhoneStore":
        """Their phone page pings now."""
        for w in who:
            self.roster.heard(w, self.now)
        return self

    def receipt(self, call: str, who: str, stage: str = "delivered", source: str = "phone"):
        alert = [a for a in self.floor.call(call).alerted if a.associate == who][-1]
        t = self.floor.receipt(call, who, alert.at, stage, self.now, source)
        for x in t:
            self.roster.observe(x)
        return t + self.run()


@pytest.fixture
def store() -> PhoneStore:
    return PhoneStore().on_shift("ana", "ben", "cleo", "dan", "eve").at("ana", 22).at("ben", 5) \
        .at("cleo", 20).at("dan", 45).at("eve", 60)


# -- receipts ---------------------------------------------------------------------------------
def test_an_alert_whose_phone_sends_no_receipt_in_5_s_goes_to_the_next_nearest_at_once(store):
    store.phone("ben", "cleo")
    c = store.press("r1")
    store.until(4.9)
    assert store.who(c) == ["ben"]
    store.until(5)
    assert store.alerted(c) == [("ben", 0, 0.0), ("cleo", 1, 5.0)]  # not at 20 s


def test_an_alert_with_a_receipt_in_time_keeps_the_ladder_on_its_times(store):
    store.phone("ben")
    c = store.press("r1")
    store.clock.advance(0.3)
    store.receipt(c, "ben")
    store.until(19.9)
    assert store.who(c) == ["ben"]
    store.until(20)
    assert store.alerted(c)[-1] == ("cleo", 1, 20.0)


def test_no_receipts_in_a_row_walk_down_the_ladder_five_seconds_a_person(store):
    store.phone("ben", "cleo", "ana")
    c = store.press("r1")
    store.until(10)
    # ben at 0, cleo at 5 (no receipt from ben), then zone a (everyone free in it) at 10
    assert store.alerted(c) == [("ben", 0, 0.0), ("cleo", 1, 5.0), ("ana", 2, 10.0)]


def test_a_phone_never_heard_this_shift_is_held_to_the_ladder_only(store):
    c = store.press("r1")  # nobody's phone page has pinged: floor screen, ntfy
    store.until(19.9)
    assert store.who(c) == ["ben"]


def test_a_late_receipt_changes_nothing_already_done(store):
    store.phone("ben", "cleo")
    c = store.press("r1")
    store.until(6)
    store.receipt(c, "ben")
    assert store.who(c) == ["ben", "cleo"]
    call = store.floor.call(c)
    assert call.alerted[0].delivered_at == T0 + 6 and call.status == "open"


def test_shown_implies_delivered_and_each_stage_is_recorded_once_with_its_latency(store):
    store.phone("ben")
    c = store.press("r1")
    store.clock.advance(0.25)
    out = store.receipt(c, "ben", "shown")
    receipts = [(t.kind, t.actor, t.detail["stage"], t.detail["latency_s"]) for t in out if t.kind == "receipt"]
    assert receipts == [("receipt", "ben", "delivered", 0.25), ("receipt", "ben", "shown", 0.25)]
    assert store.receipt(c, "ben", "shown") == [] and store.receipt(c, "ben") == []
    alert = store.floor.call(c).alerted[0]
    assert (alert.delivered_at, alert.shown_at) == (T0 + 0.25, T0 + 0.25)
    assert alert.as_dict() == {"associate": "ben", "at": T0, "step": 0,
                               "delivered_at": T0 + 0.25, "shown_at": T0 + 0.25}


def test_a_receipt_names_its_alert_to_the_millisecond_and_other_receipts_are_refused(store):
    c = store.press("r1")
    with pytest.raises(DomainError, match="no alert for 'cleo'") as e:
        store.floor.receipt(c, "cleo", T0, "delivered", store.now)
    assert e.value.code == "not_found"
    with pytest.raises(DomainError, match="no alert for 'ben'"):
        store.floor.receipt(c, "ben", T0 - 1, "delivered", store.now)
    with pytest.raises(DomainError, match="stage must be one of delivered, shown") as e:
        store.floor.receipt(c, "ben", T0, "read", store.now)
    assert e.value.code == "invalid"
    # The page quotes the alert's time as ISO 8601 to the millisecond: that still names it.
    assert [t.detail["stage"] for t in store.floor.receipt(c, "ben", T0 + 0.0004, "delivered", store.now)] == ["delivered"]


def test_a_receipt_for_a_closed_call_is_refused(store):
    c = store.press("r1")
    store.act("done", c, "ben")
    with pytest.raises(DomainError) as e:
        store.floor.receipt(c, "ben", T0, "delivered", store.now)
    assert e.value.code == "not_found"


def test_the_receipt_deadline_is_one_the_dispatcher_wakes_for(store):
    store.phone("ben")
    c = store.press("r1")
    assert store.esc.next_deadline(store.floor.active_calls(), store.now) == T0 + 5
    store.receipt(c, "ben")
    assert store.esc.next_deadline(store.floor.active_calls(), store.now) == T0 + 20


def test_the_receipt_time_is_configurable():
    s = PhoneStore(ladder=Ladder.default(90, receipt_s=2)).on_shift("ana", "ben").at("ben", 1).at("ana", 9)
    s.phone("ana", "ben")
    c = s.press("r1")
    s.until(2)
    assert s.alerted(c) == [("ben", 0, 0.0), ("ana", 1, 2.0)]
    assert Ladder.default(90, receipt_s=0).problems(90) == [(None, "receipt_s must be more than 0, got 0")]


def test_a_manager_whose_phone_sends_no_receipt_hands_on_to_a_further_step():
    from hub.domain.escalation import Step
    ladder = Ladder((Step(0, "manager"), Step(60, "all")))
    s = PhoneStore(ladder=ladder).on_shift("ana", "maria").at("ana", 1)
    s.phone("maria")
    c = s.press("r1")
    s.until(5)
    assert s.alerted(c) == [("maria", 0, 0.0), ("ana", 1, 5.0)]


# -- reach ------------------------------------------------------------------------------------
def test_a_tracked_phone_silent_for_two_minutes_is_unreachable_and_skipped(store):
    store.phone("ben")
    store.until(119.9)
    assert store.reach_events == []
    store.until(120)
    assert store.reach_events == [("ben", False, 120.0)]
    views = store.roster.views([], store.layout, store.now)
    assert views["ben"]["state"] == "unreachable" and views["ben"]["declared"] == "available"
    assert views["ben"]["reachable"] is False
    c = store.press("r1")
    assert store.who(c) == ["cleo"]  # ben is nearest, but his phone is gone


def test_a_phone_that_pings_every_quarter_of_the_time_stays_reachable(store):
    every = 120 * PING_EVERY_FRACTION
    for _ in range(12):
        store.phone("ben")
        store.advance(every)
    assert store.reach_events == []
    assert store.roster.views([], store.layout, store.now)["ben"]["state"] == "available"


def test_an_unreachable_phone_heard_again_is_reachable_at_once(store):
    store.phone("ben")
    store.until(130)
    store.phone("ben")
    store.run()
    assert store.reach_events == [("ben", False, 120.0), ("ben", True, 130.0)]
    assert store.who(store.press("r1")) == ["ben"]


def test_an_unreachable_associate_alerted_before_counts_as_gone(store):
    store.phone("ben", "cleo")
    c = store.press("r1")
    store.receipt(c, "ben")
    store.phone("cleo")
    store.until(110)
    store.phone("cleo")  # cleo keeps pinging; ben falls silent at 120 s
    store.until(120)
    assert ("ben", False, 120.0) in store.reach_events
    assert "cleo" in store.who(c)


def test_a_tap_or_a_receipt_from_the_phone_counts_as_heard(store):
    store.phone("ben")
    c = store.press("r1")
    store.until(100)
    store.receipt(c, "ben")  # late, but it is news from the phone
    store.until(219.9)
    assert store.reach_events == []
    store.until(220)
    assert store.reach_events == [("ben", False, 220.0)]


def test_going_off_shift_ends_tracking(store):
    store.phone("ben")
    store.roster.set_state("ben", "off", store.now, "phone")
    store.until(300)
    assert store.reach_events == []
    store.roster.set_state("ben", "available", store.now, "phone")  # back, from the dashboard
    store.until(600)
    assert store.reach_events == []  # not tracked again until the phone pings
    assert store.roster.views([], store.layout, store.now)["ben"]["state"] == "available"


def test_a_push_subscriber_is_not_unreachable_by_silence_but_by_a_push_without_receipt(store):
    store.phone("ben")
    store.roster.set_push("ben", True)
    store.until(600)
    assert store.reach_events == []  # page closed, phone locked: push still reaches him
    store.at("ana", 22).at("ben", 5).at("cleo", 20)  # the location feed, fresh
    c = store.press("r1")
    assert store.who(c) == ["ben"]
    store.until(605)
    assert store.reach_events == [("ben", False, 605.0)]
    assert store.who(c) == ["ben", "cleo"]


def test_a_push_subscriber_whose_push_is_received_stays_reachable(store):
    store.phone("ben")
    store.roster.set_push("ben", True)
    store.until(600)
    store.at("ana", 22).at("ben", 5).at("cleo", 20)
    c = store.press("r1")
    store.clock.advance(1)
    store.receipt(c, "ben", source="phone")  # from the service worker
    store.until(700)
    assert store.reach_events == []


def test_presence_is_kept_when_the_roster_is_rebuilt_after_a_failed_write(store):
    from hub.domain.associates import Roster
    from tests.test_escalation import STAFF
    store.phone("ben")
    store.roster.set_push("cleo", True)
    fresh = Roster(STAFF, store.layout.zones)
    fresh.restore(states={w: ("available", T0) for w in ("ana", "ben", "cleo")})
    fresh.keep_presence(store.roster)
    views = fresh.views([], store.layout, store.now)
    assert views["ben"]["heard_at"] == T0 and views["cleo"]["push"] is True
