"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}`` with a 4xx
status, never a 500 for bad input. Bad requests are also recorded in the ``rejected`` table."""
from __future__ import annotations

import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.domain.call import DomainError
from hub.store import damage

log = logging.getLogger("callbell.hub.http")

STATUS = {"not_found": 404, "unknown_room": 404, "unknown_associate": 400, "conflict": 409,
          "invalid": 400, "bad_request": 400, "unavailable": 503,
          "unauthorized": 401, "forbidden": 403}


class ApiError(Exception):
    """``headers``: added to the error's response (e.g. Retry-After for a 429)."""

    def __init__(self, code: str, message: str, status: int | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or STATUS.get(code, 400)
        self.headers = headers or {}


def error_response(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _record(request: Request, reason: str) -> None:
    """Note a refused request, summed per client and minute (hub.api.refusals)."""
    hub = getattr(request.app.state, "hub", None)
    if hub is not None:
        hub.refusals.note(request.client.host if request.client else "unknown",
                          f"{request.method} {request.url.path}", reason, str(request.url.query)[:200])


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        if e.status < 500 and e.code != "not_found":
            _record(request, e.message)
        response = error_response(e.code, e.message, e.status)
        response.headers.update(e.headers)
        if e.status == 401:  # RFC 9110: a 401 names the scheme that would work
            response.headers["WWW-Authenticate"] = 'Bearer realm="callbell"'
        return response

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, e: DomainError):
        return error_response(e.code, e.message, STATUS.get(e.code, 400))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        parts = []
        for err in e.errors():
            if err.get("type") == "json_invalid":  # its loc is ("body", character offset)
                offset = err.get("loc", ("body", "?"))[-1]
                parts.append(f"body is not valid JSON at character {offset}: "
                             f"{(err.get('ctx') or {}).get('error', err.get('msg'))}")
                continue
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{loc}: {err.get('msg')}")
        message = "; ".join(parts) or "invalid request"
        _record(request, message)
        return error_response("bad_request", message, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "bad_request")
        if code == "bad_request":
            _record(request, str(e.detail))
        return error_response(code, str(e.detail), e.status_code)

    @app.exception_handler(sqlite3.Error)
    async def database_error(request: Request, e: sqlite3.Error):
        # A full disk or a damaged file: the hub's fault, not the caller's, and it passes (a
        # disk is cleared, a file restored): 503 with the reason, health and a trouble.
        kind = damage.kind_of(e)
        if kind is None:
            return await unexpected(request, e)
        hub = getattr(request.app.state, "hub", None)
        if hub is not None and hub.database is not None:
            hub.database.read_failed(e)
        log.error("%s %s: the database failed: %s", request.method, request.url.path, damage.describe(e))
        what = {"full": "the hub's disk is full", "damaged": "the hub's database is damaged",
                "io": "the hub's disk failed"}[kind]
        return error_response("database", f"{what} ({e}); the store's IT is told (docs/hub.md, "
                                          "'When the database fails')", 503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response("internal", "the hub hit an unexpected error; it is logged", 500)
