"""The dashboard's web application: the page's static files and the proxy routes to the API."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dashboard.proxy import ApiProxy

__all__ = ["STATIC", "dashboard_app"]

STATIC = Path(__file__).resolve().parent / "static"

# The page loads nothing from elsewhere and is never framed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class _Static(StaticFiles):
    """The page's files, revalidated on every load so an upgraded dashboard is picked up at once."""

    def file_response(self, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "no-cache"
        response.headers.update(SECURITY_HEADERS)
        return response


def dashboard_app(proxy: ApiProxy) -> Starlette:
    """The page at `/`, its files under `/static/`, the API under `/k8s/` and `/k8s-watch`."""

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache", **SECURITY_HEADERS})

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[
            Route("/", index),
            Route("/k8s-watch", proxy.watch_many),
            Route("/k8s/{path:path}", proxy.forward, methods=methods),
            Mount("/static", app=_Static(directory=STATIC), name="static"),
        ]
    )
