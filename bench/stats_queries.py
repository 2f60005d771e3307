"""How long each statistics query takes over a year of calls.

    python bench/stats_queries.py                          # 2,000,000 calls over 365 days
    python bench/stats_queries.py --calls 200000 --repeat 5
    python bench/stats_queries.py --database var/bench-2m.db   # keep the generated history

Generates the history once with ``callbell seed-history``'s generator (hub/history.py; reused if
the database already holds that many calls), then times the hub's own route functions — the
same code ``GET /api/v1/stats…`` runs, without HTTP — for every grouping over the whole year,
with and without a filter, plus the heat map, the distribution, the staffing model and a full
calls CSV export (streamed; its peak memory is printed). Each figure is the median of
``--repeat`` runs after one warm-up run (the database's pages are then in the OS cache, as on a
hub that serves the page).

The table goes to stdout (Markdown), progress to stderr. Standard library only.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hub.api.routes import exports, stats  # noqa: E402
from hub.history import Shop, seed_history  # noqa: E402
from hub.domain.rollup import Rules  # noqa: E402
from hub.store import Reader, prepare_rollups  # noqa: E402
from hub.views import CSV_CALL_COLUMNS, csv_call  # noqa: E402

#: The target from issue 6: any one grouping over a year, milliseconds.
TARGET_MS = 100.0


def context(db: Path, tz: str) -> SimpleNamespace:
    """What the routes need of the running hub: the reader, the store settings and the clock."""
    store = SimpleNamespace(standard_s=90.0, target_share=0.9)
    config = SimpleNamespace(tz=ZoneInfo(tz), store=store)
    return SimpleNamespace(reader=Reader(db), config=config, clock=SimpleNamespace(time=time.time))


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    runs, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), out


def export_calls(h, limit: int | None = None) -> int:
    """Stream the calls CSV as ``GET /api/v1/calls.csv`` does; returns the bytes written."""
    tz = h.config.tz
    rows = (csv_call(r, tz) for r in itertools.islice(h.reader.iter_calls(), limit))
    return sum(len(chunk) for chunk in exports._csv(CSV_CALL_COLUMNS, rows))


def export_memory(h, limit: int) -> int:
    """Peak Python memory (traced) while streaming the first ``limit`` calls of the export."""
    tracemalloc.start()
    export_calls(h, limit)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _method(out) -> str:
    """How a route answered: exact or from the roll-ups' histograms."""
    if isinstance(out, dict):
        if "percentiles" in out:
            return out["percentiles"]
        return "/".join(sorted({_method(v) for v in out.values() if isinstance(v, dict)})) or "—"
    return "—"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2_000_000, help="calls in the history (default: %(default)s)")
    ap.add_argument("--days", type=int, default=365, help="days of history (default: %(default)s)")
    ap.add_argument("--database", type=Path, help="SQLite file to use or create (default: a temporary one)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per query (default: %(default)s)")
    ap.add_argument("--timezone", default="Europe/Berlin")
    ap.add_argument("--exact", action="store_true", help="also time the exact path (slow: seconds per query)")
    ap.add_argument("--only", nargs="*", help="run only the queries whose name contains one of these words")
    args = ap.parse_args(argv)

    tmp = None
    db = args.database
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="callbell-bench-")
        db = Path(tmp.name) / "history.db"
    h = context(db, args.timezone)
    have = h.reader.calls_between(0, 4e9, ("COUNT(*) AS n",))[0]["n"] if db.exists() else 0
    if have < args.calls:
        print(f"writing {args.calls - have:,} calls into {db} …", file=sys.stderr)
        t0 = time.monotonic()
        seed_history(db, Shop.default(h.config.tz), args.calls - have, args.days, until=time.time(),
                     progress=lambda d, t: print(f"\r  {d:,}/{t:,}", end="", file=sys.stderr))
        print(f"\n  {time.monotonic() - t0:.0f} s", file=sys.stderr)
    rules = Rules(h.config.tz, h.config.store.standard_s)
    if prepare_rollups(db, rules, progress=lambda d, t: print(f"\r  roll-ups {d:,}/{t:,}", end="", file=sys.stderr)):
        print(file=sys.stderr)
    year = dict(from_=str(time.time() - 366 * 86400), until=None, zone=None, room=None, associate=None, reason=None)
    method = "auto"

    def period(**kw):
        p = stats.Period(h, **{**year, **kw})
        p.method = method
        return p

    cases = [(f"stats by {by or '(total)'}", lambda by=by: stats.stats(h, period(), by)) for by in
             (None, "hour", "weekday", "day", "week", "zone", "room", "associate", "reason")]
    cases += [
        ("stats by hour, zone filter", lambda: stats.stats(h, period(zone="womens"), "hour")),
        ("stats by week, associate filter", lambda: stats.stats(h, period(associate="ana"), "week")),
        ("heat map", lambda: stats.stats_heatmap(h, period())),
        ("distribution", lambda: stats.stats_distribution(h, period(), 10.0, 300.0)),
        ("staffing", lambda: stats.stats_staffing(h, period(), None)),
        ("overview (what the page loads)", lambda: stats.stats_overview(h, period(), "week")),
        ("read the period's rows only", lambda: period().rows(h)),
    ]
    if args.only:
        cases = [c for c in cases if any(w in c[0] for w in args.only)]
    calls = h.reader.calls_between(0, 4e9, ("COUNT(*) AS n",))[0]["n"]
    print(f"\n{calls:,} calls over {args.days} days; median of {args.repeat} runs after a warm-up\n")
    print("| query | percentiles | ms | target ≤ 100 ms |")
    print("|---|---|---:|---|")
    for name, fn in cases:
        print(f"  {name} …", file=sys.stderr)
        ms, out = timed(fn, args.repeat)
        how = _method(out)
        verdict = "—" if name.startswith("read") else ("met" if ms <= TARGET_MS else "missed")
        print(f"| {name} | {how} | {ms:,.0f} | {verdict} |", flush=True)
    if args.exact:
        method = "exact"
        print("\nThe same, exact (from every call):\n")
        print("| query | ms |")
        print("|---|---:|")
        for name, fn in cases:
            if name.startswith("stats by") and "filter" not in name:
                print(f"  {name} (exact) …", file=sys.stderr)
                ms, _ = timed(fn, 1)
                print(f"| {name} | {ms:,.0f} |", flush=True)
    t0 = time.perf_counter()
    size = export_calls(h)
    dt = time.perf_counter() - t0
    small, large = export_memory(h, 10_000), export_memory(h, 100_000)
    print(f"\ncalls.csv, streamed: {size / 1e6:,.0f} MB in {dt:.1f} s ({calls / dt:,.0f} rows/s); "
          f"peak Python memory while streaming 10,000 calls {small / 1e6:.1f} MB, 100,000 calls "
          f"{large / 1e6:.1f} MB (traced)")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
