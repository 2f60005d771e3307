"""The service standards (hub/domain/service_standards.py): by hand on small fixtures, and
through GET /api/v1/stats/service on a seeded history against a recomputation from the CSV
exports (calls.csv and events.csv), written here independently of the hub's code."""
import csv
import io
import json
import statistics
import urllib.request
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hub.domain.service_standards import INSTANT_S, service_standards
from tests.helpers import running_hub

BERLIN = ZoneInfo("Europe/Berlin")
T = 1_800_000_000.0


def call(status="done", pressed=T, alerted=(), answered_by=None, answered_at=None, closed_at=None,
         reopened_at=None, source=None):
    return {"pressed_at": pressed, "status": status, "alerted": [{"associate": a, "at": at} for a, at in alerted],
            "answered_by": answered_by, "answered_at": answered_at, "closed_at": closed_at,
            "reopened_at": reopened_at, "answer_source": source}


CALLS = [
    # ana alerted at once, answers at the door: first contact, instant, no handoff, verified
    call(alerted=[("ana", T + 0.1)], answered_by="ana", answered_at=T + 40, closed_at=T + 200, source="device"),
    # ana, then ben, then maria; ben answers on his phone: not first contact, 1 handoff (ana)
    call(alerted=[("ana", T + 0.2), ("ben", T + 20), ("maria", T + 40)], answered_by="ben", answered_at=T + 70,
         closed_at=T + 300, source="phone"),
    # everyone busy: the first alert 100 s after the press, to ben, who answers: queued 100 s
    call(alerted=[("ben", T + 100)], answered_by="ben", answered_at=T + 130, closed_at=T + 400, source="device"),
    # ana on her way, then re-opened; ana answers after all: not first contact (re-opened), 0 handoffs
    call(alerted=[("ana", T + 1)], answered_by="ana", answered_at=T + 200, reopened_at=T + 90, closed_at=T + 500,
         source="device"),
    # cancelled after 30 s, alerted at once; cancelled after 90 s, never alerted (queued, no wait)
    call("cancelled", alerted=[("ana", T + 0.5)], closed_at=T + 30),
    call("cancelled", closed_at=T + 90),
    # still waiting, nobody alerted yet, 1 s old: not decided yet
    call("open", pressed=T + 999),
]


def test_service_standards_by_hand():
    f = service_standards(CALLS, now=T + 1000)
    assert f["first_contact"] == {"calls": 4, "resolved": 2, "share": 0.5}  # the first and the queued one
    q = f["instant_vs_queued"]
    assert (q["calls"], q["instant"], q["queued"], q["queued_share"]) == (6, 4, 2, round(2 / 6, 4))
    assert (q["queued_wait_median_s"], q["queued_wait_p90_s"], q["instant_s"]) == (100.0, 100.0, INSTANT_S)
    assert f["abandon"] == {"cancelled": 2, "median_s": 60.0, "p90_s": 84.0}  # 30, 90: type 7
    assert f["handoffs"] == {"calls": 4, "handoffs": 1, "per_call": 0.25, "with_handoff_share": 0.25}
    assert f["arrivals"] == {"answered": 4, "verified": 3, "self_reported": 1, "verified_share": 0.75}


def test_a_broadcast_is_one_first_contact_and_no_handoff():
    everyone = [("ana", T + 0.1), ("ben", T + 0.1), ("chen", T + 0.1)]
    f = service_standards([call(alerted=everyone, answered_by="chen", answered_at=T + 50, closed_at=T + 99,
                                source="device")], now=T + 100)
    assert f["first_contact"]["share"] == 1.0 and f["handoffs"]["handoffs"] == 0


def test_no_calls_give_counts_of_zero_and_no_shares():
    f = service_standards([], now=T)
    assert f["first_contact"]["share"] is None and f["abandon"]["median_s"] is None
    assert f["instant_vs_queued"]["queued_share"] is None and f["handoffs"]["per_call"] is None


def get(hub, path) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{hub.http_port}{path}", timeout=30) as r:
        return r.read().decode()


def p(values, q):
    """Type-7 percentile, from the standard library (statistics.quantiles, inclusive)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def recompute(calls_csv: str, events_csv: str) -> dict:
    """The service standards from the two CSV exports alone."""
    ts = lambda s: datetime.fromisoformat(s).timestamp() if s else None  # noqa: E731
    events = defaultdict(list)
    for e in csv.DictReader(io.StringIO(events_csv)):
        if e["call"]:
            events[e["call"]].append(e)
    fcr = [0, 0]
    instant = queued = 0
    waits, abandon, hand = [], [], []
    verified = answered_n = 0
    for c in csv.DictReader(io.StringIO(calls_csv)):
        mine = sorted(events[c["id"]], key=lambda e: int(e["seq"]))
        alerts = [(e["actor"], ts(e["at"])) for e in mine if e["kind"] == "alerted"]
        pressed = ts(c["pressed_at"])
        who = c["answered_by"] or None
        if alerts:
            first = min(at for _, at in alerts)
            if first - pressed <= INSTANT_S + 0.001:
                instant += 1
            else:
                queued += 1
                waits.append(first - pressed)
        elif not who:
            queued += 1  # seeded: every call without an alert closed minutes after its press
        if who:
            answered_n += 1
            source = [e["source"] for e in mine if e["kind"] == "answered"][-1]
            verified += source == "device"
            reopened = any(e["kind"] == "reopened" for e in mine)
            if alerts:
                fcr[0] += 1
                fcr[1] += who in {a for a, at in alerts if at == first} and not reopened
            cut = min([at for a, at in alerts if a == who] or [ts(c["answered_at"])])
            hand.append(len({a for a, at in alerts if at < cut and a != who}))
        if c["status"] == "cancelled":
            abandon.append(ts(c["closed_at"]) - pressed)
    waits.sort()
    abandon.sort()
    return {"fcr": fcr, "instant": instant, "queued": queued, "wait50": p(waits, 50) if waits else None,
            "wait90": p(waits, 90) if waits else None, "abandon50": p(abandon, 50), "abandon90": p(abandon, 90),
            "handoffs": sum(hand), "hand_calls": len(hand), "verified": verified, "answered": answered_n}


def test_the_service_standards_agree_with_a_recomputation_from_the_csv_exports(store_file):
    from hub.history import Shop, seed_history
    db = store_file.parent / "callbell.db"
    shop = Shop({"room-1": "a", "room-2": "a", "room-3": "b"}, ("ana", "ben"), ("help", "size"), BERLIN)
    until = datetime(2026, 11, 23, tzinfo=BERLIN).timestamp()
    seed_history(db, shop, 1500, 14, until=until)  # busy enough that some calls wait for someone free
    with running_hub(store_file) as hub:
        period = "from=2026-11-09&until=2026-11-23"
        f = hub.api.ok("GET", f"/api/v1/stats/service?{period}")
        mine = recompute(get(hub, "/api/v1/calls.csv?since=2026-11-09&until=2026-11-23"),
                         get(hub, "/api/v1/events.csv"))
    assert f["percentiles"] == "exact" and f["filters"] == {}
    assert [f["first_contact"]["calls"], f["first_contact"]["resolved"]] == mine["fcr"]
    q = f["instant_vs_queued"]
    assert (q["instant"], q["queued"]) == (mine["instant"], mine["queued"]) and mine["queued"] > 20
    # the CSV's times are to the millisecond
    assert q["queued_wait_median_s"] == pytest.approx(mine["wait50"], abs=0.002)
    assert q["queued_wait_p90_s"] == pytest.approx(mine["wait90"], abs=0.002)
    assert f["abandon"]["median_s"] == pytest.approx(mine["abandon50"], abs=0.002)
    assert f["abandon"]["p90_s"] == pytest.approx(mine["abandon90"], abs=0.002)
    assert (f["handoffs"]["handoffs"], f["handoffs"]["calls"]) == (mine["handoffs"], mine["hand_calls"])
    a = f["arrivals"]
    assert (a["verified"], a["answered"]) == (mine["verified"], mine["answered"])
    assert 0.7 < a["verified_share"] < 0.9  # a fifth of the seeded arrivals are tapped on the phone


def test_occupancy_is_time_on_calls_over_time_signed_in_against_the_band():
    from hub.domain.service_standards import busy_intervals, occupancy
    from hub.domain.staffing import LocalHours, hours_in
    mon10 = datetime(2026, 11, 16, 10, tzinfo=ZoneInfo("UTC")).timestamp()
    calls = [{"acknowledged_at": mon10, "done_at": mon10 + 1800},                      # 10:00-10:30
             {"acknowledged_at": None, "answered_at": mon10 + 2700, "closed_at": mon10 + 4500},  # 10:45-11:15
             {"acknowledged_at": None, "answered_at": None, "closed_at": mon10 + 60}]   # missed: nobody busy
    assert busy_intervals(calls) == [(mon10, mon10 + 1800), (mon10 + 2700, mon10 + 4500)]
    busy = hours_in(busy_intervals(calls), LocalHours(mon10, mon10 + 7200, ZoneInfo("UTC")))
    assert busy == {(0, 10): 0.75, (0, 11): 0.25}
    o = occupancy(busy, {(0, 10): 1.0, (0, 11): 1.0, (0, 12): 0.0}, (0.6, 0.8), ("Mon",) * 7)
    assert [(h["hour"], h["occupancy"], h["band"]) for h in o["hours"]] == [(10, 0.75, "in"), (11, 0.25, "under"),
                                                                           (12, None, None)]
    assert (o["occupancy"], o["band_of_total"], o["hours_under"], o["hours_over"]) == (0.5, "under", 1, 0)


def test_occupancy_agrees_with_the_csv_exports_and_takes_the_band_from_the_config(store_file):
    from hub.history import Shop, seed_history
    store_file.write_text(store_file.read_text().replace("expiry_s = 900\n", "expiry_s = 900\noccupancy_band = [0.5, 0.7]\n"))
    shop = Shop({"room-1": "a", "room-2": "a", "room-3": "b"}, ("ana", "ben", "chen"), ("help", "size"), BERLIN)
    start, end = (datetime(2026, 11, d, tzinfo=BERLIN).timestamp() for d in (9, 23))
    seed_history(store_file.parent / "callbell.db", shop, 1500, 14, until=end)
    with running_hub(store_file) as hub:
        o = hub.api.ok("GET", "/api/v1/stats/service?from=2026-11-09&until=2026-11-23")["occupancy"]
        ana = hub.api.ok("GET", "/api/v1/stats/service?from=2026-11-09&until=2026-11-23&associate=ana")["occupancy"]
        calls = list(csv.DictReader(io.StringIO(get(hub, "/api/v1/calls.csv?since=2026-11-09&until=2026-11-23"))))
        events = list(csv.DictReader(io.StringIO(get(hub, "/api/v1/events.csv"))))
    ts = lambda s: datetime.fromisoformat(s).timestamp() if s else None  # noqa: E731
    clip = lambda a, b: max(0.0, min(b, end) - max(a, start)) / 3600  # noqa: E731

    def busy(who=None):
        return sum(clip(ts(c["acknowledged_at"] or c["answered_at"]), ts(c["done_at"] or c["closed_at"]))
                   for c in calls if (c["acknowledged_at"] or c["answered_at"]) and (who is None or c["answered_by"] == who))

    def signed(who=None):
        total, since = 0.0, {}
        for e in sorted((e for e in events if e["kind"] == "associate_state"), key=lambda e: int(e["seq"])):
            if who is not None and e["actor"] != who:
                continue
            state = json.loads(e["detail"])["state"]
            if state == "available":
                since.setdefault(e["actor"], ts(e["at"]))
            elif e["actor"] in since:
                total += clip(since.pop(e["actor"]), ts(e["at"]))
        return total + sum(clip(t, end) for t in since.values())
    assert o["band"] == [0.5, 0.7]
    assert o["busy_h"] == pytest.approx(busy(), abs=0.01) and o["signed_in_h"] == pytest.approx(signed(), abs=0.01)
    assert ana["busy_h"] == pytest.approx(busy("ana"), abs=0.01)
    assert ana["signed_in_h"] == pytest.approx(signed("ana"), abs=0.01) and ana["signed_in_h"] < o["signed_in_h"] / 2
    assert 0 < o["occupancy"] < 1 and o["hours_under"] > 0  # staffed for a 90 s standard: slack
