"""Parsing of query-string values shared by several routes."""
from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Annotated

from fastapi import Query
from pydantic import WithJsonSchema

from hub.api.errors import ApiError

#: Earliest time a query may name, seconds since the epoch: the day before 1970-01-01T00:00Z, so
#: that "1970-01-01" in a zone east of UTC still counts.
EARLIEST_TIME_S = -86_400.0

#: Latest time a query may name, seconds since the epoch: the day after 2100-01-01T00:00Z, so
#: that any time of 2099 in any zone still counts. Calls happen between 1970 and then; a value
#: outside is a mistake — milliseconds sent as seconds, say — and would overflow the date
#: arithmetic of the statistics.
LATEST_TIME_S = 4_102_531_200.0

#: A year from 1970 to 2099, the start of a date or time the API takes (see the bounds above).
_YEAR_1970_TO_2099 = r"^(19[7-9][0-9]|20[0-9][0-9])-"

#: What :func:`parse_time` takes, as the API description says it: an RFC 3339 date-time, a date
#: (its midnight in the store's zone), or seconds since the epoch; empty means no bound. (It
#: also takes a date-time without offset, in the store's zone, which JSON Schema cannot name.)
TIME_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": _YEAR_1970_TO_2099},
        {"type": "string", "format": "date", "pattern": _YEAR_1970_TO_2099},
        {"type": "number", "minimum": EARLIEST_TIME_S, "maximum": LATEST_TIME_S},
        {"type": "string", "maxLength": 0},
    ],
}


def time_query(description: str | None = None, alias: str | None = None):
    """A route's optional time parameter, described as TIME_SCHEMA; read it with parse_time:
    ``since: str | None = time_query("Pressed at or after")``."""
    return Query(None, alias=alias, description=description, json_schema_extra=TIME_SCHEMA)

#: A time in a JSON body (an alert's ``at`` sent back): a date-time or epoch seconds.
BodyTime = Annotated[str | float, WithJsonSchema({"anyOf": TIME_SCHEMA["anyOf"][::2]})]


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
                                      f"({EARLIEST_TIME_S:.0f} to {LATEST_TIME_S:.0f} seconds since the epoch), got {value[:40]!r}")
    return seconds
