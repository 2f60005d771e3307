"""Bulk writes of generated history into a database no hub is using."""
from __future__ import annotations

from pathlib import Path

from hub.store.schema import CALL_COLUMNS, connect, create_schema


class HistoryLoader:
    """Bulk writes of generated history (hub/history.py) into a database the hub is not using.

    Not for a running hub: it opens its own writing connection, with ``synchronous = OFF`` for
    speed (a crash mid-load leaves a half-written history, never a damaged file: WAL).
    """

    def __init__(self, path: Path):
        create_schema(Path(path))
        self._conn = connect(Path(path))
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
