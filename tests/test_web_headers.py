"""What the hub tells browsers and whom it believes (issue 17, points 5 and 6): security
headers on every answer, only page files under /static, no open API explorer, HEAD on the
pages, and X-Forwarded-For from configured proxies only."""
from __future__ import annotations

import http.client
import time

import pytest

from hub.api import security_headers
from hub.api.routes import session
from hub.auth import digest, new_token
from hub.store import Credentials
from tests.helpers import running_hub, wait_until
from tests.test_auth import Client, bearer, secured_store

BROWSER_RULES = {
    "content-security-policy": security_headers.CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def head_or_get(port: int, method: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture
def secured(tmp_path, broker, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())
    with running_hub(secured_store(tmp_path, broker.url)) as hub:
        yield hub


def test_every_answer_carries_the_browser_rules_pages_api_files_and_errors(secured):
    for method, path, status in (("GET", "/", 200), ("GET", "/phone", 200), ("GET", "/stats", 200),
                                 ("GET", "/sw.js", 200), ("GET", "/manifest.webmanifest", 200),
                                 ("GET", "/static/app.js", 200), ("GET", "/api/v1/session", 200),
                                 ("GET", "/api/v1/calls", 401), ("GET", "/nowhere", 404),
                                 ("POST", "/api/v1/session", 422)):
        got, headers, _ = head_or_get(secured.http_port, method, path)
        assert got == status, (method, path, got)
        for name, value in BROWSER_RULES.items():
            assert headers.get(name) == value, (path, name, headers.get(name))
    assert "frame-ancestors 'none'" in BROWSER_RULES["content-security-policy"]
    assert "script-src 'self'" in BROWSER_RULES["content-security-policy"]


def test_only_page_files_are_served_from_static_not_the_python_package_around_them(secured):
    port = secured.http_port
    assert head_or_get(port, "GET", "/static/live.js")[0] == 200
    assert head_or_get(port, "GET", "/static/icon.svg")[0] == 200
    for path in ("/static/__init__.py", "/static/__pycache__/__init__.cpython-311.pyc", "/static/",
                 "/static/../hub/auth.py", "/static/%2e%2e/pyproject.toml"):
        status, _, body = head_or_get(port, "GET", path)
        assert status == 404, (path, status)
        assert b"import" not in body and b"scrypt" not in body


def test_no_api_explorer_and_the_description_needs_credentials_once_sign_in_is_on(secured):
    port = secured.http_port
    assert head_or_get(port, "GET", "/docs")[0] == 404
    assert head_or_get(port, "GET", "/redoc")[0] == 404
    assert head_or_get(port, "GET", "/openapi.json")[0] == 401
    token = new_token()
    Credentials(secured.config.database.path).add_token("integrator", "device", digest(token), time.time())
    status, _, body = head_or_get(port, "GET", "/openapi.json", bearer(token))
    assert status == 200 and b'"/api/v1/health"' in body


def test_the_pages_answer_head_like_get_without_a_body(secured):
    for path in ("/", "/phone", "/stats", "/sw.js", "/manifest.webmanifest", "/static/phone.js"):
        status, headers, body = head_or_get(secured.http_port, "HEAD", path)
        _, got_headers, got_body = head_or_get(secured.http_port, "GET", path)
        assert status == 200 and body == b"", (path, status)
        assert headers["content-length"] == str(len(got_body)) and headers["content-type"] == got_headers["content-type"]


def _wrong_pins_from(port: int, forwarded: list[str]) -> list[int]:
    """Wrong PINs for Ana, each naming another address in X-Forwarded-For; the statuses."""
    statuses = []
    for address in forwarded:
        status, _ = Client(port).request("POST", "/api/v1/session", {"associate": "ana", "pin": "0000"},
                                         {"X-Forwarded-For": address})
        statuses.append(status)
    return statuses


def test_x_forwarded_for_is_ignored_unless_the_store_names_its_proxy(tmp_path, broker, monkeypatch):
    """uvicorn believes X-Forwarded-For from 127.0.0.1 by default, and from whatever
    FORWARDED_ALLOW_IPS says: a client on the hub's machine, or any client behind an unnamed
    proxy, could pose as a new address at every try and never be slowed down."""
    monkeypatch.setattr(session, "_failures", session._Failures())
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    with running_hub(secured_store(tmp_path, broker.url)) as hub:
        statuses = _wrong_pins_from(hub.http_port, [f"10.9.0.{i}" for i in range(1, 12)])
        assert 429 in statuses, statuses  # the tries counted against 127.0.0.1, the real peer
        wait_until(lambda: len(hub.reader.rejected(100)) >= session.FREE_TRIES, what="the refusals recorded")
        assert {r["source"] for r in hub.reader.rejected(100) if r["channel"] == "http"} == {"127.0.0.1"}


def test_a_named_proxy_is_believed_for_its_clients(tmp_path, broker, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())
    path = secured_store(tmp_path, broker.url)
    path.write_text(path.read_text().replace("demo = false", 'demo = false\ntrusted_proxies = ["127.0.0.1"]'))
    with running_hub(path) as hub:
        statuses = _wrong_pins_from(hub.http_port, ["10.9.0.7"] * 12 + ["10.9.0.8"])
        assert statuses[-1] == 401, statuses  # another client behind the proxy is not slowed by the first
        assert 429 in statuses[:12]
        wait_until(lambda: {r["source"] for r in hub.reader.rejected(100) if r["channel"] == "http"}
                   >= {"10.9.0.7", "10.9.0.8"}, what="refusals recorded under the clients' addresses")
