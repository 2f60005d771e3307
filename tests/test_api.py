"""HTTP API v1 of the hub: errors, calls, statistics, exports, the SSE stream."""
import csv
import io
import threading
import time

import pytest

from hub.stream import parse_event_id
from tests.helpers import event, read_sse, wait_until


def sse_lines(port: int, headers: dict | None = None, until: int = 1, timeout: float = 5.0) -> list[dict]:
    return read_sse(port, until, headers, timeout)


def press(recorder, topics, room="room-1", id=None):
    recorder.publish(topics.event(room), event(id or f"e-{time.monotonic_ns()}"))


def test_health_says_ok_with_broker_and_database(hub):
    assert hub.api.ok("GET", "/api/v1/health")["status"] == "ok"


def test_openapi_describes_every_endpoint_of_the_contract(hub):
    paths = hub.api.ok("GET", "/openapi.json")["paths"]
    for p in ["/api/v1/health", "/api/v1/calls", "/api/v1/calls/{call}", "/api/v1/calls/{call}/acknowledge",
              "/api/v1/calls/{call}/decline", "/api/v1/calls/{call}/answer", "/api/v1/calls/{call}/done",
              "/api/v1/stats", "/api/v1/calls.csv", "/api/v1/events.csv", "/api/v1/stream"]:
        assert p in paths, p


@pytest.mark.parametrize("method, path, body, status, code", [
    ("GET", "/api/v1/calls/c-999999", None, 404, "not_found"),
    ("POST", "/api/v1/calls/c-999999/acknowledge", {"associate": "ana"}, 404, "not_found"),
    ("GET", "/api/v1/calls?status=maybe", None, 422, "bad_request"),
    ("GET", "/api/v1/calls?since=yesterday", None, 400, "bad_request"),
    ("GET", "/api/v1/stats?by=colour", None, 422, "bad_request"),
    ("GET", "/api/v1/nowhere", None, 404, "not_found"),
])
def test_bad_requests_get_a_json_error_never_a_500(hub, method, path, body, status, code):
    got, data = hub.api.request(method, path, body)
    assert got == status and data["error"]["code"] == code and data["error"]["message"]


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"associate": 5}', b'{"associate": "ana", "x": 1}',
                                 b'{"associate": "NOT VALID"}', b'{}', b"\xff"])
def test_a_wrong_body_is_refused_and_recorded(hub, recorder, topics, raw):
    press(recorder, topics)
    [c] = wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="a call")
    status, data = hub.api.request("POST", f"/api/v1/calls/{c['id']}/acknowledge", raw=raw)
    assert status in (400, 422) and data["error"]["code"] == "bad_request"
    wait_until(lambda: any(r["channel"] == "http" for r in hub.api.ok("GET", "/api/v1/rejected")),
               what="the bad request recorded")
    assert hub.api.ok("GET", f"/api/v1/calls/{c['id']}")["status"] == "open"


def test_acting_for_an_unknown_associate_is_refused(hub, recorder, topics):
    press(recorder, topics)
    [c] = wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="a call")
    status, data = hub.api.post(f"/api/v1/calls/{c['id']}/acknowledge", {"associate": "zed"})
    assert status == 400 and data["error"]["code"] == "unknown_associate"


def test_a_taken_call_cannot_be_taken_again(hub, recorder, topics):
    press(recorder, topics)
    [c] = wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="a call")
    hub.api.ok("POST", f"/api/v1/calls/{c['id']}/acknowledge", {"associate": "ana"})
    status, data = hub.api.post(f"/api/v1/calls/{c['id']}/acknowledge", {"associate": "ben"})
    assert status == 409 and "ana" in data["error"]["message"]


def test_the_call_object_has_every_field_of_the_contract(hub, recorder, topics):
    press(recorder, topics)
    [c] = wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="a call")
    for field in ("id", "room", "zone", "reason", "status", "pressed_at", "acknowledged_at", "answered_at",
                  "done_at", "acknowledged_by", "answered_by", "response_s", "reminders", "alerted", "overdue"):
        assert field in c, field
    assert c["pressed_at"].endswith(("+01:00", "+02:00"))  # ISO 8601 in the store's zone (Berlin)
    assert c["zone"] == "a"


def test_calls_filter_by_status_room_and_time(hub, recorder, topics):
    press(recorder, topics, "room-1")
    press(recorder, topics, "room-2")
    wait_until(lambda: len(hub.api.ok("GET", "/api/v1/calls?status=open")) == 2, what="two calls")
    [c1] = hub.api.ok("GET", "/api/v1/calls?room=room-1")
    hub.api.ok("POST", f"/api/v1/calls/{c1['id']}/done", {"associate": "ana"})
    assert [c["room"] for c in hub.api.ok("GET", "/api/v1/calls?status=closed")] == ["room-1"]
    assert [c["room"] for c in hub.api.ok("GET", "/api/v1/calls?status=open")] == ["room-2"]
    assert hub.api.ok("GET", f"/api/v1/calls?since={time.time() + 60}") == []
    assert len(hub.api.ok("GET", "/api/v1/calls?since=2020-01-01")) == 2


def test_stats_count_median_p90_and_share_within_standard(hub, recorder, topics):
    # three calls answered after 10, 20 and 100 s (press times set by age_ms)
    for room, age in (("room-1", 10_000), ("room-2", 20_000), ("room-3", 100_000)):
        recorder.publish(topics.event(room), event(f"s-{room}", age_ms=age))
    calls = wait_until(lambda: len(c := hub.api.ok("GET", "/api/v1/calls?status=open")) == 3 and c, what="3 calls")
    for c in calls:
        hub.api.ok("POST", f"/api/v1/calls/{c['id']}/answer", {"associate": "ana"})
    s = hub.api.ok("GET", "/api/v1/stats?by=room")
    t = s["total"]
    assert t["calls"] == 3 and t["answered"] == 3
    assert 19.9 < t["response_median_s"] < 20.5
    assert t["within_standard"] == 2 and t["within_standard_share"] == pytest.approx(2 / 3, abs=0.001)
    assert [g["key"] for g in s["groups"]] == ["room-1", "room-2", "room-3"]
    hours = hub.api.ok("GET", "/api/v1/stats?by=hour")["groups"]
    assert sum(g["calls"] for g in hours) == 3


def test_csv_exports_list_calls_and_every_event(hub, recorder, topics):
    press(recorder, topics)
    [c] = wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="a call")
    hub.api.ok("POST", f"/api/v1/calls/{c['id']}/done", {"associate": "ben"})
    status, text = hub.api.get("/api/v1/calls.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and rows[0]["id"] == c["id"] and rows[0]["status"] == "done"
    _, text = hub.api.get("/api/v1/events.csv")
    kinds = [r["kind"] for r in csv.DictReader(io.StringIO(text)) if r["call"] == c["id"]]
    assert kinds == ["pressed", "done"]  # done with nobody recorded at the door: no arrival made up


def test_the_stream_starts_with_a_snapshot_then_sends_every_change(hub, recorder, topics):
    press(recorder, topics, "room-1")
    wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="a call")
    got = []
    reader = threading.Thread(target=lambda: got.extend(sse_lines(hub.http_port, until=2)))
    reader.start()
    time.sleep(0.5)
    press(recorder, topics, "room-2")
    reader.join(10)
    snap, change = got
    assert snap["event"] == "snapshot"
    data = snap["data"]
    assert [c["room"] for c in data["calls"]] == ["room-1"] and data["standard_s"] == 90
    assert change["event"] == "call" and change["data"]["room"] == "room-2"
    (epoch, seq), (snap_epoch, snap_seq) = parse_event_id(change["id"]), parse_event_id(snap["id"])
    assert epoch == snap_epoch and seq > snap_seq


def test_the_stream_resumes_after_last_event_id_without_gaps(hub, recorder, topics):
    [snap] = sse_lines(hub.http_port, until=1)
    last = snap["id"]
    press(recorder, topics, "room-1")
    press(recorder, topics, "room-2")
    wait_until(lambda: len(hub.api.ok("GET", "/api/v1/calls?status=open")) == 2, what="two calls")
    got = sse_lines(hub.http_port, {"Last-Event-ID": last}, until=3)
    assert [m["event"] for m in got] == ["call", "call", "resumed"]
    assert sorted(m["data"]["room"] for m in got[:2]) == ["room-1", "room-2"]
    # resuming from the newest id replays nothing
    again = sse_lines(hub.http_port, {"Last-Event-ID": got[-1]["id"]}, until=1)
    assert [m["event"] for m in again] == ["resumed"]


def test_the_hub_records_device_status(hub, recorder, topics):
    recorder.publish(topics.device_status("pi-x"), "online", retain=True, expiry_s=None)
    wait_until(lambda: [d for d in hub.api.ok("GET", "/api/v1/devices") if d["status"] == "online"],
               what="device online")
    recorder.publish(topics.device_status("pi-x"), "offline", retain=True, expiry_s=None)
    wait_until(lambda: [d for d in hub.api.ok("GET", "/api/v1/devices") if d["status"] == "offline"],
               what="device offline")


def test_acting_on_a_closed_call_is_a_conflict(hub, recorder, topics):
    press(recorder, topics)
    [c] = wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="a call")
    hub.api.ok("POST", f"/api/v1/calls/{c['id']}/done", {"associate": "ana"})
    status, data = hub.api.post(f"/api/v1/calls/{c['id']}/acknowledge", {"associate": "ben"})
    assert status == 409 and "already done" in data["error"]["message"]


def test_a_body_over_the_cap_is_refused_before_it_is_read_and_recorded(hub):
    import http.client
    import socket

    from hub.api.body_limit import MAX_BODY_BYTES
    big = b'{"associate": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}'
    status, body = hub.api.post("/api/v1/calls/c-000001/acknowledge", raw=big)
    assert status == 413 and body["error"]["code"] == "too_large"
    # The same without a Content-Length (chunked): refused once it passes the cap.
    # The hub answers and closes while we are still sending, so the kernel may reset the
    # connection: read the answer on a thread from the start, before that reset can come.
    s = socket.create_connection(("127.0.0.1", hub.http_port), timeout=10)
    answer = bytearray()

    def read() -> None:
        try:
            while chunk := s.recv(65536):
                answer.extend(chunk)
        except OSError:
            pass
    reader = threading.Thread(target=read)
    reader.start()
    try:
        s.sendall(b"POST /api/v1/calls/c-000001/acknowledge HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 16384
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
    except (ConnectionResetError, BrokenPipeError):
        pass  # refused before we were done sending
    finally:
        reader.join(10)
        s.close()
    assert answer.startswith(b"HTTP/1.1 413 "), bytes(answer[:100])
    wait_until(lambda: any("at most" in r["reason"] for r in hub.reader.rejected()), what="the refusal recorded")
    # A small chunked body still reaches the route (which says the call does not exist).
    s = socket.create_connection(("127.0.0.1", hub.http_port), timeout=10)
    try:
        small = b'{"associate": "ana"}'
        s.sendall(b"POST /api/v1/calls/c-999999/acknowledge HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small))
        response = http.client.HTTPResponse(s)
        response.begin()
        assert response.status == 404 and b"not_found" in response.read()
    finally:
        s.close()
