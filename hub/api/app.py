"""The hub's FastAPI application: API v1, the SSE stream and the dashboard pages."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import fastapi.routing
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.responses import FileResponse

import dashboard
from callbell import __version__
from hub.api import errors
from hub.api.body_limit import BodyLimit
from hub.api.deps import HubContext, allow
from hub.api.page_files import PageFiles
from hub.api.security_headers import SecurityHeaders
from hub.api.routes import (associates, calls, display, exports, metrics, push, receipts, session, stats, status,
                            stream, troubles)
from hub.auth import CSRF_HEADER, RANK, SESSION_COOKIE, Authenticator
from hub.store import Credentials

PAGES = Path(dashboard.__file__).parent
log = logging.getLogger("callbell.hub.http")

#: Routes anyone may call: signing in and out (the pages and static files are outside the API),
#: what a phone's service worker posts back from a Web Push, which carries the token of its
#: subscription instead of a session (hub/api/routes/push.py), and a floor screen's sign-in with
#: its display token (hub/api/routes/display.py).
PUBLIC_ROUTES = {("GET", "/api/v1/session"), ("POST", "/api/v1/session"), ("DELETE", "/api/v1/session"),
                 ("POST", "/api/v1/push/receipt"), ("POST", "/api/v1/push/act"),
                 ("POST", "/api/v1/display/session"),
                 ("POST", "/api/v1/push/acknowledge")}  # a pushed trouble's Acknowledge: its token
#: Paths whose every other route must declare the role it needs (hub.api.deps.allow).
GUARDED_PREFIXES = ("/api/", "/metrics", "/openapi.json")


def create_app(context: HubContext) -> FastAPI:
    app = FastAPI(
        title="Callbell hub",
        version=__version__,
        description="Fitting-room calls: the HTTP side of the Callbell wire contract v1.",
        # The description is served below, to signed-in callers; no /docs or /redoc (they load
        # their scripts from a CDN, and the hub needs no cloud).
        openapi_url=None, docs_url=None, redoc_url=None,
    )
    app.state.hub = context
    if context.config.http.demo:
        log.warning("DEMO MODE: authentication is off; anyone on the network can use the API "
                    "([http] demo = true; never for a real store, docs/security.md)")
    app.state.auth = Authenticator(context.reader, Credentials(context.config.database.path), context.clock)
    errors.install(app)
    # Bodies over the cap are refused before any route reads them, and recorded like other bad input.
    app.add_middleware(BodyLimit, on_refused=lambda method, path, reason, client: context.refusals.note(
        client, f"{method} {path}", reason))
    for module in (status, calls, associates, session, display, stats, receipts, exports, stream, metrics, push,
                   troubles):
        app.include_router(module.router)

    generated = app.openapi

    def described() -> dict:
        if app.openapi_schema is None:
            describe(app, generated())
        return app.openapi_schema
    app.openapi = described

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(allow("device"))])
    def openapi_description():
        return app.openapi()
    check_every_route_has_a_role(app)
    # Outermost: every answer, the body cap's refusals included, carries the browser's rules.
    app.add_middleware(SecurityHeaders)

    # The pages answer HEAD too (link checkers, a monitor asking whether the hub is up).
    page = lambda path: app.api_route(path, methods=["GET", "HEAD"], include_in_schema=False)  # noqa: E731

    @page("/")
    def floor_dashboard():
        return FileResponse(PAGES / "index.html", headers={"Cache-Control": "no-cache"})

    @page("/stats")
    def statistics_page():
        return FileResponse(PAGES / "stats.html", headers={"Cache-Control": "no-cache"})

    @page("/floor")
    def floor_screen():
        """The floor dashboard as a kiosk: big, read-only, with sound (dashboard/app.js)."""
        return FileResponse(PAGES / "index.html", headers={"Cache-Control": "no-cache"})

    @page("/phone")
    def phone_page():
        return FileResponse(PAGES / "phone.html", headers={"Cache-Control": "no-cache"})

    @page("/manifest.webmanifest")
    def web_app_manifest():
        return FileResponse(PAGES / "manifest.webmanifest", media_type="application/manifest+json",
                            headers={"Cache-Control": "no-cache"})

    @page("/sw.js")
    def service_worker():
        # Served from the root so its scope covers /phone (a worker controls only its folder and below).
        return FileResponse(PAGES / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    app.mount("/static", PageFiles(directory=PAGES), name="static")
    return app


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, Dependant]]:
    """Every route of ``app`` with its dependencies: (method, path, dependant). FastAPI 0.16x
    keeps included routers as one lazy entry of ``app.routes``; its iter_route_contexts
    expands them (older versions list the routes themselves)."""
    expand = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in (expand(app.routes) if expand else app.routes):
        dependant, path = getattr(route, "dependant", None), getattr(route, "path", None)
        if dependant is not None and path:
            for method in sorted(route.methods or ()):
                yield method, path, dependant


def required_role(dependant: Dependant) -> str | None:
    """The role a route's ``allow`` dependencies ask for (all of them run: the highest), or None."""
    roles = [getattr(d.call, "role", None) for d in dependant.dependencies]
    roles = [r for r in roles if r is not None]
    return max(roles, key=RANK.__getitem__) if roles else None


def describe(app: FastAPI, schema: dict) -> None:
    """Complete FastAPI's API description: the error body every error answer refers to
    (hub.api.errors), how to sign in (a token, or a page's session cookie) and, on every
    operation that needs it, the role it needs (docs/security.md)."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(errors.error_schemas())
    if app.state.hub.config.http.demo:
        return  # demo mode: nobody signs in, nothing to describe
    components["securitySchemes"] = {
        "token": {"type": "http", "scheme": "bearer",
                  "description": "An API token: callbell token create --role ROLE --name NAME"},
        "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                    "description": "A page's session (POST /api/v1/session); requests that change "
                                   f"something also send the {CSRF_HEADER} header it got"},
    }
    for method, path, dependant in api_routes(app):
        role = required_role(dependant)
        operation = schema["paths"].get(path, {}).get(method.lower())
        if operation is None or role is None:
            continue
        operation["security"] = [{"token": []}, {"session": []}]
        operation["description"] = (operation.get("description", "") + f"\n\nNeeds role {role} or above.").strip()


def check_every_route_has_a_role(app: FastAPI) -> None:
    """Fail at start, not in production, if an API route was added without a role: a route
    open to anyone on the store network must be in PUBLIC_ROUTES on purpose."""
    for method, path, dependant in api_routes(app):
        if (path.startswith(GUARDED_PREFIXES) and (method, path) not in PUBLIC_ROUTES
                and required_role(dependant) is None):
            raise RuntimeError(f"{method} {path} declares no role: add Depends(allow(ROLE)) "
                               "(hub/api/deps.py), or list it in PUBLIC_ROUTES on purpose")
