"""Bad input over HTTP: schemathesis generates requests from the hub's own /openapi.json, valid
and invalid, against the real hub process; no operation may answer with a 5xx."""
from __future__ import annotations

import time

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from tests.helpers import event, wait_until

#: Examples per operation and mode (valid, invalid). ~30 operations × 2 modes × this must stay
#: well under a minute and a half on two shared cores.
EXAMPLES_PER_OPERATION = 40

#: Seconds to wait for a response's status line. The SSE stream never ends, so every response
#: is read only up to its headers.
RESPONSE_TIMEOUT_S = 10


def seed_some_calls(hub_process, recorder, topics) -> None:
    """Give the fuzzer calls and events to find: an open one and an acknowledged one."""
    recorder.publish(topics.event("room-1"), event("seed-1"))
    recorder.publish(topics.event("room-2"), event("seed-2"))
    calls = wait_until(lambda: len(hub_process.api.ok("GET", "/api/v1/calls?status=open")) == 2
                       and hub_process.api.ok("GET", "/api/v1/calls?status=open"), what="two seeded calls")
    hub_process.api.ok("POST", f"/api/v1/calls/{calls[0]['id']}/acknowledge", {"associate": "ana"})


def server_errors(base: str, operation, mode: GenerationMode) -> list[str]:
    """Run generated cases of one operation; describe the first that got a 5xx or no answer
    (not shrunk: shrinking a failing HTTP case would cost minutes)."""
    found: list[str] = []

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def run(case):
        kwargs = case.as_transport_kwargs(base_url=base)
        try:
            with requests.request(**kwargs, stream=True, timeout=RESPONSE_TIMEOUT_S) as response:
                status = response.status_code
                body = b"" if "event-stream" in response.headers.get("content-type", "") else response.content
        except requests.RequestException as e:
            found[:] = found or [f"{case.as_curl_command()[:300]} → no answer: {e}"]
            return
        if status >= 500 and not found:
            found.append(f"{case.as_curl_command()[:300]} → {status} {body[:200]!r}")

    try:
        run()
    except Unsatisfiable:
        # Nothing can be invalid about an operation without parameters or body (GET /health).
        assert mode is GenerationMode.NEGATIVE, f"no valid request for {operation.label}"
    return found


def test_no_operation_of_the_api_answers_with_a_server_error(hub_process, recorder, topics):
    seed_some_calls(hub_process, recorder, topics)
    base = hub_process.api.base
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]  # the whole API, not a stub of it
    started = time.monotonic()
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += server_errors(base, operation, mode)
    elapsed = time.monotonic() - started
    errors = [line for line in hub_process.output().splitlines() if "Error" in line and not line.startswith(" ")]
    assert not failures, "\n".join(failures) + "\n--- errors in the hub log ---\n" + "\n".join(errors[-10:])
    # Still serving, and still acting on a genuine press.
    assert hub_process.api.get("/api/v1/health")[0] == 200
    recorder.publish(topics.event("room-3"), event("after-fuzz"))
    wait_until(lambda: hub_process.api.ok("GET", "/api/v1/calls?status=open&room=room-3"), what="a call in room-3")
    print(f"\n{len(operations)} operations × 2 modes × ≤{EXAMPLES_PER_OPERATION} examples, no 5xx, {elapsed:.0f} s")


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
