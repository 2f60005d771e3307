"""The statistics roll-ups: one written, all rebuilt (hub/domain/rollup.py holds their arithmetic)."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

from hub.domain import rollup
from hub.store.schema import CLOSED_MARKS, ROLLUP_FIELDS, connect, create_schema, transaction


def put_rollup(conn: sqlite3.Connection, key: tuple[str, float, str, str], slot: int, agg: rollup.Agg) -> None:
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
    conn = connect(Path(path))
    try:
        have = conn.execute("SELECT value FROM meta WHERE key = 'rollup'").fetchone()
    finally:
        conn.close()
    if not force and have is not None and have[0] == rules.signature():
        return False
    buckets = rollup.Buckets(rules.tz)
    with transaction(path) as conn:
        first, last, total = conn.execute(
            f"SELECT MIN(pressed_at), MAX(pressed_at), COUNT(*) FROM calls WHERE status IN ({CLOSED_MARKS})",
            rollup.CLOSED).fetchone()
        conn.execute("DELETE FROM rollup")
        done = 0
        month = buckets.start("month", first) if first is not None else None
        while month is not None and month <= last:
            end = buckets.next("month", month)
            cur = conn.execute(
                f"SELECT {', '.join(rollup.COLUMNS)} FROM calls WHERE pressed_at >= ? AND pressed_at < ? "
                f"AND status IN ({CLOSED_MARKS})", (month, end, *rollup.CLOSED))
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
                put_rollup(conn, key, buckets.slot(key[1]), agg)
            if progress:
                progress(done, total)
            month = end
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rollup', ?)", (rules.signature(),))
    return True
