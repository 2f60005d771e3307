"""Web Push from the hub (hub/push.py) to a push service of the tests' own that checks the
VAPID signature and decrypts every message as a phone would (tests/push_service.py); and the
routes a phone's service worker posts back to."""
from __future__ import annotations

import json
import os
import stat
import time
import urllib.request

import pytest

from callbell.broker import free_port
from hub.push import RingSchedule, endpoint_allowed
from tests.helpers import running_hub, wait_until, write_store
from tests.push_service import PushService
from tests.browser import mock_device


@pytest.fixture
def push_service():
    service = PushService().start()
    yield service
    service.stop()


@pytest.fixture
def hub(tmp_path, broker, push_service):
    extra = f"""
[alerts]
ring_repeat_s = 3
push_services = ["{push_service.origin}"]
push_contact = "mailto:it@store.example"
"""
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), extra=extra)
    with running_hub(path) as h:
        h.api.ok("POST", "/api/v1/associates/ana/state", {"state": "available"})
        yield h


@pytest.fixture
def device(hub, tmp_path):
    rig = mock_device(hub.broker_url, tmp_path)
    yield rig
    rig.device.stop()


def subscribe(hub, phone, associate="ana"):
    status, body = hub.api.post("/api/v1/push/subscriptions", {"associate": associate, **phone.to_json()})
    assert status == 201, body
    return body


def events(hub) -> list[dict]:
    with urllib.request.urlopen(hub.api.base + "/api/v1/events.jsonl", timeout=10) as r:
        return [json.loads(line) for line in r.read().splitlines() if line]


def open_call(hub, room):
    return wait_until(lambda: next((c for c in hub.api.ok("GET", "/api/v1/calls?status=open") if c["room"] == room),
                                   None), what=f"{room}'s call stored")


def test_the_hub_makes_its_vapid_key_once_and_keeps_it_private(hub, tmp_path):
    key_file = tmp_path / "vapid-private.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = hub.api.ok("GET", "/api/v1/push/key")
    assert key["enabled"] and len(key["public_key"]) == 87  # 65 bytes, base64url
    hub.stop()
    config = hub.config
    from hub.push import PushKeys
    assert PushKeys.load_or_create(key_file).public_key == key["public_key"]
    assert config.alerts.web_push


def test_an_alert_is_pushed_signed_and_encrypted_and_pushed_again_until_on_my_way(hub, device, push_service):
    phone = push_service.phone()
    subscribe(hub, phone)
    device.press("room-1")
    [first] = push_service.wait_for(phone, 1)
    call = open_call(hub, "room-1")
    key = hub.api.ok("GET", "/api/v1/push/key")["public_key"]
    assert first.vapid_key == key and first.claims["sub"] == "mailto:it@store.example"
    assert first.headers["urgency"] == "high" and first.headers["ttl"] == "60"
    assert first.headers["topic"] == call["id"]
    p = first.payload
    assert (p["kind"], p["call"], p["associate"], p["title"], p["receipt"]) == \
        ("alert", call["id"], "ana", "Room 1 — Help", True)
    assert p["alerted_at"] == call["alerted"][0]["at"] and len(p["token"]) >= 40
    second = push_service.wait_for(phone, 2, timeout=8)[1]
    assert second.payload["sent_at"] - first.payload["sent_at"] >= 2.9, "repeats come ring_repeat_s apart"
    assert second.payload["repeat"] == 2
    hub.api.ok("POST", f"/api/v1/calls/{call['id']}/acknowledge", {"associate": "ana", "source": "phone"})
    count = len(push_service.of(phone))
    time.sleep(4)  # more than a repeat
    assert len(push_service.of(phone)) == count, "pushed after On my way"
    assert push_service.refused == []


def test_a_reminder_press_pushes_at_once_and_urgent(hub, device, push_service):
    phone = push_service.phone()
    subscribe(hub, phone)
    device.press("room-2")
    push_service.wait_for(phone, 1)
    device.press("room-2")
    msgs = push_service.wait_for(phone, 2, timeout=2.5)  # before the 3 s repeat
    assert msgs[1].payload["urgent"] and msgs[1].payload["title"].startswith("⚠ ")
    assert "Pressed 2 times." in msgs[1].payload["body"]


def test_the_service_workers_receipt_and_tap_come_back_with_the_push_token(hub, device, push_service):
    phone = push_service.phone()
    subscribe(hub, phone)
    device.press("room-1")
    [msg] = push_service.wait_for(phone, 1)
    p = msg.payload
    body = {"token": p["token"], "call": p["call"], "alerted_at": p["alerted_at"], "stage": "shown"}
    call = hub.api.ok("POST", "/api/v1/push/receipt", body)
    [alert] = call["alerted"]
    assert alert["delivered_at"] and alert["shown_at"]
    receipts = [e for e in events(hub) if e["kind"] == "receipt"]
    assert [(e["actor"], e["source"], e["detail"]["stage"], e["detail"]["via"]) for e in receipts] == \
        [("ana", "phone", "delivered", "push"), ("ana", "phone", "shown", "push")]
    assert push_service.wait_for(phone, 2, timeout=8)[1].payload["receipt"] is False  # the hub has it
    call = hub.api.ok("POST", "/api/v1/push/act", {"token": p["token"], "call": p["call"], "action": "acknowledge"})
    assert (call["status"], call["acknowledged_by"]) == ("acknowledged", "ana")


def test_a_wrong_push_token_is_refused(hub, device, push_service):
    status, body = hub.api.post("/api/v1/push/act", {"token": "x" * 43, "call": "c-000001", "action": "decline"})
    assert status == 401 and body["error"]["code"] == "unauthorized"


def test_a_subscription_the_push_service_says_is_gone_is_removed(hub, device, push_service):
    phone = push_service.phone()
    phone.answer = 410
    subscribe(hub, phone)
    assert hub.api.ok("GET", "/api/v1/associates/ana")["push"] is True
    device.press("room-1")
    wait_until(lambda: hub.api.ok("GET", "/api/v1/associates/ana")["push"] is False, what="the push flag cleared")
    assert hub.push.subscriptions.of("ana") == []


def test_only_endpoints_at_an_allowed_push_service_and_well_formed_keys_are_taken(hub, push_service):
    phone = push_service.phone()
    sub = {"associate": "ana", **phone.to_json()}
    status, body = hub.api.post("/api/v1/push/subscriptions", {**sub, "endpoint": "http://10.0.0.5:8080/admin"})
    assert status == 400 and "not at a push service this hub allows" in body["error"]["message"]
    status, body = hub.api.post("/api/v1/push/subscriptions", {**sub, "keys": {"p256dh": "AAAA", "auth": sub["keys"]["auth"]}})
    assert status == 400 and "keys.p256dh must encode 65 bytes" in body["error"]["message"]
    status, body = hub.api.post("/api/v1/push/subscriptions", {**sub, "keys": {**sub["keys"], "auth": "!!"}})
    assert status == 400 and body["error"]["message"] == "keys.auth must be base64url"
    status, _ = hub.api.request("DELETE", f"/api/v1/push/subscriptions?associate=ana&endpoint={phone.endpoint}")
    assert status == 204


def test_endpoint_origins_match_exactly_or_by_subdomain():
    services = ("https://fcm.googleapis.com", "https://*.notify.windows.com", "http://127.0.0.1:9000")
    assert endpoint_allowed("https://fcm.googleapis.com/fcm/send/abc", services)
    assert endpoint_allowed("https://wns2-par02p.notify.windows.com/w/?token=x", services)
    assert endpoint_allowed("http://127.0.0.1:9000/push/x", services)
    assert not endpoint_allowed("https://fcm.googleapis.com.evil.example/x", services)
    assert not endpoint_allowed("http://fcm.googleapis.com/x", services)
    assert not endpoint_allowed("http://127.0.0.1:9001/push/x", services)
    assert not endpoint_allowed("file:///etc/passwd", services)


# -- the schedule, on a fake clock --------------------------------------------------------------
def row(status="open", alerted=(("ana", 100.0),), declined=(), reminders=0, overdue=False, reopened_at=None):
    return {"id": "c-1", "room": "r1", "reason": "help", "status": status, "pressed_at": 100.0,
            "reopened_at": reopened_at, "alerted": json.dumps([{"associate": a, "at": at, "step": 0} for a, at in alerted]),
            "declined": json.dumps(list(declined)), "reminders": reminders, "overdue": int(overdue)}


def call_of(r):
    return {"id": r["id"], "room": r["room"], "reason": r["reason"], "status": r["status"],
            "declined": json.loads(r["declined"]), "reminders": r["reminders"], "overdue": bool(r["overdue"]),
            "pressed_ts": r["pressed_at"], "alerted": []}


def test_the_schedule_pushes_at_once_then_every_repeat_until_the_call_is_taken():
    s = RingSchedule(15)
    r = row()
    s.update(r, call_of(r), 100)
    assert [x.associate for x in s.due(100)] == ["ana"] and s.due(114.9) == []
    assert [x.pushes for x in s.due(115)] == [2]
    r = row(status="acknowledged")
    s.update(r, call_of(r), 120)
    assert s.due(200) == [] and s.next_at() is None


def test_the_schedule_stops_for_not_me_and_starts_again_for_a_reopened_call():
    s = RingSchedule(15)
    r = row()
    s.update(r, call_of(r), 100)
    s.due(100)
    r = row(declined=("ana",))
    s.update(r, call_of(r), 101)
    assert s.due(200) == []
    r = row(alerted=(("ana", 100.0), ("ana", 300.0)), reopened_at=300.0)
    s.update(r, call_of(r), 300)
    assert [(x.associate, x.alerted_at) for x in s.due(300)] == [("ana", 300.0)]


def test_the_schedule_pushes_again_at_once_on_a_reminder_or_overdue():
    s = RingSchedule(15)
    r = row()
    s.update(r, call_of(r), 100)
    s.due(100)
    r = row(reminders=1)
    s.update(r, call_of(r), 104)
    [x] = s.due(104)
    assert x.urgent
    r = row(reminders=1, overdue=True)
    s.update(r, call_of(r), 106)
    assert [x.urgent for x in s.due(106)] == [True]
