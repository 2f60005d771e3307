#!/usr/bin/env python3
"""Press → lamp while anonymous requests flood the hub's HTTP side, against the same hub quiet.

Issue #17 point 4: ~260 refused (401) requests a second once raised press→lamp p99 from 2.9 to
25.6 ms, because each became a ``rejected`` row, a warning and an MQTT message on the press
path. This measures, in one run on one broker and hub (as a store runs it: sign-in on, not
demo):

1. baseline: the raw broker round trip (bench/press_to_lamp.py's);
2. press → lamp, quiet: presses one at a time, as bench/press_to_lamp.py;
3. press → lamp under the flood: the same, while another process sends requests with a wrong
   token (``Authorization: Bearer wrong`` → 401) at ``--rate`` a second over keep-alive
   connections.

It then reports the 401s answered per second, what the flood left in the database (rows of
``rejected`` and the refusals they count), and whether every flood request was answered 401.

    python bench/press_under_flood.py                 # 40 rooms, 500 presses, 260 requests/s
    python bench/press_under_flood.py --rate 0        # as many requests as the flood gets answered
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import random
import sqlite3
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from press_to_lamp import (  # noqa: E402
    bench_store, loadavg, machine_info, measure_baseline, measure_presses, say, summarize,
)

#: The rate that once took press→lamp p99 to 25.6 ms (issue #17), requests/s.
DEFAULT_RATE = 260
#: Keep-alive connections the flood spreads its requests over.
FLOOD_CONNECTIONS = 4
#: The flood's target: any route that needs sign-in.
FLOOD_PATH = "/api/v1/calls"


def flood(port: int, rate: float, stop, answered, codes) -> None:
    """In its own process: ``rate`` requests/s in all (0: as fast as answered) with a wrong
    token, over FLOOD_CONNECTIONS connections, until ``stop`` is set. Counts answers into
    ``answered`` and the status codes other than 401 into ``codes`` (a dict proxy)."""
    def one(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        interval = FLOOD_CONNECTIONS / rate if rate > 0 else 0.0
        next_at = time.monotonic() + k * interval / FLOOD_CONNECTIONS
        while not stop.is_set():
            if interval:
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_at += interval
            try:
                conn.request("GET", FLOOD_PATH, headers={"Authorization": "Bearer wrong"})
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with answered.get_lock():
                answered.value += 1
            if status != 401:
                codes[str(status)] = codes.get(str(status), 0) + 1
    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(FLOOD_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def rejected_in(db: Path) -> tuple[int, int]:
    """(rows, refusals they count) in the hub's ``rejected`` table for HTTP."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows, total = conn.execute("SELECT COUNT(*), COALESCE(SUM(COALESCE(count, 1)), 0) FROM rejected "
                                   "WHERE channel = 'http'").fetchone()
        return rows, total
    finally:
        conn.close()


def report(r: dict) -> str:
    m, f = r["machine"], r["flood"]
    offered = f"{f['offered']:g}/s" if f["offered"] else "as fast as answered"
    lines = ["", "Callbell benchmark: press → retained lamp under a flood of refused HTTP requests",
             f"machine : {m['nproc']} CPU(s), {m['cpu']}; {m['kernel']}",
             f"run     : hub {r['config']['hub']}, sign-in on, {r['config']['rooms']} room(s), "
             f"{r['config']['presses']} presses per phase; flood offered {offered} "
             f"over {FLOOD_CONNECTIONS} connections to GET {FLOOD_PATH}",
             f"load    : {m['loadavg']}", "",
             f"{'ms':<32}{'n':>6}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"]
    for label, key in (("raw broker round trip", "baseline"), ("press → lamp, quiet", "quiet"),
                       ("press → lamp, under the flood", "flooded")):
        s = r[key]
        lines.append(f"{label:<32}{s['n']:>6}{s['p50']:>8.2f}{s['p90']:>8.2f}{s['p99']:>8.2f}{s['max']:>8.2f}")
    lines += ["",
              f"flood: {f['answered']} requests answered in {f['seconds']:.1f} s = {f['per_s']:.0f}/s; "
              f"not 401: {f['not_401'] or 'none'}",
              f"database: {f['rows']} rejected row(s) for HTTP, counting {f['counted']} refusal(s)",
              f"press p99 under the flood / quiet = {r['p99_ratio']:.2f}×"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="press_under_flood.py",
        description="Press → lamp latency with the hub's HTTP side quiet and under a flood of "
                    "refused (401) requests, in one run, against the raw broker round trip. "
                    "Starts and stops its own Mosquitto and hub (sign-in on).",
        epilog="See docs/benchmarks.md. Progress goes to stderr, the table to stdout.")
    ap.add_argument("--rooms", type=int, default=40, help="rooms in the store (default: %(default)s)")
    ap.add_argument("--presses", type=int, default=500, help="timed presses per phase (default: %(default)s)")
    ap.add_argument("--baseline", type=int, default=500, metavar="N", help="raw round trips (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=20, metavar="N", help="untimed presses first (default: %(default)s)")
    ap.add_argument("--rate", type=float, default=DEFAULT_RATE,
                    help="flood requests per second, 0 for as fast as the hub answers (default: %(default)s)")
    ap.add_argument("--hub", choices=("process", "inprocess"), default="process",
                    help="hub as its own process, as in production (default), or in this one")
    ap.add_argument("--gap-ms", type=float, nargs=2, default=(5.0, 25.0), metavar=("MIN", "MAX"),
                    help="random pause between presses, ms (default: 5 25)")
    ap.add_argument("--seed", type=int, default=None, help="random seed")
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR", help="where the temporary folder goes")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.rooms < 1 or args.presses < 1 or args.baseline < 1 or args.rate < 0:
        ap.error("--rooms, --presses and --baseline must be at least 1, --rate at least 0")
    rng = random.Random(args.seed)
    gap = tuple(args.gap_ms)
    load_at_start = loadavg()
    with bench_store(args, "callbell-flood-", rooms=args.rooms, demo=False) as store:
        host, port = store.broker.host, store.broker.port
        say(f"baseline: {args.baseline} raw round trips")
        base = measure_baseline(host, port, args.baseline, args.warmup, rng, gap)
        say(f"press → lamp, quiet: {args.presses} presses")
        quiet, _ = measure_presses(host, port, store.rooms, args.presses, args.warmup, "presence", rng, gap, store.hub)
        db = store.tmp / "callbell.db"
        rows_before, counted_before = rejected_in(db)

        ctx = multiprocessing.get_context("spawn")
        stop, answered, codes = ctx.Event(), ctx.Value("q", 0), ctx.Manager().dict()
        proc = ctx.Process(target=flood, args=(store.http_port, args.rate, stop, answered, codes), daemon=True)
        proc.start()
        time.sleep(2.0)  # let the flood reach its rate before timing
        say(f"press → lamp under the flood: {args.presses} presses")
        t0, n0 = time.monotonic(), answered.value
        flooded, _ = measure_presses(host, port, store.rooms, args.presses, 0, "presence", rng, gap, store.hub)
        seconds, n = time.monotonic() - t0, answered.value - n0
        stop.set()
        proc.join(15)
        store.hub.check()
        time.sleep(0.5)
        store.hub.stop()  # its refusals are all recorded on the way out
        rows, counted = rejected_in(db)

        q, fl = summarize(quiet), summarize(flooded)
        result = {
            "machine": machine_info(store.tmp, load_at_start),
            "config": {"hub": args.hub, "rooms": args.rooms, "presses": args.presses, "seed": args.seed},
            "baseline": summarize(base), "quiet": q, "flooded": fl,
            "flood": {"offered": args.rate, "answered": n, "seconds": seconds, "per_s": n / seconds,
                      "not_401": dict(codes), "rows": rows - rows_before, "counted": counted - counted_before},
            "p99_ratio": fl["p99"] / q["p99"],
        }
        print(report(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
            say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
