#!/usr/bin/env python3
"""What one press costs the hub's SQLite on this disk: the dispatcher's transaction for a
press (BEGIN IMMEDIATE, inbox lookup, event append, inbox insert, call row rewrite, COMMIT),
done with hub.store.Writer itself, under each `synchronous` setting, plus a bare fsync.

    python bench/sqlite_commit.py [--n 300] [--tmp DIR]

Run it with --tmp on the disk the hub's database lives on: the commit is an fsync, and its
cost is a property of the disk (and its write cache), not of the code.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hub.domain.call import Floor, Room  # noqa: E402
from hub.store import Writer  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def line(label: str, ms: list[float]) -> str:
    return f"{label:<34}{pct(ms, 50):>8.3f}{pct(ms, 90):>8.3f}{pct(ms, 99):>8.3f}{max(ms):>8.3f}"


def press_transactions(folder: Path, synchronous: str, n: int) -> tuple[list[float], list[float]]:
    """(whole transaction ms, COMMIT alone ms) for n presses, as the dispatcher does them."""
    w = Writer(folder / f"bench-{synchronous.lower()}.db")
    w._conn.execute(f"PRAGMA synchronous = {synchronous}")
    floor = Floor([Room("room-1")])
    total, commit = [], []
    for i in range(n):
        now = time.time()
        t0 = time.perf_counter()
        w.begin()
        w.seen("pi", f"pi-ev-{i}")
        transitions = floor.press("room-1", "help", now, now, "device", None)
        for t in transitions:
            w.append(t, now)
        w.remember(f"pi-ev-{i}", "pi", "room-1", "call", now, 0, "pressed")
        for call in floor.take_changed():
            w.save_call(call, 0)
        t1 = time.perf_counter()
        w.commit()
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1000)
        commit.append((t2 - t1) * 1000)
        # Close the call (untimed) so the next press opens a new one, as in the benchmark.
        w.begin()
        for t in floor.presence("room-1", now) + floor.presence("room-1", now):
            w.append(t, now)
        for call in floor.take_changed():
            w.save_call(call, 0)
        w.commit()
    w.close()
    return total, commit


def bare_fsync(folder: Path, n: int) -> list[float]:
    out = []
    with open(folder / "fsync.bin", "wb") as f:
        for _ in range(n):
            f.write(b"x" * 200)
            f.flush()
            t0 = time.perf_counter()
            os.fsync(f.fileno())
            out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="SQLite cost of one press on this disk (see docs/benchmarks.md).")
    ap.add_argument("--n", type=int, default=300, help="presses per setting (default: %(default)s)")
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                    help="create the scratch folder here (default: the system's temporary folder)")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="callbell-sqlite-", dir=args.tmp))
    try:
        print(f"{'ms (n=%d)' % args.n:<34}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
        print(line("fsync() of a 200-byte append", bare_fsync(folder, args.n)))
        for sync in ("FULL", "NORMAL", "OFF"):
            total, commit = press_transactions(folder, sync, args.n)
            print(line(f"press transaction, sync={sync}", total))
            print(line("  of which COMMIT", commit))
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
