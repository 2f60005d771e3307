"""How well alerts reached people: delivery receipts over a period. Pure: no I/O.

From the event log: every ``alerted`` event (an alert made) and every ``receipt`` event (the
phone confirmed it had the alert, ``delivered``, or that it rang, ``shown``; detail
``latency_s`` since the alert, via ``page``, ``notification`` or ``push``). Figures, overall
and per associate: alerts, the share confirmed, the share confirmed within the store's
``receipt_s`` (what the escalation holds phones to), and the median and p90 latencies.

    receipt_figures(alerts=[("ana", 1.0)], receipts=[("ana", "delivered", "page", 0.03)], receipt_s=5)
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from hub.domain.call import DELIVERED, SHOWN


def _percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks, p in [0, 100] (as hub.domain.stats)."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 3)


def _group(alerts: int, receipts: list[tuple[str, str, float]], receipt_s: float) -> dict:
    delivered = [lat for stage, _, lat in receipts if stage == DELIVERED]
    shown = [lat for stage, _, lat in receipts if stage == SHOWN]
    via: dict[str, int] = defaultdict(int)
    for stage, how, _ in receipts:
        if stage == DELIVERED:
            via[how] += 1
    share = (lambda n: None if not alerts else round(min(1.0, n / alerts), 4))
    return {
        "alerts": alerts,
        "delivered": len(delivered), "delivered_share": share(len(delivered)),
        "delivered_in_time_share": share(sum(1 for lat in delivered if lat <= receipt_s)),
        "delivered_median_s": _percentile(delivered, 50), "delivered_p90_s": _percentile(delivered, 90),
        "shown": len(shown), "shown_share": share(len(shown)),
        "shown_median_s": _percentile(shown, 50), "shown_p90_s": _percentile(shown, 90),
        "delivered_via": dict(sorted(via.items())),
    }


def receipt_figures(alerts: Iterable[tuple[str, float]], receipts: Iterable[tuple[str, str, str, float]],
                    receipt_s: float, pages: Iterable[str] | None = None) -> dict:
    """``alerts``: (associate, at) of each alert; ``receipts``: (associate, stage, via,
    latency_s) of each receipt. Latencies in seconds. ``pages``: the associates known to use a
    phone page (one ever sent a receipt): each associate's ``phone_page`` says whether they are
    among them (None when not given). An associate without one (floor screen, ntfy only) sends
    no receipts by design, so their shares say nothing about their phone: with ``pages`` the
    total is of the others, and ``alerts_without_phone_page`` counts the alerts left out."""
    count: dict[str, int] = defaultdict(int)
    for who, _ in alerts:
        count[who] += 1
    mine: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for who, stage, via, latency in receipts:
        mine[who].append((stage, via, latency))
    everyone = [r for rs in mine.values() for r in rs]
    everyone_n = sum(count.values())
    if pages is None:
        total = _group(everyone_n, everyone, receipt_s)
        no_page = None
    else:  # the total is of the people with a phone page: the others send no receipts by design
        pages = set(pages) | set(mine)
        no_page = sum(n for who, n in count.items() if who not in pages)
        total = _group(everyone_n - no_page, everyone, receipt_s)
    return {"receipt_s": receipt_s, "total": total, "alerts_without_phone_page": no_page,
            "by_associate": {who: {**_group(count.get(who, 0), mine.get(who, []), receipt_s),
                                   "phone_page": None if pages is None else who in pages}
                             for who in sorted(set(count) | set(mine))}}
