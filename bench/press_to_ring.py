#!/usr/bin/env python3
"""Press → the associate's phone page rings, in Chromium, against the raw broker round trip.

Starts its own Mosquitto and hub (bench/press_to_lamp.py's helpers) and Debian's Chromium
(Playwright), signs Ana in on the phone page, and measures in the same run:

1. baseline: the raw broker round trip (plain paho publish → on_message).
2. press → lamp: the retained lamp of each press (as bench/press_to_lamp.py).
3. press → ring: a plain paho "device" publishes a `call` event exactly as a device does;
   the page records, in the page, when it starts the ring (its call to navigator.vibrate(),
   made together with the first tone), as ``performance.timeOrigin + performance.now()``.
   Both ends read this machine's wall clock, so the difference is the latency (sub-ms; the
   page's clock is set when it loads and drifts by microseconds over a run).
4. receipts: for each press, the hub's ``delivered_at`` and ``shown_at`` of the alert minus
   its ``at`` (hub clock on both sides): how long the page took to confirm.

Each room is then reset (not timed: two `presence` events) and the next press waits until
the page has let the call go. Progress to stderr, the table to stdout.

    python bench/press_to_ring.py                     # 200 presses over 8 rooms
    python bench/press_to_ring.py --presses 500 --json ring.json
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from press_to_lamp import (  # noqa: E402
    DEVICE_ID, STORE_ID, BenchError, Client, Observer, bench_store, device_event, gap, loadavg,
    machine_info, measure_baseline, progress, say, summarize)
from callbell.protocol import Topics  # noqa: E402

#: Chromium as the probe and the tests start it (no sandbox as root, no network of its own).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]

#: Records, in the page, when each ring starts (epoch ms, sub-millisecond).
RECORD_RINGS = """
window.__rings = [];
Object.defineProperty(Navigator.prototype, "vibrate", { configurable: true, value() {
  window.__rings.push(performance.timeOrigin + performance.now());
  return true;
}});
"""

#: Longest wait for one ring, seconds.
RING_WAIT_S = 10.0


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise BenchError("Chromium is not installed (apt-get install chromium; ./scripts/test installs it)")
    return path


def api(port: int, method: str, path: str, body: dict | None = None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


def measure_rings(store, page, n: int, warmup: int, rng: random.Random, gap_ms) -> dict:
    topics = Topics("callbell", STORE_ID)
    broker = store.broker
    obs = Observer(broker.host, broker.port, topics)
    device = Client(broker.host, broker.port, DEVICE_ID)
    ring_ms, lamp_ms, delivered_ms, shown_ms = [], [], [], []
    missed = 0
    try:
        for i in range(warmup + n):
            room = store.rooms[i % len(store.rooms)]
            before = page.evaluate("window.__rings.length")
            obs.waiter.arm(lambda kind, ident, data, r=room: kind == "lamp" and ident == r and data.get("state") == "called")
            t0_wall, t0 = time.time(), time.perf_counter()
            device.publish(topics.event(room), device_event(id=f"ring-{i:06d}", device=DEVICE_ID, type="call",
                                                            reason="help", at=t0_wall))
            t_lamp, _ = obs.waiter.wait(f"the lamp of {room}")
            if not until(page, f"window.__rings.length > {before}"):
                missed += 1
                raise BenchError(f"the page did not ring within {RING_WAIT_S:g} s for press {i}")
            rang = page.evaluate(f"window.__rings[{before}]") / 1000.0
            alert = wait_receipts(store.http_port, room)
            if i >= warmup:
                ring_ms.append((rang - t0_wall) * 1000.0)
                lamp_ms.append((t_lamp - t0) * 1000.0)
                at = epoch(alert["at"])
                delivered_ms.append((epoch(alert["delivered_at"]) - at) * 1000.0)
                shown_ms.append((epoch(alert["shown_at"]) - at) * 1000.0)
            for k in range(2):  # answered, then done: the room is idle again
                device.publish(topics.event(room), device_event(id=f"ring-{i:06d}-p{k}", device=DEVICE_ID,
                                                                type="presence", at=time.time()))
            if not until(page, "!document.querySelector('#mine .call')"):
                raise BenchError(f"the page kept the call of press {i} after it was done")
            progress("press → ring", i + 1 - warmup, n, ring_ms)
            gap(rng, *gap_ms)
    finally:
        device.close()
        obs.close()
    return {"ring": ring_ms, "lamp": lamp_ms, "delivered": delivered_ms, "shown": shown_ms, "missed": missed}


def until(page, expression: str) -> bool:
    """Poll ``expression`` in the page (the ring's time is taken in the page, so the polling
    adds nothing to it; the hub's Content Security Policy rules out wait_for_function)."""
    deadline = time.monotonic() + RING_WAIT_S
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return True
        time.sleep(0.002)
    return False


def wait_receipts(port: int, room: str) -> dict:
    """The alert of ``room``'s open call once both its receipts are stored (the page may ring a
    moment before the call's row is committed: pages are shown changes first)."""
    deadline = time.monotonic() + RING_WAIT_S
    while time.monotonic() < deadline:
        for c in api(port, "GET", f"/api/v1/calls?status=open&room={room}"):
            alert = (c["alerted"] or [None])[0]
            if alert and alert["delivered_at"] and alert["shown_at"]:
                return alert
        time.sleep(0.01)
    raise BenchError(f"no delivered and shown receipts for {room}'s call within {RING_WAIT_S:g} s")


def report(r: dict) -> str:
    rows = [("raw broker round trip", r["baseline"]), ("press → lamp", r["lamp"]),
            ("press → phone page rings", r["ring"]), ("alert → delivered receipt (hub clock)", r["delivered"]),
            ("alert → shown receipt (hub clock)", r["shown"])]
    lines = ["", f"Press → ring (ms; {r['config']['presses']} presses over {r['config']['rooms']} rooms, "
                 f"one phone page in Chromium {r['machine'].get('chromium', '')})",
             f"{'':40}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"]
    for name, s in rows:
        lines.append(f"{name:40}{s['p50']:>8.2f}{s['p90']:>8.2f}{s['p99']:>8.2f}{s['max']:>8.2f}")
    lines.append(f"press → ring p50 is {r['ratio_p50']:.1f} × the raw round trip's; "
                 f"{r['ring']['p50'] - r['lamp']['p50']:.2f} ms after the lamp")
    lines.append(f"rings missed: {r['missed']}; load {r['machine']['loadavg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="press_to_ring.py",
        description="Measure press → the phone page rings (Chromium) and the page's delivery "
                    "receipts, against the raw Mosquitto round trip, in one run. Starts and stops "
                    "its own broker, hub and browser.",
        epilog="Example: python bench/press_to_ring.py --presses 500 --json ring.json. See docs/benchmarks.md.")
    ap.add_argument("--presses", type=int, default=200, help="timed presses (default: %(default)s)")
    ap.add_argument("--rooms", type=int, default=8, help="rooms in the store (default: %(default)s)")
    ap.add_argument("--baseline", type=int, default=300, metavar="N", help="timed raw round trips (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=10, metavar="N", help="untimed presses first (default: %(default)s)")
    ap.add_argument("--gap-ms", type=float, nargs=2, default=(20.0, 60.0), metavar=("MIN", "MAX"),
                    help="random pause between presses, ms (default: 20 60)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR", help="where the temporary folder goes")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures and samples as JSON")
    args = ap.parse_args(argv)
    if args.presses < 1 or args.rooms < 1 or args.baseline < 1 or args.warmup < 0:
        ap.error("--presses, --rooms and --baseline must be at least 1, --warmup at least 0")
    args.hub, args.broker_config = "process", []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        say("error: Playwright is not installed: pip install playwright (./scripts/test installs it)")
        return 1
    rng = random.Random(args.seed)
    load_at_start = loadavg()
    with bench_store(args, "callbell-ring-", rooms=args.rooms) as store:
        say(f"baseline: {args.baseline} raw round trips")
        base = measure_baseline(store.broker.host, store.broker.port, args.baseline, args.warmup, rng, (5.0, 25.0))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
                page.add_init_script(RECORD_RINGS)
                page.goto(f"http://127.0.0.1:{store.http_port}/phone")
                page.get_by_role("radio", name="ana").click()
                page.get_by_role("button", name="Start").click()
                page.wait_for_selector("#my-name:text('ana')")
                say(f"press → ring: {args.presses} presses (+{args.warmup} warm-up) over {args.rooms} rooms")
                got = measure_rings(store, page, args.presses, args.warmup, rng, tuple(args.gap_ms))
                version = browser.version
            finally:
                browser.close()
        store.hub.check()
        result = {"machine": {**machine_info(store.tmp, load_at_start), "chromium": version},
                  "config": {"presses": args.presses, "rooms": args.rooms, "baseline": args.baseline,
                             "warmup": args.warmup, "gap_ms": list(args.gap_ms), "seed": args.seed},
                  "baseline": summarize(base), "lamp": summarize(got["lamp"]), "ring": summarize(got["ring"]),
                  "delivered": summarize(got["delivered"]), "shown": summarize(got["shown"]),
                  "missed": got["missed"], "samples_ms": {"baseline": base, **{k: got[k] for k in
                                                                                 ("ring", "lamp", "delivered", "shown")}}}
        result["ratio_p50"] = result["ring"]["p50"] / result["baseline"]["p50"]
        print(report(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
            say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
