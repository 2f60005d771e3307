"""Phone alerts beyond the open page: ntfy and a webhook, against a small local HTTP server
standing in for ntfy, checking the request format ntfy documents (docs.ntfy.sh/publish:
"Publish as JSON" to the server root; "http" action buttons)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from callbell.broker import free_port
from callbell.settings import ConfigError
from hub import notify
from hub.config import load_store_config
from hub.auth import digest, new_token
from hub.dispatcher import Batch
from hub.notify import Notifier
from hub.push import PushKeys
from hub.store import Credentials
from tests.helpers import Api, Recorder, event, running_hub, wait_until, write_store


class FakeNtfy:
    """An HTTP server that records every request; ``answers`` are the statuses to give, in
    order (then 200); ``delay_s`` holds each answer back."""

    def __init__(self, answers=(), delay_s: float = 0.0):
        self.requests: list[dict] = []
        self.answers = list(answers)
        self.delay_s = delay_s
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "at": time.monotonic()})
                time.sleep(outer.delay_s)
                status = outer.answers.pop(0) if outer.answers else 200
                reply = json.dumps({"id": "x", "event": "message"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def json(self, i: int = -1) -> dict:
        return json.loads(self.requests[i]["body"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ntfy():
    server = FakeNtfy()
    yield server
    server.close()


def notify_store(tmp_path, broker_url: str, ntfy_url: str, webhook: str | None = None, demo: bool = True,
                 public_url: bool = True):
    """A store whose Ana has an ntfy topic; ``demo=False``: sign-in on; ``public_url``: the
    hub's address is set (the buttons need it)."""
    port = free_port()
    path = write_store(tmp_path / "store.toml", broker_url=broker_url, http_port=port, demo=demo)
    text = path.read_text()
    mode = f"demo = {'true' if demo else 'false'}"
    if public_url:
        text = text.replace(mode, f'{mode}\npublic_url = "http://127.0.0.1:{port}"')
    text = text.replace('id = "ana"\nname = "Ana"', 'id = "ana"\nname = "Ana"\nntfy_topic = "callbell-ana-7Qx2"')
    text += f'\n[notify]\nntfy_url = "{ntfy_url}"\n' + (f'webhook_url = "{webhook}"\n' if webhook else "")
    path.write_text(text)
    return path, port


def test_a_new_alert_is_published_to_ntfy_as_json_with_buttons_that_call_the_hub(tmp_path, broker, ntfy):
    path, port = notify_store(tmp_path, broker.url, ntfy.url)
    recorder = Recorder(broker.url, [])
    with running_hub(path) as hub:
        hub.api.ok("POST", "/api/v1/associates/ana/state", {"state": "available"})
        recorder.publish("callbell/test-store/room/room-2/event", event("n-1", reason="size"))
        wait_until(lambda: ntfy.requests, what="a request to ntfy")
        request = ntfy.requests[0]
        assert request["path"] == "/"  # JSON goes to the server root, not the topic URL
        assert request["headers"]["Content-Type"] == "application/json"
        message = ntfy.json(0)
        call = hub.api.ok("GET", "/api/v1/calls?status=open")[0]
        base = f"http://127.0.0.1:{port}"
        token = hub.notifier.keys.alert_token(call["id"], call["pressed_ts"], "ana")
        assert message == {
            "topic": "callbell-ana-7Qx2",
            "title": "Room 2 — another size",
            "message": message["message"],
            "priority": 4,
            "tags": ["bell", "size"],
            "click": f"{base}/phone",
            "actions": [
                {"action": "http", "label": label, "url": f"{base}/api/v1/push/act",
                 "method": "POST", "headers": {"Content-Type": "application/json"},
                 "body": json.dumps({"token": token, "call": call["id"], "associate": "ana", "action": verb},
                                    separators=(",", ":")), "clear": True}
                for label, verb in (("On my way", "acknowledge"), ("Not me", "decline"))
            ],
        }
        assert message["message"].startswith("Waiting 0:0")
        assert set(message) <= {"topic", "message", "title", "tags", "priority", "actions", "click", "attach",
                                "markdown", "icon", "filename", "delay", "email", "call"}  # ntfy's fields
        # Tapping "On my way" is the phone sending exactly what the action says.
        action = message["actions"][0]
        status, body = Api("").request(action["method"], action["url"], raw=action["body"].encode(),
                                       headers=action["headers"])
        assert status == 200 and body["status"] == "acknowledged" and body["acknowledged_by"] == "ana"
        time.sleep(0.3)
        assert len(ntfy.requests) == 1, "one alert, one push: later changes of the call push nothing"
    recorder.close()


def staff_token(hub, role: str) -> dict:
    """An API token of ``role`` made as ``callbell token create`` makes it; its header."""
    token = new_token()
    Credentials(hub.config.database.path).add_token(f"{role}-{time.monotonic_ns()}", role, digest(token), time.time())
    return {"Authorization": f"Bearer {token}"}


def tap(action: dict) -> tuple[int, object]:
    """What ntfy's app does when its button is tapped: the action's method, URL, headers and
    body, exactly (docs.ntfy.sh/publish, "Send HTTP request"); no cookie, no other header."""
    return Api("").request(action["method"], action["url"], raw=action["body"].encode(), headers=action["headers"])


def test_with_sign_in_on_the_ntfy_buttons_act_with_their_signed_token_and_a_tampered_one_is_refused(
        tmp_path, broker, ntfy):
    path, port = notify_store(tmp_path, broker.url, ntfy.url, demo=False)
    recorder = Recorder(broker.url, [])
    with running_hub(path) as hub:
        manager, admin = staff_token(hub, "manager"), staff_token(hub, "admin")
        status, _ = hub.api.request("POST", "/api/v1/associates/ana/state", {"state": "available"}, headers=manager)
        assert status == 200
        recorder.publish("callbell/test-store/room/room-1/event", event("s-1"))
        wait_until(lambda: ntfy.requests, what="the alert at ntfy")
        on_my_way, not_me = ntfy.json(0)["actions"]
        call_id = json.loads(on_my_way["body"])["call"]
        assert on_my_way["url"] == f"http://127.0.0.1:{port}/api/v1/push/act"

        # Without sign-in, the call's own routes refuse what the old buttons sent.
        status, _ = Api(f"http://127.0.0.1:{port}").post(f"/api/v1/calls/{call_id}/acknowledge", {"associate": "ana"})
        assert status == 401
        # A token changed by one character, or moved to another associate or call, is refused.
        body = json.loads(on_my_way["body"])
        flipped = body["token"][:-1] + ("A" if body["token"][-1] != "A" else "B")
        for forged in ({**body, "token": flipped}, {**body, "associate": "ben"}, {**body, "call": "c-000099"},
                       {k: v for k, v in body.items() if k != "associate"}):
            status, answer = tap({**on_my_way, "body": json.dumps(forged)})
            assert status == 401 and answer["error"]["code"] == "unauthorized", forged
        refused = lambda: [r for r in hub.api.request("GET", "/api/v1/rejected", headers=admin)[1]
                           if "alert token" in r["reason"]]
        assert wait_until(refused, what="the forged taps recorded")[0]["topic"].startswith("POST /api/v1/push/act")

        status, answer = tap(not_me)
        assert status == 200 and answer["status"] == "open" and "ana" in answer["declined"]
        status, answer = tap(on_my_way)  # she changed her mind: her other button, the same token
        assert status == 200 and (answer["status"], answer["acknowledged_by"]) == ("acknowledged", "ana")
    recorder.close()


def test_the_hub_warns_once_at_start_that_ntfy_alerts_cannot_be_acted_on_without_its_public_url(
        tmp_path, broker, ntfy, caplog):
    path, _ = notify_store(tmp_path, broker.url, ntfy.url, public_url=False)
    recorder = Recorder(broker.url, [])
    with caplog.at_level("WARNING", logger="callbell.hub.notify"), running_hub(path) as hub:
        warnings = [r.getMessage() for r in caplog.records if r.name == "callbell.hub.notify"]
        assert len(warnings) == 1 and "[http] public_url is not set" in warnings[0]
        hub.api.ok("POST", "/api/v1/associates/ana/state", {"state": "available"})
        recorder.publish("callbell/test-store/room/room-1/event", event("w-0"))
        wait_until(lambda: ntfy.requests, what="the alert at ntfy")
        assert "actions" not in ntfy.json(0), "no buttons that would fail"
    recorder.close()


def test_a_public_url_on_the_hubs_own_loopback_is_named_as_unreachable_for_phones():
    people = {"ana": {"ntfy_topic": "t", "ntfy_url": "https://ntfy.sh"}}
    assert "cannot reach" in notify.action_problem("http://127.0.0.1:8080", people)
    assert "cannot reach" in notify.action_problem("https://localhost", people)
    assert notify.action_problem("https://callbell.store.lan", people) is None
    assert notify.action_problem(None, {"ana": {"ntfy_topic": None, "ntfy_url": None}}) is None


def test_an_alert_token_fits_one_call_press_and_associate_and_no_other(tmp_path):
    keys = PushKeys.load_or_create(tmp_path / "vapid-private.pem")
    token = keys.alert_token("c-000001", 1765000000.25, "ana")
    assert len(token) == 43 and keys.alert_token_matches(token, "c-000001", 1765000000.25, "ana")
    assert not keys.alert_token_matches(token, "c-000001", 1765000999.5, "ana")  # the same id, a later call
    assert not keys.alert_token_matches(token, "c-000002", 1765000000.25, "ana")
    assert not keys.alert_token_matches(token, "c-000001", 1765000000.25, "ben")
    other = PushKeys.load_or_create(tmp_path / "another.pem")  # another hub's key
    assert not other.alert_token_matches(token, "c-000001", 1765000000.25, "ana")


def test_the_webhook_gets_every_alert_and_every_call_change(tmp_path, broker, ntfy):
    hook = FakeNtfy()
    path, _ = notify_store(tmp_path, broker.url, ntfy.url, webhook=hook.url + "/callbell")
    recorder = Recorder(broker.url, [])
    try:
        with running_hub(path) as hub:
            hub.api.ok("POST", "/api/v1/associates/ana/state", {"state": "available"})
            recorder.publish("callbell/test-store/room/room-1/event", event("w-1"))
            wait_until(lambda: hook.requests, what="the webhook")
            first = hook.json(0)
            assert hook.requests[0]["path"] == "/callbell"
            assert first["kind"] == "alert" and first["associate"] == {"id": "ana", "name": "Ana"}
            assert first["step"] == 0 and first["call"]["room"] == "room-1" and first["call"]["status"] == "open"
            call = first["call"]["id"]
            hub.api.ok("POST", f"/api/v1/calls/{call}/done", {"associate": "ana"})
            wait_until(lambda: any(json.loads(r["body"])["call"]["status"] == "done" for r in hook.requests),
                       what="the webhook hears the call is done")
            assert json.loads(hook.requests[-1]["body"])["kind"] == "call"
    finally:
        recorder.close()
        hook.close()


def row(call="c-000001", alerted=(), status="open", pressed_at=None, **extra) -> dict:
    """A stored calls row, as the dispatcher hands it to its communicators."""
    now = time.time()
    return {"id": call, "room": "room-1", "zone": "a", "reason": "help", "status": status,
            "pressed_at": pressed_at or now - 5, "reminders": 0, "overdue": 0,
            "alerted": json.dumps([{"associate": a, "at": at, "step": step} for a, at, step in alerted]),
            "declined": "[]", **extra}


def notifier(url: str, **kw) -> Notifier:
    people = {"ana": {"name": "Ana", "ntfy_topic": "t-ana", "ntfy_url": url},
              "ben": {"name": "Ben", "ntfy_topic": "t-ben", "ntfy_url": url}}
    from zoneinfo import ZoneInfo
    return Notifier(tz=ZoneInfo("UTC"), rooms={"room-1": "Room 1"}, people=people,
                    public_url="http://hub.lan:8080", **kw).start()


def batch_of(*rows) -> Batch:
    return Batch(calls={r["id"]: (i + 1, r) for i, r in enumerate(rows)})


def test_a_later_escalation_step_is_urgent_and_says_who_else_was_asked(ntfy):
    n = notifier(ntfy.url)
    now = time.time()
    n.send(batch_of(row(alerted=[("ana", now - 1, 0)])))
    n.send(batch_of(row(alerted=[("ana", now - 1, 0), ("ben", now, 1)])))
    wait_until(lambda: len(ntfy.requests) == 2, what="two pushes")
    first, second = ntfy.json(0), ntfy.json(1)
    assert (first["topic"], first["priority"], first["tags"][0]) == ("t-ana", 4, "bell")
    assert (second["topic"], second["priority"], second["tags"][0]) == ("t-ben", 5, "rotating_light")
    assert "Also asked: Ana" in second["message"]
    n.stop()


def test_send_never_waits_for_the_network(ntfy):
    ntfy.delay_s = 2.0  # a server that takes its time
    n = notifier(ntfy.url)
    now = time.time()
    started = time.perf_counter()
    for i in range(20):
        n.send(batch_of(row(f"c-{i:06d}", alerted=[("ana", now, 0)])))
    assert time.perf_counter() - started < 0.1, "the dispatcher thread only queues"
    n.stop(timeout_s=0.1)


def test_a_full_queue_drops_with_a_warning_instead_of_blocking(ntfy, monkeypatch, caplog):
    monkeypatch.setattr(notify, "QUEUE_SIZE", 2)
    ntfy.delay_s = 1.0
    n = notifier(ntfy.url)
    now = time.time()
    for i in range(6):
        n.send(batch_of(row(f"c-{i:06d}", alerted=[("ana", now, 0)])))
    assert n.dropped >= 3
    assert "notification queue full" in caplog.text
    n.stop(timeout_s=0.1)


def test_server_errors_are_retried_with_backoff_and_client_errors_are_not(caplog):
    server = FakeNtfy(answers=[503, 502])
    try:
        n = notifier(server.url, backoff_s=0.1)
        n.send(batch_of(row(alerted=[("ana", time.time(), 0)])))
        wait_until(lambda: n.delivered == 1, what="delivered on the third try")
        gaps = [b["at"] - a["at"] for a, b in zip(server.requests, server.requests[1:])]
        assert len(server.requests) == 3 and gaps[0] >= 0.1 and gaps[1] >= 0.2  # 0.1 s, then doubled
        server.answers = [400]
        n.send(batch_of(row("c-000002", alerted=[("ana", time.time(), 0)])))
        wait_until(lambda: n.failed == 1, what="given up")
        time.sleep(0.3)
        assert len(server.requests) == 4, "a 400 is not retried"
        assert "not delivered" in caplog.text
        n.stop()
    finally:
        server.close()


def test_an_unreachable_server_is_logged_never_raised(caplog):
    n = notifier(f"http://127.0.0.1:{free_port()}", backoff_s=0.01)
    n.send(batch_of(row(alerted=[("ana", time.time(), 0)])))
    wait_until(lambda: n.failed == 1, what="given up")
    assert "not delivered" in caplog.text
    n.stop()


def test_old_alerts_are_not_pushed_again_after_a_restart_nor_calls_already_taken(ntfy):
    n = notifier(ntfy.url)
    long_ago = time.time() - notify.FRESH_S - 5
    n.send(batch_of(row(alerted=[("ana", long_ago, 0)])))  # the first change after a restart
    n.send(batch_of(row("c-000002", status="acknowledged", alerted=[("ben", time.time(), 0)])))
    time.sleep(0.3)
    assert ntfy.requests == []
    n.stop()


def test_an_alert_taken_by_someone_while_queued_is_not_pushed(ntfy):
    ntfy.delay_s = 0.5
    n = notifier(ntfy.url)
    now = time.time()
    n.send(batch_of(row("c-000001", alerted=[("ana", now, 0)])))  # occupies the worker
    n.send(batch_of(row("c-000002", alerted=[("ben", now, 0)])))
    n.send(batch_of(row("c-000002", status="acknowledged", alerted=[("ben", now, 0)], acknowledged_by="ana")))
    time.sleep(1.0)
    assert [json.loads(r["body"])["topic"] for r in ntfy.requests] == ["t-ana"]
    n.stop()


def test_an_ntfy_topic_needs_a_server(tmp_path):
    path = write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1883", http_port=free_port())
    path.write_text(path.read_text().replace('id = "ben"', 'id = "ben"\nntfy_topic = "ben-topic"'))
    with pytest.raises(ConfigError, match="ntfy_topic: no ntfy server"):
        load_store_config(path)


def test_nothing_configured_means_no_notifier(tmp_path):
    path = write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1883", http_port=free_port())
    assert Notifier.from_config(load_store_config(path)) is None
