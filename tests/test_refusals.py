"""Refused HTTP requests are summed per source and minute, kept off MQTT and the pages, and old
refusals are deleted (issue 17, point 4; hub/api/refusals.py, hub/store/)."""
from __future__ import annotations

import logging
import sqlite3
import time

from callbell.protocol import Topics
from hub import store
from hub.store import writer as store_writer
from hub.api import refusals
from hub.api.routes import session
from hub.store import Writer
from tests.helpers import Recorder, run_sql, running_hub, wait_until
from tests.test_auth import Client, clock, secured_store  # noqa: F401 (clock: a fixture)


def _http_rows(hub) -> list[dict]:
    return [r for r in hub.reader.rejected(1000) if r["channel"] == "http"]


def test_a_flood_of_refused_requests_is_recorded_per_source_and_minute_and_kept_off_mqtt(
        tmp_path, broker, monkeypatch, caplog, clock):
    """Before issue 17 each of these 310 requests was a row, a warning, a message on
    hub/rejected and an input queued to the dispatcher alongside the presses."""
    monkeypatch.setattr(session, "_failures", session._Failures())
    caplog.set_level(logging.WARNING, logger="callbell.hub")
    topics = Topics("callbell", "test-store")
    notices = Recorder(broker.url, [topics.hub_rejected])
    try:
        with running_hub(secured_store(tmp_path, broker.url), clock=clock) as hub:
            flood, other = Client(hub.http_port), Client(hub.http_port, "127.0.0.2")
            for _ in range(300):
                assert flood.request("GET", "/api/v1/calls")[0] == 401
            for _ in range(10):
                assert other.request("GET", "/api/v1/calls?status=open")[0] == 401
            n = refusals.DETAILED_PER_MINUTE
            rows = wait_until(lambda: len(_http_rows(hub)) >= 2 * n and _http_rows(hub), what="the detailed refusals")
            assert sorted((r["source"], r["count"]) for r in rows) == [("127.0.0.1", 1)] * n + [("127.0.0.2", 1)] * n
            assert all("sign in first" in r["reason"] for r in rows)
            assert [r["excerpt"] for r in rows if r["source"] == "127.0.0.2"] == ["status=open"] * n
            clock.advance(refusals.WINDOW_S)
            hub.refusals.flush()
            rows = wait_until(lambda: len(_http_rows(hub)) == 2 * n + 2 and _http_rows(hub), what="the sums")
            sums = {r["source"]: r["count"] for r in rows if r["count"] > 1}
            assert sums == {"127.0.0.1": 300 - n, "127.0.0.2": 10 - n}
            assert hub.dispatcher.rejected_by_channel["http"] == 310  # /metrics still counts each one
        warnings = [r for r in caplog.records if "rejected http" in r.getMessage()]
        assert len(warnings) <= 2 * n + 3
        assert notices.of(topics.hub_rejected) == []  # devices hear nothing of HTTP
    finally:
        notices.close()


def test_refusals_older_than_a_month_and_past_the_row_cap_are_deleted(store_file, monkeypatch):
    monkeypatch.setattr(store_writer, "REJECTED_MAX_ROWS", 50)  # read by the Writer
    db = store_file.parent / "callbell.db"
    Writer(db).close()  # the schema
    old = time.time() - store.REJECTED_KEEP_S - 86400
    run_sql(db, "".join(f"INSERT INTO rejected (at, channel, topic, reason, excerpt) VALUES "
                        f"({old + i}, 'mqtt', 't', 'old', '');" for i in range(30)) +
            "".join(f"INSERT INTO rejected (at, channel, topic, reason, excerpt) VALUES "
                    f"({time.time() - 3600}, 'mqtt', 't', 'recent', '');" for _ in range(60)))
    with running_hub(store_file) as hub:
        hub.dispatcher.reject("mqtt", "callbell/test-store/room/x/event", "a new one")
        wait_until(lambda: any(r["reason"] == "a new one" for r in hub.reader.rejected(1000)), what="the refusal")
        rows = hub.reader.rejected(1000)
        assert len(rows) == 50 and not any(r["reason"] == "old" for r in rows)
        assert rows[0]["reason"] == "a new one"  # the newest kept


def test_a_database_of_an_older_hub_gets_the_new_columns(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE rejected (seq INTEGER PRIMARY KEY, at FLOAT, channel TEXT, topic TEXT, "
                 "reason TEXT, excerpt TEXT)")
    conn.execute("INSERT INTO rejected (at, channel, topic, reason, excerpt) VALUES (1, 'mqtt', 't', 'r', '')")
    conn.commit()
    conn.close()
    w = Writer(db)
    w.begin()
    w.reject(time.time(), "http", "GET /x", "refused", "", "10.0.0.9", 7)
    w.commit()
    w.close()
    rows = sqlite3.connect(db).execute("SELECT reason, source, count FROM rejected ORDER BY seq").fetchall()
    assert rows == [("refused", "10.0.0.9", 7)]  # the row of 1970 was past REJECTED_KEEP_S
