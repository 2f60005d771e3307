"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}`` with a 4xx
status, never a 500 for bad input. Bad requests are also recorded in the ``rejected`` table."""
from __future__ import annotations

import logging
import sqlite3

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.domain.call import DomainError
from hub.store import damage

log = logging.getLogger("callbell.hub.http")

STATUS = {"not_found": 404, "unknown_room": 404, "unknown_associate": 400, "conflict": 409,
          "invalid": 400, "bad_request": 400, "unavailable": 503,
          "unauthorized": 401, "forbidden": 403}


class ErrorDetail(BaseModel):
    code: str = Field(description="What went wrong, for programs: not_found, conflict, bad_request, "
                                  "unauthorized, forbidden, locked, too_large, …")
    message: str = Field(description="What went wrong, for people: names the parameter or the thing")


class ErrorBody(BaseModel):
    """Every error answer of the hub, whatever its status (hub/api/errors.py)."""
    error: ErrorDetail


#: What each error status means, as the API description says it.
ERROR_MEANING = {
    400: "Bad request: a parameter the hub cannot use (it says which), or an unknown associate",
    401: "Not signed in: no session cookie or token, or an unknown, expired or revoked one",
    403: "Signed in, but this needs a higher role, or a page's request lacks its CSRF header",
    404: "No such thing (call, associate, or a feature off on this hub)",
    405: "Method not allowed; the Allow header lists the ones that are",
    409: "The call is already closed, or closed meanwhile",
    413: "The request body is over the hub's cap",
    422: "The body or a parameter does not match this description (it says where)",
    429: "Too many wrong tries: wait the seconds in Retry-After",
    503: "Not now: the hub could not store the change, or is stopping (retry); or not collected on this hub",
}

#: Headers an error status always carries, declared with it.
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "The scheme that would work: Bearer", "schema": {"type": "string"}}},
    405: {"Allow": {"description": "The methods this path takes", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}},
}


#: Where the API description keeps ErrorBody (hub.api.app puts it there); an error is JSON
#: whatever the route answers when all is well (CSV, an event stream).
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def error_responses(*statuses: int) -> dict[int, dict]:
    """The ``responses=`` entries of a route or router for the error statuses it may answer
    with: each is the one error body, with its meaning and the headers it carries."""
    return {status: {"description": ERROR_MEANING[status], "content": _ERROR_CONTENT,
                     **({"headers": _ERROR_HEADERS[status]} if status in _ERROR_HEADERS else {})}
            for status in statuses}


def error_schemas() -> dict[str, dict]:
    """ErrorBody and what it holds, as ``components/schemas`` of the API description."""
    from pydantic.json_schema import models_json_schema
    _, top = models_json_schema([(ErrorBody, "serialization")], ref_template="#/components/schemas/{model}")
    return top["$defs"]


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


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method a route of ``app`` takes at ``path``. (Starlette's 405 names the methods of
    the first route of the path only: GET for /api/v1/session, which also takes POST and DELETE.)"""
    expand = getattr(fastapi.routing, "iter_route_contexts", None)  # FastAPI 0.16x: lazy routers
    methods: set[str] = set()
    for route in (expand(app.routes) if expand else app.routes):
        regex, taken = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and taken and regex.match(path):
            methods |= set(taken)
    return sorted(methods)


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
        response = error_response(code, str(e.detail), e.status_code)
        response.headers.update(e.headers or {})
        if e.status_code == 405:  # RFC 9110: a 405 lists the methods that would work
            response.headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return response

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
