"""The staffing model (hub/domain/staffing.py): Erlang C by hand, against a discrete-event
simulation of the same queue, and the signed-in associate-hours."""
import heapq
import math
import random
from collections import Counter
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from hub.domain import staffing
from hub.domain.staffing import LocalHours, erlang_c, hours, needed, plan, share_within, signed_in, wait_exceeds

BERLIN = ZoneInfo("Europe/Berlin")


def test_erlang_c_matches_the_textbook_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)        # M/M/1: the utilisation
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)     # (8/6 · 3/1) / (1 + 2 + 2 + 4)
    assert erlang_c(2, 2.0) == 1.0                       # overloaded: everyone waits
    assert erlang_c(3, 0.0) == 0.0


def test_the_share_within_the_standard_counts_the_walk_against_it():
    # 20 calls an hour, 150 s handling + 25 s walk: a = 20/3600 × 175 = 0.972 Erlang
    a = 20 / 3600 * 175
    expected = 1 - erlang_c(2, a) * math.exp(-(2 - a) * (90 - 25) / 175)
    assert share_within(2, 20, 150, 25, 90) == pytest.approx(expected)
    assert share_within(2, 20, 150, 25, 90) == pytest.approx(0.783, abs=1e-3)


def test_needed_is_the_fewest_associates_that_reach_the_target_share():
    shares = [share_within(c, 20, 150, 25, 90) for c in (1, 2, 3)]
    assert shares[0] < shares[1] < 0.9 <= shares[2]
    assert needed(20, 150, 25, 90, 0.9) == 3
    assert needed(20, 150, 25, 90, 0.75) == 2


def test_no_calls_need_nobody_and_a_walk_longer_than_the_standard_cannot_be_staffed():
    assert needed(0, 150, 25, 90, 0.9) == 0
    assert needed(10, 150, 95, 90, 0.9) is None


def test_more_calls_never_need_fewer_associates():
    counts = [needed(r, 180, 30, 90, 0.9) for r in range(0, 120, 5)]
    assert counts == sorted(counts)


def simulate(rate_per_h: float, service_s: float, c: int, n: int, seed: int) -> list[float]:
    """Waits in a first-come-first-served M/M/c queue (the model's own assumptions)."""
    rng = random.Random(seed)
    free_at = [0.0] * c  # when each server is next free (a heap)
    t, waits = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate_per_h / 3600)
        first = heapq.heappop(free_at)
        begin = max(t, first)
        waits.append(begin - t)
        heapq.heappush(free_at, begin + rng.expovariate(1 / service_s))
    return waits[n // 10:]  # leave out the warm-up


@pytest.mark.parametrize("rate, c", [(20, 2), (40, 3), (60, 4)])
def test_erlang_c_agrees_with_a_simulation_of_the_queue(rate, c):
    service_s, walk_s, standard_s = 175.0, 25.0, 90.0
    waits = simulate(rate, service_s, c, 60_000, seed=rate)
    a = rate / 3600 * service_s
    simulated_wait_share = sum(w > 0 for w in waits) / len(waits)
    simulated_within = sum(w + walk_s <= standard_s for w in waits) / len(waits)
    assert simulated_wait_share == pytest.approx(erlang_c(c, a), abs=0.02)
    assert simulated_within == pytest.approx(1 - wait_exceeds(c, a, service_s, standard_s - walk_s), abs=0.02)


def test_local_hours_follow_daylight_saving_in_the_store_zone():
    day = lambda d: (datetime(2026, 10, d, tzinfo=BERLIN).timestamp(), datetime(2026, 10, d + 1, tzinfo=BERLIN).timestamp())  # noqa: E731
    assert len(hours(*day(24), BERLIN)) == 24
    back = hours(*day(25), BERLIN)  # clocks go back: 25 hours, two of them "2 o'clock"
    assert len(back) == 25 and [s for _, s in back].count((6, 2)) == 2
    spring = hours(datetime(2026, 3, 29, tzinfo=BERLIN).timestamp(), datetime(2026, 3, 30, tzinfo=BERLIN).timestamp(), BERLIN)
    assert len(spring) == 23 and (6, 2) not in [s for _, s in spring]


def test_signed_in_associate_hours_are_time_weighted_per_hour_of_the_week():
    t = lambda h, m=0: datetime(2026, 11, 16, h, m, tzinfo=BERLIN).timestamp()  # noqa: E731  a Monday
    start, end = t(8), t(12)
    changes = [(t(9), "ana", "available"), (t(9, 30), "ana", "break"), (t(10, 15), "ana", "available"),
               (t(11), "ana", "off"), (t(10, 30), "ben", "off")]
    got = signed_in({"ben": "available", "ana": "off"}, changes, start, end, LocalHours(start, end, BERLIN))
    # ben from 8:00 to 10:30; ana 9:00-9:30 and 10:15-11:00
    assert got == pytest.approx({(0, 8): 1.0, (0, 9): 1.5, (0, 10): 0.5 + 0.75})
    assert (0, 11) not in got


def test_the_plan_averages_arrivals_and_signed_in_over_the_occurrences_of_each_hour():
    slots = plan({(5, 18): 40}, {(5, 18): 2, (5, 19): 2}, {}, {(5, 18): 5.0},
                 walk_s=25, standard_s=90, target_share=0.9, default_handling_s=150)
    sat18, sat19 = slots
    assert (sat18.rate_per_h, sat18.signed_in, sat18.needed) == (20, 2.5, 3)
    assert sat18.as_dict()["short"] == 0.5
    assert (sat19.rate_per_h, sat19.needed, sat19.signed_in) == (0, 0, 0)


def _signed_in_hour_by_hour(initial, changes, start, end, hour_list):
    """The same figure the slow, obvious way: every interval against every hour."""
    state, since, spans = dict(initial), {a: start for a in initial}, []
    for at, who, new in sorted(changes):
        if at >= end:
            break
        old = state.get(who)
        if old == "available" and new != "available":
            spans.append((since[who], at))
        if new == "available" and old != "available":
            since[who] = max(at, start)
        state[who] = new
    spans += [(since[a], end) for a, s in state.items() if s == "available"]
    out = {}
    for t, slot in hour_list:
        for lo, hi in spans:
            overlap = min(hi, t + 3600) - max(lo, t)
            if overlap > 0:
                out[slot] = out.get(slot, 0.0) + overlap / 3600
    return out


@pytest.mark.parametrize("seed", range(20))
def test_signed_in_hours_agree_with_an_hour_by_hour_count(seed):
    rng = random.Random(seed)
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 20, 7, 13, tzinfo=tz).timestamp()  # across the October clock change
    end = start + rng.uniform(1, 14) * 86400
    people = ["ana", "ben", "chen"]
    changes = sorted((rng.uniform(start - 3600, end + 3600), rng.choice(people), rng.choice(["available", "break", "off"]))
                     for _ in range(rng.randint(0, 60)))
    initial = {p: rng.choice(["available", "off"]) for p in people}
    hour_list = hours(start, end, tz)
    got = signed_in(initial, changes, start, end, LocalHours(start, end, tz))
    want = _signed_in_hour_by_hour(initial, changes, start, end, hour_list)
    assert set(got) == set(want)
    assert all(math.isclose(got[k], want[k], abs_tol=1e-9) for k in want)


# -- the period's local hours, counted without listing them (issue 17, point 7) ----------------
class CountingZone(tzinfo):
    """A time zone that counts how often it is asked: a measure of work that no load on the
    machine changes (tests are not timed)."""

    def __init__(self, key: str):
        self.zone, self.asked = ZoneInfo(key), 0

    def utcoffset(self, dt):
        self.asked += 1
        return self.zone.utcoffset(dt.replace(tzinfo=self.zone))

    def dst(self, dt):
        return self.zone.dst(dt.replace(tzinfo=self.zone))

    def tzname(self, dt):
        return self.zone.tzname(dt.replace(tzinfo=self.zone))

    def fromutc(self, dt):
        self.asked += 1
        return self.zone.fromutc(dt.replace(tzinfo=self.zone)).replace(tzinfo=self)


def _listed(start: float, end: float, tz) -> Counter:
    return Counter(slot for _, slot in hours(start, end, tz))


@pytest.mark.parametrize("seed", range(12))
def test_local_hours_are_counted_as_listing_them_would_in_zones_with_and_without_clock_changes(seed):
    rng = random.Random(seed)
    tz = ZoneInfo(rng.choice(["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
                              "Pacific/Chatham", "UTC", "America/Sao_Paulo"]))
    start = rng.uniform(0, 4.0e9)
    end = start + rng.choice([rng.uniform(0, 7200), rng.uniform(0, 40 * 86400), rng.uniform(0, 3 * 365 * 86400)])
    local = LocalHours(start, end, tz)
    assert local.counts() == _listed(start, end, tz), (tz, start, end)
    listed = hours(start, end, tz)
    assert local.first == (listed[0][0] if listed else None)
    a, b = sorted(rng.uniform(start, end) for _ in range(2))
    assert local.counts(a, b) == _listed(max(a, start), b, tz)


def test_1970_to_2100_is_counted_exactly_and_costs_clock_changes_not_hours():
    start, end = datetime(1970, 1, 1, tzinfo=UTC).timestamp(), datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    zone = CountingZone("Europe/Berlin")
    local = LocalHours(start, end, zone)
    counts = local.counts()
    cold = zone.asked
    assert counts == _listed(start, end, BERLIN)  # 1,139,846 hours, each in its hour of the week
    zone.asked = 0
    again = LocalHours(start, end, zone)
    ana = [(start + 86400, "ana", "available"), (end - 86400, "ana", "off")]  # on for 130 years
    on = signed_in({}, ana, start, end, again)
    slots = [again.slot(t) for t in (1.7e9, 1.8e9, 1.9e9)]  # three calls
    assert again.counts() == counts and len(slots) == 3
    assert on[(0, 12)] == counts[(0, 12)]  # Mondays at noon: every one of them
    # Listing the hours asked the zone 2.3 million times (twice per hour); this asks twice per
    # week looked at, once per zone and year, and a few times per clock change after that.
    assert cold < 30_000 and zone.asked < 2_000, (cold, zone.asked)


@pytest.mark.parametrize("key", ["Africa/Casablanca", "Asia/Tehran", "America/Sao_Paulo", "Australia/Lord_Howe",
                                 "Europe/Moscow", "Asia/Gaza"])
def test_looking_weekly_finds_every_clock_change_that_looking_daily_does(key, monkeypatch):
    tz = ZoneInfo(key)
    weekly = [staffing._clock_changes.__wrapped__(tz, y) for y in range(1970, 2100)]
    monkeypatch.setattr(staffing, "CLOCK_LOOK_S", 86400)
    daily = [staffing._clock_changes.__wrapped__(tz, y) for y in range(1970, 2100)]
    assert weekly == daily


@pytest.mark.parametrize("seed", range(8))
def test_signed_in_hours_agree_with_an_hour_by_hour_count_over_months_in_other_zones(seed):
    rng = random.Random(100 + seed)
    tz = ZoneInfo(rng.choice(["America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]))
    start = rng.uniform(1.6e9, 1.9e9)
    end = start + rng.uniform(1, 90) * 86400
    people = ["ana", "ben", "chen"]
    changes = sorted((rng.uniform(start - 3600, end + 3600), rng.choice(people), rng.choice(["available", "break", "off"]))
                     for _ in range(rng.randint(0, 80)))
    initial = {p: rng.choice(["available", "off"]) for p in people}
    got = signed_in(initial, changes, start, end, LocalHours(start, end, tz))
    want = _signed_in_hour_by_hour(initial, changes, start, end, hours(start, end, tz))
    assert set(got) == set(want)
    assert all(math.isclose(got[k], want[k], abs_tol=1e-6) for k in want)
