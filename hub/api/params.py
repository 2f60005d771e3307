"""Parsing of query-string values shared by several routes."""
from __future__ import annotations

import math
from datetime import datetime, tzinfo

from hub.api.errors import ApiError

#: Earliest time a query may name, seconds since the epoch: the day before 1970-01-01T00:00Z, so
#: that "1970-01-01" in a zone east of UTC still counts.
EARLIEST_TIME_S = -86_400.0

#: Latest time a query may name, seconds since the epoch (2100-01-01T00:00:00Z). Calls happen
#: between 1970 and then; a value outside is a mistake — milliseconds sent as seconds, say — and
#: would overflow the date arithmetic of the statistics.
LATEST_TIME_S = 4_102_444_800.0


def parse_time(value: str | None, name: str, tz: tzinfo) -> float | None:
    """ISO 8601 (a date alone means its midnight in the store's zone) or epoch seconds, between
    1970 and 2100. Anything else is an ApiError naming ``name``."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ApiError("bad_request", f"{name} must be ISO 8601 (2026-11-22T10:00:00+01:00) or "
                                          f"seconds since the epoch, got {value[:40]!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        try:
            seconds = dt.timestamp()
        except (OverflowError, ValueError):  # year 1 in a zone east of UTC, say
            seconds = math.inf
    if not EARLIEST_TIME_S <= seconds <= LATEST_TIME_S:  # also NaN and infinities
        raise ApiError("bad_request", f"{name} must lie between 1970 and 2100 "
                                      f"(0 to {LATEST_TIME_S:.0f} seconds since the epoch), got {value[:40]!r}")
    return seconds
