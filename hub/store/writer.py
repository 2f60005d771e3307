"""The one writing connection: events, calls, roll-ups, refusals (the dispatcher's thread only)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import sqlite_utils

from hub.domain import rollup
from hub.domain.associates import AT_ROOM_KINDS, STATE_EVENT, ZONE_EVENT
from hub.domain.call import ACTIVE, Call, Transition
from hub.domain.troubles import Trouble
from hub.store import troubles as stored_troubles
from hub.store.rollups import prepare_rollups, put_rollup
from hub.store.schema import CLOSED_MARKS, call_from_row, call_row, connect, create_schema

#: Refusals older than this are deleted, seconds: a month is enough to look into a problem.
REJECTED_KEEP_S = 30 * 86400
#: At most this many ``rejected`` rows are kept (the newest): a flood of bad MQTT messages from
#: a device cannot grow the file without end. About 30 MB at the longest excerpts.
REJECTED_MAX_ROWS = 100_000
#: How often old ``rejected`` rows are deleted, seconds of the hub's clock (at a refusal).
REJECTED_PRUNE_EVERY_S = 3600


class Writer:
    """The single writing connection. Use only from the thread that created it."""

    def __init__(self, path: Path, rules: rollup.Rules | None = None):
        """``rules``: keep the statistics roll-ups for this zone and standard (rebuilt first if
        they were made with others); None leaves them alone (tools that write no calls)."""
        create_schema(path)
        if rules is not None:
            prepare_rollups(path, rules)
        self._conn = connect(path)
        self._conn.execute("PRAGMA synchronous = FULL")
        self.db = sqlite_utils.Database(self._conn)
        self._rules = rules
        self._buckets = rollup.Buckets(rules.tz) if rules else None
        #: Roll-up changes of the open transaction: key → (calls added, calls taken out).
        self._pending: dict[tuple, tuple[rollup.Agg, rollup.Agg]] = {}
        self._pruned_at: float | None = None  # when old ``rejected`` rows were last deleted

    def close(self) -> None:
        self._conn.close()

    # Everything for one batch of work goes through one transaction.
    def begin(self) -> None:
        self._pending.clear()
        self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self._pending:
            self._flush_rollups()
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        self._pending.clear()
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def append(self, t: Transition, recorded_at: float) -> int:
        """Append one event; returns its sequence number (the SSE event id)."""
        cur = self._conn.execute(
            "INSERT INTO events (at, recorded_at, kind, call, room, actor, source, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (t.at, recorded_at, t.kind, t.call, t.room, t.actor, t.source,
             json.dumps(t.detail) if t.detail else None))
        return cur.lastrowid

    def save_call(self, call: Call, last_event: int) -> dict:
        return self.save_row(call_row(call, last_event))

    def save_row(self, row: dict) -> dict:
        """Store a call's row (``call_row``), keeping the roll-ups right; returns it."""
        old = None
        if self._rules is not None:
            old = self._conn.execute(f"SELECT {', '.join(rollup.COLUMNS)} FROM calls WHERE id = ?",
                                     (row["id"],)).fetchone()
        cols = ", ".join(row)
        self._conn.execute(f"INSERT OR REPLACE INTO calls ({cols}) VALUES ({', '.join('?' * len(row))})",
                           tuple(row.values()))
        if self._rules is not None:
            self._track_rollups(old, row)
        return row

    # -- roll-ups ----------------------------------------------------------------------------
    def _track_rollups(self, old: sqlite3.Row | None, new: dict) -> None:
        """Note how a call's change moves the roll-ups; written at commit."""
        was = old is not None and old["status"] in rollup.CLOSED
        now = new["status"] in rollup.CLOSED
        if was and now and tuple(old) == tuple(new[c] for c in rollup.COLUMNS):
            return  # closed before and after, nothing the roll-ups hold changed (an alert, say)
        std = self._rules.standard_s
        if was:
            old = dict(old)
            one = rollup.Agg().add_closed(old, std)
            for key in self._buckets.keys(old):
                self._pending_for(key)[1].merge(one)
        if now:
            one = rollup.Agg().add_closed(new, std)
            for key in self._buckets.keys(new):
                self._pending_for(key)[0].merge(one)

    def _pending_for(self, key: tuple) -> tuple[rollup.Agg, rollup.Agg]:
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = (rollup.Agg(), rollup.Agg())
        return p

    def _flush_rollups(self) -> None:
        conn = self._conn
        for (grain, start, dim, value), (added, removed) in self._pending.items():
            row = conn.execute("SELECT * FROM rollup WHERE grain = ? AND dim = ? AND value = ? AND start = ?",
                               (grain, dim, value, start)).fetchone()
            agg = rollup.Agg.from_row(row) if row else rollup.Agg()
            agg.merge(added)
            stale = agg.max_stale(removed)
            agg.subtract(removed)
            if agg.calls <= 0:
                conn.execute("DELETE FROM rollup WHERE grain = ? AND dim = ? AND value = ? AND start = ?",
                             (grain, dim, value, start))
                continue
            if stale:  # the slowest call was taken out: find the new slowest
                agg.response_max = self._max_response(grain, start, dim, value)
            put_rollup(conn, (grain, start, dim, value), self._buckets.slot(start), agg)
        self._pending.clear()

    def _max_response(self, grain: str, start: float, dim: str, value: str) -> float | None:
        sql = (f"SELECT MAX(response_s) FROM calls WHERE pressed_at >= ? AND pressed_at < ? "
               f"AND status IN ({CLOSED_MARKS})")
        args = [start, self._buckets.next(grain, start), *rollup.CLOSED]
        column = rollup.DIM_COLUMNS[dim]
        if column:
            sql += f" AND COALESCE({column}, '') = ?"
            args.append(value)
        return self._conn.execute(sql, args).fetchone()[0]

    def seen(self, event_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM inbox WHERE id = ?", (event_id,)).fetchone() is not None

    def remember(self, event_id: str, device: str, room: str, kind: str, received_at: float,
                 age_ms: float, outcome: str) -> None:
        self._conn.execute("INSERT OR IGNORE INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (event_id, device, room, kind, received_at, age_ms, outcome))

    def reject(self, at: float, channel: str, topic: str, reason: str, excerpt: str,
               source: str | None = None, count: int = 1) -> None:
        """Record ``count`` refusals (from ``source``, an HTTP client); now and then forget
        those older than REJECTED_KEEP_S, and all but the newest REJECTED_MAX_ROWS."""
        self._conn.execute("INSERT INTO rejected (at, channel, topic, reason, excerpt, source, count) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", (at, channel, topic, reason, excerpt, source, count))
        if self._pruned_at is None or at - self._pruned_at >= REJECTED_PRUNE_EVERY_S:
            self._pruned_at = at
            self._conn.execute("DELETE FROM rejected WHERE at < ?", (at - REJECTED_KEEP_S,))
            self._conn.execute("DELETE FROM rejected WHERE seq <= (SELECT MAX(seq) FROM rejected) - ?",
                               (REJECTED_MAX_ROWS,))

    def device_status(self, device: str, status: str, at: float) -> None:
        self._conn.execute(
            "INSERT INTO devices (id, status, status_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at",
            (device, status, at))

    def expect_devices(self, devices: list[str], at: float) -> list[str]:
        """List the configured ``devices`` the hub has never heard of, status ``never``; returns them."""
        new = [d for d in devices
               if self._conn.execute("SELECT 1 FROM devices WHERE id = ?", (d,)).fetchone() is None]
        for d in new:
            self._conn.execute("INSERT INTO devices (id, status, status_at) VALUES (?, 'never', ?)", (d, at))
        return new

    def device_health(self, device: str, health: dict, at: float) -> None:
        self._conn.execute(
            "INSERT INTO devices (id, health, health_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET health = excluded.health, health_at = excluded.health_at",
            (device, json.dumps(health), at))

    def active_calls(self) -> list[Call]:
        marks = ", ".join("?" * len(ACTIVE))
        rows = self._conn.execute(f"SELECT * FROM calls WHERE status IN ({marks})", ACTIVE).fetchall()
        return [call_from_row(dict(r)) for r in rows]

    def open_troubles(self) -> tuple[list[Trouble], int]:
        """The troubles a stopped hub left open, and the highest trouble number handed out."""
        return stored_troubles.open_troubles(self._conn)

    def retired_devices(self) -> set[str]:
        return stored_troubles.retired_devices(self._conn)

    def last_call_seq(self) -> int:
        return self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM calls").fetchone()[0]

    def associate_history(self) -> dict:
        """What a restarted hub needs to know of its associates, the latest of each per associate:
        ``states`` and ``zones`` {id: (value, at)} from their events, ``presences`` {id: (room,
        at)} from the calls they answered or finished and presence presses, ``idle`` {id: at}
        when a call they had taken last closed."""
        def latest(kinds: tuple[str, ...]) -> list[sqlite3.Row]:
            marks = ", ".join("?" * len(kinds))
            return self._conn.execute(
                f"SELECT e.* FROM events e JOIN (SELECT actor, MAX(seq) AS seq FROM events WHERE kind IN ({marks}) "
                f"AND actor IS NOT NULL GROUP BY actor) m ON e.seq = m.seq", kinds).fetchall()
        states = {r["actor"]: (json.loads(r["detail"])["state"], r["at"]) for r in latest((STATE_EVENT,))}
        zones = {r["actor"]: (json.loads(r["detail"])["zone"], r["at"]) for r in latest((ZONE_EVENT,))}
        presences = {r["actor"]: (r["room"], r["at"]) for r in latest(AT_ROOM_KINDS) if r["room"]}
        idle: dict[str, float] = {}
        for column in ("acknowledged_by", "answered_by", "done_by"):
            for who, at in self._conn.execute(
                    f"SELECT {column}, MAX(closed_at) FROM calls WHERE {column} IS NOT NULL AND closed_at IS NOT NULL "
                    f"GROUP BY {column}"):
                idle[who] = max(at, idle.get(who, at))
        return {"states": states, "zones": zones, "presences": presences, "idle": idle}
