"""What central takes of a store's range, and the rows it makes of it. Pure: no I/O, the clock
passed in.

Central holds each store's log as one contiguous prefix: its *mark* is the highest seq below
which it has everything. A range (callbell/chain_wire.py) covering (after, last]:

- ``last <= mark``: a repeat (QoS 1 redelivery, a resend): nothing to store;
- ``after > mark``: a gap (something before it was lost): nothing to store; the store resends
  from the mark when it sees the mark stand still (hub/uplink.py);
- otherwise: the events beyond the mark are stored and the mark becomes ``last``.

So every (store, seq) is stored exactly once, and the mark survives a restart as the highest
stored seq (chain/warehouse.py ``marks``).

    intake = Intake({"store-1"}, marks={})
    verdict = intake.take("store-1", payload, now)
    verdict.kind            # "stored", "repeat", "gap" or "rejected"
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from callbell.chain_wire import EventRange
from callbell.protocol import ProtocolError

#: Event kinds that decide a call, and the outcome each records.
OUTCOMES = {"answered": "answered", "missed": "missed", "cancelled": "cancelled"}

#: Local calendars are cached per quarter hour since the epoch, seconds: every zone's offset is
#: a whole number of quarter hours and changes only on one (as hub.domain.stats).
QUARTER_S = 900


@dataclass
class Verdict:
    kind: str  # stored | repeat | gap | rejected
    store: str | None = None
    rows: list[tuple] = field(default_factory=list)
    mark: int | None = None  # the store's mark after this range
    reason: str = ""


class LocalCalendar:
    """(local month's first day, hour 0-23, weekday 0 = Monday) of times in a zone, cached."""

    def __init__(self):
        self._zones: dict[str, ZoneInfo] = {}
        self._cache: dict[tuple[str, int], tuple[dt.date, int, int]] = {}

    def keys(self, tz: str, t: float) -> tuple[dt.date, int, int]:
        q = int(t // QUARTER_S)
        key = (tz, q)
        found = self._cache.get(key)
        if found is None:
            zone = self._zones.get(tz) or self._zones.setdefault(tz, ZoneInfo(tz))
            local = dt.datetime.fromtimestamp(q * QUARTER_S, zone)
            found = self._cache[key] = (local.date().replace(day=1), local.hour, local.weekday())
            if len(self._cache) > 200_000:  # ~5 years of quarters in a zone; plenty
                self._cache.clear()
        return found


def event_rows(r: EventRange, received_at: float, mark: int, calendar: LocalCalendar) -> list[tuple]:
    """Rows for chain.schema.EVENT_COLUMNS of the events of ``r`` beyond ``mark``."""
    rows = []
    for e in r.events:
        if e.seq <= mark:
            continue
        outcome = OUTCOMES.get(e.kind, "")
        response = 0.0
        within = 0
        if outcome == "answered":
            detail = e.detail or {}
            value = detail.get("response_s")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                response = float(value)
            elif e.pressed_at is not None:
                response = round(e.at - e.pressed_at, 3)
            within = int(response <= r.standard_s)
        month, hour, weekday = calendar.keys(r.tz, e.pressed_at if e.pressed_at is not None else e.at)
        rows.append((r.store, e.seq, e.at, e.recorded_at, e.kind, e.call or "", e.room or "", e.actor or "",
                     e.source or "", json.dumps(e.detail, separators=(",", ":")) if e.detail else "",
                     received_at, e.pressed_at, outcome, response, within, r.standard_s, month, hour, weekday))
    return rows


class Intake:
    """The marks of every known store, and the decision for each range that arrives."""

    def __init__(self, stores: set[str] | frozenset[str], marks: dict[str, int]):
        self.stores = frozenset(stores)
        self.marks = {s: marks.get(s, 0) for s in self.stores}
        self.calendar = LocalCalendar()
        self.counts = {"stored": 0, "repeat": 0, "gap": 0, "rejected": 0, "events": 0}

    def take(self, store: str, payload: bytes, now: float) -> Verdict:
        """Decide about one range message sent on ``store``'s topic. A stored verdict moves the
        mark at once: the caller must store its rows before it acknowledges the message, and
        call :meth:`undo` if it cannot."""
        if store not in self.stores:
            self.counts["rejected"] += 1
            return Verdict("rejected", store, reason=f"unknown store {store!r}: not in chain.toml's [[stores]]")
        try:
            r = EventRange.from_json(payload, store)
        except ProtocolError as e:
            self.counts["rejected"] += 1
            return Verdict("rejected", store, reason=str(e))
        mark = self.marks[store]
        if r.last <= mark:
            self.counts["repeat"] += 1
            return Verdict("repeat", store, mark=mark)
        if r.after > mark:
            self.counts["gap"] += 1
            return Verdict("gap", store, mark=mark, reason=f"range starts after {r.after}, central holds up to {mark}")
        rows = event_rows(r, now, mark, self.calendar)
        self.marks[store] = r.last
        self.counts["stored"] += 1
        self.counts["events"] += len(rows)
        return Verdict("stored", store, rows, r.last)

    def undo(self, marks: dict[str, int]) -> None:
        """Put marks back after a failed insert (``marks``: the marks before the batch)."""
        self.marks.update(marks)
