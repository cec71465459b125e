"""The dashboard process: its health endpoints, the files it serves, its API proxy, how the page
rides out a restart of it, and `tinykube dashboard`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.app import STATIC
from tests.dashboard.conftest import Dashboard, start_dashboard
from tests.dashboard.kit import eventually, pod
from tinykube.procs import free_port, start_apiserver


async def test_health_endpoints_and_metrics(dashboard: Dashboard, http: httpx.AsyncClient) -> None:
    assert (await http.get("/k8s/api/v1/namespaces")).status_code == 200
    async with httpx.AsyncClient(base_url=dashboard.health, timeout=5) as health:
        assert (await health.get("/healthz")).text == "ok"
        assert (await health.get("/readyz")).text == "ok"
        metrics = (await health.get("/metrics")).text
    assert re.search(r'dashboard_proxy_requests_total\{code="200",method="GET"\} [1-9]', metrics), metrics


async def test_the_page_is_served_from_the_package_and_loads_nothing_from_elsewhere(http: httpx.AsyncClient) -> None:
    index = await http.get("/")
    assert index.status_code == 200
    assert "default-src 'self'" in index.headers["content-security-policy"]
    files = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file())
    assert "js/main.js" in files and "app.css" in files
    for name in files:
        r = await http.get(f"/static/{name}")
        assert r.status_code == 200, name
        # the only absolute URL is SVG's namespace name, which is never fetched
        assert re.findall(r"https?://[^\s\"'`)]+", r.text.replace("http://www.w3.org/2000/svg", "")) == [], name


async def test_proxy_passes_api_answers_and_errors_through(
    http: httpx.AsyncClient, api: httpx.AsyncClient, ns: str
) -> None:
    r = await http.post(f"/k8s/api/v1/namespaces/{ns}/pods", json=pod("via-proxy"))
    assert r.status_code == 201, r.text
    direct = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("via-proxy"))
    again = await http.post(f"/k8s/api/v1/namespaces/{ns}/pods", json=pod("via-proxy"))
    assert again.status_code == direct.status_code == 409
    assert again.json() == direct.json()

    # only the API is reachable through /k8s
    assert (await http.get("/k8s/healthz")).status_code == 404
    assert (await http.get("/k8s/api/../healthz")).status_code == 404
    # another site cannot make a visitor's browser change the cluster
    r = await http.delete(f"/k8s/api/v1/namespaces/{ns}/pods/via-proxy", headers={"Origin": "http://elsewhere.test"})
    assert r.status_code == 403
    assert r.json()["message"] == "cross-site request refused by the dashboard"
    assert (await api.get(f"/api/v1/namespaces/{ns}/pods/via-proxy")).status_code == 200


async def test_proxy_streams_a_watch_as_it_happens(http: httpx.AsyncClient, api: httpx.AsyncClient, ns: str) -> None:
    rv = (await api.get(f"/api/v1/namespaces/{ns}/pods")).json()["metadata"]["resourceVersion"]
    path = f"/k8s/api/v1/namespaces/{ns}/pods"
    async with http.stream("GET", path, params={"watch": "1", "resourceVersion": rv}) as r:
        assert r.status_code == 200
        lines = r.aiter_lines()
        assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("streamed"))).status_code == 201
        event = json.loads(await asyncio.wait_for(anext(lines), 10))
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "streamed")


async def test_many_watches_share_one_stream(http: httpx.AsyncClient, api: httpx.AsyncClient, ns: str) -> None:
    pods_rv = (await api.get(f"/api/v1/namespaces/{ns}/pods")).json()["metadata"]["resourceVersion"]
    cms_rv = (await api.get(f"/api/v1/namespaces/{ns}/configmaps")).json()["metadata"]["resourceVersion"]
    params = [
        ("w", f"/api/v1/namespaces/{ns}/pods?resourceVersion={pods_rv}"),
        ("w", f"/api/v1/namespaces/{ns}/configmaps?resourceVersion={cms_rv}"),
    ]
    async with http.stream("GET", "/k8s-watch", params=params) as r:
        assert r.status_code == 200
        lines = r.aiter_lines()
        assert json.loads(await anext(lines)) == {"open": True}
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"k": "v"}}
        assert (await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=cm)).status_code == 201
        assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("p1"))).status_code == 201
        got = []
        while len(got) < 2:
            line = await asyncio.wait_for(anext(lines), 10)
            if line.strip():
                msg = json.loads(line)
                got.append((msg["i"], msg["event"]["type"], msg["event"]["object"]["metadata"]["name"]))
    # each watch is tagged with its index; events of two resources may interleave either way
    assert sorted(got) == [(0, "ADDED", "p1"), (1, "ADDED", "c1")]

    # a watch the apiserver refuses ends the stream with its Status
    async with http.stream("GET", "/k8s-watch", params=[("w", "/api/v1/nosuchthings")]) as r:
        body = [json.loads(line) for line in [line async for line in r.aiter_lines()] if line.strip()]
    assert body[0] == {"open": True}
    assert body[1]["i"] == 0 and body[1]["code"] == 404 and body[1]["status"]["reason"] == "NotFound"

    assert (await http.get("/k8s-watch", params={"w": "http://elsewhere.test/api/v1/pods"})).status_code == 400


def _requests(page: Any) -> list[str]:
    """Every URL the page requests from now on."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def _lists(urls: list[str]) -> list[str]:
    return [u for u in urls if "/k8s/" in u and "limit=" in u]


async def test_page_resumes_its_watches_after_the_dashboard_restarts(
    page: Any, apiserver: str, api: httpx.AsyncClient, ns: str, tmp_path: Path
) -> None:
    """Changes made meanwhile arrive when the watches resume from their resourceVersions; nothing is listed again."""
    port = free_port()
    d = start_dashboard(apiserver, tmp_path / "dashboard.log", port)
    try:
        await page.goto(f"{d.url}/?namespace={ns}")
        await page.wait_for_selector("#connection.ok")
        await page.evaluate("window.loadedOnce = true")
        urls = _requests(page)
        assert d.stop() == 0
        await page.wait_for_selector("#connection.bad")
        assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("while-away"))).status_code == 201

        d = start_dashboard(apiserver, tmp_path / "dashboard-2.log", port)
        await page.locator(f'#pods tbody tr[data-key="{ns}/while-away"]').wait_for(timeout=20000)
        await page.wait_for_selector("#connection.ok")
        assert await page.evaluate("window.loadedOnce") is True
        assert any("/k8s-watch?" in u for u in urls)
        assert _lists(urls) == []
    finally:
        d.stop()


async def test_page_lists_again_when_its_resource_versions_expired(
    page: Any, etcd: str, api: httpx.AsyncClient, ns: str, tmp_path: Path
) -> None:
    """A restarted apiserver's watch cache starts at etcd's current revision: watches from older
    resourceVersions answer 410 Expired, and the page lists those resources again."""
    port = free_port()
    proc, server = start_apiserver(tmp_path / "a1", etcd, port)
    d = start_dashboard(server, tmp_path / "dashboard.log")
    try:
        await page.goto(f"{d.url}/?namespace={ns}")
        await page.wait_for_selector("#connection.ok")
        await page.evaluate("window.loadedOnce = true")
        urls = _requests(page)
        proc.stop()
        await page.wait_for_selector("#connection.bad")
        # written through the session's apiserver, on the same etcd
        assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("while-down"))).status_code == 201

        proc, server = start_apiserver(tmp_path / "a2", etcd, port)
        await page.locator(f'#pods tbody tr[data-key="{ns}/while-down"]').wait_for(timeout=20000)
        await page.wait_for_selector("#connection.ok")
        assert await page.evaluate("window.loadedOnce") is True
        assert any(f"/k8s/api/v1/namespaces/{ns}/pods?limit=" in u for u in _lists(urls))
    finally:
        d.stop()
        proc.stop()


async def test_a_list_that_failed_is_listed_again_while_the_others_are_watched(
    page: Any, dashboard: Dashboard, api: httpx.AsyncClient, ns: str
) -> None:
    """One resource's first list fails on its way (a 503 where the proxy was); the page watches the others, lists
    that one again after a backoff, and shows its objects and their changes without a reload."""
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    assert (await api.post(f"/api/v1/namespaces/{ns}/services", json=svc)).status_code == 201
    failed: list[str] = []

    async def fail_first(route: Any) -> None:
        if failed:
            await route.continue_()
            return
        failed.append(route.request.url)
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503, "message": "injected"}
        await route.fulfill(status=503, content_type="application/json", body=json.dumps(status))

    await page.route(re.compile(rf"/k8s/api/v1/namespaces/{ns}/services\?limit="), fail_first)
    await page.goto(f"{dashboard.url}/?namespace={ns}")
    await page.wait_for_selector("#connection.ok")
    await page.evaluate("window.loadedOnce = true")
    # the failed list is drawn at the next animation frame, which may come after the watch opened
    await page.locator("#services").get_by_text("injected").first.wait_for()
    assert await page.locator("#services").get_by_text("injected").count() > 0  # the failure is shown meanwhile
    row = page.locator(f'#services tbody tr[data-key="{ns}/web"]')
    await row.wait_for(timeout=20000)
    assert failed
    assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("after-retry"))).status_code == 201
    await page.locator(f'#pods tbody tr[data-key="{ns}/after-retry"]').wait_for(timeout=20000)
    assert await page.evaluate("window.loadedOnce") is True


async def test_sign_in_sends_the_token_on_every_api_request(page: Any, dashboard: Dashboard, ns: str) -> None:
    await page.goto(f"{dashboard.url}/?namespace={ns}")
    await page.wait_for_selector("#connection.ok")
    seen: list[tuple[str, str | None]] = []
    page.on("request", lambda r: seen.append((r.url, r.headers.get("authorization"))))
    await page.locator("#token").fill("s3cret-token")
    await page.locator("#signin-button").click()
    await page.wait_for_selector("#signout:not([hidden])")
    await page.wait_for_selector("#connection.ok")
    api_requests = [(u, a) for u, a in seen if "/k8s" in u]
    assert any("/k8s-watch?" in u for u, _ in api_requests)
    assert api_requests and all(a == "Bearer s3cret-token" for _, a in api_requests), api_requests
    # kept for the tab's session only
    assert await page.evaluate("sessionStorage.length") == 1
    assert await page.evaluate("localStorage.length") == 0
    await page.locator("#signout").click()
    await page.wait_for_selector("#token:not([hidden])")
    assert await page.evaluate("sessionStorage.length") == 0


async def test_dashboard_exits_with_a_clear_error_when_its_port_is_taken(apiserver: str, dashboard: Dashboard) -> None:
    port = dashboard.url.rsplit(":", 1)[1]
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "dashboard", "--server", apiserver, "--port", port, "--health-port", "0"],
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert "address already in use" in err.decode().lower()


# --- tinykube dashboard ---------------------------------------------------------------------------


async def tinykube(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the `tinykube` command line; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tinykube.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_tinykube_dashboard_prints_the_url_and_opens_a_browser(dashboard: Dashboard, tmp_path: Path) -> None:
    (tmp_path / "dashboard-url").write_text(f"{dashboard.url}/\n")
    code, out, _ = await tinykube("dashboard", "--data-dir", str(tmp_path), "--no-open")
    assert code == 0
    assert out.splitlines()[0] == f"{dashboard.url}/"

    # with a display, the browser named by $BROWSER is started on the URL
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    code, out, _ = await tinykube(
        "dashboard", "--data-dir", str(tmp_path), env={"DISPLAY": ":0", "BROWSER": str(browser)}
    )
    assert code == 0 and out.splitlines()[0] == f"{dashboard.url}/"
    await eventually(lambda: asyncio.to_thread(_read, opened), 10, "the browser started")
    assert opened.read_text().strip() == f"{dashboard.url}/"


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("state", ["no-file", "not-answering"])
async def test_tinykube_dashboard_without_a_running_dashboard(state: str, tmp_path: Path) -> None:
    if state == "not-answering":
        (tmp_path / "dashboard-url").write_text(f"http://127.0.0.1:{free_port()}/\n")
    code, out, err = await tinykube("dashboard", "--data-dir", str(tmp_path), "--no-open")
    assert code == 1 and out == ""
    if state == "no-file":
        assert f"no dashboard is running in {tmp_path}" in err
    else:
        assert "does not answer" in err and f"is the cluster in {tmp_path} running?" in err
