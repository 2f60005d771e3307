"""Troubles as the event log tells them (hub.domain.troubles): what a restarted hub takes up
and what the API lists. Queries on a connection of the caller's (the Writer's or a Reader's)."""
from __future__ import annotations

import json
import sqlite3

from hub.domain.call import Transition
from hub.domain.troubles import OPENED, CLEARED, TRANSITIONS, Trouble, rebuild

#: Device transitions kept with the troubles: a retired device is no longer expected.
RETIRED, UNRETIRED = "device_retired", "device_unretired"

_KINDS = ", ".join(f"'{k}'" for k in TRANSITIONS)
_ID = "json_extract(detail, '$.trouble')"


def _transitions(conn: sqlite3.Connection, sql: str, args: tuple = ()) -> list[Transition]:
    return [Transition(r["kind"], r["room"] or "", r["at"], r["source"], r["call"], r["actor"],
                       json.loads(r["detail"]) if r["detail"] else {})
            for r in conn.execute(sql, args)]


def open_troubles(conn: sqlite3.Connection) -> tuple[list[Trouble], int]:
    """The troubles opened and not cleared, and the highest trouble number handed out."""
    tr = _transitions(conn, f"SELECT * FROM events WHERE kind IN ({_KINDS}) AND {_ID} IN ("
                            f"SELECT {_ID} FROM events WHERE kind = '{OPENED}' EXCEPT "
                            f"SELECT {_ID} FROM events WHERE kind = '{CLEARED}') ORDER BY seq")
    last = conn.execute(f"SELECT MAX(CAST(substr({_ID}, 3) AS INTEGER)) FROM events "
                        f"WHERE kind = '{OPENED}'").fetchone()[0]
    return [t for t in rebuild(tr).values() if t.open], last or 0


def troubles_since(conn: sqlite3.Connection, since: float) -> list[Trouble]:
    """Every trouble with a change at or after ``since`` (open or cleared), oldest first."""
    tr = _transitions(conn, f"SELECT * FROM events WHERE kind IN ({_KINDS}) AND {_ID} IN ("
                            f"SELECT {_ID} FROM events WHERE kind IN ({_KINDS}) AND at >= ?) ORDER BY seq",
                      (since,))
    return sorted(rebuild(tr).values(), key=lambda t: (t.since, t.id))


def retired_devices(conn: sqlite3.Connection) -> set[str]:
    """Devices whose last retire/un-retire event retired them."""
    rows = conn.execute(
        "SELECT json_extract(detail, '$.device') AS device, kind FROM events e JOIN ("
        "SELECT MAX(seq) AS seq FROM events WHERE kind IN (?, ?) GROUP BY json_extract(detail, '$.device')"
        ") m ON e.seq = m.seq", (RETIRED, UNRETIRED)).fetchall()
    return {r["device"] for r in rows if r["kind"] == RETIRED}
