"""Parsing of query-string values shared by several routes."""
from __future__ import annotations

from datetime import datetime, tzinfo

from hub.api.errors import ApiError


def parse_time(value: str | None, name: str, tz: tzinfo) -> float | None:
    """ISO 8601 (a date alone means its midnight in the store's zone) or epoch seconds."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError("bad_request", f"{name} must be ISO 8601 (2026-11-22T10:00:00+01:00) or "
                                      f"seconds since the epoch, got {value[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()
