"""The chain page and its API, served by the chain service (``callbell chain run``), never by a
store hub. Head office only reads the warehouse: nothing here reaches into a store — the
service holds no store address, and central's broker account may write nothing to a store but
its mark (chain/broker_config.py).

    GET  /                                  the chain page (chain/page/)
    POST /api/chain/v1/session              {"user", "password"} → session cookie
    GET  /api/chain/v1/me                   who is signed in, and the stores they see
    GET  /api/chain/v1/ranking?months=12&by=hour|weekday    stores ranked (share within, p90)
    GET  /api/chain/v1/stores/{store}?months=12             one store by hour and by weekday

Roles: ``chain`` sees every store, ``region`` only its regions' stores; a store outside them
is answered 404, as if it did not exist. Errors are ``{"error": {"code", "message"}}``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from chain.figures import KEYS, Period, figures, ranking
from chain.warehouse import WarehouseError

PAGE = Path(__file__).parent / "page"

#: A head-office session lasts this long, seconds (a working day).
SESSION_TTL_S = 12 * 3600
COOKIE = "callbell_chain"
#: Months a page may ask for at most (ten years).
MAX_MONTHS = 120


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class Sessions:
    """Signed cookies ``user.expiry.mac``: nothing stored; a restart signs everyone out."""

    def __init__(self, clock=time.time):
        self._key = secrets.token_bytes(32)
        self.clock = clock

    def issue(self, user: str) -> str:
        body = f"{user}.{int(self.clock() + SESSION_TTL_S)}"
        return f"{body}.{self._mac(body)}"

    def user(self, cookie: str | None) -> str | None:
        if not cookie or cookie.count(".") != 2:
            return None
        user, expiry, mac = cookie.split(".")
        body = f"{user}.{expiry}"
        if not hmac.compare_digest(mac, self._mac(body)) or not expiry.isdigit() or int(expiry) < self.clock():
            return None
        return user

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()


def create_app(config, warehouse, *, today=lambda: dt.date.today()) -> FastAPI:
    app = FastAPI(title="Callbell chain", docs_url=None, redoc_url=None)
    sessions = Sessions()
    users = {u.id: u for u in config.users}
    names = {s.id: s.name or s.id for s in config.stores}
    regions = {s.id: s.region for s in config.stores}

    def who(request: Request):
        """(user or None in demo mode, visible store ids), or an error response."""
        if config.http.demo:
            return None, config.stores_of(None)
        user = users.get(sessions.user(request.cookies.get(COOKIE)) or "")
        if user is None:
            return _error(401, "unauthorized", "sign in first"), None
        return user, config.stores_of(user)

    def period(request: Request) -> Period | JSONResponse:
        raw = request.query_params.get("months", "12")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_MONTHS:
            return _error(400, "invalid", f"months must be a whole number from 1 to {MAX_MONTHS}")
        return Period.months(today(), int(raw))

    @app.exception_handler(WarehouseError)
    async def _warehouse(request, e):
        return _error(503, "warehouse", f"the warehouse did not answer: {str(e)[:200]}")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(PAGE / "index.html")

    @app.get("/chain.js", include_in_schema=False)
    def script():
        return FileResponse(PAGE / "chain.js", media_type="text/javascript")

    @app.post("/api/chain/v1/session")
    async def sign_in(request: Request):
        from hub.auth import check_password
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid", "send JSON: {\"user\": ..., \"password\": ...}")
        if not isinstance(body, dict):
            return _error(400, "invalid", "send a JSON object")
        user = users.get(str(body.get("user", "")))
        password = body.get("password")
        if user is None or not isinstance(password, str) or not check_password(password, user.password_hash):
            return _error(401, "unauthorized", "wrong user or password")
        response = JSONResponse({"user": user.id, "role": user.role})
        response.set_cookie(COOKIE, sessions.issue(user.id), max_age=SESSION_TTL_S, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    @app.get("/api/chain/v1/me")
    def me(request: Request):
        user, stores = who(request)
        if stores is None:
            return user
        return {"user": user.id if user else "demo", "role": user.role if user else "chain",
                "demo": config.http.demo, "chain": config.chain.name or config.chain.id,
                "stores": [{"id": s, "name": names[s], "region": regions[s]} for s in stores]}

    @app.get("/api/chain/v1/ranking")
    def rank(request: Request):
        user, stores = who(request)
        if stores is None:
            return user
        p = period(request)
        if isinstance(p, JSONResponse):
            return p
        by = request.query_params.get("by") or None
        if by is not None and by not in KEYS:
            return _error(400, "invalid", f"by must be one of {', '.join(KEYS)}")
        overall = ranking(figures(warehouse, stores, p))
        out = {"since": p.since.isoformat(), "until": p.until.isoformat(), "stores": overall}
        if by:
            out["by"] = by
            out["groups"] = figures(warehouse, stores, p, by=by)
        for r in overall + out.get("groups", []):
            r["name"], r["region"] = names[r["store"]], regions[r["store"]]
        return out

    @app.get("/api/chain/v1/stores/{store}")
    def store(store: str, request: Request):
        user, stores = who(request)
        if stores is None:
            return user
        if store not in stores:
            return _error(404, "not_found", f"no store {store!r} among yours")
        p = period(request)
        if isinstance(p, JSONResponse):
            return p
        overall = figures(warehouse, [store], p)
        return {"store": store, "name": names[store], "region": regions[store], "since": p.since.isoformat(),
                "until": p.until.isoformat(), "overall": overall[0] if overall else None,
                "hour": figures(warehouse, [store], p, by="hour"),
                "weekday": figures(warehouse, [store], p, by="weekday")}

    return app
