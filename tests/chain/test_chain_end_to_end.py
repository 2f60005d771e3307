"""A chain on one machine: RabbitMQ, three store hubs bridged to it, the consumer into chDB.
10,000 calls; RabbitMQ killed -9 mid-stream; a store broker killed -9 inside its autosave
window while it holds ranges for central. Then: every event of every store is at central
exactly once, and the chain's percentiles equal those recomputed from the stores' CSVs."""
import threading
import time
from collections import defaultdict

import pytest

from chain.figures import Period, figures
from hub.domain.stats import percentile
from tests.chain.harness import Central, Store, chain_config, drive
from tests.helpers import wait_until

CALLS = 10_000
STORES = ("berlin", "hamburg", "munich")


@pytest.fixture
def chain(tmp_path):
    central = Central(chain_config(list(STORES)), tmp_path / "warehouse").start()
    stores = []
    try:
        for s in STORES:
            (tmp_path / s).mkdir()
            stores.append(Store(tmp_path / s, s, central, resend_after_s=3.0))
        yield central, stores
    finally:
        for s in stores:
            s.stop()
        central.stop()


def by_hour_from_csv(rows: list[dict]) -> dict[int, dict]:
    """The store's own figures per local hour, from its calls.csv (hub.domain.stats definitions)."""
    groups = defaultdict(lambda: {"responses": [], "missed": 0, "cancelled": 0, "within": 0})
    for r in rows:
        g = groups[int(r["pressed_at"][11:13])]
        if r["response_s"]:
            g["responses"].append(float(r["response_s"]))
            g["within"] += float(r["response_s"]) <= 90
        elif r["status"] == "missed":
            g["missed"] += 1
        elif r["status"] == "cancelled":
            g["cancelled"] += 1
    out = {}
    for hour, g in groups.items():
        v = sorted(g["responses"])
        out[hour] = {"answered": len(v), "missed": g["missed"], "cancelled": g["cancelled"], "within": g["within"],
                     "p50": percentile(v, 50), "p90": percentile(v, 90), "p95": percentile(v, 95)}
    return out


def test_every_event_reaches_central_once_through_rabbitmq_and_store_broker_crashes(chain):
    central, stores = chain
    paused = {s.id: threading.Event() for s in stores}
    for gate in paused.values():
        gate.set()
    driver = drive(stores, CALLS, pause=paused)

    wait_until(lambda: sum(s.hub_counts()[0] for s in stores) >= 3000, 120, 0.2, "3,000 device events at the hubs")
    central.node.kill()                                   # kill -9 RabbitMQ mid-stream
    time.sleep(3)                                         # the stores queue ranges for central meanwhile

    victim = stores[1]
    paused[victim.id].clear()                             # its devices hold back (they have outboxes)
    victim.wait_hub_has_all()
    time.sleep(0.5)                                       # the uplink hands its newest ranges to the broker
    victim.kill_broker()                                  # kill -9 inside its 2 s autosave window
    central.node.start()
    victim.restart_broker()
    paused[victim.id].set()

    driver.join(300)
    assert not driver.is_alive(), "the driver did not finish"
    for s in stores:
        s.wait_hub_has_all()

    def all_at_central():
        have = central.counts()
        return all(have.get(s.id, (0, 0, 0))[2] == s.hub_counts()[1] for s in stores)
    wait_until(all_at_central, 180, 0.5, "every store's log at central")

    total_calls = 0
    for s in stores:
        rows = s.calls_csv()
        total_calls += len(rows)
        events, distinct, last = central.counts()[s.id]
        assert events == distinct == last == s.hub_counts()[1], (s.id, events, distinct, last)  # 0 lost, 0 twice
        mine = by_hour_from_csv(rows)
        theirs = {r["key"]: r for r in figures(central.warehouse, [s.id], Period.everything(), by="hour", exact=True)}
        assert set(theirs) == set(mine)
        for hour, want in mine.items():
            got = theirs[hour]
            for key in ("answered", "missed", "cancelled", "within"):
                assert got[key] == want[key], (s.id, hour, key, got[key], want[key])
            for key in ("p50", "p90", "p95"):
                assert got[key] == pytest.approx(want[key], abs=0.0011), (s.id, hour, key)
    assert total_calls == CALLS
    assert central.consumer.intake.counts["rejected"] == 0
