"""``GET /metrics`` (hub.metrics): Prometheus text exposition format 0.0.4, parsed here strictly,
from the real hub behind a real Mosquitto."""
from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
import threading
import urllib.request

import yaml

from callbell.broker import free_port
from tests.helpers import ROOT, Api, event, read_sse, running_hub, wait_until, write_store

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_exposition(text: str) -> dict[str, dict]:
    """Parse the text format strictly: {family: {"type", "help", "samples": [(name, labels, value)]}}.
    Fails on anything the format does not allow: a sample before its TYPE, a TYPE given twice,
    a sample that belongs to no declared family, a bad label or value."""
    assert text.endswith("\n"), "the exposition ends with a line feed"
    families: dict[str, dict] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            families.setdefault(name, {"samples": []})["help"] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in TYPES, line
            fam = families.setdefault(name, {"samples": []})
            assert "type" not in fam and not fam["samples"], f"TYPE of {name} given twice or after samples"
            fam["type"] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, _, raw_labels, raw_value = m.groups()
            labels = {}
            if raw_labels:
                pos = 0
                while pos < len(raw_labels):
                    lm = LABEL.match(raw_labels, pos)
                    assert lm, f"bad labels in {line!r}"
                    labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                    pos = lm.end()
            value = float(raw_value)  # also +Inf, -Inf, NaN
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and families.get(name[: -len(suffix)], {}).get("type") == "histogram":
                    family = name[: -len(suffix)]
            assert family in families and "type" in families[family], f"sample {name} before its TYPE"
            families[family]["samples"].append((name, labels, value))
    return families


def scrape(port: int) -> tuple[str, dict[str, dict]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        content_type = r.headers["Content-Type"]
        return content_type, parse_exposition(r.read().decode())


def value(families: dict, family: str, **labels) -> float | None:
    for name, l, v in families[family]["samples"]:
        if name == family and l == labels:
            return v
    return None


def histogram(families: dict, family: str) -> tuple[list[tuple[float, float]], float, float]:
    samples = families[family]["samples"]
    buckets = [(float(l["le"]), v) for n, l, v in samples if n == f"{family}_bucket"]
    total = next(v for n, _, v in samples if n == f"{family}_sum")
    count = next(v for n, _, v in samples if n == f"{family}_count")
    return buckets, total, count


def test_metrics_are_served_in_the_prometheus_text_format(hub):
    content_type, families = scrape(hub.http_port)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert families["callbell_calls"]["type"] == "gauge"
    assert families["callbell_press_to_lamp_seconds"]["type"] == "histogram"
    assert families["callbell_rejected_total"]["type"] == "counter"
    assert all(f.get("help") for f in families.values())
    assert value(families, "callbell_broker_connected") == 1
    assert {value(families, "callbell_calls", status=s) for s in ("open", "acknowledged", "answered")} == {0}


def test_calls_by_status_and_the_press_to_lamp_latency_follow_presses(hub, recorder, topics):
    recorder.publish(topics.event("room-1"), event("e-m-1"))
    recorder.publish(topics.event("room-2"), event("e-m-2"))
    calls = wait_until(lambda: len(hub.api.ok("GET", "/api/v1/calls?status=open")) == 2
                       and hub.api.ok("GET", "/api/v1/calls?status=open"), what="two calls")
    hub.api.ok("POST", f"/api/v1/calls/{calls[0]['id']}/acknowledge", {"associate": "ana"})
    _, families = scrape(hub.http_port)
    assert value(families, "callbell_calls", status="open") == 1
    assert value(families, "callbell_calls", status="acknowledged") == 1
    assert value(families, "callbell_call_events_total", kind="pressed") == 2
    assert value(families, "callbell_call_events_total", kind="acknowledged") == 1
    buckets, total, count = histogram(families, "callbell_press_to_lamp_seconds")
    assert count == 2  # one per press that changed a lamp (the acknowledgement came over HTTP)
    assert buckets[-1] == (math.inf, count)
    assert [b for b, _ in buckets] == sorted(b for b, _ in buckets)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "buckets are cumulative"
    assert 0 < total < 2.5 * count
    # A repeat of an event changes no lamp: it is counted as a duplicate, not as a latency.
    recorder.publish(topics.event("room-1"), event("e-m-1"))
    wait_until(lambda: value(scrape(hub.http_port)[1], "callbell_mqtt_events_total", outcome="duplicate") == 1,
               what="the duplicate counted")
    assert histogram(scrape(hub.http_port)[1], "callbell_press_to_lamp_seconds")[2] == 2


def test_the_fan_out_to_the_pages_is_measured_per_page_and_until_the_last_page(hub, recorder, topics):
    pages = [threading.Thread(target=read_sse, args=(hub.http_port, 3)) for _ in range(3)]  # snapshot + 2 calls
    for p in pages:
        p.start()
    wait_until(lambda: hub.stream.clients == 3, what="three pages connected")
    recorder.publish(topics.event("room-1"), event("e-f-1"))
    recorder.publish(topics.event("room-2"), event("e-f-2"))
    for p in pages:
        p.join(10)
    wait_until(lambda: histogram(scrape(hub.http_port)[1], "callbell_stream_to_all_pages_seconds")[2] >= 2,
               what="both calls at every page")
    families = scrape(hub.http_port)[1]
    _, page_total, per_page = histogram(families, "callbell_stream_to_page_seconds")
    buckets, all_total, per_message = histogram(families, "callbell_stream_to_all_pages_seconds")
    # Two calls (one message each, or more if a press and its alert came in two batches) × 3 pages.
    assert per_page == 3 * per_message and per_message >= 2
    assert 0 < page_total <= all_total * 3 and all_total < per_message * 2.5
    assert [b for b, _ in buckets][:2] == [0.0001, 0.0001259] and buckets[-1] == (math.inf, per_message)


def test_rejected_messages_are_counted_by_channel(hub, recorder, topics):
    recorder.publish(topics.event("room-1"), b"not json")
    recorder.publish(topics.event("no-such-room"), event("e-m-3"))
    status, _ = hub.api.post("/api/v1/calls/c-000001/acknowledge", {"associate": "NOT AN ID"})
    assert 400 <= status < 500
    wait_until(lambda: value(scrape(hub.http_port)[1], "callbell_rejected_total", channel="mqtt") == 2,
               what="two MQTT rejections counted")
    # A refused request is counted when the dispatcher records it (hub/api/refusals.py), not
    # before the answer: wait for it as for the others.
    wait_until(lambda: (value(scrape(hub.http_port)[1], "callbell_rejected_total", channel="http") or 0) >= 1,
               what="the HTTP rejection counted")


def test_devices_online_and_their_outbox_depths_come_from_their_status_and_health(hub, recorder, topics):
    recorder.publish(topics.device_status("pi-a"), "online", retain=True, expiry_s=None)
    recorder.publish(topics.device_status("pi-b"), "offline", retain=True, expiry_s=None)
    recorder.publish(topics.device_health("pi-a"), json.dumps({"uptime_s": 120, "outbox": 3, "version": "0.1.0"}),
                     retain=True, expiry_s=None)
    recorder.publish(topics.device_health("pi-b"), json.dumps({"uptime_s": 5, "outbox": 0, "version": "0.1.0"}),
                     retain=True, expiry_s=None)
    families = wait_until(lambda: (f := scrape(hub.http_port)[1]) and
                          value(f, "callbell_device_outbox", device="pi-b") is not None and f,
                          what="both devices' health")
    assert value(families, "callbell_devices", status="online") == 1
    assert value(families, "callbell_devices", status="offline") == 1
    assert value(families, "callbell_device_online", device="pi-a") == 1
    assert value(families, "callbell_device_online", device="pi-b") == 0
    assert value(families, "callbell_device_outbox", device="pi-a") == 3
    assert value(families, "callbell_device_outbox", device="pi-b") == 0
    assert 0 <= value(families, "callbell_device_health_age_seconds", device="pi-a") < 30


def test_the_parser_refuses_what_the_format_does_not_allow():
    """The parser above must be able to fail, or the tests using it prove nothing."""
    good = '# HELP x_total X.\n# TYPE x_total counter\nx_total{a="b"} 1\n'
    assert parse_exposition(good)["x_total"]["samples"] == [("x_total", {"a": "b"}, 1.0)]
    for bad in ('x_total 1\n', '# TYPE x counter\nx{a=b} 1\n', '# TYPE x counter\nx 1 2 3\n',
                '# TYPE x counter\n# TYPE x gauge\n', '# TYPE x counter\nx one\n', '# TYPE x counter\nx 1'):
        try:
            parse_exposition(bad)
        except (AssertionError, ValueError):
            continue
        raise AssertionError(f"accepted {bad!r}")


def _doc_blocks(language: str) -> list[str]:
    """The ``language`` code blocks of docs/integrations.md's Prometheus section."""
    doc = (ROOT / "docs" / "integrations.md").read_text()
    section = doc.split("\n## Prometheus", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_documented_scrape_config_scrapes_a_hub_with_sign_in_on_and_without_its_token_gets_401(
        tmp_path, broker):
    """The scrape config is read out of docs/integrations.md (PyYAML comes with schemathesis,
    of the test extras) and followed as Prometheus follows it: ``scheme`` (default http),
    ``metrics_path`` (default /metrics), ``authorization`` (type default Bearer; the token from
    ``credentials_file``, trimmed, or ``credentials``). The token file is made by the doc's own
    ``callbell token create`` line."""
    (config,) = [yaml.safe_load(block) for block in _doc_blocks("yaml")]
    (job,) = config["scrape_configs"]
    auth = job["authorization"]
    assert auth.get("type", "Bearer") == "Bearer" and auth["credentials_file"].startswith("/etc/prometheus/")

    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), demo=False)
    (command,) = [line for block in _doc_blocks("sh") for line in block.splitlines() if " token create " in line]
    words, _, target = command.partition(">")
    args = shlex.split(words)
    assert args[:3] == ["callbell", "token", "create"] and target.strip() == auth["credentials_file"]
    args = [str(store) if a == "store.toml" else a for a in args[1:]]
    token_file = tmp_path / "callbell.token"
    with running_hub(store) as hub:
        with open(token_file, "w") as out:
            subprocess.run([sys.executable, "-m", "app.cli", *args], stdout=out, check=True, cwd=str(ROOT))
        url = f"{job.get('scheme', 'http')}://127.0.0.1:{hub.http_port}{job.get('metrics_path', '/metrics')}"
        credentials = token_file.read_text().strip() if "credentials_file" in auth else auth["credentials"]
        status, body = Api("").request("GET", url, headers={"Authorization": f"{auth.get('type', 'Bearer')} {credentials}"})
        assert status == 200 and "callbell_broker_connected" in parse_exposition(body)
        status, body = Api("").request("GET", url)
        assert status == 401, body
