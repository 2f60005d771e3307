"""The retail service standards a store is judged by, from its calls. Pure: rows in, figures
out; the time is an argument (docs/statistics.md, "Service standards").

Every figure is about the calls *pressed* in the period (as the other statistics), each call a
dict with ``pressed_at``, ``status``, ``closed_at``, ``answered_at``, ``answered_by``,
``reopened_at`` (epoch seconds or None), ``alerted`` (the alerts made, a list of
``{"associate", "at"}`` dicts in any order) and ``answer_source`` (where the stored "answered"
came from: ``device`` for the button at the door, ``phone``/``dashboard``/``api`` for an
"Arrived" tapped on a screen; None if never answered).

- **First-contact resolution**: of the answered calls that alerted someone, the share answered
  by a person of the first alert (everyone alerted at its moment) and never re-opened (nobody
  "on my way" who then failed to come).
- **Instant vs queued**: a call is *instant* when its first alert went out within
  :data:`INSTANT_S` of the press (someone free was asked at once), *queued* when it came later
  or the call closed (or is still waiting, now) with nobody alerted: it waited for someone to
  become free. Share of queued calls, and their wait (first alert − press; a queued call that
  ended without an alert is counted, but has no wait).
- **Time to abandon**: cancelled calls, closed − pressed: median and p90.
- **Handoffs per call**: answered calls, the distinct people alerted before the one who
  answered was (or, if they were never alerted, before they answered), them left out: the
  mean, and the share of calls with at least one.
- **Occupancy** (:func:`occupancy`): per hour of the week, the time associates spent on
  calls (from "on my way", or from arriving when they never said it, to done) ÷ the time they
  were signed in (hub.domain.staffing's signed-in hours), against the store's band.
- **Verified vs self-reported arrivals**: answered calls whose arrival came from the door
  (:data:`VERIFIED_SOURCES`: the staff button there, a badge reader) against an "Arrived"
  tapped on a phone or a screen, which could be tapped from anywhere.
"""
from __future__ import annotations

from typing import Iterable

from hub.domain.call import CANCELLED
from hub.domain.stats import percentile

#: A first alert this many seconds after the press or sooner counts as instant: the hub alerts
#: in the batch that stores the press, so an alert that found someone free follows within
#: milliseconds; 2 s leaves room for a queue of inputs, and is far below a real wait for a
#: busy associate (a handling time, minutes).
INSTANT_S = 2.0
#: Where a verified arrival comes from: the device at the door (its staff button; the badge
#: reader, once firmware reads it, reports through the same device).
VERIFIED_SOURCES = ("device",)


def _r(x: float | None, n: int = 3) -> float | None:
    return None if x is None else round(x, n)


def _share(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def first_alerts(alerted: list[dict]) -> tuple[float | None, set[str]]:
    """(when the first alert went out, who it went to: everyone alerted at that moment)."""
    if not alerted:
        return None, set()
    first = min(a["at"] for a in alerted)
    return first, {a["associate"] for a in alerted if a["at"] == first}


def handoffs(call: dict) -> int | None:
    """Distinct people alerted before the one who answered (None: not answered)."""
    who = call.get("answered_by")
    if who is None or call.get("answered_at") is None:
        return None
    mine = [a["at"] for a in call["alerted"] if a["associate"] == who]
    cut = min(mine) if mine else call["answered_at"]
    return len({a["associate"] for a in call["alerted"] if a["at"] < cut and a["associate"] != who})


def service_standards(calls: Iterable[dict], now: float) -> dict:
    """The five figures above for ``calls``, as of ``now`` (epoch seconds)."""
    fcr_n = fcr_k = 0
    instant = queued = 0
    queued_waits: list[float] = []
    abandon: list[float] = []
    hand: list[int] = []
    verified = self_reported = 0
    for c in calls:
        first_at, first_who = first_alerts(c["alerted"])
        answered = c.get("answered_by") is not None and c.get("answered_at") is not None
        if answered and first_at is not None:
            fcr_n += 1
            fcr_k += c["answered_by"] in first_who and c.get("reopened_at") is None
        if first_at is not None and first_at - c["pressed_at"] <= INSTANT_S:
            instant += 1
        elif first_at is not None:
            queued += 1
            queued_waits.append(first_at - c["pressed_at"])
        else:  # never alerted: queued once it had to wait (closed, or still waiting, past INSTANT_S)
            end = c.get("closed_at") or c.get("answered_at") or now
            if end - c["pressed_at"] > INSTANT_S and not answered:
                queued += 1
        if c["status"] == CANCELLED and c.get("closed_at") is not None:
            abandon.append(c["closed_at"] - c["pressed_at"])
        n = handoffs(c)
        if n is not None:
            hand.append(n)
        if answered:
            if c.get("answer_source") in VERIFIED_SOURCES:
                verified += 1
            else:
                self_reported += 1
    queued_waits.sort()
    abandon.sort()
    decided = instant + queued
    return {
        "first_contact": {"calls": fcr_n, "resolved": fcr_k, "share": _share(fcr_k, fcr_n)},
        "instant_vs_queued": {
            "calls": decided, "instant": instant, "queued": queued, "queued_share": _share(queued, decided),
            "queued_wait_median_s": _r(percentile(queued_waits, 50)),
            "queued_wait_p90_s": _r(percentile(queued_waits, 90)), "instant_s": INSTANT_S},
        "abandon": {"cancelled": len(abandon), "median_s": _r(percentile(abandon, 50)),
                    "p90_s": _r(percentile(abandon, 90))},
        "handoffs": {"calls": len(hand), "handoffs": sum(hand),
                     "per_call": _r(sum(hand) / len(hand)) if hand else None,
                     "with_handoff_share": _share(sum(1 for n in hand if n), len(hand))},
        "arrivals": {"answered": verified + self_reported, "verified": verified,
                     "self_reported": self_reported, "verified_share": _share(verified, verified + self_reported)},
    }


def busy_intervals(calls: Iterable[dict]) -> list[tuple[float, float]]:
    """(from, to) an associate was taken by each call: from "on my way" (``acknowledged_at``;
    or ``answered_at`` when they never said it) to ``done_at`` (or ``closed_at``)."""
    out = []
    for c in calls:
        a = c.get("acknowledged_at") or c.get("answered_at")
        b = c.get("done_at") or c.get("closed_at")
        if a is not None and b is not None and b > a:
            out.append((a, b))
    return out


def occupancy(busy: dict[tuple[int, int], float], signed_in: dict[tuple[int, int], float],
              band: tuple[float, float], weekdays: tuple[str, ...]) -> dict:
    """Busy ÷ signed-in associate-hours per hour of the week (keys (weekday, hour), summed over
    the period), each hour marked ``under``, ``in`` or ``over`` the ``band`` (low, high
    shares); hours nobody was signed in have no occupancy. And the period's total."""
    hours = []
    for key in sorted(busy.keys() | signed_in.keys()):
        b, s = busy.get(key, 0.0), signed_in.get(key, 0.0)
        occ = b / s if s > 0 else None
        hours.append({"weekday": weekdays[key[0]], "hour": key[1], "busy_h": round(b, 3), "signed_in_h": round(s, 3),
                      "occupancy": _r(occ, 4), "band": _band(occ, band)})
    b, s = sum(busy.values()), sum(signed_in.values())
    total = b / s if s > 0 else None
    return {"band": list(band), "busy_h": round(b, 3), "signed_in_h": round(s, 3), "occupancy": _r(total, 4),
            "band_of_total": _band(total, band), "hours": hours,
            "hours_under": sum(h["band"] == "under" for h in hours), "hours_over": sum(h["band"] == "over" for h in hours)}


def _band(occ: float | None, band: tuple[float, float]) -> str | None:
    if occ is None:
        return None
    return "under" if occ < band[0] else "over" if occ > band[1] else "in"
