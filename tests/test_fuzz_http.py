"""The API description tells the truth, and bad input over HTTP never breaks the hub.

schemathesis generates requests from the hub's own /openapi.json, valid and invalid, and sends
them to a real hub process with sign-in on, judging every answer with ALL its checks: no 5xx,
every status, content type, header and body as described (errors included), valid requests
accepted and invalid ones refused, 401 without credentials, 405 with ``Allow``. Once with an
admin token (every operation reachable) and once with none (the 401 answers of every guarded
operation, and the public ones)."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callbell.broker import free_port
from hub.auth import digest
from hub.config import load_store_config
from hub.store import Credentials
from tests.helpers import ROOT, HubProcess, event, wait_until, write_store

#: Test cases per operation and phase (coverage, fuzzing, stateful). ~36 operations make ~2,000
#: requests per run, 20-30 s on two quiet cores; the two runs together stay well under two
#: minutes on two loaded ones.
EXAMPLES_PER_OPERATION = 15

#: What the description cannot say, told to schemathesis instead: each entry widens one check
#: for a few operations, with the reason. Everything else runs as schemathesis ships it.
SCHEMATHESIS_CONFIG = """
# Seconds to wait for an answer. The event stream never ends: its first message is judged.
request-timeout = 10
max-stream-events = 1

# The store's associates and zones and the seeded calls, as an integrator knows them: half the
# generated requests name one, so that they get past "unknown associate" and "no call" to the
# actions themselves (acknowledge, answer, decline, done, a zone chosen).
[dictionaries]
associates.values = ["ana", "ben", "maria"]
zones.values = ["a", "b"]
calls.values = CALLS

[parameters]
"body.associate" = { dictionary = "associates", probability = 0.5 }
"path.associate" = { dictionary = "associates", probability = 0.5 }
"body.zone" = { dictionary = "zones", probability = 0.5 }
"path.call" = { dictionary = "calls", probability = 0.5 }
"body.call" = { dictionary = "calls", probability = 0.5 }

[[operations]]
# The body names an associate (or a zone) of this store. A well-formed id nobody has is refused
# with 400 unknown_associate (or an unknown zone); the description cannot list a store's staff.
include-path-regex = "^/api/v1/(calls/[{]call[}]/|troubles/[{]trouble[}]/|associates/[{]associate[}]/zone$|push/subscriptions$|session$)"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
# "from must come before until" (400): a relation between two parameters no schema can state.
include-path = "/api/v1/stats/receipts"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403"]
"""


@pytest.fixture
def secured_hub(tmp_path: Path, broker, recorder, topics):
    """A hub process with sign-in on, an admin token, and two calls to find (one acknowledged)."""
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), demo=False)
    token = "fuzz-admin-token-0123456789abcdef"
    Credentials(load_store_config(store).database.path).add_token("fuzz", "admin", digest(token), time.time())
    auth = {"Authorization": f"Bearer {token}"}
    hub = HubProcess(store, load_store_config(store).http.port, tmp_path / "hub.log", health_headers=auth).start()
    hub.token, hub.auth, hub.seeded = token, auth, []
    recorder.publish(topics.event("room-1"), event("seed-1"))
    recorder.publish(topics.event("room-2"), event("seed-2"))
    calls = wait_until(lambda: _calls(hub, "?status=open") if len(_calls(hub, "?status=open")) == 2 else None,
                       what="two seeded calls")
    status, _ = hub.api.request("POST", f"/api/v1/calls/{calls[0]['id']}/acknowledge", {"associate": "ana"},
                                headers=auth)
    assert status == 200
    hub.seeded = [c["id"] for c in calls]
    yield hub
    hub.stop()


def _events(hub) -> list[dict]:
    status, body = hub.api.request("GET", "/api/v1/events.csv", headers=hub.auth)
    assert status == 200, body
    return list(csv.DictReader(io.StringIO(body)))


def _actions(hub) -> int:
    """How many times someone acted on a call through the API (on my way, not me, arrived)."""
    return sum(e["source"] == "api" and e["kind"] in ("acknowledged", "declined", "answered") for e in _events(hub))


def _calls(hub, query: str = "") -> list:
    status, body = hub.api.request("GET", f"/api/v1/calls{query}", headers=hub.auth)
    assert status == 200, body
    return body


def schemathesis(tmp_path: Path, hub, location: str, *options: str) -> subprocess.CompletedProcess:
    """Run schemathesis (its command line, as a person would) against ``hub`` with all checks,
    deterministic cases and no shrinking (shrinking a failing HTTP case costs minutes)."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG.replace("CALLS", json.dumps(hub.seeded)))
    base = hub.api.base
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", location, "--url", base,
         "--checks", "all", "--max-examples", str(EXAMPLES_PER_OPERATION), "--generation-deterministic",
         "--no-shrink", "--workers", "1", "--no-color", "--output-truncate", "true", *options],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def report(run: subprocess.CompletedProcess, hub) -> str:
    errors = [line for line in hub.output().splitlines() if "Error" in line and not line.startswith(" ")]
    return (run.stdout[-12000:] + run.stderr[-2000:] + "\n--- errors in the hub log ---\n" + "\n".join(errors[-10:]))


def test_every_answer_of_the_signed_in_api_is_as_its_description_says(secured_hub, tmp_path, recorder, topics):
    hub = secured_hub
    status, schema = hub.api.request("GET", "/openapi.json", headers=hub.auth)
    assert status == 200 and len([op for path in schema["paths"].values() for op in path]) >= 30
    guarded = {f"{method} {path}": op for path, ops in schema["paths"].items() for method, op in ops.items()
               if op.get("security")}
    assert len(guarded) >= 25 and "post /api/v1/session" not in guarded, sorted(guarded)
    for name, operation in guarded.items():  # each says its role, and its 401 names the scheme
        assert "Needs role" in operation["description"], name
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], name
    actions_before = _actions(hub)
    started = time.monotonic()
    run = schemathesis(tmp_path, hub, f"{hub.api.base}/openapi.json", "--header", f"Authorization: Bearer {hub.token}")
    elapsed = time.monotonic() - started
    assert run.returncode == 0, report(run, hub)
    # The fuzzer acted on the seeded calls, not only on calls that do not exist.
    assert _actions(hub) > actions_before, _events(hub)
    # Still serving, and still acting on a genuine press.
    assert hub.api.request("GET", "/api/v1/health", headers=hub.auth)[0] == 200
    recorder.publish(topics.event("room-3"), event("after-fuzz"))
    wait_until(lambda: _calls(hub, "?status=open&room=room-3"), what="a call in room-3")
    print(run.stdout[run.stdout.find("WARNINGS"):], f"({elapsed:.0f} s)")


def test_every_answer_without_a_token_is_as_the_description_says(secured_hub, tmp_path):
    hub = secured_hub
    _, schema = hub.api.request("GET", "/openapi.json", headers=hub.auth)
    described = tmp_path / "openapi.json"
    described.write_text(json.dumps(schema))
    started = time.monotonic()
    run = schemathesis(tmp_path, hub, str(described))
    elapsed = time.monotonic() - started
    assert run.returncode == 0, report(run, hub)
    print(run.stdout[run.stdout.find("WARNINGS"):], f"({elapsed:.0f} s)")
    # The guarded operations all answered, and answered 401 (not a page, not a 200).
    status, body = hub.api.get("/api/v1/calls")
    assert status == 401 and body["error"]["code"] == "unauthorized"


# -- the description, read directly (fast, and says which part is wrong) -------------------------

def test_every_error_answer_is_described_with_the_one_error_body(hub):
    schema = hub.api.ok("GET", "/openapi.json")
    assert set(schema["components"]["schemas"]["ErrorBody"]["required"]) == {"error"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {status: r for status, r in operation["responses"].items() if status >= "400"}
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in errors, (method, path)
            for status, response in errors.items():
                assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}, (
                    method, path, status)


def test_exports_and_the_stream_are_described_with_the_content_types_they_send(hub):
    paths = hub.api.ok("GET", "/openapi.json")["paths"]
    for path, media_type in (("/api/v1/calls.csv", "text/csv"), ("/api/v1/events.csv", "text/csv"),
                             ("/api/v1/events.jsonl", "application/x-ndjson"), ("/api/v1/stream", "text/event-stream")):
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == [media_type], path
    status, text = hub.api.get("/api/v1/calls.csv")
    assert status == 200 and text.startswith("id,")


def test_time_parameters_are_described_as_date_times_dates_or_epoch_seconds(hub):
    paths = hub.api.ok("GET", "/openapi.json")["paths"]
    times = {(path, p["name"]): p["schema"] for path, ops in paths.items() for op in ops.values()
             for p in op.get("parameters", []) if p["name"] in ("since", "until", "from")}
    assert len(times) >= 18, times
    for where, schema in times.items():
        assert [b.get("format") for b in schema["anyOf"]] == ["date-time", "date", None, None], where


def test_a_405_names_every_method_of_the_path_in_allow(hub):
    status, headers = _status_and_headers(hub, "TRACE", "/api/v1/session")
    assert status == 405 and headers["Allow"] == "DELETE, GET, POST"
    status, headers = _status_and_headers(hub, "PUT", "/api/v1/calls")
    assert status == 405 and headers["Allow"] == "GET"


def _status_and_headers(hub, method: str, path: str):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(urllib.request.Request(hub.api.base + path, method=method), timeout=10) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


# -- the fixes schemathesis and hand probing led to ---------------------------------------------

def test_a_time_outside_1970_to_2100_is_a_400_naming_the_parameter_not_a_500(hub):
    # "inf" and "1e300" reached the statistics' date arithmetic and overflowed (500).
    for path in ("/api/v1/stats?from=inf", "/api/v1/stats?until=1e300", "/api/v1/calls?since=nan",
                 "/api/v1/calls.csv?until=-1e300", "/api/v1/calls?since=1763800000000",
                 "/api/v1/stats?from=9999-12-31T23:59:59-23:59"):
        status, body = hub.api.get(path)
        name = path.split("?")[1].split("=")[0]
        assert status == 400, (path, body)
        assert body["error"]["message"].startswith(f"{name} must lie between 1970 and 2100"), body
    assert hub.api.get("/api/v1/calls?since=1763800000&until=2026-11-23")[0] == 200


def test_a_body_that_is_not_json_is_refused_saying_where_and_recorded(hub):
    status, body = hub.api.post("/api/v1/calls/c-000001/acknowledge", raw=b'{"associate": ana}')
    assert status == 422
    assert body["error"]["message"].startswith("body is not valid JSON at character 14: Expecting value"), body
    rejected = wait_until(lambda: hub.api.get("/api/v1/rejected?limit=1")[1], what="the rejection stored")
    assert rejected[0]["channel"] == "http" and rejected[0]["reason"] == body["error"]["message"]
