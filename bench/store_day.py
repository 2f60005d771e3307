"""A store day, simulated: nearest-first with the escalation ladder against alerting everyone.

    python bench/store_day.py                       # 40 simulated days per policy, seed 1
    python bench/store_day.py --days 200 --seed 7   # more days, other random numbers
    python bench/store_day.py --bystander 0         # everyone reacts as fast however many are asked

A discrete-event simulation built on the hub's own pure domain modules — the call state machine
(``Floor``), the associates (``Roster``), the ladder (``Escalation``) and the walking distances
(``Layout``) — on the demo store's floor plan (``examples/store.toml``, read with ``tomllib``).
Standard library only. Shoppers press from 09:00 to 20:00 at rates that follow the hour; four
associates work the floor between tasks in their zones, take breaks and a lunch, may miss or
decline an alert, walk at 1.2 m/s and serve for a while; a manager sits in the back office.

Policies compared, on the same shoppers and handling times (common random numbers):

- **broadcast**: every free associate is alerted at once (and anyone who becomes free while a
  call waits); the manager at the standard.
- **ladder, feed**: the default ladder (0 s nearest, 20 s next, 45 s zone, 90 s manager), with a
  location feed (the hub knows where everyone is).
- **ladder, no feed**: the same ladder knowing only the room of each associate's last presence
  and their home zone (no RTLS or beacons: the common case).
- **wider ladder, no feed**: 0 s nearest, 15 s next, 30 s zone, 45 s everyone free, 90 s manager
  (0, 1/6, 1/3, 1/2 and all of the standard): what a small store can configure when the default
  ladder leaves calls waiting for the manager while associates of the other zone are free.

How people react is the part a simulation cannot know, so it is a parameter: with the
*bystander effect*, an associate alerted together with others reacts more slowly (diffusion of
responsibility, Darley & Latané 1968): the median reaction time is multiplied by
``1 + bystander × (others alerted)``. The default run prints both 0 and 0.3.
Results and how to read them: docs/escalation.md.
"""
from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hub.domain.associates import Associate, Roster  # noqa: E402
from hub.domain.call import OPEN, WAITING, Call, Floor, Room, Timing  # noqa: E402
from hub.domain.escalation import Escalation, Ladder, Step  # noqa: E402
from hub.domain.layout import WALKING_SPEED_M_S, Layout, Place, Point, Spot, Walkway  # noqa: E402
from hub.domain.stats import percentile  # noqa: E402

EXAMPLE = ROOT / "examples" / "store.toml"

# -- the store day (tuning constants) ---------------------------------------------------------
#: Opening hours, and shopper calls per hour from opening: a quiet morning, a lunch peak, the
#: after-work peak. About 140 calls a day over 8 fitting rooms: a busy mid-size store.
OPEN_H, CLOSE_H = 9, 20
CALLS_PER_HOUR = (5, 8, 11, 15, 16, 13, 11, 12, 15, 19, 14)
#: Serving time at the room (bring another size, advise), seconds: lognormal median and spread.
HANDLING_MEDIAN_S, HANDLING_SIGMA = 100.0, 0.5
#: How long an associate takes to notice an alert and tap, seconds (lognormal): most look within
#: 10 s, some take half a minute (with a shopper, stocking a shelf).
REACT_MEDIAN_S, REACT_SIGMA = 8.0, 0.7
#: The manager reacts more slowly (office work) but always does: the failsafe.
MANAGER_REACT_MEDIAN_S = 15.0
#: Chance that an alerted associate does not notice at all, and that one who does declines
#: (busy with a shopper on the floor). Only the ladder learns from a decline.
MISS_P, DECLINE_P = 0.15, 0.10
#: Floor work between calls: an associate moves to a new spot every this many seconds on
#: average; the spot is in their home zone mostly, sometimes in the other zone or the stockroom.
TASK_MEAN_S = 180.0
HOME_ZONE_P, OTHER_ZONE_P = 0.7, 0.2
#: How far from their zone's point a spot can be, metres (the zone's sales floor).
SPOT_SPREAD_M = (8.0, 6.0)
#: Breaks, hours after opening for each associate, and minutes: two short breaks and a lunch,
#: staggered so that two of the four are never away at once.
BREAKS = {
    "ana": ((1.5, 15), (4.0, 30), (8.0, 15)),
    "ben": ((2.0, 15), (4.5, 30), (8.5, 15)),
    "chloe": ((2.5, 15), (5.0, 30), (9.0, 15)),
    "dev": ((3.0, 15), (5.5, 30), (9.5, 15)),
}
#: The manager's desk, metres (the back office beside the stockroom).
OFFICE = Point(20, 25)
#: Bystander factors printed by default.
BYSTANDERS = (0.0, 0.3)

T0 = 1_767_254_400.0  # a day's midnight (any; only differences matter)


# -- the store -----------------------------------------------------------------------------
@dataclass
class Store:
    layout: Layout
    rooms: list[Room]
    staff: list[Associate]
    standard_s: float


def load_store(path: Path = EXAMPLE) -> Store:
    """The demo store's layout and staff from its TOML (standard library only)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    spots = {r["id"]: Spot(r.get("zone"), Point(r["x"], r["y"]) if "x" in r else None) for r in data["rooms"]}
    zones = {z["id"]: Point(z["x"], z["y"]) if "x" in z else None for z in data.get("zones", [])}
    waypoints = {w["id"]: Point(w["x"], w["y"]) for w in data.get("waypoints", [])}
    walkways = [Walkway(tuple(w["path"]), w.get("length_m")) for w in data.get("walkways", [])]
    layout = Layout(spots, zones, waypoints, walkways)
    staff = [Associate(a["id"], a.get("name", ""), a.get("role", "associate"), a.get("zone")) for a in data["associates"]]
    rooms = [Room(r, s.zone) for r, s in spots.items()]
    return Store(layout, rooms, staff, float(data["store"].get("standard_s", 90)))


# -- people ----------------------------------------------------------------------------------
@dataclass
class Person:
    id: str
    home_zone: str | None
    manager: bool
    pos: Point
    doing: str = "off"  # off | floor | walking | serving | break
    breaks_due: list[tuple[float, float]] = field(default_factory=list)  # (start, minutes)
    rng: random.Random = field(default_factory=random.Random)

    @property
    def free(self) -> bool:
        return self.doing == "floor"


@dataclass
class Result:
    calls: list[Call]
    alerts: int
    walked_m: list[float]


class Day:
    """One simulated day under one policy."""

    def __init__(self, store: Store, ladder: Ladder, *, feed: bool, bystander: float, seed: str):
        self.store, self.feed, self.bystander = store, feed, bystander
        self.layout = store.layout
        self.floor = Floor(store.rooms, Timing(standard_s=store.standard_s, expiry_s=3600, handling_limit_s=3600))
        self.roster = Roster(store.staff, self.layout.zones)
        self.esc = Escalation(ladder, self.layout)
        self.arrivals = random.Random(f"{seed}/arrivals")  # shared by every policy
        self.handling = random.Random(f"{seed}/handling")
        self.seed = seed
        self.t = T0
        self._queue: list = []
        self._n = 0
        self._wakes: set[float] = set()
        self.closed: list[Call] = []
        self.alerts = 0
        self.walked: dict[str, float] = {}
        self.handling_s: dict[str, float] = {}
        self.people = {a.id: Person(a.id, a.home_zone, a.manager, OFFICE, rng=random.Random(f"{seed}/{a.id}"))
                       for a in store.staff}

    # -- the event loop ---------------------------------------------------------------------
    def at(self, t: float, fn, *args) -> None:
        self._n += 1
        heapq.heappush(self._queue, (t, self._n, fn, args))

    def run(self) -> Result:
        opening, closing = T0 + OPEN_H * 3600, T0 + CLOSE_H * 3600
        self._plan_shoppers(opening)
        for p in self.people.values():
            self.at(opening, self._sign_on, p)
            for start_h, minutes in BREAKS.get(p.id, ()):
                self.at(opening + start_h * 3600, self._break, p, minutes * 60)
            self.at(closing, self._sign_off, p)
        while self._queue:
            self.t, _, fn, args = heapq.heappop(self._queue)
            self._wakes.discard(self.t)
            fn(*args)
            self._settle()
        return Result(self.closed, self.alerts, list(self.walked.values()))

    def _settle(self) -> None:
        """What the hub does after every batch: timers, then the escalation."""
        self._apply(self.floor.tick(self.t) + self.esc.run(self.floor, self.roster, self.t))
        changed = self.floor.take_changed()
        self.roster.settle(changed)
        self.closed += [c for c in changed if not c.active]
        calls = self.floor.active_calls()
        deadline = min((d for d in (self.floor.next_deadline(), self.esc.next_deadline(calls, self.t))
                        if d is not None), default=None)
        if deadline is not None and deadline > self.t and deadline not in self._wakes:
            self._wakes.add(deadline)
            self.at(deadline, lambda: None)

    def _apply(self, transitions) -> None:
        for tr in transitions:
            self.roster.observe(tr)
            if tr.kind == "alerted":
                self._alerted(self.people[tr.actor], tr.call)

    # -- shoppers --------------------------------------------------------------------------
    def _plan_shoppers(self, opening: float) -> None:
        rng = self.arrivals
        for hour, rate in enumerate(CALLS_PER_HOUR):
            t = opening + hour * 3600
            end = t + 3600
            while True:
                t += rng.expovariate(rate / 3600)
                if t >= end:
                    break
                room = rng.choice(self.store.rooms).id
                self.at(t, self._press, room, rng.lognormvariate(math.log(HANDLING_MEDIAN_S), HANDLING_SIGMA))

    def _press(self, room: str, handling_s: float) -> None:
        if self.floor.current(room) is not None:
            # someone is still in this room: try a free one (the shopper takes the next room)
            free = [r.id for r in self.store.rooms if self.floor.current(r.id) is None]
            if not free:
                return
            room = free[0]
        self._apply(self.floor.press(room, "help", self.t, self.t))
        self.handling_s[self.floor.current(room).id] = handling_s

    # -- associates ------------------------------------------------------------------------
    def _sign_on(self, p: Person) -> None:
        self._apply(self.roster.set_state(p.id, "available", self.t, "phone"))
        p.doing = "floor"
        if p.manager:
            p.pos = OFFICE
        else:
            self._move(p)

    def _sign_off(self, p: Person) -> None:
        if p.doing in ("floor", "break"):
            self._apply(self.roster.set_state(p.id, "off", self.t, "phone"))
            p.doing = "off"
        elif p.doing != "off":
            self.at(self.t + 60, self._sign_off, p)  # finishes the call first

    def _break(self, p: Person, seconds: float) -> None:
        if p.doing == "floor":
            self._apply(self.roster.set_state(p.id, "break", self.t, "phone"))
            p.doing = "break"
            self.at(self.t + seconds, self._back, p)
        elif p.doing in ("walking", "serving"):
            self.at(self.t + 30, self._break, p, seconds)  # after the call

    def _back(self, p: Person) -> None:
        if p.doing == "break":
            self._apply(self.roster.set_state(p.id, "available", self.t, "phone"))
            p.doing, p.pos = "floor", OFFICE  # the break room is at the back
            self.at(self.t + p.rng.expovariate(1 / 30), self._move, p)

    def _move(self, p: Person) -> None:
        """Floor work: go to another spot (the walk itself is not modelled)."""
        if p.doing != "floor" or p.manager:
            return
        r = p.rng.random()
        zones = [z for z in self.layout.zones if z != p.home_zone]
        zone = p.home_zone if r < HOME_ZONE_P or not zones else p.rng.choice(zones) if r < HOME_ZONE_P + OTHER_ZONE_P else None
        if zone is None:
            p.pos = self.layout.waypoints.get("stockroom", OFFICE)
        else:
            c = self.layout.zone_points[zone]
            p.pos = Point(c.x + p.rng.uniform(-SPOT_SPREAD_M[0], SPOT_SPREAD_M[0]),
                          c.y + p.rng.uniform(-SPOT_SPREAD_M[1], SPOT_SPREAD_M[1]))
        if self.feed:
            self.roster.locate(p.id, Place(point=p.pos), self.t)
        self.at(self.t + p.rng.expovariate(1 / TASK_MEAN_S), self._move, p)

    def _alerted(self, p: Person, call_id: str) -> None:
        if not p.manager:
            self.alerts += 1
        if p.manager:
            delay = p.rng.lognormvariate(math.log(MANAGER_REACT_MEDIAN_S), REACT_SIGMA)
        else:
            if p.rng.random() < MISS_P:
                return
            call = self.floor.call(call_id)
            others = len({a.associate for a in call.alerted if a.associate != p.id} - set(call.declined))
            delay = p.rng.lognormvariate(math.log(REACT_MEDIAN_S * (1 + self.bystander * others)), REACT_SIGMA)
        self.at(self.t + delay, self._react, p, call_id)

    def _react(self, p: Person, call_id: str) -> None:
        call = self.floor.call(call_id)
        if call is None or call.status != OPEN or not p.free:
            return
        if not p.manager and p.rng.random() < DECLINE_P:
            self._apply(self.floor.decline(call_id, p.id, self.t, "phone"))
            return
        self._apply(self.floor.acknowledge(call_id, p.id, self.t, "phone"))
        metres = self.layout.distance(Place(point=p.pos), call.room)
        self.walked[call_id] = metres
        p.doing = "walking"
        self.at(self.t + metres / WALKING_SPEED_M_S, self._arrive, p, call_id)

    def _arrive(self, p: Person, call_id: str) -> None:
        call = self.floor.call(call_id)
        p.pos = self.layout.rooms[call.room].point if call else p.pos
        if call is None or call.status not in WAITING:
            p.doing = "floor"
            self._move(p)
            return
        self._apply(self.floor.presence(call.room, self.t, "device", p.id))  # answered
        p.doing = "serving"
        self.at(self.t + self.handling_s[call_id], self._done, p, call_id)

    def _done(self, p: Person, call_id: str) -> None:
        call = self.floor.call(call_id)
        if call is not None:
            self._apply(self.floor.presence(call.room, self.t, "device", p.id))  # done
        p.doing = "floor"
        if p.manager:
            p.pos = OFFICE
        else:
            self.at(self.t + p.rng.expovariate(1 / 60), self._move, p)


# -- policies and the report -----------------------------------------------------------------
def policies(store: Store) -> list[tuple[str, Ladder, bool]]:
    ladder = Ladder.default(store.standard_s)
    broadcast = Ladder((Step(0.0, "all"), Step(store.standard_s, "manager")), ladder.reack_s)
    s = store.standard_s
    wider = Ladder((Step(0.0, "nearest"), Step(round(s / 6), "next"), Step(round(s / 3), "zone"),
                    Step(round(s / 2), "all"), Step(s, "manager")), ladder.reack_s)
    return [("broadcast to all", broadcast, False),
            ("ladder, location feed", ladder, True),
            ("ladder, no feed", ladder, False),
            (f"wider ladder ({', '.join(f'{x.after_s:g}' for x in wider.steps)} s), no feed", wider, False)]


@dataclass
class Row:
    policy: str
    bystander: float
    days: int
    calls: int
    median_s: float
    p90_s: float
    within: float
    ack_median_s: float
    alerts_per_call: float
    walk_m: float
    manager_share: float


def simulate(days: int, seed: int, bystanders=BYSTANDERS, store: Store | None = None) -> list[Row]:
    store = store or load_store()
    rows = []
    for bystander in bystanders:
        for name, ladder, feed in policies(store):
            calls, alerts, walked = [], 0, []
            for d in range(days):
                r = Day(store, ladder, feed=feed, bystander=bystander, seed=f"{seed}/{d}").run()
                calls += r.calls
                alerts += r.alerts
                walked += r.walked_m
            rows.append(summarise(name, bystander, days, calls, alerts, walked, store.standard_s))
    return rows


def summarise(name, bystander, days, calls, alerts, walked, standard_s) -> Row:
    response = sorted(c.response_s for c in calls if c.response_s is not None)
    acks = sorted(c.wait_ack_s for c in calls if c.wait_ack_s is not None)
    missed = sum(1 for c in calls if c.response_s is None)
    within = sum(1 for r in response if r <= standard_s) / max(1, len(response) + missed)
    by_manager = sum(1 for c in calls if c.answered_by == "maria") / max(1, len(calls))
    return Row(name, bystander, days, len(calls), percentile(response, 50), percentile(response, 90), within,
               percentile(acks, 50), alerts / max(1, len(calls)), sum(walked) / max(1, len(walked)), by_manager)


def table(rows: list[Row]) -> str:
    head = ("| policy | bystander | calls | median | p90 | within 90 s | ack median | alerts/call | walk | by manager |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r.policy} | {r.bystander:g} | {r.calls} | {r.median_s:.0f} s | {r.p90_s:.0f} s | "
                     f"{100 * r.within:.1f} % | {r.ack_median_s:.0f} s | {r.alerts_per_call:.2f} | "
                     f"{r.walk_m:.1f} m | {100 * r.manager_share:.1f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=40, help="simulated days per policy (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--bystander", type=float, action="append",
                        help="bystander factor(s) to run (default: 0 and 0.3); repeat for several")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = simulate(args.days, args.seed, tuple(args.bystander) if args.bystander else BYSTANDERS)
    print(f"store day: {args.days} days x {len(rows)} runs, seed {args.seed}, "
          f"{sum(CALLS_PER_HOUR)} calls/day expected, "
          f"walking {WALKING_SPEED_M_S} m/s, {time.perf_counter() - started:.1f} s\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
