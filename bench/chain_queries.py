"""How long the chain's statistics take in the embedded warehouse (chDB), at chain scale.

    python bench/chain_queries.py                          # 100,000,000 calls, 500 stores, a year
    python bench/chain_queries.py --calls 10000000 --stores 50
    python bench/chain_queries.py --folder var/chain-100m  # keep (and reuse) the generated warehouse

Generates the calls with ClickHouse itself (``INSERT … SELECT FROM numbers()``, in chunks, with
progress on stderr): one deciding event per call (answered 90 %, missed 5 %, cancelled 5 %) into
the ``events`` table of chain/schema.py, so the roll-ups (its projections) are built as the
consumer's inserts build them. Stores open 09:00-21:00 every day; responses exponential with a
mean of 40 s (a few past the 90 s standard). The other events of a call (pressed, alerted,
done: ~5 a call) are not generated: the statistics read only the deciding ones, and they would
cost ~5× the disk and time; the exact one-store query would scan them too (5× its rows).

Then times, with the code the chain page runs (chain/figures.py), each the median of
``--repeat`` runs after a warm-up:

- one store's p50/p90/p95 by hour of day over the year — exact from its rows (goal ≤ 100 ms);
- the whole chain by store × hour — from the hourly roll-ups (goal ≤ 1 s);

and, as the baseline in the same run, the same chain query from the rows (exact, and with the
same histograms but the roll-ups switched off), plus how far the roll-ups' percentiles are from
the exact ones. The table goes to stdout (Markdown).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chain.figures import Period, figures  # noqa: E402
from chain.schema import ROLLUP_SELECT  # noqa: E402
from chain.warehouse import ChdbWarehouse  # noqa: E402

#: Goals from issue 18, milliseconds.
ONE_STORE_GOAL_MS = 100.0
CHAIN_GOAL_MS = 1000.0

#: Calls generated per INSERT: ~10 s each on 2 cores, so progress shows often and one
#: statement's memory stays small.
CHUNK = 10_000_000

#: The year the calls are spread over (seconds since the epoch, 2025-01-01 00:00 UTC).
YEAR_START = 1735689600
DAYS = 365


def generate(wh: ChdbWarehouse, calls: int, stores: int) -> None:
    per_store = max(calls // stores, 1)
    started = time.monotonic()
    for start in range(0, calls, CHUNK):
        n = min(CHUNK, calls - start)
        # number → store (round robin) and its seq; the call's day spreads a store's calls
        # evenly over the year, its hour and second come from hashes.
        wh.command(f"""
        INSERT INTO events (store, seq, at, kind, call, room, received_at, pressed_at, outcome, response_s,
                            within, standard_s, month, hour, weekday)
        SELECT store, seq, pressed + response_s, kind, concat('c-', toString(seq)), 'room-1', pressed + response_s,
               pressed, outcome, response_s, response_s <= 90 AND outcome = 'answered', 90, toStartOfMonth(toDateTime(pressed, 'UTC')),
               toHour(toDateTime(pressed, 'UTC')), toDayOfWeek(toDateTime(pressed, 'UTC')) - 1
        FROM (
            SELECT concat('store-', leftPad(toString(number % {stores}), 4, '0')) AS store,
                   intDiv(number, {stores}) + 1 AS seq,
                   cityHash64(number, 1) % 100 AS dice,
                   multiIf(dice < 90, 'answered', dice < 95, 'missed', 'cancelled') AS outcome,
                   multiIf(dice < 90, 'answered', dice < 95, 'missed', 'cancelled') AS kind,
                   {YEAR_START} + intDiv(intDiv(number, {stores}) * {DAYS}, {per_store}) * 86400
                     + (9 + cityHash64(number, 2) % 12) * 3600 + cityHash64(number, 3) % 3600 AS pressed,
                   if(outcome = 'answered',
                      round(least(-40 * log(1 - (cityHash64(number, 4) % 1000000 + 0.5) / 1000000), 900), 3), 0) AS response_s
            FROM numbers({start}, {n}))
        """)
        done = start + n
        rate = done / (time.monotonic() - started)
        print(f"\rgenerated {done:,}/{calls:,} calls ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    t = time.monotonic()
    print("merging parts (OPTIMIZE … FINAL) …", file=sys.stderr, flush=True)
    wh.command("OPTIMIZE TABLE events FINAL")
    print(f"merged in {time.monotonic() - t:.0f} s", file=sys.stderr)


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()
    runs, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=100_000_000, help="calls to generate (default: %(default)s)")
    p.add_argument("--stores", type=int, default=500, help="stores they are spread over (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per query (default: %(default)s)")
    p.add_argument("--folder", type=Path, help="the chDB folder to (re)use (default: a temporary one)")
    args = p.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="callbell-chain-bench-"))
    wh = ChdbWarehouse(folder)
    wh.create_schema()
    have = wh.rows("SELECT count(), uniqExact(store) FROM events")[0]
    if (int(have[0]), int(have[1])) != (args.calls, args.stores):
        if int(have[0]):
            wh.command("TRUNCATE TABLE events")
        generate(wh, args.calls, args.stores)
    size = wh.rows("SELECT sum(bytes_on_disk) FROM system.parts WHERE table = 'events' AND active")[0][0]
    stores = [r[0] for r in wh.rows("SELECT DISTINCT store FROM events ORDER BY store")]
    one = stores[len(stores) // 2]
    period = Period.everything()
    print(f"## Chain statistics, chDB {wh.rows('SELECT version()')[0][0]}: {args.calls:,} calls in "
          f"{args.stores} stores over {DAYS} days ({int(size) / 1e9:.1f} GB on disk)\n")
    print("| query | ms (median) | goal | rows |")
    print("|---|---:|---:|---:|")
    one_ms, one_rows = timed(lambda: figures(wh, [one], period, by="hour", exact=True), args.repeat)
    print(f"| one store ({args.calls // args.stores:,} calls): p50/p90/p95 by hour, exact from its rows | "
          f"{one_ms:.1f} | ≤ {ONE_STORE_GOAL_MS:.0f} | {len(one_rows)} |")
    one_r_ms, _ = timed(lambda: figures(wh, [one], period, by="hour", exact=False), args.repeat)
    print(f"| one store: the same from the roll-ups | {one_r_ms:.1f} | | |")
    chain_ms, rolled = timed(lambda: figures(wh, stores, period, by="hour", exact=False), args.repeat)
    print(f"| whole chain by store × hour, from the roll-ups | {chain_ms:.1f} | ≤ {CHAIN_GOAL_MS:.0f} | {len(rolled)} |")
    rank_ms, _ = timed(lambda: figures(wh, stores, period, exact=False), args.repeat)
    print(f"| whole chain by store (the ranking), from the roll-ups | {rank_ms:.1f} | | |")
    # The baseline, measured now: the same chain query without the roll-ups.
    where = "store IN {stores:Array(String)} AND month >= {since:Date} AND month < {until:Date}"
    params = {"stores": stores, "since": period.since.isoformat(), "until": period.until.isoformat()}
    raw_ms, _ = timed(lambda: wh.rows(f"SELECT store, hour, {ROLLUP_SELECT} FROM events WHERE {where} GROUP BY store, hour "
                                      "SETTINGS optimize_use_projections = 0", params), 1)
    print(f"| baseline: the same histograms from the rows (roll-ups off) | {raw_ms:.1f} | | |")
    exact_ms, exact = timed(lambda: figures(wh, stores, period, by="hour", exact=True), 1)
    print(f"| baseline: whole chain by store × hour, exact from the rows | {exact_ms:.1f} | | {len(exact)} |")
    want = {(r["store"], r["key"]): r for r in exact}
    errors = {k: [] for k in ("p50", "p90", "p95")}
    for r in rolled:
        w = want[(r["store"], r["key"])]
        assert (r["answered"], r["within"], r["missed"]) == (w["answered"], w["within"], w["missed"]), "counts differ"
        for k in errors:
            errors[k].append(abs(r[k] - w[k]))
    print("\nRoll-up percentiles against the exact ones (counts and shares are equal): " + "; ".join(
        f"{k} median {statistics.median(v):.3f} s, max {max(v):.3f} s" for k, v in errors.items()))
    ok = one_ms <= ONE_STORE_GOAL_MS and chain_ms <= CHAIN_GOAL_MS
    print(f"\nGoals {'met' if ok else 'NOT met'}: one store {one_ms:.0f} ms, whole chain {chain_ms:.0f} ms.")
    wh.close()
    if not args.folder:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
