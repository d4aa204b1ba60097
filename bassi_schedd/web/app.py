"""The Starlette app: routes of api.py, sse.py and pages.py, the static files, the guard."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from bassi_schedd.config.paths import Home
from bassi_schedd.web import api, pages, sse
from bassi_schedd.web.errors import HANDLERS
from bassi_schedd.web.reader import Reader
from bassi_schedd.web.security import ASGIApp, Guard, GuardSettings


def build_app(home: Home, settings: GuardSettings) -> ASGIApp:
    """The whole dashboard for ``home``, wrapped in the guard of SPEC 11."""
    static_dir = Path(str(files("bassi_schedd.web").joinpath("static")))
    routes = [
        *api.ROUTES,
        *sse.ROUTES,
        *pages.ROUTES,
        Mount("/static", app=StaticFiles(directory=static_dir), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers=HANDLERS)
    app.state.reader = Reader(home)
    return Guard(app, settings)
