"""A realistic call history for a store, written into a database: ``callbell seed-history``.

    callbell seed-history --database var/history.db --calls 200000 --days 365
    callbell seed-history --config examples/store.toml --database var/demo/callbell.db --calls 5000 --days 28

For trying the statistics page and for the statistics benchmark (bench/stats_queries.py). It
writes straight into the SQLite file, so the hub must not be running on that file.

The pattern (tuning constants below): shoppers press between opening and closing with an
hourly curve (a lunch peak and an after-work peak) and a weekly one (Saturday busiest, Sunday
shortest); rooms in every zone; associates work early or late shifts (signed in and out with
``associate_state`` events, as the hub records them, with a break in each shift), as many as
the staffing model says the day's busiest hours need. An associate takes one call at a time:
a call goes to whoever on the floor is free first, after a reaction time and a walk, and waits
when everyone is busy; some calls are cancelled by the shopper or missed; a slow answer brings
reminders. Handling times are log-normal. Everything is drawn from a seeded random generator, so a seed repeats.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Callable, Iterator

from hub.domain.associates import STATE_EVENT
from hub.domain import staffing
from hub.domain.call import DEFAULT_EXPIRY_S, DEFAULT_STANDARD_S, call_id

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
#: Median reaction of a free associate (alerted → "on my way") and walk (→ at the door),
#: seconds. A busy hour is slower because calls wait for someone to become free.
REACTION_MEDIAN_S, WALK_MEDIAN_S = 18.0, 24.0
#: Median handling time (at the door → done), seconds; log-normal spread, and its mean
#: (median · e^(σ²/2)), which the staffing model takes.
HANDLING_MEDIAN_S, HANDLING_SIGMA = 150.0, 0.6
HANDLING_MEAN_S = HANDLING_MEDIAN_S * math.exp(HANDLING_SIGMA ** 2 / 2)
#: A call nobody reached within this many seconds is missed (the hub's default expiry).
EXPIRY_S = DEFAULT_EXPIRY_S
#: Shifts: early from opening to EARLY_END_H, late from LATE_START_H to closing (an hour
#: together at 14:00); a break of BREAK_H hours in each.
EARLY_END_H, LATE_START_H, BREAK_H = 15, 14, 0.25
#: Each shift is sized for this share of calls within the standard in its busiest hour (the
#: staffing model); the breaks and the chance of an hour make the store fall a little short.
STAFF_TARGET_SHARE = 0.9
#: Share of arrivals tapped as "Arrived" on the phone rather than pressed at the door.
ARRIVED_ON_PHONE_SHARE = 0.2
#: Names of the associates made up when a shop without a roster needs more than it has.
EXTRA_ASSOCIATE = "assoc"
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
    #: Make up associates when the calls need more than ``associates`` (a shop without a
    #: roster); False: the calls wait for the associates there are, as they would.
    staff_to_load: bool = False

    @classmethod
    def default(cls, tz: tzinfo) -> "Shop":
        rooms = {f"{z}-{i}": z for z in DEFAULT_ZONES for i in range(1, DEFAULT_ROOMS_PER_ZONE + 1)}
        return cls(rooms, DEFAULT_ASSOCIATES, ("help", "size"), tz, staff_to_load=True)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _shift_sizes(counts: list[int], shop: Shop) -> tuple[int, int]:
    """How many associates the early (09-15) and the late (14-20) shift need for a day whose
    hours bring ``counts`` calls: the most any of its hours needs by the staffing model
    (hub.domain.staffing), at least one. The model counts the reaction as part of the walk."""
    need = [staffing.needed(k, HANDLING_MEAN_S, REACTION_MEDIAN_S + WALK_MEDIAN_S, shop.standard_s,
                            STAFF_TARGET_SHARE) or 1 for k in counts]
    hour = lambda h: need[h - OPEN_H]  # noqa: E731
    return (max(1, *(hour(h) for h in range(OPEN_H, EARLY_END_H))),
            max(1, *(hour(h) for h in range(LATE_START_H, CLOSE_H))))


def generate(shop: Shop, calls: int, days: int, until: float, seed: int = 1,
             first_seq: int = 1) -> Iterator[tuple[str, object]]:
    """Yield ``("event", row)`` for each day's shifts, then ``("call", (row, events))`` for its
    calls in time order; ``calls`` in all, spread over the ``days`` whole days before the day
    of ``until`` (seconds since the epoch).

    One associate takes one call at a time: a call goes to the associate on the floor (on
    shift, not on a break) who is free first, and waits for them if all are busy; a call that
    would wait past the expiry is missed. Each day's shifts are as large as the staffing model
    says its busiest hour needs, from the shop's associates (more are made up when
    ``shop.staff_to_load``; otherwise the calls wait, as they would)."""
    rng = random.Random(seed)
    end_day = datetime.fromtimestamp(until, shop.tz).date()
    day_list = [end_day - timedelta(days=days - i) for i in range(days)]
    season = [1 + SEASON_SWING * math.cos(2 * math.pi * (d.timetuple().tm_yday - 350) / 365) for d in day_list]
    weights = [WEEKDAY_WEIGHTS[d.weekday()] * s for d, s in zip(day_list, season)]
    total_w = sum(weights)
    rooms = list(shop.rooms)
    seq = first_seq
    carry = 0.0
    pool = list(shop.associates)
    for day, w in zip(day_list, weights):
        exact = calls * w / total_w + carry
        n_day = int(exact)
        carry = exact - n_day
        if day == day_list[-1]:
            n_day = calls - (seq - first_seq)
        midnight = datetime(day.year, day.month, day.day, tzinfo=shop.tz)

        def at(h: float) -> float:  # local hour of the day → epoch seconds (DST-correct)
            return (midnight + timedelta(hours=h)).timestamp()
        # Calls of the day, by hour.
        counts = [0] * len(HOUR_WEIGHTS)
        for _ in range(n_day):
            counts[rng.choices(range(len(HOUR_WEIGHTS)), HOUR_WEIGHTS)[0]] += 1
        # Shifts: as many early (09-15) and late (14-20) as the busiest hour of each needs,
        # rotating daily; with too few associates some work both (09-20).
        early_n, late_n = _shift_sizes(counts, shop)
        while shop.staff_to_load and len(pool) < early_n + late_n:
            pool.append(f"{EXTRA_ASSOCIATE}-{len(pool) + 1:03d}")
        order = list(pool)
        rng.shuffle(order)
        early = order[:min(early_n, len(order))]
        late = (order[len(early):] + early)[:min(late_n, len(order))]
        shifts = {a: (OPEN_H, EARLY_END_H) for a in early}
        for a in late:
            shifts[a] = (OPEN_H if a in shifts else LATE_START_H, CLOSE_H)
        floor: dict[str, tuple[float, float, float, float]] = {}  # who → shift from, to; break from, to
        for a, (s, e) in sorted(shifts.items()):
            brk = s + 2 + rng.random() * 2
            floor[a] = (at(s), at(e), at(brk), at(brk + BREAK_H))
            for h, state, was in ((s - 0.1, "available", "off"), (brk, "break", "available"),
                                  (brk + BREAK_H, "available", "break"), (e + 0.1, "off", "available")):
                yield "event", (at(h), STATE_EVENT, None, None, a, "phone", f'{{"state": "{state}", "was": "{was}"}}')
        free_at = {a: 0.0 for a in floor}  # when each is done with their last call
        pressed = sorted(at(OPEN_H + hi + rng.random()) for hi, k in enumerate(counts) for _ in range(k))
        for t in pressed:
            yield "call", _one_call(rng, shop, seq, t, rng.choice(rooms), floor, free_at)
            seq += 1


def _free_from(t: float, free: float, shift: tuple[float, float, float, float]) -> float | None:
    """When an associate with this ``shift`` (from, to, break from, break to) and free from
    ``free`` can set off for a call pressed at ``t``; None: not before their shift ends."""
    s, e, b0, b1 = shift
    x = max(t, free, s)
    if b0 <= x < b1:
        x = b1
    return x if x < e else None


def _one_call(rng: random.Random, shop: Shop, seq: int, pressed: float, room: str,
              floor: dict[str, tuple], free_at: dict[str, float]):
    cid = call_id(seq)
    reason = shop.reasons[0] if rng.random() < 0.7 or len(shop.reasons) == 1 else shop.reasons[1]
    row = {"id": cid, "seq": seq, "room": room, "zone": shop.rooms[room], "reason": reason,
           "pressed_at": pressed, "reminders": 0, "overdue": 0, "auto_closed": 0,
           "alerted": "[]", "declined": "[]"}
    events = [(pressed, "pressed", cid, room, None, "device", None)]
    u = rng.random()
    # The associate on the floor who is free first (ties: at random).
    options = [(x, rng.random(), a) for a, sh in floor.items() if (x := _free_from(pressed, free_at[a], sh)) is not None]
    start, _, who = min(options, default=(None, None, None))
    wait_ack = walk = handling = None
    if start is not None:
        wait_ack = start - pressed + _lognormal(rng, REACTION_MEDIAN_S, 0.7)
        walk = _lognormal(rng, WALK_MEDIAN_S, 0.35)
        handling = _lognormal(rng, HANDLING_MEDIAN_S, HANDLING_SIGMA)
    if u < CANCEL_SHARE:
        closed = pressed + rng.uniform(5, 60)
        row.update(status="cancelled", closed_at=closed)
        events.append((closed, "cancelled", cid, room, None, "device", None))
        return row, events
    if u < CANCEL_SHARE + MISS_SHARE or start is None or wait_ack + walk > EXPIRY_S:
        closed = pressed + EXPIRY_S
        row.update(status="missed", closed_at=closed, overdue=1, reminders=rng.randint(1, 3))
        events.append((closed, "missed", cid, room, None, "hub", None))
        return row, events
    ack, ans = pressed + wait_ack, pressed + wait_ack + walk
    done = ans + handling
    free_at[who] = done  # one call at a time
    reminders = int((ans - pressed) > 60 and rng.random() < 0.3) + int((ans - pressed) > 150 and rng.random() < 0.5)
    # The hub alerts whoever becomes free first, the moment they do (at once if someone is).
    alerted = max(pressed, start)
    arrived = "device" if rng.random() >= ARRIVED_ON_PHONE_SHARE else "phone"
    row.update(status="done", acknowledged_at=ack, acknowledged_by=who, answered_at=ans, answered_by=who,
               done_at=done, done_by=who, closed_at=done, reminders=reminders, overdue=int(ans - pressed > 90),
               response_s=ans - pressed, wait_ack_s=wait_ack, handling_s=handling,
               alerted=f'[{{"associate": "{who}", "at": {alerted!r}, "step": 1}}]')
    events += [(pressed + 61 + 30 * i, "reminder", cid, room, None, "device", None) for i in range(reminders)]
    events += [(alerted, "alerted", cid, room, who, "hub", '{"step": 1}'),
               (ack, "acknowledged", cid, room, who, "phone", None),
               (ans, "answered", cid, room, who, arrived, None),
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
