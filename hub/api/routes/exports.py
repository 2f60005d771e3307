"""CSV exports of calls and of the raw event log, streamed row by row (any size)."""
from __future__ import annotations

import csv
import io
from typing import Iterable, Iterator

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from hub.api.deps import HubContext, hub
from hub.api.params import parse_time
from hub.views import CSV_CALL_COLUMNS, CSV_EVENT_COLUMNS, csv_call, csv_event

router = APIRouter(prefix="/api/v1", tags=["exports"])

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


def _download(name: str, body: Iterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/calls.csv")
def calls_csv(h: HubContext = Depends(hub), since: str | None = Query(None), until: str | None = Query(None)):
    tz = h.config.tz
    start, end = parse_time(since, "since", tz), parse_time(until, "until", tz)
    reader = h.reader
    return _download("calls.csv", _csv(CSV_CALL_COLUMNS, (csv_call(r, tz) for r in reader.iter_calls(start, end))))


@router.get("/events.csv")
def events_csv(h: HubContext = Depends(hub), since: str | None = Query(None), until: str | None = Query(None)):
    tz = h.config.tz
    start, end = parse_time(since, "since", tz), parse_time(until, "until", tz)
    return _download("events.csv", _csv(CSV_EVENT_COLUMNS, (csv_event(r, tz) for r in h.reader.iter_events(start, end))))
