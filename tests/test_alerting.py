"""Who gets alerted, end to end: a real Mosquitto, the hub, the HTTP API, the SSE stream.

The store of these tests runs a fast ladder (seconds instead of tens of seconds)::

    room-1 (0,0) ── room-2 (10,0) ──────────── room-3 (40,0)
    └──── zone a ────┘                         └ zone b
    ladder: 0 s nearest · 2 s next · 3 s zone · 4 s manager (= the standard) · re-alert after 3 s
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from callbell.broker import free_port
from hub.stream import parse_event_id
from tests.helpers import event, read_sse, wait_until

STORE = """
[store]
id = "test-store"
timezone = "Europe/Berlin"
standard_s = 4
expiry_s = 900

[mqtt]
url = "{url}"

[database]
path = "callbell.db"

[http]
host = "127.0.0.1"
port = {port}
demo = true

[[zones]]
id = "a"
[[zones]]
id = "b"

[[rooms]]
id = "room-1"
zone = "a"
x = 0
y = 0
[[rooms]]
id = "room-2"
zone = "a"
x = 10
y = 0
[[rooms]]
id = "room-3"
zone = "b"
x = 40
y = 0

[escalation]
reack_s = 3
[[escalation.steps]]
after_s = 0
who = "nearest"
[[escalation.steps]]
after_s = 2
who = "next"
[[escalation.steps]]
after_s = 3
who = "zone"
[[escalation.steps]]
after_s = 4
who = "manager"

[[associates]]
id = "ana"
zone = "a"
state = "available"
[[associates]]
id = "ben"
zone = "a"
state = "available"
[[associates]]
id = "cleo"
zone = "b"
state = "available"
[[associates]]
id = "dev"
zone = "a"
[[associates]]
id = "maria"
role = "manager"
"""


@pytest.fixture
def store_file(tmp_path: Path, broker) -> Path:
    p = tmp_path / "store.toml"
    p.write_text(STORE.format(url=broker.url, port=free_port()))
    return p


def sse(port: int, until, timeout: float = 8.0) -> list[dict]:
    return read_sse(port, until, timeout=timeout)


def in_background(fn):
    out: list = []
    t = threading.Thread(target=lambda: out.extend(fn()), daemon=True)
    t.start()
    return t, out


def locate(recorder, topics, who: str, where: dict, api) -> None:
    """Send a location-feed position and wait until the hub uses it."""
    recorder.publish(topics.associate_location(who), where)
    wait_until(lambda: (api.ok("GET", f"/api/v1/associates/{who}")["position"] or {}).get("source") == "feed"
               and all(api.ok("GET", f"/api/v1/associates/{who}")["position"].get(k) == v for k, v in where.items()),
               what=f"{who} located at {where}")


def press(recorder, topics, room: str, api) -> dict:
    recorder.publish(topics.event(room), event(f"e-{time.monotonic_ns()}"))
    return wait_until(lambda: [c for c in api.ok("GET", "/api/v1/calls?status=open") if c["room"] == room],
                      what=f"a call from {room}")[0]


def alerted(api, call: str) -> list[tuple[str, int]]:
    return [(a["associate"], a["step"]) for a in api.ok("GET", f"/api/v1/calls/{call}")["alerted"]]


def test_a_press_alerts_the_nearest_free_associate_on_the_call_the_stream_and_mqtt(hub, recorder, topics):
    api = hub.api
    locate(recorder, topics, "ana", {"room": "room-2"}, api)
    locate(recorder, topics, "ben", {"x": 1, "y": 0}, api)
    reader, got = in_background(lambda: sse(hub.http_port, lambda m: any(
        x["event"] == "call" and x["data"]["alerted"] for x in m)))
    time.sleep(0.3)
    call = press(recorder, topics, "room-1", api)
    reader.join(10)
    assert alerted(api, call["id"]) == [("ben", 0)]
    [first] = [m["data"] for m in got if m["event"] == "call"]
    assert [a["associate"] for a in first["alerted"]] == ["ben"] and first["alerted"][0]["at"].endswith(("+01:00", "+02:00"))
    snapshot = next(m["data"] for m in got if m["event"] == "snapshot")
    assert {a["id"] for a in snapshot["associates"]} == {"ana", "ben", "cleo", "dev", "maria"}
    assert [s["who"] for s in snapshot["escalation"]["steps"]] == ["nearest", "next", "zone", "manager"]
    # the call topic carries the same list, and the event log the alert
    wait_until(lambda: any(c["alerted"] for c in recorder.json_of(topics.call(call["id"]))), what="call/{id}")
    assert ",alerted," in api.request("GET", "/api/v1/events.csv")[1]


def test_the_ladder_widens_to_the_zone_then_the_manager_and_the_lamp_turns_overdue(hub, recorder, topics):
    api = hub.api
    api.ok("POST", "/api/v1/associates/dev/state", {"state": "available"})  # a third one in zone a
    call = press(recorder, topics, "room-1", api)
    wait_until(lambda: len(alerted(api, call["id"])) == 4, timeout=8, what="four alerts")
    # ana and ben are as near (both only known by their home zone): ana has the smaller id;
    # dev joined last, so he is asked with the zone; cleo works in zone b; maria is the manager
    assert alerted(api, call["id"]) == [("ana", 0), ("ben", 1), ("dev", 2), ("maria", 3)]
    c = api.ok("GET", f"/api/v1/calls/{call['id']}")
    times = [time.mktime(time.strptime(a["at"][:19], "%Y-%m-%dT%H:%M:%S")) for a in c["alerted"]]
    assert c["overdue"] and recorder.last(topics.lamp("room-1"))["state"] == "overdue"
    assert 3 <= times[-1] - times[0] <= 5


def test_a_decline_by_everyone_alerted_escalates_at_once_via_the_http_api(hub, recorder, topics):
    api = hub.api
    call = press(recorder, topics, "room-1", api)
    [(first, step)] = wait_until(lambda: alerted(api, call["id"]), what="the first alert")
    assert step == 0
    body = api.ok("POST", f"/api/v1/calls/{call['id']}/decline", {"associate": first, "source": "phone"})
    # the answer to the decline already names the next associate asked, well before the 2 s step
    assert body["declined"] == [first] == ["ana"]
    assert [(a["associate"], a["step"]) for a in body["alerted"]] == [("ana", 0), ("ben", 1)]
    assert time.time() - call["pressed_ts"] < 1.9


def test_acknowledging_stops_the_alerting_and_a_call_not_answered_in_time_alerts_again(hub, recorder, topics):
    api = hub.api
    call = press(recorder, topics, "room-3", api)
    wait_until(lambda: alerted(api, call["id"]), what="the first alert")
    body = api.ok("POST", f"/api/v1/calls/{call['id']}/acknowledge", {"associate": "cleo"})
    assert body["status"] == "acknowledged" and [a["associate"] for a in body["alerted"]] == ["cleo"]
    assert api.ok("GET", "/api/v1/associates/cleo")["state"] == "busy"
    time.sleep(1.5)
    assert len(alerted(api, call["id"])) == 1  # nobody else asked while cleo is on the way
    again = wait_until(lambda: (c := api.ok("GET", f"/api/v1/calls/{call['id']}"))["status"] == "open" and c,
                       timeout=5, what="the call re-opened after reack_s")
    assert again["reopened_at"] and again["acknowledged_by"] is None
    wait_until(lambda: len(alerted(api, call["id"])) >= 2, what="a new alert")
    assert recorder.last(topics.lamp("room-3"))["state"] in ("called", "overdue")


def test_the_location_feed_moves_an_associate(hub, recorder, topics):
    api = hub.api
    reader, got = in_background(lambda: sse(hub.http_port, lambda m: any(
        x["event"] == "associate" and x["data"]["id"] == "ana" and (x["data"]["position"] or {}).get("x") == 38
        for x in m)))
    time.sleep(0.3)
    locate(recorder, topics, "ana", {"x": 38, "y": 1}, api)
    reader.join(10)
    ana = api.ok("GET", "/api/v1/associates/ana")
    assert ana["position"]["zone"] == "b" and ana["position"]["age_s"] < 5
    assert any(m["event"] == "associate" and m["data"]["id"] == "ana" for m in got)
    # with cleo on a break, ana (2 m away now) is nearest to room-3, not ben (zone a, 35 m)
    api.ok("POST", "/api/v1/associates/cleo/state", {"state": "break"})
    call = press(recorder, topics, "room-3", api)
    assert wait_until(lambda: alerted(api, call["id"]), what="an alert") == [("ana", 0)]


@pytest.mark.parametrize("who, payload, reason", [
    ("ana", b"{not json", "not valid JSON"),
    ("ana", {"room": "room-1", "zone": "a"}, "exactly one of"),
    ("ana", {"x": 3}, "'y' must be a number"),
    ("ana", {"room": "room-9"}, "unknown room 'room-9'"),
    ("ana", {"zone": "kids"}, "unknown zone 'kids'"),
    ("zed", {"room": "room-1"}, "unknown associate 'zed'"),
])
def test_a_bad_location_is_rejected_on_hub_rejected(hub, recorder, topics, who, payload, reason):
    recorder.publish(topics.associate_location(who), payload)
    [r] = wait_until(lambda: recorder.json_of(topics.hub_rejected), what="a rejection notice")
    assert r["topic"] == topics.associate_location(who) and reason in r["reason"]
    assert hub.api.ok("GET", "/api/v1/associates/ana")["position"]["source"] == "home"


def test_presence_at_the_door_puts_the_associate_who_answered_there(hub, recorder, topics):
    api = hub.api
    call = press(recorder, topics, "room-2", api)
    api.ok("POST", f"/api/v1/calls/{call['id']}/acknowledge", {"associate": "cleo"})
    recorder.publish(topics.event("room-2"), event("p-1", "presence"))
    wait_until(lambda: api.ok("GET", f"/api/v1/calls/{call['id']}")["answered_by"] == "cleo", what="answered")
    pos = api.ok("GET", "/api/v1/associates/cleo")["position"]
    assert (pos["source"], pos["room"], pos["zone"]) == ("presence", "room-2", "a")


def test_an_associate_sets_state_and_zone_through_the_api_and_the_stream_says_so(hub):
    api = hub.api
    reader, got = in_background(lambda: sse(hub.http_port, lambda m: any(
        x["event"] == "associate" and x["data"]["id"] == "ben" and x["data"]["state"] == "break" for x in m)))
    time.sleep(0.3)
    ben = api.ok("POST", "/api/v1/associates/ben/state", {"state": "break", "source": "phone"})
    assert (ben["state"], ben["declared"]) == ("break", "break") and ben["state_at"]
    reader.join(10)
    msg = next(m for m in got if m["event"] == "associate" and m["data"]["id"] == "ben")
    assert msg["data"]["state"] == "break" and parse_event_id(msg["id"])[1] > 0
    dev = api.ok("POST", "/api/v1/associates/dev/zone", {"zone": "b"})
    assert dev["position"]["source"] == "zone" and dev["position"]["zone"] == "b"
    listed = {a["id"]: a for a in api.ok("GET", "/api/v1/associates")}
    assert listed["ben"]["state"] == "break" and listed["dev"]["state"] == "off"
    assert listed["maria"]["role"] == "manager"
    csv = api.request("GET", "/api/v1/events.csv")[1]
    assert ",associate_state,,,ben,phone," in csv and ",associate_zone,,,dev,api," in csv


@pytest.mark.parametrize("path, body, status, code", [
    ("/api/v1/associates/ben/state", {"state": "busy"}, 422, "bad_request"),
    ("/api/v1/associates/ben/state", {"state": "available", "x": 1}, 422, "bad_request"),
    ("/api/v1/associates/zed/state", {"state": "available"}, 404, "not_found"),
    ("/api/v1/associates/ben/zone", {"zone": "kids"}, 400, "invalid"),
])
def test_a_wrong_associate_request_gets_a_json_error(hub, path, body, status, code):
    got, data = hub.api.request("POST", path, body)
    assert got == status and data["error"]["code"] == code, data


def test_associate_states_survive_a_restart_of_the_hub(hub_process):
    api = hub_process.api
    api.ok("POST", "/api/v1/associates/ana/state", {"state": "off"})
    api.ok("POST", "/api/v1/associates/dev/state", {"state": "available"})
    api.ok("POST", "/api/v1/associates/dev/zone", {"zone": "b"})
    hub_process.stop()
    hub_process.start()
    states = {a["id"]: a for a in api.ok("GET", "/api/v1/associates")}
    assert states["ana"]["state"] == "off" and states["dev"]["state"] == "available"
    assert states["dev"]["position"]["source"] == "zone" and states["dev"]["position"]["zone"] == "b"
    assert states["ben"]["state"] == "available"  # never changed: as the config starts it


def test_the_openapi_description_lists_the_associate_endpoints(hub):
    paths = hub.api.ok("GET", "/openapi.json")["paths"]
    for p in ("/api/v1/associates", "/api/v1/associates/{associate}", "/api/v1/associates/{associate}/state",
              "/api/v1/associates/{associate}/zone"):
        assert p in paths


def test_a_database_from_before_escalation_gets_the_new_column(tmp_path):
    import sqlite3

    from hub.store import Writer
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the calls table as the first release made it
        conn.execute("CREATE TABLE calls (id TEXT PRIMARY KEY, seq INTEGER, room TEXT, status TEXT)")
    w = Writer(db)
    try:
        assert "reopened_at" in w.db["calls"].columns_dict
    finally:
        w.close()
