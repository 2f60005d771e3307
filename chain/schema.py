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
roll-up instead of the rows by itself. A roll-up's percentiles come from a histogram of
response times (1 s bins to 5 minutes, 10 s bins to 15): approximate, to within half a bin;
the exact figures come from the rows (chain/figures.py).

``rejected``: every message the consumer could not take, with the reason.
"""
from __future__ import annotations

#: Levels of the percentiles on the chain page: median, p90, p95.
LEVELS = (0.5, 0.9, 0.95)

#: The roll-ups' response-time histogram: 1 s bins up to FINE_UNTIL_S (where standards and
#: most responses are: percentiles there to within half a second, as on the hub's own page),
#: then WIDE_BIN_S bins up to WIDE_UNTIL_S (the default expiry), then one bin for the rest.
FINE_UNTIL_S = 300
WIDE_BIN_S = 10
WIDE_UNTIL_S = 900
BINS = FINE_UNTIL_S + (WIDE_UNTIL_S - FINE_UNTIL_S) // WIDE_BIN_S + 1   # 361
#: The bin of ``response_s`` (0-based), as ClickHouse computes it at insert.
BIN_SQL = (f"if(response_s < {FINE_UNTIL_S}, toUInt16(response_s), "
           f"toUInt16(least({FINE_UNTIL_S} + intDiv(toUInt32(response_s) - {FINE_UNTIL_S}, {WIDE_BIN_S}), {BINS - 1})))")

#: The aggregates both roll-ups hold; a query must spell them exactly so to be answered from them.
ROLLUP_AGGREGATES = (
    "countIf(outcome = 'answered')",
    "countIf(outcome = 'missed')",
    "countIf(outcome = 'cancelled')",
    "sum(within)",
    f"countIfResample(0, {BINS}, 1)(outcome = 'answered', response_bin)",
)
#: The same with the names the figures use.
ROLLUP_NAMES = ("answered", "missed", "cancelled", "within", "histogram")
ROLLUP_SELECT = ", ".join(f"{a} AS {n}" for a, n in zip(ROLLUP_AGGREGATES, ROLLUP_NAMES))


def _bin_middle(i: str) -> str:
    """SQL: the middle of 1-based bin ``i``, seconds (the last, open bin: its lower edge)."""
    return (f"if({i} = {BINS}, {WIDE_UNTIL_S}, if({i} <= {FINE_UNTIL_S}, {i} - 0.5, "
            f"{FINE_UNTIL_S} + {WIDE_BIN_S} * ({i} - {FINE_UNTIL_S + 1}) + {WIDE_BIN_S / 2:g}))")


def _kth(k: str) -> str:
    """SQL: the k-th smallest response (0-based), as the middle of its bin, from ``cum``."""
    return _bin_middle(f"arrayFirstIndex(x -> x > ({k}), cum)")


#: SQL over ``cum`` (the histogram's running sum) and ``n`` (its total): the LEVELS
#: percentiles by the exact method's rule (linear interpolation between closest ranks), each
#: call taken as the middle of its bin — hub/domain/rollup.py's ``percentiles``, in ClickHouse.
_RANK = "((n - 1) * p)"
_LO = f"toInt64(floor({_RANK}))"
HISTOGRAM_PERCENTILES = (f"arrayMap(p -> {_kth(_LO)} + ({_kth(f'least({_LO} + 1, toInt64(n) - 1)')} - {_kth(_LO)}) "
                         f"* ({_RANK} - {_LO}), [{', '.join(f'{x:g}' for x in LEVELS)}])")

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
    response_bin UInt16 MATERIALIZED {BIN_SQL},   -- the roll-ups' histogram bin
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
