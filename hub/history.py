"""A realistic call history for a store, written into a database: ``callbell seed-history``.

    callbell seed-history --database var/history.db --calls 200000 --days 365
    callbell seed-history --config examples/store.toml --database var/demo/callbell.db --calls 5000 --days 28

For trying the statistics page and for the statistics benchmark (bench/stats_queries.py). It
writes straight into the SQLite file, so the hub must not be running on that file.

The pattern (tuning constants below): shoppers press between opening and closing with an
hourly curve (a lunch peak and an after-work peak) and a weekly one (Saturday busiest, Sunday
shortest); rooms in every zone; associates work early or late shifts (signed in and out with
``associate_state`` events, as the hub records them, with a break in each shift). A call is
acknowledged after a reaction time and answered after a walk, both longer when the hour is busy;
some calls are cancelled by the shopper or missed; a slow answer brings reminders. Handling
times are log-normal. Everything is drawn from a seeded random generator, so a seed repeats.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Callable, Iterator

from hub.domain.associates import STATE_EVENT
from hub.domain.call import DEFAULT_STANDARD_S, call_id

#: Opening hours (local), and relative calls per hour from opening: quiet morning, lunch peak,
#: after-work peak.
OPEN_H, CLOSE_H = 9, 20
HOUR_WEIGHTS = (5, 8, 11, 15, 16, 13, 11, 12, 15, 19, 14)
#: Relative calls per weekday, Monday first: Saturday busiest, Sunday short.
WEEKDAY_WEIGHTS = (0.8, 0.8, 0.9, 1.0, 1.2, 1.6, 0.6)
#: The season: calls swing by this share over the year, most in mid-December, fewest in June.
SEASON_SWING = 0.25
#: Shares of outcomes: the shopper cancels; nobody comes (missed).
CANCEL_SHARE, MISS_SHARE = 0.04, 0.015
#: Median reaction (press → "on my way") and walk (→ at the door), seconds, in a quiet hour;
#: both grow with the hour's load (the busiest hour makes them ×(1 + LOAD_SLOWDOWN)).
REACTION_MEDIAN_S, WALK_MEDIAN_S, LOAD_SLOWDOWN = 18.0, 24.0, 1.2
#: Median handling time (at the door → done), seconds; log-normal spread.
HANDLING_MEDIAN_S, HANDLING_SIGMA = 150.0, 0.6
#: Calls per batch written in one transaction (memory stays flat however many calls).
BATCH_CALLS = 20_000

DEFAULT_ZONES = ("womens", "mens", "kids", "denim")
DEFAULT_ROOMS_PER_ZONE = 4
DEFAULT_ASSOCIATES = ("ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivo", "jo")


@dataclass(frozen=True)
class Shop:
    """What the generator needs of a store: rooms (id → zone), associates, reasons, the zone."""

    rooms: dict[str, str]
    associates: tuple[str, ...]
    reasons: tuple[str, ...]
    tz: tzinfo
    standard_s: float = DEFAULT_STANDARD_S  # for the statistics roll-ups written with the history

    @classmethod
    def default(cls, tz: tzinfo) -> "Shop":
        rooms = {f"{z}-{i}": z for z in DEFAULT_ZONES for i in range(1, DEFAULT_ROOMS_PER_ZONE + 1)}
        return cls(rooms, DEFAULT_ASSOCIATES, ("help", "size"), tz)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def generate(shop: Shop, calls: int, days: int, until: float, seed: int = 1,
             first_seq: int = 1) -> Iterator[tuple[str, object]]:
    """Yield ``("event", row)`` for each day's shifts, then ``("call", (row, events))`` for its
    calls in time order; ``calls`` in all,
    spread over the ``days`` whole days before the day of ``until`` (seconds since the epoch)."""
    rng = random.Random(seed)
    end_day = datetime.fromtimestamp(until, shop.tz).date()
    day_list = [end_day - timedelta(days=days - i) for i in range(days)]
    season = [1 + SEASON_SWING * math.cos(2 * math.pi * (d.timetuple().tm_yday - 350) / 365) for d in day_list]
    weights = [WEEKDAY_WEIGHTS[d.weekday()] * s for d, s in zip(day_list, season)]
    total_w = sum(weights)
    peak = max(HOUR_WEIGHTS)
    rooms = list(shop.rooms)
    seq = first_seq
    carry = 0.0
    half = len(shop.associates) // 2 or 1
    for day, w in zip(day_list, weights):
        exact = calls * w / total_w + carry
        n_day = int(exact)
        carry = exact - n_day
        if day == day_list[-1]:
            n_day = calls - (seq - first_seq)
        midnight = datetime(day.year, day.month, day.day, tzinfo=shop.tz)

        def at(h: float) -> float:  # local hour of the day → epoch seconds (DST-correct)
            return (midnight + timedelta(hours=h)).timestamp()
        # Shifts: the early half 9-15, the late half 14-20, rotating daily; one off each day.
        order = list(shop.associates)
        rng.shuffle(order)
        early, late = order[:half], order[half:]
        off = order[-1] if len(order) > 2 else None
        shifts = {a: (OPEN_H, 15) for a in early if a != off} | {a: (14, CLOSE_H) for a in late if a != off}
        for a, (s, e) in sorted(shifts.items()):
            brk = s + 2 + rng.random() * 2
            for h, state, was in ((s - 0.1, "available", "off"), (brk, "break", "available"),
                                  (brk + 0.25, "available", "break"), (e + 0.1, "off", "available")):
                yield "event", (at(h), STATE_EVENT, None, None, a, "phone", f'{{"state": "{state}", "was": "{was}"}}')
        # Calls of the day, by hour.
        counts = [0] * len(HOUR_WEIGHTS)
        for _ in range(n_day):
            counts[rng.choices(range(len(HOUR_WEIGHTS)), HOUR_WEIGHTS)[0]] += 1
        for hi, k in enumerate(counts):
            load = HOUR_WEIGHTS[hi] / peak
            on = [a for a, (s, e) in shifts.items() if s <= OPEN_H + hi < e] or list(shop.associates)
            for t in sorted(at(OPEN_H + hi + rng.random()) for _ in range(k)):
                yield "call", _one_call(rng, shop, seq, t, rng.choice(rooms), on, load)
                seq += 1


def _one_call(rng: random.Random, shop: Shop, seq: int, pressed: float, room: str, on: list, load: float):
    cid = call_id(seq)
    reason = shop.reasons[0] if rng.random() < 0.7 or len(shop.reasons) == 1 else shop.reasons[1]
    slow = 1 + LOAD_SLOWDOWN * load * load
    row = {"id": cid, "seq": seq, "room": room, "zone": shop.rooms[room], "reason": reason,
           "pressed_at": pressed, "reminders": 0, "overdue": 0, "auto_closed": 0,
           "alerted": "[]", "declined": "[]"}
    events = [(pressed, "pressed", cid, room, None, "device", None)]
    u = rng.random()
    who = rng.choice(on)
    if u < CANCEL_SHARE:
        closed = pressed + rng.uniform(5, 60)
        row.update(status="cancelled", closed_at=closed)
        events.append((closed, "cancelled", cid, room, None, "device", None))
        return row, events
    if u < CANCEL_SHARE + MISS_SHARE:
        closed = pressed + 900
        row.update(status="missed", closed_at=closed, overdue=1, reminders=rng.randint(1, 3))
        events.append((closed, "missed", cid, room, None, "hub", None))
        return row, events
    wait_ack = _lognormal(rng, REACTION_MEDIAN_S * slow, 0.7)
    walk = _lognormal(rng, WALK_MEDIAN_S, 0.35)
    handling = _lognormal(rng, HANDLING_MEDIAN_S, HANDLING_SIGMA)
    ack, ans = pressed + wait_ack, pressed + wait_ack + walk
    done = ans + handling
    reminders = int((ans - pressed) > 60 and rng.random() < 0.3) + int((ans - pressed) > 150 and rng.random() < 0.5)
    row.update(status="done", acknowledged_at=ack, acknowledged_by=who, answered_at=ans, answered_by=who,
               done_at=done, done_by=who, closed_at=done, reminders=reminders, overdue=int(ans - pressed > 90),
               response_s=ans - pressed, wait_ack_s=wait_ack, handling_s=handling)
    events += [(pressed + 61 + 30 * i, "reminder", cid, room, None, "device", None) for i in range(reminders)]
    events += [(ack, "acknowledged", cid, room, who, "phone", None),
               (ans, "answered", cid, room, who, "device", None),
               (done, "done", cid, room, who, "phone", None)]
    return row, events


def seed_history(path, shop: Shop, calls: int, days: int, until: float, seed: int = 1,
                 progress: Callable[[int, int], None] | None = None,
                 rollup_progress: Callable[[int, int], None] | None = None) -> int:
    """Write the history into the database at ``path`` (created if missing), then the
    statistics roll-ups for the shop's zone and standard; returns calls written."""
    from hub.domain.rollup import Rules
    from hub.store import HistoryLoader, prepare_rollups
    with HistoryLoader(path) as load:
        written = 0
        batch_calls, batch_events = [], []
        for kind, item in generate(shop, calls, days, until, seed, first_seq=load.last_call_seq + 1):
            if kind == "event":
                batch_events.append(item)
                continue
            row, events = item
            batch_calls.append(row)
            batch_events.extend(events)
            if len(batch_calls) >= BATCH_CALLS:
                load.write(batch_calls, sorted(batch_events, key=lambda e: e[0]))
                written += len(batch_calls)
                batch_calls, batch_events = [], []
                if progress:
                    progress(written, calls)
        load.write(batch_calls, sorted(batch_events, key=lambda e: e[0]))
        written += len(batch_calls)
        if progress:
            progress(written, calls)
    # The loader bypasses the writer (and marks the roll-ups stale): make them afresh.
    prepare_rollups(path, Rules(shop.tz, shop.standard_s), progress=rollup_progress)
    return written
