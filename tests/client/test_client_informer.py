"""Integration tests for client.informer on the real apiserver: sync, handlers, reconnects, sharing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
from client_kit import FaultyTransport, Recorder, eventually

from client.backoff import Backoff
from client.informer import Informer, InformerFactory
from client.reflector import LISTED, reflect
from client.request import Selectors
from client.rest import ApiClient
from client.store import NAMESPACE_INDEX, field_indexer
from client.watch import WatchEvent

FAST = Backoff(initial=0.01, cap=0.1)


def cm(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": data}


@pytest.fixture
async def faulty(apiserver: str) -> AsyncIterator[tuple[ApiClient, FaultyTransport]]:
    """An ApiClient whose transport can cut or hold watch streams."""
    transport = FaultyTransport()
    async with ApiClient(apiserver, transport=transport) as api:
        yield api, transport


async def test_reflect_yields_objects_then_listed_then_events(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("a"), ns)
    items: list[object] = []
    async with contextlib.aclosing(reflect(kube, kube.resource("configmaps"), ns, watch_timeout=5)) as stream:
        async for item in stream:
            items.append(item)
            if item is LISTED:
                await kube.create("configmaps", cm("b"), ns)
            if isinstance(item, WatchEvent):
                break
    assert isinstance(items[0], dict) and items[0]["metadata"]["name"] == "a"
    assert items[1] is LISTED
    assert isinstance(items[2], WatchEvent) and items[2].object["metadata"]["name"] == "b"


async def test_sync_handlers_and_store(kube: ApiClient, ns: str) -> None:
    for name in ("a", "b"):
        await kube.create("configmaps", cm(name, {"v": "0"}), ns)
    rec = Recorder()
    informer = Informer(kube, "configmaps", ns, watch_timeout=5)
    informer.add_handler(**rec.handlers())
    assert not informer.has_synced
    async with informer:
        assert await informer.wait_for_sync(10)
        assert sorted(rec.verbs()) == [("add", "a"), ("add", "b")]
        await kube.create("configmaps", cm("c"), ns)
        await kube.patch("configmaps", "a", {"data": {"v": "1"}}, ns)
        await kube.delete("configmaps", "b", ns)
        await rec.wait_count(5)
        assert rec.verbs()[2:] == [("add", "c"), ("update", "a"), ("delete", "b")]
        assert sorted(informer.store.keys()) == [f"{ns}/a", f"{ns}/c"]
        assert informer.store.get(f"{ns}/a")["data"] == {"v": "1"}  # type: ignore[index]
        assert [o["metadata"]["name"] for o in informer.store.by_index(NAMESPACE_INDEX, ns)] == ["a", "c"]
        assert informer.last_resource_version


async def test_late_handler_gets_existing_objects_first(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("old"), ns)
    async with Informer(kube, "configmaps", ns, watch_timeout=5) as informer:
        assert await informer.wait_for_sync(10)
        rec = Recorder()
        reg = informer.add_handler(**rec.handlers())
        await asyncio.wait_for(reg.synced.wait(), 10)
        await kube.create("configmaps", cm("new"), ns)
        await rec.wait_count(2)
        assert rec.verbs() == [("add", "old"), ("add", "new")]
        informer.remove_handler(reg)


async def test_handler_errors_do_not_stop_the_informer(kube: ApiClient, ns: str) -> None:
    rec = Recorder()

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    async with Informer(kube, "configmaps", ns, watch_timeout=5) as informer:
        informer.add_handler(on_add=broken)
        informer.add_handler(**rec.handlers())
        assert await informer.wait_for_sync(10)
        await kube.create("configmaps", cm("x"), ns)
        await kube.create("configmaps", cm("y"), ns)
        await rec.wait_count(2)
        assert informer.running


async def test_reconnects_after_server_timeouts_without_missing_or_repeating(
    faulty: tuple[ApiClient, FaultyTransport], kube: ApiClient, ns: str
) -> None:
    api, transport = faulty
    rec = Recorder()
    async with Informer(api, "configmaps", ns, watch_timeout=1, backoff=FAST) as informer:
        informer.add_handler(**rec.handlers())
        assert await informer.wait_for_sync(10)
        expected: list[tuple[str, str, str]] = []
        for i in range(3):
            obj = await kube.create("configmaps", cm(f"r{i}"), ns)
            expected.append(("add", f"r{i}", obj["metadata"]["resourceVersion"]))
            obj = await kube.patch("configmaps", f"r{i}", {"data": {"i": str(i)}}, ns)
            expected.append(("update", f"r{i}", obj["metadata"]["resourceVersion"]))
            await rec.wait_count(len(expected))
            watches = len(transport.watches())
            # let the server end this watch (timeoutSeconds) so the next change crosses a reconnect
            await eventually(partial(new_watch_since, transport, watches), 10, "a new watch")
            # it resumes from the update just seen, or from a later bookmark's (the server's revision at the
            # watch's end may be another object's): never from before it, which would repeat the update
            resumed_from = transport.watches()[watches].url.params["resourceVersion"]
            assert int(resumed_from) >= int(expected[-1][2])
        assert rec.calls == expected
        list_rv, *resumed = [r.url.params["resourceVersion"] for r in transport.watches()]
        assert len(resumed) >= 3 and resumed == sorted(resumed, key=int) and int(resumed[0]) >= int(list_rv)
        assert len(transport.lists()) == 1  # resumed from resourceVersions, never relisted


def new_watch_since(transport: FaultyTransport, count: int) -> bool:
    return len(transport.watches()) > count


async def test_resumes_from_last_resource_version_after_a_dropped_connection(
    faulty: tuple[ApiClient, FaultyTransport], kube: ApiClient, ns: str
) -> None:
    api, transport = faulty
    transport.drops = 3  # the first three watch streams break right after their first event
    rec = Recorder()
    async with Informer(api, "configmaps", ns, watch_timeout=30, backoff=FAST) as informer:
        informer.add_handler(**rec.handlers())
        assert await informer.wait_for_sync(10)
        expected = []
        for i in range(5):
            obj = await kube.create("configmaps", cm(f"d{i}"), ns)
            expected.append(("add", f"d{i}", obj["metadata"]["resourceVersion"]))
            await rec.wait_count(len(expected))
        assert rec.calls == expected
        assert transport.drops == 0 and len(transport.lists()) == 1
        watch_rvs = [r.url.params["resourceVersion"] for r in transport.watches()]
        assert watch_rvs[1:4] == [rv for _, _, rv in expected[:3]]  # each reconnect starts at the last event


async def test_selectors_and_custom_indexer(kube: ApiClient, ns: str) -> None:
    rec = Recorder()
    informer = Informer(
        kube,
        "configmaps",
        ns,
        Selectors.of(labels={"team": "a"}),
        indexers={"tier": field_indexer("metadata.labels.tier")},
        watch_timeout=5,
    )
    informer.add_handler(**rec.handlers())
    async with informer:
        assert await informer.wait_for_sync(10)
        await kube.create("configmaps", cm("x", labels={"team": "a", "tier": "web"}), ns)
        await kube.create("configmaps", cm("y", labels={"team": "b", "tier": "web"}), ns)
        await kube.create("configmaps", cm("z", labels={"team": "a", "tier": "db"}), ns)
        await rec.wait_count(2)
        assert [o["metadata"]["name"] for o in informer.store.by_index("tier", "web")] == ["x"]
        await kube.patch("configmaps", "x", {"metadata": {"labels": {"team": "b"}}}, ns)
        await rec.wait_count(3)
        assert rec.verbs() == [("add", "x"), ("add", "z"), ("delete", "x")]
        assert informer.store.by_index("tier", "web") == []


async def test_periodic_resync_calls_update_with_the_same_object(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("r"), ns)
    rec = Recorder()
    async with Informer(kube, "configmaps", ns, resync_period=0.05, watch_timeout=5) as informer:
        informer.add_handler(**rec.handlers())
        await rec.wait_for(lambda calls: [v for v, _, _ in calls].count("update") >= 2)
        assert rec.verbs()[0] == ("add", "r")
        assert set(rec.calls[1:]) == {("update", "r", rec.calls[0][2])}


async def test_factory_shares_one_informer_per_collection(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("s"), ns)
    async with InformerFactory(kube, watch_timeout=5) as factory:
        first = factory.informer("configmaps", ns)
        assert factory.informer("cm", ns) is first
        assert factory.informer("configmaps", ns, Selectors.of(labels="a=b")) is not first
        assert factory.informer("configmaps") is not first
        pods = factory.informer("pods", ns, indexers={"node": field_indexer("spec.nodeName")})
        component_a, component_b = Recorder(), Recorder()
        first.add_handler(**component_a.handlers())
        first.add_handler(**component_b.handlers())
        assert await factory.wait_for_sync(10)
        assert len(factory.informers()) == 4 and all(i.has_synced for i in factory.informers())
        await component_a.wait_count(1)
        await component_b.wait_count(1)
        pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
        await kube.create("pods", pod, ns)
        await eventually(lambda: len(pods.store.by_index("node", "n1")) == 1, 10, "pod indexed by node")
        late = factory.informer("secrets", ns)  # started at once: the factory is running
        assert await late.wait_for_sync(10)
    assert not any(i.running for i in factory.informers())
