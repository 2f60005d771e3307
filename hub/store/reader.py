"""Read-only queries, each thread on its own connection."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Iterator

from hub.domain import rollup
from hub.domain.associates import REACH_EVENT, STATE_EVENT, ZONE_EVENT
from hub.domain.call import ACTIVE
from hub.domain.troubles import Trouble
from hub.store import troubles as stored_troubles
from hub.store.schema import STAT_FILTERS, connect

#: Event kinds that change how an associate is shown (besides their state and zone events).
ASSOCIATE_CALL_KINDS = ("acknowledged", "answered", "done", "presence", "declined")


class Reader:
    """Read-only queries, each thread on its own connection."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        return conn

    def ping(self) -> bool:
        try:
            self._conn().execute("SELECT 1 FROM events LIMIT 1").fetchall()
            return True
        except sqlite3.Error:
            return False

    def call(self, call_id: str) -> dict | None:
        row = self._conn().execute("SELECT * FROM calls WHERE id = ?", (call_id,)).fetchone()
        return dict(row) if row else None

    def calls(self, status: str = "all", since: float | None = None, until: float | None = None,
              room: str | None = None, limit: int | None = None) -> list[dict]:
        sql, args = self._calls_query(status, since, until, room)
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [dict(r) for r in self._conn().execute(sql, args)]

    def iter_calls(self, since: float | None = None, until: float | None = None,
                   room: str | None = None) -> Iterator[dict]:
        """Calls in press order, streamed row by row (for exports of any size)."""
        sql, args = self._calls_query("all", since, until, room, newest_first=False)
        yield from self._stream(sql, args)

    @staticmethod
    def _calls_query(status, since, until, room, newest_first=True) -> tuple[str, list]:
        where, args = [], []
        if status == "open":
            where.append(f"status IN ({', '.join('?' * len(ACTIVE))})")
            args += ACTIVE
        elif status == "closed":
            where.append(f"status NOT IN ({', '.join('?' * len(ACTIVE))})")
            args += ACTIVE
        if since is not None:
            where.append("pressed_at >= ?")
            args.append(since)
        if until is not None:
            where.append("pressed_at < ?")
            args.append(until)
        if room:
            where.append("room = ?")
            args.append(room)
        sql = "SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY pressed_at " + ("DESC" if newest_first else "ASC")
        return sql, args

    def troubles_since(self, since: float) -> list[Trouble]:
        """Every trouble that changed at or after ``since`` (epoch seconds), open or cleared."""
        return stored_troubles.troubles_since(self._conn(), since)

    def iter_events(self, since: float | None = None, until: float | None = None) -> Iterator[dict]:
        where, args = [], []
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        if until is not None:
            where.append("at < ?")
            args.append(until)
        sql = "SELECT * FROM events" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
        yield from self._stream(sql, args)

    def _stream(self, sql: str, args: list) -> Iterator[dict]:
        # A streamed response is iterated from whichever worker thread is free, so it gets a
        # connection of its own that may cross threads (used by one thread at a time).
        conn = connect(self.path, same_thread=False)
        try:
            for r in conn.execute(sql, args):
                yield dict(r)
        finally:
            conn.close()

    def snapshot(self) -> tuple[int, list[dict], list[dict]]:
        """(last event seq, active calls, devices), read in one consistent transaction."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            marks = ", ".join("?" * len(ACTIVE))
            calls = [dict(r) for r in conn.execute(
                f"SELECT * FROM calls WHERE status IN ({marks}) ORDER BY pressed_at", ACTIVE)]
            devices = [dict(r) for r in conn.execute("SELECT * FROM devices ORDER BY id")]
        finally:
            conn.execute("COMMIT")
        return seq, calls, devices

    def changes_since(self, seq: int) -> tuple[int, list[tuple[int, dict]]]:
        """Calls changed after event ``seq``: (last seq, [(seq of its last change, call row)])."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            rows = conn.execute(
                "SELECT c.*, e.mseq FROM (SELECT call, MAX(seq) AS mseq FROM events "
                "WHERE seq > ? AND call IS NOT NULL GROUP BY call) e JOIN calls c ON c.id = e.call "
                "ORDER BY e.mseq", (seq,)).fetchall()
        finally:
            conn.execute("COMMIT")
        return last, [(r["mseq"], {k: r[k] for k in r.keys() if k != "mseq"}) for r in rows]

    def associates_changed_since(self, seq: int) -> dict[str, int]:
        """Associates whose state, zone, reach or calls changed after event ``seq``: {id: last seq}."""
        kinds = (STATE_EVENT, ZONE_EVENT, REACH_EVENT) + ASSOCIATE_CALL_KINDS
        marks = ", ".join("?" * len(kinds))
        rows = self._conn().execute(
            f"SELECT actor, MAX(seq) FROM events WHERE seq > ? AND actor IS NOT NULL AND kind IN ({marks}) "
            "GROUP BY actor", (seq, *kinds)).fetchall()
        return {r[0]: r[1] for r in rows}

    def count_changes_since(self, seq: int) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM events WHERE seq > ?", (seq,)).fetchone()[0]

    def rejected(self, limit: int = 100) -> list[dict]:
        return [dict(r) for r in self._conn().execute(
            "SELECT * FROM rejected ORDER BY seq DESC LIMIT ?", (limit,))]

    def devices(self) -> list[dict]:
        return [dict(r) for r in self._conn().execute("SELECT * FROM devices ORDER BY id")]

    def token(self, hashed: str) -> dict | None:
        """The token stored with this hash (revoked ones too), or None."""
        row = self._conn().execute("SELECT * FROM tokens WHERE hash = ?", (hashed,)).fetchone()
        return dict(row) if row else None

    def token_named(self, name: str) -> dict | None:
        """The token of this name (revoked ones too), or None."""
        row = self._conn().execute("SELECT * FROM tokens WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def session(self, hashed: str) -> dict | None:
        """The session stored with this hash (expired ones too), or None."""
        row = self._conn().execute("SELECT * FROM sessions WHERE hash = ?", (hashed,)).fetchone()
        return dict(row) if row else None

    def known_browser(self, hashed: str, associate: str) -> bool:
        """Whether the browser whose cookie hashes to ``hashed`` has signed in as ``associate``."""
        return self._conn().execute("SELECT 1 FROM browsers WHERE hash = ? AND associate = ?",
                                    (hashed, associate)).fetchone() is not None

    def calls_between(self, since: float, until: float, columns: Iterable[str],
                      filters: dict[str, str] | None = None, statuses: Iterable[str] | None = None) -> list[dict]:
        """Calls pressed in [since, until), only ``columns``; ``filters`` by STAT_FILTERS names;
        only ``statuses`` if given."""
        cols = ", ".join(columns)
        where, args = ["pressed_at >= ?", "pressed_at < ?"], [since, until]
        if statuses is not None:
            statuses = tuple(statuses)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args += statuses
        for name, value in (filters or {}).items():
            if value is not None:
                where.append(f"{STAT_FILTERS[name]} = ?")
                args.append(value)
        cur = self._conn().execute(f"SELECT {cols} FROM calls WHERE {' AND '.join(where)}", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def rollup_rows(self, grain: str, dim: str, since: float, until: float,
                    value: str | None = None) -> list[tuple[float, str, int, rollup.Agg]]:
        """Roll-up rows of ``grain`` and ``dim`` (one ``value``, or all) whose bucket starts in
        [since, until): (start, value, hour of the week, sums)."""
        where, args = self._rollup_where(grain, dim, since, until, value)
        cur = self._conn().execute(f"SELECT start, value, slot, {', '.join(rollup.Agg.STORED)} FROM rollup "
                                   f"WHERE {where}", args)
        cur.row_factory = None  # plain tuples: thousands of rows
        make = rollup.Agg.from_values
        return [(r[0], r[1], r[2], make(*r[3:])) for r in cur]

    def rollup_sums(self, grain: str, dim: str, since: float, until: float, value: str | None = None,
                    per_slot: bool = False) -> dict[int, tuple[int, int, float]]:
        """Of the same rows, summed by SQLite: {hour of the week (0 unless ``per_slot``): (calls,
        handled calls, handling time s)}."""
        where, args = self._rollup_where(grain, dim, since, until, value)
        sums = "SUM(calls), SUM(handling_n), SUM(handling_sum)"
        sql = (f"SELECT slot, {sums} FROM rollup WHERE {where} GROUP BY slot" if per_slot
               else f"SELECT 0, {sums} FROM rollup WHERE {where} HAVING COUNT(*) > 0")
        return {r[0]: (r[1], r[2], r[3]) for r in self._conn().execute(sql, args)}

    def rollup_histogram(self, name: str, grain: str, dim: str, since: float, until: float,
                         value: str | None = None) -> int:
        """The sum of one histogram (``resp``, ``wait``, ``walk``, ``handling``) over the same rows."""
        assert name in rollup.HISTOGRAMS
        where, args = self._rollup_where(grain, dim, since, until, value)
        return sum(int.from_bytes(b, "little") for b, in self._conn().execute(
            f"SELECT {name} FROM rollup WHERE {where} AND {name} IS NOT NULL", args))

    @staticmethod
    def _rollup_where(grain, dim, since, until, value) -> tuple[str, list]:
        where, args = "grain = ? AND dim = ? AND start >= ? AND start < ?", [grain, dim, since, until]
        if value is not None:
            where += " AND value = ?"
            args.append(value)
        return where, args

    def rollups_ready(self, rules: rollup.Rules) -> bool:
        """Whether the roll-ups were made with ``rules`` (else readers use the calls)."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'rollup'").fetchone()
        return row is not None and row[0] == rules.signature()

    def associate_states(self, since: float, until: float) -> tuple[dict[str, str], list[tuple[float, str, str]]]:
        """Declared states: each associate's last before ``since``, and every change in
        [since, until) as (at, associate, state), in time order."""
        conn = self._conn()
        # json_extract: SQLite reads the state out of each event's detail (thousands a year).
        # The kind is written into the SQL (not bound): only then may SQLite use the partial
        # events_states index, named here because its planner prefers the index of all kinds.
        initial = dict(conn.execute(
            "SELECT e.actor, json_extract(e.detail, '$.state') FROM events e JOIN (SELECT actor, MAX(seq) AS seq "
            f"FROM events INDEXED BY events_states WHERE kind = '{STATE_EVENT}' AND at < ? AND actor IS NOT NULL "
            "GROUP BY actor) m "
            "ON e.seq = m.seq", (since,)).fetchall())
        cur = conn.execute(
            f"SELECT at, actor, json_extract(detail, '$.state') FROM events INDEXED BY events_states "
            f"WHERE kind = '{STATE_EVENT}' "
            "AND at >= ? AND at < ? AND actor IS NOT NULL ORDER BY at, seq", (since, until))
        cur.row_factory = None
        return initial, cur.fetchall()

    def alerts_and_receipts(self, since: float, until: float) -> tuple[list[tuple], list[tuple]]:
        """Alerts made and receipts got in [since, until): ([(associate, at)], [(associate,
        stage, via, latency_s)]), each from its own partial index (hub.domain.receipts)."""
        conn = self._conn()
        alerts = conn.execute("SELECT actor, at FROM events INDEXED BY events_alerted WHERE kind = 'alerted' "
                              "AND at >= ? AND at < ?", (since, until)).fetchall()
        receipts = conn.execute(
            "SELECT actor, json_extract(detail, '$.stage'), json_extract(detail, '$.via'), "
            "json_extract(detail, '$.latency_s') FROM events INDEXED BY events_receipts "
            "WHERE kind = 'receipt' AND at >= ? AND at < ?", (since, until)).fetchall()
        return [tuple(r) for r in alerts], [tuple(r) for r in receipts]

    def receipt_senders(self, until: float) -> set[str]:
        """Associates whose phone page sent a receipt before ``until``: those who use one."""
        return {r[0] for r in self._conn().execute(
            "SELECT DISTINCT actor FROM events INDEXED BY events_receipts WHERE kind = 'receipt' AND at < ? "
            "AND actor IS NOT NULL", (until,))}

    def service_calls(self, since: float, until: float, filters: dict[str, str] | None = None) -> list[dict]:
        """Calls pressed in [since, until) with what the service standards need
        (hub.domain.service_standards): their alerts (JSON, as stored), re-opening, and where
        their last "answered" came from (``answer_source``)."""
        where, args = ["c.pressed_at >= ?", "c.pressed_at < ?"], [since, until]
        for name, value in (filters or {}).items():
            if value is not None:
                where.append(f"c.{STAT_FILTERS[name]} = ?")
                args.append(value)
        cur = self._conn().execute(
            "SELECT c.id, c.pressed_at, c.status, c.closed_at, c.acknowledged_at, c.answered_at, c.answered_by, "
            "c.done_at, c.reopened_at, c.alerted, "
            "(SELECT e.source FROM events e WHERE e.call = c.id AND e.kind = 'answered' ORDER BY e.seq DESC LIMIT 1) "
            f"AS answer_source FROM calls c WHERE {' AND '.join(where)}", args)
        return [dict(r) for r in cur]
