"""Phone sign-in (POST /api/v1/session) and the hub serving HTTPS itself."""
from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import subprocess
import urllib.request

import pytest

from callbell.broker import free_port
from callbell.clock import FakeClock
from callbell.protocol import Rejection
from callbell.settings import ConfigError
from hub.api.routes import session
from hub.config import load_store_config
from hub.dispatcher import Batch
from tests.helpers import running_hub, wait_until, write_store


def with_pins(path, **pins):
    text = path.read_text()
    for who, pin in pins.items():
        text = text.replace(f'id = "{who}"\n', f'id = "{who}"\npin = "{pin}"\n', 1)
    path.write_text(text)
    return path


def test_without_pins_anyone_picks_themselves(hub):
    options = hub.api.ok("GET", "/api/v1/session")
    assert options["pin_required"] is False and options["secure"] is False
    assert [a["id"] for a in options["associates"]] == ["ana", "ben", "maria"]
    signed = hub.api.ok("POST", "/api/v1/session", {"associate": "ben"})
    assert signed["associate"] == {"id": "ben", "name": "Ben", "role": "associate", "zone": "b"}
    assert "anyone on the network can use the API" in signed["note"]  # says plainly it is not security
    status, body = hub.api.post("/api/v1/session", {"associate": "zoe"})
    assert status == 400 and body["error"]["code"] == "unknown_associate"


def test_with_pins_the_right_pin_signs_in_and_wrong_ones_slow_down_the_next_try(tmp_path, broker, monkeypatch):
    path = with_pins(write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port()),
                     ana="1234", maria="8642")
    monkeypatch.setattr(session, "_failures", session._Failures())
    with running_hub(path, clock=FakeClock(time.time())) as hub:
        options = hub.api.ok("GET", "/api/v1/session")
        assert options["pin_required"] is True
        assert [a["id"] for a in options["associates"]] == ["ana", "maria"]
        assert "1234" not in str(options)
        assert hub.api.post("/api/v1/session", {"associate": "ana", "pin": "1234"})[0] == 200
        status, body = hub.api.post("/api/v1/session", {"associate": "ana", "pin": "0000"})
        assert (status, body["error"]["code"]) == (401, "wrong_pin")
        status, body = hub.api.post("/api/v1/session", {"associate": "ben", "pin": "1234"})
        assert (status, body["error"]["code"]) == (403, "no_pin")
        for _ in range(session.FREE_TRIES - 1):
            hub.api.post("/api/v1/session", {"associate": "ana", "pin": "0000"})
        status, body = hub.api.post("/api/v1/session", {"associate": "ana", "pin": "1234"})
        assert (status, body["error"]["code"]) == (429, "locked")  # even the right PIN, for BACKOFF_FIRST_S
        hub.clock.advance(session.BACKOFF_FIRST_S)
        assert hub.api.post("/api/v1/session", {"associate": "ana", "pin": "1234"})[0] == 200
        assert hub.api.post("/api/v1/session", {"associate": "maria", "pin": "8642"})[0] == 200  # others unaffected


def test_a_pin_is_4_to_8_digits(tmp_path):
    path = with_pins(write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1883",
                                 http_port=free_port()), ana="12a")
    with pytest.raises(ConfigError, match="pin"):
        load_store_config(path)


def test_the_hub_serves_https_itself_with_the_configured_certificate_live_stream_included(tmp_path, broker):
    cert, key = tmp_path / "hub.crt", tmp_path / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    path = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    path.write_text(path.read_text().replace("demo = true", 'demo = true\ncertfile = "hub.crt"\nkeyfile = "hub.key"'))
    with running_hub(path) as hub:
        trust = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"https://127.0.0.1:{hub.http_port}/api/v1/health", context=trust, timeout=5) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.URLError):  # a phone that does not trust the certificate
            urllib.request.urlopen(f"https://127.0.0.1:{hub.http_port}/api/v1/health", timeout=5)

        # The live stream over TLS: messages written straight to the page's (TLS) transport.
        raw = socket.create_connection(("127.0.0.1", hub.http_port), timeout=10)
        with trust.wrap_socket(raw, server_hostname="127.0.0.1") as page:
            page.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            got = bytearray()
            while b"event: snapshot" not in got:
                got.extend(page.recv(65536))
            [client] = list(hub.stream._clients)
            assert client.connection.direct is not None
            wait_until(lambda: client.parked, what="the page waiting for its next message")
            hub.stream.send(Batch(rejected=[Rejection("test/tls", "over TLS", "x")]))
            while b'"reason":"over TLS"' not in got:
                got.extend(page.recv(65536))


def test_a_certificate_needs_its_key(tmp_path):
    path = write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1883", http_port=free_port())
    path.write_text(path.read_text().replace("demo = true", 'demo = true\ncertfile = "hub.crt"'))
    with pytest.raises(ConfigError, match="keyfile"):
        load_store_config(path)
