"""The hub's web side with authentication on (``[http] demo = false``): roles, PIN and password
sign-in, sessions, CSRF, API tokens made with the real CLI (docs/security.md, "Hub web")."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from fastapi import APIRouter, FastAPI

from callbell.broker import free_port
from callbell.clock import FakeClock
from callbell.protocol import Topics
from callbell.settings import ConfigError
from hub.api import app as hub_app
from hub import stream as hub_stream
from hub.api.routes import session
from hub.auth import CSRF_HEADER, RANK, ROLES, SESSION_COOKIE, SESSION_TTL_S, digest, hash_password, new_token
from hub.config import load_store_config
from hub.store import Credentials
from tests.helpers import ROOT, Recorder, event, running_hub, wait_until, write_store

MARIA_PASSWORD = "fitting-rooms-42"
MARIA_HASH = hash_password(MARIA_PASSWORD)

#: What each route needs at least. A route of the app missing here fails
#: test_every_route_of_the_app_is_in_the_role_table: a new route must be classified.
ROLE_OF = {
    ("GET", "/api/v1/health"): "device",
    ("GET", "/api/v1/devices"): "device",
    ("GET", "/metrics"): "device",
    ("GET", "/openapi.json"): "device",
    ("GET", "/api/v1/store"): "display",
    ("GET", "/api/v1/calls"): "display",
    ("GET", "/api/v1/calls/{call}"): "display",
    ("POST", "/api/v1/calls/{call}/acknowledge"): "associate",
    ("POST", "/api/v1/calls/{call}/answer"): "associate",
    ("POST", "/api/v1/calls/{call}/done"): "associate",
    ("POST", "/api/v1/calls/{call}/decline"): "associate",
    ("POST", "/api/v1/calls/{call}/receipt"): "associate",
    ("GET", "/api/v1/associates"): "display",
    ("GET", "/api/v1/associates/{associate}"): "display",
    ("POST", "/api/v1/associates/{associate}/state"): "associate",
    ("POST", "/api/v1/associates/{associate}/zone"): "associate",
    ("POST", "/api/v1/associates/{associate}/heard"): "associate",
    ("GET", "/api/v1/push/key"): "associate",
    ("POST", "/api/v1/push/subscriptions"): "associate",
    ("DELETE", "/api/v1/push/subscriptions"): "associate",
    ("GET", "/api/v1/stream"): "display",
    ("GET", "/api/v1/stats"): "manager",
    ("GET", "/api/v1/stats/heatmap"): "manager",
    ("GET", "/api/v1/stats/distribution"): "manager",
    ("GET", "/api/v1/stats/staffing"): "manager",
    ("GET", "/api/v1/stats/service"): "manager",
    ("GET", "/api/v1/stats/overview"): "manager",
    ("GET", "/api/v1/stats/receipts"): "manager",
    ("GET", "/api/v1/calls.csv"): "manager",
    ("GET", "/api/v1/events.csv"): "manager",
    ("GET", "/api/v1/events.jsonl"): "manager",
    ("GET", "/api/v1/rejected"): "admin",
    ("GET", "/api/v1/troubles"): "display",
    ("POST", "/api/v1/troubles/{trouble}/acknowledge"): "associate",
    ("POST", "/api/v1/devices/{device}/retire"): "manager",
}
#: Bodies of the routes that take one.
BODIES = {"acknowledge": {"associate": "ana"}, "answer": {"associate": "ana"}, "done": {"associate": "ana"},
          "decline": {"associate": "ana"}, "state": {"state": "available"}, "zone": {"zone": "a"},
          "receipt": {"associate": "ana", "alerted_at": "2026-01-01T00:00:00+00:00", "stage": "delivered"},
          "heard": {"source": "phone"},
          "subscriptions": {"associate": "ana", "endpoint": "https://fcm.googleapis.com/fcm/send/test-phone",
                            "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}}}


class Client:
    """An HTTP client that shows response headers and keeps the session cookie it is given, and
    the browser cookie (session.BROWSER_COOKIE) as a browser would. ``source``: the local
    address to connect from (any of 127.0.0.0/8), to be another client address."""

    def __init__(self, port: int, source: str | None = None):
        self.port, self.source = port, source
        self.cookie: str | None = None
        self.browser: str | None = None
        self.set_cookie: str | None = None

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, object]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                          source_address=(self.source, 0) if self.source else None)
        sent = {"Content-Type": "application/json", **(headers or {})}
        cookies = [f"{SESSION_COOKIE}={self.cookie}"] if self.cookie else []
        if self.browser and path.startswith("/api/v1/session"):  # the cookie's path
            cookies.append(f"{session.BROWSER_COOKIE}={self.browser}")
        if cookies:
            sent["Cookie"] = "; ".join(cookies)
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, sent)
            r = conn.getresponse()
            raw = r.read()
            self.headers = r.headers
            self.set_cookie = None
            for header in r.headers.get_all("Set-Cookie") or ():
                name, _, rest = header.partition("=")
                value = rest.split(";")[0].strip('"') or None
                if name == SESSION_COOKIE:
                    self.set_cookie, self.cookie = header, value
                elif name == session.BROWSER_COOKIE:
                    self.browser = value
            if (r.getheader("Content-Type") or "").startswith("application/json"):
                return r.status, json.loads(raw)
            return r.status, raw.decode(errors="replace")
        finally:
            conn.close()

    def sign_in(self, associate: str, **secret) -> dict:
        status, body = self.request("POST", "/api/v1/session", {"associate": associate, **secret})
        assert status == 200, body
        return body


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def stream_status(port: int, headers: dict) -> tuple[int, bytes]:
    """The status of GET /api/v1/stream and the first bytes of its body (it never ends)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
    data = b""
    try:
        while b"\r\n\r\n" not in data or (data.startswith(b"HTTP/1.1 200") and b"event:" not in data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return int(data.split(b" ", 2)[1]), data


def secured_store(tmp_path, broker_url: str):
    """A store with authentication on: Ana and Ben have PINs, Maria (manager) a PIN and a password."""
    path = write_store(tmp_path / "store.toml", broker_url=broker_url, http_port=free_port(), demo=False)
    text = path.read_text()
    text = text.replace('id = "ana"\n', 'id = "ana"\npin = "1234"\n', 1)
    text = text.replace('id = "ben"\n', 'id = "ben"\npin = "5678"\n', 1)
    text = text.replace('id = "maria"\n', f'id = "maria"\npin = "8642"\npassword_hash = "{MARIA_HASH}"\n', 1)
    path.write_text(text)
    return path


@pytest.fixture
def clock():
    return FakeClock(time.time())


@pytest.fixture
def secured(tmp_path, broker, clock, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())  # lockouts of other tests
    path = secured_store(tmp_path, broker.url)
    with running_hub(path, clock=clock) as hub:
        hub.client = Client(hub.http_port)
        hub.store_path = path
        yield hub


def make_token(hub, role: str, name: str | None = None) -> str:
    token = new_token()
    Credentials(hub.config.database.path).add_token(name or f"{role}-{time.monotonic_ns()}", role,
                                                    digest(token), time.time())
    return token


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                          input=stdin, cwd=str(ROOT), timeout=60)


def press(broker_url: str, hub, room: str) -> str:
    """Press a room's button as a device does; the new call's id."""
    r = Recorder(broker_url, [])
    try:
        r.publish(Topics("callbell", "test-store").event(room), event(f"e-{room}-{time.monotonic_ns()}"))
    finally:
        r.close()
    calls = wait_until(lambda: [c for c in hub.reader.calls("open") if c["room"] == room], what=f"a call in {room}")
    return calls[0]["id"]


def concrete(method: str, path: str, calls: dict[str, str]) -> tuple[str, dict | None]:
    verb = path.rsplit("/", 1)[-1]
    call = calls["declined" if verb == "decline" else "receipted" if verb == "receipt" else "handled"]
    body = BODIES.get(verb)
    if verb == "receipt":
        body = {**body, "alerted_at": calls["alerted_at"]}
    if verb == "subscriptions" and method == "DELETE":
        path, body = f"{path}?associate=ana&endpoint={BODIES[verb]['endpoint']}", None
    path = path.replace("{trouble}", calls.get("trouble", "")).replace("{device}", "pi-a")
    return path.replace("{call}", call).replace("{associate}", "ana"), body


# -- every route -------------------------------------------------------------------------------
def test_every_route_of_the_app_is_in_the_role_table_with_the_role_it_declares(secured):
    declared = {(m, p): hub_app.required_role(d) for m, p, d in hub_app.api_routes(secured.app)
                if p.startswith(hub_app.GUARDED_PREFIXES) and (m, p) not in hub_app.PUBLIC_ROUTES}
    assert declared == ROLE_OF


def test_every_api_route_and_metrics_refuse_no_credentials_and_a_lower_role_and_serve_the_right_one(
        secured, broker):
    """The associate role is tried as Ana signed in with her PIN (an associate acts only as
    themselves); the others with tokens of exactly the role."""
    client = secured.client
    tokens = {role: make_token(secured, role) for role in ROLES}
    ana = Client(secured.http_port)
    right = {role: bearer(tokens[role]) for role in ROLES}
    right["associate"] = {CSRF_HEADER: ana.sign_in("ana", pin="1234")["csrf"]}
    calls = {"handled": press(broker.url, secured, "room-1"), "declined": press(broker.url, secured, "room-2")}
    # A call Ana is alerted for, so that her phone's receipt for it has an alert to name.
    secured.dispatcher.associate_command("ana", lambda r, now: r.set_state("ana", "available", now, "api")).result(5)
    calls["receipted"] = press(broker.url, secured, "room-3")
    [alert] = wait_until(lambda: json.loads(secured.reader.call(calls["receipted"])["alerted"]), what="Ana alerted")
    calls["alerted_at"] = alert["at"]
    secured.dispatcher.report_trouble("storm", "pi-a", device="pi-a")  # to acknowledge, and a device to retire
    [trouble] = wait_until(lambda: secured.dispatcher.open_troubles(), what="a trouble")
    calls["trouble"] = trouble["id"]
    refused, served = [], []
    for (method, template), role in ROLE_OF.items():
        path, body = concrete(method, template, calls)
        serving = ana if role == "associate" else client
        if path.endswith("/stream"):
            assert stream_status(secured.http_port, {})[0] == 401
            assert stream_status(secured.http_port, bearer(tokens["device"]))[0] == 403
            assert stream_status(secured.http_port, {"Cookie": f"{SESSION_COOKIE}={ana.cookie}"})[0] == 200
            continue
        status, answer = client.request(method, path, body)
        assert status == 401 and answer["error"]["code"] == "unauthorized", (method, path, status, answer)
        assert client.headers["WWW-Authenticate"].startswith("Bearer")
        if role != "device":
            lower = ROLES[RANK[role] - 1]
            status, answer = client.request(method, path, body, bearer(tokens[lower]))
            assert status == 403 and answer["error"]["code"] == "forbidden", (method, path, lower, status)
            assert f"needs {role}" in answer["error"]["message"]
            refused.append(path)
        status, answer = serving.request(method, path, body, right[role])
        assert 200 <= status < 300, (method, path, role, status, answer)
        served.append(path)
    assert len(served) == len(ROLE_OF) - 1 and len(refused) == sum(r != "device" for r in ROLE_OF.values()) - 1


def test_a_route_added_without_a_role_stops_the_app_from_being_built():
    app = FastAPI()
    forgotten = APIRouter(prefix="/api/v1")

    @forgotten.get("/forgotten")
    def open_to_all():
        return {}
    app.include_router(forgotten)
    with pytest.raises(RuntimeError, match="GET /api/v1/forgotten declares no role"):
        hub_app.check_every_route_has_a_role(app)


def test_a_bearer_header_with_an_unknown_token_or_another_scheme_is_refused(secured):
    for header in ({"Authorization": "Bearer cbt_not-a-token"}, {"Authorization": "Basic YW5hOjEyMzQ="}):
        status, body = secured.client.request("GET", "/api/v1/calls", headers=header)
        assert status == 401 and body["error"]["code"] == "unauthorized", header


# -- sessions ----------------------------------------------------------------------------------
def test_a_pin_sign_in_sets_an_httponly_strict_session_cookie_that_opens_the_stream(secured):
    client = secured.client
    signed = client.sign_in("ana", pin="1234")
    assert signed["role"] == "associate" and signed["secure"] is True and signed["csrf"]
    cookie = client.set_cookie
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
    assert f"max-age={SESSION_TTL_S}" in attributes
    assert "secure" not in attributes  # plain HTTP here; over HTTPS the cookie is Secure
    status, data = stream_status(secured.http_port, {"Cookie": f"{SESSION_COOKIE}={client.cookie}"})
    assert status == 200 and b"event: snapshot" in data
    status, again = client.request("GET", "/api/v1/session")  # a reloaded page learns who it is
    assert again["signed_in"]["associate"] == "ana" and again["csrf"] == signed["csrf"]


def _try(client: "Client", associate: str, **secret) -> tuple[int, str | None]:
    status, body = client.request("POST", "/api/v1/session", {"associate": associate, **secret})
    return status, (body.get("error") or {}).get("code") if isinstance(body, dict) else None


def test_wrong_pins_slow_the_next_try_down_doubling_rather_than_lock_the_associate_out(secured, clock):
    client = secured.client
    for _ in range(session.FREE_TRIES):
        assert _try(client, "ana", pin="0000") == (401, "wrong_pin")
    assert _try(client, "ana", pin="1234") == (429, "locked") and client.cookie is None  # even the right PIN
    assert client.headers["Retry-After"] == str(int(session.BACKOFF_FIRST_S))
    assert _try(client, "ben", pin="5678")[0] == 200  # someone else is not held up
    clock.advance(session.BACKOFF_FIRST_S)
    assert _try(client, "ana", pin="0000") == (401, "wrong_pin")  # a try again after 2 s, not 30
    assert _try(client, "ana", pin="1234") == (429, "locked")
    assert client.headers["Retry-After"] == str(int(2 * session.BACKOFF_FIRST_S))  # then 4 s
    clock.advance(2 * session.BACKOFF_FIRST_S)
    assert _try(client, "ana", pin="1234")[0] == 200


def test_strangers_guessing_from_two_addresses_leave_an_associate_signing_in_from_her_own_phone(secured, clock):
    """The attack of issue 17: 25 wrong PINs every 30 s from two addresses for everyone, for a
    few minutes. Before, that locked all of them out (and the manager's password with them)."""
    phone = Client(secured.http_port)
    phone.sign_in("ana", pin="1234")  # her phone, from before the attack
    assert phone.browser
    attackers = [Client(secured.http_port, "127.0.0.2"), Client(secured.http_port, "127.0.0.3")]
    answered = {401: 0, 429: 0}
    for round in range(6):
        clock.advance(30 if round else 0)
        for attacker in attackers:
            for who in ("ana", "ben", "maria"):
                for guess in range(25):
                    status, _ = _try(attacker, who, pin=f"{9000 + guess}")
                    answered[status] += 1
    assert answered[429] > 10 * answered[401]  # the attackers were mostly told to wait
    assert _try(phone, "ana", pin="1234")[0] == 200  # her own browser: straight in
    manager = Client(secured.http_port)  # a PIN attack does not touch the manager's password
    assert manager.sign_in("maria", password=MARIA_PASSWORD)["role"] == "manager"
    stranger = Client(secured.http_port)  # a browser Ben never used waits, as the attacker does
    status, code = _try(stranger, "ben", pin="5678")
    assert (status, code) == (429, "locked")
    assert 0 < int(stranger.headers["Retry-After"]) <= session.ACCOUNT_BACKOFF_MAX_S
    clock.advance(int(stranger.headers["Retry-After"]))
    assert _try(stranger, "ben", pin="5678")[0] == 200


def test_a_known_browser_is_slowed_by_its_own_wrong_tries_only(secured, clock):
    phone = Client(secured.http_port)
    phone.sign_in("ben", pin="5678")
    for _ in range(session.FREE_TRIES):
        assert _try(phone, "ben", pin="0000") == (401, "wrong_pin")  # a stolen phone guesses
    assert _try(phone, "ben", pin="5678") == (429, "locked")
    assert _try(Client(secured.http_port, "127.0.0.4"), "ben", pin="5678")[0] == 200  # Ben elsewhere is not


def test_tries_sent_in_parallel_are_counted_before_the_slow_password_check(secured):
    """16 wrong manager passwords at once: before, all 16 were checked (and all counted only
    after their 85 ms scrypt), though five are allowed."""
    results = []

    def guess(i: int) -> None:
        results.append(_try(Client(secured.http_port), "maria", password=f"not-the-password-{i}"))
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [(401, "wrong_password")] * session.FREE_TRIES + [(429, "locked")] * (16 - session.FREE_TRIES)


def test_password_checks_run_a_few_at_a_time_however_many_addresses_send_them(secured, monkeypatch):
    running, most = [0], [0]
    lock = threading.Lock()
    real = session.check_password

    def counting(password: str, stored: str) -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real(password, stored)
        finally:
            with lock:
                running[0] -= 1
    monkeypatch.setattr(session, "check_password", counting)
    threads = [threading.Thread(target=_try, args=(Client(secured.http_port, f"127.0.1.{a}"), "maria"),
                                kwargs={"password": f"guess-number-{a}-{i}"}) for a in range(1, 5) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] == session.PASSWORD_CHECKS_AT_ONCE


def test_a_manager_signs_in_with_a_password_and_reads_statistics_but_a_pin_gives_the_floor_only(secured):
    manager = secured.client
    status, body = manager.request("POST", "/api/v1/session", {"associate": "maria", "password": "wrong-password"})
    assert (status, body["error"]["code"]) == (401, "wrong_password")
    assert manager.sign_in("maria", password=MARIA_PASSWORD)["role"] == "manager"
    assert manager.request("GET", "/api/v1/stats")[0] == 200
    floor = Client(secured.http_port)
    assert floor.sign_in("maria", pin="8642")["role"] == "associate"
    status, body = floor.request("GET", "/api/v1/stats")
    assert status == 403 and "needs manager" in body["error"]["message"]
    status, body = Client(secured.http_port).request("POST", "/api/v1/session", {"associate": "ana", "password": "x" * 12})
    assert status == 401  # no password configured for her: refused like a wrong one


def test_signing_out_ends_the_session_on_the_hub_not_only_in_the_browser(secured):
    client = secured.client
    client.sign_in("ana", pin="1234")
    kept = client.cookie
    assert client.request("GET", "/api/v1/calls")[0] == 200
    assert client.request("DELETE", "/api/v1/session")[0] == 204
    assert client.cookie is None and "max-age=0" in client.set_cookie.lower()
    client.cookie = kept  # a copy of the cookie kept from before
    assert client.request("GET", "/api/v1/calls")[0] == 401


def test_a_session_past_its_lifetime_is_refused(secured, clock):
    client = secured.client
    client.sign_in("ben", pin="5678")
    clock.advance(SESSION_TTL_S - 60)
    assert client.request("GET", "/api/v1/calls")[0] == 200
    clock.advance(61)
    status, body = client.request("GET", "/api/v1/calls")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert client.request("GET", "/api/v1/session")[1]["signed_in"] is None


def test_the_database_keeps_only_hashes_of_sessions_and_tokens(secured):
    token = make_token(secured, "manager", "kept-hashed")
    secured.client.sign_in("ana", pin="1234")
    dump = "\n".join(sqlite3.connect(str(secured.config.database.path)).iterdump())
    assert digest(token) in dump and digest(secured.client.cookie) in dump
    assert token not in dump and secured.client.cookie not in dump


# -- CSRF --------------------------------------------------------------------------------------
def test_a_cookie_post_needs_the_csrf_header_and_a_bearer_post_does_not(secured):
    client = secured.client
    csrf = client.sign_in("ana", pin="1234")["csrf"]
    path, body = "/api/v1/associates/ana/state", {"state": "break"}
    status, answer = client.request("POST", path, body)
    assert (status, answer["error"]["code"]) == (403, "csrf")
    status, answer = client.request("POST", path, body, {CSRF_HEADER: "0" * len(csrf)})
    assert (status, answer["error"]["code"]) == (403, "csrf")
    status, answer = client.request("POST", path, body, {CSRF_HEADER: csrf})
    assert status == 200 and answer["declared"] == "break"
    other = Client(secured.http_port)
    status, answer = other.request("POST", path, {"state": "available"}, bearer(make_token(secured, "manager")))
    assert status == 200 and answer["declared"] == "available"


# -- what an associate may do ------------------------------------------------------------------
def test_an_associate_cannot_read_statistics_or_exports(secured):
    client = secured.client
    client.sign_in("ben", pin="5678")
    for path in ("/api/v1/stats", "/api/v1/stats/overview", "/api/v1/stats/heatmap", "/api/v1/calls.csv",
                 "/api/v1/events.csv", "/api/v1/events.jsonl", "/api/v1/rejected"):
        status, body = client.request("GET", path)
        assert status == 403 and body["error"]["code"] == "forbidden", path
        assert "ben has role associate" in body["error"]["message"]
    assert client.request("GET", "/api/v1/calls")[0] == 200


def test_an_associate_acts_only_as_themselves_and_a_manager_for_anyone(secured, broker):
    call = press(broker.url, secured, "room-3")
    ben = secured.client
    csrf = {CSRF_HEADER: ben.sign_in("ben", pin="5678")["csrf"]}
    status, body = ben.request("POST", "/api/v1/associates/ana/state", {"state": "off"}, csrf)
    assert status == 403 and "only as themselves" in body["error"]["message"]
    status, body = ben.request("POST", f"/api/v1/calls/{call}/acknowledge", {"associate": "ana"}, csrf)
    assert status == 403
    status, body = ben.request("POST", f"/api/v1/calls/{call}/acknowledge", {"associate": "ben"}, csrf)
    assert status == 200 and body["acknowledged_by"] == "ben"
    manager = Client(secured.http_port)
    csrf = {CSRF_HEADER: manager.sign_in("maria", password=MARIA_PASSWORD)["csrf"]}
    assert manager.request("POST", "/api/v1/associates/ana/state", {"state": "off"}, csrf)[0] == 200


# -- tokens through the real CLI ---------------------------------------------------------------
def test_tokens_are_made_listed_and_revoked_with_the_cli_and_a_revoked_one_is_refused_at_once(secured):
    config = str(secured.store_path)
    made = cli("token", "create", "--config", config, "--role", "manager", "--name", "grafana")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("cbt_") and "not shown again" in made.stderr
    again = cli("token", "create", "--config", config, "--role", "manager", "--name", "grafana")
    assert again.returncode == 2 and "exists" in again.stderr
    wrong = cli("token", "create", "--config", config, "--role", "owner", "--name", "till")
    assert wrong.returncode == 2 and "device, display, associate, manager, admin" in wrong.stderr
    listed = cli("token", "list", "--config", config)
    assert "grafana" in listed.stdout and "manager" in listed.stdout and "active" in listed.stdout
    assert token not in listed.stdout
    client = secured.client
    assert client.request("GET", "/api/v1/stats", headers=bearer(token))[0] == 200
    revoked = cli("token", "revoke", "grafana", "--config", config)
    assert revoked.returncode == 0, revoked.stderr
    status, body = client.request("GET", "/api/v1/stats", headers=bearer(token))
    assert status == 401 and "revoked" in body["error"]["message"]
    assert "revoked" in cli("token", "list", "--config", config).stdout
    assert cli("token", "revoke", "grafana", "--config", config).returncode == 2


def test_the_password_command_makes_a_hash_the_hub_accepts_and_refuses_a_short_password(tmp_path, broker):
    made = cli("password", "--associate", "maria", stdin="a long enough password\n")
    assert made.returncode == 0, made.stderr
    line = made.stdout.strip()
    assert line.startswith('password_hash = "scrypt$') and "long enough" not in line
    path = secured_store(tmp_path, broker.url)
    path.write_text(path.read_text().replace(f'password_hash = "{MARIA_HASH}"', line))
    with running_hub(path) as hub:
        client = Client(hub.http_port)
        assert client.sign_in("maria", password="a long enough password")["role"] == "manager"
    short = cli("password", stdin="short\n")
    assert short.returncode == 2 and "at least" in short.stderr


def test_a_password_in_the_config_in_place_of_its_hash_is_a_config_error(tmp_path):
    path = write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1883", http_port=free_port(), demo=False)
    path.write_text(path.read_text().replace('id = "maria"\n', 'id = "maria"\npassword_hash = "hunter2hunter2"\n'))
    with pytest.raises(ConfigError, match="password_hash.*callbell password"):
        load_store_config(path)


# -- demo mode ---------------------------------------------------------------------------------
def test_in_demo_mode_every_route_answers_without_credentials_and_says_it_is_not_secure(hub):
    client = Client(hub.http_port)
    assert client.request("GET", "/api/v1/stats")[0] == 200
    assert client.request("POST", "/api/v1/associates/ana/state", {"state": "break"})[0] == 200
    assert stream_status(hub.http_port, {})[0] == 200
    options = client.request("GET", "/api/v1/session")[1]
    assert options["demo"] is True and options["secure"] is False and "authentication is off" in options["note"]
    assert client.sign_in("ana")["csrf"] is None and client.cookie is None  # no session in demo mode


def test_a_session_survives_a_hub_restart(tmp_path, broker, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())
    path = secured_store(tmp_path, broker.url)
    with running_hub(path) as hub:
        client = Client(hub.http_port)
        client.sign_in("ana", pin="1234")
    with running_hub(path) as hub:  # same database, same port
        assert client.request("GET", "/api/v1/calls")[0] == 200


def test_over_https_the_session_cookie_is_marked_secure(tmp_path, broker, monkeypatch):
    monkeypatch.setattr(session, "_failures", session._Failures())
    cert, key = tmp_path / "hub.crt", tmp_path / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    path = secured_store(tmp_path, broker.url)
    path.write_text(path.read_text().replace("demo = false", 'demo = false\ncertfile = "hub.crt"\nkeyfile = "hub.key"'))
    with running_hub(path) as hub:
        conn = http.client.HTTPSConnection("127.0.0.1", hub.http_port, timeout=10,
                                           context=ssl.create_default_context(cafile=str(cert)))
        conn.request("POST", "/api/v1/session", json.dumps({"associate": "ana", "pin": "1234"}),
                      {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status == 200
        attributes = [a.strip().lower() for a in r.getheader("Set-Cookie").split(";")]
        assert "secure" in attributes and "httponly" in attributes


def test_without_credentials_the_sign_in_options_name_people_but_not_their_roles_or_zones(secured):
    options = secured.client.request("GET", "/api/v1/session")[1]
    assert options["demo"] is False and options["secure"] is True and options["signed_in"] is None
    assert [(a["id"], a["pin"], a["password"]) for a in options["associates"]] == [
        ("ana", True, False), ("ben", True, False), ("maria", True, True)]
    assert all(set(a) == {"id", "name", "pin", "password"} for a in options["associates"])
    assert MARIA_HASH not in json.dumps(options) and "1234" not in json.dumps(options)


def _open_stream(port: int, headers: dict) -> socket.socket:
    """An event stream left open: the socket, past the response head and the first event."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
    data = b""
    while b"event: snapshot" not in data:
        data += s.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")
    return s


def _ends_within(s: socket.socket, seconds: float) -> bool:
    """Whether the server ends the stream (a chunked response's last chunk, or a close) in time."""
    s.settimeout(0.5)
    deadline = time.monotonic() + seconds
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return True
        data += chunk
        if data.endswith(b"0\r\n\r\n"):
            return True
    return False


def test_an_open_stream_ends_once_its_session_is_signed_out_or_its_token_revoked(secured, monkeypatch):
    monkeypatch.setattr(hub_stream, "RECHECK_S", 0.3)
    client = secured.client
    client.sign_in("ana", pin="1234")
    stream = _open_stream(secured.http_port, {"Cookie": f"{SESSION_COOKIE}={client.cookie}"})
    token = make_token(secured, "manager", "dashboard-tv")
    tv = _open_stream(secured.http_port, bearer(token))
    try:
        assert not _ends_within(stream, 1.0)  # a live session keeps its stream
        assert client.request("DELETE", "/api/v1/session")[0] == 204
        assert _ends_within(stream, 5.0)
        assert not _ends_within(tv, 0.5)
        Credentials(secured.config.database.path).revoke_token("dashboard-tv", time.time())
        assert _ends_within(tv, 5.0)
    finally:
        stream.close()
        tv.close()
