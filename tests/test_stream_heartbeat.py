"""The stream's heartbeat (hub.stream.HEARTBEAT_S): a quiet stream still says something the page
can hear, so a stalled one can be told from a quiet one (dashboard/live.js)."""
import time

from hub.stream import HEARTBEAT_S, heartbeat
from tests.helpers import read_sse


def test_a_quiet_stream_sends_a_heartbeat_event_without_an_id_every_4_s(hub):
    started = time.time()
    msgs = read_sse(hub.http_port, lambda m: sum(x["event"] == "heartbeat" for x in m) >= 2, timeout=15)
    took = time.time() - started
    beats = [m for m in msgs if m["event"] == "heartbeat"]
    assert msgs[0]["event"] == "snapshot" and len(beats) == 2
    assert all("id" not in b for b in beats), "a heartbeat must not move the page's Last-Event-ID"
    assert abs(beats[-1]["data"]["now"] - time.time()) < 2  # the hub's clock, for the page's timers
    assert took >= 2 * HEARTBEAT_S - 0.5  # one each HEARTBEAT_S of silence, not more often


def test_the_snapshot_tells_the_page_the_heartbeat_period(hub):
    [snapshot] = read_sse(hub.http_port, 1)
    assert snapshot["data"]["heartbeat_s"] == HEARTBEAT_S <= 5


def test_a_heartbeat_is_one_sse_event():
    assert heartbeat(1234.5) == b'event: heartbeat\ndata: {"now":1234.500}\n\n'
