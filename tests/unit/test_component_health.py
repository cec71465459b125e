"""A component's health server: /healthz, /livez, /readyz and /metrics, GET and HEAD only."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from client.component import health_app


def client(ready: bool) -> httpx.AsyncClient:
    app = health_app(lambda: ready)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://component")


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
async def test_probes_answer_ok(path: str) -> None:
    async with client(True) as http:
        r = await http.get(path)
    assert (r.status_code, r.text, r.headers["content-type"]) == (200, "ok", "text/plain; charset=utf-8")


async def test_readyz_is_503_until_ready_while_healthz_stays_ok() -> None:
    async with client(False) as http:
        ready, healthy = await http.get("/readyz"), await http.get("/healthz")
    assert (ready.status_code, ready.text) == (503, "not ready")
    assert healthy.status_code == 200


async def test_metrics_are_prometheus_text() -> None:
    async with client(True) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "# TYPE python_gc_objects_collected_total counter" in r.text


async def test_head_has_the_headers_and_no_body() -> None:
    async with client(True) as http:
        r = await http.head("/healthz")
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "2")


async def test_other_paths_are_404_and_other_methods_405() -> None:
    async with client(True) as http:
        missing, post = await http.get("/nope"), await http.post("/healthz")
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
