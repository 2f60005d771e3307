"""The outgoing webhook (hub.notify): every call change as docs/spec/PROTOCOL.md's call object, signed with
HMAC-SHA256 over the timestamp and the raw body, retried after a 5xx — against a real local
HTTP server that verifies signatures the way docs/integrations.md tells a receiver to."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from callbell.broker import free_port
from callbell.settings import ConfigError
from hub.config import load_store_config
from tests.helpers import event, running_hub, wait_until, write_store

SECRET = "s3cret-for-the-webhook-test-0123"

#: A receiver refuses a timestamp further than this from its own clock, seconds.
TOLERANCE_S = 300


def verify(secret: str, headers: dict, body: bytes, now: float) -> bool:
    """What a receiver does (docs/integrations.md), written independently of hub.notify."""
    timestamp = headers.get("X-Callbell-Timestamp", "")
    signature = headers.get("X-Callbell-Signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, "sha256=" + expected)


class Receiver:
    """A webhook receiver: answers ``answers`` in order (then 200), and records every request
    with whether its signature verified."""

    def __init__(self, secret: str, answers=()):
        self.requests: list[dict] = []
        self.answers = list(answers)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers)
                ok = verify(secret, headers, body, time.time())
                status = outer.answers.pop(0) if outer.answers else (200 if ok else 401)
                outer.requests.append({"headers": headers, "body": body, "verified": ok, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/callbell"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def webhook_store(tmp_path, broker_url: str, url: str, secret: str | None = SECRET):
    path = write_store(tmp_path / "store.toml", broker_url=broker_url, http_port=free_port())
    text = path.read_text() + f'\n[notify]\nwebhook_url = "{url}"\n'
    if secret is not None:
        text += f'webhook_secret = "{secret}"\n'
    path.write_text(text)
    return path


def test_a_call_change_is_posted_as_the_call_object_with_a_signature_that_verifies(tmp_path, broker, recorder, topics):
    receiver = Receiver(SECRET)
    try:
        with running_hub(webhook_store(tmp_path, broker.url, receiver.url)) as hub:
            recorder.publish(topics.event("room-1"), event("e-wh-1"))
            wait_until(lambda: receiver.requests, what="the webhook")
            call_id = hub.api.ok("GET", "/api/v1/calls?status=open")[0]["id"]
            hub.api.ok("POST", f"/api/v1/calls/{call_id}/acknowledge", {"associate": "ben"})
            wait_until(lambda: any(json.loads(r["body"]).get("call", {}).get("status") == "acknowledged"
                                   for r in receiver.requests), what="the acknowledged call on the webhook")
            on_mqtt = wait_until(lambda: [c for c in recorder.json_of(topics.call(call_id))
                                          if c["status"] == "acknowledged"], what="the call topic")
        assert all(r["verified"] for r in receiver.requests)
        posted = [json.loads(r["body"]) for r in receiver.requests]
        change = next(p for p in posted if p["kind"] == "call" and p["call"]["status"] == "acknowledged")
        assert change["call"] == on_mqtt[-1]  # the very object of call/{call} (docs/spec/PROTOCOL.md)
        request = next(r for r in receiver.requests if json.loads(r["body"]) == change)
        assert request["headers"]["X-Callbell-Event"] == "call"
        assert request["headers"]["Content-Type"] == "application/json"
        assert len({r["headers"]["X-Callbell-Delivery"] for r in receiver.requests}) == len(receiver.requests)
    finally:
        receiver.close()


def test_a_delivery_is_retried_after_a_500_with_the_same_delivery_id_and_a_valid_signature(tmp_path, broker,
                                                                                            recorder, topics):
    receiver = Receiver(SECRET, answers=[500])
    try:
        with running_hub(webhook_store(tmp_path, broker.url, receiver.url)) as hub:
            recorder.publish(topics.event("room-2"), event("e-wh-2"))
            wait_until(lambda: len(receiver.requests) >= 2, timeout=10, what="a retry after the 500")
            wait_until(lambda: hub.notifier.delivered >= 1, what="the delivery counted")
            assert hub.notifier.failed == 0
        first, second = receiver.requests[:2]
        assert first["status"] == 500 and second["status"] == 200
        assert first["body"] == second["body"]
        assert first["headers"]["X-Callbell-Delivery"] == second["headers"]["X-Callbell-Delivery"]
        assert first["verified"] and second["verified"]
    finally:
        receiver.close()


def test_a_tampered_body_a_wrong_secret_or_an_old_timestamp_does_not_verify(tmp_path, broker, recorder, topics):
    receiver = Receiver(SECRET)
    try:
        with running_hub(webhook_store(tmp_path, broker.url, receiver.url)):
            recorder.publish(topics.event("room-3"), event("e-wh-3"))
            wait_until(lambda: receiver.requests, what="the webhook")
        r = receiver.requests[0]
        assert r["verified"]
        now = int(r["headers"]["X-Callbell-Timestamp"])
        assert not verify(SECRET, r["headers"], r["body"].replace(b"room-3", b"room-1"), now)
        assert not verify("another-secret-of-sixteen+", r["headers"], r["body"], now)
        assert not verify(SECRET, r["headers"], r["body"], now + TOLERANCE_S + 1)  # a replay, later
        replayed = {**r["headers"], "X-Callbell-Timestamp": str(now + 600)}  # a fresh timestamp…
        assert not verify(SECRET, replayed, r["body"], now + 600)            # …breaks the signature
    finally:
        receiver.close()


def test_without_a_secret_the_webhook_is_sent_unsigned(tmp_path, broker, recorder, topics):
    receiver = Receiver(SECRET)
    try:
        with running_hub(webhook_store(tmp_path, broker.url, receiver.url, secret=None)):
            recorder.publish(topics.event("room-1"), event("e-wh-4"))
            wait_until(lambda: receiver.requests, what="the webhook")
        headers = receiver.requests[0]["headers"]
        assert "X-Callbell-Signature" not in headers and "X-Callbell-Timestamp" not in headers
        assert json.loads(receiver.requests[0]["body"])["kind"] == "call"
    finally:
        receiver.close()


def test_a_short_webhook_secret_is_a_config_error_naming_the_key(tmp_path):
    path = webhook_store(tmp_path, "mqtt://127.0.0.1:1883", "http://127.0.0.1:9/x", secret="short")
    with pytest.raises(ConfigError) as e:
        load_store_config(path)
    assert "notify.webhook_secret" in str(e.value)
