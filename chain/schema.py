"""The chain warehouse's tables, in ClickHouse SQL (the same for chDB and a ClickHouse server).

``events``: every event of every store, exactly once per (store, seq) — the consumer inserts
only what extends a store's contiguous log (chain/intake.py), so the highest ``seq`` of a store
is also its mark. Sorted by (store, seq): one store's rows are one contiguous slice. Events that
decide a call carry the figures the statistics read, worked out at ingest in the store's time
zone (``outcome``, ``response_s``, ``within``, ``month``, ``hour``, ``weekday``).

The roll-ups are two aggregate *projections* of that table, by store, local month and hour of
day, and by store, local month and weekday: ClickHouse keeps them inside each data part, written
with the part and merged with it, so a roll-up can never disagree with the rows it sums, not
even after a crash mid-insert. A query grouped by those keys (with those aggregates) reads the
roll-up instead of the rows by itself; percentiles there come from t-digests (approximate; the
exact figures come from the rows, chain/figures.py).

``rejected``: every message the consumer could not take, with the reason.
"""
from __future__ import annotations

#: Levels of the percentiles on the chain page: median, p90, p95.
LEVELS = (0.5, 0.9, 0.95)
_LEVELS = ", ".join(f"{x:g}" for x in LEVELS)

#: The aggregates both roll-ups hold; a query must spell them exactly so to be answered from them.
ROLLUP_AGGREGATES = (
    "countIf(outcome = 'answered')",
    "countIf(outcome = 'missed')",
    "countIf(outcome = 'cancelled')",
    "sum(within)",
    f"quantilesTDigestIf({_LEVELS})(response_s, outcome = 'answered')",
)
#: The same with the names the figures use.
ROLLUP_NAMES = ("answered", "missed", "cancelled", "within", "response")
ROLLUP_SELECT = ", ".join(f"{a} AS {n}" for a, n in zip(ROLLUP_AGGREGATES, ROLLUP_NAMES))

EVENTS = f"""
CREATE TABLE IF NOT EXISTS events (
    store LowCardinality(String),
    seq UInt64,
    at Float64,                          -- seconds since the epoch, as the hub stored it
    recorded_at Nullable(Float64),
    kind LowCardinality(String),
    call String,
    room LowCardinality(String),
    actor String,
    source LowCardinality(String),
    detail String,                       -- JSON
    received_at Float64,                 -- when central stored it
    pressed_at Nullable(Float64),        -- the press of the event's call
    outcome Enum8('' = 0, 'answered' = 1, 'missed' = 2, 'cancelled' = 3),
    response_s Float64,                  -- answered − pressed, s (answered only, else 0)
    within UInt8,                        -- answered within the store's standard
    standard_s Float32,
    month Date,                          -- local month of the call's press (of the event without one)
    hour UInt8,                          -- local hour of day, 0-23
    weekday UInt8,                       -- local weekday, 0 = Monday
    PROJECTION by_hour (SELECT store, month, hour, {", ".join(ROLLUP_AGGREGATES)} GROUP BY store, month, hour),
    PROJECTION by_weekday (SELECT store, month, weekday, {", ".join(ROLLUP_AGGREGATES)} GROUP BY store, month, weekday)
) ENGINE = MergeTree ORDER BY (store, seq)
"""

REJECTED = """
CREATE TABLE IF NOT EXISTS rejected (
    at Float64, topic String, store String, reason String, excerpt String
) ENGINE = MergeTree ORDER BY at
"""

#: Columns of ``events`` in the order chain/intake.py makes rows.
EVENT_COLUMNS = ("store", "seq", "at", "recorded_at", "kind", "call", "room", "actor", "source", "detail",
                 "received_at", "pressed_at", "outcome", "response_s", "within", "standard_s", "month", "hour",
                 "weekday")
REJECTED_COLUMNS = ("at", "topic", "store", "reason", "excerpt")

STATEMENTS = (EVENTS, REJECTED)
