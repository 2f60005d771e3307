"""Statistics roll-ups: histograms, buckets of the store's zone, and the writer keeping them
equal to a rebuild from the calls (hub/domain/rollup.py, hub/store/)."""
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import rollup
from hub.domain.call import Call
from hub.domain.stats import figures, percentile
from hub.store import Writer, prepare_rollups

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [BERLIN, ZoneInfo("Asia/Kolkata"), ZoneInfo("America/Havana"), ZoneInfo("UTC")]

times = st.floats(min_value=0, max_value=4000, allow_nan=False)


@given(st.lists(times, min_size=1, max_size=200), st.sampled_from([50, 90, 95, 0, 100]))
def test_a_histogram_percentile_is_within_half_a_second_of_the_exact_one(values, p):
    h = sum(rollup._one(x, rollup.RESOLUTION_S) for x in values)
    exact = percentile(sorted(values), p)
    got, = rollup.percentiles(h, (p,), rollup.RESOLUTION_S, top=max(values))
    if max(values) < rollup.MAX_S:
        assert abs(got - exact) <= rollup.RESOLUTION_S / 2 + 1e-9
    else:  # the last bin spans up to the maximum: only bounded by it
        assert got <= max(values) + 1e-9


def test_a_single_value_reads_as_the_middle_of_its_second():
    assert rollup.percentiles(rollup._one(37.2, 1.0), (50, 90), 1.0, top=37.2) == [37.2, 37.2]
    assert rollup.percentiles(rollup._one(37.2, 1.0), (50,), 1.0) == [37.5]


def _row(pressed, status="done", response=30.0, wait=10.0, handling=120.0, room="r1", zone="a",
         reason="help", who="ana", reminders=0, auto_closed=0):
    return {"pressed_at": pressed, "status": status, "response_s": response, "wait_ack_s": wait,
            "handling_s": handling, "reminders": reminders, "auto_closed": auto_closed, "zone": zone,
            "room": room, "reason": reason, "answered_by": who}


calls = st.builds(
    _row, st.floats(0, 1e6), st.sampled_from(["done", "done", "missed", "cancelled", "open", "acknowledged",
                                                "answered"]),
    st.one_of(st.none(), st.floats(0, 600)), st.one_of(st.none(), st.floats(0, 100)),
    st.one_of(st.none(), st.floats(0, 1800)), reminders=st.integers(0, 3), auto_closed=st.integers(0, 1))


@given(st.lists(calls, max_size=60), st.sampled_from([30.0, 90.0, 90.5]))
@settings(max_examples=200)
def test_sums_give_the_exact_counts_shares_maximum_and_mean(rows, standard):
    now = 2e6
    agg = rollup.Agg()
    for r in rows:
        if r["response_s"] is not None and r["wait_ack_s"] is not None and r["wait_ack_s"] > r["response_s"]:
            r["wait_ack_s"] = r["response_s"]
        agg.add_live(r, standard, now)
    exact = figures(rows, standard, now, 0.9)
    got = agg.figures(standard, 0.9)
    for k in ("calls", "answered", "missed", "cancelled", "open", "reminders", "within_standard",
              "within_standard_share", "decided", "meets_target", "response_max_s"):
        assert got[k] == exact[k], k
    if exact["handling_mean_s"] is not None:
        assert abs(got["handling_mean_s"] - exact["handling_mean_s"]) < 1e-6
    for k in ("response_median_s", "response_p90_s", "response_p95_s", "wait_ack_median_s"):
        assert (got[k] is None) == (exact[k] is None)
        if got[k] is not None:
            assert abs(got[k] - exact[k]) <= 0.5 + 1e-3, k


def test_merging_then_taking_out_leaves_what_was_there():
    a = rollup.Agg().add_closed(_row(0, response=20), 90)
    b = rollup.Agg().add_closed(_row(0, response=200, status="done"), 90)
    both = rollup.Agg().merge(a).merge(b)
    assert both.max_stale(b)
    both.subtract(b)
    assert (both.calls, both.resp, both.within) == (a.calls, a.resp, a.within)


@given(st.sampled_from(ZONES), st.floats(1.6e9, 1.9e9), st.floats(0, 400 * 86400),
       st.sampled_from(rollup.GRAINS))
@settings(max_examples=300, deadline=None)
def test_segments_cover_a_period_with_whole_local_buckets_and_no_gap(tz, start, length, coarsest):
    b = rollup.Buckets(tz)
    end = start + length
    segs = rollup.segments(start, end, b, coarsest)
    if end == start:
        assert segs == []
        return
    assert segs[0][1] == start and segs[-1][2] == end
    for (g1, _, e1), (g2, s2, _) in zip(segs, segs[1:]):
        assert e1 == s2 and g1 != g2  # contiguous, and runs of one grain merged
    for grain, s, e in segs:
        if grain is None:
            first = s if b.start("hour", s) == s else b.next("hour", b.start("hour", s))
            assert b.next("hour", first) > e  # no whole hour left out of the roll-ups
        else:
            assert rollup.GRAINS.index(grain) <= rollup.GRAINS.index(coarsest)
            assert b.start(grain, s) == s and b.start(grain, e) == e


def test_a_local_day_starts_at_local_midnight_across_daylight_saving_changes():
    b = rollup.Buckets(BERLIN)
    autumn = datetime(2026, 10, 25, 12, tzinfo=BERLIN).timestamp()  # a 25-hour day
    day = b.start("day", autumn)
    assert datetime.fromtimestamp(day, BERLIN).hour == 0
    assert b.next("day", day) - day == 25 * 3600
    spring = datetime(2026, 3, 29, 12, tzinfo=BERLIN).timestamp()  # a 23-hour day
    assert b.next("day", b.start("day", spring)) - b.start("day", spring) == 23 * 3600
    month = b.start("month", autumn)
    assert datetime.fromtimestamp(month, BERLIN).strftime("%m-%d %H") == "10-01 00"
    assert datetime.fromtimestamp(b.next("month", month), BERLIN).strftime("%m-%d %H") == "11-01 00"


def _rollups(path) -> dict:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {(r["grain"], r["dim"], r["value"], r["start"]): dict(r) for r in conn.execute("SELECT * FROM rollup")}
    finally:
        conn.close()


def test_the_writer_keeps_the_rollups_equal_to_a_rebuild_through_closing_and_reopening(tmp_path):
    db = tmp_path / "calls.db"
    rules = rollup.Rules(BERLIN, 90.0)
    w = Writer(db, rules)
    t0 = datetime(2026, 11, 16, 10, 0, tzinfo=BERLIN).timestamp()

    def save(call):
        w.begin()
        w.save_call(call, 0)
        w.commit()

    slow = Call(id="c-000001", room="r1", zone="a", reason="help", pressed_at=t0, status="open")
    save(slow)
    assert _rollups(db) == {}  # open calls are not rolled up
    slow.status, slow.answered_at, slow.answered_by = "answered", t0 + 300, "ana"
    slow.status, slow.done_at, slow.closed_at = "done", t0 + 400, t0 + 400
    save(slow)
    fast = Call(id="c-000002", room="r2", zone="b", reason="size", pressed_at=t0 + 60, status="done",
                answered_at=t0 + 80, answered_by="ben", done_at=t0 + 200, closed_at=t0 + 200)
    save(fast)
    rows = _rollups(db)
    hour = rows[("hour", "", "", t0)]
    assert (hour["calls"], hour["answered"], hour["response_max"]) == (2, 2, 300)
    assert hour["slot"] == 10  # Monday, 10:00
    # The slow call is re-opened: it leaves the roll-ups, and the slowest is the fast one's.
    slow.status, slow.closed_at, slow.done_at = "answered", None, None
    save(slow)
    rows = _rollups(db)
    hour = rows[("hour", "", "", t0)]
    assert (hour["calls"], hour["response_max"]) == (1, 20)
    assert ("hour", "room", "r1", t0) not in rows
    slow.status, slow.done_at, slow.closed_at = "done", t0 + 500, t0 + 500
    save(slow)
    w.close()
    kept = _rollups(db)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM meta WHERE key = 'rollup'")
    conn.commit()
    conn.close()
    assert prepare_rollups(db, rules) is True
    assert _rollups(db) == kept
    assert prepare_rollups(db, rules) is False  # already made with these rules


def test_a_changed_zone_or_standard_rebuilds_the_rollups(tmp_path):
    db = tmp_path / "calls.db"
    w = Writer(db, rollup.Rules(BERLIN, 90.0))
    t0 = datetime(2026, 11, 16, 23, 30, tzinfo=BERLIN).timestamp()
    w.begin()
    w.save_call(Call(id="c-000001", room="r1", zone="a", reason="help", pressed_at=t0, status="done",
                     answered_at=t0 + 60, answered_by="ana", done_at=t0 + 100, closed_at=t0 + 100), 0)
    w.commit()
    w.close()
    days = lambda: {k[3] for k in _rollups(db) if k[0] == "day"}  # noqa: E731
    assert days() == {datetime(2026, 11, 16, tzinfo=BERLIN).timestamp()}
    assert prepare_rollups(db, rollup.Rules(ZoneInfo("UTC"), 90.0))
    assert days() == {datetime(2026, 11, 16, tzinfo=ZoneInfo("UTC")).timestamp()}
    assert prepare_rollups(db, rollup.Rules(ZoneInfo("UTC"), 30.0))
    month = _rollups(db)[("month", "", "", datetime(2026, 11, 1, tzinfo=ZoneInfo("UTC")).timestamp())]
    assert (month["answered"], month["within"]) == (1, 0)  # 60 s is not within a 30 s standard
