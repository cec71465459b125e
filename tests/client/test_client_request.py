"""Unit tests for request building (no I/O) and ApiClient retries/errors on a mock transport."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import httpx
import orjson
import pytest

import client
from apimachinery.errors import StatusError
from apimachinery.resources import by_plural
from client.backoff import Backoff
from client.request import (
    DeleteOptions,
    PatchType,
    Preconditions,
    Selectors,
    create_request,
    delete_request,
    get_request,
    list_request,
    object_path,
    patch_request,
    resource,
    update_request,
    watch_request,
)
from client.rest import ApiClient, RetryPolicy, status_error

PODS = resource("pods")
DEPLOYMENTS = resource("deployments")
NODES = resource("nodes")
NO_WAIT = RetryPolicy(max_attempts=4, backoff=Backoff(initial=0.0, jitter=0))


def test_public_api_is_exported() -> None:
    missing = [name for name in client.__all__ if not hasattr(client, name)]
    assert not missing
    assert client.__all__ == sorted(client.__all__, key=lambda n: (not n.isupper(), n))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pods", ("", "pods")),
        ("po", ("", "pods")),
        ("Pod", ("", "pods")),
        ("pod", ("", "pods")),
        ("deploy", ("apps", "deployments")),
        ("leases.coordination.k8s.io", ("coordination.k8s.io", "leases")),
        ("Lease", ("coordination.k8s.io", "leases")),
        ("deployments.apps", ("apps", "deployments")),
    ],
)
def test_resource_lookup(name: str, expected: tuple[str, str]) -> None:
    res = resource(name)
    assert (res.group, res.plural) == expected
    assert ApiClient.resource(res) is res


def test_resource_lookup_unknown() -> None:
    with pytest.raises(LookupError, match="unknown"):
        resource("widgets")


def test_paths() -> None:
    assert object_path(PODS, "p", "ns") == "/api/v1/namespaces/ns/pods/p"
    assert object_path(DEPLOYMENTS, "d", "ns", "scale") == "/apis/apps/v1/namespaces/ns/deployments/d/scale"
    assert object_path(NODES, "n1") == "/api/v1/nodes/n1"
    with pytest.raises(ValueError, match="namespace is required"):
        object_path(PODS, "p")


def test_list_and_watch_requests() -> None:
    sel = Selectors.of(labels={"b": "2", "a": "1"}, fields={"spec.nodeName": "n,1"})
    assert sel == Selectors("a=1,b=2", "spec.nodeName=n\\,1")
    req = list_request(PODS, None, sel, limit=10, continue_token="tok")
    assert (req.method, req.path) == ("GET", "/api/v1/pods")
    assert dict(req.params) == {
        "labelSelector": "a=1,b=2",
        "fieldSelector": "spec.nodeName=n\\,1",
        "limit": "10",
        "continue": "tok",
    }
    w = watch_request(PODS, "ns", None, "42", timeout_seconds=5)
    assert dict(w.params) == {
        "watch": "1",
        "resourceVersion": "42",
        "timeoutSeconds": "5",
        "allowWatchBookmarks": "true",
    }
    wl = watch_request(PODS, "ns", bookmarks=False, send_initial_events=True)
    assert wl.params["sendInitialEvents"] == "true" and wl.params["resourceVersionMatch"] == "NotOlderThan"
    assert get_request(PODS, "p", "ns", "0").params == {"resourceVersion": "0"}


def test_write_requests() -> None:
    obj = {"metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7"}}
    c = create_request(PODS, obj, dry_run=True, field_manager="me")
    assert (c.method, c.path, dict(c.params)) == (
        "POST",
        "/api/v1/namespaces/ns/pods",
        {"dryRun": "All", "fieldManager": "me"},
    )
    u = update_request(PODS, obj, subresource="status")
    assert (u.method, u.path, u.body) == ("PUT", "/api/v1/namespaces/ns/pods/p/status", obj)
    p = patch_request(PODS, "p", {"x": 1}, "ns", PatchType.APPLY, field_manager="me", force=True)
    assert p.content_type == "application/apply-patch+yaml" and p.params["force"] == "true"
    d = delete_request(PODS, "p", "ns", DeleteOptions(0, "Foreground", Preconditions(uid="u", resource_version="7")))
    assert d.body == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground",
        "preconditions": {"uid": "u", "resourceVersion": "7"},
    }
    with pytest.raises(ValueError):
        create_request(PODS, {"metadata": {"name": "x"}})
    with pytest.raises(ValueError):
        update_request(PODS, {"metadata": {"namespace": "ns"}})


def status_body(code: int, reason: str, message: str, **details: object) -> bytes:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason}
    body["message"] = message
    if details:
        body["details"] = details
    return orjson.dumps(body)


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> ApiClient:
    return ApiClient("http://mock", retry=NO_WAIT, transport=httpx.MockTransport(handler))


def test_status_error_from_status_body_and_from_plain_text() -> None:
    req = httpx.Request("GET", "http://x/")
    e = status_error(httpx.Response(404, content=status_body(404, "NotFound", "gone", name="a"), request=req))
    assert (e.code, e.reason, e.message, e.details) == (404, "NotFound", "gone", {"name": "a"})
    e = status_error(httpx.Response(502, text="bad gateway\n", request=req))
    assert (e.code, e.reason, e.message) == (502, "Unknown", "bad gateway")
    e = status_error(httpx.Response(409, request=req))
    assert (e.code, e.reason, e.message) == (409, "Conflict", "Conflict")


async def test_retries_429_and_5xx_with_retry_after_then_succeeds() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}, content=status_body(429, "TooManyRequests", "slow")),
        httpx.Response(503, headers={"Retry-After": "0"}, content=status_body(503, "ServiceUnavailable", "x")),
        httpx.Response(200, json={"kind": "Pod", "metadata": {"name": "p"}}),
    ]
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answers[len(calls) - 1]

    async with mock_client(handler) as api:
        assert (await api.create(PODS, {"metadata": {"name": "p"}}, "ns"))["kind"] == "Pod"
    assert len(calls) == 3


async def test_5xx_without_retry_after_is_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, content=status_body(500, "InternalError", "boom"))

    async with mock_client(handler) as api:
        with pytest.raises(StatusError) as e:
            await api.get(PODS, "p", "ns")
    assert e.value.code == 500 and len(calls) == 1


async def test_retries_are_bounded() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, headers={"Retry-After": "0"}, content=status_body(429, "TooManyRequests", "no"))

    async with mock_client(handler) as api:
        with pytest.raises(StatusError) as e:
            await api.get(PODS, "p", "ns")
    assert e.value.code == 429 and len(calls) == NO_WAIT.max_attempts


async def test_connect_errors_are_retried_for_every_verb() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"metadata": {"name": "p"}})

    async with mock_client(handler) as api:
        await api.create(PODS, {"metadata": {"name": "p"}}, "ns")
    assert len(calls) == 3


async def test_read_errors_are_retried_for_reads_only() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if calls.count(request.method) == 1:
            raise httpx.ReadError("reset", request=request)
        return httpx.Response(200, json={"metadata": {"name": "p"}})

    async with mock_client(handler) as api:
        await api.get(PODS, "p", "ns")
        with pytest.raises(httpx.ReadError):
            await api.create(PODS, {"metadata": {"name": "p"}}, "ns")
    assert calls == ["GET", "GET", "POST"]


async def test_unreachable_server_raises_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with mock_client(handler) as api:
        with pytest.raises(httpx.ConnectError):
            await api.get(PODS, "p", "ns")


async def test_list_all_falls_back_to_a_full_list_when_continue_expires() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if "continue" in params:
            return httpx.Response(410, content=status_body(410, "Expired", "too old"))
        if "limit" in params:
            meta = {"resourceVersion": "5", "continue": "tok"}
            return httpx.Response(200, json={"kind": "PodList", "metadata": meta, "items": [{"n": 1}]})
        return httpx.Response(200, json={"kind": "PodList", "metadata": {"resourceVersion": "9"}, "items": [{"n": 2}]})

    async with mock_client(handler) as api:
        listing = await api.list_all(PODS, "ns", page_size=1)
    assert listing["metadata"]["resourceVersion"] == "9" and listing["items"] == [{"n": 2}]


def test_backoff_grows_and_is_capped() -> None:
    b = Backoff(initial=1, factor=2, cap=5, jitter=0)
    assert [b.delay(i) for i in range(5)] == [1, 2, 4, 5, 5]
    jittered = Backoff(initial=1, cap=5, jitter=0.5)
    assert all(0.5 <= jittered.delay(0) <= 1 for _ in range(50))


def test_every_resource_resolves_by_plural() -> None:
    from apimachinery.resources import RESOURCES

    for res in RESOURCES:
        assert resource(f"{res.plural}.{res.group}" if res.group else res.plural) is by_plural(res.group, res.plural)


@pytest.mark.parametrize("server", ["http://mock", "https://mock:6443/prefix/"])
async def test_requests_go_out_as_httpx_would_build_them(server: str) -> None:
    """URL, headers and body of what is sent equal httpx's own Request for the same call (the client builds
    plain targets without httpx's URL parser, and odd ones with it)."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    cases: list[tuple[str, str, dict[str, str], object]] = [
        ("POST", "/api/v1/namespaces/ns/pods/p-1/binding", {}, {"target": {"name": "n"}}),
        ("GET", "/api/v1/pods", {"labelSelector": "a in (x, y)", "limit": "5"}, None),
        ("GET", "/api/v1/namespaces/ns/configmaps/a b", {}, None),
        ("GET", "/api/v1/namespaces/ns/./configmaps/../x", {}, None),
        ("DELETE", "/api/v1/namespaces/ns/pods/p%zz?dryRun=All", {}, {"kind": "DeleteOptions"}),
        ("PATCH", "/apis/x/v1/é?q=1 2", {}, None),
        ("PUT", "/api/v1/nodes/n:1@x", {"fieldManager": "m"}, {"a": 1}),
    ]
    api = ApiClient(client.Config(server=server, token="t0k"), retry=NO_WAIT, transport=httpx.MockTransport(handler))
    async with api:
        for method, path, params, body in cases:
            await api.request(method, path, params=params, body=body)
    base = httpx.URL(server)
    for (method, path, params, body), got in zip(cases, sent, strict=True):
        p, _, query = path.partition("?")
        if params:
            query = "&".join(q for q in (query, str(httpx.QueryParams(params))) if q)
        target = base.raw_path.rstrip(b"/") + quote(p, safe="/%:@!$&'()*+,;=~-._").encode()
        target += b"?" + query.encode() if query else b""
        headers = {"User-Agent": "tinykube-client", "Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        content = orjson.dumps(body) if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        want = httpx.Request(method, base.copy_with(raw_path=target), headers=headers, content=content)
        want.headers["Authorization"] = "Bearer t0k"
        assert (got.method, got.url, got.url.raw_path) == (want.method, want.url, want.url.raw_path)
        assert got.headers.raw == want.headers.raw  # the same headers in the same order
        assert got.content == want.content
