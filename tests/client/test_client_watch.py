"""Tests for client.watch: line splitting, event parsing, and real watch streams from the apiserver."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from apimachinery.errors import StatusError
from client.request import Selectors
from client.rest import ApiClient
from client.watch import EventType, WatchEvent, WatchExpired, WatchProtocolError, iter_lines, parse_event, watch


def cm(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": data}


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def lines_of(*parts: bytes, limit: int = 1 << 20) -> list[bytes]:
    return [line async for line in iter_lines(chunks(*parts), limit)]


async def test_iter_lines_joins_and_splits_chunks() -> None:
    assert await lines_of(b'{"a":', b"1}\n{", b'"b":2}\n\n{"c":3}\n') == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert await lines_of(b"x\ny") == [b"x", b"y"]  # a last line without newline still counts


async def test_iter_lines_bounds_memory() -> None:
    with pytest.raises(WatchProtocolError, match="longer than"):
        await lines_of(b"a" * 10, b"b" * 10, limit=15)
    assert await lines_of(b"a" * 10 + b"\n", b"b" * 10 + b"\n", limit=15) == [b"a" * 10, b"b" * 10]


def test_parse_event() -> None:
    ev = parse_event(b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}}')
    assert ev.type is EventType.ADDED and ev.resource_version == "5"
    bookmark = {
        "type": "BOOKMARK",
        "object": {"metadata": {"resourceVersion": "9", "annotations": {"k8s.io/initial-events-end": "true"}}},
    }
    assert parse_event(orjson.dumps(bookmark)).is_initial_events_end
    with pytest.raises(WatchExpired) as e:
        parse_event(b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}')
    assert (e.value.code, e.value.reason, e.value.message) == (410, "Expired", "too old")
    with pytest.raises(StatusError) as e2:
        parse_event(b'{"type":"ERROR","object":{"kind":"Status","code":500,"message":"boom"}}')
    assert e2.value.code == 500 and not isinstance(e2.value, WatchExpired)
    for bad in (b"not json", b'{"type":"NOPE","object":{}}', b'{"type":"ADDED","object":[]}'):
        with pytest.raises(WatchProtocolError):
            parse_event(bad)


async def test_410_response_raises_watch_expired() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(410, json={"kind": "Status", "code": 410, "reason": "Gone", "message": "gone"})

    async with ApiClient("http://mock", transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(WatchExpired):
            async for _ in watch(api, "pods", "ns", "1"):
                pass


async def collect(api: ApiClient, n: int, **kw: Any) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async with contextlib.aclosing(watch(api, **kw)) as events:
        async for ev in events:
            if ev.type is not EventType.BOOKMARK:
                out.append(ev)
            if len(out) == n:
                break
    return out


async def test_watch_from_a_list_sees_every_change_in_order(kube: ApiClient, ns: str) -> None:
    rv = (await kube.list("configmaps", ns))["metadata"]["resourceVersion"]
    created = await kube.create("configmaps", cm("w", {"v": "1"}), ns)
    updated = await kube.patch("configmaps", "w", {"data": {"v": "2"}}, ns)
    await kube.delete("configmaps", "w", ns)
    events = await collect(kube, 3, res="configmaps", namespace=ns, resource_version=rv, timeout=10)
    assert [e.type for e in events] == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]
    assert events[0].resource_version == created["metadata"]["resourceVersion"]
    assert (
        events[1].object["data"] == {"v": "2"} and events[1].resource_version == updated["metadata"]["resourceVersion"]
    )
    assert int(events[2].resource_version) > int(events[1].resource_version)


async def test_watch_with_label_selector_reports_leaving_the_selection_as_deleted(kube: ApiClient, ns: str) -> None:
    rv = (await kube.list("configmaps", ns))["metadata"]["resourceVersion"]
    await kube.create("configmaps", cm("ignored"), ns)
    await kube.create("configmaps", cm("s", labels={"app": "x"}), ns)
    await kube.patch("configmaps", "s", {"metadata": {"labels": {"app": "y"}}}, ns)
    sel = Selectors.of(labels={"app": "x"})
    events = await collect(kube, 2, res="configmaps", namespace=ns, resource_version=rv, selectors=sel, timeout=10)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        (EventType.ADDED, "s"),
        (EventType.DELETED, "s"),
    ]


async def test_watch_ends_when_the_server_timeout_passes(kube: ApiClient, ns: str) -> None:
    rv = (await kube.list("configmaps", ns))["metadata"]["resourceVersion"]
    events = [ev async for ev in watch(kube, "configmaps", ns, rv, timeout=1, bookmarks=False)]
    assert events == []


async def test_watch_list_sends_initial_state_then_a_bookmark(kube: ApiClient, ns: str) -> None:
    for name in ("a", "b"):
        await kube.create("configmaps", cm(name), ns)
    seen: list[WatchEvent] = []
    async with contextlib.aclosing(watch(kube, "configmaps", ns, timeout=10, send_initial_events=True)) as events:
        async for ev in events:
            seen.append(ev)
            if ev.is_initial_events_end:
                break
    assert [(e.type, e.object["metadata"].get("name")) for e in seen[:2]] == [
        (EventType.ADDED, "a"),
        (EventType.ADDED, "b"),
    ]
    assert seen[-1].type is EventType.BOOKMARK and len(seen) == 3
