"""The tables, how a connection is opened, and a call as a row.

The file's layout is described in hub/store/__init__.py."""
from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Iterator

from hub.domain import rollup
from hub.domain.associates import STATE_EVENT
from hub.domain.call import Alert, Call
from hub.store.lean_sqlite_utils import sqlite_utils

#: How long a connection waits for a lock before failing, seconds. Only the writer writes, so
#: this only matters while a backup or an external tool holds the file.
BUSY_TIMEOUT_S = 5.0

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
CLOSED_MARKS = ", ".join("?" * len(rollup.CLOSED))

CREDENTIAL_TABLES = """CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, associate TEXT NOT NULL, role TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS browsers (
    hash TEXT NOT NULL, associate TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (hash, associate)) WITHOUT ROWID;"""


def connect(path: Path, same_thread: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=same_thread)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = %d" % int(BUSY_TIMEOUT_S * 1000))
    return conn


def prepare_tables(path: Path, script: str) -> None:
    """Create the tables of ``script`` in the file at ``path`` on a short connection of its own
    (the CLI may come before the hub, on a new file: WAL as create_schema would set it). A full
    or failing disk is logged, not raised (hub.store.damage): the hub still starts, lamps first."""
    from hub.store import damage  # here: damage's rules are the store's, not the schema's
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = connect(path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(script)
        finally:
            conn.close()
    except sqlite3.Error as e:
        if damage.kind_of(e) is None:
            raise
        logging.getLogger("callbell.hub.database").error("could not prepare %s (%s); going on", path, e)


def create_schema(path: Path) -> None:
    """Create the database and its tables if missing. Idempotent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        create_tables(conn)
    finally:
        conn.close()


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the tables on an open connection if missing (a file's, or one in memory)."""
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
    _inbox_per_device(conn)
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
                        ("rejected", ["channel", "seq"]),
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


INBOX_TABLE = """CREATE TABLE IF NOT EXISTS inbox (
    id TEXT NOT NULL, device TEXT NOT NULL, room TEXT, type TEXT, received_at FLOAT, age_ms FLOAT, outcome TEXT,
    PRIMARY KEY (device, id))"""


def _inbox_per_device(conn: sqlite3.Connection) -> None:
    """The ``inbox``, keyed by (device, id): event ids are unique per device only (issue 28).
    An older hub's inbox, keyed by id alone, is rebuilt with every row kept, in one transaction."""
    keys = [r["name"] for r in sorted(conn.execute("PRAGMA table_info(inbox)"), key=lambda r: r["pk"]) if r["pk"]]
    if keys == ["device", "id"]:
        return
    if not keys:
        conn.execute(INBOX_TABLE)
        return
    conn.executescript(f"""BEGIN IMMEDIATE;
        ALTER TABLE inbox RENAME TO inbox_by_id;
        {INBOX_TABLE};
        INSERT OR IGNORE INTO inbox (id, device, room, type, received_at, age_ms, outcome)
            SELECT id, COALESCE(device, ''), room, type, received_at, age_ms, outcome FROM inbox_by_id;
        DROP TABLE inbox_by_id;
        COMMIT;""")


@contextlib.contextmanager
def transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own in one write transaction: committed at the end of the block,
    rolled back if it raises, closed either way. For tools and rare writes beside the Writer."""
    conn = connect(Path(path))
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
