"""A trouble (a fault of the system itself: docs/dashboard.md#troubles) reaches the people it
alerts beyond the open page, like a call's alert: Web Push to a push service of the tests' own
(tests/push_service.py) again every ring_repeat_s until someone acknowledges it — from the
notification's "Acknowledge", with the push token — and ntfy (top priority, an "Acknowledge"
button) and the signed webhook ``{"kind": "trouble"}``, against local HTTP servers.

The troubles are raised and cleared through the dispatcher (``report_trouble``,
``clear_trouble``) of a hub run in this process."""
from __future__ import annotations

import json
import time

import pytest

from callbell.broker import free_port
from hub.push import TroubleRings
from tests.helpers import Api, running_hub, wait_until, write_store
from tests.push_service import PushService
from tests.test_notify import FakeNtfy
from tests.test_webhook import SECRET, Receiver

#: A device nobody runs in these tests: nothing the hub hears can clear its trouble.
GONE = "pi-back"


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
        yield h


def open_trouble(hub, kind="device_silent", key=GONE) -> dict:
    return wait_until(lambda: next((t for t in hub.api.ok("GET", "/api/v1/troubles")["troubles"]
                                    if t["kind"] == kind), None), what=f"the {kind} trouble open")


def test_a_trouble_is_pushed_to_the_manager_with_acknowledge_and_again_until_acknowledged(hub, push_service):
    phone = push_service.phone()
    status, body = hub.api.post("/api/v1/push/subscriptions", {"associate": "maria", **phone.to_json()})
    assert status == 201, body
    hub.dispatcher.report_trouble("device_silent", GONE, device=GONE, detail={"rooms": ["room-3"], "silent_s": 31})
    [first] = push_service.wait_for(phone, 1)
    trouble = open_trouble(hub)
    assert [a["associate"] for a in trouble["alerted"]] == ["maria"]
    p = first.payload
    assert (p["kind"], p["trouble"], p["associate"]) == ("trouble", trouble["id"], "maria")
    assert p["title"] == "⚠ Trouble — Device silent" and trouble["text"] in p["body"]
    assert first.headers["topic"] == trouble["id"] and first.headers["urgency"] == "high"
    second = push_service.wait_for(phone, 2, timeout=8)[1]
    assert second.payload["sent_at"] - p["sent_at"] >= 2.9, "repeats come ring_repeat_s apart"
    assert "Still not acknowledged." in second.payload["body"]

    # "Acknowledge" on the notification: the service worker posts the push's token.
    acked = hub.api.ok("POST", "/api/v1/push/acknowledge", {"token": p["token"], "trouble": trouble["id"]})
    assert acked["id"] == trouble["id"] and acked["acknowledged_by"] == "maria"
    count = len(push_service.of(phone))
    time.sleep(4)  # more than a repeat
    assert len(push_service.of(phone)) == count, "pushed after Acknowledge"
    assert push_service.refused == []


def test_a_cleared_trouble_is_pushed_no_more(hub, push_service):
    phone = push_service.phone()
    hub.api.post("/api/v1/push/subscriptions", {"associate": "maria", **phone.to_json()})
    hub.dispatcher.report_trouble("stuck_line", f"{GONE}/room-3/call", device=GONE, room="room-3",
                                  detail={"button": "call", "held_s": 31})
    push_service.wait_for(phone, 1)
    hub.dispatcher.clear_trouble("stuck_line", f"{GONE}/room-3/call")
    wait_until(lambda: hub.api.ok("GET", "/api/v1/troubles")["troubles"] == [], what="the trouble cleared")
    count = len(push_service.of(phone))
    time.sleep(4)  # more than a repeat
    assert len(push_service.of(phone)) == count, "pushed after the trouble cleared"


def test_a_push_acknowledges_only_with_a_subscriptions_token_and_only_an_open_trouble(hub, push_service):
    phone = push_service.phone()
    hub.api.post("/api/v1/push/subscriptions", {"associate": "maria", **phone.to_json()})
    hub.dispatcher.report_trouble("device_silent", GONE, device=GONE)
    [msg] = push_service.wait_for(phone, 1)
    token, trouble = msg.payload["token"], msg.payload["trouble"]
    status, body = hub.api.post("/api/v1/push/acknowledge", {"token": "x" * 43, "trouble": trouble})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = hub.api.post("/api/v1/push/acknowledge", {"token": token, "trouble": "t-999999"})
    assert status == 404, body
    assert hub.api.ok("POST", "/api/v1/push/acknowledge", {"token": token, "trouble": trouble})["acknowledged_by"] == "maria"
    status, body = hub.api.post(f"/api/v1/troubles/{trouble}/acknowledge", {"associate": "ben"})
    assert status == 409, body  # Maria has it


# -- ntfy and the webhook -------------------------------------------------------------------------
def notify_store(tmp_path, broker_url: str, ntfy_url: str, webhook: str):
    """Sign-in on, as a real store is: ntfy's button has no session, only its token."""
    port = free_port()
    path = write_store(tmp_path / "store.toml", broker_url=broker_url, http_port=port, demo=False)
    text = path.read_text()
    text = text.replace("demo = false", f'demo = false\npublic_url = "http://127.0.0.1:{port}"')
    text = text.replace('id = "maria"\nrole = "manager"', 'id = "maria"\nrole = "manager"\nntfy_topic = "callbell-maria-9Kd"')
    text += f'\n[notify]\nntfy_url = "{ntfy_url}"\nwebhook_url = "{webhook}"\nwebhook_secret = "{SECRET}"\n'
    path.write_text(text)
    return path, port


def test_ntfy_gets_a_trouble_at_top_priority_with_a_signed_acknowledge_and_the_webhook_every_change(tmp_path, broker):
    ntfy, hook = FakeNtfy(), Receiver(SECRET)
    path, port = notify_store(tmp_path, broker.url, ntfy.url, hook.url)
    try:
        with running_hub(path) as hub:
            hub.dispatcher.report_trouble("device_silent", GONE, device=GONE, detail={"rooms": ["room-3"]})
            wait_until(lambda: ntfy.requests, what="the trouble at ntfy")
            [trouble] = hub.dispatcher.open_troubles()
            message = ntfy.json(0)
            base = f"http://127.0.0.1:{port}"
            assert (message["topic"], message["priority"], message["tags"]) == \
                ("callbell-maria-9Kd", 5, ["warning", "device_silent"])
            assert message["title"] == "Trouble — Device silent" and message["message"].startswith(trouble["text"])
            assert message["click"] == f"{base}/phone"
            [action] = message["actions"]
            assert (action["action"], action["label"], action["method"], action["url"]) == \
                ("http", "Acknowledge", "POST", f"{base}/api/v1/push/acknowledge")
            tap = json.loads(action["body"])
            assert (tap["trouble"], tap["associate"]) == (trouble["id"], "maria") and len(tap["token"]) >= 40

            wait_until(lambda: hook.requests, what="the webhook")
            first = hook.requests[0]
            assert first["verified"] and first["headers"]["X-Callbell-Event"] == "trouble"
            body = json.loads(first["body"])
            assert body["kind"] == "trouble" and body["trouble"]["id"] == trouble["id"]
            assert body["trouble"]["cleared_at"] is None

            # Its token is for that trouble and associate only: a forged tap is refused.
            for forged in ({**tap, "associate": "ben"}, {**tap, "token": tap["token"][:-4] + "AAAA"}):
                status, body = Api(base).post("/api/v1/push/acknowledge", forged)
                assert status == 401 and body["error"]["code"] == "unauthorized", body
            # Tapping "Acknowledge" is the phone sending exactly what the action says, no session.
            status, acked = Api("").request(action["method"], action["url"], raw=action["body"].encode(),
                                            headers=action["headers"])
            assert status == 200 and acked["acknowledged_by"] == "maria", acked
            hub.dispatcher.clear_trouble("device_silent", GONE)
            wait_until(lambda: any(json.loads(r["body"])["trouble"]["cleared_at"] for r in hook.requests),
                       what="the webhook hears the trouble cleared")
            kinds = [json.loads(r["body"])["kind"] for r in hook.requests]
            assert set(kinds) == {"trouble"} and all(r["verified"] for r in hook.requests)
            assert any(json.loads(r["body"])["trouble"]["acknowledged_by"] == "maria" for r in hook.requests)
            assert len(ntfy.requests) == 1, "one alert, one ntfy message"
    finally:
        ntfy.close()
        hook.close()


# -- the push schedule, on a fake clock ----------------------------------------------------------
def trouble(alerted=(("maria", "2026-12-06T18:00:00.000+01:00"),), acknowledged_by=None, cleared_at=None) -> dict:
    return {"id": "t-000001", "kind": "device_silent", "key": GONE, "device": GONE, "room": None, "detail": {},
            "since": "2026-12-06T18:00:00.000+01:00", "cleared_at": cleared_at, "duration_s": None,
            "alerted": [{"associate": a, "at": at} for a, at in alerted], "acknowledged_by": acknowledged_by,
            "acknowledged_at": None, "text": "Device pi-back has not been heard for 31 s"}


def test_the_trouble_schedule_pushes_at_once_then_every_repeat_until_acknowledged():
    s = TroubleRings(15)
    s.update(trouble(), 100)
    assert [r.associate for r in s.due(100)] == ["maria"] and s.due(114.9) == []
    assert [r.pushes for r in s.due(115)] == [2]
    s.update(trouble(acknowledged_by="maria"), 120)
    assert s.due(200) == [] and s.next_at() is None


def test_the_trouble_schedule_stops_when_cleared_and_pushes_a_new_alert_at_once():
    s = TroubleRings(15)
    s.update(trouble(), 100)
    s.due(100)
    later = (("maria", "2026-12-06T18:00:00.000+01:00"), ("ben", "2026-12-06T18:00:05.000+01:00"))
    s.update(trouble(alerted=later), 105)
    assert [r.associate for r in s.due(105)] == ["ben"]  # maria's repeat is not due yet
    s.update(trouble(alerted=later, cleared_at="2026-12-06T18:01:00.000+01:00"), 106)
    assert s.due(500) == []


def test_ntfy_pushes_each_new_alert_of_a_trouble_once_and_after_a_restart_only_the_latest():
    from zoneinfo import ZoneInfo
    from hub.dispatcher import Batch
    from hub.notify import Notifier
    ntfy = FakeNtfy()
    people = {"maria": {"name": "Maria", "ntfy_topic": "t-maria", "ntfy_url": ntfy.url},
              "ben": {"name": "Ben", "ntfy_topic": "t-ben", "ntfy_url": ntfy.url}}
    n = Notifier(tz=ZoneInfo("UTC"), rooms={}, people=people).start()
    try:
        at = ["2026-12-06T18:00:00.000+00:00", "2026-12-06T18:01:00.000+00:00", "2026-12-06T18:02:00.000+00:00"]
        # A restarted hub's first word of a trouble carries its alerts from before: the latest only.
        n.send(Batch(troubles={"t-000001": trouble(alerted=(("maria", at[0]), ("maria", at[1])))}))
        n.send(Batch(troubles={"t-000001": trouble(alerted=(("maria", at[0]), ("maria", at[1])))}))  # no news
        n.send(Batch(troubles={"t-000001": trouble(alerted=(("maria", at[1]), ("maria", at[2])))}))  # alerted again
        n.send(Batch(troubles={"t-000001": trouble(alerted=(("maria", at[2]),), acknowledged_by="maria")}))
        wait_until(lambda: n.idle() and len(ntfy.requests) >= 2, what="the pushes")
        assert [ntfy.json(i)["topic"] for i in range(len(ntfy.requests))] == ["t-maria", "t-maria"]
        assert "actions" not in ntfy.json(0)  # no public_url: nowhere for a button to post
    finally:
        n.stop()
        ntfy.close()
