"""The statistics core (hub/domain/stats.py), on hand-computed fixtures and against a direct
computation (hypothesis)."""
import statistics as pystats
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from hub.domain.stats import busiest_hours, distribution, figures, group_key, heatmap, percentile, statistics

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=BERLIN).timestamp()


def at(*args, tz=BERLIN) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def call(pressed, status="done", response=None, wait_ack=None, handling=None, room="room-1", zone="a",
         who="ana", reminders=0, auto_closed=0, reason="help"):
    return {"pressed_at": pressed, "status": status, "response_s": response, "wait_ack_s": wait_ack,
            "handling_s": handling, "room": room, "zone": zone, "answered_by": who if response is not None else None,
            "reminders": reminders, "auto_closed": auto_closed, "reason": reason}


# -- percentiles ---------------------------------------------------------------------------
def test_percentiles_interpolate_linearly_between_closest_ranks_with_ties():
    values = [10, 20, 20, 20, 50]
    assert percentile(values, 50) == 20.0
    assert percentile(values, 90) == pytest.approx(38.0)  # rank 3.6: 20 + 0.6 × (50 − 20)
    assert percentile(values, 95) == pytest.approx(44.0)  # rank 3.8: 20 + 0.8 × 30
    assert percentile(values, 100) == 50.0


def test_a_percentile_of_one_value_is_that_value_and_of_none_is_none():
    assert percentile([42.5], 95) == 42.5
    assert percentile([], 50) is None


# -- figures -------------------------------------------------------------------------------
def hand_fixture() -> list[dict]:
    t = at(2026, 11, 20, 10, 0)
    return [
        call(t, response=30, wait_ack=10, handling=100, reminders=0),
        call(t + 60, response=90, wait_ack=40, handling=200, reminders=1),   # exactly the standard: within
        call(t + 120, response=90, wait_ack=50, handling=900, auto_closed=1),  # a tie; handling left out
        call(t + 180, response=150, wait_ack=100, handling=300, reminders=2),
        call(t + 240, status="missed", reminders=3),
        call(t + 300, status="cancelled"),
        call(NOW - 30, status="open"),       # still waiting, inside the standard: not decided
        call(NOW - 200, status="acknowledged", wait_ack=20),  # still waiting, past the standard: late
        call(NOW - 400, status="answered", response=60, wait_ack=20),  # answered, not done yet
    ]


def test_figures_of_a_hand_computed_day():
    f = figures(hand_fixture(), standard_s=90, now=NOW, target_share=0.6)
    assert f["calls"] == 9
    assert f["answered"] == 5
    assert (f["missed"], f["cancelled"], f["open"], f["reminders"]) == (1, 1, 3, 6)
    # responses sorted: 30, 60, 90, 90, 150
    assert f["response_median_s"] == 90.0
    assert f["response_p90_s"] == pytest.approx(126.0)  # rank 3.6: 90 + 0.6 × 60
    assert f["response_p95_s"] == pytest.approx(138.0)  # rank 3.8: 90 + 0.8 × 60
    assert f["response_max_s"] == 150.0
    # within: 30, 60, 90, 90 = 4; decided: 5 answered + 1 missed + 1 late waiting = 7
    assert f["within_standard"] == 4 and f["decided"] == 7
    assert f["within_standard_share"] == pytest.approx(4 / 7, abs=1e-3)
    assert f["meets_target"] is False  # 0.571 < 0.6
    # waits sorted: 10, 20, 20, 40, 50, 100 → median 30, p90 rank 4.5 → 75
    assert f["wait_ack_median_s"] == 30.0 and f["wait_ack_p90_s"] == 75.0
    # handling without the auto-closed call: 100, 200, 300
    assert f["handling_median_s"] == 200.0 and f["handling_mean_s"] == 200.0


def test_an_empty_period_has_zero_counts_and_no_times_or_shares():
    s = statistics([], by="hour", standard_s=90, target_share=0.9, tz=BERLIN, now=NOW)
    t = s["total"]
    assert (t["calls"], t["answered"], t["missed"], t["decided"]) == (0, 0, 0, 0)
    assert t["response_median_s"] is None and t["within_standard_share"] is None and t["meets_target"] is None
    assert s["groups"] == [] and s["busiest_hours"] == []


def test_a_period_of_only_open_calls_inside_the_standard_has_no_share_yet():
    f = figures([call(NOW - 10, status="open"), call(NOW - 20, status="acknowledged")], 90, NOW, 0.9)
    assert f["open"] == 2 and f["decided"] == 0 and f["within_standard_share"] is None


# -- groups, midnight, time zones, daylight saving ------------------------------------------
def test_a_call_crossing_midnight_counts_on_the_day_and_hour_it_was_pressed():
    c = call(at(2026, 11, 20, 23, 59, 30), response=75)  # answered at 00:00:45 the next day
    assert group_key(c, "day", BERLIN) == "2026-11-20"
    assert group_key(c, "hour", BERLIN) == 23
    assert group_key(c, "weekday", BERLIN) == "Fri"


def test_the_same_instant_falls_in_the_store_zones_hour_and_day():
    c = call(at(2026, 11, 20, 23, 30))  # 23:30 in Berlin is 07:30 the next day in Tokyo
    assert (group_key(c, "hour", BERLIN), group_key(c, "day", BERLIN)) == (23, "2026-11-20")
    assert (group_key(c, "hour", TOKYO), group_key(c, "day", TOKYO)) == (7, "2026-11-21")


def test_when_clocks_go_back_the_hour_from_two_to_three_holds_both_of_its_occurrences():
    first = datetime(2026, 10, 25, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()   # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("UTC")).timestamp()  # 02:30 CET
    rows = [call(first, response=10), call(second, response=20)]
    s = statistics(rows, by="hour", standard_s=90, target_share=0.9, tz=BERLIN, now=NOW)
    assert [(g["key"], g["calls"]) for g in s["groups"]] == [(2, 2)]
    assert group_key(rows[1], "day", BERLIN) == "2026-10-25"


def test_when_clocks_go_forward_there_is_no_two_oclock_hour():
    before = datetime(2026, 3, 29, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()  # 01:30 CET
    after = datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("UTC")).timestamp()   # 03:30 CEST
    s = statistics([call(before), call(after)], by="hour", standard_s=90, target_share=0.9, tz=BERLIN, now=NOW)
    assert [g["key"] for g in s["groups"]] == [1, 3]


def test_weeks_are_iso_weeks_in_the_store_zone_across_the_new_year():
    assert group_key(call(at(2026, 12, 31, 12)), "week", BERLIN) == "2026-W53"
    assert group_key(call(at(2027, 1, 3, 23, 30)), "week", BERLIN) == "2026-W53"  # a Sunday
    assert group_key(call(at(2027, 1, 4, 0, 10)), "week", BERLIN) == "2027-W01"   # the Monday after


def test_groups_by_zone_room_associate_and_reason_are_sorted_with_none_last():
    rows = [call(NOW - 900, room="r2", zone="b", who="ben", response=10, reason="size"),
            call(NOW - 800, room="r1", zone="a", who="ana", response=20),
            call(NOW - 700, status="missed", room="r1", zone="a")]
    by = lambda key: [(g["key"], g["calls"]) for g in statistics(  # noqa: E731
        rows, by=key, standard_s=90, target_share=0.9, tz=BERLIN, now=NOW)["groups"]]
    assert by("zone") == [("a", 2), ("b", 1)]
    assert by("room") == [("r1", 2), ("r2", 1)]
    assert by("associate") == [("ana", 1), ("ben", 1), (None, 1)]
    assert by("reason") == [("help", 2), ("size", 1)]


def test_weekdays_are_listed_monday_first():
    rows = [call(at(2026, 11, 22, 10)), call(at(2026, 11, 16, 10)), call(at(2026, 11, 18, 10))]
    s = statistics(rows, by="weekday", standard_s=90, target_share=0.9, tz=BERLIN, now=NOW)
    assert [g["key"] for g in s["groups"]] == ["Mon", "Wed", "Sun"]


def test_busiest_hours_are_the_hours_of_the_week_with_most_calls_ties_earlier_first():
    rows = [call(at(2026, 11, 21, 18, m)) for m in (1, 2, 3)] + \
           [call(at(2026, 11, 17, 11, m)) for m in (1, 2)] + [call(at(2026, 11, 16, 12, 5)), call(at(2026, 11, 15, 9))] * 1
    rows += [call(at(2026, 11, 20, 12, 1)), call(at(2026, 11, 20, 12, 2))]
    assert busiest_hours(rows, BERLIN, top=3) == [
        {"weekday": "Sat", "hour": 18, "calls": 3}, {"weekday": "Tue", "hour": 11, "calls": 2},
        {"weekday": "Fri", "hour": 12, "calls": 2}]


def test_the_heat_map_has_a_cell_per_hour_of_the_week_with_calls():
    rows = [call(at(2026, 11, 16, 10, 5), response=30), call(at(2026, 11, 23, 10, 50), response=120),
            call(at(2026, 11, 16, 11, 0), status="cancelled")]
    cells = heatmap(rows, standard_s=90, tz=BERLIN, now=NOW)
    assert cells == [
        {"weekday": "Mon", "hour": 10, "calls": 2, "decided": 2, "within_standard_share": 0.5, "response_median_s": 75.0},
        {"weekday": "Mon", "hour": 11, "calls": 1, "decided": 0, "within_standard_share": None, "response_median_s": None}]


def test_the_distribution_counts_response_times_in_left_closed_bins_with_an_overflow_bin():
    rows = [call(0, response=x) for x in (0, 9.99, 10, 29.5, 30, 31, 500)] + [call(0, status="missed")]
    bins = distribution(rows, bin_s=10, max_s=30)
    assert [(b["from_s"], b["to_s"], b["calls"]) for b in bins] == [
        (0, 10, 2), (10, 20, 1), (20, 30, 1), (30, None, 3)]


# -- against a direct computation -------------------------------------------------------------
response = st.one_of(st.none(), st.floats(min_value=0, max_value=900, allow_nan=False))
rows_strategy = st.lists(st.tuples(
    st.sampled_from(["done", "answered", "open", "acknowledged", "missed", "cancelled"]),
    st.floats(min_value=NOW - 3 * 86400, max_value=NOW, allow_nan=False),
    st.integers(min_value=0, max_value=600)), max_size=60)


def as_rows(spec) -> list[dict]:
    out = []
    for status, pressed, resp in spec:
        answered = status in ("done", "answered")
        out.append(call(pressed, status=status, response=float(resp) if answered else None))
    return out


@settings(max_examples=300, deadline=None)
@given(rows_strategy, st.sampled_from([30, 90, 120]))
def test_share_within_standard_agrees_with_counting_the_calls_directly(spec, standard):
    rows = as_rows(spec)
    f = figures(rows, standard, NOW)
    answered = [r for r in rows if r["response_s"] is not None]
    within = [r for r in answered if r["response_s"] <= standard]
    late = [r for r in rows if r["status"] in ("open", "acknowledged") and NOW - r["pressed_at"] > standard]
    missed = [r for r in rows if r["status"] == "missed"]
    decided = len(answered) + len(missed) + len(late)
    assert f["within_standard"] == len(within)
    if decided:
        assert f["within_standard_share"] == pytest.approx(round(len(within) / decided, 3), abs=1e-9)  # shown to 3 places
    else:
        assert f["within_standard_share"] is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=900, allow_nan=False, allow_infinity=False), min_size=2, max_size=80))
def test_percentiles_agree_with_pythons_inclusive_quantiles(values):
    cuts = pystats.quantiles(values, n=100, method="inclusive")  # Hyndman & Fan type 7
    f = figures([call(0, response=v) for v in values], 90, NOW)
    assert f["response_median_s"] == pytest.approx(cuts[49], abs=1e-3)
    assert f["response_p90_s"] == pytest.approx(cuts[89], abs=1e-3)
    assert f["response_p95_s"] == pytest.approx(cuts[94], abs=1e-3)
    assert f["response_max_s"] == pytest.approx(max(values), abs=1e-3)


@settings(max_examples=100, deadline=None)
@given(rows_strategy, st.sampled_from(["hour", "day", "weekday", "week"]))
def test_groups_partition_the_calls_and_their_counts_add_up_to_the_total(spec, by):
    rows = as_rows(spec)
    s = statistics(rows, by=by, standard_s=90, target_share=0.9, tz=BERLIN, now=NOW)
    for field in ("calls", "answered", "missed", "cancelled", "within_standard", "decided"):
        assert sum(g[field] for g in s["groups"]) == s["total"][field]


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1.6e9, max_value=1.9e9, allow_nan=False),
       st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
                        "Australia/Lord_Howe", "Pacific/Chatham", "UTC"]))
def test_the_cached_local_calendar_agrees_with_converting_each_time(t, zone):
    from hub.domain.stats import LocalCalendar
    tz = ZoneInfo(zone)
    cal = LocalCalendar(tz)
    for by in ("hour", "weekday", "day", "week"):
        assert cal.key({"pressed_at": t}, by) == group_key({"pressed_at": t}, by, tz)
