"""API requests go from the listener straight to the app's outermost own middleware (apiserver/chain/listener.py)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse

from apimachinery.httpserver import ServingLimits
from apiserver.apiroute import fastapi_options, user_middleware_entry
from apiserver.chain.listener import Listener
from apiserver.limits import BoundedRequests


class _Seen:
    """Records the `app` and the path of each request that passed it (the app's innermost middleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, object]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["path"], scope.get("app")))
        await self.app(scope, receive, send)


def _app() -> FastAPI:
    app = FastAPI(**fastapi_options())

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"app": request.app is app, "path": request.url.path})

    app.add_middleware(_Seen)
    app.add_middleware(BoundedRequests, limits=ServingLimits())
    return app


def test_fastapis_outer_layers_are_found_to_pass_api_requests_on() -> None:
    app = _app()
    assert user_middleware_entry(app, BoundedRequests) is None  # the stack is not built yet
    app.middleware_stack = app.build_middleware_stack()
    entry = user_middleware_entry(app, BoundedRequests)
    assert isinstance(entry, BoundedRequests)  # fails if a FastAPI upgrade adds a layer this does not know


def test_a_body_limit_in_fastapi_keeps_the_whole_stack() -> None:
    app = FastAPI(max_body_size=1024, **fastapi_options())
    app.add_middleware(BoundedRequests, limits=ServingLimits())
    app.middleware_stack = app.build_middleware_stack()
    assert user_middleware_entry(app, BoundedRequests) is None


async def test_api_and_other_requests_through_the_listener_see_the_app() -> None:
    app = _app()
    listener = Listener(app, "insecure")
    transport = httpx.ASGITransport(app=listener)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/healthz", "/api/v1/pods", "/apis/apps/v1/deployments", "/api/v1/namespaces/x/pods"):
            r = await client.post(path, json={}) if "namespaces" in path else await client.get(path)
            assert r.status_code == 200 and r.json() == {"app": True, "path": path}
    assert listener._api is not None  # once the stack was built, API requests took the short way
    seen = next(m for m in _middlewares(app) if isinstance(m, _Seen)).seen
    assert [p for p, _ in seen] == [
        "/healthz",
        "/api/v1/pods",
        "/apis/apps/v1/deployments",
        "/api/v1/namespaces/x/pods",
    ]
    assert all(a is app for _, a in seen)


def _middlewares(app: FastAPI) -> list[Any]:
    out, layer = [], app.middleware_stack
    while layer is not None:
        out.append(layer)
        layer = getattr(layer, "app", None)
    return out
