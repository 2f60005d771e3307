"""The hub's FastAPI application: API v1, the SSE stream and the dashboard pages."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import dashboard
from callbell import __version__
from hub.api import errors
from hub.api.deps import HubContext
from hub.api.routes import associates, calls, exports, session, stats, status, stream

PAGES = Path(dashboard.__file__).parent


def create_app(context: HubContext) -> FastAPI:
    app = FastAPI(
        title="Callbell hub",
        version=__version__,
        description="Fitting-room calls: the HTTP side of the Callbell wire contract v1.",
        openapi_url="/openapi.json",
    )
    app.state.hub = context
    errors.install(app)
    for module in (status, calls, associates, session, stats, exports, stream):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def floor_dashboard():
        return FileResponse(PAGES / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/stats", include_in_schema=False)
    def statistics_page():
        return FileResponse(PAGES / "stats.html", headers={"Cache-Control": "no-cache"})

    @app.get("/phone", include_in_schema=False)
    def phone_page():
        return FileResponse(PAGES / "phone.html", headers={"Cache-Control": "no-cache"})

    @app.get("/manifest.webmanifest", include_in_schema=False)
    def web_app_manifest():
        return FileResponse(PAGES / "manifest.webmanifest", media_type="application/manifest+json",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/sw.js", include_in_schema=False)
    def service_worker():
        # Served from the root so its scope covers /phone (a worker controls only its folder and below).
        return FileResponse(PAGES / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=PAGES), name="static")
    return app
