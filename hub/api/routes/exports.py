"""Exports of calls (CSV) and of the raw event log (CSV, JSON lines), streamed row by row from
the database, so any size goes out in constant memory."""
from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
from typing import Iterable, Iterator

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from hub.api.deps import HubContext, allow, hub
from hub.api.errors import error_responses
from hub.api.params import parse_time, time_query
from hub.store import damage
from hub.views import CSV_CALL_COLUMNS, CSV_EVENT_COLUMNS, csv_call, csv_event, iso

log = logging.getLogger("callbell.hub.http")

router = APIRouter(prefix="/api/v1", tags=["exports"], dependencies=[Depends(allow("manager"))],
                   responses=error_responses(401, 403))

#: Rows per chunk written to the socket: big enough to be cheap, small enough to start fast.
CHUNK_ROWS = 500


def _csv(header: Iterable[str], rows: Iterator[list]) -> Iterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    n = 0
    for row in rows:
        w.writerow(row)
        n += 1
        if n % CHUNK_ROWS == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


class CsvResponse(StreamingResponse):
    """A CSV download (RFC 4180), header row first."""
    media_type = "text/csv"
    charset = "utf-8"


class JsonLinesResponse(StreamingResponse):
    """One JSON object per line (JSON Lines, also called NDJSON)."""
    media_type = "application/x-ndjson"


def _checked(h: HubContext, body: Iterator[bytes]) -> Iterator[bytes]:
    """``body`` with its first chunk read before the response starts: a database that cannot be
    read answers 503 (hub/api/errors.py), not a 200 that breaks off. Should it fail later, the
    transfer is cut short without its last chunk (a client sees it incomplete, not a shorter
    file), and health and the ``database`` trouble are told."""
    first = next(body, b"")  # a database error here is the route's: 503

    def rest() -> Iterator[bytes]:
        yield first
        try:
            yield from body
        except sqlite3.Error as e:
            if h.database is not None and damage.kind_of(e):
                h.database.read_failed(e)
            log.error("an export broke off: the database failed: %s", damage.describe(e))
            raise
    return rest()


def _download(name: str, body: Iterator[bytes]) -> StreamingResponse:
    return CsvResponse(body, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _described(media_type: str, what: str) -> dict:
    """The ``responses=`` of an export: its real content type, a text body."""
    return {200: {"description": what, "content": {media_type: {"schema": {"type": "string"}}}},
            **error_responses(400, 422)}


@router.get("/calls.csv", response_class=CsvResponse,
            responses=_described("text/csv", "Calls, one per row, columns as docs/protocol.md lists"))
def calls_csv(h: HubContext = Depends(hub), since: str | None = time_query("Pressed at or after"),
              until: str | None = time_query("Pressed before")):
    tz = h.config.tz
    start, end = parse_time(since, "since", tz), parse_time(until, "until", tz)
    reader = h.reader
    return _download("calls.csv", _checked(h, _csv(CSV_CALL_COLUMNS,
                                                   (csv_call(r, tz) for r in reader.iter_calls(start, end)))))


@router.get("/events.csv", response_class=CsvResponse,
            responses=_described("text/csv", "The event log, one event per row, oldest first"))
def events_csv(h: HubContext = Depends(hub), since: str | None = time_query("Happened at or after"),
               until: str | None = time_query("Happened before")):
    tz = h.config.tz
    start, end = parse_time(since, "since", tz), parse_time(until, "until", tz)
    return _download("events.csv", _checked(h, _csv(CSV_EVENT_COLUMNS,
                                                    (csv_event(r, tz) for r in h.reader.iter_events(start, end)))))


def _jsonl(rows: Iterator[dict]) -> Iterator[bytes]:
    chunk: list[str] = []
    for row in rows:
        chunk.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        if len(chunk) >= CHUNK_ROWS:
            yield ("\n".join(chunk) + "\n").encode()
            chunk = []
    if chunk:
        yield ("\n".join(chunk) + "\n").encode()


def event_object(row: dict, tz) -> dict:
    """One stored event as a JSON line: times in ISO 8601 (store's zone) and as epoch seconds,
    ``detail`` as an object."""
    return {"seq": row["seq"], "at": iso(row["at"], tz), "at_ts": row["at"],
            "recorded_at": iso(row["recorded_at"], tz), "kind": row["kind"], "call": row["call"],
            "room": row["room"], "actor": row["actor"], "source": row["source"],
            "detail": json.loads(row["detail"]) if row["detail"] else None}


@router.get("/events.jsonl", response_class=JsonLinesResponse,
            responses=_described("application/x-ndjson", "The event log, one JSON object per line, oldest first"))
def events_jsonl(h: HubContext = Depends(hub), since: str | None = time_query("Happened at or after"),
                 until: str | None = time_query("Happened before")):
    """The raw event log, one JSON object per line, oldest first."""
    tz = h.config.tz
    start, end = parse_time(since, "since", tz), parse_time(until, "until", tz)
    return JsonLinesResponse(_checked(h, _jsonl(event_object(r, tz) for r in h.reader.iter_events(start, end))),
                             headers={"Content-Disposition": 'attachment; filename="events.jsonl"'})
