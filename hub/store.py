"""The one module that owns SQLite (through sqlite-utils).

Tables:

- ``events``: append-only log of every transition (who, when, from where), including alerts
  and associates' state and zone changes. Never updated.
- ``calls``: one row per call, derived from its events, rewritten in the same transaction.
- ``inbox``: every device event id the hub has acted on (duplicates are ignored by id).
- ``rejected``: every message or request the hub could not accept, with the reason; refused
  HTTP requests summed per source and minute past the first few (hub/api/refusals.py), with
  ``count``. Kept for REJECTED_KEEP_S, at most REJECTED_MAX_ROWS.
- ``devices``: last status and health per device.
- ``rollup``: closed calls summed per local hour, day and month and per dimension value
  (hub/domain/rollup.py), kept by the writer in the transaction that changes the calls, so
  statistics over a year read thousands of rows, not millions. ``meta`` records the time zone
  and standard they were made with; a hub started with others rebuilds them
  (:func:`prepare_rollups`).
- ``tokens`` and ``sessions``: API tokens and the pages' sign-in sessions (hub/auth.py), each
  stored only as the SHA-256 of its secret. Written by :class:`Credentials`, not the Writer.
- ``push_subscriptions``: the phones' Web Push subscriptions (hub/push.py), each with the
  SHA-256 of the token its pushes carry. Written by :class:`PushSubscriptions`, not the Writer.

Concurrency: a SQLite file takes one writer at a time, and a sqlite-utils ``Database`` is bound
to the thread that made it. So exactly one thread (the dispatcher's) owns a :class:`Writer`;
HTTP handlers read through their own :class:`Reader` connections, which WAL lets run alongside
the writer without blocking it. Tokens and sessions are the one exception to "only the
dispatcher writes": :class:`Credentials` writes them on a short connection of its own (from the
``callbell token`` command, or the HTTP thread signing someone in). That is safe: SQLite lets
one writer at a time hold the file and makes the others wait (``BUSY_TIMEOUT_S``); these writes
are single-row and rare, so the dispatcher waits microseconds at most; and each Reader query
starts a new WAL snapshot, so a running hub sees a new or revoked token on its next request.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

import sqlite_utils

from hub.domain import rollup
from hub.domain.associates import AT_ROOM_KINDS, REACH_EVENT, STATE_EVENT, ZONE_EVENT
from hub.domain.call import ACTIVE, Alert, Call, Transition

#: How long a connection waits for a lock before failing, seconds. Only the writer writes, so
#: this only matters while a backup or an external tool holds the file.
BUSY_TIMEOUT_S = 5.0

#: Refusals older than this are deleted, seconds: a month is enough to look into a problem.
REJECTED_KEEP_S = 30 * 86400
#: At most this many ``rejected`` rows are kept (the newest): a flood of bad MQTT messages from
#: a device cannot grow the file without end. About 30 MB at the longest excerpts.
REJECTED_MAX_ROWS = 100_000
#: How often old ``rejected`` rows are deleted, seconds of the hub's clock (at a refusal).
REJECTED_PRUNE_EVERY_S = 3600

CALL_COLUMNS = {
    "id": str, "seq": int, "room": str, "zone": str, "reason": str, "status": str,
    "pressed_at": float, "acknowledged_at": float, "acknowledged_by": str,
    "answered_at": float, "answered_by": str, "done_at": float, "done_by": str,
    "closed_at": float, "reminders": int, "overdue": int, "auto_closed": int,
    "response_s": float, "wait_ack_s": float, "handling_s": float,
    "alerted": str, "declined": str, "last_event": int, "reopened_at": float,
}

#: Columns of the covering index the statistics read (so a year of calls is read from the
#: index alone, without the wide rows). Costs one more index update per saved call.
STATS_INDEX_COLUMNS = ("pressed_at", "status", "response_s", "wait_ack_s", "handling_s", "reminders",
                       "auto_closed", "zone", "room", "reason", "answered_by")
#: Statistics filters: query name → calls column ("associate" is who answered the call).
STAT_FILTERS = {"zone": "zone", "room": "room", "associate": "answered_by", "reason": "reason"}

ROLLUP_TABLE = """CREATE TABLE IF NOT EXISTS rollup (
    grain TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL, start REAL NOT NULL,
    slot INTEGER NOT NULL,  -- hour of the week the bucket starts in: weekday (0 = Monday) * 24 + hour
    calls INTEGER NOT NULL, answered INTEGER NOT NULL, missed INTEGER NOT NULL,
    cancelled INTEGER NOT NULL, reminders INTEGER NOT NULL, within INTEGER NOT NULL,
    handling_n INTEGER NOT NULL, handling_sum REAL NOT NULL, response_max REAL,
    resp BLOB, wait BLOB, walk BLOB, handling BLOB,
    PRIMARY KEY (grain, dim, value, start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_time ON rollup (grain, dim, start);
-- Sums per hour of the week (busiest hours, staffing, "how many calls") without the histograms.
CREATE INDEX IF NOT EXISTS rollup_sums ON rollup (grain, dim, value, start, slot, calls, handling_n, handling_sum)"""
ROLLUP_FIELDS = ("slot", "calls", "answered", "missed", "cancelled", "reminders", "within", "handling_n",
                 "handling_sum", "response_max", "resp", "wait", "walk", "handling")
_CLOSED_MARKS = ", ".join("?" * len(rollup.CLOSED))

#: Event kinds that change how an associate is shown (besides their state and zone events).
ASSOCIATE_CALL_KINDS = ("acknowledged", "answered", "done", "presence", "declined")


CREDENTIAL_TABLES = """CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, associate TEXT NOT NULL, role TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS browsers (
    hash TEXT NOT NULL, associate TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (hash, associate)) WITHOUT ROWID;"""

#: Browsers remembered per associate (hub/api/routes/session.py): a phone or two, the shared
#: tablets; the oldest beyond this are forgotten.
BROWSERS_PER_ASSOCIATE = 20


def _connect(path: Path, same_thread: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=same_thread)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = %d" % int(BUSY_TIMEOUT_S * 1000))
    return conn


def create_schema(path: Path) -> None:
    """Create the database and its tables if missing. Idempotent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    try:
        # WAL: readers never block the writer. synchronous=FULL: a commit survives a power cut,
        # which matters because the hub acknowledges a press to the broker only after it.
        conn.execute("PRAGMA journal_mode = WAL")
        db = sqlite_utils.Database(conn)
        db["events"].create({
            "seq": int, "at": float, "recorded_at": float, "kind": str, "call": str, "room": str,
            "actor": str, "source": str, "detail": str,
        }, pk="seq", if_not_exists=True)
        db["calls"].create(CALL_COLUMNS, pk="id", if_not_exists=True)
        # A database from an older hub: add the columns it lacks (never drops or changes one).
        have = db["calls"].columns_dict
        for name, kind in CALL_COLUMNS.items():
            if name not in have:
                db["calls"].add_column(name, kind)
        db["inbox"].create({
            "id": str, "device": str, "room": str, "type": str, "received_at": float,
            "age_ms": float, "outcome": str,
        }, pk="id", if_not_exists=True)
        db["rejected"].create({
            "seq": int, "at": float, "channel": str, "topic": str, "reason": str, "excerpt": str,
            "source": str, "count": int,
        }, pk="seq", if_not_exists=True)
        have = db["rejected"].columns_dict
        for name, kind in (("source", str), ("count", int)):  # added by issue 17
            if name not in have:
                db["rejected"].add_column(name, kind)
        db["devices"].create({
            "id": str, "status": str, "status_at": float, "health": str, "health_at": float,
        }, pk="id", if_not_exists=True)
        db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        conn.executescript(CREDENTIAL_TABLES)
        have = {r[1] for r in conn.execute("PRAGMA table_info(rollup)")}
        if have and have != {"grain", "dim", "value", "start", *ROLLUP_FIELDS}:
            # Roll-ups of another shape (an older hub): derived data, so made again.
            conn.executescript("DROP TABLE rollup; DELETE FROM meta WHERE key = 'rollup';")
        conn.executescript(ROLLUP_TABLE)
        for table, cols in (("events", ["call"]), ("events", ["kind"]), ("calls", ["pressed_at"]), ("rejected", ["at"]),
                            ("calls", ["status"]), ("calls", ["room", "pressed_at"])):
            db[table].create_index(cols, if_not_exists=True)
        db["calls"].create_index(STATS_INDEX_COLUMNS, index_name="calls_stats", if_not_exists=True)
        # Associates' sign-ins over a period (staffing) without visiting the rest of the log: a
        # small covering index of just those events (thousands a year among millions).
        conn.execute(f"CREATE INDEX IF NOT EXISTS events_states ON events (at, seq, actor, detail) "
                     f"WHERE kind = '{STATE_EVENT}'")
        # Alerts and their receipts over a period (hub.domain.receipts), likewise apart.
        conn.execute("CREATE INDEX IF NOT EXISTS events_alerted ON events (at, actor) WHERE kind = 'alerted'")
        conn.execute("CREATE INDEX IF NOT EXISTS events_receipts ON events (at, actor, detail) WHERE kind = 'receipt'")
    finally:
        conn.close()


def call_row(call: Call, last_event: int) -> dict:
    return {
        "id": call.id, "seq": int(call.id.split("-")[1]), "room": call.room, "zone": call.zone,
        "reason": call.reason, "status": call.status, "pressed_at": call.pressed_at,
        "acknowledged_at": call.acknowledged_at, "acknowledged_by": call.acknowledged_by,
        "answered_at": call.answered_at, "answered_by": call.answered_by,
        "done_at": call.done_at, "done_by": call.done_by, "closed_at": call.closed_at,
        "reminders": call.reminders, "overdue": int(call.overdue), "auto_closed": int(call.auto_closed),
        "response_s": call.response_s, "wait_ack_s": call.wait_ack_s, "handling_s": call.handling_s,
        "alerted": json.dumps([a.as_dict() for a in call.alerted]),
        "declined": json.dumps(call.declined), "last_event": last_event, "reopened_at": call.reopened_at,
    }


def call_from_row(row: dict) -> Call:
    return Call(
        id=row["id"], room=row["room"], zone=row["zone"], reason=row["reason"],
        pressed_at=row["pressed_at"], status=row["status"],
        acknowledged_at=row["acknowledged_at"], acknowledged_by=row["acknowledged_by"],
        answered_at=row["answered_at"], answered_by=row["answered_by"],
        done_at=row["done_at"], done_by=row["done_by"], closed_at=row["closed_at"],
        reminders=row["reminders"] or 0, overdue=bool(row["overdue"]),
        alerted=[Alert(**a) for a in json.loads(row["alerted"] or "[]")],
        declined=json.loads(row["declined"] or "[]"), auto_closed=bool(row["auto_closed"]),
        reopened_at=row.get("reopened_at"),
    )


class Writer:
    """The single writing connection. Use only from the thread that created it."""

    def __init__(self, path: Path, rules: rollup.Rules | None = None):
        """``rules``: keep the statistics roll-ups for this zone and standard (rebuilt first if
        they were made with others); None leaves them alone (tools that write no calls)."""
        create_schema(path)
        if rules is not None:
            prepare_rollups(path, rules)
        self._conn = _connect(path)
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
            _put_rollup(conn, (grain, start, dim, value), self._buckets.slot(start), agg)
        self._pending.clear()

    def _max_response(self, grain: str, start: float, dim: str, value: str) -> float | None:
        sql = (f"SELECT MAX(response_s) FROM calls WHERE pressed_at >= ? AND pressed_at < ? "
               f"AND status IN ({_CLOSED_MARKS})")
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

    def device_health(self, device: str, health: dict, at: float) -> None:
        self._conn.execute(
            "INSERT INTO devices (id, health, health_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET health = excluded.health, health_at = excluded.health_at",
            (device, json.dumps(health), at))

    def active_calls(self) -> list[Call]:
        marks = ", ".join("?" * len(ACTIVE))
        rows = self._conn.execute(f"SELECT * FROM calls WHERE status IN ({marks})", ACTIVE).fetchall()
        return [call_from_row(dict(r)) for r in rows]

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


@contextlib.contextmanager
def _transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own in one write transaction: committed at the end of the block,
    rolled back if it raises, closed either way. For tools and rare writes beside the Writer."""
    conn = _connect(Path(path))
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _put_rollup(conn: sqlite3.Connection, key: tuple[str, float, str, str], slot: int, agg: rollup.Agg) -> None:
    grain, start, dim, value = key
    fields = {**agg.to_row(), "slot": slot}
    conn.execute(f"INSERT OR REPLACE INTO rollup (grain, dim, value, start, {', '.join(ROLLUP_FIELDS)}) "
                 f"VALUES (?, ?, ?, ?, {', '.join('?' * len(ROLLUP_FIELDS))})",
                 (grain, dim, value, start, *(fields[f] for f in ROLLUP_FIELDS)))


def prepare_rollups(path: Path, rules: rollup.Rules,
                    progress: Callable[[int, int], None] | None = None, force: bool = False) -> bool:
    """Make the roll-ups match ``rules`` (zone and standard): rebuild them from the calls if
    they were made with other rules, by an older hub or never, or if ``force`` (calls were
    written past the writer). Returns whether it rebuilt.

    Month by month, so memory stays flat: each month's closed calls are summed per hour and
    dimension value, and the days and the month are summed from those hours. Takes about a
    minute for 2 million calls; ``progress(calls done, calls in all)`` hears of it.
    """
    create_schema(Path(path))
    conn = _connect(Path(path))
    try:
        have = conn.execute("SELECT value FROM meta WHERE key = 'rollup'").fetchone()
    finally:
        conn.close()
    if not force and have is not None and have[0] == rules.signature():
        return False
    buckets = rollup.Buckets(rules.tz)
    with _transaction(path) as conn:
        first, last, total = conn.execute(
            f"SELECT MIN(pressed_at), MAX(pressed_at), COUNT(*) FROM calls WHERE status IN ({_CLOSED_MARKS})",
            rollup.CLOSED).fetchone()
        conn.execute("DELETE FROM rollup")
        done = 0
        month = buckets.start("month", first) if first is not None else None
        while month is not None and month <= last:
            end = buckets.next("month", month)
            cur = conn.execute(
                f"SELECT {', '.join(rollup.COLUMNS)} FROM calls WHERE pressed_at >= ? AND pressed_at < ? "
                f"AND status IN ({_CLOSED_MARKS})", (month, end, *rollup.CLOSED))
            names = [d[0] for d in cur.description]
            hours: dict[tuple, rollup.Agg] = {}
            for values in cur:
                r = dict(zip(names, values))
                one = rollup.Agg().add_closed(r, rules.standard_s)
                for key in buckets.keys(r):
                    if key[0] == "hour":
                        agg = hours.get(key)
                        if agg is None:
                            hours[key] = agg = rollup.Agg()
                        agg.merge(one)
                done += 1
            coarser: dict[tuple, rollup.Agg] = {}
            for (_, start, dim, value), agg in hours.items():
                _, day, mon = buckets.of(start)
                for key in (("day", day, dim, value), ("month", mon, dim, value)):
                    coarser.setdefault(key, rollup.Agg()).merge(agg)
            for key, agg in (hours | coarser).items():
                _put_rollup(conn, key, buckets.slot(key[1]), agg)
            if progress:
                progress(done, total)
            month = end
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rollup', ?)", (rules.signature(),))
    return True


class Credentials:
    """Writes API tokens and sessions, each on a short connection of its own (see the module
    docstring for why that is safe alongside the Writer). Thread-safe: nothing is shared."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self.path)
        try:  # the CLI may come first, on a new file: WAL as create_schema would set it
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(CREDENTIAL_TABLES)
        finally:
            conn.close()

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _transaction(self.path)

    def add_token(self, name: str, role: str, hashed: str, at: float) -> None:
        """Store a new token. Raises ValueError if an unrevoked one has this name (a revoked
        one is replaced: its name is free again)."""
        with self._write() as conn:
            old = conn.execute("SELECT revoked_at FROM tokens WHERE name = ?", (name,)).fetchone()
            if old is not None and old["revoked_at"] is None:
                raise ValueError(f"a token named {name!r} exists: revoke it first, or pick another name")
            conn.execute("INSERT OR REPLACE INTO tokens (name, role, hash, created_at, revoked_at) "
                         "VALUES (?, ?, ?, ?, NULL)", (name, role, hashed, at))

    def revoke_token(self, name: str, at: float) -> bool:
        """Revoke the token named ``name``; False if there is no such unrevoked token."""
        with self._write() as conn:
            cur = conn.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (at, name))
            return cur.rowcount == 1

    def tokens(self) -> list[dict]:
        """Every token's name, role and times (never its hash), by name."""
        conn = _connect(self.path)
        try:
            return [dict(r) for r in conn.execute(
                "SELECT name, role, created_at, revoked_at FROM tokens ORDER BY name")]
        finally:
            conn.close()

    def add_session(self, hashed: str, associate: str, role: str, at: float, expires_at: float) -> None:
        """Store a new session, and forget the expired ones (so the table stays small)."""
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (at,))
            conn.execute("INSERT INTO sessions (hash, associate, role, created_at, expires_at) "
                         "VALUES (?, ?, ?, ?, ?)", (hashed, associate, role, at, expires_at))

    def end_session(self, hashed: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE hash = ?", (hashed,))

    def add_browser(self, hashed: str, associate: str, at: float) -> None:
        """Remember that the browser whose cookie hashes to ``hashed`` signed in as
        ``associate`` (its wrong tries then count apart from strangers'); keeps the newest
        BROWSERS_PER_ASSOCIATE."""
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO browsers (hash, associate, created_at) VALUES (?, ?, ?)",
                         (hashed, associate, at))
            conn.execute("DELETE FROM browsers WHERE associate = ? AND hash NOT IN (SELECT hash FROM browsers "
                         "WHERE associate = ? ORDER BY created_at DESC LIMIT ?)",
                         (associate, associate, BROWSERS_PER_ASSOCIATE))


PUSH_TABLE = """CREATE TABLE IF NOT EXISTS push_subscriptions (
    endpoint TEXT PRIMARY KEY, associate TEXT NOT NULL, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, last_ok_at REAL, failures INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS push_by_associate ON push_subscriptions (associate)"""


class PushSubscriptions:
    """The phones' Web Push subscriptions, on short connections of their own like
    :class:`Credentials` (rare, single-row writes: a phone subscribing, a push service saying a
    subscription is gone). Thread-safe: nothing is shared."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self.path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(PUSH_TABLE)
        finally:
            conn.close()

    def _read(self, sql: str, args: tuple = ()) -> list[dict]:
        conn = _connect(self.path)
        try:
            return [dict(r) for r in conn.execute(sql, args)]
        finally:
            conn.close()

    def add(self, endpoint: str, associate: str, p256dh: str, auth: str, token_hash: str, at: float) -> None:
        """Store a subscription; the same endpoint again (a phone re-subscribing, or a phone
        passed to someone else) replaces the old one, with its new associate and token."""
        with _transaction(self.path) as conn:
            conn.execute("INSERT OR REPLACE INTO push_subscriptions (endpoint, associate, p256dh, auth, token_hash, "
                         "created_at, last_ok_at, failures) VALUES (?, ?, ?, ?, ?, ?, NULL, 0)",
                         (endpoint, associate, p256dh, auth, token_hash, at))

    def remove(self, endpoint: str, associate: str | None = None) -> bool:
        """Forget a subscription (only ``associate``'s, if given); False if there was none."""
        with _transaction(self.path) as conn:
            if associate is None:
                cur = conn.execute("DELETE FROM push_subscriptions WHERE endpoint = ?", (endpoint,))
            else:
                cur = conn.execute("DELETE FROM push_subscriptions WHERE endpoint = ? AND associate = ?",
                                   (endpoint, associate))
            return cur.rowcount == 1

    def of(self, associate: str) -> list[dict]:
        return self._read("SELECT * FROM push_subscriptions WHERE associate = ? ORDER BY created_at", (associate,))

    def by_token(self, token_hash: str) -> dict | None:
        rows = self._read("SELECT * FROM push_subscriptions WHERE token_hash = ?", (token_hash,))
        return rows[0] if rows else None

    def associates(self) -> set[str]:
        """Who has at least one subscription."""
        return {r["associate"] for r in self._read("SELECT DISTINCT associate FROM push_subscriptions")}

    def delivered(self, endpoint: str, ok: bool, at: float) -> None:
        """Note how a push to ``endpoint`` went (``last_ok_at``, or one more failure)."""
        with _transaction(self.path) as conn:
            if ok:
                conn.execute("UPDATE push_subscriptions SET last_ok_at = ?, failures = 0 WHERE endpoint = ?",
                             (at, endpoint))
            else:
                conn.execute("UPDATE push_subscriptions SET failures = failures + 1 WHERE endpoint = ?", (endpoint,))


class Reader:
    """Read-only queries, each thread on its own connection."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
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
        conn = _connect(self.path, same_thread=False)
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


class HistoryLoader:
    """Bulk writes of generated history (hub/history.py) into a database the hub is not using.

    Not for a running hub: it opens its own writing connection, with ``synchronous = OFF`` for
    speed (a crash mid-load leaves a half-written history, never a damaged file: WAL).
    """

    def __init__(self, path: Path):
        create_schema(Path(path))
        self._conn = _connect(Path(path))
        self._conn.execute("PRAGMA synchronous = OFF")
        self.last_call_seq = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM calls").fetchone()[0]

    def __enter__(self) -> "HistoryLoader":
        return self

    def __exit__(self, *exc) -> None:
        self._conn.execute("PRAGMA optimize")
        self._conn.close()

    def write(self, calls: list[dict], events: list[tuple]) -> None:
        """One transaction: call rows (dicts of CALL_COLUMNS) and events (at, kind, call, room,
        actor, source, detail), recorded when they happened."""
        cols = list(CALL_COLUMNS)
        self._conn.execute("BEGIN")
        # Calls written past the writer: the roll-ups no longer match them (prepare_rollups).
        self._conn.execute("DELETE FROM meta WHERE key = 'rollup'")
        self._conn.executemany(
            f"INSERT INTO calls ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            ([r.get(c) for c in cols] for r in calls))
        self._conn.executemany(
            "INSERT INTO events (at, recorded_at, kind, call, room, actor, source, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ((e[0], e[0], *e[1:]) for e in events))
        self._conn.execute("COMMIT")
