"""What central takes of a store's range (chain/intake.py): exactly once per (store, seq)."""
import json

from callbell.chain_wire import ChainEvent, EventRange
from chain.intake import Intake
from chain.schema import EVENT_COLUMNS

T0 = 1763800000.0  # 2025-11-22 08:26:40 UTC, 09:26 in Berlin


def rng(after, last, events, store="s1", **kw) -> bytes:
    return EventRange(store, after, last, tuple(events), kw.get("tz", "Europe/Berlin"), kw.get("standard_s", 90)).to_json()


def ev(seq, kind="pressed", **kw) -> ChainEvent:
    return ChainEvent(seq=seq, at=kw.pop("at", T0 + seq), kind=kind, call=kw.pop("call", "c-000001"), room="r1",
                      pressed_at=kw.pop("pressed_at", T0), **kw)


def test_stores_a_range_that_extends_the_log_and_moves_the_mark():
    i = Intake({"s1"}, {})
    v = i.take("s1", rng(0, 2, [ev(1), ev(2, "answered", detail={"response_s": 42.5})]), now=T0 + 5)
    assert v.kind == "stored" and v.mark == 2 and i.marks["s1"] == 2
    rows = [dict(zip(EVENT_COLUMNS, r)) for r in v.rows]
    assert [r["seq"] for r in rows] == [1, 2]
    answered = rows[1]
    assert answered["outcome"] == "answered" and answered["response_s"] == 42.5 and answered["within"] == 1
    assert (answered["hour"], answered["weekday"], str(answered["month"])) == (9, 5, "2025-11-01")


def test_a_repeated_range_is_a_repeat_and_stores_nothing():
    i = Intake({"s1"}, {"s1": 10})
    v = i.take("s1", rng(0, 10, [ev(s) for s in range(1, 11)]), now=0)
    assert v.kind == "repeat" and v.rows == [] and i.marks["s1"] == 10


def test_an_overlapping_range_stores_only_the_events_beyond_the_mark():
    i = Intake({"s1"}, {"s1": 5})
    v = i.take("s1", rng(3, 8, [ev(s) for s in range(4, 9)]), now=0)
    assert [r[1] for r in v.rows] == [6, 7, 8] and i.marks["s1"] == 8


def test_a_range_after_a_gap_waits_for_the_resend():
    i = Intake({"s1"}, {"s1": 5})
    v = i.take("s1", rng(7, 9, [ev(8), ev(9)]), now=0)
    assert v.kind == "gap" and v.rows == [] and i.marks["s1"] == 5


def test_a_hole_in_the_stores_log_does_not_stall_the_mark():
    i = Intake({"s1"}, {})
    v = i.take("s1", rng(0, 4, [ev(1), ev(2), ev(4)]), now=0)   # seq 3 never existed
    assert v.kind == "stored" and i.marks["s1"] == 4


def test_an_unknown_store_is_rejected_with_its_name():
    v = Intake({"s1"}, {}).take("s9", rng(0, 1, [ev(1)], store="s9"), now=0)
    assert v.kind == "rejected" and "unknown store 's9'" in v.reason


def test_malformed_ranges_are_rejected_saying_why():
    i = Intake({"s1"}, {})
    cases = {
        b"not json": "not valid JSON",
        rng(0, 1, [ev(1)], store="s2"): "names store 's2'",
        json.dumps({"v": 1, "store": "s1", "tz": "Mars/Base", "standard_s": 90, "after": 0, "last": 1, "events": []}).encode(): "time zone",
        rng(5, 3, []): "after < last",
        rng(0, 2, [ev(2), ev(1)]): "out of order",
        json.dumps({"v": 1, "store": "s1", "tz": "UTC", "standard_s": 90, "after": 0, "last": 1,
                    "events": [{"seq": "1"}]}).encode(): "wrong type",
    }
    for payload, words in cases.items():
        v = i.take("s1", payload, now=0)
        assert v.kind == "rejected" and words in v.reason, (payload[:60], v.reason)
    assert i.marks["s1"] == 0


def test_undo_puts_the_marks_back_after_a_failed_insert():
    i = Intake({"s1"}, {})
    before = dict(i.marks)
    i.take("s1", rng(0, 1, [ev(1)]), now=0)
    i.undo(before)
    assert i.take("s1", rng(0, 1, [ev(1)]), now=0).kind == "stored"
