"""The pages' static files (``/static/...``): only the kinds of file a page loads.

The dashboard folder is also a Python package (``__init__.py``, ``__pycache__``); serving
the folder as it is handed those out too.
"""
from __future__ import annotations

from pathlib import PurePosixPath

from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

#: What a page may load from /static: the suffixes pyproject.toml ships in the dashboard package.
SERVED_SUFFIXES = frozenset({".html", ".js", ".css", ".svg", ".png", ".json", ".webmanifest"})


class PageFiles(StaticFiles):
    """StaticFiles that answer 404 for anything but :data:`SERVED_SUFFIXES` outside hidden or
    cache folders."""

    def get_path(self, scope) -> str:
        path = super().get_path(scope)
        p = PurePosixPath(path)
        if p.suffix.lower() not in SERVED_SUFFIXES or any(part.startswith((".", "__")) for part in p.parts):
            raise HTTPException(status_code=404)
        return path
